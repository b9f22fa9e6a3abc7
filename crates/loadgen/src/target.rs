//! Where the load goes and as whom: loopback-only base URLs, HS256 tokens minted per
//! user, and user sets (`heavy`, `u:1000` = `u0`…`u999`).

use anyhow::{bail, Context};
use jsonwebtoken::{encode, EncodingKey, Header};
use rand::Rng;
use reqwest::Url;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// A base URL, checked to be a literal `http://127.0.0.1:<port>` (nothing else is ever
/// loaded by this tool), without a trailing slash.
pub fn loopback(raw: &str) -> anyhow::Result<String> {
    let url = Url::parse(raw).with_context(|| format!("not a URL: {raw}"))?;
    if url.scheme() != "http" || url.host_str() != Some("127.0.0.1") {
        bail!("only http://127.0.0.1:<port> targets are allowed, got {raw}");
    }
    if url.port().is_none() {
        bail!("the target needs an explicit port: {raw}");
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

/// Mints HS256 bearer tokens (valid for a day) and caches one per user.
#[derive(Debug, Clone)]
pub struct Tokens {
    secret: String,
    cache: HashMap<String, String>,
}

impl Tokens {
    /// A minter for this secret (the service's `JWT_SECRET`).
    pub fn new(secret: &str) -> anyhow::Result<Self> {
        if secret.len() < 32 {
            bail!("the JWT secret must be at least 32 bytes (set JWT_SECRET or --jwt-secret)");
        }
        Ok(Self {
            secret: secret.to_owned(),
            cache: HashMap::new(),
        })
    }

    /// `Bearer <token>` for `user`.
    pub fn bearer(&mut self, user: &str) -> anyhow::Result<String> {
        if let Some(t) = self.cache.get(user) {
            return Ok(t.clone());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            sub: user,
            iat: now,
            exp: now + 24 * 3600,
        };
        let token = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(self.secret.as_bytes()),
        )
        .context("signing a token")?;
        let bearer = format!("Bearer {token}");
        self.cache.insert(user.to_owned(), bearer.clone());
        Ok(bearer)
    }
}

/// The users requests are made as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Users {
    /// Always this one.
    One(String),
    /// `prefix0` … `prefix{n-1}`, one picked at random per request.
    Range {
        /// Name prefix.
        prefix: String,
        /// How many.
        n: u32,
    },
}

impl Users {
    /// `name`, or `prefix:n` for a range.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if let Some((prefix, n)) = s.rsplit_once(':') {
            let n: u32 = n
                .parse()
                .with_context(|| format!("bad user range {s} (want prefix:count)"))?;
            if n == 0 {
                bail!("empty user range {s}");
            }
            return Ok(Users::Range {
                prefix: prefix.to_owned(),
                n,
            });
        }
        if s.is_empty() {
            bail!("empty user name");
        }
        Ok(Users::One(s.to_owned()))
    }

    /// A user picked at random (always the same one for [`Users::One`]).
    pub fn pick(&self, rng: &mut impl Rng) -> String {
        match self {
            Users::One(u) => u.clone(),
            Users::Range { prefix, n } => format!("{prefix}{}", rng.gen_range(0..*n)),
        }
    }

    /// Up to `max` distinct users of the set, spread over it.
    pub fn sample(&self, max: u32) -> Vec<String> {
        match self {
            Users::One(u) => vec![u.clone()],
            Users::Range { prefix, n } => {
                let k = max.clamp(1, *n);
                let step = (*n / k).max(1);
                (0..k).map(|i| format!("{prefix}{}", i * step)).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_literals_pass() {
        assert_eq!(
            loopback("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(loopback("http://localhost:8080").is_err());
        assert!(loopback("http://10.0.0.1:8080").is_err());
        assert!(loopback("https://127.0.0.1:8080").is_err());
        assert!(loopback("http://127.0.0.1").is_err());
    }

    #[test]
    fn user_sets_parse_and_sample() {
        assert_eq!(Users::parse("heavy").unwrap(), Users::One("heavy".into()));
        let r = Users::parse("u:10").unwrap();
        assert_eq!(r.sample(3), vec!["u0", "u3", "u6"]);
        assert!(Users::parse("u:0").is_err());
        assert!(Users::parse("u:x").is_err());
    }

    #[test]
    fn tokens_are_cached_and_need_a_long_secret() {
        assert!(Tokens::new("short").is_err());
        let mut t = Tokens::new(&"k".repeat(32)).unwrap();
        let a = t.bearer("alice").unwrap();
        assert!(a.starts_with("Bearer "));
        assert_eq!(t.bearer("alice").unwrap(), a);
    }
}
