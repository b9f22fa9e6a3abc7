//! Per-worker measurements (HDR histograms, status counts, a per-second timeline) and
//! their merged JSON summary.

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest latency a histogram holds (longer values are clamped to it), in microseconds.
const MAX_MICROS: u64 = 15 * 60 * 1_000_000;

fn histogram() -> Option<Histogram<u64>> {
    // 1 µs .. 15 min at 3 significant digits: valid bounds, so this is always `Some`.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).ok()
}

/// How a request ended, for the counters and the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer (for streams: the stream ended with `reply`).
    Ok,
    /// An HTTP status that is not 2xx (or a stream that ended with `error`).
    Status(u16),
    /// No answer within the per-request timeout: a hung request.
    Timeout,
    /// Connection refused, reset, cut mid-body…
    Transport,
}

/// A named latency distribution.
#[derive(Debug, Clone)]
pub struct Dist(Option<Histogram<u64>>);

impl Default for Dist {
    fn default() -> Self {
        Self(histogram())
    }
}

impl Dist {
    /// Adds one value.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS);
        if let Some(h) = &mut self.0 {
            let _ = h.record(us.clamp(1, MAX_MICROS));
        }
    }

    /// Adds another distribution.
    pub fn merge(&mut self, other: &Dist) {
        if let (Some(a), Some(b)) = (&mut self.0, &other.0) {
            let _ = a.add(b);
        }
    }

    /// The p-th percentile in milliseconds.
    pub fn pct_ms(&self, p: f64) -> f64 {
        self.0
            .as_ref()
            .map_or(0.0, |h| ms(h.value_at_quantile(p / 100.0)))
    }

    /// `{count, mean, p50, p90, p99, p999, max}` in milliseconds, or `null` when empty.
    pub fn summary(&self) -> Value {
        let Some(h) = self.0.as_ref().filter(|h| !h.is_empty()) else {
            return Value::Null;
        };
        json!({
            "count": h.len(),
            "mean": round3(h.mean() / 1000.0),
            "p50": self.pct_ms(50.0),
            "p90": self.pct_ms(90.0),
            "p99": self.pct_ms(99.0),
            "p999": self.pct_ms(99.9),
            "max": ms(h.max()),
        })
    }
}

