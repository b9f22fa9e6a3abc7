//! Per-user rate limits as middleware, so handlers stay thin: one token bucket over
//! the whole API and one over sends (send and regenerate), keyed by the token's user.
//! A request over the limit gets a 429 problem with `Retry-After`.

pub mod bucket;

use crate::auth::AuthUser;
use crate::config::RateLimitSettings;
use crate::error::ApiError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest};
pub use bucket::Limiter;
use std::time::{Duration, Instant};

/// The routes that count as sends (with `POST`).
pub const SEND_ROUTES: &[&str] = &["/api/v1/messages", "/api/v1/messages/{id}/regenerate"];

/// The configured limits; a `None` limit is off.
#[derive(Debug)]
pub struct RateLimits {
    /// Every authenticated API request.
    pub api: Option<Limiter>,
    /// Sends and regenerates.
    pub sends: Option<Limiter>,
}

impl RateLimits {
    /// The limits of these settings (a zero rate turns one off).
    pub fn new(s: &RateLimitSettings) -> Self {
        Self {
            api: Limiter::new(s.api_per_sec, s.api_burst),
            sends: Limiter::new(s.sends_per_min / 60.0, s.sends_burst),
        }
    }

    fn is_off(&self) -> bool {
        self.api.is_none() && self.sends.is_none()
    }

    /// Takes a token for `user` from the buckets this request counts against.
    fn check(&self, user: &str, is_send: bool, now: Instant) -> Result<(), Duration> {
        if let Some(api) = &self.api {
            api.check(user, now)?;
        }
        match &self.sends {
            Some(sends) if is_send => sends.check(user, now),
            _ => Ok(()),
        }
    }
}

fn is_send(req: &ServiceRequest) -> bool {
    req.method() == Method::POST
        && req
            .match_pattern()
            .is_some_and(|p| SEND_ROUTES.contains(&p.as_str()))
}

/// Whole seconds to wait, rounded up, at least one.
fn retry_after(wait: Duration) -> Duration {
    Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64)
}

/// Middleware: answers 429 when the caller's bucket is empty. Requests without a
/// valid token are left to the handlers (which answer 401).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limited = req
        .app_data::<web::Data<RateLimits>>()
        .filter(|l| !l.is_off() && req.path().starts_with("/api/"))
        .cloned();
    let Some(limits) = limited else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let user = AuthUser::from_request(req.request(), &mut Payload::None).into_inner();
    let Ok(AuthUser(user)) = user else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    if let Err(wait) = limits.check(user.as_str(), is_send(&req), Instant::now()) {
        let err = ApiError::TooManyRequests {
            retry_after: retry_after(wait),
        };
        return Ok(req.error_response(err).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(
            retry_after(Duration::from_millis(10)),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry_after(Duration::from_millis(1500)),
            Duration::from_secs(2)
        );
        assert_eq!(retry_after(Duration::from_secs(3)), Duration::from_secs(3));
    }

    #[test]
    fn sends_count_against_both_buckets() {
        let limits = RateLimits::new(&RateLimitSettings {
            api_per_sec: 1.0,
            api_burst: 3,
            sends_per_min: 1.0,
            sends_burst: 1,
        });
        let t = Instant::now();
        assert!(limits.check("a", true, t).is_ok());
        let wait = limits.check("a", true, t).unwrap_err();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert!(limits.check("a", false, t).is_ok());
        assert!(limits.check("a", false, t).is_err(), "api burst spent");
    }
}
