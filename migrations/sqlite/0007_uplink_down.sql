-- Issue #19 (ISP uplinks): `alerts.condition` admits 'uplink_down', as the PostgreSQL
-- migration 0009 does.
--
-- SQLite cannot alter a CHECK constraint, so `alerts` is rebuilt as migration 0002 did
-- (create, copy every row, continue the id sequence, drop, rename, indexes again), in
-- the one transaction sqlx runs a migration in. Nothing references `alerts` by a foreign
-- key, so dropping it deletes nothing else.

CREATE TABLE alerts_new (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    device               TEXT NOT NULL REFERENCES devices (name),
    condition            TEXT NOT NULL
        CHECK (condition IN ('device_down', 'flapping', 'degraded', 'uplink_down')),
    severity             TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    message              TEXT NOT NULL,
    opened_at            INTEGER NOT NULL,
    resolved_at          INTEGER,
    resolution           TEXT,
    acknowledged_at      INTEGER,
    acknowledged_by      TEXT,
    acknowledged_comment TEXT,
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
) STRICT;
INSERT INTO alerts_new (id, device, condition, severity, message, opened_at, resolved_at,
                        resolution, acknowledged_at, acknowledged_by, acknowledged_comment)
SELECT id, device, condition, severity, message, opened_at, resolved_at, resolution,
       acknowledged_at, acknowledged_by, acknowledged_comment
FROM alerts;
DELETE FROM sqlite_sequence WHERE name = 'alerts_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'alerts_new', seq FROM sqlite_sequence WHERE name = 'alerts';
DROP TABLE alerts;
ALTER TABLE alerts_new RENAME TO alerts;
CREATE UNIQUE INDEX alerts_one_open ON alerts (device, condition) WHERE resolved_at IS NULL;
CREATE INDEX alerts_opened_at ON alerts (opened_at);
CREATE INDEX alerts_resolved_at ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;
