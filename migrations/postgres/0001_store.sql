-- Durable state of the appliance: devices as last seen in the inventory, their current
-- status, every transition, and alerts. Timestamps are UTC (timestamptz).

CREATE TABLE devices (
    name          text PRIMARY KEY,
    address       text NOT NULL,
    region        text NOT NULL,
    branch        text NOT NULL,
    kind          text NOT NULL,
    first_seen_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    -- Set when the device left the inventory; its history is kept.
    removed_at    timestamptz
);

-- The status the appliance last decided for each live device; loaded back at start-up.
CREATE TABLE device_state (
    device        text PRIMARY KEY REFERENCES devices (name),
    status        text NOT NULL CHECK (status IN ('unknown', 'up', 'down')),
    down_since    timestamptz,
    changed_at    timestamptz NOT NULL,
    -- The in-memory state_version of the change (it restarts with each boot).
    state_version bigint NOT NULL
);

CREATE TABLE transitions (
    id            bigserial PRIMARY KEY,
    device        text NOT NULL REFERENCES devices (name),
    from_status   text NOT NULL,
    to_status     text NOT NULL,
    at            timestamptz NOT NULL,
    down_since    timestamptz,
    boot_id       text NOT NULL,
    state_version bigint NOT NULL
);
CREATE INDEX transitions_device_at ON transitions (device, at);
CREATE INDEX transitions_at ON transitions (at);

CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    device          text NOT NULL REFERENCES devices (name),
    condition       text NOT NULL CHECK (condition IN ('device_down', 'flapping')),
    severity        text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    message         text NOT NULL,
    opened_at       timestamptz NOT NULL,
    resolved_at     timestamptz,
    resolution      text,
    acknowledged_at timestamptz,
    acknowledged_by text,
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
-- At most one open alert per (device, condition), whatever the code does.
CREATE UNIQUE INDEX alerts_one_open ON alerts (device, condition) WHERE resolved_at IS NULL;
CREATE INDEX alerts_opened_at ON alerts (opened_at);
CREATE INDEX alerts_resolved_at ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

-- Idempotency of the writer: the last spool sequence applied for each boot of the
-- appliance. A record at or below it was applied already (replay after a crash).
CREATE TABLE writer_progress (
    boot_id  text PRIMARY KEY,
    last_seq bigint NOT NULL
);

-- The old runbooks' query: SELECT name, ip, down_since FROM standalone_devices WHERE down_since IS NOT NULL
CREATE VIEW standalone_devices AS
SELECT d.name, d.address::inet AS ip, s.status, s.down_since, d.region, d.branch, d.kind
FROM devices d
LEFT JOIN device_state s ON s.device = d.name
WHERE d.removed_at IS NULL;
