//! Idempotent sends: a retry with the same `Idempotency-Key` gets the first response and
//! never calls the provider twice; the same key with another body is 422.

use crate::helpers::{problem, sse_events, TestApp};
use crate::messages::FailingLlm;
use domain::ports::LlmError;
use fake_llm::FakeLlmConfig;
use infra_llm::{OpenAiClient, OpenAiConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn keyed(app: &TestApp, chat: &str, key: &str, content: &str) -> reqwest::RequestBuilder {
    app.post(
        "alice",
        &format!("/api/v1/messages?chatId={chat}"),
        json!({ "content": content }),
    )
    .header("idempotency-key", key)
}

async fn fake_app(
    cfg: FakeLlmConfig,
    postgres: bool,
) -> (TestApp, fake_llm::RunningFakeLlm, String) {
    let fake = fake_llm::spawn(cfg).await.unwrap();
    let mut b =
        TestApp::builder().llm(OpenAiClient::new(OpenAiConfig::new(fake.base_url())).unwrap());
    if postgres {
        b = b.postgres();
    }
    let app = b.spawn().await;
    let id = app.create_chat("alice", "c").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, fake, id)
}

async fn same_response_and_one_provider_call(postgres: bool) {
    let (app, fake, id) = fake_app(
        FakeLlmConfig {
            reply_tokens: 5,
            ..FakeLlmConfig::for_tests()
        },
        postgres,
    )
    .await;
    let first = keyed(&app, &id, "k-1", "hello").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = keyed(&app, &id, "k-1", "hello").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first, again);
    assert_eq!(fake.stats().requests(), 1);
    assert_eq!(app.messages("alice", &id).await.len(), 2);
    // Streamed retry: the same turn, replayed as events.
    let r = keyed(&app, &id, "k-1", "hello")
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.first().unwrap().1, first["message"]);
    assert_eq!(events.last().unwrap().1, first["reply"]);
    assert_eq!(fake.stats().requests(), 1);
    // A new key is a new send.
    let other = keyed(&app, &id, "k-2", "hello").send().await.unwrap();
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(app.messages("alice", &id).await.len(), 4);
}

#[tokio::test]
async fn a_retry_gets_the_first_response_in_memory() {
    same_response_and_one_provider_call(false).await;
}

#[tokio::test]
async fn a_retry_gets_the_first_response_on_postgres() {
    same_response_and_one_provider_call(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_while_the_first_is_running_waits_for_it() {
    let slow = FakeLlmConfig {
        reply_tokens: 10,
        tokens_per_sec: 20,
        ..FakeLlmConfig::for_tests()
    };
    let (app, fake, id) = fake_app(slow, true).await;
    let a = keyed(&app, &id, "same", "race me").send();
    let b = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        keyed(&app, &id, "same", "race me").send().await
    };
    let (a, b) = tokio::join!(a, b);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.status(), StatusCode::CREATED);
    assert_eq!(b.status(), StatusCode::CREATED);
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["reply"]["status"], "complete");
    assert_eq!(a, b);
    assert_eq!(fake.stats().requests(), 1);
    assert_eq!(app.messages("alice", &id).await.len(), 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let app = TestApp::spawn().await;
    let id = app.create_chat("alice", "c").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        keyed(&app, &id, "k", "one").send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let p = problem(
        keyed(&app, &id, "k", "two").send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    let other = app.create_chat("alice", "d").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    problem(
        keyed(&app, &other, "k", "one").send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(app.messages("alice", &id).await.len(), 2);
}

#[tokio::test]
async fn keys_are_per_user() {
    let app = TestApp::spawn().await;
    let a = app.create_chat("alice", "a").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b: Value = app
        .post("bob", "/api/v1/chats", json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b = b["id"].as_str().unwrap().to_owned();
    assert_eq!(
        keyed(&app, &a, "shared", "x")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    let r = app
        .post(
            "bob",
            &format!("/api/v1/messages?chatId={b}"),
            json!({"content": "y"}),
        )
        .header("idempotency-key", "shared")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_bad_key_is_422() {
    let app = TestApp::spawn().await;
    let id = app.create_chat("alice", "c").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = "k".repeat(256);
    for key in ["has space", long.as_str()] {
        let p = problem(
            keyed(&app, &id, key, "x").send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    }
    assert!(app.messages("alice", &id).await.is_empty());
}

#[tokio::test]
async fn a_failed_send_replays_its_failure_without_calling_the_provider_again() {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let app = TestApp::builder()
        .llm(FailingLlm {
            error: LlmError::Upstream { status: Some(503) },
            prompts: prompts.clone(),
        })
        .spawn()
        .await;
    let id = app.create_chat("alice", "c").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = problem(
        keyed(&app, &id, "f", "doomed").send().await.unwrap(),
        StatusCode::BAD_GATEWAY,
    )
    .await;
    let again = problem(
        keyed(&app, &id, "f", "doomed").send().await.unwrap(),
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(first["reply"], again["reply"]);
    assert_eq!(first["message"], again["message"]);
    assert_eq!(prompts.lock().unwrap().len(), 1);
}
