//! The OpenAPI document against the router (both ways), and the offline Swagger UI.

use crate::helpers::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

async fn document(app: &TestApp) -> Value {
    let r = app
        .client
        .get(app.url("/api-docs/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    r.json().await.unwrap()
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m.to_ascii_lowercase()).is_some() {
                out.insert((m.to_owned(), path.clone()));
            }
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{id}", &uuid::Uuid::now_v7().to_string())
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    // The router is built from ENDPOINTS: the document must list exactly those.
    let served: BTreeSet<(String, String)> = api_actix::routes::ENDPOINTS
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_owned()))
        .collect();
    let docs = documented(&doc);
    let missing: Vec<_> = served.difference(&docs).collect();
    let extra: Vec<_> = docs.difference(&served).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");

    // Every documented route answers its method (without a token: 401, never 404/405),
    // and every other method on its path is 405: nothing undocumented is served there.
    for (method, path) in &docs {
        let url = app.url(&concrete(path));
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = app.client.request(m, &url).send().await.unwrap();
        assert!(
            r.status() != StatusCode::NOT_FOUND && r.status() != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} answered {}",
            r.status()
        );
        if path.starts_with("/api/v1") {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        } else {
            assert_eq!(r.status(), StatusCode::OK, "{method} {path}");
        }
    }
    let paths: BTreeSet<&String> = docs.iter().map(|(_, p)| p).collect();
    for path in paths {
        for m in METHODS {
            if docs.contains(&(m.to_owned(), path.clone())) {
                continue;
            }
            let r = app
                .client
                .request(
                    Method::from_bytes(m.as_bytes()).unwrap(),
                    app.url(&concrete(path)),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
        }
    }
}

/// The methods the document lists for `path`, plus HEAD wherever GET is.
fn allowed(docs: &BTreeSet<(String, String)>, path: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = docs
        .iter()
        .filter(|(_, p)| p == path)
        .map(|(m, _)| m.clone())
        .collect();
    if out.contains("GET") {
        out.insert("HEAD".to_owned());
    }
    out
}

#[tokio::test]
async fn a_405_says_in_allow_which_methods_the_route_answers() {
    let app = TestApp::spawn().await;
    let docs = documented(&document(&app).await);
    let paths: BTreeSet<&String> = docs.iter().map(|(_, p)| p).collect();
    for path in paths {
        let want = allowed(&docs, path);
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] {
            if want.contains(m) {
                continue;
            }
            let r = app
                .client
                .request(
                    Method::from_bytes(m.as_bytes()).unwrap(),
                    app.url(&concrete(path)),
                )
                .send()
                .await
                .unwrap();
            let allow: BTreeSet<String> = r
                .headers()
                .get("allow")
                .unwrap_or_else(|| panic!("{m} {path}: no Allow"))
                .to_str()
                .unwrap()
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect();
            assert_eq!(allow, want, "{m} {path}");
            if m != "HEAD" {
                let p = crate::helpers::problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
                assert_eq!(p["type"], "/problems/method-not-allowed");
            } else {
                assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
            }
        }
    }
}

#[tokio::test]
async fn head_on_a_get_route_answers_like_the_get_without_the_body() {
    let app = TestApp::spawn().await;
    app.create_chat("alice", "c").await;
    for (path, user) in [
        ("/healthz", None),
        ("/readyz", None),
        (api_actix::openapi::SPEC_PATH, None),
        ("/api/v1/chats", Some("alice")),
        ("/api/v1/chats", None),
    ] {
        let req = |m: Method| {
            let b = app.client.request(m, app.url(path));
            match user {
                Some(u) => b.bearer_auth(TestApp::token(u)),
                None => b,
            }
        };
        let get = req(Method::GET).send().await.unwrap();
        let head = req(Method::HEAD).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        for h in ["content-type", "content-length", "www-authenticate"] {
            assert_eq!(head.headers().get(h), get.headers().get(h), "{path} {h}");
        }
        assert!(head.headers().contains_key("x-request-id"), "{path}");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "{path}: HEAD has no body"
        );
        assert!(!get.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn the_document_describes_auth_errors_and_schemas() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");
    for schema in [
        "ChatDto",
        "MessageDto",
        "TurnDto",
        "Problem",
        "FieldError",
        "Readiness",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, path.starts_with("/api/v1"), "{method} {path}");
            for (status, resp) in op["responses"].as_object().unwrap() {
                if status.as_str() >= "400" && resp.get("content").is_some() {
                    assert!(
                        resp["content"]["application/problem+json"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
            if secured {
                assert!(op["responses"]["401"].is_object(), "{method} {path}");
                assert!(op["responses"]["429"].is_object(), "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let r = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page must not load anything remote"
    );

    // `/docs` redirects to `/docs/` (reqwest follows it).
    let r = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.url().path(), "/docs/");

    let init = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api-docs/openapi.json"), "{init}");
    let css = app
        .client
        .get(app.url("/docs/swagger-ui.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
}

#[test]
fn the_openapi_subcommand_prints_the_document() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-service"))
        .arg("openapi")
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(&api_actix::openapi::json()).unwrap()
    );
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/openapi.json"))
            .expect("docs/openapi.json is JSON");
    let generated: serde_json::Value = serde_json::from_str(&api_actix::openapi::json()).unwrap();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run `cargo run -p api-actix -- openapi > docs/openapi.json`"
    );
}
