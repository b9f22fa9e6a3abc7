//! Token accounting and quotas at the wire: replies (JSON and streamed) charged with
//! what the provider reported through the real OpenAI-compatible client, an estimate
//! when it reports nothing, titles under their own purpose, `GET /usage`'s validation,
//! erasure, and the quota's 429 with `Retry-After`, on one replica and across two.

use crate::helpers::{problem, sse_events, TestApp};
use fake_llm::{FakeLlmConfig, RunningFakeLlm};
use infra_llm::{OpenAiClient, OpenAiConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn fake(report_usage: bool) -> RunningFakeLlm {
    fake_llm::spawn(FakeLlmConfig {
        reply_tokens: 5,
        report_usage,
        ..FakeLlmConfig::for_tests()
    })
    .await
    .unwrap()
}

fn client(base_url: String) -> OpenAiClient {
    let mut cfg = OpenAiConfig::new(base_url);
    cfg.first_token_timeout = Duration::from_secs(10);
    cfg.total_timeout = Duration::from_secs(30);
    OpenAiClient::new(cfg).unwrap()
}

async fn app_with(fake: &RunningFakeLlm, env: &[(&str, &str)]) -> TestApp {
    let mut b = TestApp::builder()
        .env("LLM_AUTO_TITLE", "false")
        .llm(client(fake.base_url()));
    for (k, v) in env {
        b = b.env(k, v);
    }
    b.spawn().await
}

async fn usage(app: &TestApp, user: &str, query: &str) -> Value {
    let r = app
        .get(user, &format!("/api/v1/usage{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Sends with `Accept: text/event-stream` and returns the final `reply` event's data.
async fn send_streamed(app: &TestApp, user: &str, chat: &str, content: &str) -> Value {
    let r = app
        .post(
            user,
            &format!("/api/v1/messages?chatId={chat}"),
            json!({ "content": content }),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let events = sse_events(&r.text().await.unwrap());
    events
        .into_iter()
        .find(|(name, _)| name == "reply")
        .expect("a reply event")
        .1
}

fn chat_id(chat: &Value) -> String {
    chat["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn json_and_streamed_replies_are_charged_what_the_provider_reported() {
    let fake = fake(true).await;
    let app = app_with(&fake, &[]).await;
    let chat = chat_id(&app.create_chat("alice", "c").await);
    let r = app.send("alice", &chat, "hello there").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let json_reply: Value = r.json().await.unwrap();
    let streamed = send_streamed(&app, "alice", &chat, "and again").await;
    let (mut prompt, mut completion) = (0, 0);
    for reply in [&json_reply["reply"], &streamed] {
        // The streamed reply has usage too: the client asked for the usage chunk.
        prompt += reply["usage"]["promptTokens"].as_u64().unwrap();
        completion += reply["usage"]["completionTokens"].as_u64().unwrap();
    }
    assert!(prompt > 0 && completion > 0);
    let u = usage(&app, "alice", "").await;
    assert_eq!(u["groupBy"], "day");
    assert_eq!(u["total"]["promptTokens"], prompt);
    assert_eq!(u["total"]["completionTokens"], completion);
    assert_eq!(u["total"]["totalTokens"], prompt + completion);
    assert_eq!(u["total"]["estimatedTokens"], 0);
    assert_eq!(u["total"]["requests"], 2);
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(u["to"], today);
    let items = u["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["key"].as_str(), items[0]["purpose"].as_str()),
        (Some(today.as_str()), Some("reply"))
    );
    // By model: the chat's model answered both.
    let by_model = usage(&app, "alice", "?groupBy=model").await;
    assert_eq!(by_model["items"][0]["key"], "echo");
    assert_eq!(by_model["items"][0]["requests"], 2);
    // Another user spent nothing.
    let bob = usage(&app, "bob", "").await;
    assert_eq!(bob["total"]["totalTokens"], 0);
    assert_eq!(bob["items"], json!([]));
}

#[tokio::test]
async fn without_reported_usage_an_estimate_is_charged_and_marked() {
    let fake = fake(false).await;
    let app = app_with(&fake, &[]).await;
    let chat = chat_id(&app.create_chat("alice", "c").await);
    let t: Value = app
        .send("alice", &chat, "count me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["reply"]["status"], "complete");
    assert_eq!(
        t["reply"]["usage"],
        Value::Null,
        "the reply shows only reported usage"
    );
    let streamed = send_streamed(&app, "alice", &chat, "me too").await;
    assert_eq!(streamed["status"], "complete");
    let u = usage(&app, "alice", "").await;
    let total = u["total"]["totalTokens"].as_u64().unwrap();
    assert!(total > 0);
    assert_eq!(u["total"]["estimatedTokens"], total);
    assert_eq!(u["total"]["requests"], 2);
    // The completion estimate: the reply's characters / 4, rounded up.
    let chars = |v: &Value| v["content"].as_str().unwrap().chars().count() as u64;
    let expected = chars(&t["reply"]).div_ceil(4) + chars(&streamed).div_ceil(4);
    assert_eq!(u["total"]["completionTokens"], expected);
}

/// Waits (bounded) until no detached task (reply or title) is running.
async fn idle(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| l == "chat_background_tasks 0") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tasks still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_title_is_charged_under_its_own_purpose() {
    let fake = fake(true).await;
    let app = TestApp::builder()
        .llm(client(fake.base_url()))
        .spawn()
        .await;
    let r = app
        .post("alice", "/api/v1/chats", json!({}))
        .send()
        .await
        .unwrap();
    let chat = chat_id(&r.json().await.unwrap());
    assert_eq!(
        app.send("alice", &chat, "plan a trip").await.status(),
        StatusCode::CREATED
    );
    idle(&app).await;
    assert_eq!(fake.stats().requests(), 2, "the reply, then the title");
    let u = usage(&app, "alice", "").await;
    let purposes: Vec<&str> = u["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["purpose"].as_str().unwrap())
        .collect();
    assert_eq!(purposes, ["reply", "title"]);
    let title = &u["items"][1];
    assert_eq!(title["requests"], 1);
    assert!(title["totalTokens"].as_u64().unwrap() > 0);
    assert_eq!(title["estimatedTokens"], 0);
    assert_eq!(u["total"]["requests"], 2);
}

#[tokio::test]
async fn bad_ranges_and_parameters_are_refused() {
    let app = TestApp::spawn().await;
    for (query, kind, field) in [
        (
            "?from=2026-12-02&to=2026-12-01",
            "/problems/unprocessable",
            "from",
        ),
        (
            "?from=2025-01-01&to=2026-01-02",
            "/problems/unprocessable",
            "to",
        ),
        ("?from=2026-02-30", "/problems/validation", "from"),
        ("?to=yesterday", "/problems/validation", "to"),
        ("?groupBy=week", "/problems/validation", "groupBy"),
    ] {
        let r = app
            .get("alice", &format!("/api/v1/usage{query}"))
            .send()
            .await
            .unwrap();
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["type"], kind, "{query}");
        assert_eq!(p["errors"][0]["field"], field, "{query}");
    }
    // A whole leap year is fine; so is a day.
    for query in [
        "?from=2024-01-01&to=2024-12-31",
        "?from=2026-11-05&to=2026-11-05",
    ] {
        let u = usage(&app, "alice", query).await;
        assert_eq!(u["total"]["requests"], 0);
    }
    let u = usage(&app, "alice", "?to=2026-11-30").await;
    assert_eq!(u["from"], "2026-11-01", "30 days ending at to");
    let r = app
        .client
        .get(app.url("/api/v1/usage"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn erasure_takes_the_users_usage() {
    let app = TestApp::spawn().await;
    let chat = chat_id(&app.create_chat("alice", "c").await);
    assert_eq!(
        app.send("alice", &chat, "hi").await.status(),
        StatusCode::CREATED
    );
    assert!(
        usage(&app, "alice", "").await["total"]["totalTokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let r = app.delete("alice", "/api/v1/me").send().await.unwrap();
    assert!(r.status().is_success());
    assert_eq!(usage(&app, "alice", "").await["total"]["totalTokens"], 0);
}

/// Seconds from now to the next UTC midnight.
fn secs_to_midnight() -> i64 {
    let now = chrono::Utc::now();
    let midnight = (now.date_naive() + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    (midnight - now).num_seconds()
}

fn retry_after(r: &reqwest::Response) -> i64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn past_the_quota_a_send_or_regenerate_is_429_and_stores_nothing() {
    let fake = fake(true).await;
    let app = app_with(&fake, &[("QUOTA_TOKENS_PER_DAY", "1")]).await;
    let chat = chat_id(&app.create_chat("alice", "c").await);
    // Under the quota (nothing spent yet): the reply may finish past it.
    let first: Value = app.send("alice", &chat, "one").await.json().await.unwrap();
    assert_eq!(first["reply"]["status"], "complete");
    assert_eq!(fake.stats().requests(), 1);
    let r = app.send("alice", &chat, "two").await;
    let wait = retry_after(&r);
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(p["type"], "/problems/quota-exceeded");
    assert!(p["detail"].as_str().unwrap().contains("per day"), "{p}");
    // Until the UTC day ends (generous bounds: the machine may be slow).
    let expected = secs_to_midnight();
    assert!(
        (wait - expected).abs() <= 120 || expected < 120,
        "Retry-After {wait}, midnight in {expected}"
    );
    let reply_id = first["reply"]["id"].as_str().unwrap();
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages/{reply_id}/regenerate"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    assert!(retry_after(&r) >= 1);
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(p["type"], "/problems/quota-exceeded");
    assert_eq!(
        app.messages("alice", &chat).await.len(),
        2,
        "nothing stored"
    );
    assert_eq!(fake.stats().requests(), 1, "the provider was not called");
    // Another user has a quota of their own.
    let theirs = chat_id(&app.create_chat("bob", "c").await);
    assert_eq!(
        app.send("bob", &theirs, "hi").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn the_month_quota_holds_across_replicas() {
    let db = infra_postgres::testing::TestDb::new();
    let env = |b: crate::helpers::TestAppBuilder| {
        b.database_url(db.url())
            .env("LLM_AUTO_TITLE", "false")
            .env("QUOTA_TOKENS_PER_MONTH", "1")
    };
    let a = env(TestApp::builder()).spawn().await;
    let b = env(TestApp::builder()).spawn().await;
    let chat = chat_id(&a.create_chat("alice", "c").await);
    assert_eq!(
        a.send("alice", &chat, "spend").await.status(),
        StatusCode::CREATED
    );
    for app in [&b, &a] {
        let r = app.send("alice", &chat, "more").await;
        assert!(retry_after(&r) >= 1);
        let p = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(p["type"], "/problems/quota-exceeded");
        assert!(p["detail"].as_str().unwrap().contains("per month"), "{p}");
    }
    // Both replicas read the one ledger.
    let (ua, ub) = (usage(&a, "alice", "").await, usage(&b, "alice", "").await);
    assert_eq!(ua["total"], ub["total"]);
    assert_eq!(ua["total"]["requests"], 1);
}
