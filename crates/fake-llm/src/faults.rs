//! Which fault, if any, a request gets: an `x-fake-fault` header or a `[fault:…]`
//! marker in the last user message (optionally only for the first N such requests),
//! else a random one at the configured rate.

use crate::config::{FakeLlmConfig, FaultKind, UnknownFault};
use std::collections::HashMap;
use std::sync::Mutex;

/// An explicit fault request: `KIND`, or `KINDxN` for "only the first N times".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSpec {
    /// The fault to play.
    pub kind: FaultKind,
    /// Play it only for the first this many matching requests (`None` = always).
    pub times: Option<u32>,
}

impl FaultSpec {
    /// Parses `429`, `cut`, `429x1`, `stall-midx3`, ….
    pub fn parse(s: &str) -> Result<Self, UnknownFault> {
        let s = s.trim();
        if let Some((kind, n)) = s.rsplit_once(['x', 'X']) {
            if let (Ok(kind), Ok(n)) = (kind.parse::<FaultKind>(), n.parse::<u32>()) {
                return Ok(Self {
                    kind,
                    times: Some(n),
                });
            }
        }
        Ok(Self {
            kind: s.parse()?,
            times: None,
        })
    }
}

const MARKER: &str = "[fault:";

/// The fault spec written in a message as `[fault:SPEC]`, if any.
pub fn marker(text: &str) -> Option<&str> {
    let start = text.find(MARKER)? + MARKER.len();
    let len = text[start..].find(']')?;
    Some(&text[start..start + len])
}

/// The message without its `[fault:…]` markers.
pub fn strip_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARKER) {
        out.push_str(&rest[..start]);
        match rest[start..].find(']') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Picks faults for requests; remembers how often each counted spec was played.
#[derive(Debug, Default)]
pub struct FaultPicker {
    played: Mutex<HashMap<String, u32>>,
}

impl FaultPicker {
    /// The fault for a request with this header value and last user message.
    /// An unparsable explicit spec is an error (the request gets a 400).
    pub fn pick(
        &self,
        config: &FakeLlmConfig,
        header: Option<&str>,
        last_user: &str,
    ) -> Result<Option<FaultKind>, UnknownFault> {
        let explicit = header
            .filter(|h| !h.trim().is_empty())
            .or_else(|| marker(last_user));
        if let Some(text) = explicit {
            let spec = FaultSpec::parse(text)?;
            let Some(times) = spec.times else {
                return Ok(Some(spec.kind));
            };
            let key = format!("{text}\u{0}{last_user}");
            let mut played = self
                .played
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = played.entry(key).or_insert(0);
            *count = count.saturating_add(1);
            return Ok((*count <= times).then_some(spec.kind));
        }
        if config.fault_rate > 0.0
            && !config.fault_kinds.is_empty()
            && rand::random::<f64>() < config.fault_rate
        {
            let i = rand::random::<usize>() % config.fault_kinds.len();
            return Ok(Some(config.fault_kinds[i]));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            FaultSpec::parse("429x2"),
            Ok(FaultSpec {
                kind: FaultKind::RateLimited,
                times: Some(2)
            })
        );
        assert_eq!(
            FaultSpec::parse("stall-mid").map(|s| s.kind),
            Ok(FaultKind::StallMid)
        );
        assert_eq!(FaultSpec::parse("cut").map(|s| s.times), Ok(None));
        assert!(FaultSpec::parse("x1").is_err());
    }

    #[test]
    fn markers_are_found_and_stripped() {
        assert_eq!(marker("hi [fault:429x1] there"), Some("429x1"));
        assert_eq!(marker("hi"), None);
        assert_eq!(strip_markers("hi [fault:cut] there"), "hi  there");
        assert_eq!(strip_markers("[fault:cut"), "[fault:cut");
    }

    #[test]
    fn counted_faults_stop_after_n() {
        let picker = FaultPicker::default();
        let config = FakeLlmConfig::default();
        let pick = |m: &str| picker.pick(&config, None, m).unwrap();
        assert_eq!(pick("a [fault:500x2]"), Some(FaultKind::ServerError));
        assert_eq!(pick("b [fault:500x2]"), Some(FaultKind::ServerError));
        assert_eq!(pick("a [fault:500x2]"), Some(FaultKind::ServerError));
        assert_eq!(pick("a [fault:500x2]"), None);
        assert_eq!(pick("a [fault:500]"), Some(FaultKind::ServerError));
        assert_eq!(pick("plain"), None);
    }

    #[test]
    fn the_rate_picks_from_the_kinds() {
        let picker = FaultPicker::default();
        let config = FakeLlmConfig {
            fault_rate: 1.0,
            fault_kinds: vec![FaultKind::Cut],
            ..FakeLlmConfig::default()
        };
        assert_eq!(
            picker.pick(&config, None, "x").unwrap(),
            Some(FaultKind::Cut)
        );
    }
}
