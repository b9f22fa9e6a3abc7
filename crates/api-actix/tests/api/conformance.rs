//! The committed OpenAPI document against a running service, driven by the document
//! alone: for every operation, requests it calls valid and requests that break each
//! constraint it states (a missing required parameter, field or body, a wrong type, out
//! of range, a bad pattern or format, too long, a bad enum value, an unknown field, no
//! token, a body that is not one JSON value, another media type). The service must agree
//! — valid: never 400, 413, 415, a 422 of type `/problems/validation`, nor a 5xx; invalid:
//! a 4xx problem — and every answer must be one the document states (status, media type,
//! body schema, required headers). Routes added later are covered once documented.
//!
//! Opaque values (a string `format` no generator knows, such as `cursor`) are valid only
//! as the schema's `examples`; ids seen in earlier answers are tried besides random ones.

mod candidates;

use crate::helpers::TestApp;
use candidates::Schemas;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

/// One request to make, and whether the document calls it valid.
#[derive(Clone, Debug)]
struct Case {
    what: String,
    /// `(in, name)` → wire value (absent: not sent).
    params: BTreeMap<(String, String), String>,
    body: Body,
    token: bool,
    valid: bool,
}

#[derive(Clone, Debug)]
enum Body {
    None,
    Json(Value),
    Raw(&'static str, String),
}

struct Op<'a> {
    method: String,
    path: String,
    op: &'a Value,
}

impl Op<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    fn params(&self) -> Vec<&Value> {
        self.op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    }

    fn secured(&self) -> bool {
        self.op["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    }

    /// Creates first, reads, updates, actions on existing things, deletes last.
    fn rank(&self) -> u8 {
        let has_path = self.params().iter().any(|p| p["in"] == "path");
        match self.method.as_str() {
            "post" if !has_path => 0,
            "get" => 1,
            "put" | "patch" => 2,
            "post" => 3,
            _ => 4,
        }
    }
}

/// A query or header value as the document reads it: a JSON number when it is an
/// integer literal or a decimal with a fraction, else the string (headers lose the
/// white space HTTP strips around field values).
fn wire_value(s: &Schemas, schema: &Value, location: &str, wire: &str) -> Value {
    let wire = if location == "header" {
        wire.trim_matches([' ', '\t'])
    } else {
        wire
    };
    let numeric = s
        .resolve(schema)
        .get("type")
        .is_some_and(|t| t == "integer" || t == "number");
    if numeric
        && regex::Regex::new(r"^-?[0-9]+(\.[0-9]*[1-9])?$")
            .unwrap()
            .is_match(wire)
    {
        if let Ok(v) = serde_json::from_str::<Value>(wire.trim_start_matches('0')) {
            return v;
        }
        return serde_json::from_str(wire).unwrap_or(Value::String(wire.to_owned()));
    }
    Value::String(wire.to_owned())
}

fn as_wire(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n)
            if n.as_f64().is_some_and(|f| f.fract() != 0.0) || n.is_i64() || n.is_u64() =>
        {
            Some(n.to_string())
        }
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Candidates for each JSON path of a body: replacing the value, dropping it, or adding
/// an unknown field beside it; each whole body is then judged against the schema.
fn body_variants(
    s: &Schemas,
    schema: &Value,
    body: &Value,
    ids: &[String],
    depth: usize,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let resolved = s.resolve(schema);
    let object_schema = ["oneOf", "anyOf"]
        .iter()
        .filter_map(|k| resolved[*k].as_array())
        .flatten()
        .map(|b| s.resolve(b))
        .find(|b| b.get("properties").is_some())
        .unwrap_or(resolved);
    let Some(obj) = body.as_object() else {
        return out;
    };
    let mut extra = obj.clone();
    extra.insert("unexpectedField".into(), json!(1));
    out.push(("an unknown field".into(), Value::Object(extra)));
    for (name, prop) in object_schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let mut without = obj.clone();
        if without.remove(name).is_some() {
            out.push((format!("without {name}"), Value::Object(without)));
        }
        for v in s.values(prop, ids) {
            let mut with = obj.clone();
            with.insert(name.clone(), v.clone());
            out.push((format!("{name} = {}", short(&v)), Value::Object(with)));
        }
        if depth < 2 {
            if let Some(inner) = s.valid(prop, true, ids).filter(Value::is_object) {
                for (what, v) in body_variants(s, prop, &inner, ids, depth + 1) {
                    let mut with = obj.clone();
                    with.insert(name.clone(), v);
                    out.push((format!("{name}: {what}"), Value::Object(with)));
                }
            }
        }
    }
    out
}

fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 40 {
        format!(
            "{}…({} chars)",
            t.chars().take(30).collect::<String>(),
            t.chars().count()
        )
    } else {
        t
    }
}

fn cases(s: &Schemas, op: &Op, ids: &BTreeMap<String, Vec<String>>) -> Vec<Case> {
    let ids_for = |name: &str| -> Vec<String> {
        ids.get(name)
            .filter(|v| !v.is_empty())
            .or_else(|| ids.get("id"))
            .cloned()
            .unwrap_or_default()
    };
    let mut base = Case {
        what: "valid".into(),
        params: BTreeMap::new(),
        body: Body::None,
        token: op.secured(),
        valid: true,
    };
    for p in op.params() {
        let name = p["name"].as_str().unwrap().to_owned();
        if p["required"] == true {
            let v = s.valid(&p["schema"], false, &ids_for(&name)).unwrap();
            base.params.insert(
                (p["in"].as_str().unwrap().to_owned(), name),
                as_wire(&v).unwrap(),
            );
        }
    }
    let body_schema = op.op["requestBody"]["content"]["application/json"]["schema"].clone();
    let body_required = op.op["requestBody"]["required"] == true;
    if !body_schema.is_null() {
        base.body = Body::Json(s.valid(&body_schema, true, &ids_for("id")).unwrap());
    }
    let mut out = vec![base.clone()];

    for p in op.params() {
        let (at, name) = (
            p["in"].as_str().unwrap().to_owned(),
            p["name"].as_str().unwrap().to_owned(),
        );
        let key = (at.clone(), name.clone());
        let mut absent = base.clone();
        absent.params.remove(&key);
        absent.what = format!("without {at} {name}");
        absent.valid = p["required"] != true;
        out.push(absent);
        let opaque = s.is_opaque(&p["schema"]);
        let examples = s.resolve(&p["schema"])["examples"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for v in s.values(&p["schema"], &ids_for(&name)) {
            let Some(wire) = as_wire(&v) else { continue };
            if at == "header" && HeaderValue::from_str(&wire).is_err() {
                continue;
            }
            let read = wire_value(s, &p["schema"], &at, &wire);
            let valid = s.is_valid(&p["schema"], &read);
            if opaque && valid && !examples.contains(&read) {
                continue;
            }
            let mut c = base.clone();
            c.params.insert(key.clone(), wire);
            c.what = format!("{at} {name} = {}", short(&v));
            c.valid = valid;
            out.push(c);
        }
    }

    if let Body::Json(body) = &base.body {
        let mut add = |what: String, body: Body, valid: bool| {
            let mut c = base.clone();
            c.what = what;
            c.body = body;
            c.valid = valid;
            out.push(c);
        };
        add("no body".into(), Body::None, !body_required);
        if let Some(min) = s.valid(&body_schema, false, &[]) {
            add(
                "the required fields only".into(),
                Body::Json(min.clone()),
                true,
            );
        }
        for v in s.values(&body_schema, &[]) {
            let valid = s.is_valid(&body_schema, &v);
            add(format!("body = {}", short(&v)), Body::Json(v), valid);
        }
        for (what, v) in body_variants(s, &body_schema, body, &ids_for("id"), 0) {
            let valid = s.is_valid(&body_schema, &v);
            add(what, Body::Json(v), valid);
        }
        let text = body.to_string();
        add(
            "two JSON values".into(),
            Body::Raw("application/json", format!("{text}{text}")),
            false,
        );
        add(
            "trailing garbage".into(),
            Body::Raw("application/json", format!("{text} garbage")),
            false,
        );
        add(
            "truncated JSON".into(),
            Body::Raw("application/json", text[..text.len() / 2].to_owned()),
            false,
        );
        add(
            "another media type".into(),
            Body::Raw("text/plain", text),
            false,
        );
    }
    if op.secured() {
        let mut c = base.clone();
        c.what = "no token".into();
        c.token = false;
        c.valid = false;
        out.push(c);
    }
    out
}

fn url(app: &TestApp, path: &str, params: &BTreeMap<(String, String), String>) -> reqwest::Url {
    let mut url = reqwest::Url::parse(&app.address).unwrap();
    {
        let mut segs = url.path_segments_mut().unwrap();
        segs.clear();
        for seg in path.trim_start_matches('/').split('/') {
            match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let v = params.get(&("path".to_owned(), name.to_owned()));
                    segs.push(v.map_or("", String::as_str));
                }
                None => {
                    segs.push(seg);
                }
            }
        }
    }
    url
}

