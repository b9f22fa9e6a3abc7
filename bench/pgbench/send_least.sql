-- The least SQL a durable send needs (DESIGN.md §6), the ceiling the send level is judged
-- against: two transactions, each one chat-row UPDATE, one message write and one outbox
-- INSERT, run prepared (-M prepared). Transaction 1 stores the user's message; the
-- provider call would sit between the two (the fake provider has zero latency, so it is
-- left out); transaction 2 stores the finished reply. Each client works on its own 8
-- chats of user pgb (-D base offsets them per run), as in send.sql. The payloads are the
-- size of the service's real events.
\set n 2000001 + :base + :client_id * 8 + random(0, 7)
SELECT bench_chat_id(:n) AS chat \gset
BEGIN;
UPDATE chats SET message_count = message_count + 2, updated_at = GREATEST(updated_at, now()) WHERE id = :chat RETURNING message_count AS cnt \gset
\set s1 :cnt - 1
INSERT INTO messages (id, chat_id, seq, role, content, status, created_at, updated_at) VALUES (gen_random_uuid(), :chat, :s1, 'user', 'Tell me something about benchmarks', 'complete', now(), now());
INSERT INTO outbox (event_id, chat_id, event_type, payload) VALUES (gen_random_uuid(), :chat, 'message.created', '{"id": "01a20160-d5f3-7427-8958-33e0f96e2ad3", "data": {"id": "01a20160-d5f3-7427-8958-33de6888dba1", "seq": 1, "role": "user", "error": null, "model": null, "usage": null, "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "status": "complete", "content": "Tell me something about benchmarks", "createdAt": "2026-11-22T03:50:53.171512Z", "updatedAt": "2026-11-22T03:50:53.171512Z"}, "kind": "messageCreated", "time": "2026-11-22T03:50:53.171512Z", "user": "bench-w0", "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "requestId": "01a20160-d5e2-7252-a1cb-f84377085f93"}');
COMMIT;
BEGIN;
UPDATE chats SET updated_at = GREATEST(updated_at, now()) WHERE id = :chat;
INSERT INTO messages (id, chat_id, seq, role, content, status, model, prompt_tokens, completion_tokens, created_at, updated_at) VALUES (gen_random_uuid(), :chat, :cnt, 'assistant', 'Tell me something about benchmarks Tell me something about benchmarks Tell me something about benchmarks Tell', 'complete', 'gpt-4o-mini', 5, 16, now(), now());
INSERT INTO outbox (event_id, chat_id, event_type, payload) VALUES (gen_random_uuid(), :chat, 'message.completed', '{"id": "01a20160-d5f9-7093-94ef-72017a4a4743", "data": {"message": {"id": "01a20160-d5f3-7427-8958-33df12086c9d", "seq": 2, "role": "assistant", "error": null, "model": "gpt-4o-mini", "usage": {"promptTokens": 5, "completionTokens": 16}, "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "status": "complete", "content": "Tell me something about benchmarks Tell me something about benchmarks Tell me something about benchmarks Tell", "createdAt": "2026-11-22T03:50:53.171522Z", "updatedAt": "2026-11-22T03:50:53.177149Z"}, "latencyMs": 5}, "kind": "messageCompleted", "time": "2026-11-22T03:50:53.177149Z", "user": "bench-w0", "chatId": "01a20160-d5e2-7252-a1cb-f8429e1698dd", "requestId": "01a20160-d5e2-7252-a1cb-f84377085f93"}');
COMMIT;
