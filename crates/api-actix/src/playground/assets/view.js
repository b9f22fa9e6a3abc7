// DOM building for the playground. Every piece of text from the API (titles, message
// content, errors) goes in through `textContent` or an attribute value, never as HTML:
// a reply containing `<script>` or `<img onerror>` shows those characters.

/** An element with attributes (`on*` keys become listeners) and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

const $ = (id) => document.getElementById(id);

/** Shows a problem (or any error) in the banner at the top. */
export function showProblem(e) {
  const box = $("problem");
  const status = e && e.status ? String(e.status) : "";
  $("problem-title").textContent = (e && e.title) || "Error";
  $("problem-status").textContent = status;
  $("problem-status").hidden = !status;
  let detail = (e && (e.detail || e.message)) || "";
  if (e && e.errors && e.errors.length) {
    detail += ` (${e.errors.map((f) => `${f.field}: ${f.message}`).join("; ")})`;
  }
  $("problem-detail").textContent = detail;
  const extra = [];
  if (e && e.retryAfter) extra.push(`Retry-After: ${e.retryAfter} s`);
  if (e && e.status === 401) extra.push("paste a valid token above");
  if (e && e.requestId) extra.push(`request ${e.requestId}`);
  $("problem-extra").textContent = extra.join(" · ");
  box.dataset.status = status;
  box.hidden = false;
}

export function clearProblem() {
  $("problem").hidden = true;
}

/** The chat list. */
export function renderChats(chats, activeId, open) {
  const list = $("chats");
  list.replaceChildren(
    ...chats.map((c) =>
      el(
        "li",
        { class: c.id === activeId ? "active" : "" },
        el(
          "button",
          { type: "button", class: "chat-item", "data-id": c.id, onclick: () => open(c.id) },
          el("span", { class: "chat-title", text: c.title }),
          el("span", { class: "muted small", text: `${c.messageCount} messages` }),
        ),
      ),
    ),
  );
  if (!chats.length) list.append(el("li", { class: "muted", text: "No chats" }));
}

/** The model picker: the chat's model (or "default"), then every listed model. */
export function renderModels(models, current) {
  const select = $("model");
  const def = models.find((m) => m.default);
  select.replaceChildren(
    el("option", { value: "", text: def ? `default (${def.name})` : "default" }),
    ...models.map((m) => el("option", { value: m.name, text: `${m.name} · ${m.provider}` })),
  );
  if (current && !models.some((m) => m.name === current)) {
    select.append(el("option", { value: current, text: `${current} (no longer listed)` }));
  }
  select.value = current || "";
}

function branchNav(m, act) {
  const b = m.branch;
  if (!b || !(b.count > 1)) return null;
  return el(
    "span",
    { class: "branch", "aria-label": "Branches" },
    el("button", {
      type: "button",
      class: "prev",
      title: "Previous branch",
      disabled: !b.prevId,
      text: "‹",
      onclick: () => act.branch(b.prevId),
    }),
    el("span", { class: "pos", text: `${b.index}/${b.count}` }),
    el("button", {
      type: "button",
      class: "next",
      title: "Next branch",
      disabled: !b.nextId,
      text: "›",
      onclick: () => act.branch(b.nextId),
    }),
  );
}

function editor(m, act) {
  const area = el("textarea", { class: "edit-input", rows: 3 });
  area.value = m.content;
  const form = el(
    "form",
    {
      class: "edit",
      onsubmit: (ev) => {
        ev.preventDefault();
        act.resend(m, area.value);
      },
    },
    area,
    el(
      "div",
      { class: "actions" },
      el("button", { type: "submit", class: "resend", text: "Send edited" }),
      el("button", { type: "button", class: "link", text: "Cancel", onclick: () => act.render() }),
    ),
  );
  setTimeout(() => area.focus(), 0);
  return form;
}

/** One message; `act` has the actions (regenerate, edit, resend, branch, render). */
export function renderMessage(m, act, editing) {
  const who = m.role === "user" ? "you" : m.role;
  const meta = el(
    "div",
    { class: "meta" },
    el("span", { class: "role", text: who }),
    m.model ? el("span", { class: "muted small", text: m.model }) : null,
    m.usage
      ? el("span", {
          class: "muted small usage",
          title: "prompt + completion tokens",
          text: `${m.usage.promptTokens}+${m.usage.completionTokens} tokens`,
        })
      : null,
    m.status !== "complete" ? el("span", { class: `badge status ${m.status}`, text: m.status }) : null,
    branchNav(m, act),
  );
  const body = editing
    ? editor(m, act)
    : el("div", { class: "content", text: m.content || (m.status === "streaming" ? "…" : "") });
  const actions = el("div", { class: "msg-actions" });
  if (!editing && m.role === "user") {
    actions.append(el("button", { type: "button", class: "link edit", text: "Edit", onclick: () => act.edit(m) }));
  }
  if (m.role === "assistant" && m.status !== "streaming") {
    actions.append(
      el("button", { type: "button", class: "link regenerate", text: "Regenerate", onclick: () => act.regenerate(m) }),
    );
    if (act.canFork()) {
      actions.append(el("button", { type: "button", class: "link fork", text: "Fork", onclick: () => act.fork(m) }));
    }
  }
  if (!editing && m.status !== "streaming" && m.id !== "pending") {
    actions.append(el("button", { type: "button", class: "link delete", text: "Delete", onclick: () => act.remove(m) }));
  }
  return el(
    "li",
    { class: `msg ${m.role} ${m.status}`, "data-id": m.id },
    meta,
    body,
    m.error ? el("div", { class: "error small", text: m.error }) : null,
    actions,
  );
}

/** The messages of the branch shown; returns the content node of `liveId`'s message. */
export function renderMessages(messages, act, editingId) {
  const list = $("messages");
  list.replaceChildren(...messages.map((m) => renderMessage(m, act, m.id === editingId)));
  list.scrollTop = list.scrollHeight;
}

/** The content node of a message, to append streamed text to. */
export function contentOf(id) {
  const li = document.querySelector(`#messages li[data-id="${CSS.escape(id)}"]`);
  return li ? li.querySelector(".content") : null;
}

/** Message search hits: the chat's title and the snippet, its matches in `<mark>`. */
export function renderHits(hits, open) {
  const list = document.getElementById("hits");
  list.replaceChildren(
    ...hits.map((h) => {
      const chars = Array.from(h.snippet.text); // offsets count code points
      const parts = [];
      let at = 0;
      for (const { start, end } of h.snippet.matches) {
        if (start < at) continue;
        parts.push(chars.slice(at, start).join(""), el("mark", { text: chars.slice(start, end).join("") }));
        at = end;
      }
      parts.push(chars.slice(at).join(""));
      return el(
        "li",
        {},
        el(
          "button",
          { type: "button", class: "hit", onclick: () => open(h.chat.id) },
          el("span", { class: "chat-title small", text: h.chat.title }),
          el("span", { class: "snippet" }, ...parts),
        ),
      );
    }),
  );
  if (!hits.length) list.append(el("li", { class: "muted small", text: "No message matches" }));
}
