// A small client of the chat-service public API (`/api/v1`), as a reference for
// front-end code: bearer token, problem+json errors, Server-Sent Events read with
// fetch + ReadableStream (an EventSource cannot send the Authorization header), and
// re-attaching to a reply with `Last-Event-ID`.

/** An error answer (`application/problem+json`, RFC 9457). */
export class Problem extends Error {
  constructor(body, status, headers) {
    const p = body && typeof body === "object" ? body : {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.problem = p;
    this.status = p.status || status;
    this.title = p.title || (status ? `HTTP ${status}` : "Error");
    this.detail = p.detail || "";
    this.requestId = p.requestId || null;
    this.errors = Array.isArray(p.errors) ? p.errors : [];
    this.retryAfter = headers ? headers.get("retry-after") : null;
    this.link = headers ? headers.get("link") : null;
  }
}

/** The problem of a failed response (any body: a proxy may answer HTML). */
export async function problemOf(res) {
  let body = null;
  const type = res.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
  }
  if (!body) {
    body = { title: res.statusText || "Error", status: res.status, detail: `HTTP ${res.status}` };
  }
  return new Problem(body, res.status, res.headers);
}

/**
 * Reads a `text/event-stream` body, calling `onEvent({event, data, id})` per event
 * (`data` parsed as JSON; `id` the last event id seen, per the SSE rules).
 */
export async function readEvents(res, onEvent) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data = [];
  let lastId = null;
  const dispatch = () => {
    if (data.length) {
      let parsed;
      try {
        parsed = JSON.parse(data.join("\n"));
      } catch (_) {
        parsed = data.join("\n");
      }
      onEvent({ event, data: parsed, id: lastId });
    }
    event = "message";
    data = [];
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      let line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        dispatch();
        continue;
      }
      if (line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id" && !value.includes("\0")) lastId = value;
    }
  }
}

/** Thrown when a stream ends before its `reply` or `error` event. */
export class StreamCut extends Error {}

export class Api {
  /** `token()` gives the bearer token to send. */
  constructor(token) {
    this.token = token;
  }

  headers(extra = {}) {
    const h = { ...extra };
    const t = this.token();
    if (t) h.Authorization = `Bearer ${t}`;
    return h;
  }

  async fetch(method, path, { body, headers, signal } = {}) {
    const init = { method, headers: this.headers(headers), signal };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(`/api/v1${path}`, init);
    if (!res.ok) throw await problemOf(res);
    return res;
  }

  async json(method, path, opts) {
    const res = await this.fetch(method, path, opts);
    return res.status === 204 ? null : res.json();
  }

  listChats(cursor) {
    const q = new URLSearchParams({ limit: "50" });
    if (cursor) q.set("cursor", cursor);
    return this.json("GET", `/chats?${q}`);
  }

  searchChats(text, cursor) {
    const q = new URLSearchParams({ q: text, limit: "50" });
    if (cursor) q.set("cursor", cursor);
    return this.json("GET", `/chats/search?${q}`);
  }

  getChat(id) {
    return this.json("GET", `/chats/${id}`);
  }

  createChat(body) {
    return this.json("POST", "/chats", { body });
  }

  updateChat(id, body) {
    return this.json("PUT", `/chats/${id}`, { body });
  }

  deleteChat(id) {
    return this.json("DELETE", `/chats/${id}`);
  }

  models() {
    return this.json("GET", "/models");
  }

  /** Every message of the chat's branch (the active one, or the one through `leafId`). */
  async messages(chatId, leafId) {
    const items = [];
    let cursor = null;
    do {
      const q = new URLSearchParams({ chatId, limit: "100" });
      if (leafId) q.set("leafId", leafId);
      if (cursor) q.set("cursor", cursor);
      const page = await this.json("GET", `/messages?${q}`);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return items;
  }

  getMessage(id) {
    return this.json("GET", `/messages/${id}`);
  }

  editMessage(id, content) {
    return this.json("PUT", `/messages/${id}`, { body: { content } });
  }

  deleteMessage(id) {
    return this.json("DELETE", `/messages/${id}`);
  }

  /** Full-text search over the caller's messages: hits with the chat and a snippet. */
  searchMessages(text) {
    return this.json("GET", `/messages/search?${new URLSearchParams({ q: text, limit: "20" })}`);
  }

  /** A new chat holding a copy of the branch from the root to `messageId`. */
  fork(chatId, messageId) {
    return this.json("POST", `/chats/${chatId}/fork`, { body: { messageId } });
  }

  /** Everything the caller stored, as newline-delimited JSON (a Blob). */
  async exportAll() {
    const res = await this.fetch("GET", "/export");
    return res.blob();
  }

  cancel(id) {
    return this.json("POST", `/messages/${id}/cancel`);
  }

  /**
   * Sends (`{content, parentId?}`) and streams the turn: `on.message(user message)`,
   * `on.delta(text)`, then `on.reply(reply)`, and `on.seen(eventId)` after each event
   * with an SSE id; a failed generation (the
   * stream's `error` event) throws its Problem; a refused send throws before any event.
   */
  async send(chatId, body, on, signal) {
    const res = await this.fetch("POST", `/messages?chatId=${encodeURIComponent(chatId)}`, {
      body,
      headers: { Accept: "text/event-stream" },
      signal,
    });
    return turn(res, on);
  }

  /** Regenerates a reply, streamed as a send. */
  async regenerate(replyId, on, signal) {
    const res = await this.fetch("POST", `/messages/${replyId}/regenerate`, {
      headers: { Accept: "text/event-stream" },
      signal,
    });
    return turn(res, on);
  }

  /**
   * Re-attaches to a reply (`GET /messages/{id}/stream`) after `lastEventId`: the text
   * not yet received, the live deltas, then the reply. Returns `null` when the service
   * has no such route (it answers 404 while the message itself exists).
   */
  async resume(replyId, lastEventId, on, signal) {
    const headers = { Accept: "text/event-stream" };
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    let res;
    try {
      res = await this.fetch("GET", `/messages/${replyId}/stream`, { headers, signal });
    } catch (e) {
      if (e instanceof Problem && (e.status === 404 || e.status === 405)) {
        await this.getMessage(replyId); // throws if the message is gone
        return null;
      }
      throw e;
    }
    return turn(res, on);
  }
}

/** Reads a turn's event stream; resolves with the final reply. */
async function turn(res, on) {
  let final = null;
  let failure = null;
  await readEvents(res, ({ event, data, id }) => {
    if (event === "message") on.message && on.message(data);
    else if (event === "delta") on.delta && on.delta((data && data.content) || "");
    else if (event === "reply") final = data;
    else if (event === "error") failure = new Problem(data, data && data.status);
    if (id !== null && on.seen) on.seen(id);
  });
  if (failure) throw failure;
  if (!final) throw new StreamCut("the stream ended before the reply");
  on.reply && on.reply(final);
  return final;
}
