//! Message routes: send (JSON or SSE), list, read, edit, delete, regenerate, cancel.

use super::turn;
use crate::dto::{
    MessageDto, MessageListQuery, MessagePage, MessageRequest, SendHeaders, SendQuery, SendRequest,
    TurnDto, TurnEvent, TurnProblem,
};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::services::{SendMessage, SendOutcome};
use domain::MessageId;

/// The optional `Idempotency-Key` header, checked.
fn idempotency_key(req: &HttpRequest) -> Result<Option<domain::IdempotencyKey>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    match v.to_str().ok().map(domain::IdempotencyKey::parse) {
        Some(Ok(k)) => Ok(Some(k)),
        _ => Err(ApiError::Validation(vec![crate::error::FieldError::new(
            "Idempotency-Key",
            domain::IdempotencyKeyError,
        )])),
    }
}

fn message_id(raw: &str) -> Result<MessageId, ApiError> {
    MessageId::parse(raw).map_err(|_| ApiError::NotFound)
}

/// Send a message to a chat and get the assistant's reply (JSON, or SSE with `Accept: text/event-stream`).
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", params(SendQuery, SendHeaders),
    request_body = SendRequest,
    responses(
        (status = 201, description = "The stored message and reply as JSON; with `Accept: text/event-stream`, Server-Sent Events: `message`, `delta`…, then `reply` or `error`",
            content((TurnDto = "application/json"), (TurnEvent = "text/event-stream"))),
        (status = 404, body = crate::error::Problem, description = "No such chat, or `parentId` names no message of the chat"),
        (status = 409, body = crate::error::Problem, description = "A reply is being generated in this chat; nothing was stored; see Retry-After. The problem's `replyId` names the reply being generated and `Link: </api/v1/messages/{replyId}/stream>; rel=\"related\"` points at its stream",
            headers(("Link" = String, description = "`</api/v1/messages/{replyId}/stream>; rel=\"related\"`: the stream of the reply being generated"))),
        (status = 422, body = crate::error::Problem, description = "Invalid request: `errors` lists every field at fault (type `/problems/validation`); or a valid request that cannot be carried out (type `/problems/unprocessable`): `parentId` is a user message (a message follows an assistant reply, or `null` starts a new root), the `Idempotency-Key` was used with another request, or the chat's `settings.model` is no longer listed by `GET /api/v1/models` (`errors` names `settings.model`, its message the choices); nothing was stored"),
        (status = 429, body = crate::error::Problem, description = "A rate limit (type `/problems/rate-limited`) or the caller's token quota per UTC day or month (type `/problems/quota-exceeded`) is reached; nothing was stored and no provider was called; `Retry-After` says when to try again (for a quota: when its period resets)"),
        (status = 502, body = TurnProblem, description = "The LLM provider failed (and so did the model's fallbacks, tried before the first token); the message is stored, the reply is stored failed"),
        (status = 503, body = crate::error::Problem, description = "Unavailable: storage unreachable, or no model is listed at all yet (every provider discovers its models and none has answered); nothing was stored; see `Retry-After`"),
        (status = 504, body = TurnProblem, description = "The LLM provider timed out; the message is stored, the reply is stored failed")),
    security(("bearer" = [])))]
///
/// With an `Idempotency-Key` header, a retry with the same key gets the first send's
/// response and never calls the provider again.
pub async fn send(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(actor): Caller,
    query: web::Query<SendQuery>,
    JsonBody(body): JsonBody<SendRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let chat_id = query.chat_id()?;
    let (content, parent) = body.try_into_parts()?;
    let cmd = SendMessage {
        chat_id,
        content,
        parent,
    };
    match key {
        None => {
            let started = state.messages.send(&actor, cmd).await?;
            turn::respond(&req, &state, started).await
        }
        Some(key) => match state.messages.send_idempotent(&actor, cmd, key).await? {
            SendOutcome::Started(started) => turn::respond(&req, &state, started).await,
            SendOutcome::Replay { message, reply } => {
                turn::replay(&req, &state, &actor, message, reply).await
            }
        },
    }
}

