//! Settings of the PostgreSQL adapter: where the database is and how the pool behaves.

use std::fmt;
use std::time::Duration;

/// A connection URL (or libpq `key=value` string). It holds the password, so it never
/// prints: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL such as `postgres://user:password@host:5432/db`.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, to hand to libpq. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// libpq's `sslmode`: whether and how the connection is encrypted and the server checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS (for a database on loopback or a private socket).
    Disable,
    /// TLS only if the server insists.
    Allow,
    /// TLS when the server offers it, else plain (libpq's default).
    #[default]
    Prefer,
    /// TLS always; the server's certificate is not checked.
    Require,
    /// TLS always; the certificate must be signed by a trusted CA (`sslrootcert`).
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// Every mode, by its libpq name.
    pub const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The libpq name (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl std::str::FromStr for SslMode {
    type Err = String;

    /// Parses a libpq name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SslMode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("{s:?} is not disable, allow, prefer, require, verify-ca or verify-full")
            })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach PostgreSQL and how the connection pool behaves.
///
/// Every field has a default ([`PgConfig::new`]); the defaults suit a small service
/// beside its database: the database is the bottleneck, not the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PgConfig {
    /// Where the database is.
    pub url: DatabaseUrl,
    /// Most connections of the request pool. Default 10.
    pub max_connections: usize,
    /// Most connections of the outbox relay's own pool ([`crate::PgStore::relay`]). Default 2.
    pub relay_max_connections: usize,
    /// Most reads that scan (chat lists, title and message searches, branch pages,
    /// export pages) running on the request pool at once; the others wait their turn
    /// (up to `wait_timeout`), and writes never wait for them. `None` (the default):
    /// half of `max_connections`, at least 1. See [`PgConfig::read_limit`].
    pub read_concurrency: Option<usize>,
    /// How long a caller waits for a free connection before getting "unavailable". Default 2 s.
    pub wait_timeout: Duration,
    /// How long opening a connection may take (libpq `connect_timeout`, at least 2 s). Default 3 s.
    pub connect_timeout: Duration,
    /// `statement_timeout` of every connection: the longest any one statement (lock
    /// waits included) may run. Default 5 s.
    pub statement_timeout: Duration,
    /// `application_name` of every connection, as `pg_stat_activity` shows it.
    /// Default `chat-service` (the relay's pool appends `-relay`).
    pub application_name: String,
    /// Text-search configuration of message search (`simple`, `english`, …). Default
    /// `simple`; see [`crate::PgStore::apply_text_search_config`].
    pub text_search_config: String,
    /// libpq `sslmode`, unless the URL sets one itself. Default [`SslMode::Prefer`], as
    /// libpq's own default.
    pub sslmode: SslMode,
}

impl PgConfig {
    /// Default request pool size.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10;
    /// Default relay pool size.
    pub const DEFAULT_RELAY_MAX_CONNECTIONS: usize = 2;
    /// Default wait for a free connection.
    pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    /// Default statement timeout.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default application name.
    pub const DEFAULT_APPLICATION_NAME: &'static str = "chat-service";
    /// Default text-search configuration.
    pub const DEFAULT_TEXT_SEARCH_CONFIG: &'static str = "simple";

