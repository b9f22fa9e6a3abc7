//! Statements on `idempotency_keys`: finding a live record, and claiming a key with the
//! turn it starts (replacing an expired record, refusing a live one).

use crate::errors::PgError;
use crate::schema::idempotency_keys as k;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// One row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = k)]
pub(crate) struct IdemRow {
    pub user_id: String,
    pub key: String,
    pub fingerprint: String,
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub reply_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// The record of `user`'s `key`, if created at or after `since`.
pub(crate) fn find(
    conn: &mut PgConnection,
    user: &str,
    key: &str,
    since: DateTime<Utc>,
) -> Result<Option<IdemRow>, PgError> {
    Ok(k::table
        .filter(k::user_id.eq(user))
        .filter(k::key.eq(key))
        .filter(k::created_at.ge(since))
        .select(IdemRow::as_select())
        .first(conn)
        .optional()?)
}

super::prepared::prepared! {
    /// Claims a key: a new record, or one replacing an expired record.
    Claim {
        user_id: String => Text,
        key: String => Text,
        fingerprint: String => Text,
        chat_id: Uuid => SqlUuid,
        message_id: Uuid => SqlUuid,
        reply_id: Uuid => SqlUuid,
        created_at: DateTime<Utc> => Timestamptz,
        live_since: DateTime<Utc> => Timestamptz,
    }
    "INSERT INTO idempotency_keys (user_id, key, fingerprint, chat_id, message_id, reply_id, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
       chat_id = EXCLUDED.chat_id, message_id = EXCLUDED.message_id, \
       reply_id = EXCLUDED.reply_id, created_at = EXCLUDED.created_at \
     WHERE idempotency_keys.created_at < $8"
}

/// Stores `row` unless a record created at or after `live_since` holds the key;
/// returns whether it was stored.
pub(crate) fn claim(
    conn: &mut PgConnection,
    row: &IdemRow,
    live_since: DateTime<Utc>,
) -> Result<bool, PgError> {
    let n = Claim {
        user_id: &row.user_id,
        key: &row.key,
        fingerprint: &row.fingerprint,
        chat_id: &row.chat_id,
        message_id: &row.message_id,
        reply_id: &row.reply_id,
        created_at: &row.created_at,
        live_since: &live_since,
    }
    .execute(conn)?;
    Ok(n == 1)
}

/// Deletes records created before `before`.
pub(crate) fn prune(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<usize, PgError> {
    Ok(diesel::delete(k::table.filter(k::created_at.lt(before))).execute(conn)?)
}
