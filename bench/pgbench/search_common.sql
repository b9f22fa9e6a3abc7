-- GET /api/v1/chats/search?q=lisbon&limit=20 as the heavy user: search_chats(limit + 1) in one
-- read-only repeatable-read transaction: the window boundary, the window filtered in
-- index order, then (when the window held fewer than 21 matches) the trigram index.
-- Owner and pattern are bound (-D owner=heavy -D pcommon=%…%), as the service binds them.
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT "chats"."updated_at" AS b_at, "chats"."id" AS b_id FROM "chats" WHERE ("chats"."owner" = :owner) ORDER BY "chats"."updated_at" DESC, "chats"."id" DESC LIMIT 1 OFFSET 999 \gset
SELECT "chats"."id", "chats"."owner", "chats"."title", "chats"."settings", "chats"."message_count", "chats"."created_at", "chats"."updated_at" FROM "chats" WHERE ((("chats"."owner" = :owner) AND ("chats"."title" ILIKE :pcommon)) AND ((updated_at, id) >= (:b_at::timestamptz, :b_id::uuid))) ORDER BY "chats"."updated_at" DESC, "chats"."id" DESC LIMIT 21;
COMMIT;
