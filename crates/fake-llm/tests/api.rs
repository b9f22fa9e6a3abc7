//! The fake server driven over HTTP with reqwest: routes, the OpenAI wire format,
//! pacing, and every fault kind.
// Helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fake_llm::{FakeLlmConfig, FaultKind, RunningFakeLlm};
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn fake(tweak: impl FnOnce(&mut FakeLlmConfig)) -> RunningFakeLlm {
    let mut cfg = FakeLlmConfig::for_tests();
    cfg.reply_tokens = 4;
    tweak(&mut cfg);
    fake_llm::spawn(cfg).await.unwrap()
}

fn body(text: &str, stream: bool) -> Value {
    json!({
        "model": "my-model",
        "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": text}],
        "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

async fn post(
    fake: &RunningFakeLlm,
    path: &str,
    body: &Value,
    fault: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("http://{}{path}", fake.addr()))
        .json(body);
    if let Some(f) = fault {
        req = req.header("x-fake-fault", f);
    }
    req.send().await.unwrap()
}

/// The `data:` payloads of an SSE body.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn lists_models_on_both_paths() {
    let fake = fake(|c| c.model = "fake-1".into()).await;
    for path in ["/models", "/v1/models"] {
        let v: Value = reqwest::get(format!("http://{}{path}", fake.addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["data"][0]["id"], "fake-1", "{path}");
    }
}

#[tokio::test]
async fn whole_replies_on_both_paths() {
    let fake = fake(|_| {}).await;
    for path in ["/chat/completions", "/v1/chat/completions"] {
        let response = post(&fake, path, &body("hello there", false), None).await;
        assert_eq!(response.status(), 200);
        let v: Value = response.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "my-model");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "hello there hello there"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["prompt_tokens"], 4);
        assert_eq!(v["usage"]["completion_tokens"], 4);
        assert_eq!(v["usage"]["total_tokens"], 8);
    }
}

#[tokio::test]
async fn streams_in_the_openai_format() {
    let fake = fake(|_| {}).await;
    let response = post(&fake, "/v1/chat/completions", &body("x y", true), None).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "x y x y");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "my-model"));
}

#[tokio::test]
async fn no_usage_chunk_unless_asked_and_max_tokens_limits_the_reply() {
    let fake = fake(|_| {}).await;
    let request = json!({
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a b c"}]}],
        "stream": true, "max_tokens": 2
    });
    let text = post(&fake, "/chat/completions", &request, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("\"usage\""));
    assert!(text.contains(r#""finish_reason":"length""#));
    assert!(text.contains(r#""model":"fake-llm""#));
    assert!(text.contains(r#""content":" b""#));
}

#[tokio::test]
async fn a_429_carries_retry_after() {
    let fake = fake(|c| c.retry_after_secs = 7).await;
    let response = post(&fake, "/v1/chat/completions", &body("x", true), Some("429")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_exceeded");
}

#[tokio::test]
async fn counted_faults_fail_only_the_first_requests() {
    let fake = fake(|_| {}).await;
    let statuses = [
        post(
            &fake,
            "/v1/chat/completions",
            &body("same", false),
            Some("500x2"),
        )
        .await
        .status(),
        post(
            &fake,
            "/v1/chat/completions",
            &body("same", false),
            Some("500x2"),
        )
        .await
        .status(),
        post(
            &fake,
            "/v1/chat/completions",
            &body("same", false),
            Some("500x2"),
        )
        .await
        .status(),
        post(
            &fake,
            "/v1/chat/completions",
            &body("[fault:401x1] m", false),
            None,
        )
        .await
        .status(),
        post(
            &fake,
            "/v1/chat/completions",
            &body("[fault:401x1] m", false),
            None,
        )
        .await
        .status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [500, 500, 200, 401, 200]);
    assert_eq!(fake.stats().faults(), 3);
    assert_eq!(fake.stats().requests(), 5);
}

#[tokio::test]
async fn marker_words_are_not_part_of_the_reply() {
    let fake = fake(|_| {}).await;
    let v: Value = post(
        &fake,
        "/v1/chat/completions",
        &body("[fault:429x0] ok", false),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "ok ok ok ok");
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let fake = fake(|_| {}).await;
    let not_chat = post(&fake, "/v1/chat/completions", &json!({"foo": 1}), None).await;
    assert_eq!(not_chat.status(), 400);
    let unknown_fault = post(
        &fake,
        "/v1/chat/completions",
        &body("x", false),
        Some("explode"),
    )
    .await;
    assert_eq!(unknown_fault.status(), 400);
}

#[tokio::test]
async fn the_global_fault_rate_applies_to_plain_requests() {
    let fake = fake(|c| {
        c.fault_rate = 1.0;
        c.fault_kinds = vec![FaultKind::ServerError];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            post(&fake, "/v1/chat/completions", &body("x", true), None)
                .await
                .status(),
            500
        );
    }
}

#[tokio::test]
async fn a_cut_closes_the_connection_without_done() {
    let fake = fake(|_| {}).await;
    let response = post(
        &fake,
        "/v1/chat/completions",
        &body("a b", true),
        Some("cut"),
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut seen = Vec::new();
    let mut broke = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => seen.extend_from_slice(&bytes),
            Err(_) => broke = true,
        }
    }
    let text = String::from_utf8(seen).unwrap();
    assert!(broke, "the body should end with an error");
    assert!(
        text.contains(r#""content":"a""#) && !text.contains("[DONE]"),
        "{text}"
    );
}

#[tokio::test]
async fn malformed_sends_a_chunk_that_is_not_json() {
    let fake = fake(|_| {}).await;
    let text = post(
        &fake,
        "/v1/chat/completions",
        &body("a", true),
        Some("malformed"),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = events(&text);
    assert!(events
        .iter()
        .any(|e| e != "[DONE]" && serde_json::from_str::<Value>(e).is_err()));
}

#[tokio::test]
async fn stall_sends_nothing_for_a_while() {
    let fake = fake(|c| c.stall = Duration::from_millis(300)).await;
    let started = Instant::now();
    let text = post(
        &fake,
        "/v1/chat/completions",
        &body("a", true),
        Some("stall"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn ttft_and_token_rate_pace_the_stream() {
    let fake = fake(|c| {
        c.ttft = Duration::from_millis(100);
        c.tokens_per_sec = 40;
    })
    .await;
    let started = Instant::now();
    let response = post(&fake, "/v1/chat/completions", &body("a", true), None).await;
    let mut stream = response.bytes_stream();
    let mut reads = 0;
    let mut first = None;
    while let Some(bytes) = stream.next().await {
        bytes.unwrap();
        first.get_or_insert_with(|| started.elapsed());
        reads += 1;
    }
    // 100 ms to the first chunk, then three gaps of 25 ms.
    assert!(first.unwrap() >= Duration::from_millis(100));
    assert!(started.elapsed() >= Duration::from_millis(175));
    assert!(reads >= 4, "{reads} reads");
}

#[tokio::test]
async fn the_key_is_checked_when_configured() {
    let fake = fake(|c| c.api_key = Some("secret".into())).await;
    let url = format!("{}/chat/completions", fake.base_url());
    let without = reqwest::Client::new()
        .post(&url)
        .json(&body("a", false))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401);
    let with = reqwest::Client::new()
        .post(&url)
        .bearer_auth("secret")
        .json(&body("a", false))
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200);
}
