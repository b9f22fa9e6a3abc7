//! The LLM providers and the model registry's settings: `llm.providers` (YAML only:
//! each provider's name, base URL, key from the environment, timeouts, fixed models
//! and/or discovery), or the single provider of `LLM_BASE_URL`/`LLM_MODEL`/`LLM_MODELS`;
//! ceilings, fallbacks, the default and title models. Every problem is reported.

use super::{LlmSettings, Reader, Secret};
use std::collections::{BTreeSet, HashMap};

/// One model of a provider's fixed list, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// Its name.
    pub name: String,
    /// Its output-token ceiling, if set here.
    pub max_output_tokens: Option<u32>,
    /// Its fallbacks, if set here.
    pub fallbacks: Option<Vec<String>>,
}

/// One provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Its name, shown in the model list and in events.
    pub name: String,
    /// OpenAI-compatible base URL.
    pub base_url: String,
    /// Bearer key (read from the variable `api_key_env` names).
    pub api_key: Option<Secret>,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest wait for the first token, in milliseconds.
    pub first_token_timeout_ms: u64,
    /// Longest silence between two chunks, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Longest whole reply, in milliseconds.
    pub total_timeout_ms: u64,
    /// Retries before the first token.
    pub max_retries: u32,
    /// Models always listed.
    pub models: Vec<ModelEntry>,
    /// Whether `GET {base_url}/models` adds to them.
    pub discover: bool,
}

/// The name of the provider configured by `LLM_BASE_URL` alone.
pub const SINGLE_PROVIDER: &str = "default";

const PROVIDER_FIELDS: &[&str] = &[
    "name",
    "base_url",
    "api_key_env",
    "discover",
    "models",
    "connect_timeout_ms",
    "first_token_timeout_ms",
    "idle_timeout_ms",
    "total_timeout_ms",
    "max_retries",
];
const MODEL_FIELDS: &[&str] = &["name", "max_output_tokens", "fallbacks"];

fn is_index(s: &str) -> bool {
    !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `key` is a key of a `llm.providers` item (checked field by field later).
pub(crate) fn is_provider_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("llm.providers.") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('.').collect();
    match parts.as_slice() {
        [i, f] => is_index(i) && PROVIDER_FIELDS.contains(f),
        [i, "models", j] => is_index(i) && is_index(j),
        [i, "models", j, f] => is_index(i) && is_index(j) && MODEL_FIELDS.contains(f),
        _ => false,
    }
}

/// Why a key of `llm.providers` is unknown, when a better word than "unknown key" exists.
pub(crate) fn unknown_provider_key(key: &str) -> Option<&'static str> {
    let rest = key.strip_prefix("llm.providers")?;
    if rest.is_empty() {
        return Some("must be a list of providers, each a mapping with name and base_url");
    }
    if rest.ends_with(".api_key") {
        return Some(
            "API keys are never written in the file: set api_key_env to the name of the environment variable that holds it",
        );
    }
    None
}

