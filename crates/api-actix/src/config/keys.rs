//! The table of configuration keys (YAML key, environment variables, meaning) and the
//! code that builds [`Settings`] from them.

use super::*;

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// Dotted YAML key.
    pub yaml: &'static str,
    /// Environment variables that set it, first match wins.
    pub env: &'static [&'static str],
    /// What it means, with its default.
    pub doc: &'static str,
}

macro_rules! keys {
    ($($yaml:literal [$($env:literal),*] $doc:literal;)*) => {
        /// Every configuration key the service reads.
        pub const KEYS: &[Key] = &[$(Key { yaml: $yaml, env: &[$($env),*], doc: $doc }),*];
    };
}

keys! {
    "env" ["APP_ENV"] "development (default) or production; production refuses the embedded defaults";
    "http.addr" ["HTTP_ADDR"] "listen address (default 127.0.0.1:8080)";
    "http.body_limit_bytes" ["HTTP_BODY_LIMIT_BYTES"] "largest request body (default 1048576)";
    "http.client_request_timeout_ms" ["HTTP_CLIENT_REQUEST_TIMEOUT_MS"] "time a client has to send its request (default 10000)";
    "http.shutdown_drain_secs" ["HTTP_SHUTDOWN_DRAIN_SECS"] "on SIGTERM, time to finish in-flight requests and streams (default 30)";
    "http.shutdown_delay_secs" ["HTTP_SHUTDOWN_DELAY_SECS"] "on SIGTERM, time /readyz answers 503 while still accepting, before the drain (default 0)";
    "http.sse_keep_alive_secs" ["HTTP_SSE_KEEP_ALIVE_SECS"] "idle time after which an event stream gets a `: keep-alive` comment, 0 = never (default 15)";
    "http.workers" ["HTTP_WORKERS"] "worker threads, 0 = one per core (default 0)";
    "http.playground" ["HTTP_PLAYGROUND"] "serve the playground page (a browser chat client) at GET /, true or false (default true, false when env is production)";
    "cors.allowed_origins" ["CORS_ALLOWED_ORIGINS"] "comma-separated origins allowed by CORS (default none)";
    "auth.jwt_algorithm" ["JWT_ALGORITHM"] "HS256 (default), RS256 or ES256";
    "auth.jwt_secret" ["JWT_SECRET"] "HS256 secret, at least 32 bytes (generated at start in development when unset)";
    "auth.jwt_public_key" ["JWT_PUBLIC_KEY"] "RS256/ES256 public key: PEM text or path to a PEM file";
    "auth.jwt_issuer" ["JWT_ISSUER"] "required iss claim (default: not checked)";
    "auth.jwt_audience" ["JWT_AUDIENCE"] "required aud claim (default: not checked)";
    "auth.leeway_secs" ["JWT_LEEWAY_SECS"] "clock skew allowed on exp/nbf (default 30)";
    "database.url" ["DATABASE_URL"] "PostgreSQL URL; when neither it nor DB_HOST is set, storage is in memory";
    "database.host" ["DB_HOST"] "PostgreSQL host";
    "database.port" ["DB_PORT"] "PostgreSQL port (default 5432)";
    "database.user" ["DB_USER"] "PostgreSQL user (default postgres)";
    "database.password" ["DB_PASSWORD"] "PostgreSQL password";
    "database.name" ["DB_NAME"] "PostgreSQL database (default chat)";
    "database.pool_size" ["DB_POOL_SIZE"] "request pool size (default 8)";
    "database.relay_pool_size" ["DB_RELAY_POOL_SIZE"] "outbox relay pool size (default 2)";
    "database.read_concurrency" ["DB_READ_CONCURRENCY"] "scanning reads (lists, searches, branch pages, export pages) at once on the request pool (default 0: half the pool)";
    "database.wait_timeout_ms" ["DB_WAIT_TIMEOUT_MS"] "longest wait for a pooled connection (default 2000)";
    "database.connect_timeout_ms" ["DB_CONNECT_TIMEOUT_MS"] "longest wait to connect (default 3000)";
    "database.statement_timeout_ms" ["DB_STATEMENT_TIMEOUT_MS"] "statement_timeout per connection (default 5000)";
    "database.application_name" ["DB_APPLICATION_NAME"] "application_name per connection (default chat-service)";
    "database.sslmode" ["DB_SSLMODE"] "libpq sslmode: disable, allow, prefer, require, verify-ca or verify-full (default prefer, as libpq); a sslmode in DATABASE_URL must agree";
    "llm.providers" [] "several providers (YAML only): a list of {name, base_url, api_key_env, models and/or discover, timeouts}; see LLM providers (default: the single provider below)";
    "llm.base_url" ["LLM_BASE_URL"] "OpenAI-compatible base URL of the single provider, e.g. https://api.openai.com/v1 (default: the embedded echo model)";
    "llm.api_key" ["LLM_API_KEY"] "the single provider's API key";
    "llm.model" ["LLM_MODEL"] "model for chats that set none (default echo, or gpt-4o-mini with a base URL; with llm.providers the first listed model)";
    "llm.models" ["LLM_MODELS"] "more models of the single provider (or of the echo model), comma-separated (default none)";
    "llm.max_output_tokens" ["LLM_MAX_OUTPUT_TOKENS"] "output-token ceiling (largest maxTokens) of models that set none (default 32768)";
    "llm.model_max_tokens" ["LLM_MODEL_MAX_TOKENS"] "per-model output-token ceilings, model=tokens,... (default none)";
    "llm.fallbacks" ["LLM_FALLBACKS"] "per-model fallbacks tried in order before the first token, model=fallback|fallback,... (default none)";
    "llm.discovery_interval_secs" ["LLM_DISCOVERY_INTERVAL_SECS"] "how often a discovering provider's GET /models is read again (default 300)";
    "llm.auto_title" ["LLM_AUTO_TITLE"] "automatic titles after a chat's first reply, true or false (default true)";
    "llm.title_model" ["LLM_TITLE_MODEL"] "model that writes automatic titles (default: the model that answered the first reply)";
    "llm.connect_timeout_ms" ["LLM_CONNECT_TIMEOUT_MS"] "connect timeout (default 5000)";
    "llm.first_token_timeout_ms" ["LLM_FIRST_TOKEN_TIMEOUT_MS"] "longest wait for the first token (default 30000)";
    "llm.total_timeout_ms" ["LLM_TOTAL_TIMEOUT_MS"] "longest whole reply (default 300000)";
    "llm.echo_delay_ms" ["LLM_ECHO_DELAY_MS"] "pause between the echo model's chunks, to try streaming locally (default 0)";
    "llm.idle_timeout_ms" ["LLM_IDLE_TIMEOUT_MS"] "longest silence between two chunks of a reply (default 30000)";
    "llm.max_retries" ["LLM_MAX_RETRIES"] "retries on 429/5xx/connection errors before the first token (default 2)";
    "llm.history_budget_tokens" ["LLM_HISTORY_BUDGET_TOKENS"] "prompt token budget (default 8000)";
    "llm.model_budgets" ["LLM_MODEL_BUDGETS"] "per-model prompt budgets, model=tokens,... (default none)";
    "llm.stale_reply_secs" ["LLM_STALE_REPLY_SECS"] "a reply streaming longer than this is considered abandoned (default 600)";
    "kafka.brokers" ["KAFKA_BROKERS"] "bootstrap servers; events go to the log when unset";
    "kafka.topic" ["KAFKA_TOPIC"] "topic (default chat-events)";
    "kafka.client_id" ["KAFKA_CLIENT_ID"] "client id (default chat-service)";
    "kafka.message_timeout_ms" ["KAFKA_MESSAGE_TIMEOUT_MS"] "how long the producer tries to deliver one batch; a producer delivering nothing for twice this while the broker answers is replaced (default 10000)";
    "kafka.compression" ["KAFKA_COMPRESSION"] "none, gzip, snappy, lz4 or zstd (default zstd)";
    "kafka.security_protocol" ["KAFKA_SECURITY_PROTOCOL"] "plaintext, ssl, sasl_plaintext or sasl_ssl";
    "kafka.sasl_mechanism" ["KAFKA_SASL_MECHANISM"] "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512";
    "kafka.sasl_username" ["KAFKA_SASL_USERNAME"] "SASL user";
    "kafka.sasl_password" ["KAFKA_SASL_PASSWORD"] "SASL password";
    "kafka.ssl_ca_location" ["KAFKA_SSL_CA_LOCATION"] "CA bundle for TLS";
    "redis.url" ["REDIS_URL"] "Redis URL: redis://[user:password@]host:port[/db], rediss:// for TLS; when unset, live reply state (resume, cancel, leases, rate limits) is held per process";
    "redis.key_prefix" ["REDIS_KEY_PREFIX"] "prefix of every Redis key and channel (default chat:)";
    "redis.finished_ttl_secs" ["REDIS_FINISHED_TTL_SECS"] "seconds a finished reply's buffer stays in Redis for resumes (default 300)";
    "redis.lease_secs" ["REDIS_LEASE_SECS"] "seconds a generating replica's lease lasts unless renewed, 2 to 20 (default 10)";
    "redis.timeout_ms" ["REDIS_TIMEOUT_MS"] "longest wait for one Redis operation; slower counts as Redis down (default 1000)";
    "redis.connect_timeout_ms" ["REDIS_CONNECT_TIMEOUT_MS"] "longest wait to connect to Redis (default 2000)";
    "rate_limit.api_per_sec" ["RATE_LIMIT_API_PER_SEC"] "requests per second per user, 0 = off (default 50)";
    "rate_limit.api_burst" ["RATE_LIMIT_API_BURST"] "burst over the API (default 100)";
    "rate_limit.sends_per_min" ["RATE_LIMIT_SENDS_PER_MIN"] "sends per minute per user, 0 = off (default 60)";
    "rate_limit.sends_burst" ["RATE_LIMIT_SENDS_BURST"] "burst of sends (default 20)";
    "search.text_config" ["SEARCH_TEXT_CONFIG"] "PostgreSQL text-search configuration of message search, e.g. english; changing it rebuilds the index at start-up (default simple)";
    "retention.chat_idle_days" ["RETENTION_CHAT_IDLE_DAYS"] "delete chats with no activity for this many days, 0 = never (default 0)";
    "retention.sweep_interval_secs" ["RETENTION_SWEEP_INTERVAL_SECS"] "seconds between two retention sweeps (default 3600)";
    "quota.tokens_per_day" ["QUOTA_TOKENS_PER_DAY"] "tokens (prompt plus completion, titles included) a user may spend per UTC day; a send or regenerate past it is 429 until midnight UTC, 0 = no limit (default 0)";
    "quota.tokens_per_month" ["QUOTA_TOKENS_PER_MONTH"] "tokens a user may spend per UTC calendar month; past it, 429 until the 1st, 0 = no limit (default 0)";
    "log.format" ["LOG_FORMAT"] "pretty (default) or json";
    "log.level" ["LOG_LEVEL", "RUST_LOG"] "filter in RUST_LOG syntax (default info)";
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn database(r: &mut Reader) -> Option<DatabaseSettings> {
    let url = match (r.raw("database.url"), r.raw("database.host")) {
        (Some(url), _) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                r.problem(
                    "database.url",
                    "must start with postgres:// or postgresql://",
                );
            }
            url
        }
        (None, Some(host)) => {
            let port: u16 = r.parsed("database.port", 5432, "a port number");
            let user = r.raw("database.user").unwrap_or_else(|| "postgres".into());
            let name = r.raw("database.name").unwrap_or_else(|| "chat".into());
            let auth = match r.raw("database.password") {
                Some(p) => format!("{}:{}", percent_encode(&user), percent_encode(&p)),
                None => percent_encode(&user),
            };
            format!("postgres://{auth}@{host}:{port}/{}", percent_encode(&name))
        }
        (None, None) => {
            for k in [
                "database.port",
                "database.user",
                "database.password",
                "database.name",
                "database.sslmode",
            ] {
                if r.raw(k).is_some() {
                    r.problem(k, "set, but neither DB_HOST nor DATABASE_URL is");
                }
            }
            return None;
        }
    };
    let sslmode = sslmode(r, &url);
    Some(DatabaseSettings {
        url: Secret::new(url),
        sslmode,
        pool_size: r.ranged("database.pool_size", 8, 1, 512),
        relay_pool_size: r.ranged("database.relay_pool_size", 2, 1, 64),
        read_concurrency: r.ranged("database.read_concurrency", 0, 0, 512),
        wait_timeout_ms: r.ranged("database.wait_timeout_ms", 2_000, 1, 600_000),
        connect_timeout_ms: r.ranged("database.connect_timeout_ms", 3_000, 1, 600_000),
        statement_timeout_ms: r.ranged("database.statement_timeout_ms", 5_000, 0, 3_600_000),
        application_name: r
            .raw("database.application_name")
            .unwrap_or_else(|| "chat-service".into()),
    })
}

