//! One request of each kind: sends it, reads the whole answer, classifies the outcome,
//! records stream timings and acknowledged writes.

use crate::acks::{ids, Acks};
use crate::cli::Disconnect;
use crate::sse::Splitter;
use crate::stats::{Outcome, Recorder};
use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use std::time::Instant;

/// Builds the HTTP client every request uses: HTTP/1.1 keep-alive, no Nagle, no
/// overall timeout (the runner bounds each request itself).
pub fn client() -> anyhow::Result<Client> {
    Ok(Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(5))
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build()?)
}

async fn send(req: RequestBuilder, rec: &mut Recorder) -> Result<Response, Outcome> {
    req.send().await.map_err(|e| {
        rec.sample_error(&e);
        Outcome::Transport
    })
}

/// Reads the body; a body cut short is a transport failure.
async fn body(resp: Response, rec: &mut Recorder) -> Result<bytes::Bytes, Outcome> {
    resp.bytes().await.map_err(|e| {
        rec.sample_error(&e);
        Outcome::Transport
    })
}

/// A GET whose answer is read and dropped.
pub async fn get(client: &Client, url: &str, bearer: &str, rec: &mut Recorder) -> Outcome {
    let resp = match send(client.get(url).header(AUTHORIZATION, bearer), rec).await {
        Ok(r) => r,
        Err(o) => return o,
    };
    let status = resp.status();
    match body(resp, rec).await {
        Ok(_) if status.is_success() => Outcome::Ok,
        Ok(_) => Outcome::Status(status.as_u16()),
        Err(o) => o,
    }
}

/// A request whose JSON answer is returned with the outcome (`Value::Null` when the
/// body is not JSON).
pub async fn json_call(req: RequestBuilder, rec: &mut Recorder) -> (Outcome, Value) {
    let resp = match send(req, rec).await {
        Ok(r) => r,
        Err(o) => return (o, Value::Null),
    };
    let status = resp.status();
    let bytes = match body(resp, rec).await {
        Ok(b) => b,
        Err(o) => return (o, Value::Null),
    };
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        (Outcome::Ok, value)
    } else {
        (Outcome::Status(status.as_u16()), value)
    }
}

/// `POST /api/v1/chats`; the new chat's id is acknowledged.
pub async fn create_chat(
    client: &Client,
    base: &str,
    bearer: &str,
    title: &str,
    acks: &Acks,
    rec: &mut Recorder,
) -> (Outcome, Option<String>) {
    let req = client
        .post(format!("{base}/api/v1/chats"))
        .header(AUTHORIZATION, bearer)
        .json(&json!({ "title": title }));
    let (outcome, body) = json_call(req, rec).await;
    let id = body["id"].as_str().map(str::to_owned);
    if outcome == Outcome::Ok {
        if let Some(id) = &id {
            acks.chat(id);
        }
    }
    (outcome, id)
}

/// `POST /api/v1/messages?chatId=…` as JSON; the stored message and reply (also those
/// of a 502/504 problem) are acknowledged.
pub async fn send_message(
    client: &Client,
    base: &str,
    bearer: &str,
    chat: &str,
    content: &str,
    acks: &Acks,
    rec: &mut Recorder,
) -> Outcome {
    let req = client
        .post(format!("{base}/api/v1/messages?chatId={chat}"))
        .header(AUTHORIZATION, bearer)
        .json(&json!({ "content": content }));
    let (outcome, body) = json_call(req, rec).await;
    if matches!(outcome, Outcome::Ok | Outcome::Status(502 | 504)) {
        acks.turn(&body);
    }
    outcome
}

/// What a stream request needs besides the client.
#[derive(Debug, Clone, Copy)]
pub struct StreamCall<'a> {
    /// Base URL.
    pub base: &'a str,
    /// `Bearer …`.
    pub bearer: &'a str,
    /// Chat id.
    pub chat: &'a str,
    /// Message content.
    pub content: &'a str,
    /// When to hang up on purpose.
    pub disconnect: Disconnect,
}

