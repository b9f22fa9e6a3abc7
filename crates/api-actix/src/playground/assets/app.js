// The playground: chats, models, streamed sends, stop, regenerate, edit-and-resend,
// branches and resume, over the public API only (see api.js). Features of the
// conversation-tree API (`parentId`, `branch`, `activeLeafId`) are used when the
// service's answers carry them; resume uses `GET /messages/{id}/stream` when the
// service answers it, and otherwise follows the reply with `GET /messages/{id}`.

import { Api, Problem, StreamCut } from "./api.js";
import * as view from "./view.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "playground.token";
const LIVE_KEY = (chatId) => `playground.live.${chatId}`;

const devToken = (document.querySelector('meta[name="playground-token"]') || {}).content || "";
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || devToken,
  models: [],
  chat: null,
  messages: [],
  editing: null,
  live: null, // {chatId, replyId, userId, text, lastEventId, controller}
  nextCursor: null,
};
const api = new Api(() => state.token);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function report(e) {
  if ((e && e.name === "AbortError") || leaving) return;
  console.error(e);
  view.showProblem(e instanceof Problem ? e : { title: "Error", detail: String((e && e.message) || e) });
}

/** Runs an action, showing its problem if it fails. */
const guarded = (f) => async (...args) => {
  try {
    view.clearProblem();
    return await f(...args);
  } catch (e) {
    report(e);
    return undefined;
  }
};

function tokenSubject(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).sub || null;
  } catch (_) {
    return null;
  }
}

function showToken() {
  $("token").value = state.token;
  const sub = state.token ? tokenSubject(state.token) : null;
  const how = state.token === devToken && devToken ? "development token" : "token";
  $("token-state").textContent = !state.token ? "no token" : sub ? `${how} · user ${sub}` : how;
}

// ---- chats -----------------------------------------------------------------

async function loadChats(more) {
  const q = $("search").value.trim();
  const cursor = more ? state.nextCursor : null;
  const page = q ? await api.searchChats(q, cursor) : await api.listChats(cursor);
  state.chats = more ? [...state.chats, ...page.items] : page.items;
  state.nextCursor = page.nextCursor;
  $("more-chats").hidden = !page.nextCursor;
  view.renderChats(state.chats, state.chat && state.chat.id, guarded(openChat));
}

async function loadModels() {
  state.models = (await api.models()).items || [];
}

function showChat() {
  const c = state.chat;
  $("chat").hidden = !c;
  $("empty").hidden = !!c;
  if (!c) return;
  $("chat-title").value = c.title;
  view.renderModels(state.models, c.settings.model);
  $("system-prompt").value = c.settings.systemPrompt || "";
  $("temperature").value = c.settings.temperature ?? "";
  $("max-tokens").value = c.settings.maxTokens ?? "";
  $("delete-chat").textContent = "Delete chat";
  delete $("delete-chat").dataset.armed;
}

// Opening chats quickly one after the other: only the last one opened is shown.
let opening = 0;

async function openChat(id) {
  const mine = ++opening;
  if (state.live && state.live.chatId !== id) detach();
  const chat = await api.getChat(id);
  if (mine !== opening) return;
  state.chat = chat;
  state.editing = null;
  history.replaceState(null, "", `#chat=${id}`);
  showChat();
  view.renderChats(state.chats || [], id, guarded(openChat));
  await loadMessages();
  if (mine !== opening) return;
  const last = state.messages[state.messages.length - 1];
  if (!state.live && last && last.role === "assistant" && last.status === "streaming") {
    resume(last).catch(report);
  }
}

async function loadMessages() {
  if (!state.chat) return;
  const chatId = state.chat.id;
  const messages = await api.messages(chatId);
  if (!state.chat || state.chat.id !== chatId) return; // another chat was opened meanwhile
  state.messages = messages;
  render();
}

function render() {
  view.renderMessages(state.messages, actions, state.editing);
  const mine = !!(state.live && state.chat && state.live.chatId === state.chat.id);
  $("stop").hidden = !mine;
  if (mine) paintLive();
}

function paintLive() {
  const live = state.live;
  const node = live && live.replyId ? view.contentOf(live.replyId) : view.contentOf("pending");
  if (node) node.textContent = live.text || "…";
}

async function createChat() {
  const title = $("new-title").value.trim();
  const chat = await api.createChat(title ? { title } : {});
  $("new-title").value = "";
  $("search").value = "";
  await loadChats();
  await openChat(chat.id);
  $("input").focus();
}

async function renameChat() {
  state.chat = await api.updateChat(state.chat.id, { title: $("chat-title").value });
  showChat();
  await loadChats();
}

async function pickModel() {
  const model = $("model").value || null;
  state.chat = await api.updateChat(state.chat.id, { settings: { ...state.chat.settings, model } });
  showChat();
}

/** The settings form as a request: empty fields are `null` (the default); numbers are
 * sent as typed, so the service's 422 names a bad one. */
