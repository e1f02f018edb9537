-- Issue #15 (access and actions): the same table as the PostgreSQL migration 0005
-- (operators' ad-hoc silences); times are UTC microseconds like the rest.
CREATE TABLE silences (
    id          TEXT PRIMARY KEY,
    region      TEXT,
    branch      TEXT,
    device      TEXT,
    kind        TEXT,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    comment     TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expired_at  INTEGER,
    expired_by  TEXT,
    CHECK (ends_at > starts_at),
    CHECK (coalesce(region, branch, device, kind) IS NOT NULL),
    CHECK ((expired_at IS NULL) = (expired_by IS NULL))
) STRICT;
CREATE INDEX silences_ends_at ON silences (ends_at);
