//! Bearer-token authentication: every way a token can be missing or wrong is a 401.

use crate::helpers::{problem, TestApp, SECRET};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

fn token_with(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn refused(app: &TestApp, auth: Option<String>) -> serde_json::Value {
    let mut req = app.client.get(app.url("/api/v1/chats"));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let r = req.send().await.unwrap();
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap(),
        "Bearer realm=\"chat-service\", error=\"invalid_token\""
    );
    problem(r, StatusCode::UNAUTHORIZED).await
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let app = TestApp::spawn().await;
    let r = app.get("alice", "/api/v1/chats").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_token_is_401() {
    let app = TestApp::spawn().await;
    let p = refused(&app, None).await;
    assert!(p["detail"].as_str().unwrap().contains("missing"));
}

#[tokio::test]
async fn malformed_headers_are_401() {
    let app = TestApp::spawn().await;
    refused(&app, Some("Basic abc".into())).await;
    refused(&app, Some("Bearer".into())).await;
    refused(&app, Some("Bearer not.a.jwt".into())).await;
}

#[tokio::test]
async fn bad_signature_is_401() {
    let app = TestApp::spawn().await;
    let t = token_with(
        Algorithm::HS256,
        "another-secret-another-secret-another",
        json!({"sub": "alice", "exp": now() + 600}),
    );
    let p = refused(&app, Some(format!("Bearer {t}"))).await;
    assert!(p["detail"].as_str().unwrap().contains("signature"));
}

#[tokio::test]
async fn expired_token_is_401() {
    let app = TestApp::spawn().await;
    let t = token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "alice", "exp": now() - 3600}),
    );
    let p = refused(&app, Some(format!("Bearer {t}"))).await;
    assert!(p["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn token_without_exp_is_401() {
    let app = TestApp::spawn().await;
    let t = token_with(Algorithm::HS256, SECRET, json!({"sub": "alice"}));
    refused(&app, Some(format!("Bearer {t}"))).await;
}

#[tokio::test]
async fn other_algorithms_are_401() {
    let app = TestApp::spawn().await;
    let t = token_with(
        Algorithm::HS512,
        SECRET,
        json!({"sub": "alice", "exp": now() + 600}),
    );
    let p = refused(&app, Some(format!("Bearer {t}"))).await;
    assert!(p["detail"].as_str().unwrap().contains("algorithm"));
    // alg "none": an unsigned token.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(json!({"sub": "alice", "exp": now() + 600}).to_string());
    refused(&app, Some(format!("Bearer {header}.{claims}."))).await;
}

#[tokio::test]
async fn bad_subject_is_401() {
    let app = TestApp::spawn().await;
    let t = token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "  ", "exp": now() + 600}),
    );
    refused(&app, Some(format!("Bearer {t}"))).await;
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let app = TestApp::builder()
        .env("JWT_ISSUER", "https://id.example")
        .env("JWT_AUDIENCE", "chat")
        .spawn()
        .await;
    let good = token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "alice", "exp": now() + 600, "iss": "https://id.example", "aud": "chat"}),
    );
    let r = app
        .client
        .get(app.url("/api/v1/chats"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let wrong_iss = token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "alice", "exp": now() + 600, "iss": "evil", "aud": "chat"}),
    );
    refused(&app, Some(format!("Bearer {wrong_iss}"))).await;
    let no_aud = token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "alice", "exp": now() + 600, "iss": "https://id.example"}),
    );
    refused(&app, Some(format!("Bearer {no_aud}"))).await;
}

#[tokio::test]
async fn health_routes_need_no_token() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

async fn accepted(app: &TestApp, token: &str) -> bool {
    let r = app
        .client
        .get(app.url("/api/v1/chats"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    r.status() == StatusCode::OK
}

fn strict_app() -> crate::helpers::TestAppBuilder {
    TestApp::builder()
        .env("JWT_ISSUER", "https://id.example")
        .env("JWT_AUDIENCE", "chat")
}

fn claims(extra: serde_json::Value) -> serde_json::Value {
    let mut c =
        json!({"sub": "alice", "exp": now() + 600, "iss": "https://id.example", "aud": "chat"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[tokio::test]
async fn aud_as_an_array_is_accepted_when_it_holds_the_audience() {
    let app = strict_app().spawn().await;
    let t = token_with(
        Algorithm::HS256,
        SECRET,
        claims(json!({"aud": ["other", "chat"]})),
    );
    assert!(accepted(&app, &t).await);
    let t = token_with(Algorithm::HS256, SECRET, claims(json!({"aud": ["other"]})));
    let p = refused(&app, Some(format!("Bearer {t}"))).await;
    assert!(p["detail"].as_str().unwrap().contains("`aud`"), "{p}");
}

#[tokio::test]
async fn each_refusal_names_the_claim_missing_or_wrong() {
    let app = strict_app().spawn().await;
    for (extra, claim, what) in [
        (json!({"iss": null}), "`iss`", "lacks"),
        (json!({"aud": null}), "`aud`", "lacks"),
        (json!({"sub": null}), "`sub`", "lacks"),
        (json!({"exp": null}), "`exp`", "lacks"),
        (json!({"exp": "tomorrow"}), "`exp`", "must be"),
        (json!({"aud": 7}), "`aud`", "must be"),
        (
            json!({"iss": "https://evil.example"}),
            "`iss`",
            "not accepted",
        ),
    ] {
        let t = token_with(Algorithm::HS256, SECRET, claims(extra.clone()));
        let p = refused(&app, Some(format!("Bearer {t}"))).await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains(claim) && detail.contains(what),
            "{extra}: {detail}"
        );
    }
}

#[tokio::test]
async fn nbf_of_the_wrong_type_is_refused() {
    let app = TestApp::spawn().await;
    for nbf in [json!("yesterday"), json!(null), json!({"t": 1})] {
        let t = token_with(
            Algorithm::HS256,
            SECRET,
            json!({"sub": "alice", "exp": now() + 600, "nbf": nbf}),
        );
        let p = refused(&app, Some(format!("Bearer {t}"))).await;
        assert!(
            p["detail"].as_str().unwrap().contains("`nbf`"),
            "{nbf}: {p}"
        );
    }
    let later = token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "alice", "exp": now() + 600, "nbf": now() + 300}),
    );
    let p = refused(&app, Some(format!("Bearer {later}"))).await;
    assert!(
        p["detail"].as_str().unwrap().contains("not valid yet"),
        "{p}"
    );
    let earlier = token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "alice", "exp": now() + 600, "nbf": now() - 10}),
    );
    assert!(accepted(&app, &earlier).await);
}

#[tokio::test]
async fn two_authorization_headers_are_401() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/api/v1/chats"))
        .header(
            "Authorization",
            format!("Bearer {}", TestApp::token("alice")),
        )
        .header("Authorization", format!("Bearer {}", TestApp::token("bob")))
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("one Authorization header"),
        "{p}"
    );
}
