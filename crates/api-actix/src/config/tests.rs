//! Tests of configuration loading: precedence, defaults and error reporting.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn nothing_set_gives_the_embedded_defaults() {
    let s = Settings::load(None, &HashMap::new()).unwrap();
    assert!(s.is_embedded());
    assert_eq!(s.http.addr, "127.0.0.1:8080");
    assert_eq!(s.llm.model, "echo");
    assert!(s.kafka.is_none());
    assert_eq!(s.env, Environment::Development);
}

#[test]
fn environment_overrides_the_file() {
    let yaml = "http:\n  addr: 0.0.0.0:9000\nllm:\n  model: from-file\n";
    let s = Settings::load(Some(yaml), &env(&[("LLM_MODEL", "from-env")])).unwrap();
    assert_eq!(s.http.addr, "0.0.0.0:9000");
    assert_eq!(s.llm.model, "from-env");
}

#[test]
fn db_parts_build_a_url_with_escaping() {
    let s = Settings::load(
        None,
        &env(&[
            ("DB_HOST", "db"),
            ("DB_PORT", "6543"),
            ("DB_USER", "app"),
            ("DB_PASSWORD", "p@ss/w"),
            ("DB_NAME", "chats"),
        ]),
    )
    .unwrap();
    let db = s.database.unwrap();
    assert_eq!(db.url.expose(), "postgres://app:p%40ss%2Fw@db:6543/chats");
    assert!(!format!("{db:?}").contains("p%40ss"));
}

#[test]
fn database_url_wins_over_parts() {
    let s = Settings::load(
        None,
        &env(&[("DATABASE_URL", "postgres://x@h/d"), ("DB_HOST", "ignored")]),
    )
    .unwrap();
    assert_eq!(s.database.unwrap().url.expose(), "postgres://x@h/d");
}

#[test]
fn every_bad_key_is_reported_at_once() {
    let yaml = "http:\n  adr: oops\n";
    let err = Settings::load(
        Some(yaml),
        &env(&[
            ("DB_HOST", "h"),
            ("DB_PORT", "nope"),
            ("HTTP_ADDR", "not an addr"),
            ("LOG_FORMAT", "xml"),
            ("JWT_SECRET", "short"),
        ]),
    )
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "http.adr",
        "DB_PORT",
        "HTTP_ADDR",
        "LOG_FORMAT",
        "JWT_SECRET",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert_eq!(err.problems.len(), 5, "{text}");
    assert!(!text.contains("short"), "secret leaked: {text}");
}

#[test]
fn production_refuses_embedded_defaults() {
    let err = Settings::load(None, &env(&[("APP_ENV", "production")])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("JWT_SECRET"), "{text}");
    assert!(text.contains("DATABASE_URL"), "{text}");
    assert!(text.contains("LLM_BASE_URL"), "{text}");
}

#[test]
fn public_key_algorithms_need_a_key() {
    let err = Settings::load(None, &env(&[("JWT_ALGORITHM", "RS256")])).unwrap_err();
    assert!(err.to_string().contains("JWT_PUBLIC_KEY"));
}

#[test]
fn model_budgets_parse() {
    let s = Settings::load(None, &env(&[("LLM_MODEL_BUDGETS", "a=100, b=2000")])).unwrap();
    assert_eq!(s.llm.model_budgets.get("b"), Some(&2000));
    assert!(Settings::load(None, &env(&[("LLM_MODEL_BUDGETS", "a=x")])).is_err());
}

#[test]
fn secrets_never_print() {
    let s = Settings::load(
        None,
        &env(&[
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("LLM_API_KEY", "sk-live"),
        ]),
    )
    .unwrap();
    let dump = format!("{s:?}");
    assert!(!dump.contains("0123456789abcdef"));
    assert!(!dump.contains("sk-live"));
}

#[test]
fn readme_and_example_document_every_key() {
    let readme = include_str!("../../../../README.md");
    let example = include_str!("../../../../config.example.yaml");
    for key in KEYS {
        assert!(
            readme.contains(&format!("`{}`", key.yaml)),
            "README lacks {}",
            key.yaml
        );
        for var in key.env {
            assert!(readme.contains(&format!("`{var}`")), "README lacks {var}");
            assert!(example.contains(var), "config.example.yaml lacks {var}");
        }
    }
}

#[test]
fn kafka_settings_are_checked() {
    let err = Settings::load(
        None,
        &env(&[
            ("KAFKA_BROKERS", "b:9092"),
            ("KAFKA_COMPRESSION", "brotli"),
            ("KAFKA_SECURITY_PROTOCOL", "carrier-pigeon"),
        ]),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("KAFKA_COMPRESSION") && text.contains("KAFKA_SECURITY_PROTOCOL"),
        "{text}"
    );
    let s = Settings::load(None, &env(&[("KAFKA_BROKERS", "b:9092")])).unwrap();
    let k = s.kafka.unwrap();
    assert_eq!(
        (
            k.topic.as_str(),
            k.compression.as_str(),
            k.message_timeout_ms
        ),
        ("chat-events", "zstd", 10_000)
    );
}

