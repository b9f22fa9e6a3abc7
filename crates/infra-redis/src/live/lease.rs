//! Leases: a hash per reply (holder, lapse time in ms) and one sorted set of every
//! held lease by lapse time, so lapsed ones are listed without a scan. Times are the
//! caller's. A lease's hash expires [`ACTIVE_TTL`](super::ACTIVE_TTL) after it lapses.

use super::{ms, RedisLive, ACTIVE_TTL};
use crate::scripts;
use chrono::{DateTime, TimeZone, Utc};
use domain::ports::{Lease, LiveError, LiveResult};
use domain::MessageId;
use std::time::Duration;

/// Lease times are kept in microseconds since the epoch (exact in a sorted set's
/// double score until the year 2255).
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn until_us(now: DateTime<Utc>, ttl: Duration) -> i64 {
    micros(now).saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}

fn keep_ms(ttl: Duration) -> u64 {
    ms(ttl).saturating_add(ms(ACTIVE_TTL))
}

pub(super) async fn take(
    live: &RedisLive,
    reply: MessageId,
    holder: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> LiveResult<bool> {
    let k = live.keys(reply);
    let leases = live.leases_key();
    let id = reply.to_string();
    let taken: i64 = live
        .redis_handle()
        .run("lease", |mut c| async move {
            scripts::TAKE_LEASE
                .key(&k.lease)
                .key(&leases)
                .arg(holder)
                .arg(micros(now))
                .arg(until_us(now, ttl))
                .arg(&id)
                .arg(keep_ms(ttl))
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(taken == 1)
}

pub(super) async fn renew(
    live: &RedisLive,
    reply: MessageId,
    holder: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> LiveResult<bool> {
    let k = live.keys(reply);
    let leases = live.leases_key();
    let id = reply.to_string();
    let renewed: i64 = live
        .redis_handle()
        .run("lease", |mut c| async move {
            scripts::RENEW_LEASE
                .key(&k.lease)
                .key(&leases)
                .arg(holder)
                .arg(until_us(now, ttl))
                .arg(&id)
                .arg(keep_ms(ttl))
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(renewed == 1)
}

pub(super) async fn release(live: &RedisLive, reply: MessageId, holder: &str) -> LiveResult<()> {
    let k = live.keys(reply);
    let leases = live.leases_key();
    let id = reply.to_string();
    let _: i64 = live
        .redis_handle()
        .run("lease", |mut c| async move {
            scripts::RELEASE_LEASE
                .key(&k.lease)
                .key(&leases)
                .arg(holder)
                .arg(&id)
                .invoke_async(&mut c)
                .await
        })
        .await?;
    Ok(())
}

pub(super) async fn get(live: &RedisLive, reply: MessageId) -> LiveResult<Option<Lease>> {
    let k = live.keys(reply);
    let (holder, until): (Option<String>, Option<i64>) = live
        .redis_handle()
        .run("lease", |mut c| async move {
            redis::cmd("HMGET")
                .arg(&k.lease)
                .arg("holder")
                .arg("until")
                .query_async(&mut c)
                .await
        })
        .await?;
    let (Some(holder), Some(until)) = (holder, until) else {
        return Ok(None);
    };
    let until = Utc
        .timestamp_micros(until)
        .single()
        .ok_or_else(|| LiveError::Other(format!("lease time {until} out of range")))?;
    Ok(Some(Lease { holder, until }))
}

pub(super) async fn lapsed(
    live: &RedisLive,
    now: DateTime<Utc>,
    limit: usize,
) -> LiveResult<Vec<MessageId>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let leases = live.leases_key();
    let ids: Vec<String> = live
        .redis_handle()
        .run("lease", |mut c| async move {
            redis::cmd("ZRANGE")
                .arg(&leases)
                .arg("-inf")
                .arg(format!("({}", micros(now)))
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query_async(&mut c)
                .await
        })
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| match uuid::Uuid::try_parse(id) {
            Ok(u) => Some(MessageId::from_uuid(u)),
            Err(_) => {
                tracing::warn!(member = %id, "redis: a lease entry that is not a reply id, ignored");
                None
            }
        })
        .collect())
}
