//! Whole (non-streamed) replies.

use crate::helpers::*;
use domain::ports::{LlmClient, LlmError};
use domain::Usage;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn parses_content_usage_model_and_finish_reason() {
    let server = MockServer::start().await;
    let reply = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test-0613",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there", "refusal": null},
                     "logprobs": null, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        "system_fingerprint": "fp"
    });
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("accept", "application/json"))
        .and(body_partial_json(
            serde_json::json!({"stream": false, "model": "gpt-test"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(reply))
        .expect(1)
        .mount(&server)
        .await;
    let reply = client(config(&format!("{}/", server.uri())))
        .complete(request("hi"))
        .await
        .unwrap();
    assert_eq!(reply.content, "Hi there");
    assert_eq!(reply.model, "gpt-test-0613");
    assert_eq!(reply.finish_reason.as_deref(), Some("length"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 2
        })
    );
    let sent = &server.received_requests().await.unwrap()[0];
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert!(body.get("stream_options").is_none());
}

#[tokio::test]
async fn a_reply_without_model_or_usage_uses_the_requested_model() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "choices": [{"message": {"content": null}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let reply = client(config(&server.uri()))
        .complete(request("hi"))
        .await
        .unwrap();
    assert_eq!(
        (reply.content.as_str(), reply.model.as_str()),
        ("", "gpt-test")
    );
    assert_eq!(reply.usage, None);
}

#[tokio::test]
async fn malformed_or_empty_replies_are_stream_errors() {
    for body in [&b"{\"choices\": ["[..], &b"{\"choices\": []}"[..]] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(body.to_vec(), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let err = client(config(&server.uri()))
            .complete(request("hi"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LlmError::Stream(ref m) if m.starts_with("malformed reply")),
            "{err:?}"
        );
    }
}
