-- GET /api/v1/messages?chatId=…&limit=20 on a chat of 40 messages: owned_chat
-- (find_chat) then list_messages(limit + 1).
\set k random(0, :mchats - 1)
\set n 1 + :k * 1000
SELECT "chats"."id", "chats"."owner", "chats"."title", "chats"."settings", "chats"."message_count", "chats"."created_at", "chats"."updated_at" FROM "chats" WHERE ("chats"."id" = bench_chat_id(:n)) LIMIT 1;
SELECT "messages"."id", "messages"."chat_id", "messages"."seq", "messages"."role", "messages"."content", "messages"."status", "messages"."model", "messages"."prompt_tokens", "messages"."completion_tokens", "messages"."error", "messages"."created_at", "messages"."updated_at" FROM "messages" WHERE (("messages"."chat_id" = bench_chat_id(:n)) AND ("messages"."seq" > 0)) ORDER BY "messages"."seq" ASC LIMIT 21;
