//! Redis down under two replicas (issue 12 item 9), against a `redis-server` this test
//! starts and kills itself: sends still stream to their own client and are stored,
//! resume and cross-replica cancel answer 503 `unavailable` with `Retry-After`, rate
//! limits fail open (counted), `/readyz` stays 200 and shows it; then Redis comes back
//! (empty) and everything works again by itself.

use crate::redis_support::{sse_events, OwnRedis, Sse};
use crate::replicas_redis::{pair, stream_send, streaming_reply};
use fake_llm::FakeLlmConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn readyz(app: &crate::helpers::TestApp) -> (StatusCode, Value) {
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn metric(app: &crate::helpers::TestApp, prefix: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn chat(app: &crate::helpers::TestApp) -> String {
    app.create_chat("alice", "down").await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_degrades_with_503s_loses_nothing_and_recovers_by_itself() {
    let mut redis = OwnRedis::start();
    let p = pair(
        FakeLlmConfig {
            reply_tokens: 100,
            tokens_per_sec: 20,
            ..FakeLlmConfig::for_tests()
        },
        &redis.url(),
        &[
            ("RATE_LIMIT_SENDS_PER_MIN", "1"),
            ("RATE_LIMIT_SENDS_BURST", "1"),
            ("REDIS_TIMEOUT_MS", "500"),
        ],
    )
    .await;
    let (c1, c2, c3) = (chat(&p.a).await, chat(&p.a).await, chat(&p.a).await);
    assert_eq!(readyz(&p.a).await.1["checks"]["redis"], "ok");
    redis.kill();

    // A send on A streams to its own client.
    let r = stream_send(&p.a, &c1, "while redis is down")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut own = Sse::new(r);
    loop {
        if own.next().await.expect("an event").event == "delta" {
            break;
        }
    }
    let reply = streaming_reply(&p.b, &c1).await;
    let id = reply["id"].as_str().unwrap().to_owned();
    // Resume and cancel on B need Redis: 503 unavailable with Retry-After.
    let r =
        p.b.get("alice", &format!("/api/v1/messages/{id}/stream"))
            .send()
            .await
            .unwrap();
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    let problem = crate::helpers::problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        problem["type"].as_str().unwrap().ends_with("/unavailable"),
        "{problem}"
    );
    let r =
        p.b.post("alice", &format!("/api/v1/messages/{id}/cancel"), json!({}))
            .send()
            .await
            .unwrap();
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    crate::helpers::problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    // The reply runs to its end on A and is stored: nothing acknowledged is lost.
    let mut last = None;
    while let Some(e) = own.next().await {
        last = Some(e);
    }
    let last = last.expect("a final event");
    assert_eq!(
        (last.event.as_str(), &last.data["status"]),
        ("reply", &json!("complete"))
    );
    let stored: Value =
        p.b.get("alice", &format!("/api/v1/messages/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(stored["status"], "complete");
    assert_eq!(stored["content"], last.data["content"]);
    // Rate limits fail open (the burst of 1 is spent above), counted and logged.
    for c in [&c2, &c3] {
        assert_eq!(
            p.a.send("alice", c, "more").await.status(),
            StatusCode::CREATED
        );
    }
    assert!(metric(&p.a, "chat_rate_limit_fail_open_total").await >= 1.0);
    assert!(
        metric(
            &p.a,
            "redis_operations_total{op=\"rate_limit\",outcome=\"unavailable\"}"
        )
        .await
            >= 1.0
    );
    // Readiness is not failed by Redis: 200, with redis unavailable.
    let (status, body) = readyz(&p.b).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["redis"], "unavailable");

    // Redis comes back, empty: both replicas use it again by themselves.
    redis.restart();
    for app in [&p.a, &p.b] {
        let mut ok = false;
        for _ in 0..300 {
            if readyz(app).await.1["checks"]["redis"] == "ok" {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ok, "redis never reported ok again");
    }
    let r = stream_send(&p.a, &c1, "and now").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut own = Sse::new(r);
    let mut have = String::new();
    while have.is_empty() {
        let e = own.next().await.expect("an event");
        if e.event == "delta" {
            have.push_str(e.data["content"].as_str().unwrap());
        }
    }
    drop(own);
    let replies: Vec<Value> =
        p.b.messages("alice", &c1)
            .await
            .into_iter()
            .filter(|m| m["role"] == "assistant")
            .collect();
    let id = replies.last().unwrap()["id"].as_str().unwrap().to_owned();
    let r =
        p.b.get(
            "alice",
            &format!("/api/v1/messages/{id}/stream?after={}", have.len()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let events = sse_events(r).await;
    let rest: String = events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.data["content"].as_str().unwrap().to_owned())
        .collect();
    let end = events.last().unwrap();
    assert_eq!(end.event, "reply");
    assert_eq!(
        format!("{have}{rest}"),
        end.data["content"].as_str().unwrap()
    );
    // And the shared limit holds again: the burst (1) went to the send above.
    let c4 = chat(&p.b).await;
    assert_eq!(
        p.b.send("alice", &c4, "over").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
