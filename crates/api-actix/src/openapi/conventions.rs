//! What holds for every operation, applied to the generated document so no annotation
//! can forget it: the bearer scheme, unique operation ids, the statuses every route of a
//! kind can answer (401/429 with a token, 400/413/415/422 with a body, 400/422 with a
//! query, 404 with a path id, 503 under `/api/v1`), `application/problem+json` error
//! bodies, the headers every response carries (`X-Request-Id`, `Retry-After`,
//! `WWW-Authenticate`), and the exact form of event streams.

use serde_json::{json, Map, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn default_description(status: &str) -> &'static str {
    match status {
        "400" => "Malformed request: the body is not one JSON value (nothing may follow it), or the query string cannot be read",
        "401" => "Missing, malformed, expired or wrongly signed token",
        "404" => "No such resource, or not the caller's",
        "409" => "Conflicts with the resource's state",
        "413" => "The body is larger than the configured limit",
        "415" => "The body is not `application/json`",
        "422" => "Invalid request: `errors` lists every field at fault (type `/problems/validation`); or a valid request that cannot be carried out (type `/problems/unprocessable`)",
        "429" => "Rate limit reached for this user; see `Retry-After`",
        "502" => "The LLM provider failed; the message is stored",
        "503" => "Unavailable (storage unreachable); see `Retry-After`",
        "504" => "The LLM provider timed out; the message is stored",
        _ => "",
    }
}

/// The headers responses share, under `components/headers`.
fn shared_headers() -> Value {
    json!({
        "X-Request-Id": {
            "description": "The request id: the client's `X-Request-Id` if it sent a sane one (1-128 visible ASCII characters), else the trace id of its W3C `traceparent` (as a UUID), else a new UUIDv7; also `requestId` in problem bodies",
            "required": true,
            "schema": {"type": "string"}
        },
        "Retry-After": {
            "description": "Seconds to wait before trying again",
            "required": true,
            "schema": {"type": "integer", "minimum": 1}
        },
        "Retry-After-Optional": {
            "description": "Seconds to wait before trying again, when waiting can help (a reply being generated; a rate-limited provider)",
            "required": false,
            "schema": {"type": "integer", "minimum": 1}
        },
        "WWW-Authenticate": {
            "description": "`Bearer realm=\"chat-service\", error=\"invalid_token\"`",
            "required": true,
            "schema": {"type": "string"}
        }
    })
}

fn header(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

fn problem_content() -> Value {
    json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
}

/// The statuses an operation answers by construction, beyond those it lists.
fn implied(path: &str, op: &Value) -> Vec<&'static str> {
    let mut out = Vec::new();
    if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
        out.extend(["401", "429"]);
    }
    if op.get("requestBody").is_some() {
        out.extend(["400", "413", "415", "422"]);
    }
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let located = |at: &str| params.iter().any(|p| p["in"] == at);
    if located("query") {
        out.extend(["400", "422"]);
    }
    if located("header") {
        out.push("422");
    }
    // An id names a resource that may not exist (or not be the caller's).
    if located("path") || params.iter().any(|p| p["schema"]["format"] == "uuid") {
        out.push("404");
    }
    if path.starts_with("/api/v1/") {
        out.push("503");
    }
    out
}

fn adjust_response(status: &str, r: &mut Map<String, Value>) {
    let code: u16 = status.parse().unwrap_or(0);
    if r.get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        r.insert("description".into(), default_description(status).into());
    }
    if code >= 400 {
        let content = r.entry("content").or_insert_with(problem_content);
        if let Some(c) = content.as_object_mut() {
            if let Some(json) = c.remove("application/json") {
                c.insert("application/problem+json".into(), json);
            }
        }
    }
    if let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) {
        if let Some(stream) = content.get_mut("text/event-stream") {
            // The body is text; each event (`event:` and the JSON of `data:`) is the
            // schema named in the annotation, stated as OpenAPI 3.2's `itemSchema`.
            if let Some(item) = stream.get("schema").filter(|s| s.get("$ref").is_some()) {
                let item = item.clone();
                stream["x-itemSchema"] = item;
                stream["schema"] = json!({
                    "type": "string",
                    "description": "Server-Sent Events (`text/event-stream`); each event is described by `x-itemSchema`"
                });
            }
        }
    }
    if let Some(lines) = r
        .get_mut("content")
        .and_then(Value::as_object_mut)
        .and_then(|c| c.get_mut("application/x-ndjson"))
    {
        // Newline-delimited JSON (the export): each line is the schema named.
        if let Some(item) = lines.get("schema").filter(|s| s.get("$ref").is_some()) {
            let item = item.clone();
            lines["x-itemSchema"] = item;
            lines["schema"] = json!({
                "type": "string",
                "description": "Newline-delimited JSON (`application/x-ndjson`): one JSON value per line, each described by `x-itemSchema`"
            });
        }
    }
    let headers = r.entry("headers").or_insert_with(|| json!({}));
    // A header an annotation declares is one the route always sends.
    if let Some(declared) = headers.as_object_mut() {
        for h in declared.values_mut() {
            if h.get("required").is_none() {
                h["required"] = true.into();
            }
        }
    }
    headers["X-Request-Id"] = header("X-Request-Id");
    match code {
        401 => headers["WWW-Authenticate"] = header("WWW-Authenticate"),
        429 | 503 => headers["Retry-After"] = header("Retry-After"),
        409 | 502 => headers["Retry-After"] = header("Retry-After-Optional"),
        _ => {}
    }
}

/// `request_body = Option<T>` renders as a body of `T` or JSON `null`; what it means
/// here is a body that may be left out (an empty body reads as `{}`).
fn optional_body(op: &mut Value) {
    let Some(content) = op
        .pointer_mut("/requestBody/content")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for media in content.values_mut() {
        let schema = &mut media["schema"];
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            if let [null, inner] = branches.as_slice() {
                if null == &json!({"type": "null"}) {
                    *schema = inner.clone();
                }
            }
        }
    }
}

/// Ids in paths and queries are the hyphenated UUID in either case; the other forms a
/// UUID parser may read (`urn:uuid:`, braces, no hyphens) are not ids here. JSON
/// Schema's `uuid` format says so already; the pattern says it to every generator.
fn id_patterns(op: &mut Value) {
    for p in op
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let schema = &mut p["schema"];
        if schema["format"] == "uuid" {
            schema["pattern"] = crate::dto::rules::ID_PATTERN.into();
        }
    }
}

fn adjust(path: &str, op: &mut Value) {
    optional_body(op);
    id_patterns(op);
    let tag = op["tags"][0].as_str().unwrap_or_default().to_owned();
    if let Some(id) = op["operationId"].as_str() {
        op["operationId"] = format!("{tag}_{id}").into();
    }
    let implied = implied(path, op);
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for status in implied {
        responses.entry(status).or_insert_with(|| json!({}));
    }
    for (status, r) in responses.iter_mut() {
        if let Some(r) = r.as_object_mut() {
            adjust_response(status, r);
        }
    }
}

/// Applies the conventions to the rendered document.
pub fn apply(doc: &mut Value) {
    doc["components"]["securitySchemes"]["bearer"] =
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"});
    doc["components"]["headers"] = shared_headers();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for m in METHODS {
            if let Some(op) = item.get_mut(m) {
                adjust(path, op);
            }
        }
    }
}
