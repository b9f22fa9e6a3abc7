//! Typed, layered configuration: a YAML file (`--config`) overlaid by environment
//! variables with the seed service's names. Every bad key is reported at once.

mod keys;
mod providers;
mod quota;
mod redis;
mod secret;
mod source;

pub use keys::KEYS;
pub use providers::{ModelEntry, ProviderSettings, SINGLE_PROVIDER};
pub use redis::{RedisSettings, MAX_LEASE_SECS};
pub use secret::Secret;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

/// Where the service runs: `production` refuses the embedded defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local runs: missing settings fall back to the embedded defaults.
    Development,
    /// Real deployments: JWT keys, storage and the provider must be configured.
    Production,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Token verification algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `auth.jwt_secret`.
    Hs256,
    /// RSA with `auth.jwt_public_key` (PEM).
    Rs256,
    /// ECDSA P-256 with `auth.jwt_public_key` (PEM).
    Es256,
}

/// HTTP server settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Listen address.
    pub addr: String,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Time a client has to send its request head and body, in milliseconds.
    pub client_request_timeout_ms: u64,
    /// On SIGTERM, how long in-flight requests and streams may take to finish.
    pub shutdown_drain_secs: u64,
    /// On SIGTERM, how long `/readyz` answers 503 while still accepting, before the drain.
    pub shutdown_delay_secs: u64,
    /// Idle seconds before an event stream gets a keep-alive comment (0 = never).
    pub sse_keep_alive_secs: u64,
    /// Origins allowed by CORS (none by default).
    pub cors_allowed_origins: Vec<String>,
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Whether `GET /` serves the playground page.
    pub playground: bool,
}

/// Token settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Algorithm tokens must be signed with.
    pub algorithm: JwtAlgorithm,
    /// HS256 secret; generated at start in development when unset.
    pub jwt_secret: Option<Secret>,
    /// RS256/ES256 public key, PEM text or a path to a PEM file.
    pub jwt_public_key: Option<String>,
    /// Required `iss`, if set.
    pub issuer: Option<String>,
    /// Required `aud`, if set.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp`/`nbf`, in seconds.
    pub leeway_secs: u64,
}

/// PostgreSQL settings; storage is in memory when absent.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Connection URL (built from the `DB_*` parts when not given whole).
    pub url: Secret,
    /// libpq `sslmode` (the URL's own, when it has one).
    pub sslmode: infra_postgres::SslMode,
    /// Request pool size.
    pub pool_size: usize,
    /// Outbox relay pool size.
    pub relay_pool_size: usize,
    /// Scanning reads at once on the request pool; 0: half the pool.
    pub read_concurrency: usize,
    /// Longest wait for a pooled connection, in milliseconds.
    pub wait_timeout_ms: u64,
    /// Longest wait to connect, in milliseconds.
    pub connect_timeout_ms: u64,
    /// `statement_timeout` of every connection, in milliseconds.
    pub statement_timeout_ms: u64,
    /// `application_name` of every connection.
    pub application_name: String,
}

/// LLM provider settings; the embedded echo model answers when no provider is configured.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// The providers (`llm.providers`, or the one of `llm.base_url`); empty = the echo model.
    pub providers: Vec<ProviderSettings>,
    /// The single provider's models (or the echo model's names): `llm.model` then `llm.models`.
    pub models: Vec<String>,
    /// Output-token ceiling of models that set none.
    pub max_output_tokens: u32,
    /// Output-token ceilings by model (`model=tokens,…`).
    pub model_max_tokens: HashMap<String, u32>,
    /// Fallbacks by model (`model=a|b,…`).
    pub fallbacks: HashMap<String, Vec<String>>,
    /// Seconds between two reads of a discovering provider's `GET /models`.
    pub discovery_interval_secs: u64,
    /// Whether chats get automatic titles.
    pub auto_title: bool,
    /// The model that writes titles; `None` = the one that answered the first reply.
    pub title_model: Option<String>,
    /// OpenAI-compatible base URL, such as `https://api.openai.com/v1`.
    pub base_url: Option<String>,
    /// Bearer key for the provider.
    pub api_key: Option<Secret>,
    /// Model for chats that do not set one (with `llm.providers` and no `llm.model`:
    /// the first fixed model, or empty when every provider only discovers).
    pub model: String,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest wait for the first token, in milliseconds.
    pub first_token_timeout_ms: u64,
    /// Longest whole reply, in milliseconds.
    pub total_timeout_ms: u64,
    /// Longest silence between two chunks, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Pause between the echo model's chunks, in milliseconds.
    pub echo_delay_ms: u64,
    /// Retries on 429/5xx/connection errors before the first token.
    pub max_retries: u32,
    /// Prompt token budget for models not listed in `model_budgets`.
    pub history_budget_tokens: u32,
    /// Prompt token budget per model (`model=tokens,…`).
    pub model_budgets: HashMap<String, u32>,
    /// A reply still `streaming` after this long is considered abandoned, in seconds.
    pub stale_reply_secs: u64,
}

