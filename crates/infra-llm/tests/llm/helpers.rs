//! Shared helpers: client configs with short limits, requests, SSE bodies, a raw
//! scripted HTTP server, and draining a stream.

use domain::ports::{LlmChunk, LlmError, LlmRequest, LlmStream, PromptMessage};
use domain::Role;
use futures::StreamExt;
use infra_llm::{OpenAiClient, OpenAiConfig, RetryPolicy};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const KEY: &str = "sk-test-key-123";

/// A config with short timeouts and fast retries (2 retries, 10–50 ms backoff).
pub fn config(base_url: &str) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(base_url).with_api_key(KEY);
    c.connect_timeout = Duration::from_secs(1);
    c.first_token_timeout = Duration::from_secs(2);
    c.idle_timeout = Duration::from_secs(2);
    c.total_timeout = Duration::from_secs(10);
    c.retry = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    c
}

pub fn client(config: OpenAiConfig) -> OpenAiClient {
    OpenAiClient::new(config).unwrap()
}

pub fn request(text: &str) -> LlmRequest {
    LlmRequest {
        model: "gpt-test".into(),
        messages: vec![
            PromptMessage {
                role: Role::System,
                content: "You are terse.".into(),
            },
            PromptMessage {
                role: Role::User,
                content: text.into(),
            },
        ],
        temperature: Some(0.2),
        max_tokens: Some(64),
        request_id: Some("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b".into()),
    }
}

pub fn role_chunk() -> String {
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test-0613","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#.into()
}

pub fn delta_chunk(text: &str) -> String {
    format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test-0613","choices":[{{"index":0,"delta":{{"content":{}}},"logprobs":null,"finish_reason":null}}]}}"#,
        serde_json::Value::String(text.into())
    )
}

pub fn finish_chunk(reason: &str) -> String {
    format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test-0613","choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{reason}"}}]}}"#
    )
}

pub fn usage_chunk(prompt: u32, completion: u32) -> String {
    format!(
        r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test-0613","choices":[],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{}}}}}"#,
        prompt + completion
    )
}

/// `data: …` events, each closed by a blank line, ending with `data: [DONE]` when `done`.
pub fn sse(events: &[String], done: bool) -> String {
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body
}

/// A typical OpenAI stream replying "Hello world".
pub fn hello_stream() -> String {
    sse(
        &[
            role_chunk(),
            delta_chunk("Hello"),
            delta_chunk(" world"),
            finish_chunk("stop"),
            usage_chunk(12, 2),
        ],
        true,
    )
}

/// What a stream carried: its text, its chunks, and the error that ended it.
#[derive(Debug, Default)]
pub struct Drained {
    pub text: String,
    pub chunks: Vec<LlmChunk>,
    pub error: Option<LlmError>,
}

pub async fn drain(mut stream: LlmStream) -> Drained {
    let mut out = Drained::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                if let LlmChunk::Delta(t) = &chunk {
                    out.text.push_str(t);
                }
                out.chunks.push(chunk);
            }
            Err(e) => {
                assert!(out.error.is_none(), "an item after an error");
                out.error = Some(e);
            }
        }
    }
    out
}

/// One step of a scripted raw HTTP response.
#[derive(Debug, Clone)]
pub enum Raw {
    /// Write these bytes, one write each byte when `bytewise`.
    Write(Vec<u8>, bool),
    /// Pause.
    Sleep(Duration),
}

/// A server that answers every connection with `200 OK`, `text/event-stream`,
/// `Connection: close`, then plays `script` and closes.
pub async fn raw_server(script: Vec<Raw>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                socket.set_nodelay(true).unwrap();
                read_request(&mut socket).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for step in script {
                    match step {
                        Raw::Sleep(d) => tokio::time::sleep(d).await,
                        Raw::Write(bytes, false) => {
                            if socket.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                        Raw::Write(bytes, true) => {
                            for b in bytes {
                                if socket.write_all(&[b]).await.is_err() {
                                    return;
                                }
                                socket.flush().await.ok();
                                tokio::time::sleep(Duration::from_micros(200)).await;
                            }
                        }
                    }
                }
                socket.shutdown().await.ok();
            });
        }
    });
    addr
}

async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
    }
}
