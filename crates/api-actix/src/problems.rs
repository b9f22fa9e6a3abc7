//! Error responses made outside the handlers — actix-cors refusing a preflight or an
//! origin, the Swagger UI's answer for an unknown file, an error a middleware returns —
//! become problem documents, like every other error (the request id middleware, outside
//! this one, adds `X-Request-Id`). Responses already `application/problem+json` pass.

use crate::error::ApiError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
}

/// The problem for an error response some other layer made, classified by its status
/// and, where the layer says more, by its error's type.
fn problem_for(status: StatusCode, error: Option<&actix_web::Error>, old: &HeaderMap) -> ApiError {
    let cors = error.and_then(|e| e.as_error::<actix_cors::CorsError>());
    match status.as_u16() {
        400 => ApiError::BadRequest(cors.map_or_else(
            || "the request could not be read".to_owned(),
            |e| format!("CORS: {e}"),
        )),
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed(
            old.get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
        ),
        415 => ApiError::UnsupportedMediaType,
        500 => ApiError::Internal(anyhow::anyhow!(
            "a {status} response was made outside the handlers: {}",
            error.map(ToString::to_string).unwrap_or_default()
        )),
        _ => ApiError::Other {
            status,
            detail: status
                .canonical_reason()
                .unwrap_or("the request failed")
                .to_owned(),
        },
    }
}

/// Rewrites a non-problem error response as a problem, keeping its other headers
/// (`Allow`, `Vary`, `Access-Control-*` …).
fn rewrite(old: &HttpResponse<impl MessageBody>) -> HttpResponse {
    let err = problem_for(old.status(), old.error(), old.headers());
    let mut new = err.error_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !new.headers().contains_key(name)
        {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    new
}

/// Middleware: every error response is a problem document. (An error a middleware
/// returns instead of a response passes, to be answered by [`escaped`].)
pub async fn middleware<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let res = next.call(req).await?;
    if !res.status().is_client_error() && !res.status().is_server_error()
        || is_problem(res.headers())
    {
        return Ok(res.map_into_left_body());
    }
    let new = rewrite(res.response());
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(req, new).map_into_right_body())
}

/// The answer to an error that escaped the application (a middleware returned it instead
/// of a response): a problem document with a request id of its own.
pub fn escaped(e: actix_web::Error) -> HttpResponse {
    let id = uuid::Uuid::now_v7().to_string();
    let res = e.error_response();
    let mut res = if is_problem(res.headers()) {
        res
    } else {
        rewrite(&res)
    };
    tracing::warn!(request_id = %id, error = %e, "an error escaped the application");
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        res.headers_mut().insert(
            header::HeaderName::from_static(crate::request_id::HEADER),
            v,
        );
    }
    res
}
