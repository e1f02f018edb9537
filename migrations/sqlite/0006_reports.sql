-- Issue #16 (reports): the same tables as the PostgreSQL migration 0006 (the appliance's
-- runs, and each span a device was in the inventory); times are UTC microseconds.
CREATE TABLE runs (
    boot_id      TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    stopped_at   INTEGER,
    CHECK (last_seen_at >= started_at)
) STRICT;
CREATE INDEX runs_last_seen_at ON runs (last_seen_at);

CREATE TABLE device_presence (
    device     TEXT NOT NULL REFERENCES devices (name),
    added_at   INTEGER NOT NULL,
    removed_at INTEGER,
    PRIMARY KEY (device, added_at)
) STRICT;
CREATE UNIQUE INDEX device_presence_open ON device_presence (device) WHERE removed_at IS NULL;
INSERT INTO device_presence (device, added_at, removed_at)
SELECT name, first_seen_at, removed_at FROM devices;
