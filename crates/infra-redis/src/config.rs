//! The adapter's settings: where Redis is (`REDIS_URL`, password and TLS through the
//! URL), the key prefix, and the timings of reply buffers and leases.

use std::fmt;
use std::time::Duration;

/// Settings of the Redis adapter.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://…` for TLS.
    pub url: String,
    /// Prepended to every key and channel, so several services (or tests) share one Redis.
    pub key_prefix: String,
    /// How long a finished reply's buffer stays readable (resume after the end).
    pub finished_ttl: Duration,
    /// How long a generating process's lease lasts without renewal.
    pub lease: Duration,
    /// Longest wait for one Redis operation (a reply that takes longer counts as Redis down).
    pub op_timeout: Duration,
    /// Longest wait to connect.
    pub connect_timeout: Duration,
    /// Deltas are coalesced for this long before one write (0 = every delta on its own).
    pub flush_interval: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("finished_ttl", &self.finished_ttl)
            .field("lease", &self.lease)
            .field("op_timeout", &self.op_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("flush_interval", &self.flush_interval)
            .finish()
    }
}

/// The default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "chat:";

impl RedisConfig {
    /// The defaults for `url`: prefix `chat:`, finished buffers kept 300 s, leases of
    /// 10 s, operations bounded by 1 s, connections by 2 s, deltas coalesced for 5 ms.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            finished_ttl: Duration::from_secs(300),
            lease: Duration::from_secs(10),
            op_timeout: Duration::from_millis(1_000),
            connect_timeout: Duration::from_millis(2_000),
            flush_interval: Duration::from_millis(5),
        }
    }

    /// Why `url` is not a Redis URL the client can use, if it is not.
    pub fn check_url(url: &str) -> Result<(), String> {
        let scheme_ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|s| url.starts_with(s));
        if !scheme_ok {
            return Err("must start with redis:// or rediss:// (TLS)".to_owned());
        }
        redis::Client::open(url)
            .map(drop)
            .map_err(|e| format!("is not a valid Redis URL ({})", e.kind_name()))
    }
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for redis::RedisError {
    fn kind_name(&self) -> &'static str {
        match self.kind() {
            redis::ErrorKind::InvalidClientConfig => "invalid client configuration",
            _ => "unusable",
        }
    }
}

/// `url` with its password replaced by `***` (for logs).
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
            let user = if user.is_empty() { "" } else { user };
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted_url("rediss://app:s3cret@cache:6380/2"),
            "rediss://app:***@cache:6380/2"
        );
        assert_eq!(redacted_url("redis://:s3cret@cache"), "redis://:***@cache");
        assert_eq!(redacted_url("redis://cache:6379"), "redis://cache:6379");
        let c = RedisConfig::new("redis://:hunter2@cache");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn urls_are_checked() {
        assert!(RedisConfig::check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(RedisConfig::check_url("rediss://user:pw@cache.example:6380").is_ok());
        assert!(RedisConfig::check_url("http://cache").is_err());
        assert!(RedisConfig::check_url("cache:6379").is_err());
    }
}
