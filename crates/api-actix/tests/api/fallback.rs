//! Fallbacks at the wire: when a model's provider fails before the first token (429,
//! 5xx, connection refused, first-token timeout) its fallback answers and the reply
//! records it; after a token has reached the client there is no fallback.

use crate::helpers::{problem, sse_events, Captured, TestApp};
use crate::providers_support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use wiremock::{MockServer, ResponseTemplate};

/// `primary` serves main (falling back to spare), `backup` serves spare.
fn config(primary: &str, backup: &str) -> String {
    format!(
        "llm:
  model: main
  providers:
    - name: primary
      base_url: {primary}
{LIMITS}      models:
        - name: main
          fallbacks: [spare]
    - name: backup
      base_url: {backup}
{LIMITS}      models: [spare]
"
    )
}

async fn app(primary: &str, backup: &MockServer, events: Captured) -> (TestApp, String) {
    let app = TestApp::builder()
        .yaml(&config(primary, &format!("{}/v1", backup.uri())))
        .events(Arc::new(events))
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    (app, id)
}

async fn falls_back_after(primary: ResponseTemplate) {
    let (main, backup) = (MockServer::start().await, MockServer::start().await);
    responds(&main, "main", primary, 1).await;
    answers(&backup, "spare", "spare speaking").await;
    let events = Captured::default();
    let (app, id) = app(&format!("{}/v1", main.uri()), &backup, events.clone()).await;
    let r = app.send("alice", &id, "hello").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let turn: Value = r.json().await.unwrap();
    assert_eq!(turn["reply"]["content"], "spare speaking");
    assert_eq!(turn["reply"]["status"], "complete");
    assert_eq!(turn["reply"]["model"], "spare");
    let reply_id = turn["reply"]["id"].clone();
    let done = events
        .wait_for(|e| e["type"] == "message.completed" && e["data"]["id"] == reply_id)
        .await;
    assert_eq!(done["provider"], "backup");
    assert_eq!(done["data"]["model"], "spare");
    let stored = app.messages("alice", &id).await;
    assert_eq!(stored[1]["model"], "spare");
}

#[tokio::test]
async fn a_429_falls_back() {
    falls_back_after(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(json!({"error": {"message": "slow down"}})),
    )
    .await;
}

#[tokio::test]
async fn a_5xx_falls_back() {
    falls_back_after(ResponseTemplate::new(503)).await;
}

#[tokio::test]
async fn a_first_token_timeout_falls_back() {
    falls_back_after(
        ResponseTemplate::new(200)
            .set_body_raw(
                stream_body("main", "too late").into_bytes(),
                "text/event-stream",
            )
            .set_delay(STALL),
    )
    .await;
}

#[tokio::test]
async fn a_refused_connection_falls_back_and_streams_only_the_fallbacks_text() {
    let backup = MockServer::start().await;
    answers(&backup, "spare", "spare speaking").await;
    let (app, id) = app(&refused(), &backup, Captured::default()).await;
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={id}"),
            json!({"content": "hi"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let events = sse_events(&r.text().await.unwrap());
    let deltas: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["content"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "spare speaking");
    let (last, reply) = events.last().unwrap();
    assert_eq!(last, "reply");
    assert_eq!(reply["model"], "spare");
}

#[tokio::test]
async fn a_failure_after_the_first_token_does_not_fall_back() {
    let (main, backup) = (MockServer::start().await, MockServer::start().await);
    // Two words, then the stream ends without [DONE]: cut after text reached the client.
    let full = stream_body("main", "half way there");
    let cut = full[..full.find("there").unwrap()]
        .rsplit_once("data:")
        .unwrap()
        .0
        .to_owned();
    responds(
        &main,
        "main",
        ResponseTemplate::new(200).set_body_raw(cut.into_bytes(), "text/event-stream"),
        1,
    )
    .await;
    responds(
        &backup,
        "spare",
        ResponseTemplate::new(200).set_body_raw(
            stream_body("spare", "never").into_bytes(),
            "text/event-stream",
        ),
        0,
    )
    .await;
    let (app, id) = app(&format!("{}/v1", main.uri()), &backup, Captured::default()).await;
    let p = problem(
        app.send("alice", &id, "hello").await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(p["reply"]["status"], "failed");
    assert_eq!(p["reply"]["content"], "half way ");
    assert_eq!(p["reply"]["model"], "main");
}

#[tokio::test]
async fn when_the_fallback_fails_too_the_reply_fails() {
    let (main, backup) = (MockServer::start().await, MockServer::start().await);
    responds(&main, "main", ResponseTemplate::new(500), 1).await;
    responds(&backup, "spare", ResponseTemplate::new(502), 1).await;
    let (app, id) = app(&format!("{}/v1", main.uri()), &backup, Captured::default()).await;
    let p = problem(
        app.send("alice", &id, "hello").await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(p["message"]["content"], "hello");
    assert_eq!(p["reply"]["status"], "failed");
}
