//! When to replace the producer: it made no delivery progress for a while although
//! the broker answers (e.g. a broker that came back with no memory of this producer,
//! answering every produce with UNKNOWN_PRODUCER_ID while librdkafka bumps its epoch
//! and retries forever). Pure logic, fed with observations by the publisher.

use tokio::time::Instant;

/// Tracks how long the broker has been answering without any delivery.
#[derive(Debug, Clone)]
pub struct StallWatch {
    limit: std::time::Duration,
    answering_since: Option<Instant>,
}

impl StallWatch {
    /// Replace after `limit` of answering without progress (two message timeouts).
    pub fn new(limit: std::time::Duration) -> Self {
        Self {
            limit,
            answering_since: None,
        }
    }

    /// A message was delivered: the producer works.
    pub fn progress(&mut self) {
        self.answering_since = None;
    }

    /// While messages wait: whether the broker answered a metadata request at `now`.
    /// A broker that does not answer is down: replacing the producer would not help.
    pub fn observe(&mut self, now: Instant, broker_answered: bool) {
        if broker_answered {
            self.answering_since.get_or_insert(now);
        } else {
            self.answering_since = None;
        }
    }

    /// Whether the producer should be replaced now.
    pub fn should_replace(&self, now: Instant) -> bool {
        self.answering_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.limit)
    }

    /// The producer was replaced: start watching the new one afresh.
    pub fn replaced(&mut self) {
        self.answering_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LIMIT: Duration = Duration::from_secs(20);

    #[test]
    fn a_broker_that_answers_without_deliveries_for_the_limit_means_replace() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(LIMIT);
        assert!(
            !w.should_replace(t0 + Duration::from_secs(3600)),
            "nothing seen yet"
        );
        w.observe(t0, true);
        w.observe(t0 + Duration::from_secs(10), true);
        assert!(!w.should_replace(t0 + Duration::from_secs(19)));
        assert!(w.should_replace(t0 + LIMIT));
        w.replaced();
        assert!(!w.should_replace(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn a_broker_that_is_down_never_means_replace() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(LIMIT);
        for s in 0..100 {
            w.observe(t0 + Duration::from_secs(s), false);
            assert!(!w.should_replace(t0 + Duration::from_secs(s)));
        }
    }

    #[test]
    fn the_clock_starts_when_the_broker_answers_again() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(LIMIT);
        w.observe(t0, true);
        w.observe(t0 + Duration::from_secs(15), false); // it went away
        w.observe(t0 + Duration::from_secs(16), true); // back
        assert!(!w.should_replace(t0 + Duration::from_secs(30)));
        assert!(w.should_replace(t0 + Duration::from_secs(36)));
    }

    #[test]
    fn any_delivery_resets_the_clock() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(LIMIT);
        w.observe(t0, true);
        w.progress();
        w.observe(t0 + Duration::from_secs(19), true);
        assert!(!w.should_replace(t0 + Duration::from_secs(25)));
        assert!(w.should_replace(t0 + Duration::from_secs(39)));
    }
}