/// Sends a case; returns (status, content type, headers, body).
async fn send(
    app: &TestApp,
    op: &Op<'_>,
    c: &Case,
) -> (u16, String, reqwest::header::HeaderMap, String) {
    let method = reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
    let mut req = app.client.request(method, url(app, &op.path, &c.params));
    let query: Vec<(&str, &str)> = c
        .params
        .iter()
        .filter(|((at, _), _)| at == "query")
        .map(|((_, n), v)| (n.as_str(), v.as_str()))
        .collect();
    req = req.query(&query);
    for ((at, n), v) in &c.params {
        if at == "header" {
            req = req.header(n.as_str(), v.as_str());
        }
    }
    if c.token {
        req = req.bearer_auth(TestApp::token("conformance"));
    }
    req = match &c.body {
        Body::None => req,
        Body::Json(v) => req
            .header(CONTENT_TYPE, "application/json")
            .body(v.to_string()),
        Body::Raw(ct, text) => req.header(CONTENT_TYPE, *ct).body(text.clone()),
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let headers = r.headers().clone();
    (status, ct, headers, r.text().await.unwrap())
}

/// What is wrong with an answer, judged against the operation's documented responses.
fn documented(
    s: &Schemas,
    op: &Op,
    status: u16,
    ct: &str,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> Option<String> {
    let Some(resp) = op.op["responses"].get(status.to_string()) else {
        return Some(format!("status {status} is not documented"));
    };
    let resp = s.resolve(resp);
    for (name, h) in resp["headers"].as_object().into_iter().flatten() {
        if s.resolve(h)["required"] == true && !headers.contains_key(name.as_str()) {
            return Some(format!("{status} lacks the required header {name}"));
        }
    }
    let Some(content) = resp["content"].as_object() else {
        return (!body.is_empty()).then(|| format!("{status} has an undocumented body"));
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    let Some((_, media)) = content
        .iter()
        .find(|(k, _)| k.split(';').next().unwrap_or("").trim() == essence)
    else {
        return Some(format!(
            "{status} answered `{ct}`, documented: {:?}",
            content.keys().collect::<Vec<_>>()
        ));
    };
    if essence == "application/x-ndjson" {
        for line in body.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                return Some(format!("{status} line is not JSON: {line}"));
            };
            if !s.is_valid(&media["x-itemSchema"], &v) {
                return Some(format!(
                    "{status} line does not match its item schema: {line}"
                ));
            }
        }
    } else if essence.ends_with("json") {
        let Ok(v) = serde_json::from_str::<Value>(body) else {
            return Some(format!("{status} body is not JSON: {body}"));
        };
        if !media["schema"].is_null() && !s.is_valid(&media["schema"], &v) {
            return Some(format!("{status} body does not match its schema: {body}"));
        }
    }
    None
}

/// Collects the ids of an answer, by field name, for later requests.
fn harvest(v: &Value, ids: &mut BTreeMap<String, Vec<String>>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                if let Some(s) = v.as_str().filter(|s| uuid::Uuid::try_parse(s).is_ok()) {
                    let list = ids.entry(k.clone()).or_default();
                    if !list.iter().any(|x| x == s) {
                        list.push(s.to_owned());
                        if list.len() > 2 {
                            list.remove(0);
                        }
                    }
                }
                harvest(v, ids);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| harvest(v, ids)),
        _ => {}
    }
}

