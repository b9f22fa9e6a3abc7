// The playground page (GET /) in a real browser: the system's headless Chromium driven
// by playwright-core. One screenshot per step under target/playground/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";
import { services, stopAll, shots, sleep, chromiumPath, fakeReply } from "./harness.mjs";

const WAIT = 30_000;
let browser;
let page;
let svc;
const pageErrors = [];

async function shot(name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

/** Polls `f` until it returns something truthy (at most `ms`). */
async function until(what, f, ms = WAIT) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(100);
  }
}

/** The last assistant message shown: id, classes (role, status) and text. */
function lastReply(p = page) {
  return p.evaluate(() => {
    const li = [...document.querySelectorAll("#messages li.msg.assistant")].pop();
    if (!li) return null;
    const content = li.querySelector(".content");
    return { id: li.dataset.id, cls: li.className, text: content ? content.textContent : "" };
  });
}

const has = (cls) => (r) => r && r.cls.split(" ").includes(cls);

/** The problem banner, once shown with this status. */
async function problemShown(status, p = page) {
  return until(`a ${status} problem`, () =>
    p.evaluate((want) => {
      const box = document.getElementById("problem");
      if (box.hidden || box.dataset.status !== String(want)) return null;
      return {
        title: document.getElementById("problem-title").textContent,
        detail: document.getElementById("problem-detail").textContent,
        extra: document.getElementById("problem-extra").textContent,
      };
    }, status),
  );
}

/** Sends `text` and waits for a reply other than the last one shown before, matching `pred`. */
async function sendForReply(text, pred, p = page) {
  const before = await lastReply(p);
  await sendText(text, p);
  return until(`the reply to ${text}`, async () => {
    const r = await lastReply(p);
    return r && r.id !== "pending" && (!before || r.id !== before.id) && pred(r) ? r : null;
  });
}

async function sendText(text, p = page) {
  await p.fill("#input", text);
  await p.click("#send");
}

/** Sends a message that stalls half-way and waits until its partial text is shown. */
async function sendStalling(words) {
  await sendText(`${words} [fault:stall-mid]`);
  return until("the partial reply", async () => {
    const r = await lastReply();
    return has("streaming")(r) && r.text.trim().length > 1 && r.text !== "…" ? r : null;
  });
}

/** A test step; on failure, a screenshot `FAILED-<n>.png` of the page as it was. */
let steps = 0;
function step(name, fn) {
  const n = String(++steps).padStart(2, "0");
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      if (page) await page.screenshot({ path: path.join(shots, `FAILED-${n}.png`) }).catch(() => {});
      throw e;
    }
  });
}

before(async () => {
  svc = await services();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    timeout: 60_000,
  });
  const context = await browser.newContext({ viewport: { width: 1180, height: 760 } });
  context.setDefaultTimeout(WAIT);
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(m.text());
  });
});

after(async () => {
  if (browser) await browser.close();
  stopAll();
});

step("the page opens with the development token filled in, under a strict CSP", async () => {
  const res = await page.goto(`${svc.base}/`);
  assert.equal(res.status(), 200);
  const h = res.headers();
  assert.match(h["content-security-policy"], /default-src 'none'/);
  assert.match(h["content-security-policy"], /script-src 'self'/);
  assert.doesNotMatch(h["content-security-policy"], /unsafe-inline|unsafe-eval/);
  assert.equal(h["x-content-type-options"], "nosniff");
  await until("the token state", async () => (await page.textContent("#token-state")).includes("user dev"));
  await page.waitForSelector("#empty:not([hidden])");
  await shot("01-open");
});

step("create a chat", async () => {
  await page.fill("#new-title", "Playground tour");
  await page.click("#new-chat");
  await page.waitForSelector("#chats .chat-item:has-text('Playground tour')");
  await page.waitForSelector("#chat:not([hidden])");
  assert.equal(await page.inputValue("#chat-title"), "Playground tour");
  await shot("02-created");
});

