-- Issue #18 (cluster): the outbox of the live event feed (docs/cluster.md, "Live events
-- over Redis Streams"). PostgreSQL only, like 0007: a cluster shares one PostgreSQL.
--
-- The writer inserts a commit's events (transitions, alert changes) in the same
-- transaction, so a rolled-back write never publishes and a committed one waits here
-- while Redis is away. Each member's relay publishes its own member's unsent rows in id
-- order, sets sent_at, and deletes sent rows after a few minutes.
CREATE TABLE cluster_outbox (
    id         bigserial PRIMARY KEY,
    event      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
-- What a relay reads: its member's unsent rows, by id. Small (rows leave it once sent).
CREATE INDEX cluster_outbox_unsent ON cluster_outbox ((event ->> 'member'), id)
    WHERE sent_at IS NULL;
