//! Redis settings (`REDIS_URL` and the `redis.*` keys): live reply state shared by
//! replicas. Without a URL, live state is held in process (one replica).

use super::{Reader, Secret};

/// Redis settings; live reply state is held in process when absent.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS.
    pub url: Secret,
    /// Prefix of every key and channel.
    pub key_prefix: String,
    /// Seconds a finished reply's buffer stays readable.
    pub finished_ttl_secs: u64,
    /// Seconds a generating replica's lease lasts unless renewed.
    pub lease_secs: u64,
    /// Longest wait for one Redis operation, in milliseconds.
    pub timeout_ms: u64,
    /// Longest wait to connect, in milliseconds.
    pub connect_timeout_ms: u64,
}

/// Longest lease: a dead replica's replies must be failed within 30 s (lease plus
/// the sweep that notices).
pub const MAX_LEASE_SECS: u64 = 20;

pub(super) fn redis(r: &mut Reader) -> Option<RedisSettings> {
    let Some(url) = r.raw("redis.url") else {
        for k in [
            "redis.key_prefix",
            "redis.finished_ttl_secs",
            "redis.lease_secs",
            "redis.timeout_ms",
            "redis.connect_timeout_ms",
        ] {
            if r.raw(k).is_some() {
                r.problem(k, "set, but REDIS_URL is not");
            }
        }
        return None;
    };
    if let Err(why) = infra_redis::RedisConfig::check_url(&url) {
        r.problem("redis.url", why);
    }
    let key_prefix = r
        .raw("redis.key_prefix")
        .unwrap_or_else(|| infra_redis::DEFAULT_KEY_PREFIX.to_owned());
    if key_prefix.len() > 64
        || key_prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        r.problem(
            "redis.key_prefix",
            "must be at most 64 characters, without spaces or control characters",
        );
    }
    Some(RedisSettings {
        url: Secret::new(url),
        key_prefix,
        finished_ttl_secs: r.ranged("redis.finished_ttl_secs", 300, 10, 86_400),
        lease_secs: r.ranged("redis.lease_secs", 10, 2, MAX_LEASE_SECS),
        timeout_ms: r.ranged("redis.timeout_ms", 1_000, 10, 60_000),
        connect_timeout_ms: r.ranged("redis.connect_timeout_ms", 2_000, 10, 60_000),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn redis_is_off_without_a_url() {
        let s = Settings::load(None, &env(&[])).unwrap();
        assert!(s.redis.is_none());
    }

    #[test]
    fn redis_url_and_keys() {
        let s = Settings::load(
            Some("redis:\n  key_prefix: \"app1:\"\n  lease_secs: 5\n"),
            &env(&[
                ("REDIS_URL", "rediss://:hunter2@cache:6380/1"),
                ("REDIS_FINISHED_TTL_SECS", "120"),
            ]),
        )
        .unwrap();
        let r = s.redis.unwrap();
        assert_eq!(r.url.expose(), "rediss://:hunter2@cache:6380/1");
        assert_eq!(r.key_prefix, "app1:");
        assert_eq!((r.lease_secs, r.finished_ttl_secs), (5, 120));
        assert_eq!((r.timeout_ms, r.connect_timeout_ms), (1_000, 2_000));
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn bad_redis_settings_name_their_keys() {
        let err = Settings::load(
            None,
            &env(&[
                ("REDIS_URL", "http://cache"),
                ("REDIS_LEASE_SECS", "60"),
                ("REDIS_KEY_PREFIX", "a b"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("redis.url (REDIS_URL): must start with redis://"),
            "{err}"
        );
        assert!(err.contains("redis.lease_secs (REDIS_LEASE_SECS)"), "{err}");
        assert!(err.contains("redis.key_prefix (REDIS_KEY_PREFIX)"), "{err}");
        let err = Settings::load(None, &env(&[("REDIS_LEASE_SECS", "5")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("set, but REDIS_URL is not"), "{err}");
    }
}
