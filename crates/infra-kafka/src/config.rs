//! Kafka producer settings: brokers, topic, timeouts, compression and the
//! SASL/TLS properties passed through to librdkafka.

use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A value that must never be printed (a password): `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Compression of produced message batches (librdkafka `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard (brokers 2.1 and later); this crate builds librdkafka with zstd.
    #[default]
    Zstd,
}

impl Compression {
    /// The librdkafka name: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses a librdkafka name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "snappy" => Some(Compression::Snappy),
            "lz4" => Some(Compression::Lz4),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Everything the Kafka publisher needs. Built by the service's configuration
/// layer (`KAFKA_*` variables); [`KafkaConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list (`KAFKA_BROKERS`).
    pub brokers: String,
    /// The topic events go to (`KAFKA_TOPIC`, default `chat-events`).
    pub topic: String,
    /// `client.id` reported to the brokers (default `chat-service`).
    pub client_id: String,
    /// The CloudEvents `source` attribute (default `/chat-service`).
    pub source: String,
    /// How long librdkafka keeps trying to deliver one message before giving up
    /// (`message.timeout.ms`, default 10 s); `publish` returns no later than this
    /// plus a small margin (twice that when the producer is replaced meanwhile). The
    /// relay's lease must be longer. A producer that delivers nothing for two of these
    /// while the broker answers is replaced.
    pub message_timeout: Duration,
    /// How long to wait for more messages to fill a batch (`linger.ms`, default 5 ms).
    pub linger: Duration,
    /// Batch compression (default zstd).
    pub compression: Compression,
    /// `security.protocol`: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`
    /// (`KAFKA_SECURITY_PROTOCOL`).
    pub security_protocol: Option<String>,
    /// `sasl.mechanism`: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`
    /// (`KAFKA_SASL_MECHANISM`).
    pub sasl_mechanism: Option<String>,
    /// `sasl.username` (`KAFKA_SASL_USERNAME`).
    pub sasl_username: Option<String>,
    /// `sasl.password` (`KAFKA_SASL_PASSWORD`), never printed.
    pub sasl_password: Option<SecretString>,
    /// `ssl.ca.location`: CA bundle to verify the brokers (`KAFKA_SSL_CA_LOCATION`).
    pub ssl_ca_location: Option<String>,
    /// Any other librdkafka property, applied last (so it can override the above).
    /// Values are treated as secrets: they are not printed.
    pub extra: BTreeMap<String, SecretString>,
}

/// Topic used when none is configured.
pub const DEFAULT_TOPIC: &str = "chat-events";

