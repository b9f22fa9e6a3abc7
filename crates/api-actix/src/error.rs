//! The API's one error type: every failure becomes an RFC 9457
//! `application/problem+json` response with a `requestId`. 4xx bodies say what the
//! client did wrong; 5xx bodies are generic and the cause goes to the log.

use crate::dto::MessageDto;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use domain::ports::{LlmError, TimeoutKind};
use domain::services::{CancelError, ChatError, MessageError, SendError};
use domain::ModelChoiceError;
use serde::Serialize;
use std::time::Duration;

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as a dotted path (`settings.temperature`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl ToString) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read (malformed JSON, bad query string).
    #[error("{0}")]
    BadRequest(String),
    /// The request was read but some fields break a documented constraint.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// The request is valid but cannot be carried out, for a reason no schema can state
    /// (a reused `Idempotency-Key`, regenerating a message that is not a reply).
    #[error("the request cannot be carried out")]
    Unprocessable(Vec<FieldError>),
    /// Missing or bad token.
    #[error("{0}")]
    Unauthorized(String),
    /// Unknown route, or a resource that does not exist or belongs to someone else.
    #[error("not found")]
    NotFound,
    /// The route exists, not with this method; the methods it answers, as an `Allow` value.
    #[error("this route answers {0} only")]
    MethodNotAllowed(String),
    /// The request conflicts with the resource's state.
    #[error("{detail}")]
    Conflict {
        /// What conflicts.
        detail: String,
        /// When to try again, if that can help.
        retry_after: Option<Duration>,
    },
    /// A reply is being generated in the chat: nothing was stored. The problem names
    /// the reply (`replyId`) and `Link` points at its stream.
    #[error("a reply is being generated in this chat; nothing was stored, send again when it is done (follow the reply being generated: `replyId`, `Link`)")]
    Busy {
        /// When to try again.
        retry_after: Duration,
        /// The reply being generated, when known.
        reply_id: Option<String>,
    },
    /// The body is larger than the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body is not `application/json`.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// The client did not send its request head in time (answered by the connection guard).
    #[error("the request head was not received within {0} ms")]
    RequestTimeout(u128),
    /// The request head is larger than the server reads (answered by the connection guard).
    #[error(
        "the request head is larger than {bytes} bytes or has more than {fields} header fields"
    )]
    HeadersTooLarge {
        /// The largest head read, in bytes.
        bytes: usize,
        /// The most header fields read.
        fields: usize,
    },
    /// A rate limit was hit.
    #[error("too many requests")]
    TooManyRequests {
        /// When to try again.
        retry_after: Duration,
    },
    /// The caller's token quota is spent (nothing was stored); retry when it resets.
    #[error("{detail}")]
    QuotaExceeded {
        /// Which quota, how much is used, when it resets.
        detail: String,
        /// Until the period resets.
        retry_after: Duration,
    },
    /// The LLM provider failed; the user's message and the failed reply are stored.
    #[error("{error}")]
    Llm {
        /// What the provider did.
        error: LlmError,
        /// The stored user message, and the stored failed reply.
        stored: Option<Box<(MessageDto, MessageDto)>>,
    },
    /// A stored failed reply, replayed (an idempotent retry of its send, or a followed
    /// reply that failed).
    #[error("{detail}")]
    ReplayedFailure {
        /// The stored reply's error.
        detail: String,
        /// What failed: a timeout is 504, anything else 502.
        failure: domain::services::ReplyFailure,
        /// The stored user message, when known, and the stored failed reply.
        stored: Box<(Option<MessageDto>, MessageDto)>,
    },
    /// An error status some other layer answered (see `problems`), with what it means.
    #[error("{detail}")]
    Other {
        /// The status.
        status: StatusCode,
        /// What happened.
        detail: String,
    },
    /// Storage cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Shared live reply state cannot be reached (following or cancelling a reply
    /// generated by another process).
    #[error("live reply state is unavailable: {0}")]
    LiveUnavailable(String),
    /// No model is listed at all (every provider discovers its models, none has answered yet).
    #[error("no LLM model is available right now (no provider has listed one yet); nothing was stored, try again shortly")]
    NoModel,
    /// A bug.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI reference naming the kind of problem (`/problems/validation`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened, for this request.
    pub detail: String,
    /// The request id, also in the `X-Request-Id` header (`null` only outside a request).
    #[schema(required = true)]
    pub request_id: Option<String>,
    /// The fields at fault (422 only), every one of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
    /// The stored user message (failed generations only: see `TurnProblem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub message: Option<MessageDto>,
    /// The stored failed reply (failed generations only: see `TurnProblem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub reply: Option<MessageDto>,
    /// The reply being generated in the chat (409 of a busy chat, when known): follow it
    /// at `GET /api/v1/messages/{replyId}/stream` (the `Link` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = Uuid)]
    pub reply_id: Option<String>,
}

impl Problem {
    /// A problem of kind `/problems/{slug}`, for the request being served.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: crate::request_id::current(),
            errors: None,
            message: None,
            reply: None,
            reply_id: None,
        }
    }
}