/// The `sslmode` of `url`'s query string, if it has one.
fn url_sslmode(url: &str) -> Option<&str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix("sslmode="))
}

fn sslmode(r: &mut Reader, url: &str) -> infra_postgres::SslMode {
    let in_url = url_sslmode(url).map(|m| m.parse::<infra_postgres::SslMode>());
    if let Some(Err(why)) = &in_url {
        r.problem("database.url", format!("sslmode: {why}"));
    }
    let Some(raw) = r.raw("database.sslmode") else {
        return in_url.and_then(Result::ok).unwrap_or_default();
    };
    match raw.parse::<infra_postgres::SslMode>() {
        Ok(mode) => {
            if let Some(Ok(other)) = in_url {
                if other != mode {
                    r.problem(
                        "database.sslmode",
                        format!("is {mode}, but the database URL says sslmode={other}"),
                    );
                }
            }
            mode
        }
        Err(why) => {
            r.problem("database.sslmode", why);
            infra_postgres::SslMode::default()
        }
    }
}

fn model_budgets(r: &mut Reader) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    let Some(raw) = r.raw("llm.model_budgets") else {
        return out;
    };
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part
            .split_once('=')
            .map(|(m, n)| (m.trim(), n.trim().parse::<u32>()))
        {
            Some((m, Ok(n))) if !m.is_empty() && n > 0 => {
                out.insert(m.to_owned(), n);
            }
            _ => r.problem("llm.model_budgets", format!("{part:?} is not model=tokens")),
        }
    }
    out
}

