//! The routes of a user's own data: message search, export (NDJSON) and erasure.

use crate::dto::{ChatDto, MessageSearchQuery};
use crate::dto_data::{ExportLine, ExportedMessageDto, SearchHitDto, SearchPage};
use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use domain::services::{DataError, Erasure, ExportItem};
use futures::{stream, StreamExt};

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::NotFound => ApiError::NotFound,
            DataError::Unavailable(e) => ApiError::Unavailable(e),
            DataError::Unknown(e) => ApiError::Internal(e),
        }
    }
}

/// Search the caller's messages (full text), most relevant first, then newest.
///
/// Only the newest 100 matching messages are ranked: newest by `createdAt`, then id
/// (with `chatId`: by the chat's `seq`). Those are ordered by `relevance` (how many
/// times the searched words occur in the message) descending, then `createdAt`
/// descending, then id descending, and paged with `cursor`. A query matching more than
/// 100 messages never returns the older ones: narrow it (more words, a phrase,
/// `chatId`) to reach them.
#[utoipa::path(get, path = "/api/v1/messages/search", tag = "messages", params(MessageSearchQuery),
    responses((status = 200, body = SearchPage,
            description = "Hits among the newest 100 matches, by relevance, then createdAt, then id (all descending)"),
        (status = 404, body = crate::error::Problem, description = "No such chat (`chatId`) for this user")),
    security(("bearer" = [])))]
pub async fn search(
    state: web::Data<AppState>,
    Caller(actor): Caller,
    query: web::Query<MessageSearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let r = query.search()?;
    let p = state
        .search
        .search(&actor, r.chat_id, r.query, r.page)
        .await?;
    Ok(HttpResponse::Ok().json(SearchPage {
        items: p.items.iter().map(SearchHitDto::from).collect(),
        next_cursor: p.next.map(|c| c.encode()),
    }))
}

fn line(l: &ExportLine) -> Bytes {
    let mut v = serde_json::to_vec(l).unwrap_or_else(|_| b"{\"type\":\"error\"}".to_vec());
    v.push(b'\n');
    Bytes::from(v)
}

fn export_line(item: Result<ExportItem, DataError>) -> ExportLine {
    match item {
        Ok(ExportItem::Chat(c)) => ExportLine::Chat {
            chat: ChatDto::from(&c),
        },
        Ok(ExportItem::Message(m)) => ExportLine::Message {
            message: ExportedMessageDto::from(&m),
        },
        Ok(ExportItem::End { chats, messages }) => ExportLine::End { chats, messages },
        Err(e) => {
            tracing::warn!(error = ?e, "export failed midway");
            ExportLine::Error {
                detail: match e {
                    DataError::Unavailable(_) => "storage became unavailable; export again".into(),
                    _ => "the export failed; export again".into(),
                },
            }
        }
    }
}

/// Download everything the caller owns: NDJSON, an `export` line, then each chat
/// followed by its messages, then an `end` line.
#[utoipa::path(get, path = "/api/v1/export", tag = "data",
    responses((status = 200, content_type = "application/x-ndjson", body = ExportLine,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"chat-export-<date>.ndjson\"")),
            description = "One JSON object per line: `export` (first), `chat`, then its `message`s (every branch, by seq; without `branch`: `parentId` and `seq` give the tree), …, `end` (last line of a complete export); an `error` line ends a failed one")),
    security(("bearer" = [])))]
pub async fn export(
    state: web::Data<AppState>,
    Caller(actor): Caller,
) -> Result<HttpResponse, ApiError> {
    let mut items = Box::pin(state.export.export(&actor));
    // The first page is read before answering, so storage being down is a plain 503.
    let first = match items.next().await {
        Some(Err(e)) => return Err(e.into()),
        other => other,
    };
    let now = chrono::Utc::now();
    let head = ExportLine::Export {
        version: 1,
        user_id: actor.user.as_str().to_owned(),
        exported_at: now,
    };
    let body = stream::iter([head])
        .chain(stream::iter(first).map(export_line))
        .chain(items.map(export_line))
        .map(|l| Ok::<_, actix_web::Error>(line(&l)));
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"chat-export-{}.ndjson\"",
                now.format("%Y%m%d")
            ),
        ))
        .streaming(body))
}

/// Erase everything the caller stored: chats, messages, idempotency records, usage.
#[utoipa::path(delete, path = "/api/v1/me", tag = "data",
    responses((status = 204, description = "Erased: nothing of the caller is left, and one `user.erased` event is stored"),
        (status = 202, description = "Erasing in the background, in batches; asking again is harmless (204 once nothing is left)")),
    security(("bearer" = [])))]
pub async fn erase_me(
    state: web::Data<AppState>,
    Caller(actor): Caller,
) -> Result<HttpResponse, ApiError> {
    match state.erasure.erase(&actor.user).await? {
        Erasure::Done(_) => Ok(HttpResponse::NoContent().finish()),
        Erasure::Started(job) => {
            let user = job.user().clone();
            state.spawner.spawn(async move {
                match job.run().await {
                    Ok(r) => tracing::info!(%user, chats = r.chats, messages = r.messages, "erasure finished"),
                    Err(e) => tracing::warn!(%user, error = ?e, "erasure stopped; the maintenance job resumes it"),
                }
            });
            Ok(HttpResponse::Accepted().finish())
        }
    }
}
