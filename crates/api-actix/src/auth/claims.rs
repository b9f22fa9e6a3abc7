//! The registered claims of a token whose signature and algorithm jsonwebtoken has
//! verified: checked here, one by one, so a refusal names the claim that is missing or
//! wrong (RFC 7519 §4.1: `exp` and `nbf` are NumericDates, `aud` a string or an array of
//! strings, `iss` and `sub` strings).

use serde_json::{Map, Value};

/// What the service requires of the claims.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The required `iss`, if any.
    pub issuer: Option<String>,
    /// The audience `aud` must hold, if any (not checked otherwise).
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

/// Why the claims are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// A required claim is absent.
    #[error("the token lacks the required claim `{0}`")]
    Missing(&'static str),
    /// A claim has the wrong type.
    #[error("the token's `{0}` claim must be {1}")]
    WrongType(&'static str, &'static str),
    /// `exp` has passed.
    #[error("the token has expired (`exp`)")]
    Expired,
    /// `nbf` has not come yet.
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer (`iss`) is not accepted")]
    Issuer,
    /// `aud` does not hold the configured audience.
    #[error("the token's audience (`aud`) does not include this service")]
    Audience,
}

const NUMERIC_DATE: &str = "a NumericDate (seconds since the epoch, a number)";

/// A NumericDate claim, if present.
fn date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, ClaimError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or(ClaimError::WrongType(name, NUMERIC_DATE)),
        Some(_) => Err(ClaimError::WrongType(name, NUMERIC_DATE)),
    }
}

fn string<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, ClaimError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ClaimError::WrongType(name, "a string")),
    }
}

/// Checks `claims` against `rules` at `now` (seconds since the epoch); returns `sub`.
pub fn check(claims: &Map<String, Value>, rules: &Rules, now: i64) -> Result<String, ClaimError> {
    let now = now as f64;
    let leeway = rules.leeway_secs as f64;
    let exp = date(claims, "exp")?.ok_or(ClaimError::Missing("exp"))?;
    if exp < now - leeway {
        return Err(ClaimError::Expired);
    }
    if date(claims, "nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(ClaimError::NotYetValid);
    }
    date(claims, "iat")?;
    let sub = string(claims, "sub")?.ok_or(ClaimError::Missing("sub"))?;
    if let Some(want) = &rules.issuer {
        let iss = string(claims, "iss")?.ok_or(ClaimError::Missing("iss"))?;
        if iss != want {
            return Err(ClaimError::Issuer);
        }
    }
    if let Some(want) = &rules.audience {
        const AUD: &str = "a string or an array of strings";
        let holds = match claims.get("aud") {
            None => return Err(ClaimError::Missing("aud")),
            Some(Value::String(s)) => s == want,
            Some(Value::Array(items)) => {
                let mut holds = false;
                for item in items {
                    match item {
                        Value::String(s) => holds |= s == want,
                        _ => return Err(ClaimError::WrongType("aud", AUD)),
                    }
                }
                holds
            }
            Some(_) => return Err(ClaimError::WrongType("aud", AUD)),
        };
        if !holds {
            return Err(ClaimError::Audience);
        }
    }
    Ok(sub.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn run(claims: Value, rules: &Rules) -> Result<String, ClaimError> {
        check(claims.as_object().unwrap(), rules, NOW)
    }

    fn strict() -> Rules {
        Rules {
            issuer: Some("https://id.example".into()),
            audience: Some("chat".into()),
            leeway_secs: 30,
        }
    }

    fn good() -> Value {
        json!({"sub": "alice", "exp": NOW + 60, "iss": "https://id.example", "aud": "chat"})
    }

    fn with(key: &str, v: Value) -> Value {
        let mut c = good();
        c[key] = v;
        c
    }

    fn without(key: &str) -> Value {
        let mut c = good();
        c.as_object_mut().unwrap().remove(key);
        c
    }

    #[test]
    fn a_good_token_yields_its_subject() {
        assert_eq!(run(good(), &strict()).unwrap(), "alice");
        assert_eq!(
            run(with("exp", json!(NOW as f64 + 0.5)), &strict()).unwrap(),
            "alice"
        );
    }

    #[test]
    fn each_missing_claim_is_named() {
        for claim in ["exp", "sub", "iss", "aud"] {
            assert_eq!(
                run(without(claim), &strict()),
                Err(ClaimError::Missing(claim))
            );
        }
        // Without configured issuer and audience, those claims are not required.
        let lax = Rules::default();
        assert!(run(json!({"sub": "a", "exp": NOW + 60}), &lax).is_ok());
    }

    #[test]
    fn each_claim_of_the_wrong_type_is_named() {
        for (claim, v) in [
            ("exp", json!("tomorrow")),
            ("nbf", json!("yesterday")),
            ("nbf", json!(null)),
            ("iat", json!([1])),
            ("sub", json!(7)),
            ("iss", json!(["https://id.example"])),
            ("aud", json!(7)),
            ("aud", json!(["chat", 7])),
        ] {
            assert!(
                matches!(run(with(claim, v.clone()), &strict()), Err(ClaimError::WrongType(c, _)) if c == claim),
                "{claim} = {v}"
            );
        }
    }

    #[test]
    fn times_hold_with_the_leeway() {
        assert!(run(with("exp", json!(NOW - 10)), &strict()).is_ok());
        assert_eq!(
            run(with("exp", json!(NOW - 31)), &strict()),
            Err(ClaimError::Expired)
        );
        assert!(run(with("nbf", json!(NOW + 10)), &strict()).is_ok());
        assert_eq!(
            run(with("nbf", json!(NOW + 31)), &strict()),
            Err(ClaimError::NotYetValid)
        );
    }

    #[test]
    fn the_audience_may_be_an_array_holding_it() {
        assert!(run(with("aud", json!(["other", "chat"])), &strict()).is_ok());
        assert_eq!(
            run(with("aud", json!(["other"])), &strict()),
            Err(ClaimError::Audience)
        );
        assert_eq!(
            run(with("aud", json!([])), &strict()),
            Err(ClaimError::Audience)
        );
        assert_eq!(
            run(with("aud", json!("other")), &strict()),
            Err(ClaimError::Audience)
        );
        assert_eq!(
            run(with("iss", json!("evil")), &strict()),
            Err(ClaimError::Issuer)
        );
    }
}