fn names(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn check_model(r: &mut Reader, key: &str, name: &str) -> bool {
    if domain::ModelName::parse(name).is_err() {
        r.problem(key, format!("{name:?} is not a valid model name"));
        return false;
    }
    true
}

fn ceiling(r: &mut Reader, key: &str) -> Option<u32> {
    r.raw(key)?;
    Some(r.ranged(key, 1, 1, domain::MaxTokens::MAX))
}

/// A provider's fixed models: `models: [a, b]` or a list of `{name, max_output_tokens, fallbacks}`.
fn models(r: &mut Reader, p: &str) -> Vec<ModelEntry> {
    let key = format!("{p}.models");
    if let Some(raw) = r.raw(&key) {
        return names(&raw)
            .into_iter()
            .filter(|n| check_model(r, &key, n))
            .map(|name| ModelEntry {
                name,
                max_output_tokens: None,
                fallbacks: None,
            })
            .collect();
    }
    let mut out = Vec::new();
    for j in 0..count(r, &format!("{key}.")) {
        let item = format!("{key}.{j}");
        let name_key = format!("{item}.name");
        let name = match (r.raw(&item), r.raw(&name_key)) {
            (Some(n), _) => n,
            (None, Some(n)) => n,
            (None, None) => {
                r.problem(&name_key, "is required");
                continue;
            }
        };
        if !check_model(r, &name_key, &name) {
            continue;
        }
        let fb_key = format!("{item}.fallbacks");
        let fallbacks = r.raw(&fb_key).map(|raw| {
            names(&raw)
                .into_iter()
                .filter(|f| check_model(r, &fb_key, f))
                .collect()
        });
        out.push(ModelEntry {
            name,
            max_output_tokens: ceiling(r, &format!("{item}.max_output_tokens")),
            fallbacks,
        });
    }
    out
}

/// How many items a list flattened under `prefix` (`a.b.`) has: one past the highest index.
fn count(r: &Reader, prefix: &str) -> usize {
    r.values
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| rest.split('.').next())
        .filter(|i| is_index(i))
        .filter_map(|i| i.parse::<usize>().ok())
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

fn provider(
    r: &mut Reader,
    env: &HashMap<String, String>,
    l: &LlmSettings,
    i: usize,
) -> Option<ProviderSettings> {
    let p = format!("llm.providers.{i}");
    let name_key = format!("{p}.name");
    let name = r.raw(&name_key);
    match &name {
        None => r.problem(&name_key, "is required"),
        Some(n) if domain::ProviderName::parse(n).is_err() => r.problem(
            &name_key,
            format!("{n:?} is not 1-64 letters, digits, '.', '_' or '-'"),
        ),
        Some(_) => {}
    }
    let url_key = format!("{p}.base_url");
    let base_url = r.raw(&url_key);
    match &base_url {
        None => r.problem(&url_key, "is required"),
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            r.problem(&url_key, "must start with http:// or https://");
        }
        Some(_) => {}
    }
    let key_env = format!("{p}.api_key_env");
    let api_key = match r.raw(&key_env) {
        None => None,
        Some(var) => match env.get(&var).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(v) => Some(Secret::new(v)),
            None => {
                r.problem(
                    &key_env,
                    format!("the environment variable {var} is not set"),
                );
                None
            }
        },
    };
    let discover: bool = r.parsed(&format!("{p}.discover"), false, "true or false");
    let models = models(r, &p);
    if models.is_empty() && !discover {
        r.problem(
            &format!("{p}.models"),
            "list at least one model, or set discover: true",
        );
    }
    let settings = ProviderSettings {
        connect_timeout_ms: r.ranged(
            &format!("{p}.connect_timeout_ms"),
            l.connect_timeout_ms,
            1,
            600_000,
        ),
        first_token_timeout_ms: r.ranged(
            &format!("{p}.first_token_timeout_ms"),
            l.first_token_timeout_ms,
            1,
            3_600_000,
        ),
        idle_timeout_ms: r.ranged(
            &format!("{p}.idle_timeout_ms"),
            l.idle_timeout_ms,
            1,
            3_600_000,
        ),
        total_timeout_ms: r.ranged(
            &format!("{p}.total_timeout_ms"),
            l.total_timeout_ms,
            1,
            86_400_000,
        ),
        max_retries: r.ranged(&format!("{p}.max_retries"), l.max_retries, 0, 10),
        name: name?,
        base_url: base_url?,
        api_key,
        models,
        discover,
    };
    Some(settings)
}

/// `model=tokens,…`.
fn ceilings(r: &mut Reader) -> HashMap<String, u32> {
    let key = "llm.model_max_tokens";
    let mut out = HashMap::new();
    for part in r.raw(key).map(|v| names(&v)).unwrap_or_default() {
        match part
            .split_once('=')
            .map(|(m, n)| (m.trim(), n.trim().parse::<u32>()))
        {
            Some((m, Ok(n))) if (1..=domain::MaxTokens::MAX).contains(&n) => {
                if check_model(r, key, m) {
                    out.insert(m.to_owned(), n);
                }
            }
            _ => r.problem(key, format!("{part:?} is not model=tokens (1 to 1000000)")),
        }
    }
    out
}

/// `model=fallback|fallback,…`.
fn fallback_map(r: &mut Reader) -> HashMap<String, Vec<String>> {
    let key = "llm.fallbacks";
    let mut out = HashMap::new();
    for part in r.raw(key).map(|v| names(&v)).unwrap_or_default() {
        let Some((m, list)) = part.split_once('=') else {
            r.problem(key, format!("{part:?} is not model=fallback|fallback"));
            continue;
        };
        let (m, list): (&str, Vec<String>) = (
            m.trim(),
            list.split('|')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        );
        if check_model(r, key, m) && list.iter().all(|f| check_model(r, key, f)) {
            out.insert(m.to_owned(), list);
        }
    }
    out
}

