DROP INDEX outbox_dead_idx;
DROP INDEX outbox_pending_chat_idx;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_unpublished_idx ON outbox (position) WHERE published_at IS NULL;
CREATE INDEX outbox_unpublished_chat_idx ON outbox (chat_id, position) WHERE published_at IS NULL;
ALTER TABLE outbox
    DROP COLUMN dead_at,
    DROP COLUMN last_error,
    DROP COLUMN next_attempt_at;
