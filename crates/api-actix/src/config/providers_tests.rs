//! Tests of the providers configuration: both forms, keys from the environment, and
//! every problem reported at once.

use super::super::Settings;
use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const TWO: &str = "
llm:
  model: gpt-4o-mini
  connect_timeout_ms: 1234
  providers:
    - name: openai
      base_url: https://api.openai.com/v1
      api_key_env: OPENAI_API_KEY
      first_token_timeout_ms: 9000
      models:
        - name: gpt-4o-mini
          max_output_tokens: 16384
          fallbacks: [llama3.1:8b]
        - gpt-4o
    - name: local
      base_url: http://127.0.0.1:11434/v1
      discover: true
      models: [llama3.1:8b]
";

#[test]
fn two_providers_with_a_key_from_the_environment() {
    let s = Settings::load(Some(TWO), &env(&[("OPENAI_API_KEY", "sk-live-1")])).unwrap();
    let l = &s.llm;
    assert_eq!(l.model, "gpt-4o-mini");
    assert_eq!(l.providers.len(), 2);
    let openai = &l.providers[0];
    assert_eq!(openai.name, "openai");
    assert_eq!(
        openai.api_key.as_ref().map(Secret::expose),
        Some("sk-live-1")
    );
    assert_eq!(openai.first_token_timeout_ms, 9000);
    assert_eq!(
        openai.connect_timeout_ms, 1234,
        "the global value is the default"
    );
    assert_eq!(
        openai.models[0],
        ModelEntry {
            name: "gpt-4o-mini".into(),
            max_output_tokens: Some(16384),
            fallbacks: Some(vec!["llama3.1:8b".into()]),
        }
    );
    assert_eq!(openai.models[1].name, "gpt-4o");
    assert!(l.providers[1].discover && l.providers[1].api_key.is_none());
    assert!(!s.is_embedded());
    let dump = format!("{s:?}");
    assert!(!dump.contains("sk-live-1"), "{dump}");
}

#[test]
fn every_bad_provider_key_is_reported_at_once() {
    let yaml = "
llm:
  title_model: nowhere
  providers:
    - name: bad name
      base_url: ftp://x
      api_key_env: MISSING_KEY
      api_key: sk-in-clear
      colour: blue
      models:
        - name: a
          max_output_tokens: 0
          fallbacks: [ghost]
    - base_url: http://ok
      models: [b, 'not valid']
    - name: dup
      base_url: http://ok
      models: [a]
    - name: empty
      base_url: http://ok
";
    let err = Settings::load(Some(yaml), &env(&[("LLM_BASE_URL", "http://x")])).unwrap_err();
    let text = err.to_string();
    for needle in [
        "llm.providers.0.name",
        "llm.providers.0.base_url",
        "MISSING_KEY is not set",
        "llm.providers.0.api_key: API keys are never written",
        "llm.providers.0.colour: unknown key",
        "llm.providers.0.models.0.max_output_tokens",
        "\"ghost\" is not listed",
        "llm.providers.1.name: is required",
        "\"not valid\" is not a valid model name",
        "llm.providers.3.models: list at least one model",
        "\"a\" is listed by two providers",
        "llm.title_model",
        "LLM_BASE_URL",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(!text.contains("sk-in-clear"), "{text}");
}

#[test]
fn a_plain_list_or_a_scalar_is_not_a_provider_list() {
    let err = Settings::load(Some("llm:\n  providers: [a, b]\n"), &HashMap::new()).unwrap_err();
    assert!(
        err.to_string().contains("must be a list of providers"),
        "{err}"
    );
}

#[test]
fn the_single_provider_form_lists_llm_model_then_llm_models() {
    let s = Settings::load(
        None,
        &env(&[
            ("LLM_BASE_URL", "http://llm:8080/v1"),
            ("LLM_API_KEY", "k"),
            ("LLM_MODEL", "m1"),
            ("LLM_MODELS", "m2, m1 ,m3"),
            ("LLM_FALLBACKS", "m1=m2|m3"),
            ("LLM_MODEL_MAX_TOKENS", "m3=100"),
        ]),
    )
    .unwrap();
    let p = &s.llm.providers[0];
    assert_eq!(p.name, SINGLE_PROVIDER);
    let names: Vec<_> = p.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["m1", "m2", "m3"]);
    assert_eq!(s.llm.fallbacks["m1"], ["m2", "m3"]);
    assert_eq!(s.llm.model_max_tokens["m3"], 100);
}

#[test]
fn nothing_set_is_the_echo_model_alone() {
    let s = Settings::load(None, &HashMap::new()).unwrap();
    assert!(s.llm.providers.is_empty());
    assert_eq!(s.llm.models, ["echo"]);
    assert!(s.llm.auto_title);
    assert_eq!(s.llm.max_output_tokens, 32_768);
}

#[test]
fn registry_settings_are_checked() {
    let err = Settings::load(
        None,
        &env(&[
            ("LLM_FALLBACKS", "echo=nowhere,x"),
            ("LLM_MODEL_MAX_TOKENS", "echo=0"),
            ("LLM_AUTO_TITLE", "maybe"),
            ("LLM_MAX_OUTPUT_TOKENS", "2000000"),
            ("LLM_DISCOVERY_INTERVAL_SECS", "1"),
        ]),
    )
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "LLM_FALLBACKS",
        "\"nowhere\" is not listed",
        "LLM_MODEL_MAX_TOKENS",
        "LLM_AUTO_TITLE",
        "LLM_MAX_OUTPUT_TOKENS",
        "LLM_DISCOVERY_INTERVAL_SECS",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn a_discovering_provider_may_be_named_as_default_or_fallback() {
    let yaml = "
llm:
  model: llama3.1
  title_model: qwen
  fallbacks: llama3.1=qwen
  providers:
    - name: local
      base_url: http://127.0.0.1:11434/v1
      discover: true
";
    let s = Settings::load(Some(yaml), &HashMap::new()).unwrap();
    assert_eq!(s.llm.model, "llama3.1");
    assert_eq!(s.llm.title_model.as_deref(), Some("qwen"));
}

#[test]
fn a_providers_whole_reply_timeout_must_stay_below_the_staleness_cut_off() {
    let yaml = "
llm:
  providers:
    - name: slow
      base_url: http://x
      total_timeout_ms: 900000
      models: [m]
";
    let err = Settings::load(Some(yaml), &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("LLM_STALE_REPLY_SECS"), "{err}");
}

#[test]
fn production_accepts_providers_instead_of_a_base_url() {
    let yaml = "
env: production
llm:
  providers:
    - name: p
      base_url: http://x
      models: [m]
";
    let err = Settings::load(Some(yaml), &HashMap::new()).unwrap_err();
    assert!(!err.to_string().contains("LLM_BASE_URL"), "{err}");
}

#[test]
fn the_examples_two_providers_load() {
    let example = include_str!("../../../../config.example.yaml");
    let block: String = example
        .lines()
        .skip_while(|l| !l.contains("--- two providers ---"))
        .skip(1)
        .take_while(|l| !l.contains("--- end ---"))
        .map(|l| l.replacen("  # ", "  ", 1) + "\n")
        .collect();
    let yaml = format!("llm:\n{block}");
    let s = Settings::load(Some(&yaml), &env(&[("OPENAI_API_KEY", "sk-x")])).unwrap();
    let names: Vec<_> = s.llm.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["openai", "local"]);
    assert_eq!(s.llm.model, "gpt-4o-mini");
    assert!(s.llm.providers[1].discover);
    // The whole example (everything else commented) loads too.
    assert!(Settings::load(Some(example), &HashMap::new()).is_ok());
}
