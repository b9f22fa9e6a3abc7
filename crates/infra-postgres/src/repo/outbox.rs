//! Statements on `outbox`: appending events, claiming them under a lease, marking,
//! releasing, counting and pruning.

use crate::errors::PgError;
use crate::rows::NewOutboxRow;
use crate::schema::outbox;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Jsonb, Text};

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

/// Leases up to `limit` unpublished entries to `relay` for `lease_ms`, oldest first.
///
/// An entry is handed out only if it is not leased (or its lease ran out) and no
/// earlier unpublished entry of its chat holds a live lease, so a chat's entries are
/// published in order however many relays run. Claims are serialized by a
/// transaction-level advisory lock (they are one short statement): with concurrent
/// claims, `SKIP LOCKED` alone could hand a later entry of a chat to one relay while
/// another relay is still locking the earlier one. Must run inside a transaction.
pub(crate) fn claim(
    conn: &mut PgConnection,
    relay: &str,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<ClaimedRow>, PgError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(CLAIM_LOCK)
        .execute(conn)?;
    let mut rows = diesel::sql_query(
        "WITH candidates AS ( \
            SELECT o.position FROM outbox o \
            WHERE o.published_at IS NULL \
              AND (o.lease_until IS NULL OR o.lease_until < statement_timestamp()) \
              AND NOT EXISTS ( \
                  SELECT 1 FROM outbox b \
                  WHERE b.chat_id = o.chat_id AND b.published_at IS NULL \
                    AND b.position < o.position AND b.lease_until >= statement_timestamp()) \
            ORDER BY o.position \
            LIMIT $1 \
            FOR UPDATE SKIP LOCKED \
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
        "UPDATE outbox SET published_at = statement_timestamp(), lease_owner = NULL, lease_until = NULL \
         WHERE position = ANY($1) AND published_at IS NULL",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(positions)
    .execute(conn)?;
    Ok(())
}

/// Gives back entries `relay` holds, counting a failed attempt.
pub(crate) fn release(
    conn: &mut PgConnection,
    relay: &str,
    positions: &[i64],
) -> Result<(), PgError> {
    diesel::sql_query(
        "UPDATE outbox SET lease_owner = NULL, lease_until = NULL, attempts = attempts + 1 \
         WHERE position = ANY($1) AND published_at IS NULL AND lease_owner = $2",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(positions)
    .bind::<Text, _>(relay)
    .execute(conn)?;
    Ok(())
}

/// How many entries wait to be published.
pub(crate) fn backlog(conn: &mut PgConnection) -> Result<i64, PgError> {
    Ok(outbox::table
        .filter(outbox::published_at.is_null())
        .count()
        .get_result(conn)?)
}

/// Deletes entries published before `before`; returns how many.
pub(crate) fn prune(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<usize, PgError> {
    Ok(diesel::delete(outbox::table.filter(outbox::published_at.lt(before))).execute(conn)?)
}
