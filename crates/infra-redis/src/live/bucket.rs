//! Token buckets as GCRA (the generic cell rate algorithm): one key per bucket holding
//! the theoretical arrival time, updated by one script, so every replica takes from the
//! same bucket atomically in one round trip. A bucket expires once it is full again.

use super::RedisLive;
use crate::scripts;
use chrono::{DateTime, Utc};
use domain::ports::{BucketLimit, LiveError, LiveResult, Take};
use std::time::Duration;

pub(super) async fn take_tokens(
    live: &RedisLive,
    key: &str,
    n: u32,
    limit: BucketLimit,
    now: DateTime<Utc>,
) -> LiveResult<Take> {
    if !(limit.per_sec.is_finite() && limit.per_sec > 0.0) || limit.burst == 0 {
        return Err(LiveError::Other(format!("invalid bucket limit {limit:?}")));
    }
    if n == 0 || n > limit.burst {
        return Err(LiveError::Other(format!(
            "cannot take {n} tokens from a bucket of {}",
            limit.burst
        )));
    }
    let bucket = live.redis_handle().key(&format!("bucket:{key}"));
    let interval_us = 1_000_000.0 / limit.per_sec;
    let (allowed, wait_us): (i64, String) = live
        .redis_handle()
        .run("rate_limit", |mut c| async move {
            scripts::TAKE_TOKENS
                .key(&bucket)
                .arg(now.timestamp_micros())
                .arg(format!("{interval_us:.3}"))
                .arg(limit.burst)
                .arg(n)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    if allowed == 1 {
        return Ok(Take::Allowed);
    }
    let wait: f64 = wait_us
        .parse()
        .map_err(|_| LiveError::Other(format!("unreadable wait {wait_us:?}")))?;
    Ok(Take::Limited {
        retry_after: Duration::try_from_secs_f64((wait / 1e6).max(1e-6)).unwrap_or(Duration::MAX),
    })
}
