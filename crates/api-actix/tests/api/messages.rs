//! Message routes: send, list, read, edit, delete, regenerate, cancel; provider failures.

use crate::helpers::{problem, TestApp};
use async_trait::async_trait;
use domain::ports::{LlmClient, LlmError, LlmReply, LlmRequest, LlmStream, TimeoutKind};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn send_stores_the_message_and_the_reply() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let r = app.send("alice", id, "hello there").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let turn: Value = r.json().await.unwrap();
    assert_eq!(turn["message"]["seq"], 1);
    assert_eq!(turn["message"]["role"], "user");
    assert_eq!(turn["message"]["content"], "hello there");
    assert_eq!(turn["message"]["status"], "complete");
    assert_eq!(turn["reply"]["seq"], 2);
    assert_eq!(turn["reply"]["role"], "assistant");
    assert_eq!(turn["reply"]["content"], "Echo: hello there");
    assert_eq!(turn["reply"]["status"], "complete");
    assert_eq!(turn["reply"]["model"], "echo");
    assert!(turn["reply"]["usage"]["completionTokens"].as_u64().unwrap() > 0);
    assert_eq!(turn["reply"]["chatId"], id);
    let stored = app.messages("alice", id).await;
    assert_eq!(stored, vec![turn["message"].clone(), turn["reply"].clone()]);
    let chat: Value = app
        .get("alice", &format!("/api/v1/chats/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chat["messageCount"], 2);
}

#[tokio::test]
async fn send_to_a_missing_chat_is_404() {
    let app = TestApp::spawn().await;
    let r = app
        .send("alice", &uuid::Uuid::now_v7().to_string(), "hi")
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn messages_paginate_in_conversation_order() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    for i in 0..6 {
        app.send("alice", id, &format!("m{i}")).await;
    }
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/api/v1/messages?chatId={id}&limit=5"),
            Some(c) => format!("/api/v1/messages?chatId={id}&limit=5&cursor={c}"),
        };
        let v: Value = app
            .get("alice", &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seqs.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_u64().unwrap()),
        );
        cursor = v["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seqs, (1..=12).collect::<Vec<u64>>());
}

