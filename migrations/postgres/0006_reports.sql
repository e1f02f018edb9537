-- Issue #16 (reports): what availability reports need to tell monitored time from
-- unmonitored time, exactly.
--
-- runs: one row per boot of the appliance, written by the store writer (a `run` record
-- at start, every 30 s, and at a clean stop). The appliance watched from started_at to
-- last_seen_at; after the last heartbeat of a run that crashed nobody knows, so that
-- time (at most one heartbeat period) is unmonitored. stopped_at is set by a clean stop.
-- History from before this migration has no runs: reports call it unmonitored.
CREATE TABLE runs (
    boot_id      text PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    stopped_at   timestamptz,
    CHECK (last_seen_at >= started_at)
);
CREATE INDEX runs_last_seen_at ON runs (last_seen_at);

-- device_presence: each span a device was in the inventory. devices keeps only the first
-- time it was seen and the last removal, which loses the gap of a device removed and
-- added back. At most one open span per device; the existing rows become one span each.
CREATE TABLE device_presence (
    device     text NOT NULL REFERENCES devices (name),
    added_at   timestamptz NOT NULL,
    removed_at timestamptz,
    PRIMARY KEY (device, added_at)
);
CREATE UNIQUE INDEX device_presence_open ON device_presence (device) WHERE removed_at IS NULL;
INSERT INTO device_presence (device, added_at, removed_at)
SELECT name, first_seen_at, removed_at FROM devices;
