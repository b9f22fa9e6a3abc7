-- Chats: one row per conversation, owned by one user (the token subject).
CREATE TABLE chats (
    id            uuid        PRIMARY KEY,
    owner         text        NOT NULL,
    title         text        NOT NULL,
    settings      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Number of messages; also the seq of the last one. Changed only under the row lock.
    message_count integer     NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- Keyset listing: WHERE owner = $1 AND (updated_at, id) < ($2, $3)
-- ORDER BY updated_at DESC, id DESC LIMIT n reads exactly n index entries.
CREATE INDEX chats_owner_updated_idx ON chats (owner, updated_at DESC, id DESC);

-- Title search for owners with many chats and rare matches: the owner and the title
-- trigrams in one GIN index, so the bitmap holds only that owner's matching chats.
CREATE INDEX chats_owner_title_trgm_idx ON chats USING gin (owner, title gin_trgm_ops);
