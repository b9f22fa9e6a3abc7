//! Two service instances on one database and one Redis (each a full `Application`
//! with its own port, wiring and live adapter, as two replicas would be): a stream cut
//! on A resumes on B with the exact text; a cancel on B stops A's provider stream; one
//! user's limit holds over A and B together. Redis: `REDIS_URL`, else 127.0.0.1:6379;
//! every test under a key prefix of its own.

use crate::helpers::TestApp;
use crate::redis_support::{redis_url, sse_events, Sse};
use fake_llm::{FakeLlmConfig, RunningFakeLlm};
use infra_llm::{OpenAiClient, OpenAiConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

pub struct Pair {
    pub a: TestApp,
    pub b: TestApp,
    pub fake: RunningFakeLlm,
    _db: infra_postgres::testing::TestDb,
}

/// A and B on one fresh database and `redis` (with `extra` settings), both calling one fake provider.
pub async fn pair(fake: FakeLlmConfig, redis: &str, extra: &[(&str, &str)]) -> Pair {
    let db = infra_postgres::testing::TestDb::new();
    let fake = fake_llm::spawn(fake).await.unwrap();
    let prefix = format!("test:{}:", uuid::Uuid::now_v7());
    let app = |_: &str| {
        let mut b = TestApp::builder()
            .database_url(db.url())
            .env("REDIS_URL", redis)
            .env("REDIS_KEY_PREFIX", &prefix)
            .llm(OpenAiClient::new(OpenAiConfig::new(fake.base_url())).unwrap());
        for (k, v) in extra {
            b = b.env(k, v);
        }
        b.spawn()
    };
    let a = app("a").await;
    let b = app("b").await;
    Pair {
        a,
        b,
        fake,
        _db: db,
    }
}

fn slow(tokens: u32, per_sec: u32) -> FakeLlmConfig {
    FakeLlmConfig {
        reply_tokens: tokens,
        tokens_per_sec: per_sec,
        ..FakeLlmConfig::for_tests()
    }
}

pub fn stream_send(app: &TestApp, chat: &str, content: &str) -> reqwest::RequestBuilder {
    app.post(
        "alice",
        &format!("/api/v1/messages?chatId={chat}"),
        json!({ "content": content }),
    )
    .header("accept", "text/event-stream")
}

/// The chat's reply being generated (as another replica lists it).
pub async fn streaming_reply(app: &TestApp, chat: &str) -> Value {
    for _ in 0..300 {
        if let Some(r) = app
            .messages("alice", chat)
            .await
            .into_iter()
            .find(|m| m["role"] == "assistant")
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no reply was listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_on_a_resumes_on_b_with_the_exact_text() {
    let p = pair(slow(80, 40), &redis_url(), &[]).await;
    let chat = p.a.create_chat("alice", "resume").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = stream_send(&p.a, &chat, "tell me").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut first = Sse::new(r);
    let mut have = String::new();
    let mut last_id = String::new();
    let mut deltas = 0;
    while deltas < 3 {
        let e = first.next().await.expect("an event before the cut");
        if e.event == "delta" {
            have.push_str(e.data["content"].as_str().unwrap());
            assert_eq!(
                e.id,
                have.len().to_string(),
                "a delta's id is its end offset"
            );
            last_id = e.id.clone();
            deltas += 1;
        }
    }
    drop(first); // the client goes away (a reload)
    let reply = streaming_reply(&p.b, &chat).await;
    let id = reply["id"].as_str().unwrap();
    let r =
        p.b.get("alice", &format!("/api/v1/messages/{id}/stream"))
            .header("last-event-id", &last_id)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let events = sse_events(r).await;
    let mut rest = String::new();
    let mut at = have.len();
    for e in &events[..events.len() - 1] {
        assert_eq!(e.event, "delta", "{events:?}");
        let piece = e.data["content"].as_str().unwrap();
        at += piece.len();
        assert_eq!(e.id, at.to_string());
        rest.push_str(piece);
    }
    let end = events.last().unwrap();
    assert_eq!((end.event.as_str(), end.id.as_str()), ("reply", "end"));
    assert_eq!(end.data["status"], "complete");
    let whole = end.data["content"].as_str().unwrap();
    assert_eq!(
        format!("{have}{rest}"),
        whole,
        "nothing missing, nothing doubled"
    );
    // The stored reply is the same text, on either replica.
    let stored: Value =
        p.a.get("alice", &format!("/api/v1/messages/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(stored["content"], whole);
    // Resuming a finished reply on A: the missing text and the final event at once.
    let r =
        p.a.get(
            "alice",
            &format!("/api/v1/messages/{id}/stream?after={}", have.len()),
        )
        .send()
        .await
        .unwrap();
    let again = sse_events(r).await;
    let text: String = again
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.data["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, rest);
    assert_eq!(again.last().unwrap().event, "reply");
    // Another user's reply is not found, on any replica.
    let r =
        p.b.get("mallory", &format!("/api/v1/messages/{id}/stream"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_on_b_stops_the_provider_stream_on_a() {
    let p = pair(slow(400, 10), &redis_url(), &[]).await;
    let chat = p.a.create_chat("alice", "cancel").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = stream_send(&p.a, &chat, "go on").send().await.unwrap();
    let mut stream = Sse::new(r);
    loop {
        let e = stream.next().await.expect("an event");
        if e.event == "delta" {
            break;
        }
    }
    let reply = streaming_reply(&p.b, &chat).await;
    let id = reply["id"].as_str().unwrap();
    let r =
        p.b.post("alice", &format!("/api/v1/messages/{id}/cancel"), json!({}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        !cancelled["content"].as_str().unwrap().is_empty(),
        "the partial text is kept: {cancelled}"
    );
    // A's provider stream is closed (the fake sees its client go away)…
    let mut dropped = false;
    for _ in 0..300 {
        if p.fake.stats().dropped() == 1 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped, "the provider never saw the request go away");
    assert_eq!(
        p.fake.stats().finished(),
        0,
        "the reply never ran to its end"
    );
    // …and A's client gets the cancelled reply as the final event.
    let mut last = None;
    while let Some(e) = stream.next().await {
        last = Some(e);
    }
    let last = last.expect("a final event");
    assert_eq!(last.event, "reply");
    assert_eq!(last.data["status"], "cancelled");
    assert_eq!(last.data["content"], cancelled["content"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_send_limit_holds_over_both_replicas() {
    const N: usize = 4;
    let p = pair(
        slow(2, 0),
        &redis_url(),
        &[
            ("RATE_LIMIT_SENDS_PER_MIN", "1"),
            ("RATE_LIMIT_SENDS_BURST", "4"),
        ],
    )
    .await;
    let mut allowed = 0;
    let mut limited = 0;
    for i in 0..2 * N {
        let app = if i % 2 == 0 { &p.a } else { &p.b };
        let chat = app.create_chat("alice", "limits").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app.send("alice", &chat, "hi").await;
        match r.status() {
            StatusCode::CREATED => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(r.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (allowed, limited),
        (N, N),
        "N replicas do not multiply the limit"
    );
    // Another user has a bucket of their own.
    let chat = p.b.create_chat("bob", "other").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        p.b.send("bob", &chat, "hi").await.status(),
        StatusCode::CREATED
    );
}
