-- The word index is derived from `messages.content_tsv`: nothing is lost.
DROP TRIGGER messages_terms_follow_edit ON messages;
DROP TRIGGER messages_terms_follow ON messages;
DROP FUNCTION messages_terms_follow();
DROP TABLE message_terms;
