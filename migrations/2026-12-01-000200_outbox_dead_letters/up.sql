-- Per-entry retries and dead letters for the outbox. An entry whose publication fails
-- with a final error waits `next_attempt_at` before its next try (its chat's later
-- entries wait behind it); after a bounded number of attempts it is set aside
-- (`dead_at`), kept with its `last_error` until an operator retries it.
ALTER TABLE outbox
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN last_error      text,
    ADD COLUMN dead_at         timestamptz;

-- Claims and the backlog read pending entries only (neither published nor dead).
DROP INDEX outbox_unpublished_idx;
DROP INDEX outbox_unpublished_chat_idx;
CREATE INDEX outbox_pending_idx ON outbox (position)
    WHERE published_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_pending_chat_idx ON outbox (chat_id, position)
    WHERE published_at IS NULL AND dead_at IS NULL;
-- Listing, counting and reviving dead entries.
CREATE INDEX outbox_dead_idx ON outbox (position)
    WHERE dead_at IS NOT NULL AND published_at IS NULL;
