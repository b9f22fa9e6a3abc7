//! Integration tests of the HTTP API over the in-memory adapters: one binary, one
//! `TestApp` per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod chat_updates;
mod chats;
mod conformance;
mod data;
mod data_postgres;
mod errors;
mod fallback;
mod helpers;
mod hostile;
mod idempotency;
mod isolation;
mod kafka;
mod live;
mod live_support;
mod messages;
mod models;
mod ops_docs;
mod ops_metrics;
mod ops_outbox;
mod ops_process;
mod ops_protection;
mod playground;
mod postgres;
mod provider;
mod providers_support;
mod raw;
mod redis_down;
mod redis_support;
mod replicas_redis;
mod send_overlap;
mod send_overlap_support;
mod slow_clients;
mod streaming;
mod titles;
mod trees;
mod usage;
