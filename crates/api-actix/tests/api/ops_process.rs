//! The real `chat-service` binary: SIGTERM drains an open stream and exits 0; JSON
//! logs carry the request fields and never a secret.

use crate::helpers::{TestApp, SECRET};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const API_KEY: &str = "sk-test-never-logged-0123456789";

/// A `chat-service serve` child process logging JSON, and its output lines.
struct Service {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    address: String,
}

impl Service {
    fn start(extra: &[(&str, &str)]) -> Service {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-service"));
        cmd.env_clear()
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", SECRET)
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "debug")
            .env("LLM_API_KEY", API_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for pipe in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut s = Service {
            child,
            lines,
            seen: Vec::new(),
            address: String::new(),
        };
        let listening = s.wait_for(|v| v["message"] == "chat-service listening");
        s.address = listening["addr"].as_str().unwrap().to_owned();
        s
    }

    /// Waits (10 s at most) for a JSON log line matching `pred`.
    fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no such log line in:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if pred(&v) {
                    return v;
                }
            }
        }
    }

    fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits (`limit` at most) for the process to exit, then collects all its output.
    fn exit(mut self, limit: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("did not exit in {limit:?}:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn create_chat(client: &reqwest::Client, s: &Service) -> String {
    let r = client
        .post(s.url("/api/v1/chats"))
        .bearer_auth(TestApp::token("alice"))
        .json(&json!({"title": "drain"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sigterm_lets_an_open_stream_finish_then_exits_0() {
    let service = Service::start(&[("LLM_ECHO_DELAY_MS", "250")]);
    let client = reqwest::Client::new();
    let chat = create_chat(&client, &service).await;
    let r = client
        .post(service.url(&format!("/api/v1/messages?chatId={chat}")))
        .bearer_auth(TestApp::token("alice"))
        .header("accept", "text/event-stream")
        .json(&json!({"content": "one two three four"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut body = r.bytes_stream();
    let mut text = String::new();
    while !text.contains("event: message") {
        text.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    // The reply takes ~2 s more; SIGTERM now.
    service.terminate();
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        text
    })
    .await
    .unwrap();
    assert!(rest.contains("event: delta"), "{rest}");
    let last = rest.trim_end().rsplit("\n\n").next().unwrap().to_owned();
    assert!(last.starts_with("id: end\nevent: reply"), "{rest}");
    assert!(last.contains("Echo: one two three four"), "{last}");
    assert!(last.contains("\"status\":\"complete\""), "{last}");

    let (status, lines) =
        tokio::task::spawn_blocking(move || service.exit(Duration::from_secs(15)))
            .await
            .unwrap();
    assert!(
        status.success(),
        "exit status {status:?}:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.contains("shutting down")),
        "{}",
        lines.join("\n")
    );
}

#[tokio::test]
async fn json_logs_carry_request_fields_and_never_a_secret() {
    let service = Service::start(&[]);
    let client = reqwest::Client::new();
    let token = TestApp::token("alice");
    let chat = create_chat(&client, &service).await;
    let r = client
        .post(service.url(&format!("/api/v1/messages?chatId={chat}")))
        .bearer_auth(&token)
        .header("x-request-id", "trace-me-42")
        .json(&json!({"content": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let bad_token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.not-a-real-signature-xyz";
    let r = client
        .get(service.url("/api/v1/chats"))
        .bearer_auth(bad_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    service.terminate();
    let (status, lines) =
        tokio::task::spawn_blocking(move || service.exit(Duration::from_secs(15)))
            .await
            .unwrap();
    assert!(status.success());

    let all = lines.join("\n");
    for secret in [
        SECRET,
        API_KEY,
        token.as_str(),
        bad_token,
        "not-a-real-signature",
    ] {
        assert!(!all.contains(secret), "a secret was logged:\n{all}");
    }
    let logs: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let served: Vec<&Value> = logs
        .iter()
        .filter(|v| v["message"] == "request served")
        .collect();
    let send = served
        .iter()
        .find(|v| v["span"]["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no request line for the send:\n{all}"));
    assert_eq!(send["span"]["method"], "POST");
    assert_eq!(send["span"]["route"], "/api/v1/messages");
    assert_eq!(send["status"], 201);
    assert!(send["latency_ms"].as_f64().is_some(), "{send}");
    assert!(send["level"].is_string() && send["timestamp"].is_string());
    let refused = served
        .iter()
        .find(|v| v["status"] == 401)
        .unwrap_or_else(|| panic!("no request line for the 401:\n{all}"));
    assert_eq!(refused["span"]["route"], "/api/v1/chats");
    assert!(refused["span"]["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
}

#[test]
fn configuration_errors_never_print_secret_values() {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-service"))
        .env_clear()
        .env("JWT_SECRET", "too-short-secret-value")
        .env("DB_PASSWORD", "hunter2-db-password")
        .env("LLM_API_KEY", API_KEY)
        .env("HTTP_ADDR", "nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("JWT_SECRET") && text.contains("DB_PASSWORD"),
        "{text}"
    );
    for secret in ["too-short-secret-value", "hunter2-db-password", API_KEY] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
}