step("send: the reply streams in, then is stored complete", async () => {
  const text = "hello streaming world [fault:stall-midx1]";
  await sendText(text);
  await page.waitForSelector("#messages li.msg.user:has-text('hello streaming world')");
  const partial = await until("a partial reply", async () => {
    const r = await lastReply();
    return has("streaming")(r) && r.text.startsWith("hello") ? r : null;
  });
  assert.ok(partial.text.length < fakeReply(text).length, `partial: ${partial.text}`);
  assert.ok(await page.isVisible("#stop"), "Stop is offered while the reply streams");
  await shot("03-streaming");
  const done = await until("the complete reply", async () => {
    const r = await lastReply();
    return has("complete")(r) ? r : null;
  });
  assert.equal(done.text, fakeReply(text));
  assert.notEqual(done.id, "pending");
  assert.ok(await page.isHidden("#stop"));
  await shot("04-streamed");
});

step("regenerate: a new reply to the same message", async () => {
  const before = await lastReply();
  await page.click("#messages li.msg.assistant >> nth=-1 >> button.regenerate");
  const fresh = await until("the regenerated reply", async () => {
    const r = await lastReply();
    return has("complete")(r) && r.id !== before.id && r.id !== "pending" ? r : null;
  });
  assert.equal(fresh.text, before.text, "the fake LLM answers the same message the same way");
  await shot("05-regenerated");
});

step("edit and resend: the edited message gets a new reply", async () => {
  await page.click("#messages li.msg.user >> nth=0 >> button.edit");
  await page.fill("#messages .edit-input", "edited question please");
  await shot("06-editing");
  await page.click("#messages button.resend");
  await page.waitForSelector("#messages li.msg.user:has-text('edited question please')");
  const reply = await until("the reply to the edited message", async () => {
    const r = await lastReply();
    return has("complete")(r) && r.text === fakeReply("edited question please") ? r : null;
  });
  assert.ok(reply.id);
  await shot("07-resent");
});

step("stop a slow reply: its partial text is kept, cancelled", async () => {
  const partial = await sendStalling("please stop me now");
  await shot("08-before-stop");
  await page.click("#stop");
  const stopped = await until("the cancelled reply", async () => {
    const r = await lastReply();
    return has("cancelled")(r) && r.id !== "pending" ? r : null;
  });
  assert.ok(stopped.text.startsWith("please stop"), stopped.text);
  assert.ok(stopped.text.length < fakeReply("please stop me now").length);
  assert.ok(partial.text.startsWith("please"));
  await page.waitForSelector("#stop", { state: "hidden" });
  await shot("09-stopped");
});

step("reload in the middle of a reply: it re-attaches to the stream and completes, nothing doubled", async () => {
  const words = "resume after reload";
  await sendStalling(words);
  await shot("10-before-reload");
  // Every request the reloaded page makes to the resume route, with its Last-Event-ID.
  const resumes = [];
  const record = (req) => {
    const m = new URL(req.url()).pathname.match(/^\/api\/v1\/messages\/([^/]+)\/stream$/);
    if (m && req.method() === "GET") resumes.push({ id: m[1], lastEventId: req.headers()["last-event-id"] || null });
  };
  page.on("request", record);
  try {
    await page.reload();
    await page.waitForSelector("#chat:not([hidden])");
    const shown = await until("the reply after the reload", async () => {
      const r = await lastReply();
      return r && r.id !== "pending" && (has("streaming")(r) || has("complete")(r)) ? r : null;
    });
    if (has("streaming")(shown)) {
      // The text received before the reload is shown again at once, and only once.
      const again = await until("the partial text after the reload", async () => {
        const r = await lastReply();
        return r.text.startsWith("resume after") ? r : null;
      });
      assert.ok(fakeReply(words).startsWith(again.text), `a prefix of the reply, not doubled: ${again.text}`);
      await shot("11-reloaded-streaming");
    }
    const done = await until("the completed reply after the reload", async () => {
      const r = await lastReply();
      return has("complete")(r) ? r : null;
    });
    assert.equal(done.text, fakeReply(words), "the whole reply, each word once");
    assert.ok(resumes.length >= 1, "the reloaded page re-attached through GET /messages/{id}/stream");
    assert.equal(resumes[0].id, shown.id, "to the reply that was streaming");
    assert.equal(done.id, shown.id, "which is the reply completed");
    assert.ok(resumes[0].lastEventId, "with the last event id seen before the reload (Last-Event-ID)");
    await shot("12-resumed-complete");
  } finally {
    page.off("request", record);
  }
});

