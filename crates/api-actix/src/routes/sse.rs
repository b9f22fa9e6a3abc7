//! The Server-Sent Events of a reply. Every event carries an `id`: `0` for `message`
//! (the user message), for each `delta` the byte offset in the reply's text where that
//! delta ends (the text the client holds after it), `end` for the final `reply` or
//! `error`. A client that lost the stream resumes with `GET
//! /api/v1/messages/{id}/stream` and `Last-Event-ID` (or `?after=`): it gets exactly
//! the text past that offset.

use crate::dto::{Delta, MessageDto};
use crate::error::ApiError;
use actix_web::http::header;
use actix_web::HttpResponse;
use bytes::Bytes;
use domain::services::{ReplyEvent, ReplyFollow};
use futures::{Stream, StreamExt};
use serde::Serialize;

/// The id of the `message` event.
pub const MESSAGE_ID: &str = "0";
/// The id of the final event (`reply` or `error`).
pub const END_ID: &str = "end";

/// One event.
pub fn event<T: Serialize>(id: &str, event: &str, data: &T) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("id: {id}\nevent: {event}\ndata: {json}\n\n"))
}

/// A `delta` event for `text`, which ends at byte `end` of the reply.
pub fn delta(end: u64, text: &str) -> Bytes {
    event(&end.to_string(), "delta", &Delta { content: text })
}

/// The final `error` event of a failed generation.
pub fn error(problem: &crate::error::Problem) -> Bytes {
    event(END_ID, "error", problem)
}

/// The final `reply` event.
pub fn reply(reply: &domain::Message) -> Bytes {
    event(END_ID, "reply", &MessageDto::from(reply))
}

/// A 201 (a new turn) or 200 (a followed reply) event stream.
pub fn response<S>(status: actix_web::http::StatusCode, body: S) -> HttpResponse
where
    S: Stream<Item = Bytes> + 'static,
{
    HttpResponse::build(status)
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body.map(Ok::<_, std::convert::Infallible>))
}

/// The events of a followed reply: its deltas, then `reply` or `error` (with `message`,
/// the user message, in a failure's problem when known).
pub fn followed(
    follow: ReplyFollow,
    message: Option<domain::Message>,
    request_id: Option<String>,
) -> impl Stream<Item = Bytes> + 'static {
    follow.events.map(move |e| match e {
        ReplyEvent::Delta { offset, text } => delta(offset + text.len() as u64, &text),
        ReplyEvent::Finished(m) => reply(&m),
        ReplyEvent::Failed(m, failure) => {
            let mut problem = failed(message.as_ref(), &m, failure).problem();
            problem.request_id.clone_from(&request_id);
            error(&problem)
        }
    })
}

/// The problem of a stored failed reply.
pub fn failed(
    message: Option<&domain::Message>,
    reply: &domain::Message,
    failure: domain::services::ReplyFailure,
) -> ApiError {
    ApiError::ReplayedFailure {
        detail: reply
            .error()
            .map(str::to_owned)
            .unwrap_or_else(|| "the reply failed".into()),
        failure,
        stored: Box::new((message.map(MessageDto::from), MessageDto::from(reply))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_ids() {
        assert_eq!(
            delta(3, "hé"),
            Bytes::from("id: 3\nevent: delta\ndata: {\"content\":\"hé\"}\n\n")
        );
    }
}
