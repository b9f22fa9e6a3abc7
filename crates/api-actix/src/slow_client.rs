//! Slow clients: actix cuts a client that does not send its request head within
//! `http.client_request_timeout_ms` (408); this middleware gives the body the same
//! budget, counted from the end of the head, so a client that stalls mid-body cannot
//! hold a connection and a worker's buffer forever.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The longest a client may take to send a request body.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

fn has_body(req: &ServiceRequest) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Middleware: bounds the time a request body may take to arrive.
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(BodyDeadline(limit)) = req.app_data::<BodyDeadline>().copied() {
        if has_body(&req) {
            let inner = req.parts_mut().1.take();
            let payload: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
                Box::pin(DeadlinePayload {
                    inner,
                    deadline: tokio::time::Instant::now() + limit,
                    timer: None,
                    expired: false,
                });
            req.set_payload(Payload::Stream { payload });
        }
    }
    next.call(req).await
}

/// A request body that fails with a timeout once its deadline passes.
struct DeadlinePayload {
    inner: Payload,
    deadline: tokio::time::Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = this.inner.poll_next_unpin(cx) {
            return Poll::Ready(item);
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            this.expired = true;
            tracing::info!("request body not received in time: closing the request");
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body was not received in time",
            )))));
        }
        Poll::Pending
    }
}
