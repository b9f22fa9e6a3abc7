//! Configuration of the OpenAI-compatible client: endpoint, key, timeouts and retry policy.

use std::fmt;
use std::time::Duration;

/// The provider's API key. Its `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; an empty or blank key is `None` (no `Authorization` header is sent).
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into().trim().to_owned();
        (!key.is_empty()).then_some(Self(key))
    }

    /// The key itself, for the `Authorization` header and for redaction.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// When and how failed calls are retried. Only failures before the first token are
/// retried: 429, 408, 5xx, connection errors and connect timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry). Default 2.
    pub max_retries: u32,
    /// Backoff before the first retry; doubles on each retry. Default 200 ms.
    pub initial_backoff: Duration,
    /// Largest backoff between two attempts. Default 5 s.
    pub max_backoff: Duration,
    /// Largest `Retry-After` the client waits for; a provider asking for longer makes
    /// the call fail at once (`RateLimited { retry_after }` for a 429). Default 30 s.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (0-based) when the provider gave no
    /// `Retry-After`: exponential, capped, with "equal jitter" (between half and all of it).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(20));
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = full / 2;
        let spread = u64::try_from((full - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            rand::Rng::gen_range(&mut rand::thread_rng(), 0..=spread)
        };
        half + Duration::from_micros(jitter)
    }
}

/// Configuration of [`crate::openai::OpenAiClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// The API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`;
    /// requests go to `{base_url}/chat/completions` (`LLM_BASE_URL`).
    pub base_url: String,
    /// Sent as `Authorization: Bearer …`; `None` sends no header (`LLM_API_KEY`).
    pub api_key: Option<ApiKey>,
    /// Limit for opening the TCP (and TLS) connection, per attempt. Default 5 s.
    pub connect_timeout: Duration,
    /// Limit from sending a streamed request until its first text (the first
    /// non-empty content delta), per attempt. Not retried when it runs out. Default 30 s.
    pub first_token_timeout: Duration,
    /// Largest silence between two chunks of a streamed reply. Default 30 s.
    pub idle_timeout: Duration,
    /// Limit for the whole call, retries and the whole streamed reply included. Default 300 s.
    pub total_timeout: Duration,
    /// Retries before the first token.
    pub retry: RetryPolicy,
}

impl OpenAiConfig {
    /// A configuration for `base_url` with the default timeouts and retries and no key.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            first_token_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the API key (a blank key means none).
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = ApiKey::new(key);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_key() {
        let config = OpenAiConfig::new("http://x").with_api_key("sk-secret-123");
        let printed = format!("{config:?}");
        assert!(!printed.contains("sk-secret-123"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn blank_key_is_no_key() {
        assert_eq!(ApiKey::new("  "), None);
        assert_eq!(
            ApiKey::new(" k ").map(|k| k.expose().to_owned()),
            Some("k".into())
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = p.backoff(0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = p.backoff(2);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = p.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
    }
}