async function saveSettings(ev) {
  if (ev) ev.preventDefault();
  const number = (v) => (v.trim() === "" ? null : Number.isNaN(Number(v)) ? v : Number(v));
  const settings = {
    ...state.chat.settings,
    systemPrompt: $("system-prompt").value === "" ? null : $("system-prompt").value,
    temperature: number($("temperature").value),
    maxTokens: number($("max-tokens").value),
  };
  state.chat = await api.updateChat(state.chat.id, { settings });
  showChat();
}

async function deleteChat() {
  const button = $("delete-chat");
  if (!button.dataset.armed) {
    button.dataset.armed = "1";
    button.textContent = "Click again to delete";
    return;
  }
  detach();
  await api.deleteChat(state.chat.id);
  state.chat = null;
  state.messages = [];
  history.replaceState(null, "", "#");
  showChat();
  await loadChats();
}

// ---- turns -----------------------------------------------------------------

function saveLive(live) {
  sessionStorage.setItem(
    LIVE_KEY(live.chatId),
    JSON.stringify({ replyId: live.replyId, lastEventId: live.lastEventId, text: live.text }),
  );
}

function detach() {
  if (state.live) state.live.controller.abort();
  state.live = null;
}

/** A placeholder for the reply being generated, until its id is known. */
function pending(userId) {
  return { id: "pending", role: "assistant", status: "streaming", content: "", model: null, parentId: userId };
}

/**
 * Runs a turn: `start(on, signal)` makes the request. `place(userMessage)` puts the
 * user message and the reply placeholder in the shown list when the stream opens.
 */
async function runTurn(start, place) {
  const chatId = state.chat.id;
  const live = { chatId, replyId: null, userId: null, text: "", lastEventId: null, controller: new AbortController() };
  const on = {
    message(m) {
      live.userId = m.id;
      if (state.live) detach();
      state.live = live;
      place(m);
      render();
    },
    delta(t) {
      live.text += t;
      saveLive(live);
      if (state.live === live) paintLive();
    },
    seen(id) {
      live.lastEventId = id;
      saveLive(live);
    },
  };
  try {
    await start(on, live.controller.signal);
  } catch (e) {
    if (e instanceof StreamCut && state.live === live) {
      // The connection dropped mid-reply: re-attach.
      const reply = await findStreamingReply(live);
      if (reply) return await resume(reply, live);
    }
    report(e);
  } finally {
    if (state.live === live) finish(live);
  }
  return undefined;
}

// Leaving the page (a reload) cuts the streams: what they received stays saved.
let leaving = false;
window.addEventListener("beforeunload", () => {
  leaving = true;
});
window.addEventListener("pagehide", () => {
  leaving = true;
});

function finish(live) {
  if (leaving) return;
  sessionStorage.removeItem(LIVE_KEY(live.chatId));
  if (state.live === live) state.live = null;
  if (state.chat && state.chat.id === live.chatId) {
    loadMessages().then(refreshChat).catch(report);
  }
}

async function refreshChat() {
  const id = state.chat && state.chat.id;
  if (!id) return;
  const chat = await api.getChat(id);
  if (state.chat && state.chat.id === id) state.chat = chat;
  await loadChats();
}

async function findStreamingReply(live) {
  const msgs = await api.messages(live.chatId);
  const streaming = msgs.filter((m) => m.role === "assistant" && m.status === "streaming");
  return streaming.find((m) => m.parentId && m.parentId === live.userId) || streaming[streaming.length - 1] || null;
}

/**
 * Re-attaches to a reply being generated: with `GET /messages/{id}/stream` and the
 * last event id this tab saw (kept in sessionStorage across a reload), else by
 * reading the message until it is no longer `streaming`.
 */
async function resume(reply, previous) {
  const chatId = reply.chatId;
  const live = previous || { chatId, userId: reply.parentId || null, text: "", lastEventId: null };
  live.replyId = reply.id;
  live.controller = new AbortController();
  if (!previous) {
    // What this tab had received before the reload, if it agrees with the stored text.
    const saved = JSON.parse(sessionStorage.getItem(LIVE_KEY(chatId)) || "null");
    const agrees = (a, b) => a.startsWith(b) || b.startsWith(a);
    live.saved = saved && saved.text && agrees(saved.text, reply.content || "") ? saved : null;
    if (live.saved && live.saved.lastEventId) {
      live.text = live.saved.text;
      live.lastEventId = live.saved.lastEventId;
    }
  }
  state.live = live;
  render();
  try {
    const on = {
      delta(t) {
        live.text += t;
        saveLive(live);
        if (state.live === live) paintLive();
      },
      seen(id) {
        live.lastEventId = id;
        saveLive(live);
      },
    };
    const done = await api.resume(reply.id, live.lastEventId, on, live.controller.signal);
    if (done === null) await follow(live);
  } catch (e) {
    report(e);
  } finally {
    if (state.live === live) finish(live);
  }
}

/** Without the stream route: the reply as stored, until it is done. */
async function follow(live) {
  if (!live.text && live.saved) live.text = live.saved.text;
  for (;;) {
    const m = await api.getMessage(live.replyId);
    if (state.live !== live) return;
    // Until the stored text catches up, keep what this tab had received.
    if (m.status !== "streaming" || m.content.length >= live.text.length) live.text = m.content;
    paintLive();
    if (m.status !== "streaming") return;
    await sleep(500);
  }
}