step("a reply is shown as text, never run as HTML (XSS)", async () => {
  await page.evaluate(() => {
    window.__xss = 0;
  });
  const payload = "<script>window.__xss=1</script> <img src=x onerror=window.__xss=2> <b>bold</b>";
  const done = await sendForReply(payload, has("complete"));
  assert.equal(done.text, fakeReply(payload));
  assert.ok(done.text.includes("<script>window.__xss=1</script>"));
  assert.ok(done.text.includes("<img src=x onerror=window.__xss=2>"));
  const injected = await page.evaluate(() => ({
    nodes: document.querySelectorAll("#messages script, #messages img, #messages b").length,
    flag: window.__xss,
  }));
  assert.deepEqual(injected, { nodes: 0, flag: 0 });
  await shot("13-xss-as-text");
});

step("problems are shown: 502 from the provider, 409 busy, 429, 401", async () => {
  await sendForReply("break please [fault:500]", has("failed"));
  const bad = await problemShown(502);
  assert.match(bad.title, /LLM provider failed/);
  await shot("14-problem-502");

  await sendStalling("keep busy");
  await sendText("one more while busy");
  const busy = await problemShown(409);
  assert.equal(await page.inputValue("#input"), "one more while busy", "a refused send keeps the text");
  assert.match(busy.extra, /Retry-After/);
  await shot("15-problem-409");
  await page.click("#stop");
  await until("the busy reply cancelled", async () => has("cancelled")(await lastReply()));

  const other = await browser.newPage();
  try {
    await other.goto(`${svc.limited}/`);
    await until("the token state", async () => (await other.textContent("#token-state")).includes("user dev"));
    await other.click("#new-chat");
    await other.waitForSelector("#chat:not([hidden])");
    await sendForReply("first", has("complete"), other);
    await sendText("second", other);
    const limited = await problemShown(429, other);
    assert.match(limited.extra, /Retry-After: \d+ s/);
    await other.screenshot({ path: path.join(shots, "16-problem-429.png") });
  } finally {
    await other.close();
  }

  await page.fill("#token", "not-a-token");
  await page.click("#token-use");
  await problemShown(401);
  await shot("17-problem-401");
  await page.fill("#token", "");
  await page.click("#token-use");
  await until("the token state", async () => (await page.textContent("#token-state")).includes("user dev"));
});

step("rename, title search, model picker and delete", async () => {
  await page.fill("#new-title", "Throwaway");
  await page.click("#new-chat");
  await page.waitForSelector("#chats .chat-item:has-text('Throwaway')");
  await until("the new chat opened", async () => (await page.inputValue("#chat-title")) === "Throwaway");
  await page.click("#chats .chat-item:has-text('Playground tour')");
  await until("the chat opened", async () => (await page.inputValue("#chat-title")) === "Playground tour");
  await page.fill("#chat-title", "Renamed tour");
  await page.click("#rename");
  await page.waitForSelector("#chats .chat-item:has-text('Renamed tour')");

  await page.fill("#search", "renamed");
  await until("the search result", async () => {
    const titles = await page.$$eval("#chats .chat-title", (ns) => ns.map((n) => n.textContent));
    return titles.length === 1 && titles[0] === "Renamed tour";
  });
  await shot("18-search");
  await page.fill("#search", "");
  await page.waitForSelector("#chats .chat-item:has-text('Throwaway')");

  const options = await page.$$eval("#model option", (os) => os.map((o) => o.value));
  assert.ok(options.includes("fake-llm"), options.join(","));
  await page.selectOption("#model", "fake-llm");
  await page.click("#chats .chat-item:has-text('Throwaway')");
  await page.click("#chats .chat-item:has-text('Renamed tour')");
  await until("the saved model", async () => (await page.inputValue("#model")) === "fake-llm");

  await page.click("#chats .chat-item:has-text('Throwaway')");
  await until("the chat opened", async () => (await page.inputValue("#chat-title")) === "Throwaway");
  await page.click("#delete-chat");
  await page.click("#delete-chat");
  await page.waitForSelector("#chats .chat-item:has-text('Throwaway')", { state: "detached" });
  await page.waitForSelector("#empty:not([hidden])");
  await page.click("#chats .chat-item:has-text('Renamed tour')");
  await page.waitForSelector("#messages li.msg");
  await shot("19-tour");
});

