//! Request extractors: the JSON body (415/413/400/422 as problems, with the path of
//! the bad field), the acting user with the request id, and query validation helpers.

pub mod shape;

use crate::auth::AuthUser;
use crate::error::{ApiError, FieldError};
use crate::request_id::RequestId;
use actix_web::error::PayloadError;
use actix_web::{dev::Payload, mime, web, FromRequest, HttpMessage, HttpRequest};
use domain::services::Actor;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// The largest body accepted, as configured.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body, read in three steps: one JSON value and nothing after it
/// (else 400); its shape against `T`'s schema in the OpenAPI document (types, required
/// and unknown fields: else 422 listing every field); then `T`. An empty body reads as
/// `{}`, so a body whose fields are all optional may be left out.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Reads `bytes` (known to be JSON) as a `T` whose schema is named `schema`.
fn parse<T: DeserializeOwned>(bytes: &[u8], schema: &str) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let doc = crate::openapi::document();
    if let Some(s) = shape::component(doc, schema) {
        let mut errors = Vec::new();
        shape::check(doc, s, &value, "", &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        // The shape check passed, so the document and the type disagree: a bug, but the
        // client still gets the field, never serde's wording.
        tracing::warn!(error = %e, schema, "body passed the shape check but not serde");
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::Validation(vec![FieldError::new(field, "is not valid here")])
    })
}

/// Why a body could not be read, by the error's type (never its wording): over the
/// limit is 413, anything else (cut short, bad encoding, missed deadline) 400.
fn unreadable_body(e: &actix_web::Error, limit: usize) -> ApiError {
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(limit),
        _ => ApiError::BadRequest("the request body could not be read".into()),
    }
}

fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(m)) => {
            m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        }
        _ => false,
    }
}

impl<T: DeserializeOwned + ToSchema + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map_or(1_048_576, |l| l.0);
        let json = is_json(req);
        let has_type = req
            .headers()
            .contains_key(actix_web::http::header::CONTENT_TYPE);
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            let body = bytes.await.map_err(|e| unreadable_body(&e, limit))?;
            if body.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
                if has_type && !json {
                    return Err(ApiError::UnsupportedMediaType);
                }
                b"{}"
            } else {
                if !json {
                    return Err(ApiError::UnsupportedMediaType);
                }
                &body
            };
            parse(text, &T::name()).map(JsonBody)
        })
    }
}

/// The authenticated caller and the request id: who the services act for.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let result = AuthUser::from_request(req, payload)
            .into_inner()
            .map(|AuthUser(user)| {
                let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
                Caller(Actor { user, request_id })
            });
        std::future::ready(result)
    }
}

/// Collects field errors while converting a request into domain values.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Keeps `r`'s value, or records its error under `field`.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(FieldError::new(field, e));
                None
            }
        }
    }

    /// Records an error.
    pub fn push(&mut self, field: &str, message: impl ToString) {
        self.0.push(FieldError::new(field, message));
    }

    /// `Ok(v)` when no error was recorded, a 422 otherwise.
    pub fn finish<T>(self, v: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        if self.0.is_empty() {
            v().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("validated value missing")))
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_over_the_limit_is_told_by_its_type_not_its_text() {
        let over = actix_web::Error::from(PayloadError::Overflow);
        assert!(matches!(
            unreadable_body(&over, 10),
            ApiError::PayloadTooLarge(10)
        ));
        // Errors that merely mention an overflow are not one.
        for e in [
            actix_web::error::ErrorBadRequest("buffer overflow in the decoder"),
            actix_web::Error::from(PayloadError::Io(std::io::Error::other("stack overflow"))),
            actix_web::Error::from(PayloadError::Incomplete(None)),
        ] {
            assert!(
                matches!(unreadable_body(&e, 10), ApiError::BadRequest(_)),
                "{e}"
            );
        }
    }
}
