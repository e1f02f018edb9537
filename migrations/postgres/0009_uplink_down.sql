-- Issue #19 (ISP uplinks): `alerts.condition` admits 'uplink_down', the warning of a
-- router one of whose ISP lines went from up to down.
ALTER TABLE alerts DROP CONSTRAINT alerts_condition_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_condition_check
    CHECK (condition IN ('device_down', 'flapping', 'degraded', 'uplink_down'));
