-- Issue #13 (notifications): the outbox and what the senders made of it.
--
-- notify_outbox: one row per alert change, written by the store writer in the same
-- transaction as the change itself (so a commit never loses its notification, and a
-- rolled-back one never sends one). It names the alert, not a receiver: routing needs
-- the inventory's labels, and is decided by the sender engine as it reads the rows.
CREATE TABLE notify_outbox (
    id         bigserial PRIMARY KEY,
    alert_id   bigint NOT NULL,
    change     text NOT NULL CHECK (change IN ('opened', 'resolved')),
    at         timestamptz NOT NULL,
    -- Since when the device had not answered (device_down: the outage's start, also for
    -- an alert held by maintenance that opened at the window's end).
    down_since timestamptz
);
CREATE INDEX notify_outbox_alert ON notify_outbox (alert_id);
CREATE INDEX notify_outbox_at ON notify_outbox (at);

-- Per receiver: every outbox row at or below outbox_id is in a message already, or was
-- not for this receiver. Rows above it that are in a message are found by
-- notify_message_notices (a group still waiting holds the cursor back).
CREATE TABLE notify_cursors (
    receiver  text PRIMARY KEY,
    outbox_id bigint NOT NULL
);

-- One message to one receiver. Its id is its idempotency key's; its body (JSON: group,
-- notices, summarised) is decided once, so a redelivery sends the same message.
CREATE TABLE notify_messages (
    id              bigserial PRIMARY KEY,
    receiver        text NOT NULL,
    created_at      timestamptz NOT NULL,
    -- The earliest alert change the message tells of (delivery latency is measured from it).
    since           timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'summarised')),
    attempts        bigint NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    last_error      text,
    done_at         timestamptz,
    notices         bigint NOT NULL,
    body            text NOT NULL
);
CREATE INDEX notify_messages_pending ON notify_messages (receiver, id) WHERE status = 'pending';
CREATE INDEX notify_messages_created ON notify_messages (created_at);

CREATE TABLE notify_message_notices (
    message_id bigint NOT NULL REFERENCES notify_messages (id) ON DELETE CASCADE,
    outbox_id  bigint NOT NULL,
    PRIMARY KEY (message_id, outbox_id)
);
CREATE INDEX notify_message_notices_outbox ON notify_message_notices (outbox_id);