impl KafkaConfig {
    /// Settings for `brokers` with every other value at its default.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: DEFAULT_TOPIC.to_owned(),
            client_id: "chat-service".to_owned(),
            source: "/chat-service".to_owned(),
            message_timeout: Duration::from_secs(10),
            linger: Duration::from_millis(5),
            compression: Compression::default(),
            security_protocol: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            extra: BTreeMap::new(),
        }
    }

    /// Checks the settings; each problem names its environment key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            problems.push("KAFKA_BROKERS: no broker address given".to_owned());
        }
        if !valid_topic(&self.topic) {
            problems.push(format!(
                "KAFKA_TOPIC: {:?} is not a valid topic name (1-249 of [a-zA-Z0-9._-])",
                self.topic
            ));
        }
        if self.message_timeout.is_zero() || self.message_timeout.as_millis() > i32::MAX as u128 {
            problems.push("KAFKA_MESSAGE_TIMEOUT_MS: must be between 1 ms and 24 days".to_owned());
        }
        if let Some(p) = &self.security_protocol {
            let known = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
            if !known.contains(&p.to_ascii_lowercase().as_str()) {
                problems.push(format!(
                    "KAFKA_SECURITY_PROTOCOL: {p:?} is not one of {}",
                    known.join(", ")
                ));
            }
        }
        if self.sasl_mechanism.is_some()
            && (self.sasl_username.is_none() || self.sasl_password.is_none())
        {
            problems.push(
                "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM"
                    .to_owned(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The librdkafka producer configuration: idempotent, `acks=all`, at most
    /// 5 requests in flight (order kept), murmur2 partitioning like the Java client,
    /// reconnecting at least every second to a broker that went away (librdkafka's
    /// default backoff grows to 10 s, which would delay the drain after an outage).
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("partitioner", "murmur2_random")
            .set("compression.type", self.compression.as_str())
            .set("message.timeout.ms", millis(self.message_timeout))
            .set("linger.ms", millis(self.linger))
            .set("reconnect.backoff.max.ms", "1000");
        let optional = [
            ("security.protocol", self.security_protocol.as_deref()),
            ("sasl.mechanism", self.sasl_mechanism.as_deref()),
            ("sasl.username", self.sasl_username.as_deref()),
            (
                "sasl.password",
                self.sasl_password.as_ref().map(SecretString::expose),
            ),
            ("ssl.ca.location", self.ssl_ca_location.as_deref()),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                c.set(key, v);
            }
        }
        for (key, value) in &self.extra {
            c.set(key, value.expose());
        }
        c
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().min(i32::MAX as u128).to_string()
}

fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = KafkaConfig::new("localhost:9092");
        assert_eq!(c.topic, "chat-events");
        assert_eq!(c.compression, Compression::Zstd);
        assert!(c.validate().is_ok());
        let p = c.producer_config();
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("max.in.flight.requests.per.connection"), Some("5"));
        assert_eq!(p.get("message.timeout.ms"), Some("10000"));
        assert_eq!(p.get("reconnect.backoff.max.ms"), Some("1000"));
        assert_eq!(p.get("compression.type"), Some("zstd"));
        assert_eq!(p.get("sasl.password"), None);
    }

    #[test]
    fn security_settings_pass_through_and_extra_overrides() {
        let mut c = KafkaConfig::new("b:9093");
        c.security_protocol = Some("SASL_SSL".into());
        c.sasl_mechanism = Some("SCRAM-SHA-512".into());
        c.sasl_username = Some("svc".into());
        c.sasl_password = Some(SecretString::new("hunter2"));
        c.ssl_ca_location = Some("/etc/ca.pem".into());
        c.extra
            .insert("linger.ms".into(), SecretString::new("20".to_owned()));
        assert!(c.validate().is_ok());
        let p = c.producer_config();
        assert_eq!(p.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(p.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(p.get("sasl.username"), Some("svc"));
        assert_eq!(p.get("sasl.password"), Some("hunter2"));
        assert_eq!(p.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(p.get("linger.ms"), Some("20"));
    }

    #[test]
    fn secrets_never_print() {
        let mut c = KafkaConfig::new("b:9093");
        c.sasl_password = Some(SecretString::new("hunter2"));
        c.extra
            .insert("ssl.key.password".into(), "pw".to_owned().into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("\"pw\""));
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn validation_names_every_bad_key() {
        let mut c = KafkaConfig::new(" , ");
        c.topic = "bad topic".into();
        c.message_timeout = Duration::ZERO;
        c.security_protocol = Some("tls".into());
        c.sasl_mechanism = Some("PLAIN".into());
        let problems = c.validate().unwrap_err();
        for key in [
            "KAFKA_BROKERS",
            "KAFKA_TOPIC",
            "KAFKA_MESSAGE_TIMEOUT",
            "KAFKA_SECURITY_PROTOCOL",
            "KAFKA_SASL_USERNAME",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key} missing from {problems:?}"
            );
        }
    }

    #[test]
    fn topic_names() {
        assert!(valid_topic("chat-events"));
        assert!(valid_topic("a.b_c-1"));
        assert!(!valid_topic(""));
        assert!(!valid_topic(".."));
        assert!(!valid_topic(&"t".repeat(250)));
        assert!(!valid_topic("a/b"));
    }

    #[test]
    fn compression_names_round_trip() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert_eq!(Compression::parse(c.as_str()), Some(c));
        }
        assert_eq!(Compression::parse("LZ4"), Some(Compression::Lz4));
        assert_eq!(Compression::parse("brotli"), None);
    }
}
