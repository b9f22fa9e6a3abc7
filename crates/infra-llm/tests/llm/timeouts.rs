//! Time limits: connect, first token, silence between chunks, and the whole call.

use crate::helpers::*;
use domain::ports::{LlmClient, LlmError, TimeoutKind};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn short(mut cfg: infra_llm::OpenAiConfig) -> infra_llm::OpenAiConfig {
    cfg.first_token_timeout = Duration::from_millis(300);
    cfg.idle_timeout = Duration::from_millis(300);
    cfg
}

#[tokio::test]
async fn a_slow_first_token_times_out_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(hello_stream().into_bytes(), "text/event-stream")
                .set_delay(Duration::from_secs(2)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(short(config(&server.uri())))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(err, LlmError::Timeout(TimeoutKind::FirstToken));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn keep_alives_alone_do_not_count_as_a_first_token() {
    let mut script = Vec::new();
    for _ in 0..20 {
        script.push(Raw::Write(b": keep-alive\n\n".to_vec(), false));
        script.push(Raw::Sleep(Duration::from_millis(50)));
    }
    let addr = raw_server(script).await;
    let err = client(short(config(&format!("http://{addr}"))))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(err, LlmError::Timeout(TimeoutKind::FirstToken));
}

#[tokio::test]
async fn a_whole_reply_past_the_total_limit_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri());
    cfg.total_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = client(cfg).complete(request("x")).await.unwrap_err();
    assert_eq!(err, LlmError::Timeout(TimeoutKind::Total));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_stall_mid_stream_ends_it_with_a_timeout_after_the_text_so_far() {
    let start = sse(&[role_chunk(), delta_chunk("so far")], false);
    let addr = raw_server(vec![
        Raw::Write(start.into_bytes(), false),
        Raw::Sleep(Duration::from_secs(3)),
        Raw::Write(b"data: [DONE]\n\n".to_vec(), false),
    ])
    .await;
    let started = Instant::now();
    let stream = client(short(config(&format!("http://{addr}"))))
        .stream(request("x"))
        .await
        .unwrap();
    let out = drain(stream).await;
    assert_eq!(out.text, "so far");
    assert_eq!(out.error, Some(LlmError::Timeout(TimeoutKind::Total)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_reply_that_never_ends_hits_the_total_limit() {
    let mut script = vec![Raw::Write(sse(&[role_chunk()], false).into_bytes(), false)];
    for _ in 0..100 {
        script.push(Raw::Write(
            sse(&[delta_chunk("x")], false).into_bytes(),
            false,
        ));
        script.push(Raw::Sleep(Duration::from_millis(50)));
    }
    let addr = raw_server(script).await;
    let mut cfg = config(&format!("http://{addr}"));
    cfg.total_timeout = Duration::from_millis(600);
    let started = Instant::now();
    let out = drain(client(cfg).stream(request("x")).await.unwrap()).await;
    assert!(!out.text.is_empty());
    assert_eq!(out.error, Some(LlmError::Timeout(TimeoutKind::Total)));
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn a_connect_that_never_completes_times_out_as_connect() {
    // A listener whose accept queue is full: the kernel drops further SYNs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let mut cfg = config(&format!("http://{addr}"));
    cfg.connect_timeout = Duration::from_millis(200);
    cfg.retry.max_retries = 1;
    let started = Instant::now();
    let err = client(cfg).stream(request("x")).await.err().unwrap();
    assert_eq!(err, LlmError::Timeout(TimeoutKind::Connect));
    // Both attempts waited for their connect limit.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    drop((listener, fillers));
}

#[tokio::test]
async fn a_role_chunk_alone_does_not_count_as_a_first_token() {
    let role = format!("data: {}\n\n", role_chunk());
    let addr = raw_server(vec![
        Raw::Write(role.into_bytes(), false),
        Raw::Sleep(Duration::from_secs(3)),
    ])
    .await;
    let err = client(short(config(&format!("http://{addr}"))))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(err, LlmError::Timeout(TimeoutKind::FirstToken));
}
