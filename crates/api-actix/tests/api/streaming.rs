//! The streaming send (SSE), chat busy while generating, cancel, and replies that
//! survive the client going away.

use crate::helpers::{problem, sse_events, TestApp};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

fn slow_app() -> crate::helpers::TestAppBuilder {
    TestApp::builder().llm(infra_llm::EchoModel::with_delay(Duration::from_millis(150)))
}

fn stream_send(app: &TestApp, chat: &str, content: &str) -> reqwest::RequestBuilder {
    app.post(
        "alice",
        &format!("/api/v1/messages?chatId={chat}"),
        json!({ "content": content }),
    )
    .header("accept", "text/event-stream")
}

#[tokio::test]
async fn sse_streams_message_deltas_then_reply() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let r = stream_send(&app, id, "tell me a story")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let events = sse_events(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"message"));
    assert_eq!(names.last(), Some(&"reply"));
    assert!(names[1..names.len() - 1].iter().all(|n| *n == "delta"));
    assert!(names.len() >= 5, "{names:?}");
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["content"].as_str().unwrap())
        .collect();
    let reply = &events.last().unwrap().1;
    assert_eq!(text, "Echo: tell me a story");
    assert_eq!(reply["content"], text);
    assert_eq!(reply["status"], "complete");
    assert_eq!(events[0].1["content"], "tell me a story");
    let stored = app.messages("alice", id).await;
    assert_eq!(&stored[1], reply);
}

#[tokio::test]
async fn sse_reports_provider_failures_as_an_error_event() {
    let app = TestApp::builder()
        .llm(crate::messages::FailingLlm {
            error: domain::ports::LlmError::RateLimited { retry_after: None },
            prompts: Default::default(),
        })
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let r = stream_send(&app, id, "hi").send().await.unwrap();
    let events = sse_events(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["message", "error"]);
    assert_eq!(events[1].1["status"], 502);
    assert_eq!(events[1].1["reply"]["status"], "failed");
    assert_eq!(app.messages("alice", id).await.len(), 2);
}

/// Waits until the chat's last message is no longer streaming.
async fn settled(app: &TestApp, chat: &str) -> Vec<Value> {
    for _ in 0..100 {
        let ms = app.messages("alice", chat).await;
        if ms.last().is_some_and(|m| m["status"] != "streaming") {
            return ms;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reply never finished");
}

#[tokio::test]
async fn a_second_send_while_generating_is_409_and_stores_nothing() {
    let app = slow_app().spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    let first = stream_send(&app, &id, "one two three four")
        .send()
        .await
        .unwrap();
    let mut body = first.bytes_stream();
    body.next().await; // the `message` event: the turn is stored and generating
    let r = app.send("alice", &id, "me too").await;
    assert_eq!(r.headers()["retry-after"], "1");
    problem(r, StatusCode::CONFLICT).await;
    while body.next().await.is_some() {}
    let stored = settled(&app, &id).await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|m| m["content"] != "me too"));
    // Once the reply is done, the chat takes messages again.
    assert_eq!(
        app.send("alice", &id, "now?").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_reply_is_stored_even_when_the_client_goes_away() {
    let app = slow_app().spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    let r = stream_send(&app, &id, "keep going without me")
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    body.next().await;
    drop(body);
    let stored = settled(&app, &id).await;
    assert_eq!(stored[1]["status"], "complete");
    assert_eq!(stored[1]["content"], "Echo: keep going without me");
}

#[tokio::test]
async fn cancel_stops_the_reply_and_keeps_the_partial_text() {
    let app = slow_app().spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    let r = stream_send(&app, &id, "a b c d e f g h i j k l")
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    let seen = crate::helpers::read_until(&mut body, "event: delta").await;
    let reply_id = sse_events(seen.split("event: delta").next().unwrap())[0].1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = app.messages("alice", &id).await;
    let rid = stored[1]["id"].as_str().unwrap().to_owned();
    assert_ne!(reply_id, rid, "the first event is the user message");
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
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let partial = cancelled["content"].as_str().unwrap().to_owned();
    assert!(partial.starts_with("Echo: "), "{partial}");
    assert!(partial.len() < "Echo: a b c d e f g h i j k l".len());
    // The stream ends with the cancelled reply.
    let mut rest = seen;
    while let Some(chunk) = body.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let events = sse_events(&rest);
    assert_eq!(events.last().unwrap().0, "reply");
    assert_eq!(events.last().unwrap().1["status"], "cancelled");
    let stored = app.messages("alice", &id).await;
    assert_eq!(stored[1]["status"], "cancelled");
    assert_eq!(stored[1]["content"], partial.as_str());
}
