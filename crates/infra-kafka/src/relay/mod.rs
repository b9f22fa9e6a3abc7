//! The outbox relay: moves events from the transactional outbox to the event
//! publisher, marking them published only once the publisher acknowledged them.
//!
//! It only knows the two ports ([`Outbox`], [`EventPublisher`]), so it works with
//! any storage and any destination, and is tested with mocks.

mod backoff;
mod stats;
#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use stats::{RelayStats, RelayStatsSnapshot};

use domain::model::Event;
use domain::ports::{EventPublisher, Outbox, OutboxEntry, PublishError, StoreError};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How the relay works. [`RelayConfig::default`] suits production.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Names this relay in the outbox leases; unique per process (default: random).
    pub relay_id: String,
    /// Most entries claimed and published at once (default 256).
    pub batch_size: u32,
    /// How long claimed entries stay leased to this relay (default 2 min). Must be
    /// longer than a publish can take (the Kafka message timeout plus a margin).
    pub lease: Duration,
    /// Claim anyway this often when no wake-up came (default 2 s).
    pub poll_interval: Duration,
    /// First back-off delay after a failure (default 200 ms).
    pub backoff_initial: Duration,
    /// Longest back-off delay (default 30 s).
    pub backoff_max: Duration,
    /// Published entries older than this are deleted (default 7 days).
    pub retention: Duration,
    /// How often to prune (default 1 h; the first prune runs at start).
    pub prune_interval: Duration,
    /// How often at most to count the backlog (default 1 s).
    pub backlog_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            relay_id: format!("relay-{:016x}", rand::random::<u64>()),
            batch_size: 256,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(3600),
            backlog_interval: Duration::from_secs(1),
        }
    }
}