#[tokio::test]
async fn get_edit_and_delete_a_message() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let t1: Value = app.send("alice", id, "first").await.json().await.unwrap();
    let t2: Value = app.send("alice", id, "second").await.json().await.unwrap();
    let mid = t1["message"]["id"].as_str().unwrap();
    let got: Value = app
        .get("alice", &format!("/api/v1/messages/{mid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, t1["message"]);

    let r = app
        .put(
            "alice",
            &format!("/api/v1/messages/{mid}"),
            json!({"content": "first, edited"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let edited: Value = r.json().await.unwrap();
    assert_eq!(edited["content"], "first, edited");
    assert_eq!(edited["seq"], 1);
    let r = app
        .put(
            "alice",
            &format!("/api/v1/messages/{mid}"),
            json!({"content": ""}),
        )
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;

    // Deleting the second question takes its reply (everything below it) with it.
    let second = t2["message"]["id"].as_str().unwrap();
    let r = app
        .delete("alice", &format!("/api/v1/messages/{second}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let left = app.messages("alice", id).await;
    let seqs: Vec<u64> = left.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(left[1]["content"], "Echo: first");
    for gone in [second, t2["reply"]["id"].as_str().unwrap()] {
        problem(
            app.get("alice", &format!("/api/v1/messages/{gone}"))
                .send()
                .await
                .unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let t3: Value = app.send("alice", id, "third").await.json().await.unwrap();
    assert_eq!(t3["message"]["seq"], 3);
    assert_eq!(t3["message"]["parentId"], t1["reply"]["id"]);
}

#[tokio::test]
async fn regenerate_appends_a_new_reply_to_the_same_question() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let t: Value = app
        .send("alice", id, "question")
        .await
        .json()
        .await
        .unwrap();
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
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["message"]["id"], t["message"]["id"]);
    assert_eq!(again["reply"]["seq"], 3);
    assert_eq!(again["reply"]["content"], "Echo: question");
    assert_ne!(again["reply"]["id"], t["reply"]["id"]);
    // The new reply is a sibling of the old one, and the active branch shows it.
    assert_eq!(again["reply"]["parentId"], t["message"]["id"]);
    let active = app.messages("alice", id).await;
    assert_eq!(active.len(), 2);
    assert_eq!(active[1]["id"], again["reply"]["id"]);
    // A user message is not a reply.
    let mid = t["message"]["id"].as_str().unwrap();
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages/{mid}/regenerate"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn cancelling_a_finished_reply_is_409() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let t: Value = app
        .send("alice", chat["id"].as_str().unwrap(), "q")
        .await
        .json()
        .await
        .unwrap();
    let rid = t["reply"]["id"].as_str().unwrap();
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages/{rid}/cancel"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::CONFLICT).await;
}

/// A provider that always fails the same way, and remembers the prompts it got.
#[derive(Clone)]
pub struct FailingLlm {
    pub error: LlmError,
    pub prompts: Arc<Mutex<Vec<LlmRequest>>>,
}

#[async_trait]
impl LlmClient for FailingLlm {
    async fn complete(&self, request: LlmRequest) -> Result<LlmReply, LlmError> {
        self.prompts.lock().unwrap().push(request);
        Err(self.error.clone())
    }
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        self.prompts.lock().unwrap().push(request);
        Err(self.error.clone())
    }
}

async fn failing_send(error: LlmError, status: StatusCode) -> (Value, Vec<Value>) {
    let app = TestApp::builder()
        .llm(FailingLlm {
            error,
            prompts: Arc::default(),
        })
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let p = problem(app.send("alice", id, "are you there?").await, status).await;
    let stored = app.messages("alice", id).await;
    (p, stored)
}

#[tokio::test]
async fn provider_failure_is_502_and_keeps_the_message() {
    let (p, stored) = failing_send(
        LlmError::Upstream { status: Some(500) },
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert_eq!(p["type"], "/problems/llm-failure");
    assert_eq!(p["message"]["content"], "are you there?");
    assert_eq!(p["reply"]["status"], "failed");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["content"], "are you there?");
    assert_eq!(stored[1]["status"], "failed");
    assert!(stored[1]["error"].as_str().unwrap().contains("500"));
}

#[tokio::test]
async fn provider_timeout_is_504() {
    let (p, stored) = failing_send(
        LlmError::Timeout(TimeoutKind::FirstToken),
        StatusCode::GATEWAY_TIMEOUT,
    )
    .await;
    assert_eq!(p["type"], "/problems/llm-timeout");
    assert_eq!(stored[1]["status"], "failed");
}

#[tokio::test]
async fn a_failed_reply_can_be_regenerated() {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let app = TestApp::builder()
        .llm(FailingLlm {
            error: LlmError::Unauthorized,
            prompts: prompts.clone(),
        })
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let p = problem(
        app.send("alice", id, "retry me").await,
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
    problem(r, StatusCode::BAD_GATEWAY).await;
    // The active branch: the question and the newest (failed) reply; the first failed
    // reply is its sibling.
    let active = app.messages("alice", id).await;
    assert_eq!(active.len(), 2);
    assert_eq!(active[1]["branch"]["count"], 2);
    let prompts = prompts.lock().unwrap();
    assert_eq!(prompts.len(), 2);
    assert_eq!(prompts[1].messages.last().unwrap().content, "retry me");
    // The failed reply is not part of the history sent again.
    assert_eq!(prompts[1].messages.len(), 1);
}

#[tokio::test]
async fn the_prompt_carries_the_system_prompt_and_history() {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let app = TestApp::builder()
        .llm(FailingLlm {
            error: LlmError::Unauthorized,
            prompts: prompts.clone(),
        })
        .env("LLM_MODELS", "m-1")
        .spawn()
        .await;
    let chat: Value = app
        .post("alice", "/api/v1/chats", json!({"settings": {"systemPrompt": "Be brief.", "model": "m-1", "temperature": 0.2, "maxTokens": 9}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = chat["id"].as_str().unwrap();
    app.send("alice", id, "one").await;
    app.send("alice", id, "two").await;
    let prompts = prompts.lock().unwrap();
    let last = prompts.last().unwrap();
    assert_eq!(last.model, "m-1");
    assert_eq!(last.temperature, Some(0.2));
    assert_eq!(last.max_tokens, Some(9));
    let texts: Vec<&str> = last.messages.iter().map(|m| m.content.as_str()).collect();
    // Failed replies are left out of the history.
    assert_eq!(texts, ["Be brief.", "one", "two"]);
}