/// Kafka settings; events go to the log when absent.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Topic of the events.
    pub topic: String,
    /// Client id.
    pub client_id: String,
    /// How long the producer tries to deliver one batch, in milliseconds.
    pub message_timeout_ms: u64,
    /// Compression codec.
    pub compression: String,
    /// `security.protocol` (plaintext, ssl, sasl_plaintext, sasl_ssl).
    pub security_protocol: Option<String>,
    /// SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
    pub sasl_mechanism: Option<String>,
    /// SASL user.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<Secret>,
    /// CA bundle for TLS.
    pub ssl_ca_location: Option<String>,
}

/// Per-user rate limits (token buckets).
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Requests per second per user over the whole API (0 = off).
    pub api_per_sec: f64,
    /// Burst over the whole API.
    pub api_burst: u32,
    /// Sends (and regenerates) per minute per user (0 = off).
    pub sends_per_min: f64,
    /// Burst of sends.
    pub sends_burst: u32,
}

/// A user's data: message search and retention.
#[derive(Debug, Clone)]
pub struct DataSettings {
    /// PostgreSQL text-search configuration of message search (`simple` by default).
    pub text_search_config: String,
    /// Chats with no activity for this many days are deleted; `None` = kept forever.
    pub chat_idle_days: Option<u32>,
    /// Seconds between two retention sweeps.
    pub sweep_interval_secs: u64,
}

/// Log settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// Filter, in `RUST_LOG` syntax.
    pub level: String,
}

/// All settings of the service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Development or production.
    pub env: Environment,
    /// HTTP server.
    pub http: HttpSettings,
    /// Tokens.
    pub auth: AuthSettings,
    /// PostgreSQL; `None` = in-memory storage.
    pub database: Option<DatabaseSettings>,
    /// LLM provider.
    pub llm: LlmSettings,
    /// Kafka; `None` = events to the log.
    pub kafka: Option<KafkaSettings>,
    /// Redis; `None` = live reply state in process.
    pub redis: Option<RedisSettings>,
    /// Rate limits.
    pub rate_limit: RateLimitSettings,
    /// Search and retention.
    pub data: DataSettings,
    /// Token quotas per user (off unless set).
    pub quota: domain::services::QuotaConfig,
    /// Logging.
    pub log: LogSettings,
}

/// Every problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `(key, why)` pairs; the key names the YAML key and its environment variable.
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for (k, why) in &self.problems {
            write!(f, "\n  - {k}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Loads settings from an optional YAML text overlaid by `env`.
    pub fn load(
        yaml: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let mut problems = Vec::new();
        let mut values = match yaml.map(source::flatten_yaml).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                problems.push(("config file".to_owned(), e));
                BTreeMap::new()
            }
        };
        for k in values.keys() {
            if let Some(why) = providers::unknown_provider_key(k) {
                if !providers::is_provider_key(k) {
                    problems.push((k.clone(), why.to_owned()));
                }
            } else if !KEYS.iter().any(|key| key.yaml == k) && !providers::is_provider_key(k) {
                problems.push((k.clone(), "unknown key".to_owned()));
            }
        }
        for key in KEYS {
            for var in key.env {
                if let Some(v) = env.get(*var).filter(|v| !v.trim().is_empty()) {
                    values.insert(key.yaml.to_owned(), v.clone());
                    break;
                }
            }
        }
        let mut r = Reader { values, problems };
        let settings = keys::build(&mut r, env);
        if r.problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError {
                problems: r.problems,
            })
        }
    }

    /// Whether nothing was configured for storage, provider and token: the embedded defaults.
    pub fn is_embedded(&self) -> bool {
        self.database.is_none() && self.llm.providers.is_empty() && self.auth.jwt_secret.is_none()
    }
}

/// Reads typed values out of the merged key map, collecting every problem.
pub(crate) struct Reader {
    values: BTreeMap<String, String>,
    problems: Vec<(String, String)>,
}

impl Reader {
    fn label(key: &str) -> String {
        match KEYS.iter().find(|k| k.yaml == key) {
            Some(k) if !k.env.is_empty() => format!("{key} ({})", k.env.join(" / ")),
            _ => key.to_owned(),
        }
    }

    pub(crate) fn raw(&self, key: &str) -> Option<String> {
        self.values
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn problem(&mut self, key: &str, why: impl Into<String>) {
        self.problems.push((Self::label(key), why.into()));
    }

    pub(crate) fn parsed<T: FromStr>(&mut self, key: &str, default: T, what: &str) -> T {
        match self.raw(key) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problem(key, format!("{v:?} is not {what}"));
                default
            }),
        }
    }

    pub(crate) fn ranged<T: FromStr + PartialOrd + fmt::Display + Copy>(
        &mut self,
        key: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let v = self.parsed(key, default, &format!("a number between {min} and {max}"));
        if v < min || v > max {
            self.problem(key, format!("{v} is not between {min} and {max}"));
            return default;
        }
        v
    }
}

#[cfg(test)]
mod tests;
