//! Answering a send or a regenerate: as JSON once the reply is stored, or as a
//! Server-Sent Events stream (`message`, `delta`…, then `reply` or `error`, each with
//! an id: see `sse`). Either
//! way the generation runs detached from the request, so it finishes and is stored
//! even if the client goes away.

use super::sse;
use crate::dto::{MessageDto, TurnDto};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use domain::services::{SendError, Turn};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Whether the client asked for an event stream.
pub fn wants_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().starts_with("text/event-stream"))
        })
}

/// The problem for a failed generation, with what was stored.
fn failure(turn_message: &domain::Message, e: SendError) -> ApiError {
    match e {
        SendError::Llm { error, reply } => ApiError::Llm {
            error,
            stored: Some(Box::new((
                MessageDto::from(turn_message),
                MessageDto::from(reply.as_ref()),
            ))),
        },
        other => other.into(),
    }
}

/// Runs the generation and answers 201 `{message, reply}` once the reply is stored.
pub async fn json(state: &AppState, turn: Turn) -> Result<HttpResponse, ApiError> {
    let Turn {
        message,
        generation,
        ..
    } = turn;
    let result = state
        .spawner
        .spawn(generation.run(|_| {}))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("generation task failed: {e}")))?;
    match result {
        Ok(reply) => Ok(HttpResponse::Created().json(TurnDto {
            message: MessageDto::from(&message),
            reply: MessageDto::from(&reply),
        })),
        Err(e) => Err(failure(&message, e)),
    }
}

/// Answers 201 with an event stream and runs the generation, forwarding its deltas
/// (each with the byte offset where it ends as its id; see `sse`).
pub fn stream(state: &AppState, turn: Turn) -> HttpResponse {
    let Turn {
        message,
        generation,
        ..
    } = turn;
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let _ = tx.send(sse::event(
        sse::MESSAGE_ID,
        "message",
        &MessageDto::from(&message),
    ));
    let request_id = crate::request_id::current();
    state.spawner.spawn(async move {
        let deltas = tx.clone();
        let mut offset = 0u64;
        let result = generation
            .run(move |d| {
                offset += d.len() as u64;
                let _ = deltas.send(sse::delta(offset, d));
            })
            .await;
        let last = match result {
            Ok(reply) => sse::reply(&reply),
            Err(e) => {
                let mut problem = failure(&message, e).problem();
                problem.request_id = request_id;
                sse::error(&problem)
            }
        };
        let _ = tx.send(last);
    });
    sse::response(StatusCode::CREATED, UnboundedReceiverStream::new(rx))
}

/// Answers a started turn the way the client asked.
pub async fn respond(
    req: &HttpRequest,
    state: &AppState,
    turn: Turn,
) -> Result<HttpResponse, ApiError> {
    if wants_stream(req) {
        Ok(stream(state, turn))
    } else {
        json(state, turn).await
    }
}

/// Answers an idempotent retry with the first send's turn: as JSON once its reply is
/// done (the same 201, or 502/504 if the reply failed), or as the same event sequence,
/// following the reply live if it is still being generated (on any process).
pub async fn replay(
    req: &HttpRequest,
    state: &AppState,
    actor: &domain::services::Actor,
    message: domain::Message,
    reply: domain::Message,
) -> Result<HttpResponse, ApiError> {
    if !wants_stream(req) {
        let reply = state
            .messages
            .settled(actor, reply, state.replay_wait)
            .await?;
        if reply.status() == domain::MessageStatus::Failed {
            let failure = domain::services::ReplyFailure::of(&reply);
            return Err(sse::failed(Some(&message), &reply, failure));
        }
        return Ok(HttpResponse::Created().json(TurnDto {
            message: MessageDto::from(&message),
            reply: MessageDto::from(&reply),
        }));
    }
    let follow = state.messages.follow_reply(actor, reply.id(), 0).await?;
    let first = sse::event(sse::MESSAGE_ID, "message", &MessageDto::from(&message));
    let events = sse::followed(follow, Some(message), crate::request_id::current());
    Ok(sse::response(
        StatusCode::CREATED,
        futures::stream::once(async move { first }).chain(events),
    ))
}
