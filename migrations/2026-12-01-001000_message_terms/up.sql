-- Message search's word index (issue 15, item 2): for each message, one row per
-- distinct lexeme of its `content_tsv`, keyed by owner and lexeme, newest first. A
-- search for words that must all occur reads, for its rarest word, that user's newest
-- postings in index order and checks the others' by key: a few hundred index entries
-- instead of scanning thousands of messages (a common word) or intersecting the GIN
-- index's owner entry (a rare one). `n` is the lexeme's number of positions in the
-- message: its share of the relevance. The trigger keeps it in step with `messages`
-- in the same transaction (no index outside the database to drift), and the rebuild
-- for another text-search configuration fills it again (`search_config.rs`).
CREATE TABLE message_terms (
    owner      text        NOT NULL,
    lexeme     text        NOT NULL,
    created_at timestamptz NOT NULL,
    message_id uuid        NOT NULL,
    n          integer     NOT NULL
);

-- After the row is written, so that `content_tsv` (generated) holds its value; on an
-- update only when the content changed (`content_tsv` follows it; a message's owner
-- and creation time never change). `content_tsv` is named in the body only, so that
-- the rebuild may drop and add it.
CREATE FUNCTION messages_terms_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM message_terms t
        WHERE t.owner = OLD.owner AND t.lexeme = ANY (tsvector_to_array(OLD.content_tsv))
          AND t.created_at = OLD.created_at AND t.message_id = OLD.id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO message_terms (owner, lexeme, created_at, message_id, n)
        SELECT NEW.owner, u.lexeme, NEW.created_at, NEW.id,
               coalesce(array_length(u.positions, 1), 0)
        FROM unnest(NEW.content_tsv) u;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER messages_terms_follow AFTER INSERT OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_terms_follow();
CREATE TRIGGER messages_terms_follow_edit AFTER UPDATE OF content ON messages
    FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content)
    EXECUTE FUNCTION messages_terms_follow();

-- The trigger first: its lock on `messages` holds writers off until this migration
-- commits, so that no message is written between the fill's snapshot and the trigger.
INSERT INTO message_terms (owner, lexeme, created_at, message_id, n)
SELECT m.owner, u.lexeme, m.created_at, m.id, coalesce(array_length(u.positions, 1), 0)
FROM messages m, unnest(m.content_tsv) u;

CREATE INDEX message_terms_idx ON message_terms (owner, lexeme, created_at DESC, message_id DESC)
    INCLUDE (n);
