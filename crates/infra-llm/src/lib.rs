//! LLM adapters: the `LlmClient` port's local `echo` model (the embedded default),
//! OpenAI-compatible chat-completions client and provider router; and the
//! `ModelCatalog` port's adapter with its discovery of each provider's models.

pub mod catalog;
mod chunks;
pub mod config;
pub mod discovery;
pub mod echo;
mod errors;
pub mod openai;
pub mod router;
pub mod sse;
mod trace;
mod wire;

pub use catalog::{CatalogConfig, ModelSettings, ModelSpec, ProviderCatalog, ProviderModels};
pub use config::{ApiKey, OpenAiConfig, RetryPolicy};
pub use discovery::{Discovery, DiscoveryError, ModelLister};
pub use echo::EchoModel;
pub use openai::{OpenAiClient, OpenAiConfigError};
pub use router::ProviderRouter;
