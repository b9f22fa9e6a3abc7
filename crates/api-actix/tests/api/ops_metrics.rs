//! `/metrics`: the HTTP, LLM and runtime families, with bounded labels.

use crate::helpers::TestApp;
use crate::messages::FailingLlm;
use domain::ports::LlmError;
use reqwest::StatusCode;
use serde_json::json;

/// The value of the first sample of `name` carrying every label in `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            (n == name && all).then(|| value.parse().unwrap())
        })
}

async fn scrape(app: &TestApp) -> String {
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.text().await.unwrap()
}

#[tokio::test]
async fn requests_and_replies_show_in_the_metrics() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    assert_eq!(
        app.send("alice", id, "hello there").await.status(),
        StatusCode::CREATED
    );
    let sse = app
        .post(
            "alice",
            &format!("/api/v1/messages?chatId={id}"),
            json!({"content": "again"}),
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert!(sse.text().await.unwrap().contains("event: reply"));
    app.get("alice", &format!("/api/v1/chats/{}", uuid::Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/no/such/thing/42"))
        .send()
        .await
        .unwrap();

    let text = scrape(&app).await;
    let created = [
        ("method", "POST"),
        ("route", "/api/v1/chats"),
        ("status", "201"),
    ];
    assert_eq!(
        sample(&text, "http_requests_total", &created),
        Some(1.0),
        "{text}"
    );
    assert!(sample(&text, "http_request_duration_seconds_count", &created) == Some(1.0));
    let le = [
        ("route", "/api/v1/chats"),
        ("status", "201"),
        ("le", "+Inf"),
    ];
    assert_eq!(
        sample(&text, "http_request_duration_seconds_bucket", &le),
        Some(1.0)
    );
    // Path parameters never become labels: the route pattern does.
    let by_id = [
        ("method", "GET"),
        ("route", "/api/v1/chats/{id}"),
        ("status", "404"),
    ];
    assert_eq!(
        sample(&text, "http_requests_total", &by_id),
        Some(1.0),
        "{text}"
    );
    let errs = [("route", "/api/v1/chats/{id}"), ("class", "4xx")];
    assert_eq!(sample(&text, "http_request_errors_total", &errs), Some(1.0));
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(sample(&text, "http_requests_total", &unmatched), Some(1.0));
    assert!(
        !text.contains("/no/such/thing"),
        "raw paths must not be labels"
    );

    // LLM: two replies from the echo model, timed and counted.
    let echo = [("model", "echo")];
    assert_eq!(
        sample(&text, "llm_time_to_first_token_seconds_count", &echo),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "llm_tokens_per_second_count", &echo),
        Some(2.0)
    );
    let completion = [("model", "echo"), ("kind", "completion")];
    assert!(
        sample(&text, "llm_tokens_total", &completion).unwrap() >= 4.0,
        "{text}"
    );
    assert!(sample(&text, "llm_tokens_total", &[("kind", "prompt")]).unwrap() > 0.0);
    let ok = [("model", "echo"), ("outcome", "ok")];
    assert_eq!(sample(&text, "llm_requests_total", &ok), Some(2.0));

    // Gauges: nothing running once the replies are stored.
    for g in [
        "llm_streams_active",
        "chat_generations_active",
        "http_sse_streams_active",
        "outbox_backlog",
    ] {
        assert_eq!(sample(&text, g, &[]), Some(0.0), "{g}");
    }
    // The scrape itself is in flight while it renders.
    assert_eq!(sample(&text, "http_requests_in_flight", &[]), Some(1.0));
    assert!(text.contains("# TYPE chat_background_tasks gauge"));
}

#[tokio::test]
async fn provider_errors_are_counted_by_kind() {
    let app = TestApp::builder()
        .llm(FailingLlm {
            error: LlmError::Upstream { status: Some(503) },
            prompts: Default::default(),
        })
        .spawn()
        .await;
    let chat = app.create_chat("alice", "c").await;
    let r = app.send("alice", chat["id"].as_str().unwrap(), "hi").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, "llm_errors_total", &[("kind", "upstream")]),
        Some(1.0)
    );
    let failed = [("model", "echo"), ("outcome", "error")];
    assert_eq!(
        sample(&text, "llm_requests_total", &failed),
        Some(1.0),
        "{text}"
    );
    let send = [("route", "/api/v1/messages"), ("class", "5xx")];
    assert_eq!(sample(&text, "http_request_errors_total", &send), Some(1.0));
}
