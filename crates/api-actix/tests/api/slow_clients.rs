//! Slow clients, over raw TCP: every request head on a connection (not only the first) is
//! due within `HTTP_CLIENT_REQUEST_TIMEOUT_MS` (else a 408 problem and the connection is
//! closed), every body within the same budget after its head (else 400 and closed, chunked
//! or not), and a body the handler did not read is not drained forever.

use crate::helpers::TestApp;
use crate::raw::Raw;
use reqwest::StatusCode;
use std::time::Duration;

const TIMEOUT_MS: &str = "1000";
const EVERY: Duration = Duration::from_millis(150);

async fn app() -> TestApp {
    TestApp::builder()
        .env("HTTP_CLIENT_REQUEST_TIMEOUT_MS", TIMEOUT_MS)
        .spawn()
        .await
}

fn healthz() -> &'static [u8] {
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
}

fn post_chat_head(chunked: bool) -> String {
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        "Content-Length: 100".to_owned()
    };
    format!(
        "POST /api/v1/chats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n",
        TestApp::token("alice")
    )
}

#[tokio::test]
async fn a_client_stalling_in_its_first_head_gets_a_408_problem() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    assert!(
        c.send(b"POST /api/v1/chats HTTP/1.1\r\nHost: x\r\nContent-Type: app")
            .await
    );
    let (answers, closed) = c.until_closed().await;
    assert!(closed, "not cut");
    assert_eq!(answers.len(), 1, "{answers:?}");
    let p = answers[0].problem(408);
    assert_eq!(p["type"], "/problems/request-timeout");
    assert_eq!(answers[0].header("connection"), Some("close"));
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{method="other",route="unmatched",status="408"} 1"#),
        "the guard's answers are counted"
    );
}

#[tokio::test]
async fn every_later_head_on_a_keep_alive_connection_is_timed_too() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    // One request, answered; the connection stays open (keep-alive).
    assert!(c.send(healthz()).await);
    let first = c.responses(1).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].status, 200);
    assert!(!c.closed());
    // The next head, one byte at a time: cut long before it is complete.
    let next = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
        "dribbling-one-byte-at-a-time-".repeat(6)
    );
    let next = next.as_bytes();
    let sent = c.dribble(next, EVERY).await;
    assert!(sent < next.len(), "the whole head went through: not timed");
    let (answers, closed) = c.until_closed().await;
    assert!(closed, "the connection stayed open");
    assert_eq!(answers.len(), 2, "{answers:?}");
    answers[1].problem(408);
}

#[tokio::test]
async fn a_client_stalling_in_its_body_is_cut() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    let head = post_chat_head(false);
    assert!(c.send(format!("{head}{{\"title\":").as_bytes()).await);
    let (answers, closed) = c.until_closed().await;
    assert!(closed, "not cut");
    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].problem(400);
    // The service still serves other clients, at the first try.
    let r = app.get("alice", "/api/v1/chats").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_chunked_body_missing_its_deadline_is_400_and_the_connection_closed() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    assert!(
        c.send(format!("{}9\r\n{{\"title\":\r\n", post_chat_head(true)).as_bytes())
            .await
    );
    // Keep sending valid one-byte chunks: the server must answer and close anyway.
    c.keep_sending(b"1\r\n \r\n", EVERY, 200).await;
    let (answers, closed) = c.until_closed().await;
    assert!(closed, "the server kept reading chunks");
    assert_eq!(answers.len(), 1, "{answers:?}");
    answers[0].problem(400);
}

#[tokio::test]
async fn a_chunked_body_the_handler_did_not_read_is_not_drained_forever() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    // No token: 401 before the body is read; then the body keeps coming, slowly.
    let head = "POST /api/v1/chats HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n";
    assert!(c.send(head.as_bytes()).await);
    let first = c.responses(1).await;
    assert_eq!(first.first().map(|r| r.status), Some(401), "{first:?}");
    c.keep_sending(b"1\r\n \r\n", EVERY, 200).await;
    let (_, closed) = c.until_closed().await;
    assert!(closed, "the server drained the body for as long as it came");
}

#[tokio::test]
async fn a_malformed_chunk_gets_one_problem_answer_then_the_connection_closes() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    assert!(
        c.send(format!("{}zz\r\n{{}}\r\n0\r\n\r\n", post_chat_head(true)).as_bytes())
            .await
    );
    let (answers, closed) = c.until_closed().await;
    assert!(closed);
    assert_eq!(answers.len(), 1, "one request, one answer: {answers:?}");
    answers[0].problem(400);
}

#[tokio::test]
async fn a_good_request_then_garbage_gets_its_answer_then_a_400_problem() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    let mut bytes = healthz().to_vec();
    bytes.extend_from_slice(b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.send(&bytes).await);
    let (answers, closed) = c.until_closed().await;
    assert!(closed);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 200);
    let p = answers[1].problem(400);
    assert_eq!(p["type"], "/problems/bad-request");
}

#[tokio::test]
async fn requests_sent_whole_keep_a_connection_alive() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    for _ in 0..3 {
        assert!(c.send(healthz()).await);
        // Pauses between requests are the keep-alive timer's business, not the head's.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let answers = c.responses(3).await;
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
}

#[tokio::test]
async fn pipelined_requests_with_bodies_are_all_answered_in_order() {
    let app = app().await;
    let mut c = Raw::connect(&app).await;
    let body = r#"{"title":"pipelined"}"#;
    let mut bytes = post_chat_head(false)
        .replace(
            "Content-Length: 100",
            &format!("Content-Length: {}", body.len()),
        )
        .into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    for _ in 0..20 {
        bytes.extend_from_slice(healthz());
    }
    bytes.extend_from_slice(post_chat_head(true).as_bytes());
    bytes.extend_from_slice(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes());
    assert!(c.send(&bytes).await);
    let answers = c.responses(22).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    let mut want = vec![201];
    want.extend([200; 20]);
    want.push(201);
    assert_eq!(statuses, want);
    assert!(!c.closed(), "the connection is kept alive");
}

#[tokio::test]
async fn a_late_head_behind_a_stream_is_answered_after_the_stream_not_into_it() {
    let app = TestApp::builder()
        .env("HTTP_CLIENT_REQUEST_TIMEOUT_MS", TIMEOUT_MS)
        .llm(infra_llm::EchoModel::with_delay(Duration::from_millis(300)))
        .spawn()
        .await;
    let chat = app.create_chat("alice", "streamed").await;
    let id = chat["id"].as_str().unwrap();
    let body = r#"{"content":"one two three four five six seven eight"}"#;
    let send = format!(
        "POST /api/v1/messages?chatId={id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Accept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        TestApp::token("alice"),
        body.len()
    );
    let mut c = Raw::connect(&app).await;
    // The send, then the start of a second head that never ends (pipelined).
    assert!(
        c.send(format!("{send}GET /healthz HTTP/1.1\r\nHo").as_bytes())
            .await
    );
    let (answers, closed) = c.until_closed().await;
    assert!(closed);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 201);
    let stream = String::from_utf8(answers[0].body.clone()).unwrap();
    let last = stream.trim_end().rsplit("\n\n").next().unwrap();
    assert!(
        last.starts_with("id: end\nevent: reply"),
        "the stream is whole: {stream}"
    );
    answers[1].problem(408);
}
