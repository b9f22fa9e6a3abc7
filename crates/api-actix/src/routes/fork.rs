//! `POST /api/v1/chats/{id}/fork`: a new chat holding a copy of one branch.

use super::chats::chat_id;
use crate::dto::{ChatDto, ForkRequest};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use actix_web::{http::header, web, HttpResponse};

/// Fork a chat: a new chat of the caller with the same settings, titled "<title> (fork)", holding a copy of the branch from the root to `messageId` (new ids, `seq` 1..k).
#[utoipa::path(post, path = "/api/v1/chats/{id}/fork", tag = "chats", request_body = ForkRequest,
    params(("id" = uuid::Uuid, Path, description = "Chat id")),
    responses((status = 201, body = ChatDto, description = "Created; emits `chat.created` (with `forkedFrom`) and a `message.created` per copied message",
        headers(("Location" = String, description = "The new chat's path"))),
        (status = 404, body = crate::error::Problem, description = "No such chat, or `messageId` names no message of the chat"),
        (status = 409, body = crate::error::Problem, description = "`messageId` is a reply being generated; see Retry-After"),
        (status = 422, body = crate::error::Problem, description = "Invalid request: `errors` lists every field at fault")),
    security(("bearer" = [])))]
pub async fn fork(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
    JsonBody(body): JsonBody<ForkRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = chat_id(&id)?;
    let message = body.try_into_message()?;
    let chat = state.messages.fork(&actor, id, message).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/chats/{}", chat.id())))
        .json(ChatDto::from(&chat)))
}
