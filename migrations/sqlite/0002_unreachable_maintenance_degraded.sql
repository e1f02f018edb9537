-- Issue #12 (dependencies and maintenance): the same three changes as the PostgreSQL
-- migration 0002:
-- - `device_state.status` admits 'unreachable';
-- - `transitions.in_maintenance` (0 or 1, default 0);
-- - `alerts.condition` admits 'degraded'.
--
-- SQLite cannot alter a CHECK constraint, so `device_state` and `alerts` are rebuilt the
-- way its documentation prescribes (create the new table, copy, drop the old, rename),
-- keeping every row. sqlx runs the migration in one transaction: it lands whole or not at
-- all. The view over `device_state` is dropped first and created again at the end,
-- because renaming a table checks every view of the schema. Nothing references
-- `device_state` or `alerts` by a foreign key, so dropping them deletes nothing else.

DROP VIEW standalone_devices;

CREATE TABLE device_state_new (
    device        TEXT PRIMARY KEY REFERENCES devices (name),
    status        TEXT NOT NULL CHECK (status IN ('unknown', 'up', 'down', 'unreachable')),
    down_since    INTEGER,
    changed_at    INTEGER NOT NULL,
    state_version INTEGER NOT NULL
) STRICT;
INSERT INTO device_state_new (device, status, down_since, changed_at, state_version)
SELECT device, status, down_since, changed_at, state_version FROM device_state;
DROP TABLE device_state;
ALTER TABLE device_state_new RENAME TO device_state;

ALTER TABLE transitions ADD COLUMN in_maintenance INTEGER NOT NULL DEFAULT 0
    CHECK (in_maintenance IN (0, 1));

CREATE TABLE alerts_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    device          TEXT NOT NULL REFERENCES devices (name),
    condition       TEXT NOT NULL CHECK (condition IN ('device_down', 'flapping', 'degraded')),
    severity        TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    message         TEXT NOT NULL,
    opened_at       INTEGER NOT NULL,
    resolved_at     INTEGER,
    resolution      TEXT,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
) STRICT;
INSERT INTO alerts_new (id, device, condition, severity, message, opened_at, resolved_at,
                        resolution, acknowledged_at, acknowledged_by)
SELECT id, device, condition, severity, message, opened_at, resolved_at, resolution,
       acknowledged_at, acknowledged_by
FROM alerts;
-- Alert ids name alerts in the live feed: a pruned alert's id must not be handed out
-- again, so the new table continues the old one's sequence, not its highest row.
DELETE FROM sqlite_sequence WHERE name = 'alerts_new';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'alerts_new', seq FROM sqlite_sequence WHERE name = 'alerts';
DROP TABLE alerts;
ALTER TABLE alerts_new RENAME TO alerts;
CREATE UNIQUE INDEX alerts_one_open ON alerts (device, condition) WHERE resolved_at IS NULL;
CREATE INDEX alerts_opened_at ON alerts (opened_at);
CREATE INDEX alerts_resolved_at ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

CREATE VIEW standalone_devices AS
SELECT d.name, d.address AS ip, s.status, s.down_since, d.region, d.branch, d.kind
FROM devices d
LEFT JOIN device_state s ON s.device = d.name
WHERE d.removed_at IS NULL;