/// A send answered as Server-Sent Events: records the time to the `message` event and
/// to the first `delta`; acknowledges the user message at `message` and the reply at
/// `reply` (or both at `error`).
pub async fn stream_message(
    client: &Client,
    call: StreamCall<'_>,
    acks: &Acks,
    rec: &mut Recorder,
) -> Outcome {
    let t0 = Instant::now();
    let req = client
        .post(format!(
            "{}/api/v1/messages?chatId={}",
            call.base, call.chat
        ))
        .header(AUTHORIZATION, call.bearer)
        .header(ACCEPT, "text/event-stream")
        .json(&json!({ "content": call.content }));
    let resp = match send(req, rec).await {
        Ok(r) => r,
        Err(o) => return o,
    };
    let status = resp.status();
    if !status.is_success() {
        let bytes = body(resp, rec).await.unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if matches!(status.as_u16(), 502 | 504) {
            acks.turn(&v);
        }
        return Outcome::Status(status.as_u16());
    }
    let mut body = resp.bytes_stream();
    let mut sse = Splitter::default();
    let mut t_message: Option<Instant> = None;
    let mut got_delta = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => sse.push(&c),
            Err(e) => {
                rec.sample_error(&e);
                return Outcome::Transport;
            }
        }
        while let Some(ev) = sse.next_event() {
            let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
            match ev.name.as_str() {
                "message" => {
                    let now = Instant::now();
                    rec.first_event.record(now - t0);
                    t_message = Some(now);
                    if let Some((id, chat)) = ids(&data) {
                        acks.user(id, chat);
                    }
                    if call.disconnect == Disconnect::Message {
                        rec.disconnected += 1;
                        return Outcome::Ok;
                    }
                }
                "delta" if !got_delta => {
                    got_delta = true;
                    let now = Instant::now();
                    rec.ttft.record(now - t0);
                    if let Some(m) = t_message {
                        rec.message_to_delta.record(now - m);
                    }
                    if call.disconnect == Disconnect::Delta {
                        rec.disconnected += 1;
                        return Outcome::Ok;
                    }
                }
                "reply" => {
                    if let Some((id, chat)) = ids(&data) {
                        acks.reply(id, chat, data["status"].as_str().unwrap_or(""));
                    }
                    return Outcome::Ok;
                }
                "error" => {
                    acks.turn(&data);
                    let code = data["status"].as_u64().unwrap_or(502);
                    return Outcome::Status(u16::try_from(code).unwrap_or(502));
                }
                _ => {}
            }
        }
    }
    rec.sample_error("the stream ended without a reply or error event");
    Outcome::Transport
}

/// A streamed chat completion straight from the provider (`/v1/chat/completions`):
/// the time to the first content chunk is the provider's own time to first token.
pub async fn llm_direct(client: &Client, base: &str, content: &str, rec: &mut Recorder) -> Outcome {
    let t0 = Instant::now();
    let req = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({
            "model": "fake-llm",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": content}],
        }));
    let resp = match send(req, rec).await {
        Ok(r) => r,
        Err(o) => return o,
    };
    let status = resp.status();
    if !status.is_success() {
        let _ = body(resp, rec).await;
        return Outcome::Status(status.as_u16());
    }
    let mut body = resp.bytes_stream();
    let mut sse = Splitter::default();
    let mut got_token = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => sse.push(&c),
            Err(e) => {
                rec.sample_error(&e);
                return Outcome::Transport;
            }
        }
        while let Some(ev) = sse.next_event() {
            if ev.data == "[DONE]" {
                return Outcome::Ok;
            }
            if !got_token {
                let v: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                let text = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
                if !text.is_empty() {
                    got_token = true;
                    rec.ttft.record(t0.elapsed());
                }
            }
        }
    }
    rec.sample_error("the provider stream ended without [DONE]");
    Outcome::Transport
}
