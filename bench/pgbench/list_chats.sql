-- GET /api/v1/chats?limit=20 as the heavy user: list_chats(limit + 1), one range scan
-- of chats_owner_updated_idx. The owner is bound (-D owner=heavy).
SELECT "chats"."id", "chats"."owner", "chats"."title", "chats"."settings", "chats"."message_count", "chats"."created_at", "chats"."updated_at" FROM "chats" WHERE ("chats"."owner" = :owner) ORDER BY "chats"."updated_at" DESC, "chats"."id" DESC LIMIT 21;
