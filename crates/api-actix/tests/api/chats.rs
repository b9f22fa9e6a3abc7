//! Chat routes: create, read, update, delete, list and search, with pagination.

use crate::helpers::{problem, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn create_returns_201_location_and_defaults() {
    let app = TestApp::spawn().await;
    let r = app
        .post("alice", "/api/v1/chats", json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let chat: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/chats/{}", chat["id"].as_str().unwrap())
    );
    assert_eq!(chat["title"], "New chat");
    assert_eq!(chat["messageCount"], 0);
    assert_eq!(
        chat["settings"],
        json!({"model": null, "systemPrompt": null, "temperature": null, "maxTokens": null})
    );
    assert!(chat["createdAt"].as_str().unwrap().ends_with('Z'));
    let id = uuid::Uuid::parse_str(chat["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    let got: Value = app
        .get("alice", &location)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, chat);
}

#[tokio::test]
async fn create_without_a_body_uses_defaults() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .post(app.url("/api/v1/chats"))
        .bearer_auth(TestApp::token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn create_with_settings_and_trimmed_title() {
    let app = TestApp::builder()
        .env("LLM_MODELS", "gpt-4o-mini")
        .spawn()
        .await;
    let body = json!({"title": "  Lisbon  ", "settings": {"model": "gpt-4o-mini", "systemPrompt": "Be brief.", "temperature": 0.7, "maxTokens": 256}});
    let chat: Value = app
        .post("alice", "/api/v1/chats", body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chat["title"], "Lisbon");
    assert_eq!(chat["settings"]["model"], "gpt-4o-mini");
    assert_eq!(chat["settings"]["temperature"], 0.7);
    assert_eq!(chat["settings"]["maxTokens"], 256);
}

#[tokio::test]
async fn update_changes_given_fields_only() {
    let app = TestApp::builder().env("LLM_MODELS", "m1").spawn().await;
    let chat = app
        .post(
            "alice",
            "/api/v1/chats",
            json!({"title": "Old", "settings": {"temperature": 1.0}}),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let path = format!("/api/v1/chats/{}", chat["id"].as_str().unwrap());
    let r = app
        .put("alice", &path, json!({"title": "New"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["title"], "New");
    assert_eq!(updated["settings"]["temperature"], 1.0);
    assert!(updated["updatedAt"].as_str().unwrap() >= chat["updatedAt"].as_str().unwrap());
    let r = app
        .put("alice", &path, json!({"settings": {"model": "m1"}}))
        .send()
        .await
        .unwrap();
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["title"], "New");
    assert_eq!(
        updated["settings"],
        json!({"model": "m1", "systemPrompt": null, "temperature": null, "maxTokens": null})
    );
}

#[tokio::test]
async fn delete_removes_the_chat_and_its_messages() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "Doomed").await;
    let id = chat["id"].as_str().unwrap();
    let turn: Value = app.send("alice", id, "hello").await.json().await.unwrap();
    let r = app
        .delete("alice", &format!("/api/v1/chats/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .get("alice", &format!("/api/v1/chats/{id}"))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
    let mid = turn["message"]["id"].as_str().unwrap();
    let r = app
        .get("alice", &format!("/api/v1/messages/{mid}"))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
    let r = app
        .delete("alice", &format!("/api/v1/chats/{id}"))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
}

async fn page(app: &TestApp, path: &str) -> (Vec<String>, Option<String>) {
    let r = app.get("alice", path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let titles = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap().to_owned())
        .collect();
    (titles, v["nextCursor"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn list_paginates_newest_activity_first() {
    let app = TestApp::spawn().await;
    for i in 0..25 {
        app.create_chat("alice", &format!("chat {i:02}")).await;
    }
    let mut seen = Vec::new();
    let (first, mut cursor) = page(&app, "/api/v1/chats?limit=10").await;
    assert_eq!(first.len(), 10);
    assert_eq!(first[0], "chat 24");
    seen.extend(first);
    while let Some(c) = cursor {
        let (items, next) = page(&app, &format!("/api/v1/chats?limit=10&cursor={c}")).await;
        seen.extend(items);
        cursor = next;
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("chat {i:02}")).collect();
    assert_eq!(seen, expected);
    // Activity moves a chat to the front.
    let all: Value = app
        .get("alice", "/api/v1/chats?limit=100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oldest = all["items"][24]["id"].as_str().unwrap().to_owned();
    app.send("alice", &oldest, "wake up").await;
    let (now_first, _) = page(&app, "/api/v1/chats?limit=1").await;
    assert_eq!(now_first, ["chat 00"]);
}

#[tokio::test]
async fn default_page_size_is_20() {
    let app = TestApp::spawn().await;
    for i in 0..21 {
        app.create_chat("alice", &format!("c{i}")).await;
    }
    let (items, next) = page(&app, "/api/v1/chats").await;
    assert_eq!(items.len(), 20);
    assert!(next.is_some());
}

#[tokio::test]
async fn search_is_case_insensitive_substring_and_paginates() {
    let app = TestApp::spawn().await;
    for t in [
        "Trip to LISBON",
        "lisbon food",
        "Porto",
        "Lisbon again",
        "100% sure",
    ] {
        app.create_chat("alice", t).await;
    }
    let (hits, next) = page(&app, "/api/v1/chats/search?q=lisbon&limit=2").await;
    assert_eq!(hits, ["Lisbon again", "lisbon food"]);
    let (rest, last) = page(
        &app,
        &format!(
            "/api/v1/chats/search?q=lisbon&limit=2&cursor={}",
            next.unwrap()
        ),
    )
    .await;
    assert_eq!(rest, ["Trip to LISBON"]);
    assert!(last.is_none());
    let (pct, _) = page(&app, "/api/v1/chats/search?q=0%25").await;
    assert_eq!(pct, ["100% sure"]);
    let (none, _) = page(&app, "/api/v1/chats/search?q=madrid").await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn bad_list_parameters_are_422() {
    let app = TestApp::spawn().await;
    for q in [
        "/api/v1/chats?limit=0",
        "/api/v1/chats?limit=101",
        "/api/v1/chats?limit=abc",
        "/api/v1/chats?cursor=garbage",
    ] {
        let p = problem(
            app.get("alice", q).send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(p["errors"][0]["field"].is_string(), "{q}: {p}");
    }
    let p = problem(
        app.get("alice", "/api/v1/chats/search")
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "q");
    let p = problem(
        app.get("alice", "/api/v1/chats/search?q=%20")
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "q");
}