/// Starts an `application/problem+json` response with `status` and, when given,
/// `Retry-After` (whole seconds, at least 1). Every problem the service answers, also
/// outside [`ApiError`] (readiness, framework errors), is built with it; finish with
/// `.json(problem)`. `X-Request-Id` is added by the request-id middleware.
pub fn problem_response(status: StatusCode, retry_after: Option<Duration>) -> HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    res.content_type("application/problem+json");
    if let Some(d) = retry_after {
        res.insert_header((header::RETRY_AFTER, d.as_secs().max(1).to_string()));
    }
    res
}

impl ApiError {
    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("bad-request", "Malformed request"),
            ApiError::Validation(_) => ("validation", "Invalid request"),
            ApiError::Unprocessable(_) => ("unprocessable", "Request cannot be carried out"),
            ApiError::Unauthorized(_) => ("unauthorized", "Authentication required"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict { .. } | ApiError::Busy { .. } => ("conflict", "Conflict"),
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "Request body too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::RequestTimeout(_) => ("request-timeout", "Request timeout"),
            ApiError::HeadersTooLarge { .. } => {
                ("headers-too-large", "Request header fields too large")
            }
            ApiError::TooManyRequests { .. } => ("rate-limited", "Too many requests"),
            ApiError::QuotaExceeded { .. } => ("quota-exceeded", "Token quota exceeded"),
            ApiError::Llm {
                error: LlmError::Timeout(_),
                ..
            } => ("llm-timeout", "LLM provider timed out"),
            ApiError::Llm { .. } => ("llm-failure", "LLM provider failed"),
            ApiError::ReplayedFailure {
                failure: domain::services::ReplyFailure::Timeout,
                ..
            } => ("llm-timeout", "LLM provider timed out"),
            ApiError::ReplayedFailure { .. } => ("llm-failure", "LLM provider failed"),
            ApiError::Other { status, .. } => {
                ("http-error", status.canonical_reason().unwrap_or("Error"))
            }
            ApiError::Unavailable(_) | ApiError::LiveUnavailable(_) | ApiError::NoModel => {
                ("unavailable", "Service unavailable")
            }
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::NotFound => "no such resource".into(),
            ApiError::Unavailable(_) => "storage is unavailable; try again shortly".into(),
            ApiError::LiveUnavailable(_) => {
                "the live state of replies being generated is unavailable; try again shortly".into()
            }
            ApiError::Internal(_) => "something went wrong on our side".into(),
            ApiError::Llm { error, .. } => {
                let what = match error {
                    LlmError::Timeout(TimeoutKind::Connect) => {
                        "could not connect to the LLM provider in time".to_owned()
                    }
                    LlmError::Timeout(TimeoutKind::FirstToken) => {
                        "the LLM provider did not start answering in time".to_owned()
                    }
                    LlmError::Timeout(TimeoutKind::Total) => {
                        "the LLM provider did not finish answering in time".to_owned()
                    }
                    other => other.to_string(),
                };
                format!("{what}; your message is stored and the reply is marked failed (regenerate it to try again)")
            }
            other => other.to_string(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Conflict { retry_after, .. } => *retry_after,
            ApiError::Busy { retry_after, .. } => Some(*retry_after),
            ApiError::TooManyRequests { retry_after } => Some(*retry_after),
            ApiError::QuotaExceeded { retry_after, .. } => Some(*retry_after),
            ApiError::Llm {
                error: LlmError::RateLimited { retry_after },
                ..
            } => *retry_after,
            ApiError::Unavailable(_) => Some(Duration::from_secs(1)),
            ApiError::LiveUnavailable(_) => Some(Duration::from_secs(2)),
            ApiError::NoModel => Some(Duration::from_secs(5)),
            _ => None,
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let (message, reply) = match self {
            ApiError::Llm {
                stored: Some(s), ..
            } => (Some(s.0.clone()), Some(s.1.clone())),
            ApiError::ReplayedFailure { stored: s, .. } => (s.0.clone(), Some(s.1.clone())),
            _ => (None, None),
        };
        Problem {
            errors: match self {
                ApiError::Validation(e) | ApiError::Unprocessable(e) => Some(e.clone()),
                _ => None,
            },
            message,
            reply,
            reply_id: match self {
                ApiError::Busy { reply_id, .. } => reply_id.clone(),
                _ => None,
            },
            ..Problem::new(self.status_code(), slug, title, self.detail())
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::Busy { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::TooManyRequests { .. } | ApiError::QuotaExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Llm {
                error: LlmError::Timeout(_),
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Llm { .. } => StatusCode::BAD_GATEWAY,
            ApiError::ReplayedFailure {
                failure: domain::services::ReplyFailure::Timeout,
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::ReplayedFailure { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Other { status, .. } => *status,
            ApiError::Unavailable(_) | ApiError::LiveUnavailable(_) | ApiError::NoModel => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(e) => tracing::warn!(error = ?e, "storage unavailable"),
            ApiError::LiveUnavailable(e) => {
                tracing::warn!(error = %e, "live reply state unavailable")
            }
            ApiError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            ApiError::Llm { error, .. } => tracing::warn!(%error, "LLM provider failure"),
            _ => {}
        }
        let mut res = problem_response(self.status_code(), self.retry_after());
        if let ApiError::Busy {
            reply_id: Some(id), ..
        } = self
        {
            res.insert_header((
                header::LINK,
                format!("</api/v1/messages/{id}/stream>; rel=\"related\""),
            ));
        }
        if let ApiError::MethodNotAllowed(allow) = self {
            res.insert_header((header::ALLOW, allow.as_str()));
        }
        if let ApiError::Unauthorized(_) = self {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"chat-service\", error=\"invalid_token\""),
            ));
        }
        res.json(self.problem())
    }
}

impl From<ModelChoiceError> for ApiError {
    fn from(e: ModelChoiceError) -> Self {
        match e {
            ModelChoiceError::NoModel => ApiError::NoModel,
            // The request is well-formed; the registry refuses it (README conventions).
            other => ApiError::Unprocessable(vec![FieldError::new(other.field(), &other)]),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::NotFound => ApiError::NotFound,
            ChatError::InvalidSettings(e) => e.into(),
            ChatError::Contended { retry_after } => ApiError::Conflict {
                detail: "the chat kept changing while this update was applied; nothing was changed, try again".into(),
                retry_after: Some(retry_after),
            },
            ChatError::Unavailable(e) => ApiError::Unavailable(e),
            ChatError::Unknown(e) => ApiError::Internal(e),
        }
    }
}

impl From<MessageError> for ApiError {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::NotFound => ApiError::NotFound,
            MessageError::ChatBusy { retry_after } => ApiError::Conflict {
                detail: "a reply is being generated in this chat; try again when it is done".into(),
                retry_after: Some(retry_after),
            },
            MessageError::Unavailable(e) => ApiError::Unavailable(e),
            MessageError::Unknown(e) => ApiError::Internal(e),
        }
    }
}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NotFound => ApiError::NotFound,
            SendError::Model(ModelChoiceError::NoModel) => ApiError::NoModel,
            // The chat's stored settings, not the request, are at fault.
            SendError::Model(e) => {
                ApiError::Unprocessable(vec![FieldError::new(e.field(), format!("the chat's {e}"))])
            }
            SendError::ChatBusy {
                retry_after,
                reply_id,
            } => ApiError::Busy {
                retry_after,
                reply_id: reply_id.map(|id| id.to_string()),
            },
            SendError::IdempotencyMismatch => ApiError::Unprocessable(vec![FieldError::new(
                "Idempotency-Key",
                "was already used with a different request; use a new key for a new message",
            )]),
            SendError::NotAReply => ApiError::Unprocessable(vec![FieldError::new(
                "id",
                "only an assistant reply that answers a user message can be regenerated",
            )]),
            SendError::ParentNotAReply => ApiError::Unprocessable(vec![FieldError::new(
                "parentId",
                "must be an assistant reply of the chat (or null for a new root)",
            )]),
            SendError::QuotaExceeded(e) => ApiError::QuotaExceeded {
                detail: format!(
                    "your token quota per {} ({} tokens) is spent ({} used); it resets at {}",
                    e.period.as_str(),
                    e.limit,
                    e.used,
                    e.resets_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                retry_after: e.retry_after,
            },
            SendError::Llm { error, .. } => ApiError::Llm {
                error,
                stored: None,
            },
            SendError::Unavailable(e) => ApiError::Unavailable(e),
            SendError::Unknown(e) => ApiError::Internal(e),
        }
    }
}

impl From<domain::services::ResumeError> for ApiError {
    fn from(e: domain::services::ResumeError) -> Self {
        use domain::services::ResumeError;
        match e {
            ResumeError::NotFound => ApiError::NotFound,
            ResumeError::NotAReply => ApiError::Unprocessable(vec![FieldError::new(
                "id",
                "only an assistant reply can be followed",
            )]),
            ResumeError::InvalidOffset(at) => ApiError::Validation(vec![FieldError::new(
                "Last-Event-ID",
                format!("offset {at} is not on a character boundary of the reply's text"),
            )]),
            ResumeError::LiveUnavailable(e) => ApiError::LiveUnavailable(e.to_string()),
            ResumeError::Unavailable(e) => ApiError::Unavailable(e),
            ResumeError::Unknown(e) => ApiError::Internal(e),
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::NotFound => ApiError::NotFound,
            CancelError::NotStreaming => ApiError::Conflict {
                detail: "the message is not a reply being generated".into(),
                retry_after: None,
            },
            CancelError::LiveUnavailable(e) => ApiError::LiveUnavailable(e.to_string()),
            CancelError::Unavailable(e) => ApiError::Unavailable(e),
            CancelError::Unknown(e) => ApiError::Internal(e),
        }
    }
}
