//! A user's own data over HTTP (in-memory storage): message search, export and erasure.

use crate::helpers::{problem, TestApp, SECRET};
use api_actix::config::Settings;
use api_actix::startup::{Adapters, Application};
use async_trait::async_trait;
use domain::ports::{ExportRepository, StoreError};
use domain::{Chat, ChatId, Message, UserId};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn search(app: &TestApp, user: &str, query: &str) -> reqwest::Response {
    app.get(user, &format!("/api/v1/messages/search?{query}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn search_finds_a_word_with_its_chat_and_a_plain_text_snippet() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "Databases").await;
    let id = chat["id"].as_str().unwrap();
    app.send("alice", id, "Show me the <b>SQL</b> you gave me last week")
        .await;
    app.send("alice", id, "unrelated").await;
    let r = search(&app, "alice", "q=sql&limit=10").await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    // The message and its echo both contain the word.
    assert_eq!(items.len(), 2, "{page:#}");
    let hit = &items[0];
    assert_eq!(hit["chat"]["id"], id);
    assert_eq!(hit["chat"]["title"], "Databases");
    assert_eq!(hit["relevance"], 1);
    assert!(hit["message"]["content"].as_str().unwrap().contains("SQL"));
    let text = hit["snippet"]["text"].as_str().unwrap();
    assert!(text.contains("<b>SQL</b>"), "kept as plain text: {text}");
    let m = &hit["snippet"]["matches"][0];
    let (start, end) = (m["start"].as_u64().unwrap(), m["end"].as_u64().unwrap());
    let word: String = text
        .chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect();
    assert_eq!(word, "SQL");
    assert!(page["nextCursor"].is_null());
}

#[tokio::test]
async fn search_is_not_taken_for_a_message_id_and_pages_with_a_cursor() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "Notes").await;
    let id = chat["id"].as_str().unwrap();
    for i in 0..3 {
        app.send("alice", id, &format!("note {i}")).await;
    }
    let first: Value = search(&app, "alice", "q=note&limit=4")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 4);
    let cursor = first["nextCursor"].as_str().unwrap();
    let rest: Value = search(&app, "alice", &format!("q=note&limit=4&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest["nextCursor"].is_null());
    // One chat only, and nobody else's.
    let other = app.create_chat("alice", "Other").await;
    app.send("alice", other["id"].as_str().unwrap(), "note elsewhere")
        .await;
    let in_chat: Value = search(&app, "alice", &format!("q=note&chatId={id}&limit=100"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(in_chat["items"].as_array().unwrap().len(), 6);
    let bob: Value = search(&app, "bob", "q=note").await.json().await.unwrap();
    assert!(bob["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_searches_are_422_and_foreign_chats_404() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "Mine").await;
    let id = chat["id"].as_str().unwrap();
    for (query, field) in [
        ("", "q"),
        ("q=", "q"),
        ("q=-secret", "q"),
        ("q=%21%21%21", "q"),
        ("q=a&limit=0", "limit"),
        ("q=a&limit=x", "limit"),
        ("q=a&cursor=nope", "cursor"),
        ("q=a&chatId=nope", "chatId"),
    ] {
        let body = problem(
            search(&app, "alice", query).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    problem(
        search(&app, "bob", &format!("q=a&chatId={id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

fn lines(body: &str) -> Vec<Value> {
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn export_streams_every_chat_followed_by_its_messages() {
    let app = TestApp::spawn().await;
    let a = app.create_chat("alice", "First").await;
    let b = app.create_chat("alice", "Second").await;
    app.create_chat("bob", "Not alice's").await;
    app.send("alice", a["id"].as_str().unwrap(), "hello").await;
    let r = app.get("alice", "/api/v1/export").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"chat-export-")
            && disposition.ends_with(".ndjson\""),
        "{disposition}"
    );
    let ls = lines(&r.text().await.unwrap());
    let types: Vec<&str> = ls.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["export", "chat", "message", "message", "chat", "end"]
    );
    assert_eq!(ls[0]["userId"], "alice");
    assert_eq!(ls[1]["chat"]["id"], a["id"]);
    assert_eq!(ls[2]["message"]["content"], "hello");
    assert_eq!(ls[3]["message"]["seq"], 2);
    // Read by seq, not by branch: the lines carry the tree as parentId, no branch.
    assert_eq!(ls[3]["message"]["parentId"], ls[2]["message"]["id"]);
    assert!(ls[2]["message"].get("branch").is_none());
    assert_eq!(ls[4]["chat"]["id"], b["id"]);
    assert_eq!(ls[5]["chats"], 2);
    assert_eq!(ls[5]["messages"], 2);
}

/// Counts (and slows) the pages an export reads.
struct CountingExport {
    inner: Arc<dyn ExportRepository>,
    pages: Arc<AtomicUsize>,
}

#[async_trait]
impl ExportRepository for CountingExport {
    async fn export_chats(
        &self,
        owner: &UserId,
        after: Option<ChatId>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        self.pages.fetch_add(1, Ordering::SeqCst);
        self.inner.export_chats(owner, after, limit).await
    }
    async fn export_messages(
        &self,
        chat_id: ChatId,
        after_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.pages.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.inner.export_messages(chat_id, after_seq, limit).await
    }
}

#[tokio::test]
async fn a_client_hanging_up_stops_the_export() {
    let env: HashMap<String, String> = [
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("JWT_SECRET", SECRET),
        ("RATE_LIMIT_API_PER_SEC", "0"),
        ("RATE_LIMIT_SENDS_PER_MIN", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::load(None, &env).unwrap();
    let mut adapters = Adapters::memory(
        Arc::new(infra_memory::LogPublisher::default()),
        Arc::new(infra_llm::EchoModel::default()),
    );
    let pages = Arc::new(AtomicUsize::new(0));
    adapters.data.export = Arc::new(CountingExport {
        inner: adapters.data.export.clone(),
        pages: pages.clone(),
    });
    let app = Application::build(&settings, adapters).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let token = TestApp::token("alice");
    // 300 chats with two messages each: more than 300 pages, 20 ms each.
    let big = "x".repeat(20_000);
    for _ in 0..300 {
        let c: Value = client
            .post(format!("{base}/api/v1/chats"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"title": "c"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = client
            .post(format!(
                "{base}/api/v1/messages?chatId={}",
                c["id"].as_str().unwrap()
            ))
            .bearer_auth(&token)
            .json(&serde_json::json!({"content": big}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = client
        .get(format!("{base}/api/v1/export"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    futures::StreamExt::next(&mut body).await.unwrap().unwrap();
    drop(body);
    // Reading stops soon after: the count settles well short of every page.
    let mut last = pages.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = pages.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(last < 150, "{last} pages read after the client left");
}

#[tokio::test]
async fn erasing_me_is_204_then_nothing_is_left_and_it_can_be_repeated() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "Private").await;
    let id = chat["id"].as_str().unwrap();
    app.send("alice", id, "my secret").await;
    let kept = app.create_chat("bob", "Bob's").await;
    let r = app.delete("alice", "/api/v1/me").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        app.get("alice", &format!("/api/v1/chats/{id}"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let s: Value = search(&app, "alice", "q=secret")
        .await
        .json()
        .await
        .unwrap();
    assert!(s["items"].as_array().unwrap().is_empty());
    let list: Value = app
        .get("alice", "/api/v1/chats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    let again = app.delete("alice", "/api/v1/me").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    let r = app
        .get(
            "bob",
            &format!("/api/v1/chats/{}", kept["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
