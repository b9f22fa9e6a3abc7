// A front end's flow against the client generated from docs/openapi.json
// (openapi-typescript types + openapi-fetch). It is only type-checked (`npm run check`):
// it must compile under `strict` with no casts, no `any` and no hand-written types.
//
// The send's 201 has two media types (JSON, or Server-Sent Events with
// `Accept: text/event-stream`). The client is created for the JSON media types, so
// `data` is the `TurnDto` and `error` the problem bodies; the event stream is read with
// `parseAs: "stream"` and its events are typed by the document's `TurnEvent`.

import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

type Json = "application/json" | "application/problem+json";
type Message = components["schemas"]["MessageDto"];
type TurnEvent = components["schemas"]["TurnEvent"];

const api = createClient<paths, Json>({
  baseUrl: "http://127.0.0.1:8080",
  headers: { Authorization: "Bearer <token>" },
});

function show(m: Message): string {
  const usage = m.usage ? `${m.usage.promptTokens}+${m.usage.completionTokens}` : "-";
  return `${m.seq} ${m.role} [${m.status}] ${m.model ?? "-"} ${usage}: ${m.content}`;
}

export async function flow(): Promise<string[]> {
  const log: string[] = [];

  // Create (the body may be left out; settings fields are nullable).
  const created = await api.POST("/api/v1/chats", {
    body: { title: "Trip to Lisbon", settings: { temperature: 0.7, maxTokens: null } },
  });
  if (created.error) {
    return [`${created.error.status} ${created.error.detail}`];
  }
  const chat = created.data;
  const model: string | null = chat.settings.model;
  log.push(`${chat.id} ${chat.title} ${model ?? "default model"}`);
  const bare = await api.POST("/api/v1/chats", {});
  if (bare.data) log.push(bare.data.title);

  // List and search: `limit` is a number, `q` is required, `nextCursor` is string | null.
  const page = await api.GET("/api/v1/chats", { params: { query: { limit: 10 } } });
  if (page.data) {
    const next: string | null = page.data.nextCursor;
    log.push(`${page.data.items.length} chats, more: ${next !== null}`);
    if (next !== null) {
      await api.GET("/api/v1/chats", { params: { query: { cursor: next } } });
    }
  }
  const found = await api.GET("/api/v1/chats/search", { params: { query: { q: "lisbon" } } });
  for (const c of found.data?.items ?? []) log.push(c.title);

  // Send (JSON): `data` is the TurnDto; a failed generation's problem carries the
  // stored message and the failed reply.
  const sent = await api.POST("/api/v1/messages", {
    params: { query: { chatId: chat.id }, header: { "Idempotency-Key": "send-1" } },
    body: { content: "What should I see?" },
  });
  let replyId: string | undefined;
  if (sent.data) {
    log.push(show(sent.data.message), show(sent.data.reply));
    replyId = sent.data.reply.id;
  } else if ("reply" in sent.error) {
    const failed: "complete" | "streaming" | "failed" | "cancelled" = sent.error.reply.status;
    log.push(`${sent.error.status}: reply ${failed}: ${sent.error.reply.error ?? ""}`);
    log.push(`kept: ${sent.error.message.content}`);
    replyId = sent.error.reply.id;
  } else {
    for (const e of sent.error.errors ?? []) log.push(`${e.field} ${e.message}`);
    log.push(`${sent.error.type} ${sent.error.requestId ?? ""}`);
  }

  // Send (SSE): the body as a stream; each event is a TurnEvent.
  const streamed = await api.POST("/api/v1/messages", {
    params: { query: { chatId: chat.id } },
    body: { content: "And eat?" },
    headers: { Accept: "text/event-stream" },
    parseAs: "stream",
  });
  const body: ReadableStream<Uint8Array> | null = streamed.data ?? null;
  if (body) log.push("streaming");
  const onEvent = (e: TurnEvent): string => {
    switch (e.event) {
      case "message":
      case "reply":
        return show(e.data);
      case "delta":
        return e.data.content;
      case "error":
        return `${e.data.detail}: ${e.data.reply.status}`;
    }
  };
  void onEvent;

  // Regenerate, read the history, delete.
  if (replyId !== undefined) {
    const again = await api.POST("/api/v1/messages/{id}/regenerate", {
      params: { path: { id: replyId } },
    });
    if (again.data) log.push(show(again.data.reply));
    else if ("reply" in again.error) log.push(again.error.reply.status);
  }
  const history = await api.GET("/api/v1/messages", {
    params: { query: { chatId: chat.id, limit: 100 } },
  });
  for (const m of history.data?.items ?? []) log.push(show(m));

  // Branches: a message's siblings ("‹ 2/3 ›"), the branch through the previous one,
  // selecting it, an edit-and-resend from a reply (`parentId`), a new root (`null`), a fork.
  const last = history.data?.items.at(-1);
  if (last !== undefined) {
    const b: { index: number; count: number; prevId: string | null; nextId: string | null } =
      last.branch;
    log.push(`${b.index}/${b.count}`);
    if (b.prevId !== null) {
      const other = await api.GET("/api/v1/messages", {
        params: { query: { chatId: chat.id, leafId: b.prevId } },
      });
      for (const m of other.data?.items ?? []) log.push(`${m.parentId ?? "root"} ${show(m)}`);
      const selected = await api.PUT("/api/v1/chats/{id}", {
        params: { path: { id: chat.id } },
        body: { activeLeafId: b.prevId },
      });
      const leaf: string | null = selected.data?.activeLeafId ?? null;
      log.push(`active: ${leaf ?? "none"}`);
    }
    if (last.parentId !== null) {
      await api.POST("/api/v1/messages", {
        params: { query: { chatId: chat.id } },
        body: { content: "Edited question", parentId: last.parentId },
      });
    }
    await api.POST("/api/v1/messages", {
      params: { query: { chatId: chat.id } },
      body: { content: "Start over", parentId: null },
    });
    const fork = await api.POST("/api/v1/chats/{id}/fork", {
      params: { path: { id: chat.id } },
      body: { messageId: last.id },
    });
    if (fork.data) log.push(`${fork.data.title}: ${fork.data.messageCount}`);
    else log.push(`${fork.error.status} ${fork.error.detail}`);
  }
  // What the caller spent, per model, this month so far (a quota refusal is a 429 problem).
  const spent = await api.GET("/api/v1/usage", {
    params: { query: { from: "2026-12-01", groupBy: "model" } },
  });
  if (spent.data) {
    for (const g of spent.data.items) log.push(`${g.key} ${g.purpose}: ${g.totalTokens} (${g.estimatedTokens} estimated)`);
    log.push(`total: ${spent.data.total.totalTokens}`);
  } else log.push(spent.error.type);
  const gone = await api.DELETE("/api/v1/chats/{id}", { params: { path: { id: chat.id } } });
  if (gone.error) log.push(gone.error.title);
  log.push(`deleted: ${gone.response.status === 204}`);
  return log;
}