fn llm(r: &mut Reader, env: &HashMap<String, String>) -> LlmSettings {
    let base_url = r.raw("llm.base_url");
    if let Some(u) = &base_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            r.problem("llm.base_url", "must start with http:// or https://");
        }
    }
    let default_model = if base_url.is_some() {
        "gpt-4o-mini"
    } else {
        "echo"
    };
    let model = r.raw("llm.model").unwrap_or_else(|| default_model.into());
    if !model.is_empty() && domain::ModelName::parse(&model).is_err() {
        r.problem("llm.model", "is not a valid model name");
    }
    let settings = LlmSettings {
        api_key: r.raw("llm.api_key").map(Secret::new),
        model,
        connect_timeout_ms: r.ranged("llm.connect_timeout_ms", 5_000, 1, 600_000),
        first_token_timeout_ms: r.ranged("llm.first_token_timeout_ms", 30_000, 1, 3_600_000),
        total_timeout_ms: r.ranged("llm.total_timeout_ms", 300_000, 1, 86_400_000),
        idle_timeout_ms: r.ranged("llm.idle_timeout_ms", 30_000, 1, 3_600_000),
        echo_delay_ms: r.ranged("llm.echo_delay_ms", 0, 0, 60_000),
        max_retries: r.ranged("llm.max_retries", 2, 0, 10),
        history_budget_tokens: r.ranged("llm.history_budget_tokens", 8_000, 16, 10_000_000),
        model_budgets: model_budgets(r),
        stale_reply_secs: r.ranged("llm.stale_reply_secs", 600, 5, 86_400),
        base_url,
        providers: Vec::new(),
        models: Vec::new(),
        max_output_tokens: domain::ModelInfo::DEFAULT_MAX_OUTPUT_TOKENS,
        model_max_tokens: HashMap::new(),
        fallbacks: HashMap::new(),
        discovery_interval_secs: 300,
        auto_title: true,
        title_model: None,
    };
    let mut settings = settings;
    super::providers::build(r, env, &mut settings);
    let longest = settings
        .providers
        .iter()
        .map(|p| p.total_timeout_ms)
        .chain([settings.total_timeout_ms])
        .max()
        .unwrap_or(settings.total_timeout_ms);
    if settings.stale_reply_secs.saturating_mul(1000) <= longest {
        r.problem(
            "llm.stale_reply_secs",
            format!(
                "must be longer than the longest whole-reply timeout (llm.total_timeout_ms, or a provider's: {longest} ms): a reply still generating would be taken for abandoned"
            ),
        );
    }
    settings
}

