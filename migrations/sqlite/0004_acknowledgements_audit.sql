-- Issue #15 (access and actions): the same changes as the PostgreSQL migration 0004.
--
-- alerts.acknowledged_comment: what the operator said when acknowledging (set and
-- cleared together with acknowledged_at and acknowledged_by, only while the alert is
-- open). audit: every write someone made; times are UTC microseconds like the rest.
ALTER TABLE alerts ADD COLUMN acknowledged_comment TEXT;

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    username  TEXT NOT NULL,
    via       TEXT NOT NULL,
    address   TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL
) STRICT;
CREATE INDEX audit_at ON audit (at, id);
CREATE INDEX audit_user_at ON audit (username, at, id);
CREATE INDEX audit_action_at ON audit (action, at, id);
