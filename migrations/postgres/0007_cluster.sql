-- Issue #18 (cluster): members and the leases of the device shards (docs/cluster.md).
-- PostgreSQL only: a cluster shares one PostgreSQL; an appliance on SQLite is alone.
--
-- Expiry is decided by this database's clock (now()), never a member's. A shard is taken
-- with epoch + 1; every write of a device's shard checks owner and epoch in its own
-- transaction (fencing). The 1,024 rows exist from the start, free.
CREATE TABLE cluster_members (
    id           text PRIMARY KEY,
    url          text NOT NULL,
    heartbeat_at timestamptz NOT NULL
);
CREATE TABLE shard_leases (
    shard      smallint PRIMARY KEY CHECK (shard >= 0 AND shard < 1024),
    owner      text,
    epoch      bigint NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO shard_leases (shard) SELECT generate_series(0, 1023);
