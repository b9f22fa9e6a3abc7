//! Entities and value objects of the chat domain.

mod chat;
mod event;
mod ids;
mod message;
mod page;

pub use chat::*;
pub use event::*;
pub use ids::*;
pub use message::*;
pub use page::*;
