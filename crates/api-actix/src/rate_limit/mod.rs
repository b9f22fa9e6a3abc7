//! Per-user rate limits as middleware, so handlers stay thin: one token bucket over
//! the whole API and one over sends (send and regenerate), keyed by the token's user.
//! A request over the limit gets a 429 problem with `Retry-After`. The buckets live in
//! the live-reply port (in-process, or Redis shared by every replica).

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
use domain::ports::{BucketLimit, Clock, LiveReplies, Take};
use prometheus::IntCounter;
use std::sync::Arc;
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
    api_limit: Option<BucketLimit>,
    sends_limit: Option<BucketLimit>,
    shared: Option<Shared>,
}

/// Buckets kept in the live-reply port (Redis when configured: shared by every
/// replica), instead of this process's [`Limiter`]s.
struct Shared {
    live: Arc<dyn LiveReplies>,
    clock: Arc<dyn Clock>,
    failed_open: IntCounter,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl RateLimits {
    /// The limits of these settings (a zero rate turns one off).
    pub fn new(s: &RateLimitSettings) -> Self {
        let limit = |per_sec: f64, burst: u32| {
            (per_sec > 0.0 && per_sec.is_finite()).then_some(BucketLimit {
                per_sec,
                burst: burst.max(1),
            })
        };
        Self {
            api: Limiter::new(s.api_per_sec, s.api_burst),
            sends: Limiter::new(s.sends_per_min / 60.0, s.sends_burst),
            api_limit: limit(s.api_per_sec, s.api_burst),
            sends_limit: limit(s.sends_per_min / 60.0, s.sends_burst),
            shared: None,
        }
    }

    /// Takes the tokens from `live`'s buckets (so that with shared live state the limits
    /// hold across replicas). When `live` fails, the request passes (fail open) with a
    /// warning, counted in `chat_rate_limit_fail_open_total`.
    pub fn with_live(
        mut self,
        live: Arc<dyn LiveReplies>,
        clock: Arc<dyn Clock>,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let failed_open = IntCounter::new(
            "chat_rate_limit_fail_open_total",
            "Requests let through unmetered because the live state (rate-limit buckets) failed.",
        )?;
        registry.register(Box::new(failed_open.clone()))?;
        self.shared = Some(Shared {
            live,
            clock,
            failed_open,
        });
        Ok(self)
    }

    fn is_off(&self) -> bool {
        self.api.is_none() && self.sends.is_none()
    }

    /// Takes a token for `user` from the buckets this request counts against.
    async fn take(&self, user: &str, is_send: bool) -> Result<(), Duration> {
        let Some(shared) = &self.shared else {
            return self.check(user, is_send, Instant::now());
        };
        let now = shared.clock.now();
        let buckets = [
            ("api", self.api_limit),
            ("sends", self.sends_limit.filter(|_| is_send)),
        ];
        for (name, limit) in buckets {
            let Some(limit) = limit else { continue };
            let key = format!("rate:{name}:{user}");
            match shared.live.take_tokens(&key, 1, limit, now).await {
                Ok(Take::Allowed) => {}
                Ok(Take::Limited { retry_after }) => return Err(retry_after),
                Err(e) => {
                    shared.failed_open.inc();
                    tracing::warn!(error = %e, bucket = name, "rate limit unavailable; letting the request through");
                }
            }
        }
        Ok(())
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
    if let Err(wait) = limits.take(user.as_str(), is_send(&req)).await {
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
