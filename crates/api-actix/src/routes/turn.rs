//! Answering a send or a regenerate: as JSON once the reply is stored, or as a
//! Server-Sent Events stream (`message`, `delta`…, then `reply` or `error`). Either
//! way the generation runs detached from the request, so it finishes and is stored
//! even if the client goes away.

use crate::dto::{Delta, MessageDto, TurnDto};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use domain::services::{SendError, Turn};
use futures::StreamExt;
use serde::Serialize;
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

fn sse<T: Serialize>(event: &str, data: &T) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: {event}\ndata: {json}\n\n"))
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

/// Answers 201 with an event stream and runs the generation, forwarding its deltas.
pub fn stream(state: &AppState, turn: Turn) -> HttpResponse {
    let Turn {
        message,
        generation,
        ..
    } = turn;
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let _ = tx.send(sse("message", &MessageDto::from(&message)));
    let request_id = crate::request_id::current();
    state.spawner.spawn(async move {
        let deltas = tx.clone();
        let result = generation
            .run(move |d| {
                let _ = deltas.send(sse("delta", &Delta { content: d }));
            })
            .await;
        let last = match result {
            Ok(reply) => sse("reply", &MessageDto::from(&reply)),
            Err(e) => {
                let mut problem = failure(&message, e).problem();
                problem.request_id = request_id;
                sse("error", &problem)
            }
        };
        let _ = tx.send(last);
    });
    HttpResponse::Created()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(UnboundedReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>))
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

/// Waits (bounded) until a replayed turn's reply is no longer being generated.
async fn settled(
    state: &AppState,
    actor: &domain::services::Actor,
    mut reply: domain::Message,
) -> Result<domain::Message, ApiError> {
    let deadline = tokio::time::Instant::now() + state.replay_wait;
    while reply.status == domain::MessageStatus::Streaming && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        reply = state.messages.get(actor, reply.id).await?;
    }
    Ok(reply)
}

fn replayed_failure(message: &domain::Message, reply: &domain::Message) -> ApiError {
    let detail = reply
        .error
        .clone()
        .unwrap_or_else(|| "the reply failed".into());
    ApiError::ReplayedFailure {
        timeout: detail.contains("timed out"),
        detail,
        stored: Box::new((MessageDto::from(message), MessageDto::from(reply))),
    }
}

/// Answers an idempotent retry with the first send's turn, as stored once its reply is
/// done: the same 201 (or 502/504 if the reply failed), or the same event sequence with
/// the reply's text in one `delta`.
pub async fn replay(
    req: &HttpRequest,
    state: &AppState,
    actor: &domain::services::Actor,
    message: domain::Message,
    reply: domain::Message,
) -> Result<HttpResponse, ApiError> {
    if !wants_stream(req) {
        let reply = settled(state, actor, reply).await?;
        if reply.status == domain::MessageStatus::Failed {
            return Err(replayed_failure(&message, &reply));
        }
        return Ok(HttpResponse::Created().json(TurnDto {
            message: MessageDto::from(&message),
            reply: MessageDto::from(&reply),
        }));
    }
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let _ = tx.send(sse("message", &MessageDto::from(&message)));
    let (state, actor) = (state.clone(), actor.clone());
    let request_id = crate::request_id::current();
    tokio::spawn(async move {
        let last = match settled(&state, &actor, reply).await {
            Ok(reply) if reply.status == domain::MessageStatus::Failed => {
                let mut p = replayed_failure(&message, &reply).problem();
                p.request_id = request_id;
                sse("error", &p)
            }
            Ok(reply) => {
                if !reply.content.is_empty() {
                    let _ = tx.send(sse(
                        "delta",
                        &Delta {
                            content: &reply.content,
                        },
                    ));
                }
                sse("reply", &MessageDto::from(&reply))
            }
            Err(e) => {
                let mut p = e.problem();
                p.request_id = request_id;
                sse("error", &p)
            }
        };
        let _ = tx.send(last);
    });
    Ok(HttpResponse::Created()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(UnboundedReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>)))
}
