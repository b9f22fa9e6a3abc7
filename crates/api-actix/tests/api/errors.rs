//! Bad input of every kind gets a clear 4xx problem+json, never a 5xx.

use crate::helpers::{problem, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn validation_reports_every_bad_field() {
    let app = TestApp::spawn().await;
    let body = json!({"title": "", "settings": {"temperature": 3, "maxTokens": -1, "model": "bad model", "systemPrompt": "x".repeat(20_001)}});
    let p = problem(
        app.post("alice", "/api/v1/chats", body)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "settings.maxTokens",
            "settings.model",
            "settings.systemPrompt",
            "settings.temperature",
            "title"
        ]
    );
    let long = "t".repeat(201);
    let p = problem(
        app.post("alice", "/api/v1/chats", json!({"title": long}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p["errors"][0]["message"].as_str().unwrap().contains("200"));
}

#[tokio::test]
async fn wrong_json_types_are_422_with_the_field() {
    let app = TestApp::spawn().await;
    let p = problem(
        app.post("alice", "/api/v1/chats", json!({"title": 5}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "title");
    let p = problem(
        app.post("alice", "/api/v1/chats", json!("not an object"))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "body");
}

#[tokio::test]
async fn message_content_rules_are_422() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    for body in [
        json!({}),
        json!({"content": ""}),
        json!({"content": "   "}),
        json!({"content": "a".repeat(100_001)}),
    ] {
        let r = app
            .post("alice", &format!("/api/v1/messages?chatId={id}"), body)
            .send()
            .await;
        let r = r.unwrap();
        let status = r.status();
        // 100,001 characters fit the 64 KiB test body limit? No: they are refused by size first.
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            problem(r, status).await;
            continue;
        }
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["errors"][0]["field"], "content");
    }
    assert!(app.messages("alice", id).await.is_empty());
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    for raw in ["{", "{\"title\": }", "nul", "\u{0}"] {
        let r = app
            .client
            .post(app.url("/api/v1/chats"))
            .bearer_auth(TestApp::token("alice"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn trailing_data_after_the_json_value_is_400() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    for (path, raw) in [
        ("/api/v1/chats".to_owned(), r#"{"title":"a"}{"title":"b"}"#),
        ("/api/v1/chats".to_owned(), r#"{"title":"a"} garbage"#),
        ("/api/v1/chats".to_owned(), r#"{"title":"a"}]"#),
        (
            format!("/api/v1/messages?chatId={id}"),
            r#"{"content":"x"} garbage"#,
        ),
        (
            format!("/api/v1/messages?chatId={id}"),
            r#"{"content":"x"}{"content":"y"}"#,
        ),
    ] {
        let r = app
            .post_raw("alice", &path, "application/json", raw)
            .send()
            .await
            .unwrap();
        let p = problem(r, StatusCode::BAD_REQUEST).await;
        assert!(
            p["detail"].as_str().unwrap().contains("trailing"),
            "{raw}: {p}"
        );
    }
    assert!(
        app.messages("alice", id).await.is_empty(),
        "nothing was sent"
    );
    // Trailing white space is not data.
    let r = app
        .post_raw(
            "alice",
            "/api/v1/chats",
            "application/json",
            "{\"title\":\"a\"} \n\t",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn validation_messages_name_fields_and_rules_never_rust_types() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let chats = "/api/v1/chats".to_owned();
    let send = format!("/api/v1/messages?chatId={id}");
    let cases = [
        (
            &chats,
            json!({"title": 5}),
            "title",
            "must be a string or null",
        ),
        (&chats, json!([]), "body", "must be an object"),
        (&chats, json!("x"), "body", "must be an object"),
        (
            &chats,
            json!({"settings": 3}),
            "settings",
            "must be null or an object",
        ),
        (
            &chats,
            json!({"settings": {"temperature": "hot"}}),
            "settings.temperature",
            "must be a number or null",
        ),
        (
            &chats,
            json!({"settings": {"maxTokens": 1.5}}),
            "settings.maxTokens",
            "must be a whole number or null",
        ),
        (
            &chats,
            json!({"settings": {"maxTokens": "10"}}),
            "settings.maxTokens",
            "must be a whole number or null",
        ),
        (
            &chats,
            json!({"settings": {"model": ["gpt"]}}),
            "settings.model",
            "must be a string or null",
        ),
        (
            &chats,
            json!({"titel": "typo"}),
            "titel",
            "is not a known field",
        ),
        (
            &chats,
            json!({"settings": {"temprature": 1}}),
            "settings.temprature",
            "is not a known field",
        ),
        (&send, json!({}), "content", "is required"),
        (&send, json!({"content": 5}), "content", "must be a string"),
        (
            &send,
            json!({"content": null}),
            "content",
            "must be a string",
        ),
        (
            &send,
            json!({"content": "x", "parentid": null}),
            "parentid",
            "is not a known field",
        ),
    ];
    for (path, body, field, message) in cases {
        let r = app.post("alice", path, body.clone()).send().await.unwrap();
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(p["type"], "/problems/validation");
        let errors = p["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["message"] == message),
            "{body}: {p}"
        );
        let text = p.to_string();
        for rust in [
            "expected",
            "invalid type",
            "struct",
            "f64",
            "u32",
            "i64",
            "Option",
            "String",
        ] {
            assert!(!text.contains(rust), "{body}: {text}");
        }
    }
    // Every shape error is listed at once.
    let r = app
        .post(
            "alice",
            &chats,
            json!({"title": 1, "settings": {"temperature": "x", "extra": 1}}),
        )
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"].as_array().unwrap().len(), 3, "{p}");
    assert!(app.messages("alice", id).await.is_empty());
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .post(app.url("/api/v1/chats"))
        .bearer_auth(TestApp::token("alice"))
        .header("content-type", "text/plain")
        .body("{\"title\":\"x\"}")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    let big = json!({"content": "x".repeat(70_000)});
    let r = app
        .post("alice", &format!("/api/v1/messages?chatId={id}"), big)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Chunked, with no Content-Length.
    let chunks = futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 4096])));
    let r = app
        .client
        .post(app.url("/api/v1/chats"))
        .bearer_auth(TestApp::token("alice"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(app.messages("alice", id).await.is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let app = TestApp::spawn().await;
    problem(
        app.get("alice", "/api/v1/nope").send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.client.get(app.url("/nope")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.delete("alice", "/api/v1/chats").send().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    problem(
        app.get("alice", "/api/v1/messages/x/cancel")
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
}

#[tokio::test]
async fn garbage_ids_are_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/chats/not-an-id",
        "/api/v1/chats/67e55044-10b1-426f-9247-bb680e5fe0c8",
        "/api/v1/messages/%00",
        "/api/v1/messages/01a2",
    ] {
        problem(
            app.get("alice", path).send().await.unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let p = problem(
        app.post(
            "alice",
            "/api/v1/messages?chatId=nope",
            json!({"content": "x"}),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "chatId");
    let p = problem(
        app.get("alice", "/api/v1/messages").send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "chatId");
}

#[tokio::test]
async fn malformed_query_strings_are_4xx() {
    let app = TestApp::spawn().await;
    let r = app
        .get("alice", "/api/v1/chats?limit=1&limit=2")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let r = app
        .get("alice", "/api/v1/chats/nope")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let p = problem(r, StatusCode::NOT_FOUND).await;
    assert_eq!(p["requestId"], "abc-123");
    let r = app
        .get("alice", "/api/v1/chats")
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(id).is_ok());
}

#[tokio::test]
async fn a_traceparent_gives_the_request_its_trace_id() {
    let app = TestApp::spawn().await;
    let r = app
        .get("alice", "/api/v1/chats")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-request-id"],
        "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
    );
}
