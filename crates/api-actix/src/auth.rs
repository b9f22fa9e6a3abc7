//! Bearer-token authentication: JWT verification (HS256 secret, or RS256/ES256 public
//! key; algorithm pinned, `exp` required), dev-token minting, and the `AuthUser`
//! extractor that yields the caller.

use crate::config::{AuthSettings, JwtAlgorithm, Secret};
use crate::error::ApiError;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use domain::UserId;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
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

/// Verifies tokens.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    /// For minting dev tokens (HS256 only).
    secret: Option<Secret>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
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
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if settings.issuer.is_some() {
            required.push("iss");
        }
        if settings.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match &settings.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let secret = if settings.algorithm == JwtAlgorithm::Hs256 {
            secret
        } else {
            None
        };
        Ok(Self {
            key,
            validation,
            secret,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    /// The user a token speaks for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<UserId, ApiError> {
        let data = decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::ExpiredSignature => "the token has expired",
                K::InvalidSignature => "the token's signature is not valid",
                K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                    "the token is not signed with the expected algorithm"
                }
                K::MissingRequiredClaim(_) => "the token lacks a required claim (sub, exp)",
                K::InvalidIssuer => "the token's issuer is not accepted",
                K::InvalidAudience => "the token's audience is not accepted",
                K::ImmatureSignature => "the token is not valid yet",
                _ => "the token is not a valid JWT",
            };
            ApiError::Unauthorized(why.into())
        })?;
        UserId::parse(&data.claims.sub)
            .map_err(|e| ApiError::Unauthorized(format!("the token's subject is not valid: {e}")))
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
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
        })?;
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
