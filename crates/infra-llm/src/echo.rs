//! The `echo` model: a local, deterministic stand-in for an LLM provider, so the
//! service works with no provider configured. It streams its reply in several chunks.

use async_trait::async_trait;
use domain::ports::{LlmChunk, LlmClient, LlmError, LlmReply, LlmRequest, LlmStream};
use domain::{Role, Usage};
use futures::StreamExt;
use std::time::Duration;

/// Answers every message with `Echo: <the last user message>`, word by word.
#[derive(Debug, Clone, Default)]
pub struct EchoModel {
    /// Pause between chunks (zero by default).
    pub chunk_delay: Duration,
}

impl EchoModel {
    /// The model name it reports.
    pub const NAME: &'static str = "echo";

    /// An echo model that pauses `chunk_delay` between chunks.
    pub fn with_delay(chunk_delay: Duration) -> Self {
        Self { chunk_delay }
    }

    /// The full reply for a request.
    pub fn reply_text(request: &LlmRequest) -> String {
        let last = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str());
        format!("Echo: {last}")
    }

    /// The reply split into chunks: one per word, keeping the spaces, so the
    /// concatenation is exactly the reply.
    pub fn chunks(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        for c in text.chars() {
            cur.push(c);
            if c == ' ' {
                out.push(std::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    fn usage(request: &LlmRequest, reply: &str) -> Usage {
        let prompt: usize = request
            .messages
            .iter()
            .map(|m| m.content.split_whitespace().count() + 1)
            .sum();
        Usage {
            prompt_tokens: u32::try_from(prompt).unwrap_or(u32::MAX),
            completion_tokens: u32::try_from(reply.split_whitespace().count()).unwrap_or(u32::MAX),
        }
    }
}

#[async_trait]
impl LlmClient for EchoModel {
    async fn complete(&self, request: LlmRequest) -> Result<LlmReply, LlmError> {
        let content = Self::reply_text(&request);
        Ok(LlmReply {
            usage: Some(Self::usage(&request, &content)),
            content,
            model: Self::NAME.into(),
            finish_reason: Some("stop".into()),
        })
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let text = Self::reply_text(&request);
        let usage = Self::usage(&request, &text);
        let mut items: Vec<Result<LlmChunk, LlmError>> =
            vec![Ok(LlmChunk::Model(Self::NAME.into()))];
        items.extend(
            Self::chunks(&text)
                .into_iter()
                .map(|c| Ok(LlmChunk::Delta(c))),
        );
        items.push(Ok(LlmChunk::Usage(usage)));
        items.push(Ok(LlmChunk::Finish("stop".into())));
        let delay = self.chunk_delay;
        let stream = futures::stream::iter(items).then(move |item| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            item
        });
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::PromptMessage;

    fn request(text: &str) -> LlmRequest {
        LlmRequest {
            model: "echo".into(),
            messages: vec![
                PromptMessage {
                    role: Role::System,
                    content: "sys".into(),
                },
                PromptMessage {
                    role: Role::User,
                    content: text.into(),
                },
            ],
            temperature: None,
            max_tokens: None,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn streams_the_echo_in_several_chunks() {
        let mut s = EchoModel::default()
            .stream(request("hello big world"))
            .await
            .unwrap();
        let mut deltas = Vec::new();
        let mut usage = None;
        while let Some(item) = s.next().await {
            match item.unwrap() {
                LlmChunk::Delta(d) => deltas.push(d),
                LlmChunk::Usage(u) => usage = Some(u),
                _ => {}
            }
        }
        assert!(deltas.len() >= 3, "{deltas:?}");
        assert_eq!(deltas.concat(), "Echo: hello big world");
        assert_eq!(usage.map(|u| u.completion_tokens), Some(4));
    }

    #[tokio::test]
    async fn complete_matches_the_stream() {
        let r = EchoModel::default()
            .complete(request("same"))
            .await
            .unwrap();
        assert_eq!(r.content, "Echo: same");
        assert_eq!(r.model, "echo");
    }

    #[test]
    fn chunks_keep_every_character() {
        let text = "a  b\nc ";
        assert_eq!(EchoModel::chunks(text).concat(), text);
    }
}
