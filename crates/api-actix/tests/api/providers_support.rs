//! Fake OpenAI-compatible providers at the wire (wiremock) and the YAML that
//! configures the service with them.

use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A streamed chat completion saying `text` (one delta per word), as `model`.
pub fn stream_body(model: &str, text: &str) -> String {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut body = format!(
        "data: {}\n\n",
        chunk(json!({"role": "assistant", "content": ""}), Value::Null)
    );
    for word in text.split_inclusive(' ') {
        body.push_str(&format!(
            "data: {}\n\n",
            chunk(json!({"content": word}), Value::Null)
        ));
    }
    body.push_str(&format!("data: {}\n\n", chunk(json!({}), json!("stop"))));
    body.push_str(&format!(
        "data: {}\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [],
               "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
    ));
    body.push_str("data: [DONE]\n\n");
    body
}

/// A whole (non-streamed) completion saying `text`.
pub fn whole_body(model: &str, text: &str) -> Value {
    json!({"id": "c", "object": "chat.completion", "created": 1, "model": model,
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
}

/// Streamed replies saying `text` to every streamed request for `model`.
pub async fn answers(server: &MockServer, model: &str, text: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": model, "stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(stream_body(model, text).into_bytes(), "text/event-stream"),
        )
        .mount(server)
        .await;
}

/// A streamed request for `model` answered with `response`, expected `times` times.
pub async fn responds(server: &MockServer, model: &str, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": model, "stream": true})))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

/// `GET /v1/models` listing `ids`.
pub async fn lists(server: &MockServer, ids: &[&str]) {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model"}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": data})),
        )
        .mount(server)
        .await;
}

/// A base URL nobody listens on (connection refused).
pub fn refused() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/v1")
}

/// Short limits for every provider, so failures come quickly (generous enough for a busy machine).
pub const LIMITS: &str = "      connect_timeout_ms: 2000
      first_token_timeout_ms: 1500
      idle_timeout_ms: 5000
      total_timeout_ms: 20000
      max_retries: 0
";

/// A stall longer than the first-token limit above.
pub const STALL: Duration = Duration::from_secs(6);
