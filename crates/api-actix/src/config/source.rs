//! Where settings come from: a YAML file flattened to dotted keys, overlaid by
//! environment variables mapped onto the same keys.

use std::collections::BTreeMap;

/// Flattens a YAML document into `a.b.c -> text` pairs. Lists of plain values are
/// joined with commas; the items of a list holding mappings become `a.b.0.c`, `a.b.1`…
pub fn flatten_yaml(text: &str) -> Result<BTreeMap<String, String>, String> {
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let mut out = BTreeMap::new();
    match value {
        serde_yaml::Value::Null => {}
        serde_yaml::Value::Mapping(_) => walk("", &value, &mut out)?,
        _ => return Err("the top level must be a mapping of keys".into()),
    }
    Ok(out)
}

fn walk(
    prefix: &str,
    v: &serde_yaml::Value,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    use serde_yaml::Value;
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let k = match k {
                    Value::String(s) => s.clone(),
                    other => return Err(format!("{prefix}: key {other:?} is not a string")),
                };
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&key, v, out)?;
            }
        }
        Value::Null => {}
        Value::Bool(b) => {
            out.insert(prefix.into(), b.to_string());
        }
        Value::Number(n) => {
            out.insert(prefix.into(), n.to_string());
        }
        Value::String(s) => {
            out.insert(prefix.into(), s.clone());
        }
        Value::Sequence(items) if items.iter().any(|i| !is_plain(i)) => {
            // A list of mappings (such as `llm.providers`): one key per item, by position.
            for (n, item) in items.iter().enumerate() {
                walk(&format!("{prefix}.{n}"), item, out)?;
            }
        }
        Value::Sequence(items) => {
            let mut parts = Vec::new();
            for i in items {
                match i {
                    Value::String(s) => parts.push(s.clone()),
                    Value::Number(n) => parts.push(n.to_string()),
                    Value::Bool(b) => parts.push(b.to_string()),
                    _ => return Err(format!("{prefix}: list items must be plain values")),
                }
            }
            out.insert(prefix.into(), parts.join(","));
        }
        Value::Tagged(t) => walk(prefix, &t.value, out)?,
    }
    Ok(())
}

fn is_plain(v: &serde_yaml::Value) -> bool {
    use serde_yaml::Value;
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_mappings_are_keyed_by_position() {
        let m = flatten_yaml(
            "llm:\n  providers:\n    - name: a\n      models: [x, {name: y, fallbacks: [x]}]\n    - name: b\n",
        )
        .unwrap();
        assert_eq!(m["llm.providers.0.name"], "a");
        assert_eq!(m["llm.providers.0.models.0"], "x");
        assert_eq!(m["llm.providers.0.models.1.name"], "y");
        assert_eq!(m["llm.providers.0.models.1.fallbacks"], "x");
        assert_eq!(m["llm.providers.1.name"], "b");
    }

    #[test]
    fn nested_keys_are_dotted() {
        let m = flatten_yaml("http:\n  addr: 0.0.0.0:1\ncors:\n  allowed_origins: [a, b]\nx: 3\n")
            .unwrap();
        assert_eq!(m["http.addr"], "0.0.0.0:1");
        assert_eq!(m["cors.allowed_origins"], "a,b");
        assert_eq!(m["x"], "3");
    }

    #[test]
    fn scalars_at_top_are_refused() {
        assert!(flatten_yaml("42").is_err());
        assert!(flatten_yaml("a: [").is_err());
        assert!(flatten_yaml("").unwrap().is_empty());
    }
}
