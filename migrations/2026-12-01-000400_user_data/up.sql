-- A user's own data (issue 15): message full-text search, export, erasure, retention.

-- Each message's owner, copied from its chat when the message is inserted (a chat never
-- changes owner), so a user's messages can be searched and read newest first without
-- a join. The trigger fills it, so the statements inserting messages do not change.
ALTER TABLE messages ADD COLUMN owner text;
UPDATE messages m SET owner = c.owner FROM chats c WHERE c.id = m.chat_id;
ALTER TABLE messages ALTER COLUMN owner SET NOT NULL;

CREATE FUNCTION messages_set_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.owner INTO NEW.owner FROM chats c WHERE c.id = NEW.chat_id;
    RETURN NEW;
END;
$$;

CREATE TRIGGER messages_set_owner BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_set_owner();

-- The searchable words of a message: every run of characters that are not letters or
-- digits becomes a space first, so words are exactly the letter-and-digit runs (no
-- e-mail, URL or hyphenated compounds), then the text-search configuration (`simple`:
-- lowercase, no stemming, no stop words, so every language works) indexes them.
-- `search.text_config` rebuilds this column with another configuration at start-up.
ALTER TABLE messages ADD COLUMN content_tsv tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, regexp_replace(content, '[^[:alnum:]]+', ' ', 'g'))
) STORED;

-- Matches of a user (or of one chat) in one GIN index: owner and chat_id (btree_gin)
-- beside the words, so the bitmap holds only that user's (chat's) matching messages.
CREATE INDEX messages_search_idx ON messages USING gin (owner, chat_id, content_tsv);

-- A user's messages newest first: the search's recent window.
CREATE INDEX messages_owner_created_idx ON messages (owner, created_at DESC, id DESC);

-- Export reads a user's chats by id, in pages.
CREATE INDEX chats_owner_id_idx ON chats (owner, id);

-- Retention deletes the chats idle the longest first.
CREATE INDEX chats_updated_idx ON chats (updated_at, id);

-- Users being erased: written when the erasure starts, renewed by every batch, deleted
-- by the final step. A request not renewed for a minute is resumed by any replica.
CREATE TABLE erasure_requests (
    user_id      text        PRIMARY KEY,
    requested_at timestamptz NOT NULL,
    renewed_at   timestamptz NOT NULL
);

-- Erasure removes a user's outbox events: the payload is the serde JSON of the event,
-- which names its user.
CREATE INDEX outbox_user_idx ON outbox ((payload ->> 'userId'));
