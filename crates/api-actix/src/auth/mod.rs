//! Bearer-token authentication: JWT verification (HS256 secret, or RS256/ES256 public
//! key; algorithm pinned, `exp` and `sub` required, each claim type-checked), dev-token
//! minting, and the `AuthUser` extractor that yields the caller.

pub mod claims;

use crate::config::{AuthSettings, JwtAlgorithm, Secret};
use crate::error::ApiError;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use domain::UserId;
use jsonwebtoken::{encode, Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::future::{ready, Ready};

/// The claims the service reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Verifies tokens: the pinned algorithm, the signature (jsonwebtoken's crypto), then
/// [`claims::check`] the claims.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    algorithm: Algorithm,
    rules: claims::Rules,
    /// For minting dev tokens (HS256 only).
    secret: Option<Secret>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn read_pem(value: &str) -> anyhow::Result<Vec<u8>> {
    if value.contains("-----BEGIN") {
        Ok(value.as_bytes().to_vec())
    } else {
        std::fs::read(value)
            .map_err(|e| anyhow::anyhow!("cannot read the public key file {value:?}: {e}"))
    }
}

impl JwtVerifier {
    /// A verifier for the configured algorithm; `secret` is the HS256 secret in use
    /// (configured or generated).
    pub fn new(settings: &AuthSettings, secret: Option<Secret>) -> anyhow::Result<Self> {
        let (alg, key) = match settings.algorithm {
            JwtAlgorithm::Hs256 => {
                let s = secret
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("HS256 needs a secret"))?;
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(s.expose().as_bytes()),
                )
            }
            JwtAlgorithm::Rs256 => {
                let pem = read_pem(settings.jwt_public_key.as_deref().unwrap_or_default())?;
                (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_pem(&pem)
                        .map_err(|e| anyhow::anyhow!("JWT_PUBLIC_KEY: {e}"))?,
                )
            }
            JwtAlgorithm::Es256 => {
                let pem = read_pem(settings.jwt_public_key.as_deref().unwrap_or_default())?;
                (
                    Algorithm::ES256,
                    DecodingKey::from_ec_pem(&pem)
                        .map_err(|e| anyhow::anyhow!("JWT_PUBLIC_KEY: {e}"))?,
                )
            }
        };
        let rules = claims::Rules {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_secs: settings.leeway_secs,
        };
        let secret = if settings.algorithm == JwtAlgorithm::Hs256 {
            secret
        } else {
            None
        };
        Ok(Self {
            key,
            algorithm: alg,
            rules,
            secret,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    /// The user a token speaks for, or why it is refused (by the kind of the error).
    pub fn verify(&self, token: &str) -> Result<UserId, ApiError> {
        let payload = self.verified_claims(token)?;
        let sub = claims::check(&payload, &self.rules, chrono::Utc::now().timestamp())
            .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
        UserId::parse(&sub)
            .map_err(|e| ApiError::Unauthorized(format!("the token's subject is not valid: {e}")))
    }

    /// The claims of a token whose header names the pinned algorithm and whose
    /// signature jsonwebtoken verifies (as its `decode` does, without its claim checks,
    /// which cannot say which claim has the wrong type).
    fn verified_claims(
        &self,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        use base64::Engine;
        use jsonwebtoken::errors::ErrorKind as K;
        let refuse = |why: &str| ApiError::Unauthorized(why.to_owned());
        let not_jwt = || refuse("the token is not a valid JWT");
        let (message, signature) = token.rsplit_once('.').ok_or_else(not_jwt)?;
        let (_, payload) = message.rsplit_once('.').ok_or_else(not_jwt)?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            K::InvalidAlgorithmName => {
                refuse("the token is not signed with the expected algorithm")
            }
            _ => refuse("the token's header is not valid"),
        })?;
        if header.alg != self.algorithm {
            return Err(refuse(
                "the token is not signed with the expected algorithm",
            ));
        }
        match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &self.key, self.algorithm)
        {
            Ok(true) => {}
            Ok(false) => return Err(refuse("the token's signature is not valid")),
            Err(e) => {
                return Err(match e.kind() {
                    K::InvalidAlgorithm => {
                        refuse("the token is not signed with the expected algorithm")
                    }
                    _ => refuse("the token's signature is not valid"),
                })
            }
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| refuse("the token's claims are not base64url"))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| refuse("the token's claims are not a JSON object"))
    }

    /// Mints an HS256 token for `sub`, valid for `ttl_secs`; `None` without a secret.
    pub fn mint(&self, sub: &str, ttl_secs: u64) -> Option<String> {
        mint(
            self.secret.as_ref()?,
            sub,
            ttl_secs,
            self.issuer.clone(),
            self.audience.clone(),
        )
        .ok()
    }
}

