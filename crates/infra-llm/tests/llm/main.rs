//! Integration tests of the OpenAI-compatible client: wiremock with real
//! `text/event-stream` bodies, a raw TCP server for byte-level splits and stalls,
//! and the `fake-llm` server with each of its faults.
// Helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod complete;
mod discovery;
mod fake;
mod helpers;
mod retries;
mod router;
mod streaming;
mod timeouts;
