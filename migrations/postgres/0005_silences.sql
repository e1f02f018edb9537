-- Issue #15 (access and actions): operators' ad-hoc silences, maintenance windows made
-- from the UI or the API beside the inventory's.
--
-- The id is made by the appliance (a silence exists, and covers its devices, before the
-- database has seen it: the database may be away). Each matcher set must equal the
-- device's region, branch, name or kind; at least one is set. The silence covers from
-- starts_at to ends_at, or to expired_at when an operator ended it early. Kept for the
-- reports (maintenance time is excluded from availability) and pruned by the retention
-- setting once ended that long ago.
CREATE TABLE silences (
    id          text PRIMARY KEY,
    region      text,
    branch      text,
    device      text,
    kind        text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    comment     text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expired_at  timestamptz,
    expired_by  text,
    CHECK (ends_at > starts_at),
    CHECK (num_nonnulls(region, branch, device, kind) > 0),
    CHECK ((expired_at IS NULL) = (expired_by IS NULL))
);
-- Start-up loads those not ended; pruning deletes by their end.
CREATE INDEX silences_ends_at ON silences (ends_at);
