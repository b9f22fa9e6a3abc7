//! The shapes of a turn's answers beyond `TurnDto`: the Server-Sent Events of a streamed
//! send or regenerate, and the problem of a failed generation (502/504, and the stream's
//! `error` event), which carries the stored user message and the failed reply.

use super::MessageDto;
use crate::error::Problem;
use serde::Serialize;
use utoipa::ToSchema;

/// A chunk of the reply's text (the `delta` event's data).
#[derive(Debug, Serialize, ToSchema)]
pub struct Delta<'a> {
    /// The text, appended to what came before.
    #[schema(value_type = String)]
    pub content: &'a str,
}

/// A failed generation: the problem, with the stored user message and the stored
/// failed reply (`reply.status` is `failed`, `reply.error` says why). Regenerate the
/// reply to try again.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnProblem {
    /// The problem.
    #[serde(flatten)]
    pub problem: Problem,
    /// The stored user message.
    pub message: MessageDto,
    /// The stored failed reply.
    pub reply: MessageDto,
}

/// One Server-Sent Event of a streamed send or regenerate, as `event:` and the JSON of
/// `data:`. A stream is `message`, then zero or more `delta`, then `reply` or `error`.
/// Each event has an `id:`: `0` for `message`, for a `delta` the byte offset in the
/// reply's text where it ends, `end` for `reply` and `error` (resume with
/// `GET /api/v1/messages/{id}/stream` and `Last-Event-ID`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "event", content = "data", rename_all = "lowercase")]
pub enum TurnEvent {
    /// `event: message`: the stored user message.
    Message(MessageDto),
    /// `event: delta`: a chunk of the reply.
    Delta(Delta<'static>),
    /// `event: reply`: the stored, complete reply.
    Reply(MessageDto),
    /// `event: error`: the generation failed.
    Error(Box<TurnProblem>),
}
