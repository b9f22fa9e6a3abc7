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

/// The 422 of a request, and the field it names.
async fn refused_field(r: reqwest::Response, what: &str) -> String {
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 422, "{what}: {body}");
    body["errors"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Items 3, 5 and 7 of issue 10, with the same answers on both storages: NUL in any
/// text a user sets is 422 naming the field (nothing is stored); a cursor whose time or
/// position storage cannot hold is 422 on every list; an id is the hyphenated UUID in
/// either case (answered in lowercase), and its other forms name nothing: 404 in a
/// path, 422 in a query (as the document's `uuid` format and pattern say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_far_cursors_and_id_forms_answer_alike_on_both_storages() {
    use chrono::{DateTime, Utc};
    use domain::{ChatCursor, ChatId, MessageCursor, MessageId, MessageSearchCursor};
    for postgres in [false, true] {
        let mut b = TestApp::builder();
        if postgres {
            b = b.postgres();
        }
        let app = b.spawn().await;
        let chat = app.create_chat("alice", "target").await;
        let cid = chat["id"].as_str().unwrap().to_owned();
        let t: serde_json::Value = app.send("alice", &cid, "hello").await.json().await.unwrap();
        let mid = t["message"]["id"].as_str().unwrap().to_owned();
        let on = if postgres { "postgres" } else { "memory" };

        // Item 3: NUL anywhere a user sets text.
        let chat_bodies = [
            (json!({"title": "a\u{0}b"}), "title"),
            (
                json!({"settings": {"systemPrompt": "be\u{0}brief"}}),
                "settings.systemPrompt",
            ),
            (json!({"settings": {"model": "gpt\u{0}"}}), "settings.model"),
        ];
        for (body, field) in &chat_bodies {
            let r = app
                .post("alice", "/api/v1/chats", body.clone())
                .send()
                .await;
            let what = format!("{on}: POST /chats {body}");
            assert_eq!(refused_field(r.unwrap(), &what).await, *field, "{what}");
            let r = app.put("alice", &format!("/api/v1/chats/{cid}"), body.clone());
            let what = format!("{on}: PUT /chats {body}");
            assert_eq!(refused_field(r.send().await.unwrap(), &what).await, *field);
        }
        let nul = json!({"content": "hi\u{0}"});
        let r = app.post(
            "alice",
            &format!("/api/v1/messages?chatId={cid}"),
            nul.clone(),
        );
        assert_eq!(refused_field(r.send().await.unwrap(), on).await, "content");
        let r = app.put("alice", &format!("/api/v1/messages/{mid}"), nul);
        assert_eq!(refused_field(r.send().await.unwrap(), on).await, "content");
        for path in [
            "/api/v1/chats/search?q=a%00",
            "/api/v1/messages/search?q=a%00",
        ] {
            let r = app.get("alice", path).send().await.unwrap();
            assert_eq!(refused_field(r, path).await, "q", "{on}: {path}");
        }
        let back: serde_json::Value = app
            .get("alice", &format!("/api/v1/chats/{cid}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(back["title"], "target", "{on}: nothing was stored");
        assert!(back["settings"]["systemPrompt"].is_null(), "{on}: {back}");

        // Item 5: every cursor's time and position are range-checked.
        let far: Vec<DateTime<Utc>> = ["-5000-01-01T00:00:00Z", "+20000-01-01T00:00:00Z"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let mut paths = Vec::new();
        for at in &far {
            let c = ChatCursor {
                updated_at: *at,
                id: ChatId::new(),
            }
            .encode();
            paths.push(format!("/api/v1/chats?cursor={c}"));
            paths.push(format!("/api/v1/chats/search?q=target&cursor={c}"));
            let c = MessageSearchCursor {
                relevance: 1,
                created_at: *at,
                id: MessageId::new(),
            }
            .encode();
            paths.push(format!("/api/v1/messages/search?q=hello&cursor={c}"));
        }
        let c = MessageCursor { seq: u32::MAX }.encode();
        paths.push(format!("/api/v1/messages?chatId={cid}&cursor={c}"));
        for path in &paths {
            let r = app.get("alice", path).send().await.unwrap();
            assert_eq!(refused_field(r, path).await, "cursor", "{on}: {path}");
        }

        // Item 7: ids in either case, only hyphenated; answers carry lowercase.
        let upper = cid.to_uppercase();
        let r = app
            .get("alice", &format!("/api/v1/chats/{upper}"))
            .send()
            .await;
        let got: serde_json::Value = r.unwrap().json().await.unwrap();
        assert_eq!(got["id"], cid.as_str(), "{on}");
        let r = app
            .get("alice", &format!("/api/v1/messages?chatId={upper}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{on}");
        let page: serde_json::Value = r.json().await.unwrap();
        assert_eq!(page["items"][0]["chatId"], cid.as_str(), "{on}");
        let r = app
            .get("alice", &format!("/api/v1/messages/{}", mid.to_uppercase()))
            .send()
            .await
            .unwrap();
        let got: serde_json::Value = r.json().await.unwrap();
        assert_eq!(got["id"], mid.as_str(), "{on}");
        let sent = app.send("alice", &upper, "again").await;
        assert_eq!(sent.status(), 201, "{on}");
        let turn: serde_json::Value = sent.json().await.unwrap();
        assert_eq!(turn["reply"]["chatId"], cid.as_str(), "{on}");
        let u = uuid::Uuid::parse_str(&cid).unwrap();
        let m = uuid::Uuid::parse_str(&mid).unwrap();
        for (chat_form, message_form) in [
            (u.urn().to_string(), m.urn().to_string()),
            (u.braced().to_string(), m.braced().to_string()),
            (u.simple().to_string(), m.simple().to_string()),
        ] {
            for path in [
                format!("/api/v1/chats/{chat_form}"),
                format!("/api/v1/messages/{message_form}"),
            ] {
                let r = app.get("alice", &path).send().await.unwrap();
                crate::helpers::problem(r, reqwest::StatusCode::NOT_FOUND).await;
            }
            let r = app
                .put(
                    "alice",
                    &format!("/api/v1/chats/{chat_form}"),
                    json!({"title": "x"}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "{on}: PUT {chat_form}");
            let r = app
                .delete("alice", &format!("/api/v1/messages/{message_form}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "{on}: DELETE {message_form}");
            let path = format!("/api/v1/messages?chatId={}", urlencode(&chat_form));
            let r = app.get("alice", &path).send().await.unwrap();
            assert_eq!(refused_field(r, &path).await, "chatId", "{on}");
        }
        assert_eq!(app.messages("alice", &cid).await.len(), 4, "{on}");
    }
}

fn urlencode(s: &str) -> String {
    s.replace('{', "%7B")
        .replace('}', "%7D")
        .replace(':', "%3A")
}
