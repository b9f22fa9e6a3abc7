-- POST /api/v1/messages (a send, JSON or streamed): the statements MessageService::send
-- and Generation::run issue, in order, each client on its own 8 chats of user pgb
-- (-D base offsets them per run). The provider call sits between the third and the
-- fourth step; the fake provider has zero latency, so it is left out here.
-- Values the service binds as parameters are pgbench variables too (`-D st=streaming`:
-- a bound status keeps the generic plan off the partial index, as in the service).
-- Differences from the service, all in pgbench's favour or neutral: ids come from
-- gen_random_uuid(), timestamps from now(), and the reply is finished by its
-- (chat_id, seq) key rather than its id (both unique index lookups).
\set n 2000001 + :base + :client_id * 8 + random(0, 7)
SELECT bench_chat_id(:n) AS chat \gset
-- 1. owned_chat: find_chat
SELECT "chats"."id", "chats"."owner", "chats"."title", "chats"."settings", "chats"."message_count", "chats"."created_at", "chats"."updated_at" FROM "chats" WHERE ("chats"."id" = :chat) LIMIT 1;
-- 2. reap_stale: streaming_messages
SELECT "messages"."id", "messages"."chat_id", "messages"."seq", "messages"."role", "messages"."content", "messages"."status", "messages"."model", "messages"."prompt_tokens", "messages"."completion_tokens", "messages"."error", "messages"."created_at", "messages"."updated_at" FROM "messages" WHERE (("messages"."chat_id" = :chat) AND ("messages"."status" = :st)) ORDER BY "messages"."seq" ASC;
-- 3. start_turn: lock the chat, busy check, both messages, count, two events
BEGIN;
SELECT "chats"."message_count" AS cnt FROM "chats" WHERE ("chats"."id" = :chat) LIMIT 1 FOR UPDATE \gset
SELECT EXISTS (SELECT "messages"."id", "messages"."chat_id", "messages"."seq", "messages"."role", "messages"."content", "messages"."status", "messages"."model", "messages"."prompt_tokens", "messages"."completion_tokens", "messages"."error", "messages"."created_at", "messages"."updated_at" FROM "messages" WHERE ((("messages"."chat_id" = :chat) AND ("messages"."status" = :st)) AND ("messages"."updated_at" >= now() - interval '600 seconds')));
\set s1 :cnt + 1
\set s2 :cnt + 2
INSERT INTO "messages" ("id", "chat_id", "seq", "role", "content", "status", "model", "prompt_tokens", "completion_tokens", "error", "created_at", "updated_at") VALUES (gen_random_uuid(), :chat, :s1, 'user', 'Tell me something about benchmarks', 'complete', DEFAULT, DEFAULT, DEFAULT, DEFAULT, now(), now()), (gen_random_uuid(), :chat, :s2, 'assistant', '', 'streaming', 'gpt-4o-mini', DEFAULT, DEFAULT, DEFAULT, now(), now());
UPDATE "chats" SET "message_count" = :s2, "updated_at" = GREATEST(updated_at, now()) WHERE ("chats"."id" = :chat);
INSERT INTO "outbox" ("event_id", "chat_id", "event_type", "payload") VALUES (gen_random_uuid(), :chat, 'message.created', '{"id": "01a20160-d5f3-7427-8958-33e0f96e2ad3", "data": {"id": "01a20160-d5f3-7427-8958-33de6888dba1", "seq": 1, "role": "user", "error": null, "model": null, "usage": null, "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "status": "complete", "content": "Tell me something about benchmarks", "createdAt": "2026-11-22T03:50:53.171512Z", "updatedAt": "2026-11-22T03:50:53.171512Z"}, "kind": "messageCreated", "time": "2026-11-22T03:50:53.171512Z", "user": "bench-w0", "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "requestId": "01a20160-d5e2-7252-a1cb-f84377085f93"}'), (gen_random_uuid(), :chat, 'message.created', '{"id": "01a20160-d5f3-7427-8958-33e0f96e2ad4", "data": {"id": "01a20160-d5f3-7427-8958-33df12086c9d", "seq": 2, "role": "assistant", "error": null, "model": "gpt-4o-mini", "usage": null, "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "status": "streaming", "content": "", "createdAt": "2026-11-22T03:50:53.171522Z", "updatedAt": "2026-11-22T03:50:53.171522Z"}, "kind": "messageCreated", "time": "2026-11-22T03:50:53.171522Z", "user": "bench-w0", "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "requestId": "01a20160-d5e2-7252-a1cb-f84377085f93"}');
COMMIT;
-- 4. the history for the prompt: recent_messages(chat, seq, 200)
SELECT "messages"."id", "messages"."chat_id", "messages"."seq", "messages"."role", "messages"."content", "messages"."status", "messages"."model", "messages"."prompt_tokens", "messages"."completion_tokens", "messages"."error", "messages"."created_at", "messages"."updated_at" FROM "messages" WHERE (("messages"."chat_id" = :chat) AND ("messages"."seq" < :s1)) ORDER BY "messages"."seq" DESC LIMIT 200;
-- 5. finish_reply: lock the chat, store the reply if still streaming, touch, one event
BEGIN;
SELECT "chats"."message_count" FROM "chats" WHERE ("chats"."id" = :chat) LIMIT 1 FOR UPDATE;
UPDATE "messages" SET "content" = 'Tell me something about benchmarks Tell me something about benchmarks Tell me something about benchmarks Tell', "status" = 'complete', "model" = 'gpt-4o-mini', "prompt_tokens" = 5, "completion_tokens" = 16, "error" = NULL, "updated_at" = now() WHERE (("messages"."chat_id" = :chat) AND ("messages"."seq" = :s2) AND ("messages"."status" = :st));
UPDATE "chats" SET "updated_at" = GREATEST(updated_at, now()) WHERE ("chats"."id" = :chat);
INSERT INTO "outbox" ("event_id", "chat_id", "event_type", "payload") VALUES (gen_random_uuid(), :chat, 'message.completed', '{"id": "01a20160-d5f9-7093-94ef-72017a4a4743", "data": {"message": {"id": "01a20160-d5f3-7427-8958-33df12086c9d", "seq": 2, "role": "assistant", "error": null, "model": "gpt-4o-mini", "usage": {"promptTokens": 5, "completionTokens": 16}, "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "status": "complete", "content": "Tell me something about benchmarks Tell me something about benchmarks Tell me something about benchmarks Tell", "createdAt": "2026-11-22T03:50:53.171522Z", "updatedAt": "2026-11-22T03:50:53.177149Z"}, "latencyMs": 5}, "kind": "messageCompleted", "time": "2026-11-22T03:50:53.177149Z", "user": "bench-w0", "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "requestId": "01a20160-d5e2-7252-a1cb-f84377085f93"}');
COMMIT;
