//! Waiting for work: wake-ups (such as `NOTIFY`s) coalesced over a short window so a
//! burst of commits costs one claim, with a polling fallback.

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The relay's wake-up stream; polling only once it ended.
pub(super) struct Wakeups {
    stream: Option<BoxStream<'static, ()>>,
    coalesce: Duration,
}

impl Wakeups {
    pub(super) fn new(stream: BoxStream<'static, ()>, coalesce: Duration) -> Self {
        Self {
            stream: Some(stream),
            coalesce,
        }
    }

    /// Drops the wake-ups that arrived so far (the claim about to run serves them).
    pub(super) fn swallow(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            while let Some(Some(())) = stream.next().now_or_never() {}
        }
    }

    /// Waits for a wake-up, `poll`, or shutdown. After a wake-up, waits `coalesce`
    /// more so the rest of a burst arrives, then swallows it: one claim serves all.
    pub(super) async fn wait(&mut self, shutdown: &CancellationToken, poll: Duration) {
        let Some(stream) = self.stream.as_mut() else {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            return;
        };
        let alive = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(poll) => return,
            item = stream.next() => item.is_some(),
        };
        if !alive {
            tracing::warn!("outbox wake-up stream ended; polling only");
            self.stream = None;
            return;
        }
        if !self.coalesce.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(self.coalesce) => {}
            }
        }
        self.swallow();
    }
}