/// Why one relay cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The outbox could not be read or updated.
    #[error("outbox operation failed")]
    Store(#[source] StoreError),
    /// The publisher refused or could not reach its destination.
    #[error("publishing failed")]
    Publish(#[source] PublishError),
}

/// Publishes the outbox. Build with [`OutboxRelay::new`], then [`OutboxRelay::run`]
/// it (or [`OutboxRelay::spawn`] it) until the shutdown token is cancelled.
pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    config: RelayConfig,
    stats: Arc<RelayStats>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// A relay from `outbox` to `publisher`.
    pub fn new(
        outbox: Arc<dyn Outbox>,
        publisher: Arc<dyn EventPublisher>,
        config: RelayConfig,
    ) -> Self {
        Self {
            outbox,
            publisher,
            config,
            stats: Arc::new(RelayStats::default()),
        }
    }

    /// The relay's counters, to read from `/metrics` and `/readyz`.
    pub fn stats(&self) -> Arc<RelayStats> {
        Arc::clone(&self.stats)
    }

    /// Runs [`OutboxRelay::run`] on a tokio task.
    pub fn spawn(
        self,
        wakeups: BoxStream<'static, ()>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(wakeups, shutdown))
    }

    /// Publishes until `shutdown` is cancelled; a batch in hand is finished first.
    ///
    /// Claims a batch, publishes it and marks it; when the outbox is empty it waits
    /// for an item of `wakeups` (such as a `NOTIFY`) or `poll_interval`, whichever
    /// comes first; after a failure it backs off exponentially. If `wakeups` ends,
    /// polling goes on alone.
    #[tracing::instrument(name = "outbox_relay", skip_all, fields(relay = %self.config.relay_id))]
    pub async fn run(self, wakeups: BoxStream<'static, ()>, shutdown: CancellationToken) {
        tracing::info!("outbox relay started");
        let mut wakeups = Some(wakeups);
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut next_prune = Instant::now();
        let mut next_backlog = Instant::now();
        while !shutdown.is_cancelled() {
            if Instant::now() >= next_prune {
                self.prune().await;
                next_prune = Instant::now() + self.config.prune_interval;
            }
            let outcome = self.run_once().await;
            if Instant::now() >= next_backlog {
                self.refresh_backlog().await;
                next_backlog = Instant::now() + self.config.backlog_interval;
            }
            match outcome {
                Ok(0) => {
                    backoff.reset();
                    wait_for_work(&mut wakeups, &shutdown, self.config.poll_interval).await;
                }
                Ok(_) => backoff.reset(),
                Err(_) => {
                    let delay = backoff.next_delay();
                    tracing::debug!(?delay, failures = backoff.failures(), "backing off");
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// One cycle: claim a batch, publish it, mark it published (or give it back).
    /// Returns how many events were published and marked; `Ok(0)` means the
    /// outbox had nothing for this relay.
    pub async fn run_once(&self) -> Result<usize, RelayError> {
        let c = &self.config;
        let entries = self
            .outbox
            .claim(&c.relay_id, c.batch_size, c.lease)
            .await
            .map_err(|e| self.store_failed("claiming outbox entries", e))?;
        if entries.is_empty() {
            return Ok(0);
        }
        let (positions, events) = split(entries);
        match self.publisher.publish(&events).await {
            Ok(()) => {
                self.published_ok();
                self.mark(&positions).await
            }
            Err(err @ PublishError::Retriable(_)) => {
                self.publish_failed(&err);
                self.release(&positions).await;
                Err(RelayError::Publish(err))
            }
            Err(err @ PublishError::Final(_)) => {
                self.publish_failed(&err);
                self.isolate_per_chat(positions, events).await?;
                Err(RelayError::Publish(err))
            }
        }
    }

    /// After a final error, publishes each chat's events on their own so one
    /// poisonous event holds back only its own chat.
    async fn isolate_per_chat(
        &self,
        positions: Vec<i64>,
        events: Vec<Event>,
    ) -> Result<(), RelayError> {
        let mut chats: Vec<(domain::model::ChatId, Vec<i64>, Vec<Event>)> = Vec::new();
        for (position, event) in positions.into_iter().zip(events) {
            match chats.iter_mut().find(|(id, _, _)| *id == event.chat_id) {
                Some((_, p, e)) => {
                    p.push(position);
                    e.push(event);
                }
                None => chats.push((event.chat_id, vec![position], vec![event])),
            }
        }
        if let [(_, positions, _)] = chats.as_slice() {
            self.release(positions).await;
            return Ok(());
        }
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for (chat_id, positions, events) in chats {
            match self.publisher.publish(&events).await {
                Ok(()) => done.extend(positions),
                Err(err) => {
                    tracing::error!(%chat_id, error = %chain(&err), "chat's events cannot be published");
                    failed.extend(positions);
                }
            }
        }
        self.release(&failed).await;
        if !done.is_empty() {
            self.published_ok();
            self.mark(&done).await?;
        }
        Ok(())
    }

    async fn mark(&self, positions: &[i64]) -> Result<usize, RelayError> {
        match self
            .outbox
            .mark_published(&self.config.relay_id, positions)
            .await
        {
            Ok(()) => {
                self.stats.record_published(positions.len());
                Ok(positions.len())
            }
            Err(e) => {
                // Published but not marked: they will go out again (same ids).
                let err = self.store_failed("marking outbox entries published", e);
                self.release(positions).await;
                Err(err)
            }
        }
    }

    async fn release(&self, positions: &[i64]) {
        if positions.is_empty() {
            return;
        }
        if let Err(e) = self.outbox.release(&self.config.relay_id, positions).await {
            // The lease expires on its own; the entries come back then.
            self.store_failed("releasing outbox entries", e);
        }
    }

    async fn refresh_backlog(&self) {
        match self.outbox.backlog().await {
            Ok(n) => self.stats.set_backlog(n),
            Err(e) => {
                self.store_failed("counting the outbox backlog", e);
            }
        }
    }

    async fn prune(&self) {
        let retention = chrono::Duration::from_std(self.config.retention)
            .unwrap_or_else(|_| chrono::Duration::days(7));
        let before = chrono::Utc::now() - retention;
        match self.outbox.prune(before).await {
            Ok(n) if n > 0 => {
                tracing::info!(deleted = n, %before, "pruned published outbox entries")
            }
            Ok(_) => {}
            Err(e) => {
                self.store_failed("pruning the outbox", e);
            }
        }
    }

    fn published_ok(&self) {
        if !self.stats.set_broker_up(true) {
            tracing::info!("event destination reachable again");
        }
    }

    fn publish_failed(&self, err: &PublishError) {
        self.stats.record_publish_error(&chain(err));
        match err {
            PublishError::Retriable(_) => {
                if self.stats.set_broker_up(false) {
                    tracing::warn!(error = %chain(err), "event destination unreachable; events wait in the outbox");
                } else {
                    tracing::debug!(error = %chain(err), "event destination still unreachable");
                }
            }
            PublishError::Final(_) => {
                tracing::error!(error = %chain(err), "events refused by the destination")
            }
        }
    }

    fn store_failed(&self, what: &'static str, err: StoreError) -> RelayError {
        let text = format!("{what}: {}", chain(&err));
        tracing::warn!(error = %text, "outbox operation failed");
        self.stats.record_store_error(&text);
        RelayError::Store(err)
    }
}

fn split(entries: Vec<OutboxEntry>) -> (Vec<i64>, Vec<Event>) {
    entries.into_iter().map(|e| (e.position, e.event)).unzip()
}

/// Waits for a wake-up, the poll interval, or shutdown; swallows wake-ups that
/// piled up meanwhile so one claim serves them all.
async fn wait_for_work(
    wakeups: &mut Option<BoxStream<'static, ()>>,
    shutdown: &CancellationToken,
    poll: Duration,
) {
    let Some(stream) = wakeups.as_mut() else {
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
    if alive {
        while let Some(Some(())) = stream.next().now_or_never() {}
    } else {
        tracing::warn!("outbox wake-up stream ended; polling only");
        *wakeups = None;
    }
}

/// An error and its causes on one line.
fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
