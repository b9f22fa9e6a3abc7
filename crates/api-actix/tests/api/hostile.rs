//! Bad input on purpose: every route gets malformed, hostile and edge-case bodies,
//! queries and ids, on PostgreSQL storage, and must answer a 4xx problem (or a success),
//! never a 5xx, a hang or a dropped connection.

use crate::helpers::TestApp;
use reqwest::Method;
use serde_json::json;

fn bodies() -> Vec<Vec<u8>> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let mut v: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"str\"".to_vec(),
        b"1e400".to_vec(),
        deep.into_bytes(),
        vec![0xff, 0xfe, 0x00, 0x80],
        br#"{"title":"\ud800"}"#.to_vec(),
        br#"{"content":"\u0000"}"#.to_vec(),
        br#"{"title":"a\u0000b"}"#.to_vec(),
        br#"{"content":"ok","extra":{"nested":[1,2,{"x":null}]}}"#.to_vec(),
        br#"{"settings":{"temperature":1e308,"maxTokens":99999999999999999999}}"#.to_vec(),
        br#"{"settings":{"model":"\u202e\u0000"}}"#.to_vec(),
        br#"{"settings":null,"title":null}"#.to_vec(),
        br#"{"content":12}"#.to_vec(),
        br#"{"title":"'; DROP TABLE chats; --"}"#.to_vec(),
    ];
    v.push(
        json!({ "title": "\u{1F600}".repeat(200) })
            .to_string()
            .into_bytes(),
    );
    v.push(
        json!({ "content": "\u{1F600}".repeat(1000) })
            .to_string()
            .into_bytes(),
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_hostile_gets_a_5xx() {
    let app = TestApp::builder().postgres().spawn().await;
    let chat = app.create_chat("alice", "target").await;
    let cid = chat["id"].as_str().unwrap().to_owned();
    let t: serde_json::Value = app.send("alice", &cid, "hello").await.json().await.unwrap();
    let mid = t["message"]["id"].as_str().unwrap().to_owned();
    let rid = t["reply"]["id"].as_str().unwrap().to_owned();
    let ids = [
        cid.clone(),
        mid.clone(),
        rid.clone(),
        "%00".into(),
        "..%2F..".into(),
        "x".repeat(2000),
        "00000000-0000-7000-8000-000000000000".into(),
    ];
    let mut paths = vec![
        "/api/v1/chats".to_owned(),
        "/api/v1/chats?limit=-1&cursor=%00".to_owned(),
        "/api/v1/chats?limit=99999999999999999999".to_owned(),
        "/api/v1/chats/search?q=%00".to_owned(),
        "/api/v1/chats/search?q=%25%5F%5C".to_owned(),
        format!("/api/v1/chats/search?q={}", "a".repeat(5000)),
        format!("/api/v1/messages?chatId={cid}&cursor=eyJzIjotMX0"),
        format!("/api/v1/messages?chatId={cid}&cursor=eyJzIjo5OTk5OTk5OTk5OX0"),
        format!("/api/v1/messages?chatId={cid}"),
    ];
    for id in &ids {
        paths.push(format!("/api/v1/chats/{id}"));
        paths.push(format!("/api/v1/messages/{id}"));
        paths.push(format!("/api/v1/messages/{id}/regenerate"));
        paths.push(format!("/api/v1/messages/{id}/cancel"));
        paths.push(format!("/api/v1/messages?chatId={id}"));
    }
    let mut checked = 0;
    for path in &paths {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            for body in bodies() {
                for ct in ["application/json", "text/plain"] {
                    let r = app
                        .client
                        .request(method.clone(), app.url(path))
                        .bearer_auth(TestApp::token("alice"))
                        .header("content-type", ct)
                        .header("idempotency-key", "bad key")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                    let status = r.status();
                    assert!(
                        !status.is_server_error(),
                        "{method} {path} {ct} {:?} -> {status}",
                        String::from_utf8_lossy(&body)
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000);
    // The sweep's own DELETE removed the chat; the service still works.
    let again = app.create_chat("alice", "after the storm").await;
    let id = again["id"].as_str().unwrap();
    assert_eq!(
        app.send("alice", id, "still fine?").await.status(),
        reqwest::StatusCode::CREATED
    );
}

/// Answers the framework makes itself (item 12 of issue 10): the connection guard's 408,
/// 431 and malformed-request 400, a refused CORS preflight, an unknown Swagger UI file —
/// each a problem document with `X-Request-Id`, on both storages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_framework_makes_are_problems_too() {
    use crate::raw::Raw;
    let origin = "https://app.example.com";
    for postgres in [false, true] {
        let mut b = TestApp::builder()
            .env("HTTP_CLIENT_REQUEST_TIMEOUT_MS", "1000")
            .env("CORS_ALLOWED_ORIGINS", origin);
        if postgres {
            b = b.postgres();
        }
        let app = b.spawn().await;
        let many_fields: String = (0..100).map(|i| format!("X-F{i}: v\r\n")).collect();
        let huge = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}",
            "a".repeat(140_000)
        );
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            (
                "a stalled head",
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-".to_vec(),
                408,
            ),
            (
                "too many header fields",
                format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_fields}\r\n").into_bytes(),
                431,
            ),
            ("a head over 128 KiB", huge.into_bytes(), 431),
            ("no Host", b"GET /healthz HTTP/1.1\r\n\r\n".to_vec(), 400),
            (
                "a bad method",
                b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                400,
            ),
            (
                "Content-Length with chunked",
                b"POST /api/v1/chats HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\
                  Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    .to_vec(),
                400,
            ),
            (
                "a bad version",
                b"GET /healthz HTTP/7.1\r\nHost: x\r\n\r\n".to_vec(),
                400,
            ),
        ];
        for (what, bytes, status) in cases {
            let mut c = Raw::connect(&app).await;
            c.send(&bytes).await;
            let (answers, closed) = c.until_closed().await;
            assert!(closed, "{what}: the connection stayed open");
            assert_eq!(answers.len(), 1, "{what}: {answers:?}");
            answers[0].problem(status);
        }

        let r = app
            .client
            .request(Method::OPTIONS, app.url("/api/v1/chats"))
            .header("origin", "https://evil.example.net")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("access-control-allow-origin").is_none());
        let p = crate::helpers::problem(r, reqwest::StatusCode::BAD_REQUEST).await;
        assert_eq!(p["type"], "/problems/bad-request");

        let r = app
            .client
            .get(app.url("/docs/no-such-file.js"))
            .send()
            .await
            .unwrap();
        crate::helpers::problem(r, reqwest::StatusCode::NOT_FOUND).await;
    }
}
