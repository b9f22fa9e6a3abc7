//! Integration tests of the PostgreSQL adapter against a real server: each test on a
//! database of its own (`infra_postgres::testing`).

// Helpers outside `#[test]` functions panic on failure too: this whole binary is tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod branch_reads;
mod chats;
mod concurrency;
mod contract;
mod data;
mod lines;
mod local_reads;
mod messages;
mod migrations;
mod outage;
mod outbox;
mod pool;
mod ssl;
mod support;
mod trees_migration;
mod words;
