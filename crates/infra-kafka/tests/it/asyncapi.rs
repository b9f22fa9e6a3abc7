//! docs/asyncapi.yaml parses, documents every event type with its headers, and
//! its payload schemas accept the events the service really emits.

use crate::support::events;
use domain::model::{ChatId, EVENT_TYPES};
use serde_json::Value;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/asyncapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn message<'a>(doc: &'a Value, event_type: &str) -> &'a Value {
    doc["components"]["messages"]
        .as_object()
        .unwrap()
        .values()
        .find(|m| m["name"] == event_type)
        .unwrap_or_else(|| panic!("{event_type} has no message"))
}

#[test]
fn the_document_is_asyncapi_3_for_the_events_topic() {
    let doc = document();
    assert!(doc["asyncapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["channels"]["chatEvents"]["address"], "chat-events");
    assert_eq!(doc["operations"]["publishChatEvents"]["action"], "send");
    let listed = doc["channels"]["chatEvents"]["messages"]
        .as_object()
        .unwrap();
    assert_eq!(listed.len(), EVENT_TYPES.len());
    for reference in listed.values() {
        resolve(&doc, reference["$ref"].as_str().unwrap());
    }
}

#[test]
fn every_event_type_is_documented_with_headers_and_payload() {
    let doc = document();
    for t in EVENT_TYPES {
        let m = message(&doc, t);
        assert_eq!(m["contentType"], "application/cloudevents+json");
        assert!(m["headers"].is_object(), "{t} has no headers");
        assert!(m["payload"].is_object(), "{t} has no payload schema");
        // The payload pins its own type.
        assert!(m["payload"]
            .to_string()
            .contains(&format!("\"const\":\"{t}\"")));
    }
    let headers = &doc["components"]["schemas"]["RecordHeaders"]["properties"];
    for h in [
        "ce_type",
        "ce_id",
        "ce_specversion",
        "content-type",
        "x-request-id",
    ] {
        assert!(headers[h].is_object(), "header {h} undocumented");
    }
}

#[test]
fn real_events_match_their_documented_schema() {
    let doc = document();
    for event in events::one_of_each(ChatId::new()) {
        let t = event.kind.type_name();
        let ce = event.to_cloudevent("/chat-service");
        let errors = validate(&doc, &message(&doc, t)["payload"], &ce, "$");
        assert!(errors.is_empty(), "{t}: {errors:#?}\n{ce:#}");
        for other in EVENT_TYPES.iter().filter(|o| **o != t) {
            let errors = validate(&doc, &message(&doc, other)["payload"], &ce, "$");
            assert!(!errors.is_empty(), "a {t} event passes as {other}");
        }
    }
}

#[test]
fn the_schema_check_itself_catches_drift() {
    let doc = document();
    let event = &events::one_of_each(ChatId::new())[0];
    let mut ce = event.to_cloudevent("/chat-service");
    ce["data"]["messageCount"] = "many".into();
    ce["unexpected"] = true.into();
    let errors = validate(&doc, &message(&doc, "chat.created")["payload"], &ce, "$");
    assert!(
        errors.iter().any(|e| e.contains("$.data.messageCount")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("unexpected")),
        "{errors:?}"
    );
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').unwrap();
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("dangling $ref {reference}"))
}

/// A JSON Schema check for the keywords the document uses: `$ref`, `allOf`,
/// `type`, `const`, `enum`, `required`, `properties`, `additionalProperties: false`,
/// `minimum`, `maximum`, `maxLength`. Returns what does not match.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(r) = schema["$ref"].as_str() {
        errors.extend(validate(doc, resolve(doc, r), v, at));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        errors.extend(validate(doc, part, v, at));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| has_type(v, t)) {
        errors.push(format!("{at}: {v} is not of type {types:?}"));
        return errors;
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errors.push(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(v) {
            errors.push(format!("{at}: {v} is not one of {options:?}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|min| n < min) {
            errors.push(format!("{at}: {n} is below the minimum"));
        }
        if schema["maximum"].as_f64().is_some_and(|max| n > max) {
            errors.push(format!("{at}: {n} is above the maximum"));
        }
    }
    if let (Some(s), Some(max)) = (v.as_str(), schema["maxLength"].as_u64()) {
        if s.chars().count() as u64 > max {
            errors.push(format!("{at}: longer than {max}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema["properties"].as_object();
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap();
            if !obj.contains_key(key) {
                errors.push(format!("{at}: {key} is missing"));
            }
        }
        for (key, value) in obj {
            match props.and_then(|p| p.get(key)) {
                Some(s) => errors.extend(validate(doc, s, value, &format!("{at}.{key}"))),
                None if schema["additionalProperties"] == false => {
                    errors.push(format!("{at}: {key} is not allowed"))
                }
                None => {}
            }
        }
    }
    errors
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}
