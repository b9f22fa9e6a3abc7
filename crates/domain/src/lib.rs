//! The pure domain of the chat service: entities, value objects, ports and services.
//!
//! This crate has no I/O dependency (no HTTP, database, broker or async runtime), so
//! other Rust services can reuse it with adapters of their own. Everything that talks
//! to the outside world is a *port* (an `async-trait` trait in [`ports`]); the business
//! rules live in [`services`].
//!
//! Values are parsed, not validated: a [`model::ChatTitle`] or a [`model::MessageContent`]
//! can only exist if it satisfies its rules, so a service never sees invalid input.
//!
//! With the `mocks` feature, every port has a `mockall` mock (`MockChatRepository`, …)
//! for other crates' tests.
//!
//! ```
//! use domain::model::{ChatTitle, MessageContent};
//!
//! let title = ChatTitle::parse("  Trip to Lisbon ").unwrap();
//! assert_eq!(title.as_str(), "Trip to Lisbon");
//! assert!(MessageContent::parse("").is_err());
//! ```

#![warn(missing_docs)]

pub mod model;
pub mod ports;
pub mod services;
#[cfg(feature = "testing")]
pub mod testing;

pub use model::*;
