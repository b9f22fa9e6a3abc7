//! The model registry through the API: two providers (one fixed, one discovering),
//! `GET /api/v1/models`, settings checked against it, each model served by its own
//! provider, and the provider named in reply events.

use crate::helpers::{problem, Captured, TestApp};
use crate::providers_support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use wiremock::MockServer;

/// `cloud` lists big (ceiling 4096, falls back to small) and small; `local`
/// discovers its models; the default is big; `CLOUD_KEY` holds cloud's key.
pub fn two_providers(cloud: &str, local: &str) -> String {
    format!(
        "llm:
  model: big
  providers:
    - name: cloud
      base_url: {cloud}
      api_key_env: CLOUD_KEY
{LIMITS}      models:
        - name: big
          max_output_tokens: 4096
          fallbacks: [small]
        - small
    - name: local
      base_url: {local}
      discover: true
{LIMITS}"
    )
}

/// `GET /api/v1/models` as alice.
async fn model_list(app: &TestApp) -> Value {
    let r = app.get("alice", "/api/v1/models").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn app(cloud: &MockServer, local: &MockServer, events: Captured) -> TestApp {
    TestApp::builder()
        .yaml(&two_providers(
            &format!("{}/v1", cloud.uri()),
            &format!("{}/v1", local.uri()),
        ))
        .env("CLOUD_KEY", "sk-cloud")
        .env("LLM_DISCOVERY_INTERVAL_SECS", "5")
        .events(Arc::new(events))
        .spawn()
        .await
}

#[tokio::test]
async fn the_model_list_names_providers_the_default_and_ceilings() {
    let (cloud, local) = (MockServer::start().await, MockServer::start().await);
    lists(&local, &["llama3.1:8b", "qwen2.5"]).await;
    let app = app(&cloud, &local, Captured::default()).await;
    let r = app.get("alice", "/api/v1/models").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["defaultModel"], "big");
    assert_eq!(
        body["items"],
        json!([
            {"name": "big", "provider": "cloud", "default": true, "maxOutputTokens": 4096, "fallbacks": ["small"]},
            {"name": "small", "provider": "cloud", "default": false, "maxOutputTokens": 32768, "fallbacks": []},
            {"name": "llama3.1:8b", "provider": "local", "default": false, "maxOutputTokens": 32768, "fallbacks": []},
            {"name": "qwen2.5", "provider": "local", "default": false, "maxOutputTokens": 32768, "fallbacks": []},
        ])
    );
    let r = app
        .client
        .get(app.url("/api/v1/models"))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn an_unlisted_model_or_an_oversized_max_tokens_is_refused_with_the_choices() {
    let (cloud, local) = (MockServer::start().await, MockServer::start().await);
    lists(&local, &["llama3.1:8b"]).await;
    let app = app(&cloud, &local, Captured::default()).await;
    for junk in ["junk-model-1", "gpt-4o"] {
        let r = app
            .post(
                "alice",
                "/api/v1/chats",
                json!({"settings": {"model": junk}}),
            )
            .send()
            .await
            .unwrap();
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["type"], "/problems/unprocessable");
        assert_eq!(p["errors"][0]["field"], "settings.model");
        let message = p["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("big, small, llama3.1:8b"), "{message}");
    }
    let r = app
        .post(
            "alice",
            "/api/v1/chats",
            json!({"settings": {"model": "big", "maxTokens": 4097}}),
        )
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "settings.maxTokens");
    assert!(p["errors"][0]["message"].as_str().unwrap().contains("4096"));
    // No model set: the default model's ceiling (big's 4096) applies.
    let r = app
        .post(
            "alice",
            "/api/v1/chats",
            json!({"settings": {"maxTokens": 5000}}),
        )
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    // Within the ceiling, listed: fine; changing it to junk later is refused too.
    let chat = app
        .post(
            "alice",
            "/api/v1/chats",
            json!({"settings": {"model": "small", "maxTokens": 32768}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), StatusCode::CREATED);
    let chat: Value = chat.json().await.unwrap();
    let path = format!("/api/v1/chats/{}", chat["id"].as_str().unwrap());
    let r = app
        .put("alice", &path, json!({"settings": {"model": "nope"}}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let r = app
        .put(
            "alice",
            &path,
            json!({"settings": {"model": "llama3.1:8b"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn either_provider_answers_its_models_and_events_name_it() {
    let (cloud, local) = (MockServer::start().await, MockServer::start().await);
    lists(&local, &["llama3.1:8b"]).await;
    answers(&cloud, "big", "from the cloud").await;
    answers(&local, "llama3.1:8b", "from the laptop").await;
    let events = Captured::default();
    let app = app(&cloud, &local, events.clone()).await;
    for (model, text, provider) in [
        (None, "from the cloud", "cloud"),
        (Some("llama3.1:8b"), "from the laptop", "local"),
    ] {
        let settings = model.map_or(json!({}), |m| json!({"model": m}));
        let chat: Value = app
            .post("alice", "/api/v1/chats", json!({"settings": settings}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = chat["id"].as_str().unwrap();
        let r = app.send("alice", id, "hello").await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let turn: Value = r.json().await.unwrap();
        assert_eq!(turn["reply"]["content"], text);
        assert_eq!(turn["reply"]["model"], model.unwrap_or("big"));
        let reply_id = turn["reply"]["id"].clone();
        let done = events
            .wait_for(|e| e["type"] == "message.completed" && e["data"]["id"] == reply_id)
            .await;
        assert_eq!(done["provider"], provider);
        let created = events
            .wait_for(|e| e["type"] == "message.created" && e["data"]["id"] == reply_id)
            .await;
        assert_eq!(created["provider"], provider);
        let asked = events
            .wait_for(|e| e["type"] == "message.created" && e["data"]["role"] == "user")
            .await;
        assert!(asked.get("provider").is_none(), "{asked}");
    }
}

#[tokio::test]
async fn a_chat_whose_model_is_no_longer_listed_is_refused_at_send_and_nothing_is_stored() {
    let (cloud, local) = (MockServer::start().await, MockServer::start().await);
    lists(&local, &["llama3.1:8b"]).await;
    let app = app(&cloud, &local, Captured::default()).await;
    let chat: Value = app
        .post(
            "alice",
            "/api/v1/chats",
            json!({"settings": {"model": "llama3.1:8b"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = chat["id"].as_str().unwrap();
    // The local provider now lists another model only: llama3.1:8b is gone.
    local.reset().await;
    lists(&local, &["qwen2.5"]).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let body = model_list(&app).await;
        if body["items"].to_string().contains("qwen2.5") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let p = problem(
        app.send("alice", id, "hello").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["type"], "/problems/unprocessable");
    assert_eq!(p["errors"][0]["field"], "settings.model");
    assert!(p["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("qwen2.5"));
    assert!(app.messages("alice", id).await.is_empty());
}

#[tokio::test]
async fn the_single_provider_form_lists_llm_model_and_llm_models() {
    let server = MockServer::start().await;
    let app = TestApp::builder()
        .env("LLM_BASE_URL", &format!("{}/v1", server.uri()))
        .env("LLM_MODEL", "gpt-4o-mini")
        .env("LLM_MODELS", "gpt-4o, o3-mini")
        .env("LLM_MODEL_MAX_TOKENS", "gpt-4o-mini=16384")
        .spawn()
        .await;
    let body = model_list(&app).await;
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gpt-4o-mini", "gpt-4o", "o3-mini"]);
    assert_eq!(body["items"][0]["provider"], "default");
    assert_eq!(body["items"][0]["maxOutputTokens"], 16384);
    assert_eq!(body["defaultModel"], "gpt-4o-mini");
}

#[tokio::test]
async fn nothing_configured_lists_the_echo_model() {
    let app = TestApp::spawn().await;
    let body = model_list(&app).await;
    assert_eq!(
        body,
        json!({"items": [{"name": "echo", "provider": "echo", "default": true, "maxOutputTokens": 32768, "fallbacks": []}], "defaultModel": "echo"})
    );
}

#[tokio::test]
async fn the_model_metric_label_only_takes_listed_names() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    assert_eq!(
        app.send("alice", id, "hi").await.status(),
        StatusCode::CREATED
    );
    // Junk names never reach the provider or the metrics: they are refused first.
    for i in 0..5 {
        let r = app
            .post(
                "alice",
                "/api/v1/chats",
                json!({"settings": {"model": format!("junk-{i}")}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("llm_requests_total{"))
        .collect();
    assert!(!labels.is_empty(), "{text}");
    assert!(
        labels.iter().all(|l| l.contains("model=\"echo\"")),
        "{labels:?}"
    );
}