fn kafka(r: &mut Reader) -> Option<KafkaSettings> {
    let brokers = r.raw("kafka.brokers")?;
    let compression = r.raw("kafka.compression").unwrap_or_else(|| "zstd".into());
    if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&compression.as_str()) {
        r.problem(
            "kafka.compression",
            format!("{compression:?} is not none, gzip, snappy, lz4 or zstd"),
        );
    }
    if let Some(p) = r.raw("kafka.security_protocol") {
        if !["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]
            .contains(&p.to_ascii_lowercase().as_str())
        {
            r.problem(
                "kafka.security_protocol",
                format!("{p:?} is not plaintext, ssl, sasl_plaintext or sasl_ssl"),
            );
        }
    }
    Some(KafkaSettings {
        brokers,
        topic: r.raw("kafka.topic").unwrap_or_else(|| "chat-events".into()),
        client_id: r
            .raw("kafka.client_id")
            .unwrap_or_else(|| "chat-service".into()),
        message_timeout_ms: r.ranged("kafka.message_timeout_ms", 10_000, 1_000, 600_000),
        compression,
        security_protocol: r.raw("kafka.security_protocol"),
        sasl_mechanism: r.raw("kafka.sasl_mechanism"),
        sasl_username: r.raw("kafka.sasl_username"),
        sasl_password: r.raw("kafka.sasl_password").map(Secret::new),
        ssl_ca_location: r.raw("kafka.ssl_ca_location"),
    })
}

