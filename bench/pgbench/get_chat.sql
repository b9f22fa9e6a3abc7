-- GET /api/v1/chats/{id}: ChatService::get -> find_chat (one statement).
\set n random(1, :chats)
SELECT "chats"."id", "chats"."owner", "chats"."title", "chats"."settings", "chats"."message_count", "chats"."created_at", "chats"."updated_at" FROM "chats" WHERE ("chats"."id" = bench_chat_id(:n)) LIMIT 1;
