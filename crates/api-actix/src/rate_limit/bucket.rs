//! Token buckets keyed by user, with bounded memory: a bucket that has refilled to
//! full is the same as no bucket, so idle ones are swept away.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most users tracked at once by one limiter; past this, new users pass unmetered
/// until a sweep frees room (a bucket takes about 100 bytes).
pub const MAX_TRACKED: usize = 100_000;

/// How often idle buckets are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Shortest pause between two sweeps when the limiter is full.
const SWEEP_WHEN_FULL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Inner {
    buckets: HashMap<String, Bucket>,
    last_sweep: Instant,
}

/// Token buckets: `rate` tokens per second, holding at most `burst`; a request takes one.
#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: f64,
    max_tracked: usize,
    inner: Mutex<Inner>,
}

impl Limiter {
    /// A limiter refilling `rate_per_sec` tokens per second up to `burst`; `None`
    /// when the rate is zero (the limit is off).
    pub fn new(rate_per_sec: f64, burst: u32) -> Option<Self> {
        Self::with_capacity(rate_per_sec, burst, MAX_TRACKED)
    }

    /// Like [`Limiter::new`], tracking at most `max_tracked` users.
    pub fn with_capacity(rate_per_sec: f64, burst: u32, max_tracked: usize) -> Option<Self> {
        (rate_per_sec > 0.0 && rate_per_sec.is_finite()).then(|| Self {
            rate: rate_per_sec,
            burst: f64::from(burst.max(1)),
            max_tracked,
            inner: Mutex::new(Inner {
                buckets: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        })
    }

    /// Takes a token from `key`'s bucket at `now`; when it is empty, how long until
    /// one is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let since_sweep = now.saturating_duration_since(g.last_sweep);
        if since_sweep >= SWEEP_EVERY
            || (g.buckets.len() >= self.max_tracked && since_sweep >= SWEEP_WHEN_FULL)
        {
            self.sweep(&mut g, now);
        }
        if !g.buckets.contains_key(key) {
            if g.buckets.len() >= self.max_tracked {
                return Ok(());
            }
            g.buckets.insert(
                key.to_owned(),
                Bucket {
                    tokens: self.burst,
                    at: now,
                },
            );
        }
        let Some(b) = g.buckets.get_mut(key) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }

    /// Users tracked right now.
    pub fn tracked(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }

    fn sweep(&self, g: &mut Inner, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        g.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
        g.last_sweep = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rate_is_off() {
        assert!(Limiter::new(0.0, 10).is_none());
    }

    #[test]
    fn burst_then_refill() {
        let l = Limiter::new(2.0, 3).unwrap();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.check("a", t).is_ok());
        }
        let wait = l.check("a", t).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(l.check("a", t + Duration::from_millis(500)).is_ok());
        assert!(l.check("a", t + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn users_are_independent() {
        let l = Limiter::new(1.0, 1).unwrap();
        let t = Instant::now();
        assert!(l.check("a", t).is_ok());
        assert!(l.check("a", t).is_err());
        assert!(l.check("b", t).is_ok());
    }

    #[test]
    fn idle_buckets_are_swept_and_memory_is_bounded() {
        let l = Limiter::with_capacity(10.0, 5, 100).unwrap();
        let t = Instant::now();
        for i in 0..150 {
            assert!(l.check(&format!("u{i}"), t).is_ok());
        }
        assert_eq!(l.tracked(), 100, "capped");
        // After everyone refilled, a sweep drops them all and the new user is tracked.
        let later = t + SWEEP_EVERY;
        assert!(l.check("new", later).is_ok());
        assert_eq!(l.tracked(), 1);
    }
}
