-- Issue #12 (dependencies and maintenance), one migration for the three changes it needs
-- in the schema:
-- - a device whose parents are all down is `unreachable` (not `down`): its current
--   status may say so;
-- - a transition decided inside a maintenance window is marked as such;
-- - a latency/loss threshold raises a `degraded` alert.
-- Existing rows are kept; every old value is admitted by the new checks.

ALTER TABLE device_state DROP CONSTRAINT device_state_status_check;
ALTER TABLE device_state ADD CONSTRAINT device_state_status_check
    CHECK (status IN ('unknown', 'up', 'down', 'unreachable'));

ALTER TABLE transitions ADD COLUMN in_maintenance boolean NOT NULL DEFAULT false;

ALTER TABLE alerts DROP CONSTRAINT alerts_condition_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_condition_check
    CHECK (condition IN ('device_down', 'flapping', 'degraded'));
