//! Protection: CORS, per-user rate limits, SSE keep-alives, and readiness while
//! draining (slow clients: `slow_clients.rs`).

use crate::helpers::{problem, TestApp, SECRET};
use api_actix::config::Settings;
use api_actix::startup::{Adapters, Application};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORIGIN: &str = "https://app.example.com";

fn preflight(app: &TestApp, origin: &str) -> reqwest::RequestBuilder {
    app.client
        .request(Method::OPTIONS, app.url("/api/v1/chats"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
}

#[tokio::test]
async fn cors_allows_no_origin_by_default() {
    let app = TestApp::spawn().await;
    let r = preflight(&app, ORIGIN).send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(!r.status().is_success());
    let r = app
        .get("alice", "/api/v1/chats")
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "same request, just no CORS headers"
    );
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cors_preflight_for_a_configured_origin() {
    let app = TestApp::builder()
        .env(
            "CORS_ALLOWED_ORIGINS",
            &format!("{ORIGIN}, http://localhost:3000"),
        )
        .spawn()
        .await;
    let r = preflight(&app, ORIGIN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], ORIGIN);
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"));
    assert!(h.get("access-control-max-age").is_some());

    let r = app
        .get("alice", "/api/v1/chats")
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-request-id") && exposed.contains("retry-after"));

    let r = preflight(&app, "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn bad_cors_origins_stop_start_up() {
    let env = HashMap::from([(
        "CORS_ALLOWED_ORIGINS".to_owned(),
        "https://ok.example.com,app.example.com/path".to_owned(),
    )]);
    let err = Settings::load(None, &env).unwrap_err().to_string();
    assert!(err.contains("CORS_ALLOWED_ORIGINS"), "{err}");
    assert!(err.contains("app.example.com/path"), "{err}");
}

async fn rate_limited(r: reqwest::Response) -> u64 {
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "/problems/rate-limited");
    retry
}

#[tokio::test]
async fn the_api_limit_answers_429_with_retry_after_per_user() {
    let app = TestApp::builder()
        .env("RATE_LIMIT_API_PER_SEC", "0.5")
        .env("RATE_LIMIT_API_BURST", "3")
        .spawn()
        .await;
    for _ in 0..3 {
        let r = app.get("alice", "/api/v1/chats").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app.get("alice", "/api/v1/chats").send().await.unwrap();
    let retry = rate_limited(r).await;
    assert!((1..=2).contains(&retry), "{retry}");
    // Other users are unaffected; so are the routes without a token.
    let r = app.get("bob", "/api/v1/chats").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    // A bad token is a 401, not a 429, and spends nothing.
    let r = app
        .client
        .get(app.url("/api/v1/chats"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_send_limit_covers_sends_and_regenerates_only() {
    let app = TestApp::builder()
        .env("RATE_LIMIT_SENDS_PER_MIN", "1")
        .env("RATE_LIMIT_SENDS_BURST", "1")
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let r = app.send("alice", id, "first").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let turn: serde_json::Value = r.json().await.unwrap();
    let retry = rate_limited(app.send("alice", id, "second").await).await;
    assert!((50..=60).contains(&retry), "{retry}");
    let reply = turn["reply"]["id"].as_str().unwrap();
    let r = app
        .post(
            "alice",
            &format!("/api/v1/messages/{reply}/regenerate"),
            json!({}),
        )
        .send()
        .await
        .unwrap();
    rate_limited(r).await;
    // Reading is not a send; nothing of the refused sends was stored.
    assert_eq!(app.messages("alice", id).await.len(), 2);
    let bob_chat = app.create_chat("bob", "b").await;
    let r = app
        .send("bob", bob_chat["id"].as_str().unwrap(), "hi")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn idle_event_streams_get_keep_alive_comments() {
    let app = TestApp::builder()
        .env("HTTP_SSE_KEEP_ALIVE_SECS", "1")
        .llm(infra_llm::EchoModel::with_delay(Duration::from_millis(700)))
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let body = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={id}"),
            json!({"content": "hi"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\n\n: keep-alive\n\n"), "{body}");
    assert!(
        body.trim_end()
            .rsplit("\n\n")
            .next()
            .unwrap()
            .starts_with("id: end\nevent: reply"),
        "{body}"
    );
}

#[tokio::test]
async fn readiness_turns_503_while_draining_then_the_server_stops() {
    let env = HashMap::from([
        ("HTTP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("JWT_SECRET".to_owned(), SECRET.to_owned()),
        ("HTTP_SHUTDOWN_DELAY_SECS".to_owned(), "1".to_owned()),
    ]);
    let settings = Settings::load(None, &env).unwrap();
    let adapters = Adapters::memory(
        Arc::new(infra_memory::LogPublisher::default()),
        Arc::new(infra_llm::EchoModel::default()),
    );
    let app = Application::build(&settings, adapters).unwrap();
    let url = format!("http://127.0.0.1:{}/readyz", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    let signalled = Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = reqwest::Client::new().get(&url).send().await.unwrap();
    // A problem, as the document states: with Retry-After and each check's state.
    assert_eq!(r.headers()["retry-after"], "1");
    let body = crate::helpers::problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["type"], "/problems/unavailable");
    assert_eq!(body["detail"], "not ready: shutdown");
    assert_eq!(body["checks"]["shutdown"], "draining");
    assert_eq!(body["checks"]["storage"], "ok");
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        signalled.elapsed() >= Duration::from_secs(1),
        "the delay is honoured"
    );
    assert!(
        reqwest::Client::new().get(&url).send().await.is_err(),
        "no longer accepting"
    );
}