/// Reads the providers and the registry settings into `l`, checking that every model
/// named (default, title model, fallbacks) can be listed.
pub(super) fn build(r: &mut Reader, env: &HashMap<String, String>, l: &mut LlmSettings) {
    l.max_output_tokens = r.ranged(
        "llm.max_output_tokens",
        domain::ModelInfo::DEFAULT_MAX_OUTPUT_TOKENS,
        1,
        domain::MaxTokens::MAX,
    );
    l.model_max_tokens = ceilings(r);
    l.fallbacks = fallback_map(r);
    l.discovery_interval_secs = r.ranged("llm.discovery_interval_secs", 300, 5, 86_400);
    l.auto_title = r.parsed("llm.auto_title", true, "true or false");
    l.title_model = r.raw("llm.title_model");
    if let Some(t) = l.title_model.clone() {
        check_model(r, "llm.title_model", &t);
    }
    let extra = r.raw("llm.models").map(|v| names(&v)).unwrap_or_default();
    for m in &extra {
        check_model(r, "llm.models", m);
    }
    l.models = vec![l.model.clone()];
    l.models
        .extend(extra.iter().filter(|m| **m != l.model).cloned());
    let n = count(r, "llm.providers.");
    if n > 0 {
        for key in ["llm.base_url", "llm.api_key", "llm.models"] {
            if r.raw(key).is_some() {
                r.problem(
                    key,
                    "configures the single provider; with llm.providers, set it per provider",
                );
            }
        }
        l.providers = (0..n).filter_map(|i| provider(r, env, l, i)).collect();
        let mut seen = BTreeSet::new();
        for (i, p) in l.providers.iter().enumerate() {
            if !seen.insert(p.name.clone()) {
                r.problem(
                    &format!("llm.providers.{i}.name"),
                    format!("{:?} names two providers", p.name),
                );
            }
        }
        if r.raw("llm.model").is_none() {
            l.model = l
                .providers
                .iter()
                .find_map(|p| p.models.first())
                .map(|m| m.name.clone())
                .unwrap_or_default();
        }
    } else if let Some(url) = l.base_url.clone() {
        let models = l.models.clone();
        l.providers = vec![ProviderSettings {
            name: SINGLE_PROVIDER.into(),
            base_url: url,
            api_key: l.api_key.clone(),
            connect_timeout_ms: l.connect_timeout_ms,
            first_token_timeout_ms: l.first_token_timeout_ms,
            idle_timeout_ms: l.idle_timeout_ms,
            total_timeout_ms: l.total_timeout_ms,
            max_retries: l.max_retries,
            models: models
                .into_iter()
                .map(|name| ModelEntry {
                    name,
                    max_output_tokens: None,
                    fallbacks: None,
                })
                .collect(),
            discover: false,
        }];
    }
    check_names(r, l);
}

/// Every model named must be listed: in a fixed list, or possibly by a provider that
/// discovers. A fixed model listed twice is refused.
fn check_names(r: &mut Reader, l: &LlmSettings) {
    let discovering = l.providers.iter().any(|p| p.discover);
    let mut fixed: Vec<&str> = Vec::new();
    for (i, p) in l.providers.iter().enumerate() {
        for m in &p.models {
            if fixed.contains(&m.name.as_str()) {
                r.problem(
                    &format!("llm.providers.{i}.models"),
                    format!("{:?} is listed by two providers", m.name),
                );
            }
            fixed.push(&m.name);
        }
    }
    if l.providers.is_empty() {
        fixed.extend(l.models.iter().map(String::as_str));
    }
    let listable = |m: &str| fixed.contains(&m) || discovering;
    let why = "is not listed by any provider";
    if !l.model.is_empty() && !listable(&l.model) {
        r.problem("llm.model", format!("{:?} {why}", l.model));
    }
    if let Some(t) = &l.title_model {
        if !listable(t) {
            r.problem("llm.title_model", format!("{t:?} {why}"));
        }
    }
    for (m, list) in &l.fallbacks {
        for f in list.iter().filter(|f| !listable(f)) {
            r.problem("llm.fallbacks", format!("{m}: the fallback {f:?} {why}"));
        }
    }
    for (i, p) in l.providers.iter().enumerate() {
        for (j, m) in p.models.iter().enumerate() {
            for f in m.fallbacks.iter().flatten().filter(|f| !listable(f)) {
                r.problem(
                    &format!("llm.providers.{i}.models.{j}.fallbacks"),
                    format!("the fallback {f:?} {why}"),
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "providers_tests.rs"]
mod tests;