/// List a branch of a chat in conversation order: root → active leaf, or the branch through `leafId`.
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages", params(MessageListQuery),
    responses((status = 200, body = MessagePage),
        (status = 404, body = crate::error::Problem, description = "No such chat, or `leafId` names no message of the chat")),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    query: web::Query<MessageListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (chat_id, leaf, page) = query.page()?;
    let p = state
        .messages
        .list_branch(&actor, chat_id, leaf, page)
        .await?;
    Ok(HttpResponse::Ok().json(MessagePage {
        items: p.items.iter().map(MessageDto::from).collect(),
        next_cursor: p.next.map(|c| c.encode()),
    }))
}

/// Read a message.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", params(("id" = uuid::Uuid, Path, description = "Message id")),
    responses((status = 200, body = MessageDto)), security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let m = state.messages.get(&actor, message_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(MessageDto::from(&m)))
}

/// Replace a message's content (not while it is being generated).
#[utoipa::path(put, path = "/api/v1/messages/{id}", tag = "messages", request_body = MessageRequest,
    params(("id" = uuid::Uuid, Path, description = "Message id")),
    responses((status = 200, body = MessageDto),
        (status = 409, body = crate::error::Problem, description = "The message is a reply being generated")),
    security(("bearer" = [])))]
pub async fn edit(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
    JsonBody(body): JsonBody<MessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = message_id(&id)?;
    let m = state
        .messages
        .edit(&actor, id, body.try_into_content()?)
        .await?;
    Ok(HttpResponse::Ok().json(MessageDto::from(&m)))
}

/// Delete a message and every message below it; later messages close up their `seq`s.
#[utoipa::path(delete, path = "/api/v1/messages/{id}", tag = "messages", params(("id" = uuid::Uuid, Path, description = "Message id")),
    responses((status = 204, description = "Deleted"),
        (status = 409, body = crate::error::Problem, description = "A reply is being generated in this chat; see Retry-After")),
    security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.messages.delete(&actor, message_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Generate a new reply to the user message that this reply answered: a sibling of it, which becomes the active branch.
#[utoipa::path(post, path = "/api/v1/messages/{id}/regenerate", tag = "messages", params(("id" = uuid::Uuid, Path, description = "Id of an assistant reply")),
    responses(
        (status = 201, description = "The answered user message and the new reply as JSON; with `Accept: text/event-stream`, Server-Sent Events as for a send",
            content((TurnDto = "application/json"), (TurnEvent = "text/event-stream"))),
        (status = 409, body = crate::error::Problem, description = "A reply is being generated in this chat; see Retry-After. The problem's `replyId` names the reply being generated and `Link` points at its stream",
            headers(("Link" = String, description = "`</api/v1/messages/{replyId}/stream>; rel=\"related\"`: the stream of the reply being generated"))),
        (status = 422, body = crate::error::Problem, description = "The message is not an assistant reply that answers a user message, or the chat's `settings.model` is no longer listed by `GET /api/v1/models` (its message names the choices); type `/problems/unprocessable`; nothing was stored"),
        (status = 429, body = crate::error::Problem, description = "A rate limit (type `/problems/rate-limited`) or the caller's token quota per UTC day or month (type `/problems/quota-exceeded`) is reached; nothing was stored and no provider was called; `Retry-After` says when to try again (for a quota: when its period resets)"),
        (status = 502, body = TurnProblem, description = "The LLM provider failed (and so did the model's fallbacks, tried before the first token); the new reply is stored failed"),
        (status = 503, body = crate::error::Problem, description = "Unavailable: storage unreachable, or no model is listed at all yet; nothing was stored; see `Retry-After`"),
        (status = 504, body = TurnProblem, description = "The LLM provider timed out; the new reply is stored failed")),
    security(("bearer" = [])))]
pub async fn regenerate(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let started = state.messages.regenerate(&actor, message_id(&id)?).await?;
    turn::respond(&req, &state, started).await
}

/// Stop a reply being generated, on whichever replica generates it; its partial text is kept with status `cancelled`.
#[utoipa::path(post, path = "/api/v1/messages/{id}/cancel", tag = "messages", params(("id" = uuid::Uuid, Path, description = "Id of a reply being generated")),
    responses((status = 200, body = MessageDto, description = "The stored cancelled reply, with the text generated until the provider request was stopped"),
        (status = 409, body = crate::error::Problem, description = "The message is not a reply being generated"),
        (status = 503, body = crate::error::Problem, description = "The reply is generated by another replica and the shared live state (Redis) is unreachable, or storage is; see `Retry-After`")),
    security(("bearer" = [])))]
pub async fn cancel(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let m = state.messages.cancel(&actor, message_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(MessageDto::from(&m)))
}
