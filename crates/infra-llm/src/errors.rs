//! Classifying provider failures: HTTP statuses and transport errors into the port's
//! `LlmError`, whether to retry, `Retry-After`, and safe provider messages (truncated,
//! with our key and anything that looks like a key redacted).

use crate::wire::WireErrorBody;
use domain::ports::{LlmError, TimeoutKind};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use std::time::{Duration, SystemTime};

/// The text of a stream that ended (or broke) before `data: [DONE]`.
pub const CUT: &str = "cut";

/// Longest provider message passed on, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Longest `Retry-After` we keep; beyond it the value is not believable.
const MAX_BELIEVABLE_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One failed attempt, and whether another attempt may help.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: LlmError,
    pub(crate) retriable: bool,
    pub(crate) retry_after: Option<Duration>,
}

impl Failure {
    /// A failure another attempt would not fix.
    pub(crate) fn fatal(error: LlmError) -> Self {
        Self {
            error,
            retriable: false,
            retry_after: None,
        }
    }

    /// A failure worth another attempt.
    pub(crate) fn retriable(error: LlmError) -> Self {
        Self {
            error,
            retriable: true,
            retry_after: None,
        }
    }

    /// A non-success HTTP response.
    pub(crate) fn from_status(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        secret: Option<&str>,
    ) -> Self {
        let code = status.as_u16();
        let retry_after = retry_after(headers, SystemTime::now());
        match code {
            401 | 403 => Self::fatal(LlmError::Unauthorized),
            429 => Self {
                error: LlmError::RateLimited { retry_after },
                retriable: true,
                retry_after,
            },
            408 | 500..=599 => Self {
                error: LlmError::Upstream { status: Some(code) },
                retriable: code != 501,
                retry_after,
            },
            400..=499 => Self::fatal(LlmError::BadRequest(provider_message(status, body, secret))),
            _ => Self::fatal(LlmError::Upstream { status: Some(code) }),
        }
    }

    /// A transport error while sending the request or reading the response head.
    pub(crate) fn from_transport(e: &reqwest::Error) -> Self {
        if e.is_connect() && e.is_timeout() {
            Self::retriable(LlmError::Timeout(TimeoutKind::Connect))
        } else if e.is_builder() {
            Self::fatal(LlmError::Upstream { status: None })
        } else {
            Self::retriable(LlmError::Upstream { status: None })
        }
    }
}

/// The provider's explanation of a refused request, safe to store and show.
pub(crate) fn provider_message(status: StatusCode, body: &[u8], secret: Option<&str>) -> String {
    let message = serde_json::from_slice::<WireErrorBody>(body)
        .ok()
        .and_then(WireErrorBody::into_message)
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| match status.canonical_reason() {
            Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
            None => format!("HTTP {}", status.as_u16()),
        });
    sanitize(&message, secret)
}

/// Redacts `secret` and key-like words (`sk-…`), flattens control characters and
/// truncates to a few hundred characters.
pub(crate) fn sanitize(message: &str, secret: Option<&str>) -> String {
    let mut text = message.to_owned();
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    let text = redact_key_like(&text);
    let mut out: String = text
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Replaces words starting with `sk-` (the usual shape of provider keys).
fn redact_key_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("sk-") {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        if before
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
        {
            out.push_str("sk-");
            rest = &after[3..];
        } else {
            out.push_str("[redacted]");
            let end = after
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '.' | ')' | ']' | '}')
                })
                .unwrap_or(after.len());
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

/// How long the provider asked us to wait: `retry-after-ms` (OpenAI, Azure) or
/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let parsed = if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    } else {
        let value = text("retry-after")?;
        match value.parse::<f64>() {
            Ok(secs) => Duration::try_from_secs_f64(secs).ok(),
            Err(_) => {
                let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
                let at = SystemTime::from(date.with_timezone(&chrono::Utc));
                Some(at.duration_since(now).unwrap_or(Duration::ZERO))
            }
        }
    };
    parsed.map(|d| d.min(MAX_BELIEVABLE_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn statuses_map_to_port_errors() {
        let h = HeaderMap::new();
        let f =
            |code: u16| Failure::from_status(StatusCode::from_u16(code).unwrap(), &h, b"", None);
        assert_eq!(f(401).error, LlmError::Unauthorized);
        assert_eq!(f(403).error, LlmError::Unauthorized);
        assert!(!f(401).retriable);
        assert!(f(429).retriable);
        assert_eq!(f(429).error, LlmError::RateLimited { retry_after: None });
        assert_eq!(f(503).error, LlmError::Upstream { status: Some(503) });
        assert!(f(503).retriable && f(408).retriable && !f(501).retriable);
        for code in [400, 404, 413, 422] {
            assert!(matches!(f(code).error, LlmError::BadRequest(_)), "{code}");
            assert!(!f(code).retriable);
        }
    }

    #[test]
    fn bad_request_carries_the_provider_message_without_our_key() {
        let body = br#"{"error":{"message":"context too long for key sk-live-ABC and mykey123","code":"x"}}"#;
        let f = Failure::from_status(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            body,
            Some("mykey123"),
        );
        assert_eq!(
            f.error,
            LlmError::BadRequest("context too long for key [redacted] and [redacted]".into())
        );
    }

    #[test]
    fn non_json_error_body_gives_the_status() {
        assert_eq!(
            provider_message(StatusCode::NOT_FOUND, b"<html>", None),
            "HTTP 404 Not Found"
        );
    }

    #[test]
    fn long_messages_are_truncated_and_control_chars_flattened() {
        let long = format!("a\nb{}", "x".repeat(1000));
        let s = sanitize(&long, None);
        assert!(s.starts_with("a b"));
        assert_eq!(s.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(sanitize("ask-me risk-free", None), "ask-me risk-free");
    }

    #[test]
    fn retry_after_in_seconds_ms_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 2015-10-21T07:27:50Z
        assert_eq!(
            retry_after(&headers("retry-after", "3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers("retry-after", "0.5"), now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            retry_after(&headers("retry-after-ms", "250"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(
                &headers("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
                now
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(
                &headers("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT"),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("retry-after", "soon"), now), None);
        assert_eq!(retry_after(&headers("retry-after", "-1"), now), None);
        assert_eq!(
            retry_after(&headers("retry-after", "99999999"), now),
            Some(MAX_BELIEVABLE_RETRY_AFTER)
        );
    }
}
