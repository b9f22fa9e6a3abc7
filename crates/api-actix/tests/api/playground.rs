//! The playground page at `GET /` and its embedded files (the browser test that clicks
//! through it is `clients/playground-test`, `just playground-test`).

use crate::helpers::{problem, TestApp};
use reqwest::StatusCode;

const FILES: [(&str, &str); 4] = [
    ("/playground/app.js", "text/javascript"),
    ("/playground/api.js", "text/javascript"),
    ("/playground/view.js", "text/javascript"),
    ("/playground/app.css", "text/css"),
];

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

/// The `content` of the page's `playground-token` meta tag.
fn meta_token(html: &str) -> &str {
    let start = html.find(r#"name="playground-token" content=""#).unwrap() + 33;
    let len = html[start..].find('"').unwrap();
    &html[start..start + len]
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header(&r, "content-type").starts_with("text/html"));
    assert_eq!(
        header(&r, "content-security-policy"),
        api_actix::playground::CONTENT_SECURITY_POLICY
    );
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert_eq!(header(&r, "cache-control"), "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/playground/app.js"></script>"#));
    assert_eq!(
        meta_token(&html),
        "",
        "with a configured secret, no token is handed out"
    );
    for (path, kind) in FILES {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(header(&r, "content-type").starts_with(kind), "{path}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        assert!(!r.text().await.unwrap().is_empty(), "{path}");
    }
    let r = app
        .client
        .get(app.url("/playground/secret.txt"))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
    let r = app.client.post(app.url("/")).send().await.unwrap();
    assert_eq!(header(&r, "allow"), "GET, HEAD");
    problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn on_a_generated_secret_the_page_carries_a_working_dev_token() {
    let app = TestApp::builder().env("JWT_SECRET", "").spawn().await;
    let html = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = meta_token(&html);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let r = app
        .client
        .get(app.url("/api/v1/chats"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn switched_off_the_page_and_its_files_are_not_found() {
    let app = TestApp::builder()
        .env("HTTP_PLAYGROUND", "false")
        .spawn()
        .await;
    for path in ["/", "/playground/app.js"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        problem(r, StatusCode::NOT_FOUND).await;
    }
}