    /// The settings for `url`, everything else at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: DatabaseUrl::new(url),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            relay_max_connections: Self::DEFAULT_RELAY_MAX_CONNECTIONS,
            read_concurrency: None,
            wait_timeout: Self::DEFAULT_WAIT_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
            application_name: Self::DEFAULT_APPLICATION_NAME.to_owned(),
            text_search_config: Self::DEFAULT_TEXT_SEARCH_CONFIG.to_owned(),
            sslmode: SslMode::default(),
        }
    }

    /// How many scanning reads run at once on a pool of `pool_size`: `read_concurrency`,
    /// or half the pool (at least 1), never more than the pool. Such reads are CPU-bound
    /// on the database; run side by side beyond its cores they only slice each other's
    /// time (a tail as long as the slowest share), while queued in order each runs at
    /// full speed, and the other half of the pool stays free for sends and finishes.
    pub fn read_limit(&self, pool_size: usize) -> usize {
        let pool = pool_size.max(1);
        self.read_concurrency.unwrap_or(pool / 2).clamp(1, pool)
    }

    /// The settings for the original service's variables `DB_HOST`, `DB_PORT`,
    /// `DB_USER`, `DB_PASSWORD` and `DB_NAME`; the parts are percent-encoded, so a
    /// password may hold any character.
    pub fn from_parts(host: &str, port: u16, user: &str, password: &str, dbname: &str) -> Self {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]") // an IPv6 address
        } else {
            host.to_owned()
        };
        let credentials = if password.is_empty() {
            encode(user)
        } else {
            format!("{}:{}", encode(user), encode(password))
        };
        Self::new(format!(
            "postgres://{credentials}@{host}:{port}/{}",
            encode(dbname)
        ))
    }

    /// The URL handed to libpq: the configured one plus `sslmode`, `connect_timeout` and
    /// TCP keep-alive parameters (unless it sets them itself), so a dead server or a cut
    /// network is noticed instead of waited on.
    pub(crate) fn connection_url(&self) -> String {
        let base = self.url.expose();
        let is_url = base.starts_with("postgres://") || base.starts_with("postgresql://");
        let mut params = Vec::new();
        let secs = self.connect_timeout.as_secs().max(2);
        let user_timeout_ms = (self.statement_timeout + self.connect_timeout).as_millis();
        for (key, value) in [
            ("sslmode", self.sslmode.as_str().to_owned()),
            ("connect_timeout", secs.to_string()),
            ("keepalives", "1".to_owned()),
            ("keepalives_idle", "30".to_owned()),
            ("keepalives_interval", "10".to_owned()),
            ("keepalives_count", "3".to_owned()),
            ("tcp_user_timeout", user_timeout_ms.to_string()),
        ] {
            if !base.contains(&format!("{key}=")) {
                params.push((key, value));
            }
        }
        let mut url = base.to_owned();
        for (i, (key, value)) in params.iter().enumerate() {
            if is_url {
                let sep = if i == 0 && !base.contains('?') {
                    '?'
                } else {
                    '&'
                };
                url.push_str(&format!("{sep}{key}={value}"));
            } else {
                url.push_str(&format!(" {key}={value}"));
            }
        }
        url
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_never_prints() {
        let c = PgConfig::new("postgres://u:hunter2@db/chat");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.url.to_string(), "<redacted>");
    }

    #[test]
    fn from_parts_encodes_every_part() {
        let c = PgConfig::from_parts("db.local", 5433, "chat user", "p@ss:w/rd%", "chat");
        assert_eq!(
            c.url.expose(),
            "postgres://chat%20user:p%40ss%3Aw%2Frd%25@db.local:5433/chat"
        );
        let v6 = PgConfig::from_parts("::1", 5432, "u", "", "d");
        assert_eq!(v6.url.expose(), "postgres://u@[::1]:5432/d");
    }

    #[test]
    fn connection_url_adds_timeouts_once() {
        let mut c = PgConfig::new("postgres://u@h/d?sslmode=disable&connect_timeout=7");
        c.sslmode = SslMode::Require;
        let url = c.connection_url();
        assert!(url.starts_with("postgres://u@h/d?sslmode=disable&connect_timeout=7&"));
        assert_eq!(url.matches("connect_timeout=").count(), 1);
        assert_eq!(
            url.matches("sslmode=").count(),
            1,
            "the URL's own sslmode wins"
        );
        assert!(url.contains("tcp_user_timeout=8000"));
        let kv = PgConfig::new("host=h dbname=d").connection_url();
        assert!(kv.starts_with("host=h dbname=d sslmode=prefer connect_timeout=3 keepalives=1"));
        let mut c = PgConfig::new("postgres://u@h/d");
        c.sslmode = SslMode::Disable;
        assert!(c
            .connection_url()
            .starts_with("postgres://u@h/d?sslmode=disable&connect_timeout=3&"));
    }

    #[test]
    fn defaults() {
        let c = PgConfig::new("postgres://h/d");
        assert_eq!(c.max_connections, 10);
        assert_eq!(c.wait_timeout, Duration::from_secs(2));
        assert_eq!(c.statement_timeout, Duration::from_secs(5));
        assert_eq!(c.application_name, "chat-service");
        assert_eq!(c.sslmode, SslMode::Prefer);
    }

    #[test]
    fn scanning_reads_get_half_the_pool_unless_set() {
        let mut c = PgConfig::new("postgres://h/d");
        assert_eq!(c.read_concurrency, None);
        assert_eq!(c.read_limit(8), 4);
        assert_eq!(c.read_limit(1), 1, "at least one");
        assert_eq!(c.read_limit(3), 1);
        c.read_concurrency = Some(6);
        assert_eq!(c.read_limit(8), 6);
        assert_eq!(c.read_limit(4), 4, "never more than the pool");
        c.read_concurrency = Some(0);
        assert_eq!(c.read_limit(8), 1);
    }

    #[test]
    fn sslmodes_parse_by_their_libpq_names() {
        for m in SslMode::ALL {
            assert_eq!(m.as_str().parse::<SslMode>(), Ok(m));
        }
        assert_eq!("VERIFY-FULL".parse::<SslMode>(), Ok(SslMode::VerifyFull));
        assert!("verify_full".parse::<SslMode>().is_err());
        assert!("".parse::<SslMode>().is_err());
    }
}