fn ms(us: u64) -> f64 {
    round3(us as f64 / 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Per-second counts (ok, 503, 409, other failures) for fault runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Second {
    /// Successful requests that ended in this second.
    pub ok: u32,
    /// 503 answers.
    pub s503: u32,
    /// 409 answers.
    pub s409: u32,
    /// Other failures (statuses, timeouts, transport errors).
    pub other: u32,
}

/// What one worker measured; merged at the end.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Whole-request latency of successful requests.
    pub latency: Dist,
    /// Whole-request latency of failed requests (statuses, transport errors).
    pub error_latency: Dist,
    /// Streams: request start to the first `delta` (first token).
    pub ttft: Dist,
    /// Streams: request start to the `message` event (the user message is stored).
    pub first_event: Dist,
    /// Streams: `message` event to the first `delta` (the LLM leg as the client sees it).
    pub message_to_delta: Dist,
    /// Count of each status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that hit the per-request timeout.
    pub timeouts: u64,
    /// Transport failures.
    pub transport: u64,
    /// Successful requests.
    pub ok: u64,
    /// Streams that the client dropped on purpose (`--disconnect-after`).
    pub disconnected: u64,
    /// Per-second outcome counts, by second since the start.
    pub timeline: Vec<Second>,
    /// Examples of transport errors (first few), for the log.
    pub error_samples: Vec<String>,
}

impl Recorder {
    /// Records a finished request.
    pub fn finish(&mut self, start: Instant, run_start: Instant, outcome: Outcome) {
        let took = start.elapsed();
        let sec = usize::try_from(run_start.elapsed().as_secs()).unwrap_or(usize::MAX);
        if sec < 3600 && self.timeline.len() <= sec {
            self.timeline.resize(sec + 1, Second::default());
        }
        let slot = self.timeline.get_mut(sec);
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.latency.record(took);
                if let Some(s) = slot {
                    s.ok += 1;
                }
            }
            Outcome::Status(code) => {
                *self.statuses.entry(code).or_insert(0) += 1;
                self.error_latency.record(took);
                if let Some(s) = slot {
                    match code {
                        503 => s.s503 += 1,
                        409 => s.s409 += 1,
                        _ => s.other += 1,
                    }
                }
            }
            Outcome::Timeout => {
                self.timeouts += 1;
                if let Some(s) = slot {
                    s.other += 1;
                }
            }
            Outcome::Transport => {
                self.transport += 1;
                self.error_latency.record(took);
                if let Some(s) = slot {
                    s.other += 1;
                }
            }
        }
    }

    /// Notes a transport error message (the first few only).
    pub fn sample_error(&mut self, e: impl std::fmt::Display) {
        if self.error_samples.len() < 5 {
            self.error_samples.push(e.to_string());
        }
    }

    /// Adds another worker's measurements.
    pub fn merge(&mut self, o: &Recorder) {
        self.latency.merge(&o.latency);
        self.error_latency.merge(&o.error_latency);
        self.ttft.merge(&o.ttft);
        self.first_event.merge(&o.first_event);
        self.message_to_delta.merge(&o.message_to_delta);
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_insert(0) += v;
        }
        self.timeouts += o.timeouts;
        self.transport += o.transport;
        self.ok += o.ok;
        self.disconnected += o.disconnected;
        if self.timeline.len() < o.timeline.len() {
            self.timeline.resize(o.timeline.len(), Second::default());
        }
        for (a, b) in self.timeline.iter_mut().zip(&o.timeline) {
            a.ok += b.ok;
            a.s503 += b.s503;
            a.s409 += b.s409;
            a.other += b.other;
        }
        for e in &o.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(e.clone());
            }
        }
    }

    /// All requests that ended (any outcome).
    pub fn requests(&self) -> u64 {
        self.ok + self.statuses.values().sum::<u64>() + self.timeouts + self.transport
    }

    /// The JSON summary of a run that lasted `elapsed`.
    pub fn summary(&self, elapsed: Duration, with_timeline: bool) -> Value {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let statuses: BTreeMap<String, u64> = self
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let mut v = json!({
            "elapsed_s": round3(secs),
            "requests": self.requests(),
            "ok": self.ok,
            "rps": round3(self.ok as f64 / secs),
            "statuses": statuses,
            "timeouts": self.timeouts,
            "transport_errors": self.transport,
            "disconnected": self.disconnected,
            "latency_ms": self.latency.summary(),
            "error_latency_ms": self.error_latency.summary(),
            "ttft_ms": self.ttft.summary(),
            "message_event_ms": self.first_event.summary(),
            "message_to_delta_ms": self.message_to_delta.summary(),
            "error_samples": self.error_samples,
        });
        if with_timeline {
            v["timeline"] = json!(self.timeline);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_counts_merge() {
        let t0 = Instant::now();
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for i in 1..=100u64 {
            a.latency.record(Duration::from_millis(i));
        }
        a.ok = 100;
        b.finish(t0, t0, Outcome::Status(503));
        b.finish(t0, t0, Outcome::Timeout);
        a.merge(&b);
        assert_eq!(a.requests(), 102);
        assert_eq!(a.statuses.get(&503), Some(&1));
        assert_eq!(a.timeline[0].s503, 1);
        assert_eq!(a.timeline[0].other, 1);
        let p50 = a.latency.pct_ms(50.0);
        assert!((49.0..=51.0).contains(&p50), "p50 {p50}");
        let s = a.summary(Duration::from_secs(2), false);
        assert_eq!(s["rps"], json!(50.0));
        assert!(s.get("timeline").is_none());
    }
}
