-- Durable state of the appliance (SQLite, the embedded default). Same tables as the
-- PostgreSQL schema; timestamps are UTC microseconds since the Unix epoch.

CREATE TABLE devices (
    name          TEXT PRIMARY KEY,
    address       TEXT NOT NULL,
    region        TEXT NOT NULL,
    branch        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    removed_at    INTEGER
) STRICT;

CREATE TABLE device_state (
    device        TEXT PRIMARY KEY REFERENCES devices (name),
    status        TEXT NOT NULL CHECK (status IN ('unknown', 'up', 'down')),
    down_since    INTEGER,
    changed_at    INTEGER NOT NULL,
    state_version INTEGER NOT NULL
) STRICT;

CREATE TABLE transitions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    device        TEXT NOT NULL REFERENCES devices (name),
    from_status   TEXT NOT NULL,
    to_status     TEXT NOT NULL,
    at            INTEGER NOT NULL,
    down_since    INTEGER,
    boot_id       TEXT NOT NULL,
    state_version INTEGER NOT NULL
) STRICT;
CREATE INDEX transitions_device_at ON transitions (device, at);
CREATE INDEX transitions_at ON transitions (at);

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    device          TEXT NOT NULL REFERENCES devices (name),
    condition       TEXT NOT NULL CHECK (condition IN ('device_down', 'flapping')),
    severity        TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    message         TEXT NOT NULL,
    opened_at       INTEGER NOT NULL,
    resolved_at     INTEGER,
    resolution      TEXT,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
) STRICT;
CREATE UNIQUE INDEX alerts_one_open ON alerts (device, condition) WHERE resolved_at IS NULL;
CREATE INDEX alerts_opened_at ON alerts (opened_at);
CREATE INDEX alerts_resolved_at ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

CREATE TABLE writer_progress (
    boot_id  TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
) STRICT;

CREATE VIEW standalone_devices AS
SELECT d.name, d.address AS ip, s.status, s.down_since, d.region, d.branch, d.kind
FROM devices d
LEFT JOIN device_state s ON s.device = d.name
WHERE d.removed_at IS NULL;
