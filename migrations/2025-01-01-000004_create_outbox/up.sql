-- The transactional outbox: events written in the same transaction as their change,
-- published later by a relay (claim with a lease, publish, mark published).
CREATE TABLE outbox (
    position     bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    chat_id      uuid        NOT NULL,
    event_type   text        NOT NULL,
    -- The serde JSON of the domain Event.
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    lease_owner  text,
    lease_until  timestamptz,
    attempts     integer     NOT NULL DEFAULT 0
);

-- Claiming: unpublished entries oldest first, and "is an earlier entry of this chat leased?".
CREATE INDEX outbox_unpublished_idx ON outbox (position) WHERE published_at IS NULL;
CREATE INDEX outbox_unpublished_chat_idx ON outbox (chat_id, position) WHERE published_at IS NULL;
-- Pruning published entries.
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Wake relays (LISTEN outbox) when events are committed; one notification per statement,
-- and PostgreSQL folds identical notifications of one transaction into one.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
