//! Entities and value objects of the chat domain.

mod catalog;
mod chat;
mod event;
mod idempotency;
mod ids;
mod message;
mod page;
mod search;
pub mod text;
mod usage;

pub use catalog::*;
pub use chat::*;
pub use event::*;
pub use idempotency::*;
pub use ids::*;
pub use message::*;
pub use page::*;
pub use search::*;
pub use usage::*;