fn auth(r: &mut Reader, env: Environment) -> AuthSettings {
    let algorithm = match r
        .raw("auth.jwt_algorithm")
        .map(|a| a.to_ascii_uppercase())
        .as_deref()
    {
        None | Some("HS256") => JwtAlgorithm::Hs256,
        Some("RS256") => JwtAlgorithm::Rs256,
        Some("ES256") => JwtAlgorithm::Es256,
        Some(other) => {
            r.problem(
                "auth.jwt_algorithm",
                format!("{other:?} is not HS256, RS256 or ES256"),
            );
            JwtAlgorithm::Hs256
        }
    };
    let jwt_secret = r.raw("auth.jwt_secret").map(Secret::new);
    let jwt_public_key = r.raw("auth.jwt_public_key");
    match algorithm {
        JwtAlgorithm::Hs256 => {
            if jwt_secret.as_ref().is_some_and(|s| s.expose().len() < 32) {
                r.problem("auth.jwt_secret", "must be at least 32 bytes");
            }
            if jwt_secret.is_none() && env == Environment::Production {
                r.problem("auth.jwt_secret", "is required in production");
            }
        }
        JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
            if jwt_public_key.is_none() {
                r.problem("auth.jwt_public_key", "is required with RS256/ES256");
            }
        }
    }
    AuthSettings {
        algorithm,
        jwt_secret,
        jwt_public_key,
        issuer: r.raw("auth.jwt_issuer"),
        audience: r.raw("auth.jwt_audience"),
        leeway_secs: r.ranged("auth.leeway_secs", 30, 0, 3_600),
    }
}

