//! One relay cycle: claim a batch, publish it, then settle each entry on its own —
//! delivered ones marked, ones that were not tried given back, ones refused with a
//! final error retried later with their own back-off and, after `max_attempts`, set
//! aside (dead), so one event that can never be published holds back nothing else.

use super::{chain, OutboxRelay, RelayError};
use domain::model::{ChatId, Event};
use domain::ports::{AfterFailure, Delivery, FailedAttempt, OutboxEntry, PublishError};
use std::collections::HashSet;
use std::time::Duration;

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cycle {
    /// Entries claimed (0: the outbox had nothing for this relay).
    pub claimed: usize,
    /// Entries published and marked.
    pub published: usize,
    /// Entries refused with a final error that will be tried again.
    pub retrying: usize,
    /// Entries set aside (dead) in this cycle.
    pub set_aside: usize,
    /// The shortest retry delay given to an entry in this cycle.
    pub next_retry: Option<Duration>,
}

/// The entries of a cycle, sorted by what becomes of them.
#[derive(Default)]
struct Settlement {
    delivered: Vec<i64>,
    give_back: Vec<i64>,
    failures: Vec<FailedAttempt>,
    /// The destination could not be reached or refused the service.
    unreachable: Option<PublishError>,
}

impl OutboxRelay {
    /// One cycle: claim a batch, publish it, settle every entry.
    ///
    /// Entries that failed before are published first, each alone (a batch refused as
    /// a whole for one poisonous event blames its neighbours once; alone, they go
    /// through), and an entry that fails stops its chat's later entries of the batch.
    /// Returns `Err(Publish)` only when the destination was unreachable (or refused the
    /// service) and nothing was delivered: the caller backs off.
    pub async fn run_once(&self) -> Result<Cycle, RelayError> {
        let c = &self.config;
        let entries = self
            .outbox
            .claim(&c.relay_id, c.batch_size, c.lease)
            .await
            .map_err(|e| self.store_failed("claiming outbox entries", e))?;
        let mut cycle = Cycle {
            claimed: entries.len(),
            ..Cycle::default()
        };
        if entries.is_empty() {
            return Ok(cycle);
        }
        let results = self.publish_all(&entries).await;
        let mut s = Settlement::default();
        for (entry, delivery) in entries.iter().zip(results) {
            self.settle(entry, delivery, &mut s, &mut cycle);
        }
        self.report(&s);
        if !s.failures.is_empty() {
            if let Err(e) = self.outbox.record_failures(&c.relay_id, &s.failures).await {
                // The lease runs out; the entries are tried again then, uncounted.
                self.store_failed("recording failed outbox entries", e);
            }
        }
        self.release(&s.give_back).await;
        if !s.delivered.is_empty() {
            cycle.published = self.mark(&s.delivered).await?;
        }
        match s.unreachable {
            Some(err) if cycle.published == 0 => Err(RelayError::Publish(err)),
            _ => Ok(cycle),
        }
    }

