//! Resident memory of another process, read from `/proc/<pid>/status` (Linux), and a
//! background sampler that keeps the peak.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `VmRSS` of `pid` in KiB, if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// `VmHWM` (peak resident size) of `pid` in KiB, if readable.
pub fn hwm_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_field(&text, name)
}

fn parse_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Samples a process's RSS every 100 ms until stopped.
#[derive(Debug)]
pub struct Sampler {
    pid: u32,
    start_kib: Option<u64>,
    max_kib: Arc<AtomicU64>,
    last_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Sampler {
    /// Starts sampling `pid` on the current runtime.
    pub fn start(pid: u32) -> Self {
        let start_kib = rss_kib(pid);
        let max_kib = Arc::new(AtomicU64::new(start_kib.unwrap_or(0)));
        let last_kib = Arc::new(AtomicU64::new(start_kib.unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, l, s) = (max_kib.clone(), last_kib.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    m.fetch_max(kib, Ordering::Relaxed);
                    l.store(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            pid,
            start_kib,
            max_kib,
            last_kib,
            stop,
        }
    }

    /// Stops sampling; `{pid, start_kib, max_kib, end_kib, hwm_kib}`.
    pub fn finish(self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        let end = rss_kib(self.pid).unwrap_or_else(|| self.last_kib.load(Ordering::Relaxed));
        json!({
            "pid": self.pid,
            "start_kib": self.start_kib,
            "max_kib": self.max_kib.load(Ordering::Relaxed).max(end),
            "end_kib": end,
            "hwm_kib": hwm_kib(self.pid),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_fields() {
        let text = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_field(text, "VmRSS:"), Some(1024));
        assert_eq!(parse_field(text, "VmHWM:"), Some(2048));
        assert_eq!(parse_field(text, "VmSwap:"), None);
    }

    #[test]
    fn reads_this_process() {
        let kib = rss_kib(std::process::id()).unwrap_or(0);
        assert!(kib > 0);
    }
}
