//! The OpenAI Chat Completions wire types: the request body, the whole reply and
//! the streamed chunk, read leniently (unknown fields ignored, missing ones defaulted).

use domain::ports::{LlmReply, LlmRequest};
use domain::Usage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Debug, Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

/// The JSON body of a `POST /chat/completions` for `request`.
pub(crate) fn request_body(
    request: &LlmRequest,
    stream: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ChatRequest {
        model: &request.model,
        messages: request
            .messages
            .iter()
            .map(|m| WireMessage {
                role: m.role.as_str(),
                content: &m.content,
            })
            .collect(),
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
    })
}

/// Token usage as the provider reports it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            prompt_tokens: u32::try_from(u.prompt_tokens).unwrap_or(u32::MAX),
            completion_tokens: u32::try_from(u.completion_tokens).unwrap_or(u32::MAX),
        }
    }
}

/// The `error` object some providers put in a body or a stream event.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum WireError {
    /// `{"message": "...", "type": ..., "code": ...}` (OpenAI, vLLM, LiteLLM).
    Object {
        #[serde(default)]
        message: Option<String>,
    },
    /// `"..."` (Ollama, llama.cpp in places).
    Text(String),
}

impl WireError {
    pub(crate) fn message(&self) -> Option<&str> {
        match self {
            WireError::Object { message } => message.as_deref(),
            WireError::Text(t) => Some(t),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireDelta {
    #[serde(default)]
    pub(crate) content: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireChunkChoice {
    #[serde(default)]
    pub(crate) index: u32,
    #[serde(default)]
    pub(crate) delta: Option<WireDelta>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

/// One `data:` event of a streamed reply.
#[derive(Debug, Deserialize)]
pub(crate) struct WireChunk {
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) choices: Vec<WireChunkChoice>,
    #[serde(default)]
    pub(crate) usage: Option<WireUsage>,
    #[serde(default)]
    pub(crate) error: Option<WireError>,
}

#[derive(Debug, Default, Deserialize)]
struct WireMessageOut {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    message: Option<WireMessageOut>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// A whole (non-streamed) reply.
#[derive(Debug, Deserialize)]
pub(crate) struct WireCompletion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

impl WireCompletion {
    /// The domain reply; `None` when the provider sent no choice.
    pub(crate) fn into_reply(self, requested_model: &str) -> Option<LlmReply> {
        let choice = self.choices.into_iter().find(|c| c.index == 0)?;
        Some(LlmReply {
            content: choice.message.and_then(|m| m.content).unwrap_or_default(),
            model: self
                .model
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| requested_model.to_owned()),
            usage: self.usage.map(Usage::from),
            finish_reason: choice.finish_reason,
        })
    }
}

/// The body of an error response: `{"error": {...}}`, `{"error": "..."}`,
/// `{"message": "..."}` or `{"detail": "..."}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireErrorBody {
    #[serde(default)]
    error: Option<WireError>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

impl WireErrorBody {
    /// The provider's explanation, if the body carries one.
    pub(crate) fn into_message(self) -> Option<String> {
        if let Some(m) = self.error.as_ref().and_then(WireError::message) {
            return Some(m.to_owned());
        }
        self.message.or_else(|| match self.detail? {
            serde_json::Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::PromptMessage;
    use domain::Role;

    fn request() -> LlmRequest {
        LlmRequest {
            model: "m".into(),
            messages: vec![
                PromptMessage {
                    role: Role::System,
                    content: "be brief".into(),
                },
                PromptMessage {
                    role: Role::User,
                    content: "hi".into(),
                },
            ],
            temperature: Some(0.5),
            max_tokens: None,
            request_id: None,
        }
    }

    #[test]
    fn streamed_body_asks_for_usage_and_skips_unset_fields() {
        let body: serde_json::Value =
            serde_json::from_slice(&request_body(&request(), true).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "m",
                "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                "temperature": 0.5,
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn whole_body_has_no_stream_options() {
        let mut r = request();
        r.max_tokens = Some(7);
        let body: serde_json::Value =
            serde_json::from_slice(&request_body(&r, false).unwrap()).unwrap();
        assert_eq!(body["stream"], false);
        assert_eq!(body["max_tokens"], 7);
        assert!(body.get("stream_options").is_none());
    }

    #[test]
    fn error_bodies_of_several_providers() {
        let parse = |s: &str| {
            serde_json::from_str::<WireErrorBody>(s)
                .unwrap()
                .into_message()
        };
        assert_eq!(
            parse(r#"{"error":{"message":"too long","type":"x"}}"#).as_deref(),
            Some("too long")
        );
        assert_eq!(
            parse(r#"{"error":"model not found"}"#).as_deref(),
            Some("model not found")
        );
        assert_eq!(parse(r#"{"detail":"bad"}"#).as_deref(), Some("bad"));
        assert_eq!(
            parse(r#"{"object":"error","message":"vllm says"}"#).as_deref(),
            Some("vllm says")
        );
        assert_eq!(parse("{}"), None);
    }
}
