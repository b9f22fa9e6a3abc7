//! Statements on `outbox`: appending events, claiming them under a lease, marking,
//! releasing, recording failed attempts, dead entries, counting and pruning.

use crate::errors::PgError;
use crate::rows::NewOutboxRow;
use crate::schema::outbox;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid};

/// Key of the transaction-level advisory lock that serializes claims (`'outbox'` in ASCII).
const CLAIM_LOCK: i64 = 0x6f75_7462_6f78;

/// Appends events, in order, to the outbox.
pub(crate) fn append(conn: &mut PgConnection, rows: &[NewOutboxRow]) -> Result<(), PgError> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(outbox::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}

/// The relay's own bookkeeping commits without waiting for the WAL flush: if the
/// database crashes before the flush, a lease or a mark is lost and the entries are
/// published again (at least once; consumers drop duplicates by event id). The
/// changes whose events these are were committed durably by their own transactions.
/// Must run first inside the transaction it applies to.
pub(crate) fn relaxed_commit(conn: &mut PgConnection) -> Result<(), PgError> {
    diesel::sql_query("SET LOCAL synchronous_commit = off").execute(conn)?;
    Ok(())
}

/// An entry handed to a relay.
#[derive(Debug, QueryableByName)]
pub(crate) struct ClaimedRow {
    #[diesel(sql_type = BigInt)]
    pub position: i64,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Leases up to `limit` pending entries to `relay` for `lease_ms`, oldest first.
///
/// An entry is handed out only if it is pending (neither published nor dead), not
/// leased (or its lease ran out), past its retry time, and no earlier pending entry of
/// its chat holds a live lease or waits for its retry time, so a chat's entries are
/// published in order however many relays run and while one of them is retried. Claims
/// are serialized by a transaction-level advisory lock (they are one short statement):
/// with concurrent claims, `SKIP LOCKED` alone could hand a later entry of a chat to one
/// relay while another relay is still locking the earlier one. Must run inside a
/// transaction.
pub(crate) fn claim(
    conn: &mut PgConnection,
    relay: &str,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<ClaimedRow>, PgError> {
    // The lock, and the per-chat check hashed whatever the statistics say (estimates
    // taken when nearly everything was published make the planner pick a nested loop,
    // see below): one statement, the setting for this transaction only — the relay's
    // other statements (a failure's `UPDATE … FROM unnest(…)`) need their nested loops.
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock($1), set_config('enable_nestloop', 'off', true)",
    )
    .bind::<BigInt, _>(CLAIM_LOCK)
    .execute(conn)?;
    let mut rows = diesel::sql_query(
        // `blocked`: per chat, the oldest pending entry that is leased or backing off;
        // an entry behind it in its chat waits (per-chat order). Computed once, as its
        // own scan of the pending entries, and joined by hash, so the cost stays linear in
        // the backlog whatever the statistics say: as a nested loop (what a planner that
        // believes the table nearly empty picks, with statistics from before an outage)
        // it is quadratic in the backlog: 34,000 pending events never got past the
        // statement timeout (170,000: 7.7 s; hashed, 0.2 s), and the relay stalled.
        "WITH blocked AS MATERIALIZED ( \
            SELECT b.chat_id, min(b.position) AS position FROM outbox b \
            WHERE b.published_at IS NULL AND b.dead_at IS NULL \
              AND (b.lease_until >= statement_timestamp() \
                   OR b.next_attempt_at > statement_timestamp()) \
            GROUP BY b.chat_id \
         ), candidates AS ( \
            SELECT o.position FROM outbox o \
            WHERE o.published_at IS NULL AND o.dead_at IS NULL \
              AND (o.lease_until IS NULL OR o.lease_until < statement_timestamp()) \
              AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= statement_timestamp()) \
              AND NOT EXISTS ( \
                  SELECT 1 FROM blocked k \
                  WHERE k.chat_id = o.chat_id AND k.position < o.position) \
            ORDER BY o.position \
            LIMIT $1 \
            FOR UPDATE OF o SKIP LOCKED \
         ) \
         UPDATE outbox o \
         SET lease_owner = $2, \
             lease_until = statement_timestamp() + $3 * interval '1 millisecond' \
         FROM candidates c WHERE o.position = c.position \
         RETURNING o.position, o.payload, o.attempts",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Text, _>(relay)
    .bind::<BigInt, _>(lease_ms)
    .load::<ClaimedRow>(conn)?;
    rows.sort_by_key(|r| r.position);
    Ok(rows)
}

/// Marks entries published, whoever holds their lease (they were published).
pub(crate) fn mark_published(conn: &mut PgConnection, positions: &[i64]) -> Result<(), PgError> {
    diesel::sql_query(
        "UPDATE outbox SET published_at = statement_timestamp(), lease_owner = NULL, \
             lease_until = NULL, next_attempt_at = NULL \
         WHERE position = ANY($1) AND published_at IS NULL",
    )
    .bind::<Array<BigInt>, _>(positions)
    .execute(conn)?;
    Ok(())
}

/// Gives back pending entries `relay` holds, untouched.
pub(crate) fn release(
    conn: &mut PgConnection,
    relay: &str,
    positions: &[i64],
) -> Result<(), PgError> {
    diesel::sql_query(
        "UPDATE outbox SET lease_owner = NULL, lease_until = NULL \
         WHERE position = ANY($1) AND published_at IS NULL AND dead_at IS NULL \
           AND lease_owner = $2",
    )
    .bind::<Array<BigInt>, _>(positions)
    .bind::<Text, _>(relay)
    .execute(conn)?;
    Ok(())
}

/// One failed attempt, as bound to [`record_failures`].
pub(crate) struct Failure {
    pub position: i64,
    pub error: String,
    /// `None`: set the entry aside (dead).
    pub retry_ms: Option<i64>,
}

/// Counts a failed attempt at each pending entry `relay` holds, keeps the error, and
/// either sets its retry time or sets it aside. Returns how many rows changed.
pub(crate) fn record_failures(
    conn: &mut PgConnection,
    relay: &str,
    failures: &[Failure],
) -> Result<usize, PgError> {
    let positions: Vec<i64> = failures.iter().map(|f| f.position).collect();
    let errors: Vec<&str> = failures.iter().map(|f| f.error.as_str()).collect();
    let dead: Vec<bool> = failures.iter().map(|f| f.retry_ms.is_none()).collect();
    let retry: Vec<i64> = failures.iter().map(|f| f.retry_ms.unwrap_or(0)).collect();
    Ok(diesel::sql_query(
        "UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.error, \
             lease_owner = NULL, lease_until = NULL, \
             next_attempt_at = CASE WHEN f.dead THEN NULL \
                 ELSE statement_timestamp() + f.retry_ms * interval '1 millisecond' END, \
             dead_at = CASE WHEN f.dead THEN statement_timestamp() END \
         FROM unnest($1::bigint[], $2::text[], $3::bool[], $4::bigint[]) \
             AS f(position, error, dead, retry_ms) \
         WHERE o.position = f.position AND o.published_at IS NULL AND o.dead_at IS NULL \
           AND o.lease_owner = $5",
    )
    .bind::<Array<BigInt>, _>(positions)
    .bind::<Array<Text>, _>(errors)
    .bind::<Array<Bool>, _>(dead)
    .bind::<Array<BigInt>, _>(retry)
    .bind::<Text, _>(relay)
    .execute(conn)?)
}

/// Pending and dead entries.
#[derive(Debug, QueryableByName)]
pub(crate) struct Counts {
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
    #[diesel(sql_type = BigInt)]
    pub dead: i64,
}

/// How many entries are pending and dead (each count served by its partial index).
pub(crate) fn counts(conn: &mut PgConnection) -> Result<Counts, PgError> {
    Ok(diesel::sql_query(
        "SELECT \
           (SELECT count(*) FROM outbox WHERE published_at IS NULL AND dead_at IS NULL) AS pending, \
           (SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL AND published_at IS NULL) AS dead",
    )
    .get_result(conn)?)
}

/// A dead entry.
#[derive(Debug, QueryableByName)]
pub(crate) struct DeadRow {
    #[diesel(sql_type = BigInt)]
    pub position: i64,
    #[diesel(sql_type = Uuid)]
    pub event_id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    pub chat_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub dead_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
}

/// Up to `limit` dead entries, oldest first.
pub(crate) fn dead(conn: &mut PgConnection, limit: i64) -> Result<Vec<DeadRow>, PgError> {
    Ok(diesel::sql_query(
        "SELECT position, event_id, chat_id, event_type, attempts, dead_at, last_error \
         FROM outbox WHERE dead_at IS NOT NULL AND published_at IS NULL \
         ORDER BY position LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

/// Makes dead entries (all, or the one of `event_id`) pending again with no attempts.
pub(crate) fn retry_dead(
    conn: &mut PgConnection,
    event_id: Option<uuid::Uuid>,
) -> Result<usize, PgError> {
    Ok(diesel::sql_query(
        "UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = NULL, \
             lease_owner = NULL, lease_until = NULL \
         WHERE dead_at IS NOT NULL AND published_at IS NULL \
           AND ($1::uuid IS NULL OR event_id = $1)",
    )
    .bind::<Nullable<Uuid>, _>(event_id)
    .execute(conn)?)
}

/// Deletes entries published before `before`; returns how many.
pub(crate) fn prune(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<usize, PgError> {
    Ok(diesel::delete(outbox::table.filter(outbox::published_at.lt(before))).execute(conn)?)
}