async function send(ev) {
  if (ev) ev.preventDefault();
  const content = $("input").value;
  if (!state.chat) return;
  await runTurn(
    (on, signal) => api.send(state.chat.id, { content }, on, signal),
    (m) => {
      // Stored: the text leaves the box (a refused send keeps it there).
      if ($("input").value === content) $("input").value = "";
      state.messages.push(m, pending(m.id));
    },
  );
}

async function stop() {
  const live = state.live;
  if (!live) return;
  const id = live.replyId || ((await findStreamingReply(live)) || {}).id;
  if (!id) throw new Problem({ title: "Nothing to stop", detail: "no reply is being generated" }, 0);
  await api.cancel(id);
}

const trees = () => state.messages.some((m) => m.id !== "pending" && ("parentId" in m || "branch" in m));

/** Keeps the shown list up to `id` (included), for a new branch below it. */
function cutAfter(id) {
  const i = state.messages.findIndex((m) => m.id === id);
  if (i >= 0) state.messages = state.messages.slice(0, i + 1);
}

async function regenerate(reply) {
  const branching = trees();
  await runTurn(
    (on, signal) => api.regenerate(reply.id, on, signal),
    (m) => {
      if (branching) cutAfter(m.id);
      state.messages.push(pending(m.id));
    },
  );
}

async function resend(message, content) {
  state.editing = null;
  if (trees()) {
    // A new user message beside the edited one (same parent), and its reply.
    await runTurn(
      (on, signal) => api.send(state.chat.id, { content, parentId: message.parentId ?? null }, on, signal),
      (m) => {
        const i = state.messages.findIndex((x) => x.id === message.id);
        if (i >= 0) state.messages = state.messages.slice(0, i);
        state.messages.push(m, pending(m.id));
      },
    );
    return;
  }
  // Without branches: edit the message in place, then regenerate the reply after it.
  await api.editMessage(message.id, content);
  const i = state.messages.findIndex((x) => x.id === message.id);
  const reply = state.messages.slice(i + 1).find((m) => m.role === "assistant");
  await loadMessages();
  if (reply) await regenerate(reply);
}

async function branch(id) {
  if (!id) return;
  state.chat = await api.updateChat(state.chat.id, { activeLeafId: id });
  await loadMessages();
}

async function removeMessage(m) {
  await api.deleteMessage(m.id);
  await loadMessages();
  await refreshChat();
}

async function fork(m) {
  const chat = await api.fork(state.chat.id, m.id);
  await loadChats();
  await openChat(chat.id);
}

async function searchMessages() {
  const q = $("message-search").value.trim();
  if (!q) {
    $("hits").replaceChildren();
    return;
  }
  const page = await api.searchMessages(q);
  view.renderHits(page.items, guarded(openChat));
}

async function exportAll() {
  const blob = await api.exportAll();
  const url = URL.createObjectURL(blob);
  const a = view.el("a", { href: url, download: "chat-service-export.ndjson" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const actions = {
  regenerate: guarded(regenerate),
  remove: guarded(removeMessage),
  fork: guarded(fork),
  // Fork is a conversation-tree route: offered when messages carry `parentId`.
  canFork: () => trees(),
  edit: (m) => {
    state.editing = m.id;
    render();
  },
  resend: guarded(resend),
  branch: guarded(branch),
  render: () => {
    state.editing = null;
    render();
  },
};

// ---- start -----------------------------------------------------------------

async function start() {
  showToken();
  if (!state.token) {
    view.showProblem({ title: "No token", detail: "paste a bearer token (JWT) above to use the API" });
    return;
  }
  await loadModels();
  await loadChats();
  const m = /^#chat=([0-9a-f-]+)$/.exec(location.hash);
  if (m) await openChat(m[1]);
}

$("token-use").addEventListener("click", () => {
  // An empty field means the development token again (when the page has one).
  state.token = $("token").value.trim() || devToken;
  if (state.token && state.token !== devToken) sessionStorage.setItem(TOKEN_KEY, state.token);
  else sessionStorage.removeItem(TOKEN_KEY);
  guarded(start)();
});
$("problem-close").addEventListener("click", view.clearProblem);
$("new-chat").addEventListener("click", guarded(createChat));
$("rename").addEventListener("click", guarded(renameChat));
$("model").addEventListener("change", guarded(pickModel));
$("delete-chat").addEventListener("click", guarded(deleteChat));
$("settings-form").addEventListener("submit", guarded(saveSettings));
$("composer").addEventListener("submit", guarded(send));
$("stop").addEventListener("click", guarded(stop));
$("more-chats").addEventListener("click", guarded(() => loadChats(true)));
$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) guarded(send)(ev);
});
$("export").addEventListener("click", guarded(exportAll));
let hitTimer = null;
$("message-search").addEventListener("input", () => {
  clearTimeout(hitTimer);
  hitTimer = setTimeout(guarded(searchMessages), 250);
});
let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(guarded(() => loadChats()), 250);
});

guarded(start)();