pub(super) fn build(r: &mut Reader, vars: &HashMap<String, String>) -> Settings {
    let env = match r.raw("env").map(|e| e.to_ascii_lowercase()).as_deref() {
        None | Some("development") | Some("dev") => Environment::Development,
        Some("production") | Some("prod") => Environment::Production,
        Some(other) => {
            r.problem("env", format!("{other:?} is not development or production"));
            Environment::Development
        }
    };
    let addr = r
        .raw("http.addr")
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    if addr.parse::<std::net::SocketAddr>().is_err() {
        r.problem(
            "http.addr",
            format!("{addr:?} is not an address such as 127.0.0.1:8080"),
        );
    }
    let http = HttpSettings {
        addr,
        body_limit: r.ranged("http.body_limit_bytes", 1_048_576, 1_024, 64 * 1_048_576),
        client_request_timeout_ms: r.ranged("http.client_request_timeout_ms", 10_000, 100, 600_000),
        shutdown_drain_secs: r.ranged("http.shutdown_drain_secs", 30, 0, 3_600),
        shutdown_delay_secs: r.ranged("http.shutdown_delay_secs", 0, 0, 600),
        sse_keep_alive_secs: r.ranged("http.sse_keep_alive_secs", 15, 0, 3_600),
        workers: r.ranged("http.workers", 0, 0, 256),
        playground: r.parsed(
            "http.playground",
            env == Environment::Development,
            "true or false",
        ),
        cors_allowed_origins: r
            .raw("cors.allowed_origins")
            .map(|o| {
                o.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    for origin in &http.cors_allowed_origins {
        if let Err(why) = crate::cors::check_origin(origin) {
            r.problem("cors.allowed_origins", why);
        }
    }
    let auth = auth(r, env);
    let database = database(r);
    let llm = llm(r, vars);
    let kafka = kafka(r);
    let redis = super::redis::redis(r);
    let rate_limit = RateLimitSettings {
        api_per_sec: r.ranged("rate_limit.api_per_sec", 50.0, 0.0, 1_000_000.0),
        api_burst: r.ranged("rate_limit.api_burst", 100, 1, 1_000_000),
        sends_per_min: r.ranged("rate_limit.sends_per_min", 60.0, 0.0, 1_000_000.0),
        sends_burst: r.ranged("rate_limit.sends_burst", 20, 1, 1_000_000),
    };
    let text_search_config = r
        .raw("search.text_config")
        .unwrap_or_else(|| "simple".into());
    if !infra_postgres::is_config_name(&text_search_config) {
        r.problem(
            "search.text_config",
            format!("{text_search_config:?} is not a text-search configuration name such as simple or english"),
        );
    }
    let idle_days: u32 = r.ranged("retention.chat_idle_days", 0, 0, 100_000);
    let data = DataSettings {
        text_search_config,
        chat_idle_days: (idle_days > 0).then_some(idle_days),
        sweep_interval_secs: r.ranged("retention.sweep_interval_secs", 3_600, 1, 604_800),
    };
    let quota = super::quota::read(r);
    let log = LogSettings {
        format: match r
            .raw("log.format")
            .map(|f| f.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("pretty") | Some("text") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                r.problem("log.format", format!("{other:?} is not pretty or json"));
                LogFormat::Pretty
            }
        },
        level: r.raw("log.level").unwrap_or_else(|| "info".into()),
    };
    if env == Environment::Production {
        if database.is_none() {
            r.problem(
                "database.url",
                "is required in production (in-memory storage loses everything on restart)",
            );
        }
        if llm.providers.is_empty() {
            r.problem(
                "llm.base_url",
                "or llm.providers is required in production (the echo model is for local runs)",
            );
        }
    }
    Settings {
        env,
        http,
        auth,
        database,
        llm,
        kafka,
        redis,
        rate_limit,
        data,
        quota,
        log,
    }
}
