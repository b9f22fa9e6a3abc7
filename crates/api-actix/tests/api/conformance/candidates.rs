//! Candidate values for a schema of the document — boundaries from its constraints,
//! hostile text, other JSON types, harvested ids — and the judge that says which of them
//! the document calls valid (the `jsonschema` crate, draft 2020-12 with formats).

use jsonschema::{Draft, Validator};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;

/// Formats whose valid values can be generated; any other `format` is opaque text the
/// service issues (such as cursors): only the schema's `examples` are known valid.
const KNOWN_FORMATS: [&str; 5] = ["uuid", "date-time", "int32", "int64", "double"];

/// The document's schemas, and a validator per schema.
pub struct Schemas {
    doc: Value,
    validators: RefCell<HashMap<String, std::rc::Rc<Validator>>>,
}

impl Schemas {
    pub fn new(doc: Value) -> Self {
        Self {
            doc,
            validators: RefCell::default(),
        }
    }

    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// Follows `$ref`s to `components`.
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let mut target = &self.doc;
            for part in r.trim_start_matches("#/").split('/') {
                target = &target[part];
            }
            s = target;
        }
        s
    }

    /// Whether the document calls `value` valid for `schema`.
    pub fn is_valid(&self, schema: &Value, value: &Value) -> bool {
        let key = schema.to_string();
        let v = self.validators.borrow().get(&key).cloned();
        let v = v.unwrap_or_else(|| {
            let root = json!({"allOf": [schema], "components": self.doc["components"]});
            let v = std::rc::Rc::new(
                jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .should_validate_formats(true)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("bad schema {schema}: {e}")),
            );
            self.validators.borrow_mut().insert(key, v.clone());
            v
        });
        v.is_valid(value)
    }

    fn types(&self, schema: &Value) -> Vec<String> {
        match &self.resolve(schema)["type"] {
            Value::String(t) => vec![t.clone()],
            Value::Array(ts) => ts
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the schema is opaque text (a string of a format no generator knows).
    pub fn is_opaque(&self, schema: &Value) -> bool {
        let s = self.resolve(schema);
        s["format"]
            .as_str()
            .is_some_and(|f| !KNOWN_FORMATS.contains(&f))
    }

    /// A value the document calls valid, with every property of objects filled in
    /// (`full`) or only the required ones.
    pub fn valid(&self, schema: &Value, full: bool, ids: &[String]) -> Option<Value> {
        let s = self.resolve(schema);
        if let Some(ex) = s["examples"].as_array().and_then(|e| e.first()) {
            return Some(ex.clone());
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = s[key].as_array() {
                let mut nulls = None;
                for b in branches {
                    match self.valid(b, full, ids) {
                        Some(Value::Null) => nulls = Some(Value::Null),
                        Some(v) if self.is_valid(s, &v) => return Some(v),
                        _ => {}
                    }
                }
                return nulls;
            }
        }
        if self.types(s).iter().any(|t| t == "object") || s.get("properties").is_some() {
            let required: Vec<&str> = s["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut obj = serde_json::Map::new();
            for (name, p) in s["properties"].as_object().into_iter().flatten() {
                if full || required.contains(&name.as_str()) {
                    obj.insert(name.clone(), self.valid(p, full, ids)?);
                }
            }
            let v = Value::Object(obj);
            return self.is_valid(s, &v).then_some(v);
        }
        self.values(s, ids)
            .into_iter()
            .find(|v| !v.is_null() && self.is_valid(s, v))
            .or_else(|| self.is_valid(s, &Value::Null).then_some(Value::Null))
    }

    /// Candidates for a value of `schema`: valid and invalid alike (the caller judges).
    pub fn values(&self, schema: &Value, ids: &[String]) -> Vec<Value> {
        let s = self.resolve(schema);
        let mut out: Vec<Value> = s["examples"].as_array().cloned().unwrap_or_default();
        for key in ["oneOf", "anyOf", "allOf"] {
            for b in s[key].as_array().into_iter().flatten() {
                out.extend(self.values(b, ids));
            }
        }
        for t in self.types(s) {
            match t.as_str() {
                "string" => out.extend(strings(s, ids).into_iter().map(Value::from)),
                "integer" => out.extend(integers(s)),
                "number" => out.extend(numbers(s)),
                "boolean" => out.extend([json!(true), json!(false)]),
                "object" => {
                    if let Some(v) = self.valid(s, false, ids) {
                        out.push(v);
                    }
                }
                "array" => out.push(json!([])),
                _ => {}
            }
        }
        out.extend([
            json!(5),
            json!(1.5),
            json!("x"),
            json!(true),
            json!(null),
            json!({}),
            json!([]),
        ]);
        let mut seen = std::collections::HashSet::new();
        out.retain(|v| seen.insert(v.to_string()));
        out
    }
}

fn strings(s: &Value, ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = [
        "a",
        "Hello, world",
        "  padded  ",
        "",
        " ",
        "\t\n",
        "a\u{0}b",
        "a\nb",
        "\u{feff}",
        "é",
        "🙂",
        "%_\\",
    ]
    .map(str::to_owned)
    .to_vec();
    let max = s["maxLength"].as_u64().map(|m| m as usize);
    let min = s["minLength"].as_u64().unwrap_or(0) as usize;
    if min > 1 {
        out.push("a".repeat(min - 1));
        out.push("a".repeat(min));
    }
    if let Some(max) = max {
        out.push("a".repeat(max));
        out.push("a".repeat(max + 1));
        out.push("é".repeat(max));
        out.push(format!(" {} ", "a".repeat(max)));
    }
    // Lengths stated in a pattern (`{0,198}` and the like).
    if let Some(p) = s["pattern"].as_str() {
        for n in counts(p) {
            for extra in [1, 2, 3] {
                out.push("a".repeat(n + extra));
                out.push(format!("  {}  ", "a".repeat(n + extra)));
            }
        }
    }
    if s["format"] == "uuid" {
        let v7 = uuid::Uuid::now_v7();
        let v7s = v7.to_string();
        out.extend([
            v7s.clone(),
            v7s.to_uppercase(),
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string(),
            uuid::Uuid::nil().to_string(),
            "not-a-uuid".to_owned(),
            v7.simple().to_string(),
            v7.braced().to_string(),
            v7.urn().to_string(),
            format!("{v7s}0"),
        ]);
        out.extend(ids.iter().cloned());
    }
    out
}

/// The upper bounds of the `{m,n}` counts in a pattern.
fn counts(pattern: &str) -> Vec<usize> {
    let re = regex::Regex::new(r"\{(\d+),(\d+)\}").unwrap();
    re.captures_iter(pattern)
        .filter_map(|c| c[2].parse().ok())
        .collect()
}

fn integers(s: &Value) -> Vec<Value> {
    let mut out = vec![
        json!(0),
        json!(-1),
        json!(1),
        json!(10.0),
        json!(1.5),
        json!(1_000_000_000_000_i64),
    ];
    for k in ["minimum", "maximum", "default"] {
        if let Some(n) = s[k].as_i64() {
            out.extend([json!(n), json!(n - 1), json!(n + 1)]);
        }
    }
    out
}

fn numbers(s: &Value) -> Vec<Value> {
    let mut out = vec![json!(0), json!(1), json!(0.5), json!(-0.5), json!(1e300)];
    for k in ["minimum", "maximum"] {
        if let Some(n) = s[k].as_f64() {
            out.extend([json!(n), json!(n - 0.5), json!(n + 0.5), json!(n - 0.001)]);
        }
    }
    out
}
