//! Conversations are trees (DESIGN.md §2.1), through the API: sends follow a parent,
//! regenerate adds a sibling, the prompt is the branch (checked at the wire, with the
//! fake provider), branch reads and selection, subtree deletion, fork.

use crate::helpers::{problem, Captured, TestApp};
use fake_llm::{FakeLlmConfig, RunningFakeLlm};
use infra_llm::{OpenAiClient, OpenAiConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

async fn with_fake() -> (TestApp, RunningFakeLlm, String) {
    let fake = fake_llm::spawn(FakeLlmConfig {
        reply_tokens: 4,
        ..FakeLlmConfig::for_tests()
    })
    .await
    .unwrap();
    let mut cfg = OpenAiConfig::new(fake.base_url());
    cfg.total_timeout = Duration::from_secs(30);
    let app = TestApp::builder()
        .llm(OpenAiClient::new(cfg).unwrap())
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap().to_owned();
    (app, fake, id)
}

/// Sends `content` after `parent` (`None`: the field absent) and returns the turn.
async fn send_after(app: &TestApp, chat: &str, content: &str, parent: Option<Value>) -> Value {
    let mut body = json!({ "content": content });
    if let Some(p) = parent {
        body["parentId"] = p;
    }
    let r = app
        .post("alice", &format!("/api/v1/messages?chatId={chat}"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn regenerate(app: &TestApp, reply: &Value) -> Value {
    let r = app
        .post(
            "alice",
            &format!(
                "/api/v1/messages/{}/regenerate",
                reply["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// The (role, content) pairs of the last prompt the provider received.
fn prompt(fake: &RunningFakeLlm) -> Vec<(String, String)> {
    let body = fake.stats().last_request().expect("a request");
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(role: &str, content: &Value) -> (String, String) {
    (role.to_owned(), content.as_str().unwrap().to_owned())
}

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().map(|m| m["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn after_a_regenerate_the_provider_receives_only_the_new_reply() {
    let (app, fake, chat) = with_fake().await;
    let first = send_after(&app, &chat, "first question", None).await;
    let again = regenerate(&app, &first["reply"]).await;
    assert_eq!(again["reply"]["parentId"], first["message"]["id"]);
    assert_eq!(again["reply"]["branch"]["index"], 2);
    assert_eq!(again["reply"]["branch"]["count"], 2);
    assert_eq!(again["reply"]["branch"]["prevId"], first["reply"]["id"]);
    // The regenerate's own prompt: the question, not the old reply.
    assert_eq!(prompt(&fake), [pair("user", &json!("first question"))]);

    let next = send_after(&app, &chat, "second question", None).await;
    assert_eq!(next["message"]["parentId"], again["reply"]["id"]);
    assert_eq!(
        prompt(&fake),
        [
            pair("user", &json!("first question")),
            pair("assistant", &again["reply"]["content"]),
            pair("user", &json!("second question")),
        ]
    );
    assert_ne!(first["reply"]["content"], json!(""));
}

#[tokio::test]
async fn a_send_from_an_older_reply_prompts_with_that_branch_only() {
    let (app, fake, chat) = with_fake().await;
    let one = send_after(&app, &chat, "one", None).await;
    let two = send_after(&app, &chat, "two", None).await;
    send_after(&app, &chat, "three", None).await;
    // Edit-and-resend "two": send from its parent, the first reply.
    let edited = send_after(&app, &chat, "two, edited", Some(one["reply"]["id"].clone())).await;
    assert_eq!(edited["message"]["parentId"], one["reply"]["id"]);
    assert_eq!(edited["message"]["branch"]["index"], 2);
    assert_eq!(edited["message"]["branch"]["prevId"], two["message"]["id"]);
    assert_eq!(
        prompt(&fake),
        [
            pair("user", &json!("one")),
            pair("assistant", &one["reply"]["content"]),
            pair("user", &json!("two, edited")),
        ]
    );
    // `null` starts a new root: no history at all.
    let root = send_after(&app, &chat, "fresh start", Some(Value::Null)).await;
    assert_eq!(root["message"]["parentId"], Value::Null);
    assert_eq!(root["message"]["branch"]["index"], 2, "the second root");
    assert_eq!(prompt(&fake), [pair("user", &json!("fresh start"))]);
}

#[tokio::test]
async fn a_parent_must_be_an_assistant_reply_of_the_chat() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let t = send_after(&app, id, "q", None).await;
    let other = app.create_chat("alice", "other").await;
    let o = send_after(&app, other["id"].as_str().unwrap(), "elsewhere", None).await;
    let bob = app.create_chat("bob", "bob's").await;
    let b = send_after_as(&app, "bob", bob["id"].as_str().unwrap()).await;
    let path = format!("/api/v1/messages?chatId={id}");
    let cases = [
        (t["message"]["id"].clone(), StatusCode::UNPROCESSABLE_ENTITY),
        (o["reply"]["id"].clone(), StatusCode::NOT_FOUND),
        (b["reply"]["id"].clone(), StatusCode::NOT_FOUND),
        (json!("not-a-uuid"), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!("6f1c2d2e-8b1a-4c3d-9e4f-5a6b7c8d9e0f"),
            StatusCode::NOT_FOUND,
        ), // not v7
        (
            json!(uuid::Uuid::now_v7().to_string()),
            StatusCode::NOT_FOUND,
        ),
        (json!(7), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (parent, status) in cases {
        let r = app
            .post("alice", &path, json!({"content": "x", "parentId": parent}))
            .send()
            .await
            .unwrap();
        let p = problem(r, status).await;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(p["errors"][0]["field"], "parentId", "{p}");
        }
    }
    assert_eq!(
        app.messages("alice", id).await.len(),
        2,
        "nothing was stored"
    );
}

async fn send_after_as(app: &TestApp, user: &str, chat: &str) -> Value {
    let r = app
        .post(
            user,
            &format!("/api/v1/messages?chatId={chat}"),
            json!({"content": "hi"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

#[tokio::test]
async fn branches_are_listed_flipped_and_selected() {
    let events = Captured::default();
    let app = TestApp::builder()
        .events(Arc::new(events.clone()))
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let first = send_after(&app, id, "q1", None).await;
    let second = regenerate(&app, &first["reply"]).await;
    let later = send_after(&app, id, "q2", None).await;
    // The active branch: root → the newest reply.
    let active = app.messages("alice", id).await;
    assert_eq!(
        ids(&active),
        [
            first["message"]["id"].as_str().unwrap(),
            second["reply"]["id"].as_str().unwrap(),
            later["message"]["id"].as_str().unwrap(),
            later["reply"]["id"].as_str().unwrap(),
        ]
    );
    assert_eq!(active[1]["branch"]["index"], 2);
    assert_eq!(active[1]["branch"]["count"], 2);
    assert_eq!(active[0]["branch"]["count"], 1);
    // The other branch, through the first reply ("‹ 1/2").
    let prev = active[1]["branch"]["prevId"].as_str().unwrap();
    let r = app
        .get(
            "alice",
            &format!("/api/v1/messages?chatId={id}&leafId={prev}"),
        )
        .send()
        .await
        .unwrap();
    let other: Value = r.json().await.unwrap();
    assert_eq!(ids(other["items"].as_array().unwrap()).len(), 2);
    // Pages of the branch.
    let r = app
        .get("alice", &format!("/api/v1/messages?chatId={id}&limit=3"))
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    let cursor = page["nextCursor"].as_str().unwrap();
    let r = app
        .get(
            "alice",
            &format!("/api/v1/messages?chatId={id}&limit=3&cursor={cursor}"),
        )
        .send()
        .await
        .unwrap();
    let rest: Value = r.json().await.unwrap();
    assert_eq!(rest["items"][0]["id"], later["reply"]["id"]);
    assert_eq!(rest["nextCursor"], Value::Null);

    // Select the first branch: the active leaf is the newest descendant of q1's first reply.
    let r = app
        .put(
            "alice",
            &format!("/api/v1/chats/{id}"),
            json!({"activeLeafId": prev}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let selected: Value = r.json().await.unwrap();
    assert_eq!(selected["activeLeafId"], prev);
    assert_eq!(selected["title"], "c");
    assert_eq!(app.messages("alice", id).await.len(), 2);
    events
        .wait_for(|e| e["type"] == "chat.updated" && e["data"]["activeLeafId"] == prev)
        .await;
    // Naming the root selects the newest path below it.
    let root = first["message"]["id"].as_str().unwrap();
    let r = app
        .put(
            "alice",
            &format!("/api/v1/chats/{id}"),
            json!({"activeLeafId": root}),
        )
        .send()
        .await
        .unwrap();
    let selected: Value = r.json().await.unwrap();
    assert_eq!(selected["activeLeafId"], later["reply"]["id"]);
    // Unknown and foreign messages are 404; a non-id is 422.
    let foreign = app.create_chat("alice", "other").await;
    let f = send_after(&app, foreign["id"].as_str().unwrap(), "x", None).await;
    for (leaf, status) in [
        (f["reply"]["id"].clone(), StatusCode::NOT_FOUND),
        (json!("nope"), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = app
            .put(
                "alice",
                &format!("/api/v1/chats/{id}"),
                json!({"activeLeafId": leaf}),
            )
            .send()
            .await
            .unwrap();
        problem(r, status).await;
        let r = app
            .get(
                "alice",
                &format!(
                    "/api/v1/messages?chatId={id}&leafId={}",
                    leaf.as_str().unwrap()
                ),
            )
            .send()
            .await
            .unwrap();
        problem(r, status).await;
    }
    // Message events carry parentId.
    events
        .wait_for(|e| {
            e["type"] == "message.created"
                && e["data"]["id"] == later["message"]["id"]
                && e["data"]["parentId"] == second["reply"]["id"]
        })
        .await;
}

#[tokio::test]
async fn deleting_a_message_deletes_its_subtree() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let one = send_after(&app, id, "one", None).await;
    let two = send_after(&app, id, "two", None).await;
    send_after(&app, id, "three", None).await;
    let r = app
        .delete(
            "alice",
            &format!(
                "/api/v1/messages/{}",
                two["message"]["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let left = app.messages("alice", id).await;
    assert_eq!(
        ids(&left),
        ids(&[one["message"].clone(), one["reply"].clone()])
    );
    let r = app
        .get("alice", &format!("/api/v1/chats/{id}"))
        .send()
        .await
        .unwrap();
    let stored: Value = r.json().await.unwrap();
    assert_eq!(stored["messageCount"], 2);
    assert_eq!(stored["activeLeafId"], one["reply"]["id"]);
}

#[tokio::test]
async fn a_fork_copies_the_branch_into_a_new_chat() {
    let events = Captured::default();
    let app = TestApp::builder()
        .events(Arc::new(events.clone()))
        .spawn()
        .await;
    let chat = app
        .post(
            "alice",
            "/api/v1/chats",
            json!({"title": "Trip", "settings": {"systemPrompt": "be brief"}}),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let id = chat["id"].as_str().unwrap();
    let one = send_after(&app, id, "one", None).await;
    let again = regenerate(&app, &one["reply"]).await;
    send_after(&app, id, "two", None).await;
    let r = app
        .post(
            "alice",
            &format!("/api/v1/chats/{id}/fork"),
            json!({"messageId": again["reply"]["id"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let fork: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/chats/{}", fork["id"].as_str().unwrap())
    );
    assert_eq!(fork["title"], "Trip (fork)");
    assert_eq!(fork["settings"]["systemPrompt"], "be brief");
    assert_eq!(fork["messageCount"], 2);
    let fid = fork["id"].as_str().unwrap();
    let copied = app.messages("alice", fid).await;
    let seqs: Vec<_> = copied.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(copied[0]["content"], "one");
    assert_eq!(copied[1]["content"], again["reply"]["content"]);
    assert_eq!(copied[1]["parentId"], copied[0]["id"]);
    assert_ne!(copied[1]["id"], again["reply"]["id"], "new ids");
    assert_eq!(fork["activeLeafId"], copied[1]["id"]);
    let created = events
        .wait_for(|e| e["type"] == "chat.created" && e["data"]["id"] == fork["id"])
        .await;
    assert_eq!(created["data"]["forkedFrom"]["chatId"], id);
    assert_eq!(
        created["data"]["forkedFrom"]["messageId"],
        again["reply"]["id"]
    );
    for m in &copied {
        events
            .wait_for(|e| e["type"] == "message.created" && e["data"]["id"] == m["id"])
            .await;
    }
    // The original is untouched; others' chats and unknown messages are 404.
    assert_eq!(app.messages("alice", id).await.len(), 4);
    for (user, message) in [
        ("bob", again["reply"]["id"].clone()),
        ("alice", json!(uuid::Uuid::now_v7().to_string())),
    ] {
        let r = app
            .post(
                user,
                &format!("/api/v1/chats/{id}/fork"),
                json!({"messageId": message}),
            )
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::NOT_FOUND).await;
    }
    let r = app
        .post("alice", &format!("/api/v1/chats/{id}/fork"), json!({}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
}
