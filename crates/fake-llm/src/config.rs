//! Settings of the fake server, and the faults it can inject.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A failure the fake can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `429 Too Many Requests` with `Retry-After` (`429`).
    RateLimited,
    /// `500 Internal Server Error` (`500`).
    ServerError,
    /// `401 Unauthorized` (`401`).
    Unauthorized,
    /// `400 Bad Request`, "context length exceeded" (`400`).
    BadRequest,
    /// The connection is closed half-way through the reply, without `[DONE]` (`cut`).
    Cut,
    /// No bytes at all for `stall` after the response head (`stall`).
    Stall,
    /// No bytes for `stall` half-way through the reply (`stall-mid`).
    StallMid,
    /// A chunk that is not JSON half-way through the reply (`malformed`).
    Malformed,
}

impl FaultKind {
    /// Every kind, in the order of their names in [`FaultKind::name`].
    pub const ALL: [FaultKind; 8] = [
        FaultKind::RateLimited,
        FaultKind::ServerError,
        FaultKind::Unauthorized,
        FaultKind::BadRequest,
        FaultKind::Cut,
        FaultKind::Stall,
        FaultKind::StallMid,
        FaultKind::Malformed,
    ];

    /// The name used in flags, headers and markers.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::RateLimited => "429",
            FaultKind::ServerError => "500",
            FaultKind::Unauthorized => "401",
            FaultKind::BadRequest => "400",
            FaultKind::Cut => "cut",
            FaultKind::Stall => "stall",
            FaultKind::StallMid => "stall-mid",
            FaultKind::Malformed => "malformed",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown fault name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault `{0}` (expected one of 429, 500, 401, 400, cut, stall, stall-mid, malformed)"
)]
pub struct UnknownFault(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

/// How the fake server behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeLlmConfig {
    /// Where to listen (port 0 picks a free port). Default `127.0.0.1:8081`.
    pub addr: SocketAddr,
    /// Wait before the first chunk. Default zero.
    pub ttft: Duration,
    /// Pace of the reply's tokens; 0 = as fast as possible (default).
    pub tokens_per_sec: u32,
    /// Tokens (words) per reply, unless the request's `max_tokens` is smaller. Default 16.
    pub reply_tokens: u32,
    /// Probability (0..=1) that a request without an explicit fault gets a random one
    /// of `fault_kinds`. Default 0.
    pub fault_rate: f64,
    /// The kinds picked at random. Default: 429, 500, cut, stall, malformed.
    pub fault_kinds: Vec<FaultKind>,
    /// `Retry-After` of an injected 429, in seconds. Default 1.
    pub retry_after_secs: u64,
    /// Length of an injected stall. Default 30 s.
    pub stall: Duration,
    /// Model name reported when the request names none. Default `fake-llm`.
    pub model: String,
    /// When set, requests must carry `Authorization: Bearer <api_key>`.
    pub api_key: Option<String>,
    /// Worker threads; 0 = one per core (default).
    pub workers: usize,
    /// Whether replies report token usage (the streamed usage chunk when the request asks
    /// for it with `stream_options.include_usage`, the `usage` of a whole reply). Default
    /// true; false plays a provider that never reports usage.
    pub report_usage: bool,
}

impl Default for FakeLlmConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            ttft: Duration::ZERO,
            tokens_per_sec: 0,
            reply_tokens: 16,
            fault_rate: 0.0,
            fault_kinds: vec![
                FaultKind::RateLimited,
                FaultKind::ServerError,
                FaultKind::Cut,
                FaultKind::Stall,
                FaultKind::Malformed,
            ],
            retry_after_secs: 1,
            stall: Duration::from_secs(30),
            model: "fake-llm".into(),
            api_key: None,
            workers: 0,
            report_usage: true,
        }
    }
}

impl FakeLlmConfig {
    /// The defaults on `127.0.0.1:0` with one worker: what tests want.
    pub fn for_tests() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 1,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
        }
        assert_eq!("CUT".parse::<FaultKind>(), Ok(FaultKind::Cut));
        assert!("nope".parse::<FaultKind>().is_err());
    }
}
