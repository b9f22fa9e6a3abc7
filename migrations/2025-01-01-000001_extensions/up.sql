-- Extensions for chat title search: pg_trgm (trigram matching, so ILIKE '%…%' can use an
-- index) and btree_gin (so one GIN index can hold the owner next to the title trigrams).
-- Both are "trusted" extensions (PostgreSQL 13+): a database owner may create them.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;
