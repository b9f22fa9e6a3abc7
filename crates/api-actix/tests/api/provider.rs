//! Provider failures through the real OpenAI-compatible client and the fake-llm
//! server: whatever the provider does, the user's message is stored, the reply says
//! why it failed, and no request hangs past its timeouts.

use crate::helpers::{problem, sse_events, TestApp};
use fake_llm::{FakeLlmConfig, RunningFakeLlm};
use futures::StreamExt;
use infra_llm::{OpenAiClient, OpenAiConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn client(base_url: String) -> OpenAiClient {
    let mut cfg = OpenAiConfig::new(base_url);
    cfg.connect_timeout = Duration::from_millis(500);
    cfg.first_token_timeout = Duration::from_millis(1500);
    cfg.idle_timeout = Duration::from_millis(1500);
    cfg.total_timeout = Duration::from_secs(10);
    cfg.retry.initial_backoff = Duration::from_millis(20);
    cfg.retry.max_backoff = Duration::from_millis(100);
    OpenAiClient::new(cfg).unwrap()
}

async fn with_fake(config: FakeLlmConfig) -> (TestApp, RunningFakeLlm, String) {
    let fake = fake_llm::spawn(config).await.unwrap();
    let app = TestApp::builder()
        .llm(client(fake.base_url()))
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    (app, fake, id)
}

fn quick() -> FakeLlmConfig {
    FakeLlmConfig {
        reply_tokens: 6,
        ..FakeLlmConfig::for_tests()
    }
}

#[tokio::test]
async fn a_real_provider_reply_is_stored_with_usage() {
    let (app, fake, id) = with_fake(quick()).await;
    let r = app.send("alice", &id, "hello provider").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let t: Value = r.json().await.unwrap();
    assert_eq!(
        t["reply"]["content"],
        fake_llm::reply_text("hello provider", 6)
    );
    assert_eq!(t["reply"]["status"], "complete");
    assert!(t["reply"]["usage"]["completionTokens"].as_u64().unwrap() > 0);
    assert!(t["reply"]["usage"]["promptTokens"].as_u64().unwrap() > 0);
    assert_eq!(fake.stats().requests(), 1);
}

#[tokio::test]
async fn provider_down_is_502_and_the_message_is_kept() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::builder()
        .llm(client(format!("http://127.0.0.1:{port}/v1")))
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let started = Instant::now();
    let p = problem(
        app.send("alice", id, "anyone?").await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(p["message"]["content"], "anyone?");
    let stored = app.messages("alice", id).await;
    assert_eq!(stored[0]["content"], "anyone?");
    assert_eq!(stored[1]["status"], "failed");
    assert!(!stored[1]["error"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_429_then_success_is_retried_transparently() {
    let (app, fake, id) = with_fake(quick()).await;
    let r = app.send("alice", &id, "[fault:429x1] please").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["reply"]["status"], "complete");
    assert_eq!(fake.stats().requests(), 2);
}

#[tokio::test]
async fn a_server_error_every_time_is_502_after_retries() {
    let (app, fake, id) = with_fake(quick()).await;
    let p = problem(
        app.send("alice", &id, "[fault:500] hi").await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("500"), "{p}");
    assert_eq!(fake.stats().requests(), 3, "one try and two retries");
    assert_eq!(app.messages("alice", &id).await[1]["status"], "failed");
}

#[tokio::test]
async fn a_stream_cut_midway_is_a_failed_reply_with_its_partial_text() {
    let (app, _fake, id) = with_fake(FakeLlmConfig {
        reply_tokens: 20,
        ..FakeLlmConfig::for_tests()
    })
    .await;
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={id}"),
            json!({"content": "[fault:cut] tell me"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.first().unwrap().0, "message");
    assert_eq!(events.last().unwrap().0, "error");
    assert_eq!(events.last().unwrap().1["status"], 502);
    let stored = app.messages("alice", &id).await;
    assert_eq!(stored[1]["status"], "failed");
    let partial: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["content"].as_str().unwrap())
        .collect();
    assert_eq!(stored[1]["content"], partial.as_str());
}

#[tokio::test]
async fn a_stalled_provider_is_504_within_the_timeout() {
    let (app, _fake, id) = with_fake(quick()).await;
    let started = Instant::now();
    let p = problem(
        app.send("alice", &id, "[fault:stall] wait").await,
        StatusCode::GATEWAY_TIMEOUT,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(p["type"], "/problems/llm-timeout");
    assert_eq!(app.messages("alice", &id).await[1]["status"], "failed");
}

#[tokio::test]
async fn malformed_chunks_fail_the_reply() {
    let (app, _fake, id) = with_fake(quick()).await;
    problem(
        app.send("alice", &id, "[fault:malformed] x").await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(app.messages("alice", &id).await[1]["status"], "failed");
}

#[tokio::test]
async fn regenerate_after_a_failure_succeeds_without_resending_the_message() {
    let (app, _fake, id) = with_fake(quick()).await;
    let p = problem(
        app.send("alice", &id, "[fault:500x3] again").await,
        StatusCode::BAD_GATEWAY,
    )
    .await;
    let rid = p["reply"]["id"].as_str().unwrap();
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages/{rid}/regenerate"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["reply"]["status"], "complete");
    // The active branch: the one question and the new reply (the failed one is its
    // sibling, off the branch).
    let stored = app.messages("alice", &id).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored.iter().filter(|m| m["role"] == "user").count(), 1);
    assert_eq!(stored[1]["id"], t["reply"]["id"]);
    assert_eq!(stored[1]["branch"]["index"], 2);
}

fn slow() -> FakeLlmConfig {
    FakeLlmConfig {
        reply_tokens: 30,
        tokens_per_sec: 20,
        ..FakeLlmConfig::for_tests()
    }
}

#[tokio::test]
async fn a_client_disconnect_does_not_lose_the_reply() {
    let (app, fake, id) = with_fake(slow()).await;
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={id}"),
            json!({"content": "go on"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    body.next().await;
    drop(body);
    for _ in 0..100 {
        let ms = app.messages("alice", &id).await;
        if ms[1]["status"] != "streaming" {
            assert_eq!(ms[1]["status"], "complete");
            assert_eq!(ms[1]["content"], fake_llm::reply_text("go on", 30));
            assert_eq!(fake.stats().finished(), 1);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the reply was never stored");
}

#[tokio::test]
async fn cancel_closes_the_upstream_request() {
    let (app, fake, id) = with_fake(slow()).await;
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={id}"),
            json!({"content": "long story"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    crate::helpers::read_until(&mut body, "event: delta").await;
    let rid = app.messages("alice", &id).await[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages/{rid}/cancel"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["status"], "cancelled");
    for _ in 0..50 {
        if fake.stats().dropped() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fake-llm never saw the request go away");
}
