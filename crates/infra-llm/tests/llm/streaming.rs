//! Streamed replies: the request sent, the SSE format's corners, and stream failures.

use crate::helpers::*;
use domain::ports::{LlmChunk, LlmClient, LlmError};
use domain::Usage;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn event_stream(body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into().into_bytes(), "text/event-stream")
}

#[tokio::test]
async fn streams_text_model_finish_and_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(body_partial_json(
            serde_json::json!({"stream": true, "stream_options": {"include_usage": true}}),
        ))
        .respond_with(event_stream(hello_stream()))
        .expect(1)
        .mount(&server)
        .await;
    let llm = client(config(&format!("{}/v1", server.uri())));
    let out = drain(llm.stream(request("hi")).await.unwrap()).await;
    assert_eq!(out.error, None);
    assert_eq!(
        out.chunks,
        vec![
            LlmChunk::Model("gpt-test-0613".into()),
            LlmChunk::Delta("Hello".into()),
            LlmChunk::Delta(" world".into()),
            LlmChunk::Finish("stop".into()),
            LlmChunk::Usage(Usage {
                prompt_tokens: 12,
                completion_tokens: 2
            }),
        ]
    );

    let sent = &server.received_requests().await.unwrap()[0];
    let h = |name: &str| {
        sent.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        h("x-request-id").as_deref(),
        Some("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b")
    );
    let tp = h("traceparent").unwrap();
    assert!(
        tp.starts_with("00-0190a5b27c3d7e4f8a1b2c3d4e5f6a7b-") && tp.ends_with("-01"),
        "{tp}"
    );
    assert_eq!(tp.len(), 55);
    assert_eq!(h("accept").as_deref(), Some("text/event-stream"));
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "hi"}
            ],
            "temperature": 0.2,
            "max_tokens": 64,
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[tokio::test]
async fn keep_alives_crlf_multi_line_and_several_events_per_read() {
    let body = format!(
        ": OPENROUTER PROCESSING\r\n\r\ndata: {}\r\n\r\n:\r\ndata: {}\r\n\r\n: ping\r\n\r\ndata: {}\r\n\r\nevent: message\r\ndata: {}\r\n\r\ndata: [DONE]\r\n\r\n",
        role_chunk(),
        delta_chunk("a\nb"),
        // One JSON chunk carried by two `data:` lines (joined with a newline).
        delta_chunk(" ü").replacen(",\"object\"", ",\r\ndata: \"object\"", 1),
        usage_chunk(3, 2)
    );
    assert!(body.contains("\r\ndata: \"object\""));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(event_stream(body))
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
    assert_eq!(out.error, None);
    assert_eq!(out.text, "a\nb ü");
    assert!(out.chunks.contains(&LlmChunk::Usage(Usage {
        prompt_tokens: 3,
        completion_tokens: 2
    })));
}

#[tokio::test]
async fn without_a_key_or_request_id_no_such_headers_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(event_stream(hello_stream()))
        .expect(1)
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri());
    cfg.api_key = None;
    let mut req = request("x");
    req.request_id = None;
    let out = drain(client(cfg).stream(req).await.unwrap()).await;
    assert_eq!(out.text, "Hello world");
    let sent = &server.received_requests().await.unwrap()[0];
    for name in ["authorization", "x-request-id", "traceparent"] {
        assert!(sent.headers.get(name).is_none(), "{name} was sent");
    }
}

#[tokio::test]
async fn a_stream_ending_without_done_is_cut_and_not_retried() {
    let server = MockServer::start().await;
    let body = sse(&[role_chunk(), delta_chunk("Hel")], false);
    Mock::given(method("POST"))
        .respond_with(event_stream(body))
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
    assert_eq!(out.text, "Hel");
    assert_eq!(out.error, Some(LlmError::Stream("cut".into())));
}

#[tokio::test]
async fn a_malformed_chunk_after_the_first_is_a_stream_error() {
    let server = MockServer::start().await;
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: {{\"choices\": [oops\n\n",
        role_chunk(),
        delta_chunk("ok")
    );
    Mock::given(method("POST"))
        .respond_with(event_stream(body))
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
    assert_eq!(out.text, "ok");
    assert!(matches!(out.error, Some(LlmError::Stream(m)) if m.starts_with("malformed chunk")));
}

#[tokio::test]
async fn a_malformed_first_chunk_fails_the_call_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(event_stream("data: not json\n\n"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(config(&server.uri()))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LlmError::Stream(m) if m.starts_with("malformed chunk")));
}

#[tokio::test]
async fn an_empty_body_before_any_chunk_is_retried_then_cut() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(event_stream(": only a comment\n\n"))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(config(&server.uri()))
        .stream(request("x"))
        .await
        .err()
        .unwrap();
    assert_eq!(err, LlmError::Stream("cut".into()));
}

#[tokio::test]
async fn done_alone_is_an_empty_reply() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(event_stream("data: [DONE]\n\n"))
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
    assert!(out.chunks.is_empty() && out.error.is_none());
}

#[tokio::test]
async fn a_provider_error_event_mid_stream_is_a_stream_error_without_the_key() {
    let server = MockServer::start().await;
    let error =
        format!(r#"{{"error":{{"message":"overloaded, key {KEY}","type":"server_error"}}}}"#);
    Mock::given(method("POST"))
        .respond_with(event_stream(sse(
            &[role_chunk(), delta_chunk("a"), error],
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
    assert_eq!(
        out.error,
        Some(LlmError::Stream(
            "provider error: overloaded, key [redacted]".into()
        ))
    );
}

#[tokio::test]
async fn a_server_answering_json_to_a_stream_request_still_works() {
    let server = MockServer::start().await;
    let body = serde_json::json!({
        "model": "m-1", "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1}
    });
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
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
    assert_eq!(out.text, "whole");
    assert_eq!(out.chunks[0], LlmChunk::Model("m-1".into()));
    assert!(out.chunks.contains(&LlmChunk::Finish("stop".into())));
}

#[tokio::test]
async fn events_split_at_every_byte_over_the_network() {
    let body = format!(
        "\u{feff}: hi\r\n\r\ndata: {}\r\n\r\ndata: {}\r\rdata: {}\n\ndata: [DONE]\r\n\r\n",
        role_chunk(),
        delta_chunk("héllo 🌍"),
        delta_chunk(" wörld")
    );
    let addr = raw_server(vec![Raw::Write(body.into_bytes(), true)]).await;
    let out = drain(
        client(config(&format!("http://{addr}")))
            .stream(request("x"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.error, None);
    assert_eq!(out.text, "héllo 🌍 wörld");
}

#[tokio::test]
async fn a_connection_closed_mid_stream_is_cut() {
    let first = sse(&[role_chunk(), delta_chunk("part")], false);
    let addr = raw_server(vec![
        Raw::Write(first.into_bytes(), false),
        Raw::Sleep(Duration::from_millis(50)),
        Raw::Write(b"data: {\"choi".to_vec(), false),
    ])
    .await;
    let out = drain(
        client(config(&format!("http://{addr}")))
            .stream(request("x"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(out.text, "part");
    assert_eq!(out.error, Some(LlmError::Stream("cut".into())));
}
