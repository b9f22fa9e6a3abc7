//! `GET /api/v1/messages/{id}/stream`: (re)attach to a reply, on any replica.

use super::sse;
use crate::dto::{StreamQuery, TurnEvent};
use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::MessageId;

/// Follow a reply: the text the client does not have yet, then the live deltas, then `reply` or `error`.
#[utoipa::path(get, path = "/api/v1/messages/{id}/stream", tag = "messages",
    params(("id" = uuid::Uuid, Path, description = "Id of an assistant reply"), StreamQuery),
    responses(
        (status = 200, description = "Server-Sent Events: `delta`… (the reply's text after the offset asked, then each new piece while it is generated), then `reply` (complete or cancelled) or `error` (failed: the problem, with the stored reply). Each event has an `id`: a `delta`'s is the byte offset where its text ends, the final event's is `end`. For a reply that ended, the missing text and the final event come at once. The user message (`message`, id `0`) is not repeated.",
            content((TurnEvent = "text/event-stream"))),
        (status = 404, body = crate::error::Problem, description = "No such message for this user (another user's reply is not found either)"),
        (status = 422, body = crate::error::Problem, description = "`after` or `Last-Event-ID` is malformed or splits a character of the reply's text (type `/problems/validation`), or the message is not an assistant reply (type `/problems/unprocessable`)"),
        (status = 503, body = crate::error::Problem, description = "The reply is being generated and the shared live state (Redis) or storage is unreachable; see `Retry-After`")),
    security(("bearer" = [])))]
pub async fn follow(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = MessageId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let last_event_id = match req.headers().get("last-event-id") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::Validation(vec![crate::error::FieldError::new(
                "Last-Event-ID",
                "must be an id of this stream's events",
            )])
        })?),
    };
    let after = query.offset(last_event_id)?;
    let follow = state.messages.follow_reply(&actor, id, after).await?;
    let events = sse::followed(follow, None, crate::request_id::current());
    Ok(sse::response(StatusCode::OK, events))
}