step("message search, delete a message, export", async () => {
  await page.fill("#message-search", "edited");
  const hits = await until("message search hits", async () => {
    const found = await page.$$eval("#hits .hit", (ns) =>
      ns.map((n) => ({ chat: n.querySelector(".chat-title").textContent, marks: [...n.querySelectorAll("mark")].map((m) => m.textContent) })),
    );
    return found.length ? found : null;
  });
  assert.equal(hits[0].chat, "Renamed tour");
  assert.ok(hits.every((h) => h.marks.some((m) => m.toLowerCase() === "edited")), JSON.stringify(hits));
  await shot("20-message-search");
  await page.click("#hits .hit >> nth=0");
  await until("the hit's chat", async () => (await page.inputValue("#chat-title")) === "Renamed tour");

  const count = () => page.$$eval("#messages li.msg", (ns) => ns.length);
  const before = await count();
  const last = await lastReply();
  await page.click("#messages li.msg >> nth=-1 >> button.delete");
  await until("the message deleted", async () => (await count()) === before - 1);
  assert.notEqual((await lastReply()).id, last.id);

  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
  const file = await download.path();
  const lines = (await import("node:fs")).readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => JSON.stringify(l).includes("Renamed tour")), "the export holds the chat");
  await shot("21-after-delete-and-export");
});

step("chat settings are saved; a bad one gets a 422 naming the field", async () => {
  await page.click("#settings summary");
  await page.fill("#system-prompt", "Be brief.");
  await page.fill("#temperature", "0.5");
  await page.fill("#max-tokens", "256");
  await page.click("#save-settings");
  await page.reload();
  await until("the saved settings", async () => (await page.inputValue("#system-prompt")) === "Be brief.");
  assert.equal(await page.inputValue("#temperature"), "0.5");
  assert.equal(await page.inputValue("#max-tokens"), "256");
  await page.click("#settings summary");
  await page.fill("#temperature", "5");
  await page.click("#save-settings");
  const invalid = await problemShown(422);
  assert.match(invalid.detail, /settings\.temperature/);
  await shot("22-problem-422");
});

