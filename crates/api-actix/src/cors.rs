//! CORS for browser front ends: only the configured origins (none by default) may
//! call the API from another origin; `*` allows any origin (tokens travel in the
//! `Authorization` header, never in cookies, so no credentials are allowed).

use actix_cors::Cors;
use actix_web::http::{header, Method};

/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_SECS: usize = 3600;

/// Why an origin is not acceptable, if it is not: an origin is `scheme://host[:port]`
/// with no path, or `*`.
pub fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!(
            "{origin:?} is not an origin such as https://app.example.com"
        ));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("{origin:?} must start with http:// or https://"));
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '*']) {
        return Err(format!(
            "{origin:?} must be scheme://host[:port], without a path or wildcard"
        ));
    }
    origin
        .parse::<actix_web::http::Uri>()
        .map(|_| ())
        .map_err(|_| format!("{origin:?} is not a valid origin"))
}

/// The CORS middleware for these allowed origins (validated by [`check_origin`] when
/// the configuration was loaded). With no origin configured the service does not wrap
/// it at all: cross-origin browser calls then get no CORS headers and fail.
pub fn middleware(allowed_origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static(crate::request_id::HEADER),
        ])
        .expose_headers([
            header::HeaderName::from_static(crate::request_id::HEADER),
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
        ])
        .max_age(MAX_AGE_SECS);
    if allowed_origins.iter().any(|o| o == "*") {
        return cors.allow_any_origin().send_wildcard();
    }
    for origin in allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        for ok in ["https://app.example.com", "http://localhost:3000", "*"] {
            assert!(check_origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "app.example.com",
            "ftp://x",
            "https://x/path",
            "https://*.example.com",
            "https://",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
