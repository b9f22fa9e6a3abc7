//! Live replies: SSE ids and resuming with `Last-Event-ID`/`after` (exact text, whatever
//! the chunks), partial text while generating, cancel and resume from another replica,
//! a lapsed lease freeing its chat, the busy 409 naming the reply, an idempotent retry
//! following the live reply, U+0000 in provider output, shared rate limits.

use crate::helpers::{problem, read_until, sse_events_with_ids, TestApp};
use crate::live_support::{SharedLive, Ticker};
use domain::services::LiveConfig;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn stream_send(app: &TestApp, chat: &str, content: &str) -> reqwest::RequestBuilder {
    app.post(
        "alice",
        &format!("/api/v1/messages?chatId={chat}"),
        json!({ "content": content }),
    )
    .header("accept", "text/event-stream")
}

fn follow(app: &TestApp, user: &str, reply: &str) -> reqwest::RequestBuilder {
    follow_after(app, user, reply, "")
}

fn follow_after(app: &TestApp, user: &str, reply: &str, query: &str) -> reqwest::RequestBuilder {
    app.get(user, &format!("/api/v1/messages/{reply}/stream{query}"))
}

/// Reads a body until at least `n` complete `delta` events arrived.
async fn read_deltas<S>(body: &mut S, n: usize) -> String
where
    S: futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    let mut seen = String::new();
    while sse_events_with_ids(&seen)
        .iter()
        .filter(|e| e.1 == "delta")
        .count()
        < n
    {
        let chunk = tokio::time::timeout(Duration::from_secs(30), body.next())
            .await
            .expect("deltas come")
            .expect("the stream goes on")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

/// The text of the deltas, checking each id is the byte offset where its delta ends.
fn joined(events: &[(String, String, Value)], from: u64) -> String {
    let mut text = String::new();
    for (id, _, data) in events.iter().filter(|e| e.1 == "delta") {
        text.push_str(data["content"].as_str().unwrap());
        assert_eq!(
            id.parse::<u64>().unwrap(),
            from + text.len() as u64,
            "{events:?}"
        );
    }
    text
}

async fn the_reply_id(app: &TestApp, chat: &str) -> String {
    app.messages("alice", chat).await[1]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn finished(app: &TestApp, reply: &str) -> Value {
    for _ in 0..600 {
        let m: Value = app
            .get("alice", &format!("/api/v1/messages/{reply}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if m["status"] != "streaming" {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the reply never finished");
}

#[tokio::test]
async fn a_cut_stream_resumes_with_exactly_the_missing_text() {
    let ticker = Ticker::new(30, 40);
    let app = TestApp::builder().llm(ticker.clone()).spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let chat = chat["id"].as_str().unwrap();
    let r = stream_send(&app, chat, "go").send().await.unwrap();
    let mut body = r.bytes_stream();
    let seen = read_deltas(&mut body, 3).await;
    drop(body); // The client goes away mid-reply.
    let before = sse_events_with_ids(&seen);
    assert_eq!(
        (before[0].0.as_str(), before[0].1.as_str()),
        ("0", "message")
    );
    let had = joined(&before, 0);
    let last_id = before
        .iter()
        .rev()
        .find(|e| e.1 == "delta")
        .unwrap()
        .0
        .clone();
    assert_eq!(last_id.parse::<usize>().unwrap(), had.len());
    let reply = the_reply_id(&app, chat).await;

    let r = follow(&app, "alice", &reply)
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let rest = sse_events_with_ids(&r.text().await.unwrap());
    let more = joined(&rest, had.len() as u64);
    let last = rest.last().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("end", "reply"));
    assert_eq!(last.2["status"], "complete");
    assert_eq!(
        format!("{had}{more}"),
        ticker.text(),
        "no gap, no duplicate"
    );
    assert_eq!(last.2["content"], ticker.text().as_str());

    // Finished: the missing text and the final event at once, from any offset.
    for after in [0usize, 1, 7, had.len()] {
        if !ticker.text().is_char_boundary(after) {
            continue;
        }
        let r = follow_after(&app, "alice", &reply, &format!("?after={after}"))
            .send()
            .await
            .unwrap();
        let events = sse_events_with_ids(&r.text().await.unwrap());
        assert_eq!(joined(&events, after as u64), &ticker.text()[after..]);
        assert_eq!(events.last().unwrap().1, "reply");
    }
    // `end`: only the final event; another user: 404; a split character: 422.
    let r = follow(&app, "alice", &reply)
        .header("last-event-id", "end")
        .send()
        .await
        .unwrap();
    let events = sse_events_with_ids(&r.text().await.unwrap());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1, "reply");
    let r = follow(&app, "bob", &reply).send().await.unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
    let r = follow_after(&app, "alice", &reply, "?after=2")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let r = follow(&app, "alice", &reply)
        .header("last-event-id", "nope")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn a_streaming_reply_shows_its_text_so_far_and_stores_what_was_streamed() {
    let ticker = Ticker::new(40, 30);
    let app = TestApp::builder().llm(ticker.clone()).spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let chat = chat["id"].as_str().unwrap();
    let r = stream_send(&app, chat, "go").send().await.unwrap();
    let mut body = r.bytes_stream();
    read_deltas(&mut body, 8).await;
    let reply = the_reply_id(&app, chat).await;
    let m: Value = app
        .get("alice", &format!("/api/v1/messages/{reply}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "streaming");
    let partial = m["content"].as_str().unwrap();
    assert!(
        !partial.is_empty() && ticker.text().starts_with(partial),
        "{partial:?}"
    );
    let listed = app.messages("alice", chat).await;
    assert_eq!(listed[1]["status"], "streaming");
    assert!(!listed[1]["content"].as_str().unwrap().is_empty());
    let mut rest = String::new();
    while let Some(chunk) = body.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let done = finished(&app, &reply).await;
    // U+0000 from the provider is removed before anything is streamed or stored.
    assert_eq!(done["content"], ticker.text().as_str());
    assert!(!ticker.text().contains('\0'));
}

#[tokio::test]
async fn the_busy_answer_names_the_reply_and_links_its_stream() {
    let app = TestApp::builder().llm(Ticker::new(50, 200)).spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let chat = chat["id"].as_str().unwrap();
    let r = stream_send(&app, chat, "go").send().await.unwrap();
    let mut body = r.bytes_stream();
    read_until(&mut body, "event: delta").await;
    let reply = the_reply_id(&app, chat).await;
    let r = app.send("alice", chat, "again").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.headers()["link"],
        format!("</api/v1/messages/{reply}/stream>; rel=\"related\"").as_str()
    );
    assert!(r.headers().contains_key("retry-after"));
    let p = problem(r, StatusCode::CONFLICT).await;
    assert_eq!(p["replyId"], reply.as_str());
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages/{reply}/cancel"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_idempotent_retry_follows_the_live_reply() {
    let ticker = Ticker::new(30, 30);
    let app = TestApp::builder().llm(ticker.clone()).spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let chat = chat["id"].as_str().unwrap();
    let send = || stream_send(&app, chat, "go").header("idempotency-key", "k-1");
    let r = send().send().await.unwrap();
    let mut body = r.bytes_stream();
    read_deltas(&mut body, 2).await;
    drop(body);
    let r = send().send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let events = sse_events_with_ids(&r.text().await.unwrap());
    assert_eq!(events[0].1, "message");
    assert_eq!(joined(&events, 0), ticker.text());
    assert_eq!(events.last().unwrap().2["content"], ticker.text().as_str());
    assert_eq!(
        ticker.started.load(Ordering::SeqCst),
        1,
        "one provider call"
    );
    // As JSON, the retry waits for the end (followed, not polled).
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={chat}"),
            json!({"content": "go"}),
        )
        .header("idempotency-key", "k-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let turn: Value = r.json().await.unwrap();
    assert_eq!(turn["reply"]["content"], ticker.text().as_str());
}

/// Two replicas on one database and one shared live state.
async fn two_replicas(
    ticker: &Ticker,
    config: LiveConfig,
) -> (TestApp, TestApp, SharedLive, SharedLive) {
    let live_a = SharedLive::new();
    let live_b = live_a.handle();
    let a = TestApp::builder()
        .postgres()
        .llm(ticker.clone())
        .live(Arc::new(live_a.clone()))
        .live_config(config.clone())
        .spawn()
        .await;
    let url = a._db.as_ref().unwrap().url().to_owned();
    let b = TestApp::builder()
        .database_url(&url)
        .llm(ticker.clone())
        .live(Arc::new(live_b.clone()))
        .live_config(config)
        .spawn()
        .await;
    (a, b, live_a, live_b)
}

#[tokio::test]
async fn another_replica_resumes_and_cancels_and_the_provider_stops() {
    let ticker = Ticker::new(50, 2_000);
    let (a, b, _, _) = two_replicas(&ticker, LiveConfig::default()).await;
    let chat = a.create_chat("alice", "c").await;
    let chat = chat["id"].as_str().unwrap();
    let r = stream_send(&a, chat, "go").send().await.unwrap();
    let mut on_a = r.bytes_stream();
    read_deltas(&mut on_a, 3).await;
    let reply = the_reply_id(&a, chat).await;
    // B follows A's reply from the start.
    let r = follow(&b, "alice", &reply).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut on_b = r.bytes_stream();
    let seen_b = read_deltas(&mut on_b, 2).await;
    // Cancel on B stops A's provider stream.
    let r = b
        .post(
            "alice",
            &format!("/api/v1/messages/{reply}/cancel"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let partial = cancelled["content"].as_str().unwrap().to_owned();
    assert!(!partial.is_empty() && ticker.text().starts_with(&partial));
    tokio::time::timeout(Duration::from_secs(10), async {
        while !ticker.closed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the provider's stream was closed");
    // Both streams end with the cancelled reply; B's text is exactly the partial text.
    let mut rest_b = seen_b;
    while let Some(chunk) = on_b.next().await {
        rest_b.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let mut all_b = String::new();
    let seen_b = sse_events_with_ids(&rest_b);
    all_b.push_str(&joined(&seen_b, 0));
    let last = seen_b.last().unwrap();
    assert_eq!(
        (last.1.as_str(), last.2["status"].as_str()),
        ("reply", Some("cancelled"))
    );
    assert_eq!(all_b, partial);
    let mut rest_a = String::new();
    while let Some(chunk) = on_a.next().await {
        rest_a.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let last = sse_events_with_ids(&rest_a).pop().unwrap();
    assert_eq!(last.2["status"], "cancelled");
    assert_eq!(
        a.messages("alice", chat).await[1]["content"],
        partial.as_str()
    );
}

#[tokio::test]
async fn a_reply_whose_lease_lapsed_is_failed_with_its_text_and_frees_the_chat() {
    let ticker = Ticker::new(50, 2_000);
    let config = LiveConfig {
        lease_ttl: Duration::from_secs(1),
        renew_every: Duration::from_millis(200),
        ..LiveConfig::default()
    };
    let (a, b, live_a, _) = two_replicas(&ticker, config).await;
    let chat = a.create_chat("alice", "c").await;
    let chat = chat["id"].as_str().unwrap();
    let r = stream_send(&a, chat, "go").send().await.unwrap();
    let mut on_a = r.bytes_stream();
    read_deltas(&mut on_a, 3).await;
    let reply = the_reply_id(&a, chat).await;
    let r = b.send("alice", chat, "busy?").await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "A renews its lease");
    // A loses the shared state (as if killed): its lease lapses; B's sweep marks the
    // reply failed with the text the shared state holds, and the chat is free again.
    live_a.down.store(true, Ordering::SeqCst);
    let failed = finished(&b, &reply).await;
    assert_eq!(failed["status"], "failed");
    let text = failed["content"].as_str().unwrap();
    assert!(
        !text.is_empty() && ticker.text().starts_with(text),
        "{text:?}"
    );
    let r = stream_send(&b, chat, "again").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn cancel_from_another_replica_is_503_while_the_shared_state_is_down() {
    let ticker = Ticker::new(50, 400);
    let (a, b, _, live_b) = two_replicas(&ticker, LiveConfig::default()).await;
    let chat = a.create_chat("alice", "c").await;
    let chat = chat["id"].as_str().unwrap();
    let r = stream_send(&a, chat, "go").send().await.unwrap();
    let mut on_a = r.bytes_stream();
    read_deltas(&mut on_a, 2).await;
    let reply = the_reply_id(&a, chat).await;
    live_b.down.store(true, Ordering::SeqCst);
    let r = b
        .post(
            "alice",
            &format!("/api/v1/messages/{reply}/cancel"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    let p = problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(p["type"], "/problems/unavailable");
    let r = follow(&b, "alice", &reply).send().await.unwrap();
    problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    // A's own client is not affected; and B recovers by itself.
    live_b.down.store(false, Ordering::SeqCst);
    let r = b
        .post(
            "alice",
            &format!("/api/v1/messages/{reply}/cancel"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    read_until(&mut on_a, "\"cancelled\"").await;
}

#[tokio::test]
async fn rate_limits_hold_across_replicas_sharing_live_state() {
    let live = SharedLive::new();
    let spawn = |live: SharedLive| {
        TestApp::builder()
            .env("RATE_LIMIT_SENDS_PER_MIN", "1")
            .env("RATE_LIMIT_SENDS_BURST", "2")
            .live(Arc::new(live))
            .spawn()
    };
    let a = spawn(live.handle()).await;
    let b = spawn(live.handle()).await;
    let (ca, cb) = (
        a.create_chat("alice", "a").await,
        b.create_chat("alice", "b").await,
    );
    let (ca, cb) = (ca["id"].as_str().unwrap(), cb["id"].as_str().unwrap());
    assert_eq!(a.send("alice", ca, "1").await.status(), StatusCode::CREATED);
    assert_eq!(b.send("alice", cb, "2").await.status(), StatusCode::CREATED);
    let r = a.send("alice", ca, "3").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "one limit over both"
    );
    assert_eq!(
        b.send("alice", cb, "3").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        b.send("bob", cb, "x").await.status(),
        StatusCode::NOT_FOUND,
        "per user"
    );
    // The shared state down: requests pass (fail open).
    let down = live.handle();
    let c = spawn(down.clone()).await;
    let cc = c.create_chat("alice", "c").await;
    down.down.store(true, Ordering::SeqCst);
    let cc = cc["id"].as_str().unwrap();
    assert_eq!(c.send("alice", cc, "4").await.status(), StatusCode::CREATED);
    let metrics = c
        .client
        .get(c.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("chat_rate_limit_fail_open_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn provider_nul_characters_are_removed_and_postgres_stores_the_reply() {
    let ticker = Ticker::new(5, 16);
    assert!(ticker.words.iter().any(|w| w.contains('\0')));
    let app = TestApp::builder()
        .postgres()
        .llm(ticker.clone())
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let chat = chat["id"].as_str().unwrap();
    let r = stream_send(&app, chat, "go").send().await.unwrap();
    let events = sse_events_with_ids(&r.text().await.unwrap());
    assert_eq!(joined(&events, 0), ticker.text(), "streamed without U+0000");
    let last = events.last().unwrap();
    assert_eq!(
        (last.1.as_str(), last.2["status"].as_str()),
        ("reply", Some("complete"))
    );
    let stored = app.messages("alice", chat).await;
    assert_eq!(stored[1]["status"], "complete");
    assert_eq!(
        stored[1]["content"],
        ticker.text().as_str(),
        "stored == streamed"
    );
    let r = app.send("alice", chat, "again").await;
    assert_eq!(r.status(), StatusCode::CREATED, "the chat is not wedged");
}
