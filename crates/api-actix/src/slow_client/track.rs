//! The outermost middleware: tells the connection guard when a request reaches the
//! service and when its response is finished (its body dropped by the dispatcher).

use super::{ConnHandle, Shared};
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use bytes::Bytes;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// A request in the service, until its response body is dropped.
#[derive(Debug)]
struct InService(Rc<Shared>);

impl InService {
    fn enter(shared: &Rc<Shared>) -> Self {
        shared.entered.set(shared.entered.get() + 1);
        shared.in_service.set(shared.in_service.get() + 1);
        Self(shared.clone())
    }
}

impl Drop for InService {
    fn drop(&mut self) {
        let n = self.0.in_service.get();
        self.0.in_service.set(n.saturating_sub(1));
        self.0.wake();
    }
}

/// Middleware: marks the request in service until its response is finished.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let token = req
        .conn_data::<ConnHandle>()
        .map(|h| InService::enter(&h.0));
    let res = next.call(req).await?;
    Ok(res.map_body(|_, body| Tracked {
        body: Box::pin(body),
        _token: token,
    }))
}

/// A response body that holds its request's [`InService`] mark.
struct Tracked<B> {
    body: Pin<Box<B>>,
    _token: Option<InService>,
}

impl<B: MessageBody> MessageBody for Tracked<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.body.as_mut().poll_next(cx)
    }
}
