//! Integration tests of the HTTP API over the in-memory adapters: one binary, one
//! `TestApp` per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod chats;
mod errors;
mod helpers;
mod isolation;
mod kafka;
mod messages;
mod postgres;
mod provider;
mod streaming;
