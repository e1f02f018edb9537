-- Issue #15 (access and actions): acknowledgements and the audit log.
--
-- alerts.acknowledged_comment: what the operator said when acknowledging (the columns
-- acknowledged_at and acknowledged_by exist since 0001). All three are set together by
-- an acknowledgement and cleared together by an un-acknowledgement, and only while the
-- alert is open: an acknowledgement never outlives its alert (a re-opened outage is a
-- new alert, not acknowledged).
ALTER TABLE alerts ADD COLUMN acknowledged_comment text;

-- Every write someone made (login, ack, silence, probe now, reload): who, from where,
-- when and what. Written by the store writer like everything else; pruned by the
-- retention setting with the rest of the history.
CREATE TABLE audit (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    -- The user or token name ('anonymous' for nobody).
    username  text NOT NULL,
    -- How they proved it: anonymous, session, basic, token.
    via       text NOT NULL,
    address   text NOT NULL,
    action    text NOT NULL,
    target    text NOT NULL,
    detail    text NOT NULL
);
-- GET /api/v1/audit reads newest first by (at, id), optionally of one user or action;
-- pruning deletes by `at`.
CREATE INDEX audit_at ON audit (at, id);
CREATE INDEX audit_user_at ON audit (username, at, id);
CREATE INDEX audit_action_at ON audit (action, at, id);
