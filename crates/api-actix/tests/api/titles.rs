//! Automatic titles at the wire: after a chat's first reply, a thinking model's
//! answer becomes a clean title (and `chat.updated`), without delaying the reply; a
//! title the user set meanwhile is kept; a failure leaves the title; it can be off.

use crate::helpers::{Captured, TestApp};
use crate::providers_support::*;
use async_trait::async_trait;
use domain::ports::{LlmChunk, LlmClient, LlmError, LlmReply, LlmRequest, LlmStream};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn single(server: &MockServer) -> String {
    format!(
        "llm:
  model: thinker
  providers:
    - name: local
      base_url: {}/v1
{LIMITS}      models: [thinker]
",
        server.uri()
    )
}

/// Title requests (the non-streamed ones) answered with `response`, `times` times.
async fn titles_with(server: &MockServer, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"stream": false})))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

/// Waits (bounded) until no detached task (reply or title) is running.
async fn idle(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| l == "chat_background_tasks 0") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tasks still running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn title_of(app: &TestApp, id: &str) -> String {
    let chat: Value = app
        .get("alice", &format!("/api/v1/chats/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    chat["title"].as_str().unwrap().to_owned()
}

async fn new_chat(app: &TestApp) -> String {
    let r = app
        .post("alice", "/api/v1/chats", json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let chat: Value = r.json().await.unwrap();
    chat["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_thinking_models_title_is_cleaned_and_emitted() {
    let server = MockServer::start().await;
    answers(&server, "thinker", "Day one: Alfama.").await;
    let thought =
        "<think>The user wants a trip plan.\nA title about Lisbon.</think>\n\n\"Trip to Lisbon\"";
    titles_with(
        &server,
        ResponseTemplate::new(200).set_body_json(whole_body("thinker", thought)),
        1,
    )
    .await;
    let events = Captured::default();
    let app = TestApp::builder()
        .yaml(&single(&server))
        .events(Arc::new(events.clone()))
        .spawn()
        .await;
    let id = new_chat(&app).await;
    assert_eq!(
        app.send("alice", &id, "Plan my trip to Lisbon")
            .await
            .status(),
        StatusCode::CREATED
    );
    let updated = events
        .wait_for(|e| e["type"] == "chat.updated" && e["data"]["id"] == id.as_str())
        .await;
    assert_eq!(updated["data"]["title"], "Trip to Lisbon");
    assert_eq!(title_of(&app, &id).await, "Trip to Lisbon");
    // A second reply does not title again (the request above is expected once).
    assert_eq!(
        app.send("alice", &id, "And food?").await.status(),
        StatusCode::CREATED
    );
    idle(&app).await;
    assert_eq!(title_of(&app, &id).await, "Trip to Lisbon");
}

#[tokio::test]
async fn a_failing_title_model_leaves_the_title() {
    let server = MockServer::start().await;
    answers(&server, "thinker", "Sure.").await;
    titles_with(&server, ResponseTemplate::new(500), 1).await;
    let app = TestApp::builder().yaml(&single(&server)).spawn().await;
    let id = new_chat(&app).await;
    assert_eq!(
        app.send("alice", &id, "hi").await.status(),
        StatusCode::CREATED
    );
    idle(&app).await;
    assert_eq!(title_of(&app, &id).await, "New chat");
}

#[tokio::test]
async fn auto_title_off_asks_nothing() {
    let server = MockServer::start().await;
    answers(&server, "thinker", "Sure.").await;
    titles_with(&server, ResponseTemplate::new(200), 0).await;
    let app = TestApp::builder()
        .yaml(&single(&server))
        .env("LLM_AUTO_TITLE", "false")
        .spawn()
        .await;
    let id = new_chat(&app).await;
    assert_eq!(
        app.send("alice", &id, "hi").await.status(),
        StatusCode::CREATED
    );
    idle(&app).await;
    assert_eq!(title_of(&app, &id).await, "New chat");
}

#[tokio::test]
async fn a_chat_the_user_titled_is_not_retitled() {
    let server = MockServer::start().await;
    answers(&server, "thinker", "Sure.").await;
    titles_with(&server, ResponseTemplate::new(200), 0).await;
    let app = TestApp::builder().yaml(&single(&server)).spawn().await;
    let chat = app.create_chat("alice", "My own").await;
    let id = chat["id"].as_str().unwrap();
    assert_eq!(
        app.send("alice", id, "hi").await.status(),
        StatusCode::CREATED
    );
    idle(&app).await;
    assert_eq!(title_of(&app, id).await, "My own");
}

/// The echo model for replies; titles wait for a permit, then say `title`.
struct GatedTitles {
    gate: Arc<Semaphore>,
    title: &'static str,
    asked: Arc<Mutex<usize>>,
}

#[async_trait]
impl LlmClient for GatedTitles {
    async fn complete(&self, _request: LlmRequest) -> Result<LlmReply, LlmError> {
        *self.asked.lock().unwrap() += 1;
        let _permit = self.gate.acquire().await;
        Ok(LlmReply {
            content: self.title.into(),
            model: "echo".into(),
            usage: None,
            finish_reason: None,
        })
    }

    async fn stream(&self, _request: LlmRequest) -> Result<LlmStream, LlmError> {
        let chunks = vec![Ok(LlmChunk::Delta("an answer".into()))];
        Ok(futures::stream::iter(chunks).boxed())
    }
}

async fn gated() -> (TestApp, Arc<Semaphore>, Arc<Mutex<usize>>) {
    let gate = Arc::new(Semaphore::new(0));
    let asked = Arc::new(Mutex::new(0));
    let app = TestApp::builder()
        .llm(GatedTitles {
            gate: gate.clone(),
            title: "<think>hmm</think>Weekend plans",
            asked: asked.clone(),
        })
        .spawn()
        .await;
    (app, gate, asked)
}

async fn asked_once(asked: &Mutex<usize>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while *asked.lock().unwrap() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no title request");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_reply_never_waits_for_its_title() {
    let (app, gate, asked) = gated().await;
    let id = new_chat(&app).await;
    // The title request is held back; the reply comes anyway.
    let r = app.send("alice", &id, "plans?").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let turn: Value = r.json().await.unwrap();
    assert_eq!(turn["reply"]["status"], "complete");
    asked_once(&asked).await;
    assert_eq!(title_of(&app, &id).await, "New chat");
    gate.add_permits(1);
    idle(&app).await;
    assert_eq!(title_of(&app, &id).await, "Weekend plans");
}

#[tokio::test]
async fn a_title_set_while_the_model_thinks_is_kept() {
    let (app, gate, asked) = gated().await;
    let id = new_chat(&app).await;
    assert_eq!(
        app.send("alice", &id, "plans?").await.status(),
        StatusCode::CREATED
    );
    asked_once(&asked).await;
    let r = app
        .put(
            "alice",
            &format!("/api/v1/chats/{id}"),
            json!({"title": "Mine"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    gate.add_permits(1);
    idle(&app).await;
    assert_eq!(title_of(&app, &id).await, "Mine");
}
