//! Checks a request body's JSON against its schema in the OpenAPI document: JSON types,
//! required and unknown fields, enums. The values' rules (lengths, ranges, patterns) are
//! the domain's to check; this pass gives every shape error a field path and a rule in
//! words, never a Rust type, and reports all of them at once.

use crate::error::FieldError;
use serde_json::Value;

/// The schema named `name` under `components/schemas`, if the document has it.
pub fn component<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get("components")?.get("schemas")?.get(name)
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => match r
                .strip_prefix("#/components/schemas/")
                .and_then(|n| component(doc, n))
            {
                Some(next) => s = next,
                None => return s,
            },
            None => return s,
        }
    }
    s
}

fn is_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

fn type_words(ty: &str) -> &'static str {
    match ty {
        "null" => "null",
        "boolean" => "true or false",
        "string" => "a string",
        "object" => "an object",
        "array" => "an array",
        "number" => "a number",
        "integer" => "a whole number",
        _ => "a value of another kind",
    }
}

/// The JSON types a schema admits, when it states them (directly or through its branches).
fn types(doc: &Value, schema: &Value) -> Vec<String> {
    let schema = resolve(doc, schema);
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => ["oneOf", "anyOf"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(Value::as_array))
            .flatten()
            .flat_map(|b| types(doc, b))
            .collect(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

fn must_be(path: &str, types: &[String], out: &mut Vec<FieldError>) {
    let mut words: Vec<&str> = types.iter().map(|t| type_words(t)).collect();
    words.dedup();
    out.push(FieldError::new(
        at(path),
        format!("must be {}", words.join(" or ")),
    ));
}

/// Appends to `out` every shape error of `value` (at `path`, "" for the body) against
/// `schema`, resolving `$ref`s in `doc`.
pub fn check(doc: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<FieldError>) {
    let schema = resolve(doc, schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, value, path, out);
        }
    }
    for key in ["oneOf", "anyOf"] {
        let Some(branches) = schema.get(key).and_then(Value::as_array) else {
            continue;
        };
        let mut passed = false;
        let mut fitting: Option<Vec<FieldError>> = None;
        for b in branches {
            let mut errs = Vec::new();
            check(doc, b, value, path, &mut errs);
            if errs.is_empty() {
                passed = true;
                break;
            }
            if fitting.is_none() && types(doc, b).iter().any(|t| is_type(value, t)) {
                fitting = Some(errs);
            }
        }
        if passed {
            continue;
        }
        match fitting {
            Some(errs) => out.extend(errs),
            None => must_be(path, &types(doc, schema), out),
        }
    }
    let stated = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if !stated.is_empty() && !stated.iter().any(|t| is_type(value, t)) {
        must_be(path, &stated, out);
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
            out.push(FieldError::new(
                at(path),
                format!("must be one of {}", names.join(", ")),
            ));
        }
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(name) {
                    out.push(FieldError::new(join(path, name), "is required"));
                }
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, v, &join(path, k), out),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(FieldError::new(join(path, k), "is not a known field"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            check(doc, schema, v, &format!("{}[{i}]", at(path)), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(value: Value) -> Vec<(String, String)> {
        let doc = crate::openapi::document();
        let schema = json!({"$ref": "#/components/schemas/ChatRequest"});
        let mut out = Vec::new();
        check(doc, &schema, &value, "", &mut out);
        out.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn types_are_named_in_words_with_the_field() {
        let e = errors(json!({"title": 5, "settings": {"temperature": "hot", "maxTokens": 1.5}}));
        assert!(
            e.contains(&("title".into(), "must be a string or null".into())),
            "{e:?}"
        );
        assert!(
            e.contains(&(
                "settings.temperature".into(),
                "must be a number or null".into()
            )),
            "{e:?}"
        );
        assert!(
            e.contains(&(
                "settings.maxTokens".into(),
                "must be a whole number or null".into()
            )),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_fields_and_wrong_bodies_are_named() {
        let e = errors(json!({"titel": "x", "settings": {"temprature": 1}}));
        assert!(
            e.contains(&("titel".into(), "is not a known field".into())),
            "{e:?}"
        );
        assert!(
            e.contains(&("settings.temprature".into(), "is not a known field".into())),
            "{e:?}"
        );
        let e = errors(json!([1]));
        assert_eq!(e, vec![("body".to_owned(), "must be an object".to_owned())]);
        let e = errors(json!({"settings": 3}));
        assert_eq!(
            e,
            vec![(
                "settings".to_owned(),
                "must be null or an object".to_owned()
            )]
        );
    }

    #[test]
    fn valid_shapes_pass() {
        assert!(errors(json!({})).is_empty());
        assert!(errors(json!({"title": null, "settings": null})).is_empty());
        assert!(errors(json!({"settings": {"maxTokens": 10.0, "model": null}})).is_empty());
    }
}
