//! HTTP metrics middleware: counts and times every request by method, matched route
//! pattern (`unmatched` otherwise) and status, tracks requests in flight and open
//! Server-Sent Events streams, and keeps idle event streams alive with comments.

use super::{counter_vec, histogram_vec, Metrics};
use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::web;
use bytes::Bytes;
use prometheus::{HistogramVec, IntCounterVec, IntGauge, Registry};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The comment sent on an idle event stream.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// How often an idle event stream gets a keep-alive comment (`None`: never).
#[derive(Debug, Clone, Copy)]
pub struct SseKeepAlive(pub Option<Duration>);

/// The HTTP families.
#[derive(Debug, Clone)]
pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    sse_active: IntGauge,
}

impl HttpMetrics {
    pub(crate) fn new(r: &Registry) -> prometheus::Result<Self> {
        let labels = &["method", "route", "status"];
        let in_flight = IntGauge::new("http_requests_in_flight", "Requests being handled.")?;
        r.register(Box::new(in_flight.clone()))?;
        let sse_active = IntGauge::new(
            "http_sse_streams_active",
            "Server-Sent Events responses still streaming.",
        )?;
        r.register(Box::new(sse_active.clone()))?;
        Ok(Self {
            requests: counter_vec(r, "http_requests_total", "Requests answered.", labels)?,
            errors: counter_vec(
                r,
                "http_request_errors_total",
                "Requests answered with an error status (class 4xx or 5xx).",
                &["method", "route", "class"],
            )?,
            latency: histogram_vec(
                r,
                "http_request_duration_seconds",
                "Time from request to response head, in seconds.",
                labels,
                LATENCY_BUCKETS,
            )?,
            in_flight,
            sse_active,
        })
    }

    /// An answer the connection guard made before any request reached the service (408,
    /// 431, a malformed request's 400): method `other`, route `unmatched`.
    pub(crate) fn record_cut(&self, status: u16) {
        self.record("other", "unmatched", status, Duration::ZERO);
    }

    fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status_label = status.to_string();
        let labels = [method, route, status_label.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
        let class = match status {
            400..=499 => Some("4xx"),
            500..=599 => Some("5xx"),
            _ => None,
        };
        if let Some(class) = class {
            self.errors.with_label_values(&[method, route, class]).inc();
        }
    }
}

/// A bounded method label: the standard methods, `other` for extension methods.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn is_event_stream(res: &ServiceResponse<impl MessageBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Middleware: records the request in the HTTP families; wraps event streams.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, SseBody>>, actix_web::Error> {
    let Some(m) = req.app_data::<web::Data<Metrics>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let method = method_label(req.method());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    m.http.in_flight.inc();
    let result = next.call(req).await;
    m.http.in_flight.dec();
    let res = match result {
        Ok(res) => res,
        Err(e) => {
            let status = e.as_response_error().status_code().as_u16();
            m.http.record(method, &route, status, started.elapsed());
            return Err(e);
        }
    };
    m.http
        .record(method, &route, res.status().as_u16(), started.elapsed());
    if !is_event_stream(&res) {
        return Ok(res.map_into_left_body());
    }
    let keep_alive = res.request().app_data::<SseKeepAlive>().and_then(|k| k.0);
    let gauge = m.http.sse_active.clone();
    Ok(res.map_body(|_, body| EitherBody::right(SseBody::new(body.boxed(), gauge, keep_alive))))
}

/// An event-stream body: counted in `http_sse_streams_active` while open, and sent
/// a `: keep-alive` comment whenever it stays idle for the keep-alive interval. The
/// inner stream must yield whole events per chunk (the send route does).
pub struct SseBody {
    inner: BoxBody,
    gauge: IntGauge,
    keep_alive: Option<Duration>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl std::fmt::Debug for SseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseBody")
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl SseBody {
    fn new(inner: BoxBody, gauge: IntGauge, keep_alive: Option<Duration>) -> Self {
        gauge.inc();
        Self {
            inner,
            gauge,
            keep_alive,
            timer: None,
            done: false,
        }
    }

    fn rearm(&mut self) {
        if let (Some(every), Some(t)) = (self.keep_alive, self.timer.as_mut()) {
            t.as_mut().reset(tokio::time::Instant::now() + every);
        }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl MessageBody for SseBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(chunk)) => {
                this.rearm();
                Poll::Ready(Some(chunk))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let Some(every) = this.keep_alive else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
                if timer.as_mut().poll(cx).is_ready() {
                    timer.as_mut().reset(tokio::time::Instant::now() + every);
                    return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))));
                }
                Poll::Pending
            }
        }
    }
}
