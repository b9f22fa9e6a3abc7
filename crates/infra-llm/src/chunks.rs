//! Turns a streamed response body (SSE `data:` events of chat-completion chunks)
//! into the port's `LlmChunk`s, stopping at `data: [DONE]`.

use crate::errors::{sanitize, CUT};
use crate::sse::{SseDecoder, SseEvent};
use crate::wire::WireChunk;
use bytes::Bytes;
use domain::ports::{LlmChunk, LlmError};
use domain::Usage;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use std::collections::VecDeque;

/// Decodes chunk events into `LlmChunk`s.
#[derive(Debug, Default)]
pub(crate) struct ChunkDecoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    model_sent: bool,
    done: bool,
    secret: Option<String>,
}

impl ChunkDecoder {
    /// A decoder that redacts `secret` from provider messages.
    pub(crate) fn new(secret: Option<String>) -> Self {
        Self {
            secret,
            ..Self::default()
        }
    }

    /// Whether `data: [DONE]` has been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds one read of the body, appending the chunks it completes to `out`.
    pub(crate) fn feed(
        &mut self,
        bytes: &[u8],
        out: &mut VecDeque<LlmChunk>,
    ) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        self.sse
            .feed(bytes, &mut self.events)
            .map_err(|e| LlmError::Stream(e.to_string()))?;
        let events = std::mem::take(&mut self.events);
        for event in &events {
            self.on_event(event, out)?;
            if self.done {
                break;
            }
        }
        self.events = events;
        self.events.clear();
        Ok(())
    }

    fn on_event(&mut self, event: &SseEvent, out: &mut VecDeque<LlmChunk>) -> Result<(), LlmError> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: WireChunk = match serde_json::from_str(&event.data) {
            Ok(chunk) => chunk,
            Err(_) if event.event == "error" => return Err(self.provider_error(&event.data)),
            Err(e) => return Err(LlmError::Stream(format!("malformed chunk: {e}"))),
        };
        if let Some(error) = chunk.error {
            return Err(self.provider_error(error.message().unwrap_or("error event")));
        }
        if event.event == "error" {
            return Err(self.provider_error("error event"));
        }
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            if !self.model_sent {
                self.model_sent = true;
                out.push_back(LlmChunk::Model(model));
            }
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice
                .delta
                .and_then(|d| d.content)
                .filter(|t| !t.is_empty())
            {
                out.push_back(LlmChunk::Delta(text));
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                out.push_back(LlmChunk::Finish(reason));
            }
        }
        if let Some(usage) = chunk.usage {
            out.push_back(LlmChunk::Usage(Usage::from(usage)));
        }
        Ok(())
    }

    fn provider_error(&self, message: &str) -> LlmError {
        LlmError::Stream(format!(
            "provider error: {}",
            sanitize(message, self.secret.as_deref())
        ))
    }
}

struct State<S> {
    body: S,
    decoder: ChunkDecoder,
    queue: VecDeque<LlmChunk>,
    error: Option<LlmError>,
    ended: bool,
}

/// The chunks of a streamed body. Ends after `[DONE]`; a body that ends or breaks
/// before it yields `Err(LlmError::Stream("cut"))`; a malformed chunk yields
/// `Err(LlmError::Stream(..))`. Nothing follows an error. Dropping the stream drops
/// the body (closing the connection).
pub(crate) fn chunk_stream<S, E>(
    body: S,
    secret: Option<String>,
) -> BoxStream<'static, Result<LlmChunk, LlmError>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    let state = State {
        body,
        decoder: ChunkDecoder::new(secret),
        queue: VecDeque::new(),
        error: None,
        ended: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            // Chunks decoded before a failure in the same read still go out first.
            if let Some(chunk) = st.queue.pop_front() {
                return Some((Ok(chunk), st));
            }
            if let Some(error) = st.error.take() {
                return Some((Err(error), st));
            }
            if st.ended || st.decoder.is_done() {
                return None;
            }
            match st.body.next().await {
                Some(Ok(bytes)) => {
                    if let Err(e) = st.decoder.feed(&bytes, &mut st.queue) {
                        st.error = Some(e);
                        st.ended = true;
                    }
                }
                Some(Err(_)) | None => {
                    st.error = Some(LlmError::Stream(CUT.into()));
                    st.ended = true;
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Body = stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>>;

    fn body(parts: &[&str]) -> Body {
        let parts: Vec<Result<Bytes, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p.as_bytes())))
            .collect();
        stream::iter(parts)
    }

    async fn collect(b: Body) -> Vec<Result<LlmChunk, LlmError>> {
        chunk_stream(b, Some("k3y".into())).collect().await
    }

    const ROLE: &str = r#"data: {"model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;

    fn delta(t: &str) -> String {
        format!(
            r#"data: {{"model":"gpt-x","choices":[{{"index":0,"delta":{{"content":"{t}"}},"finish_reason":null}}]}}"#
        )
    }

    #[tokio::test]
    async fn a_full_openai_stream() {
        let d1 = delta("Hel");
        let d2 = delta("lo");
        let text = format!(
            "{ROLE}\n\n: keep-alive\n\n{d1}\n\n{d2}\n\n\
             data: {{\"model\":\"gpt-x\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\n\
             data: {{\"model\":\"gpt-x\",\"choices\":[],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}}}\n\n\
             data: [DONE]\n\n"
        );
        let items = collect(body(&[&text])).await;
        let chunks: Vec<LlmChunk> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            chunks,
            vec![
                LlmChunk::Model("gpt-x".into()),
                LlmChunk::Delta("Hel".into()),
                LlmChunk::Delta("lo".into()),
                LlmChunk::Finish("stop".into()),
                LlmChunk::Usage(Usage {
                    prompt_tokens: 5,
                    completion_tokens: 2
                }),
            ]
        );
    }

    #[tokio::test]
    async fn ending_without_done_is_cut_after_the_text_so_far() {
        let d1 = delta("a");
        let items = collect(body(&[&format!("{d1}\n\n")])).await;
        assert_eq!(items.len(), 3);
        assert_eq!(items[1], Ok(LlmChunk::Delta("a".into())));
        assert_eq!(items[2], Err(LlmError::Stream(CUT.into())));
    }

    #[tokio::test]
    async fn a_transport_error_is_cut() {
        let parts: Vec<Result<Bytes, std::io::Error>> = vec![Err(std::io::Error::other("reset"))];
        assert_eq!(
            collect(stream::iter(parts)).await,
            vec![Err(LlmError::Stream(CUT.into()))]
        );
    }

    #[tokio::test]
    async fn malformed_json_is_a_stream_error_and_ends_the_stream() {
        let d1 = delta("a");
        let items = collect(body(&[
            &format!("{d1}\n\ndata: {{oops\n\n"),
            &delta("b"),
            "\n\n",
        ]))
        .await;
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[2], Err(LlmError::Stream(m)) if m.starts_with("malformed chunk")));
    }

    #[tokio::test]
    async fn nothing_after_done_is_read() {
        let items = collect(body(&["data: [DONE]\n\n", "data: {oops\n\n"])).await;
        assert!(items.is_empty());
    }

    #[tokio::test]
    async fn provider_error_events_are_redacted() {
        let items = collect(body(&[
            r#"data: {"error":{"message":"bad key k3y"}}"#,
            "\n\n",
        ]))
        .await;
        assert_eq!(
            items,
            vec![Err(LlmError::Stream(
                "provider error: bad key [redacted]".into()
            ))]
        );
    }
}