/// Mints an HS256 token.
pub fn mint(
    secret: &Secret,
    sub: &str,
    ttl_secs: u64,
    iss: Option<String>,
    aud: Option<String>,
) -> anyhow::Result<String> {
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let claims = Claims {
        sub: sub.to_owned(),
        exp: now + ttl_secs,
        iat: Some(now),
        iss,
        aud,
    };
    Ok(encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )?)
}

/// A random HS256 secret for development runs.
pub fn generate_secret() -> Secret {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let mut values = req
        .headers()
        .get_all(actix_web::http::header::AUTHORIZATION);
    let value = values.next().ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
    })?;
    if values.next().is_some() {
        return Err(ApiError::Unauthorized(
            "send one Authorization header, not several".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <token>`".into(),
        )),
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = (|| {
            let verifier = req
                .app_data::<web::Data<JwtVerifier>>()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no JwtVerifier configured")))?;
            let user = verifier.verify(bearer(req)?)?;
            Ok(AuthUser(user))
        })();
        ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A throw-away P-256 key pair, for this test only.
    const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7D9hd00cxWKp2mfK
RkfbQS2srklQC9TFb6ruAynzWZehRANCAATOh/ONPTUuq9+RZTzY5tMz0NGWGFkJ
C9TdDpOLn9NQcmEKyVI762bMxPnLknqbrtj3RAD3hJFPclDk47JvOve9
-----END PRIVATE KEY-----";
    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEzofzjT01LqvfkWU82ObTM9DRlhhZ
CQvU3Q6Ti5/TUHJhCslSO+tmzMT5y5J6m67Y90QA94SRT3JQ5OOybzr3vQ==
-----END PUBLIC KEY-----";

    fn settings(algorithm: JwtAlgorithm, key: Option<&str>) -> AuthSettings {
        AuthSettings {
            algorithm,
            jwt_secret: None,
            jwt_public_key: key.map(str::to_owned),
            issuer: None,
            audience: None,
            leeway_secs: 30,
        }
    }

    fn claims() -> serde_json::Value {
        json!({"sub": "alice", "exp": chrono::Utc::now().timestamp() + 600})
    }

    #[test]
    fn es256_tokens_are_verified_with_the_public_key() {
        let v = JwtVerifier::new(&settings(JwtAlgorithm::Es256, Some(EC_PUBLIC)), None).unwrap();
        let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let t = encode(&Header::new(Algorithm::ES256), &claims(), &key).unwrap();
        assert_eq!(v.verify(&t).unwrap().as_str(), "alice");
        // Tampered claims break the signature.
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"sub": "mallory", "exp": chrono::Utc::now().timestamp() + 600}).to_string(),
        );
        let e = v.verify(&format!("{head}.{forged}.{sig}")).unwrap_err();
        assert!(e.to_string().contains("signature"), "{e}");
        // An HS256 token (even signed with the public key's text as secret) is refused.
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(EC_PUBLIC.as_bytes()),
        )
        .unwrap();
        assert!(v.verify(&hs).unwrap_err().to_string().contains("algorithm"));
    }

    #[test]
    fn hs256_tokens_need_the_secret() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let v =
            JwtVerifier::new(&settings(JwtAlgorithm::Hs256, None), Some(secret.clone())).unwrap();
        let t = mint(&secret, "bob", 60, None, None).unwrap();
        assert_eq!(v.verify(&t).unwrap().as_str(), "bob");
        for bad in ["", "a.b", "a.b.c", "..", &format!("{t}x")] {
            assert!(v.verify(bad).is_err(), "{bad}");
        }
    }
}
