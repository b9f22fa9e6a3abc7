//! Retries before the first token (429, 5xx, connection errors, `Retry-After`) and
//! the mapping of provider statuses to the port's errors.

use crate::helpers::*;
use domain::ports::{LlmClient, LlmError};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn event_stream(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "text/event-stream")
}

fn error_json(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}
    }))
}

/// Mounts `first` for the first `times` calls, then `then` for `then_times` calls.
async fn sequence(
    server: &MockServer,
    first: ResponseTemplate,
    times: u64,
    then: ResponseTemplate,
    then_times: u64,
) {
    Mock::given(method("POST"))
        .respond_with(first)
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .respond_with(then)
        .expect(then_times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_429_then_success_calls_twice() {
    let server = MockServer::start().await;
    sequence(
        &server,
        error_json(429, "slow down"),
        1,
        event_stream(hello_stream()),
        1,
    )
    .await;
    let out = drain(
        client(config(&server.uri()))
            .stream(request("x"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.text, "Hello world");
}

#[tokio::test]
async fn a_503_then_success_for_a_whole_reply() {
    let server = MockServer::start().await;
    let ok = ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"choices": [{"message": {"content": "fine"}}]}));
    sequence(&server, ResponseTemplate::new(503), 2, ok, 1).await;
    let reply = client(config(&server.uri()))
        .complete(request("x"))
        .await
        .unwrap();
    assert_eq!(reply.content, "fine");
}

#[tokio::test]
async fn a_500_is_retried_up_to_the_maximum() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html>oops</html>"))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(config(&server.uri()))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(err, LlmError::Upstream { status: Some(500) });
}

#[tokio::test]
async fn no_retries_when_configured_so() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri());
    cfg.retry.max_retries = 0;
    let err = client(cfg).complete(request("x")).await.unwrap_err();
    assert_eq!(err, LlmError::Upstream { status: Some(502) });
}

#[tokio::test]
async fn a_400_is_not_retried_and_carries_the_message_without_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(error_json(
            400,
            &format!("This model's maximum context length is 8192 tokens (key {KEY})"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(config(&server.uri()))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err,
        LlmError::BadRequest(
            "This model's maximum context length is 8192 tokens (key [redacted])".into()
        )
    );
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn client_errors_map_to_bad_request_or_unauthorized_without_retry() {
    for (status, expected_unauthorized) in [
        (401, true),
        (403, true),
        (404, false),
        (413, false),
        (422, false),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(error_json(status, "nope"))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(config(&server.uri()))
            .complete(request("x"))
            .await
            .unwrap_err();
        if expected_unauthorized {
            assert_eq!(err, LlmError::Unauthorized, "{status}");
        } else {
            assert_eq!(err, LlmError::BadRequest("nope".into()), "{status}");
        }
    }
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let server = MockServer::start().await;
    let limited = error_json(429, "slow down").insert_header("retry-after", "1");
    sequence(&server, limited, 1, event_stream(hello_stream()), 1).await;
    let started = Instant::now();
    let out = drain(
        client(config(&server.uri()))
            .stream(request("x"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.text, "Hello world");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = MockServer::start().await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let limited = ResponseTemplate::new(503).insert_header("retry-after", date.as_str());
    sequence(&server, limited, 1, event_stream(hello_stream()), 1).await;
    let started = Instant::now();
    drain(
        client(config(&server.uri()))
            .stream(request("x"))
            .await
            .unwrap(),
    )
    .await;
    // The date has a one-second resolution.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_fails_at_once_with_the_wait() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(error_json(429, "quota").insert_header("retry-after", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(config(&server.uri()))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn rate_limited_after_retries_run_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(error_json(429, "slow").insert_header("retry-after-ms", "20"))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(config(&server.uri()))
        .complete(request("x"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_millis(20))
        }
    );
}

#[tokio::test]
async fn a_failure_after_the_first_token_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(event_stream(sse(
            &[role_chunk(), delta_chunk("par")],
            false,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let out = drain(
        client(config(&server.uri()))
            .stream(request("x"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.text, "par");
    assert_eq!(out.error, Some(LlmError::Stream("cut".into())));
}

#[tokio::test]
async fn connection_refused_is_retried_then_upstream() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let started = Instant::now();
    let err = client(config(&format!("http://{addr}/v1")))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(err, LlmError::Upstream { status: None });
    // Two backoffs of at least 5 ms each were waited.
    assert!(started.elapsed() >= Duration::from_millis(10));
}