#[tokio::test]
async fn every_operation_agrees_with_the_committed_document() {
    let app = TestApp::builder()
        .env("HTTP_BODY_LIMIT_BYTES", "1048576")
        .spawn()
        .await;
    let s = Schemas::new(serde_json::from_str(DOCUMENT).unwrap());
    let doc = s.doc().clone();
    let mut ops: Vec<Op> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push(Op {
                method: method.clone(),
                path: path.clone(),
                op,
            });
        }
    }
    ops.sort_by_key(|o| (o.rank(), o.path.clone()));
    let mut ids = BTreeMap::new();
    let mut problems = Vec::new();
    let (mut sent, mut invalid) = (0, 0);
    for op in &ops {
        for c in cases(&s, op, &ids) {
            let (status, ct, headers, body) = send(&app, op, &c).await;
            sent += 1;
            let problem_type = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let verdict = if c.valid {
                let refused = matches!(status, 400 | 401 | 413 | 415)
                    || (status == 422 && problem_type == "/problems/validation")
                    || status >= 500;
                refused.then(|| format!("valid, answered {status} {body}"))
            } else {
                invalid += 1;
                let ok = (400..500).contains(&status) && ct.starts_with("application/problem+json");
                (!ok).then(|| format!("invalid, answered {status} `{ct}`"))
            };
            if let Some(v) = verdict.or_else(|| documented(&s, op, status, &ct, &headers, &body)) {
                problems.push(format!("{} [{}]: {v}", op.name(), c.what));
            }
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                if status < 300 {
                    harvest(&v, &mut ids);
                }
            }
        }
    }
    assert!(ops.len() >= 17, "{} operations", ops.len());
    assert!(
        invalid > 100 && sent > 2 * invalid / 3,
        "sent {sent}, {invalid} invalid"
    );
    assert!(
        problems.is_empty(),
        "{} of {sent} requests disagree with the document:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The disagreements issue 10 found, one by one (the sweep above covers them too).
#[tokio::test]
async fn the_disagreements_once_found_stay_fixed() {
    let app = TestApp::spawn().await;
    let chat = app.create_chat("alice", "c").await;
    let id = chat["id"].as_str().unwrap();
    // An empty cursor is the first page.
    let r = app
        .get("alice", "/api/v1/chats?cursor=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .get("alice", &format!("/api/v1/messages?chatId={id}&cursor="))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A well-formed UUID that names no chat is 404; anything else is 422.
    let v4 = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let r = app
        .get("alice", &format!("/api/v1/messages?chatId={v4}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app.send("alice", &v4.to_string(), "hi").await;
    assert_eq!(r.status(), 404);
    let r = app
        .get("alice", "/api/v1/messages?chatId=nope")
        .send()
        .await
        .unwrap();
    let p = crate::helpers::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "chatId");
    // `limit` is an integer: no sign, no spaces, no fraction.
    for bad in ["+5", "%205", "5.0", "1e1", ""] {
        let r = app
            .get("alice", &format!("/api/v1/chats?limit={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "limit={bad}");
    }
    // No body is a chat with the defaults; `maxTokens` 10.0 is the integer 10.
    let r = app
        .post_raw("alice", "/api/v1/chats", "application/json", "")
        .send()
        .await;
    assert_eq!(r.unwrap().status(), 201);
    let no_body = app.client.post(app.url("/api/v1/chats"));
    let r = no_body
        .bearer_auth(TestApp::token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            "alice",
            "/api/v1/chats",
            json!({"settings": {"maxTokens": 10.0}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["settings"]["maxTokens"], 10);
    // PUT /messages/{id} needs `content`, as documented.
    let t: Value = app.send("alice", id, "hello").await.json().await.unwrap();
    let mid = t["message"]["id"].as_str().unwrap();
    let r = app
        .put("alice", &format!("/api/v1/messages/{mid}"), json!({}))
        .send()
        .await
        .unwrap();
    let p = crate::helpers::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "content");
    // Regenerating a user message is a valid request that cannot be carried out.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/messages/{mid}/regenerate")))
        .bearer_auth(TestApp::token("alice"))
        .send()
        .await
        .unwrap();
    let p = crate::helpers::problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["type"], "/problems/unprocessable");
    // Every response carries X-Request-Id, successes included.
    let r = app.get("alice", "/api/v1/chats").send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
}
