//! Ports: the traits through which the domain reaches storage, the LLM, the event
//! stream, live reply state and the clock. Adapters implement them; with the `mocks` feature each has
//! a `mockall` mock named `Mock<Trait>`.

mod catalog;
mod clock;
mod data;
mod events;
mod live;
mod llm;
mod storage;
mod turn;
mod usage;

pub use catalog::*;
pub use clock::*;
pub use data::*;
pub use events::*;
pub use live::*;
pub use llm::*;
pub use storage::*;
pub use turn::*;
pub use usage::*;
