//! Chat routes: thin handlers that parse, call one service method and map the result.

use crate::dto::{
    ChatDto, ChatListQuery, ChatPage, ChatRequest, ChatSearchQuery, ChatUpdateRequest,
};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use actix_web::{http::header, web, HttpResponse};
use domain::ChatId;

/// A chat id from the path; anything that is not one is simply not found.
pub(crate) fn chat_id(raw: &str) -> Result<ChatId, ApiError> {
    ChatId::parse(raw).map_err(|_| ApiError::NotFound)
}

fn page(p: domain::Page<domain::Chat, domain::ChatCursor>) -> ChatPage {
    ChatPage {
        items: p.items.iter().map(ChatDto::from).collect(),
        next_cursor: p.next.map(|c| c.encode()),
    }
}

/// Create a chat (the body may be left out: a chat with the default title and settings).
#[utoipa::path(post, path = "/api/v1/chats", tag = "chats", request_body = Option<ChatRequest>,
    responses((status = 201, body = ChatDto, description = "Created",
        headers(("Location" = String, description = "The created chat's path"))),
        (status = 422, description = "Invalid request: `errors` lists every field at fault (type `/problems/validation`); or settings the model registry refuses (type `/problems/unprocessable`): a `settings.model` that `GET /api/v1/models` does not list, its message naming the choices (`… choose one of: a, b`), or a `settings.maxTokens` above that model's `maxOutputTokens` (the default model's when no model is set), its message naming the ceiling")),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    let chat = state.chats.create(&actor, body.try_into_create()?).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/chats/{}", chat.id())))
        .json(ChatDto::from(&chat)))
}

/// List the caller's chats, newest activity first.
#[utoipa::path(get, path = "/api/v1/chats", tag = "chats", params(ChatListQuery),
    responses((status = 200, body = ChatPage)), security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    query: web::Query<ChatListQuery>,
) -> Result<HttpResponse, ApiError> {
    let p = state.chats.list(&actor, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page(p)))
}

/// Search the caller's chats by title (case-insensitive substring).
#[utoipa::path(get, path = "/api/v1/chats/search", tag = "chats", params(ChatSearchQuery),
    responses((status = 200, body = ChatPage)), security(("bearer" = [])))]
pub async fn search(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    query: web::Query<ChatSearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let (q, p) = query.search()?;
    let p = state.chats.search(&actor, &q, p).await?;
    Ok(HttpResponse::Ok().json(page(p)))
}

/// Read a chat.
#[utoipa::path(get, path = "/api/v1/chats/{id}", tag = "chats", params(("id" = uuid::Uuid, Path, description = "Chat id")),
    responses((status = 200, body = ChatDto)), security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let chat = state.chats.get(&actor, chat_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(ChatDto::from(&chat)))
}

/// Change a chat's title and/or settings (absent fields are kept; `settings` replaces the whole object), and/or select the branch it shows (`activeLeafId`, emits `chat.updated`).
#[utoipa::path(put, path = "/api/v1/chats/{id}", tag = "chats", request_body = Option<ChatUpdateRequest>,
    params(("id" = uuid::Uuid, Path, description = "Chat id")),
    responses((status = 200, body = ChatDto),
        (status = 404, body = crate::error::Problem, description = "No such chat, or `activeLeafId` names no message of the chat"),
        (status = 409, body = crate::error::Problem, description = "Other changes to the chat kept winning over this one (the update is a compare-and-set, retried 10 times): nothing was changed; see Retry-After",
            headers(("Retry-After" = String, description = "Seconds to wait before trying again"))),
        (status = 422, description = "Invalid request: `errors` lists every field at fault (type `/problems/validation`); or settings the model registry refuses (type `/problems/unprocessable`): a `settings.model` that `GET /api/v1/models` does not list, its message naming the choices (`… choose one of: a, b`), or a `settings.maxTokens` above that model's `maxOutputTokens` (the default model's when no model is set), its message naming the ceiling")),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
    JsonBody(body): JsonBody<ChatUpdateRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = chat_id(&id)?;
    let (change, leaf) = body.split()?;
    // Everything is checked before anything changes.
    let update = change.unwrap_or_default().try_into_update()?;
    let chat = match leaf {
        Some(leaf) => {
            if update.title.is_some() || update.settings.is_some() {
                state.chats.update(&actor, id, update).await?;
            }
            state.messages.select_branch(&actor, id, leaf).await?
        }
        None => state.chats.update(&actor, id, update).await?,
    };
    Ok(HttpResponse::Ok().json(ChatDto::from(&chat)))
}

/// Delete a chat and all its messages.
#[utoipa::path(delete, path = "/api/v1/chats/{id}", tag = "chats", params(("id" = uuid::Uuid, Path, description = "Chat id")),
    responses((status = 204, description = "Deleted")), security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.chats.delete(&actor, chat_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