    /// Publishes the entries: suspects (failed before) one by one first, then the rest
    /// as one batch; an undelivered entry withholds its chat's later ones, and a
    /// suspect that finds the destination unreachable withholds everything.
    async fn publish_all(&self, entries: &[OutboxEntry]) -> Vec<Delivery> {
        let mut results: Vec<Option<Delivery>> = entries.iter().map(|_| None).collect();
        let mut stopped: HashSet<ChatId> = HashSet::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.attempts == 0 {
                continue;
            }
            if stopped.contains(&entry.event.chat_id) {
                results[i] = Some(Delivery::Withheld);
                continue;
            }
            let delivery = self
                .publisher
                .publish(std::slice::from_ref(&entry.event))
                .await
                .into_deliveries()
                .pop()
                .unwrap_or(Delivery::Withheld);
            let unreachable = matches!(
                delivery,
                Delivery::Failed(PublishError::Retriable(_) | PublishError::Refused(_))
            );
            if !delivery.is_delivered() {
                stopped.insert(entry.event.chat_id);
            }
            results[i] = Some(delivery);
            if unreachable {
                // The destination is the problem: try nothing more this cycle.
                return results
                    .into_iter()
                    .map(|d| d.unwrap_or(Delivery::Withheld))
                    .collect();
            }
        }
        let mut rest: Vec<usize> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            if stopped.contains(&entry.event.chat_id) {
                results[i] = Some(Delivery::Withheld);
            } else {
                rest.push(i);
            }
        }
        if !rest.is_empty() {
            let events: Vec<Event> = rest.iter().map(|&i| entries[i].event.clone()).collect();
            let mut deliveries = self.publisher.publish(&events).await.into_deliveries();
            // A publisher owes one delivery per event; a missing one was not tried.
            deliveries.resize_with(rest.len(), || Delivery::Withheld);
            for (i, d) in rest.into_iter().zip(deliveries) {
                results[i] = Some(d);
            }
        }
        results
            .into_iter()
            .map(|d| d.unwrap_or(Delivery::Withheld))
            .collect()
    }

    fn settle(
        &self,
        entry: &OutboxEntry,
        delivery: Delivery,
        s: &mut Settlement,
        cycle: &mut Cycle,
    ) {
        match delivery {
            Delivery::Delivered => s.delivered.push(entry.position),
            Delivery::Withheld => s.give_back.push(entry.position),
            Delivery::Failed(err @ (PublishError::Retriable(_) | PublishError::Refused(_))) => {
                s.give_back.push(entry.position);
                s.unreachable = Some(match s.unreachable.take() {
                    Some(e) => e.worse(err),
                    None => err,
                });
            }
            Delivery::Failed(err @ PublishError::Final(_)) => {
                let error = chain(&err);
                let attempt = entry.attempts.saturating_add(1);
                let (chat_id, event_id) = (entry.event.chat_id, entry.event.id);
                let then = if attempt >= self.config.max_attempts {
                    cycle.set_aside += 1;
                    self.stats.record_dead();
                    tracing::error!(
                        %chat_id, %event_id, event_type = entry.event.kind.type_name(),
                        position = entry.position, attempts = attempt, error = %error,
                        "event set aside (dead): it can never be published as it is; \
                         the chat's later events go on without it \
                         (`chat-service outbox retry-dead` tries it again)"
                    );
                    AfterFailure::SetAside
                } else {
                    let delay = self.config.retry_delay(entry.attempts);
                    cycle.retrying += 1;
                    cycle.next_retry = Some(cycle.next_retry.map_or(delay, |d| d.min(delay)));
                    tracing::warn!(
                        %chat_id, %event_id, attempts = attempt, retry_in = ?delay, error = %error,
                        "event refused by the destination; its chat waits for the retry"
                    );
                    AfterFailure::RetryAfter(delay)
                };
                self.stats.record_publish_error(&error);
                s.failures.push(FailedAttempt {
                    position: entry.position,
                    error,
                    then,
                });
            }
        }
    }

    /// Updates the destination's state from a cycle's outcome.
    fn report(&self, s: &Settlement) {
        if !s.delivered.is_empty() && !self.stats.set_broker_up(true) {
            tracing::info!("event destination reachable again");
        }
        let Some(err) = &s.unreachable else { return };
        self.stats.record_publish_error(&chain(err));
        if s.delivered.is_empty() {
            let was_up = self.stats.set_broker_up(false);
            match err {
                PublishError::Refused(_) if was_up => tracing::error!(
                    error = %chain(err),
                    "the event destination refuses this service (check the Kafka settings); \
                     events wait in the outbox"
                ),
                _ if was_up => tracing::warn!(
                    error = %chain(err),
                    "event destination unreachable; events wait in the outbox"
                ),
                _ => tracing::debug!(error = %chain(err), "event destination still failing"),
            }
        }
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
}