#[test]
fn a_reply_cannot_be_taken_for_abandoned_while_it_may_still_run() {
    let err = Settings::load(
        None,
        &env(&[
            ("LLM_TOTAL_TIMEOUT_MS", "900000"),
            ("LLM_STALE_REPLY_SECS", "600"),
        ]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("LLM_STALE_REPLY_SECS"), "{err}");
}

#[test]
fn db_sslmode_is_validated_with_the_other_keys() {
    use infra_postgres::SslMode;
    let mode = |vars: &[(&str, &str)]| {
        Settings::load(None, &env(vars))
            .map(|s| s.database.unwrap().sslmode)
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        mode(&[("DB_HOST", "db")]),
        Ok(SslMode::Prefer),
        "libpq's default"
    );
    assert_eq!(
        mode(&[("DB_HOST", "db"), ("DB_SSLMODE", "disable")]),
        Ok(SslMode::Disable)
    );
    assert_eq!(
        mode(&[
            ("DATABASE_URL", "postgres://u@h/d"),
            ("DB_SSLMODE", "verify-full")
        ]),
        Ok(SslMode::VerifyFull)
    );
    assert_eq!(
        mode(&[("DATABASE_URL", "postgres://u@h/d?sslmode=require")]),
        Ok(SslMode::Require),
        "the URL's own"
    );
    let err = mode(&[("DB_HOST", "db"), ("DB_SSLMODE", "on"), ("DB_PORT", "x")]).unwrap_err();
    assert!(
        err.contains("DB_SSLMODE") && err.contains("DB_PORT"),
        "{err}"
    );
    let err = mode(&[
        ("DATABASE_URL", "postgres://u@h/d?sslmode=disable"),
        ("DB_SSLMODE", "require"),
    ])
    .unwrap_err();
    assert!(
        err.contains("DB_SSLMODE") && err.contains("sslmode=disable"),
        "{err}"
    );
    let err = mode(&[("DB_SSLMODE", "disable")]).unwrap_err();
    assert!(err.contains("DB_SSLMODE"), "{err}");
}

#[test]
fn the_playground_is_on_in_development_and_off_in_production() {
    assert!(
        Settings::load(None, &HashMap::new())
            .unwrap()
            .http
            .playground
    );
    let production = [
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://x@h/d"),
        ("LLM_BASE_URL", "https://llm.example/v1"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ];
    assert!(
        !Settings::load(None, &env(&production))
            .unwrap()
            .http
            .playground
    );
    let mut on = production.to_vec();
    on.push(("HTTP_PLAYGROUND", "true"));
    assert!(Settings::load(None, &env(&on)).unwrap().http.playground);
    let off = Settings::load(Some("http:\n  playground: false\n"), &HashMap::new()).unwrap();
    assert!(!off.http.playground);
    let err = Settings::load(None, &env(&[("HTTP_PLAYGROUND", "maybe")])).unwrap_err();
    assert!(err.to_string().contains("HTTP_PLAYGROUND"), "{err}");
}

#[test]
fn read_concurrency_reaches_the_pool_as_set_or_half_of_it() {
    let pg = |pairs: &[(&str, &str)]| -> Result<infra_postgres::PgConfig, String> {
        let mut all = vec![("DATABASE_URL", "postgres://u@h/d")];
        all.extend_from_slice(pairs);
        let s = Settings::load(None, &env(&all)).map_err(|e| e.to_string())?;
        Ok(crate::wiring::pg_config(
            s.database.as_ref().expect("a database"),
        ))
    };
    let default = pg(&[]).unwrap();
    assert_eq!(default.read_concurrency, None);
    assert_eq!(default.read_limit(default.max_connections), 4, "half of 8");
    let set = pg(&[("DB_READ_CONCURRENCY", "3"), ("DB_POOL_SIZE", "12")]).unwrap();
    assert_eq!(set.read_concurrency, Some(3));
    assert_eq!(set.read_limit(set.max_connections), 3);
    assert_eq!(
        pg(&[("DB_READ_CONCURRENCY", "0")])
            .unwrap()
            .read_concurrency,
        None
    );
    for bad in ["-1", "many", "513"] {
        let err = pg(&[("DB_READ_CONCURRENCY", bad)]).unwrap_err();
        assert!(err.contains("DB_READ_CONCURRENCY"), "{bad}: {err}");
    }
}
