//! The API on PostgreSQL: the full flow, durability across restarts, two replicas
//! writing to one chat, and a database outage answered with 503 then recovered.

use crate::helpers::{problem, sse_events, TestApp};
use infra_postgres::testing::proxy::{url_target, via, Proxy};
use infra_postgres::testing::TestDb;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_full_flow_works_on_postgres() {
    let app = TestApp::builder().postgres().spawn().await;
    let chat = app.create_chat("alice", "Trip to LISBON").await;
    let id = chat["id"].as_str().unwrap();
    let t: Value = app.send("alice", id, "hello").await.json().await.unwrap();
    assert_eq!(t["reply"]["content"], "Echo: hello");
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={id}"),
            json!({"content": "streamed"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().0, "reply");
    let found: Value = app
        .get("alice", "/api/v1/chats/search?q=lisbon")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["id"], id);
    assert_eq!(found["items"][0]["messageCount"], 4);
    let rid = t["reply"]["id"].as_str().unwrap();
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
    // Deleting the old reply takes the branch below it (the streamed turn); the
    // regenerated reply closes up to seq 2.
    assert_eq!(
        app.delete("alice", &format!("/api/v1/messages/{rid}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let seqs: Vec<u64> = app
        .messages("alice", id)
        .await
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
    problem(
        app.get("bob", &format!("/api/v1/chats/{id}"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        app.delete("alice", &format!("/api/v1/chats/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["storage"], "ok");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let db = TestDb::new();
    let first = TestApp::builder().database_url(db.url()).spawn().await;
    let chat = first.create_chat("alice", "Durable").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    first.send("alice", &id, "remember me").await;
    drop(first);
    let second = TestApp::builder().database_url(db.url()).spawn().await;
    let stored = second.messages("alice", &id).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["content"], "remember me");
    assert_eq!(stored[1]["status"], "complete");
}

/// Sends until acknowledged, waiting out 409s (the other replica's reply in progress).
async fn send_acked(app: &TestApp, chat: &str, content: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.send("alice", chat, content).await;
        match r.status() {
            StatusCode::CREATED => return r.json().await.unwrap(),
            StatusCode::CONFLICT => {
                assert!(Instant::now() < deadline, "never acknowledged");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_hammering_one_chat_leave_a_gapless_sequence() {
    let db = TestDb::new();
    let a = TestApp::builder().database_url(db.url()).spawn().await;
    let b = TestApp::builder().database_url(db.url()).spawn().await;
    let chat = a.create_chat("alice", "Busy").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    let writers = [&a, &b, &a, &b].map(|app| {
        let id = id.clone();
        let app = TestApp {
            address: app.address.clone(),
            client: app.client.clone(),
            _db: None,
            _background: None,
        };
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..6 {
                let t = send_acked(&app, &id, &format!("m{i}")).await;
                acked.push(t["message"]["id"].as_str().unwrap().to_owned());
                acked.push(t["reply"]["id"].as_str().unwrap().to_owned());
            }
            acked
        })
    });
    let mut acked = BTreeSet::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let stored = b.messages("alice", &id).await;
    let seqs: Vec<u64> = stored.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=48).collect::<Vec<u64>>());
    let ids: BTreeSet<String> = stored
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_then_recovers_without_a_restart() {
    let db = TestDb::new();
    let mut proxy = Proxy::start(url_target(db.url())).await;
    let app = TestApp::builder()
        .database_url(&via(db.url(), proxy.addr()))
        .env("DB_WAIT_TIMEOUT_MS", "500")
        .env("DB_CONNECT_TIMEOUT_MS", "500")
        .spawn()
        .await;
    let chat = app.create_chat("alice", "Outage").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    proxy.kill().await;

    let started = Instant::now();
    let r = app
        .get("alice", &format!("/api/v1/chats/{id}"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    let p = problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        !p["detail"].as_str().unwrap().contains("postgres"),
        "no internals in the body: {p}"
    );
    let r = app.send("alice", &id, "lost?").await;
    problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let ready = problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(ready["checks"]["storage"], "unavailable", "{ready}");
    // Each check's state only: no host, port or driver error text (that is logged).
    let text = ready.to_string().to_lowercase();
    for leak in [
        proxy.addr().port().to_string(),
        "127.0.0.1".to_owned(),
        "postgres".to_owned(),
        "connect".to_owned(),
        "error".to_owned(),
    ] {
        assert!(!text.contains(&leak), "{leak:?} in {ready}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "outage answers took {:?}",
        started.elapsed()
    );

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = app
            .get("alice", &format!("/api/v1/chats/{id}"))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = send_acked(&app, &id, "back").await;
    assert_eq!(t["message"]["seq"], 1, "the refused send stored nothing");
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_report_the_pools_and_the_outbox_backlog() {
    let app = TestApp::builder().postgres().spawn().await;
    app.create_chat("alice", "metered").await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "db_pool_max_connections{pool=\"requests\"} 8",
        "db_pool_max_connections{pool=\"relay\"} 2",
        "db_pool_connections_in_use{pool=\"requests\"}",
        "db_pool_waiting{pool=\"relay\"}",
        "outbox_backlog ",
        "outbox_dead 0",
        "outbox_dead_total 0",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_finishing_while_the_database_is_down_is_stored_when_it_returns() {
    let db = TestDb::new();
    let mut proxy = Proxy::start(url_target(db.url())).await;
    let app = TestApp::builder()
        .database_url(&via(db.url(), proxy.addr()))
        .env("DB_WAIT_TIMEOUT_MS", "300")
        .env("DB_CONNECT_TIMEOUT_MS", "300")
        .llm(infra_llm::EchoModel::with_delay(Duration::from_millis(200)))
        .spawn()
        .await;
    let chat = app.create_chat("alice", "blip").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={id}"),
            json!({"content": "one two three four"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    let mut seen = crate::helpers::read_until(&mut body, "event: delta").await;
    proxy.kill().await;
    // The reply finishes (about 1 s) while the database is unreachable; its final write is retried.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.restore().await;
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let events = sse_events(&seen);
    assert_eq!(events.last().unwrap().0, "reply", "{seen}");
    assert_eq!(events.last().unwrap().1["status"], "complete");
    let stored = app.messages("alice", &id).await;
    assert_eq!(stored[1]["status"], "complete");
    assert_eq!(stored[1]["content"], "Echo: one two three four");
}
