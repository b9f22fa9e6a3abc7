//! LLM adapters implementing the domain's `LlmClient` port: the local `echo` model
//! (the embedded default) and an OpenAI-compatible chat-completions client.

mod chunks;
pub mod config;
pub mod echo;
mod errors;
pub mod openai;
pub mod sse;
mod trace;
mod wire;

pub use config::{ApiKey, OpenAiConfig, RetryPolicy};
pub use echo::EchoModel;
pub use openai::{OpenAiClient, OpenAiConfigError};
