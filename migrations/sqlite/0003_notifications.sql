-- Issue #13 (notifications): the same tables as the PostgreSQL migration 0003 (see there
-- for what each means); times as UTC microseconds.
CREATE TABLE notify_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   INTEGER NOT NULL,
    change     TEXT NOT NULL CHECK (change IN ('opened', 'resolved')),
    at         INTEGER NOT NULL,
    down_since INTEGER
) STRICT;
CREATE INDEX notify_outbox_alert ON notify_outbox (alert_id);
CREATE INDEX notify_outbox_at ON notify_outbox (at);

CREATE TABLE notify_cursors (
    receiver  TEXT PRIMARY KEY,
    outbox_id INTEGER NOT NULL
) STRICT;

CREATE TABLE notify_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    since           INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'summarised')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    last_error      TEXT,
    done_at         INTEGER,
    notices         INTEGER NOT NULL,
    body            TEXT NOT NULL
) STRICT;
CREATE INDEX notify_messages_pending ON notify_messages (receiver, id) WHERE status = 'pending';
CREATE INDEX notify_messages_created ON notify_messages (created_at);

CREATE TABLE notify_message_notices (
    message_id INTEGER NOT NULL REFERENCES notify_messages (id) ON DELETE CASCADE,
    outbox_id  INTEGER NOT NULL,
    PRIMARY KEY (message_id, outbox_id)
) STRICT;
CREATE INDEX notify_message_notices_outbox ON notify_message_notices (outbox_id);
