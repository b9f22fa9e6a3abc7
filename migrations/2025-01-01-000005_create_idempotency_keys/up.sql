-- Idempotent sends: a retry with the same Idempotency-Key gets the turn the first send
-- started. Written in the same transaction as the turn; kept 24 hours.
CREATE TABLE idempotency_keys (
    user_id     text        NOT NULL,
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    chat_id     uuid        NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    message_id  uuid        NOT NULL,
    reply_id    uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_chat_id ON idempotency_keys (chat_id);