step("regenerate twice, then flip branches with the arrows: ‹ 3/3 › to ‹ 1/3 ›", async () => {
  await page.fill("#new-title", "Branches");
  await page.click("#new-chat");
  await until("the new chat opened", async () => (await page.inputValue("#chat-title")) === "Branches");
  await page.$eval("#settings", (d) => {
    d.open = false;
  });
  // The first reply is stalled (only the first time) and stopped half-way, so its text
  // differs from the two regenerated ones.
  const question = "alpha beta [fault:stall-midx1]";
  await sendText(question);
  await until("the partial first reply", async () => {
    const r = await lastReply();
    return has("streaming")(r) && r.text.startsWith("alpha") ? r : null;
  });
  await page.click("#stop");
  const first = await until("the cancelled first reply", async () => {
    const r = await lastReply();
    return has("cancelled")(r) && r.id !== "pending" ? r : null;
  });
  assert.ok(first.text.length < fakeReply(question).length, first.text);
  await page.waitForSelector("#stop", { state: "hidden" });
  const regenerate = async (previous) => {
    await page.click("#messages li.msg.assistant >> nth=-1 >> button.regenerate");
    return until("the regenerated reply", async () => {
      const r = await lastReply();
      return has("complete")(r) && r.id !== previous.id && r.id !== "pending" ? r : null;
    });
  };
  const second = await regenerate(first);
  await page.waitForSelector("#stop", { state: "hidden" });
  const third = await regenerate(second);
  assert.equal(third.text, fakeReply(question));
  assert.notEqual(third.id, second.id);

  const reply = "#messages li.msg.assistant >> nth=-1";
  const pos = () => page.textContent(`${reply} >> .branch .pos`);
  const shownIs = (want, index) => async () => {
    const r = await lastReply();
    return r.id === want.id && (await pos()) === index ? r : null;
  };
  await until("3/3 on the newest reply", shownIs(third, "3/3"));
  assert.equal(await page.$$eval("#messages li.msg.assistant", (ns) => ns.length), 1, "only the active branch is shown");
  assert.ok(await page.isDisabled(`${reply} >> .branch .next`), "no branch after the last");
  await shot("23-branch-3of3");
  await page.click(`${reply} >> .branch .prev`);
  await until("2/3, the first regenerated reply", shownIs(second, "2/3"));
  await shot("24-branch-2of3");
  await page.click(`${reply} >> .branch .prev`);
  const back = await until("1/3, the stopped reply", shownIs(first, "1/3"));
  assert.equal(back.text, first.text, "the other branch's own text");
  assert.ok(has("cancelled")(back), back.cls);
  assert.ok(await page.isDisabled(`${reply} >> .branch .prev`), "no branch before the first");
  await shot("25-branch-1of3");
  // The choice is the chat's active leaf: it survives a reload.
  await page.reload();
  await until("1/3 after a reload", shownIs(first, "1/3"));
  await page.click(`${reply} >> .branch .next`);
  await until("back on 2/3", shownIs(second, "2/3"));
});

step("edit-and-resend makes a new branch; the old message and answer stay reachable", async () => {
  await page.click("#messages li.msg.user >> nth=0 >> button.edit");
  await page.fill("#messages .edit-input", "gamma delta");
  await page.click("#messages button.resend");
  const fresh = await until("the reply to the edited message", async () => {
    const r = await lastReply();
    return has("complete")(r) && r.text === fakeReply("gamma delta") ? r : null;
  });
  const user = "#messages li.msg.user >> nth=0";
  const userPos = () => page.textContent(`${user} >> .branch .pos`);
  await until("2/2 on the edited message", async () => (await userPos()) === "2/2");
  assert.equal(await page.textContent(`${user} >> .content`), "gamma delta");
  assert.equal(await page.$$eval("#messages li.msg", (ns) => ns.length), 2, "one question, one answer shown");
  await shot("26-resent-branch");
  await page.click(`${user} >> .branch .prev`);
  await until("the first message again", async () => (await page.textContent(`${user} >> .content`)).startsWith("alpha beta"));
  await until("1/2 on the first message", async () => (await userPos()) === "1/2");
  const old = await until("the old answer", async () => {
    const r = await lastReply();
    return r && r.id !== fresh.id && has("complete")(r) ? r : null;
  });
  // Down the newest child at each step: the last regenerated answer, 3/3.
  assert.equal(old.text, fakeReply("alpha beta"));
  assert.equal(await page.textContent("#messages li.msg.assistant >> nth=-1 >> .branch .pos"), "3/3");
  await shot("27-first-branch");
  await page.click(`${user} >> .branch .next`);
  await until("the edited branch again", async () => (await lastReply()).id === fresh.id && (await userPos()) === "2/2");
});

step("no script error and no CSP violation on the way", async () => {
  assert.deepEqual(pageErrors, []);
});
