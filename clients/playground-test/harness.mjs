// Starts the services the browser test drives (the fake LLM and two chat-services) and
// the system's headless Chromium, with bounded waits everywhere.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const shots = path.join(root, "target", "playground");
const bins = process.env.PLAYGROUND_BIN_DIR || path.join(root, "target", "debug");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const children = [];

/** Starts `target/debug/<name>` with exactly `env` (plus PATH and HOME); logs under target/playground/. */
export function start(name, env, label = name) {
  const exe = path.join(bins, name);
  if (!fs.existsSync(exe)) {
    throw new Error(`${exe} is missing: build it first (cargo build -p api-actix -p fake-llm)`);
  }
  const log = fs.openSync(path.join(shots, `${label}.log`), "w");
  const child = spawn(exe, [], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME || "/tmp", ...env },
    stdio: ["ignore", log, log],
  });
  children.push(child);
  return child;
}

export function stopAll() {
  for (const c of children) {
    if (c.exitCode === null) c.kill("SIGKILL");
  }
}

/** Waits until `url` answers 200 (at most `ms`). */
export async function ready(url, ms = 60_000) {
  const end = Date.now() + ms;
  let last = null;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not become ready within ${ms} ms (${last})`);
}

/** The fake LLM and a chat-service on it, plus a send-limited chat-service on the echo model. */
export async function services() {
  fs.mkdirSync(shots, { recursive: true });
  const fakePort = await freePort();
  start("fake-llm", {
    FAKE_LLM_ADDR: `127.0.0.1:${fakePort}`,
    FAKE_LLM_TOKENS_PER_SEC: "40",
    FAKE_LLM_REPLY_TOKENS: "12",
    // `[fault:stall-mid]` in a message: half the reply, this pause, then the rest.
    FAKE_LLM_STALL_MS: "6000",
    RUST_LOG: "warn",
  });
  await ready(`http://127.0.0.1:${fakePort}/health`);

  const port = await freePort();
  start("chat-service", {
    HTTP_ADDR: `127.0.0.1:${port}`,
    LLM_BASE_URL: `http://127.0.0.1:${fakePort}/v1`,
    LLM_MODEL: "fake-llm",
    LLM_MAX_RETRIES: "0",
    LLM_AUTO_TITLE: "false",
    LOG_LEVEL: "warn",
  });
  const limitedPort = await freePort();
  start(
    "chat-service",
    {
      HTTP_ADDR: `127.0.0.1:${limitedPort}`,
      RATE_LIMIT_SENDS_BURST: "1",
      RATE_LIMIT_SENDS_PER_MIN: "0.01",
      LLM_AUTO_TITLE: "false",
      LOG_LEVEL: "warn",
    },
    "chat-service-limited",
  );
  const base = `http://127.0.0.1:${port}`;
  const limited = `http://127.0.0.1:${limitedPort}`;
  await ready(`${base}/readyz`);
  await ready(`${limited}/readyz`);
  return { base, limited };
}

export const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

/** The reply the fake LLM writes for `message`: its words (markers removed) cycled to 12. */
export function fakeReply(message, tokens = 12) {
  const words = message.replace(/\[fault:[^\]]*\]/g, " ").split(/\s+/).filter(Boolean);
  const out = [];
  for (let i = 0; i < tokens; i++) out.push(words[i % words.length]);
  return out.join(" ");
}
