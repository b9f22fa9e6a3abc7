//! Another user's chats and messages are answered exactly like ones that do not exist.

use crate::helpers::{problem, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn bob_cannot_see_or_touch_alices_things() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "Secret plans").await;
    let cid = chat["id"].as_str().unwrap().to_owned();
    let turn: Value = app
        .send("alice", &cid, "my secret")
        .await
        .json()
        .await
        .unwrap();
    let mid = turn["message"]["id"].as_str().unwrap().to_owned();
    let rid = turn["reply"]["id"].as_str().unwrap().to_owned();

    let attempts = vec![
        app.get("bob", &format!("/api/v1/chats/{cid}")),
        app.put(
            "bob",
            &format!("/api/v1/chats/{cid}"),
            json!({"title": "mine now"}),
        ),
        app.delete("bob", &format!("/api/v1/chats/{cid}")),
        app.get("bob", &format!("/api/v1/messages?chatId={cid}")),
        app.post(
            "bob",
            &format!("/api/v1/messages?chatId={cid}"),
            json!({"content": "hi"}),
        ),
        app.get("bob", &format!("/api/v1/messages/{mid}")),
        app.put(
            "bob",
            &format!("/api/v1/messages/{mid}"),
            json!({"content": "edited"}),
        ),
        app.delete("bob", &format!("/api/v1/messages/{mid}")),
        app.post(
            "bob",
            &format!("/api/v1/messages/{rid}/regenerate"),
            json!({}),
        ),
        app.post("bob", &format!("/api/v1/messages/{rid}/cancel"), json!({})),
    ];
    for req in attempts {
        let r = req.send().await.unwrap();
        let p = problem(r, StatusCode::NOT_FOUND).await;
        assert_eq!(p["detail"], "no such resource");
    }
    // Nothing was changed, and bob's lists do not show alice's chat.
    let got: Value = app
        .get("alice", &format!("/api/v1/chats/{cid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["title"], "Secret plans");
    assert_eq!(app.messages("alice", &cid).await.len(), 2);
    let list: Value = app
        .get("bob", "/api/v1/chats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());
    let found: Value = app
        .get("bob", "/api/v1/chats/search?q=secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(found["items"].as_array().unwrap().is_empty());
}
