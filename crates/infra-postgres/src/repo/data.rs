//! Statements of export (pages by key), erasure (requests, batches of chats, the final
//! step) and retention (idle chats, one replica at a time).

use crate::errors::PgError;
use crate::rows::{ChatRow, MessageRow};
use crate::schema::{chats, erasure_requests as er, messages};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use uuid::Uuid;

/// Every table holding rows of a user apart from chats (and what cascades from them),
/// by its user column: the final step of an erasure deletes the user's rows from each.
/// A new per-user table (such as a usage ledger) is one line here.
const USER_ROWS: &[(&str, &str)] = &[("idempotency_keys", "user_id"), ("usage_ledger", "user_id")];

/// Key of the transaction-level advisory lock of the retention job (`'retain'`).
const RETENTION_LOCK: i64 = 0x7265_7461_696e;

/// Up to `limit` of the owner's chats with an id above `after`, by id.
pub(crate) fn chats_by_id(
    conn: &mut PgConnection,
    owner: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ChatRow>, PgError> {
    let mut q = chats::table.filter(chats::owner.eq(owner)).into_boxed();
    if let Some(a) = after {
        q = q.filter(chats::id.gt(a));
    }
    Ok(q.order(chats::id.asc())
        .select(ChatRow::as_select())
        .limit(limit)
        .load(conn)?)
}

/// Up to `limit` messages of the chat with `seq > after`, by `seq`.
pub(crate) fn messages_by_seq(
    conn: &mut PgConnection,
    chat_id: Uuid,
    after: i32,
    limit: i64,
) -> Result<Vec<MessageRow>, PgError> {
    Ok(messages::table
        .filter(messages::chat_id.eq(chat_id))
        .filter(messages::seq.gt(after))
        .order(messages::seq.asc())
        .select(MessageRow::as_select())
        .limit(limit)
        .load(conn)?)
}

/// The rows of these messages, each with its chat's title (any order): one statement.
pub(crate) fn messages_with_titles(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(MessageRow, String)>, PgError> {
    Ok(messages::table
        .inner_join(chats::table)
        .filter(messages::id.eq_any(ids))
        .select((MessageRow::as_select(), chats::title))
        .load(conn)?)
}

/// Records or renews the erasure request of `user`.
pub(crate) fn request_erasure(
    conn: &mut PgConnection,
    user: &str,
    at: DateTime<Utc>,
) -> Result<(), PgError> {
    diesel::insert_into(er::table)
        .values((
            er::user_id.eq(user),
            er::requested_at.eq(at),
            er::renewed_at.eq(at),
        ))
        .on_conflict(er::user_id)
        .do_update()
        .set(er::renewed_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Deletes up to `limit` of the user's chats (their messages and idempotency records
/// cascade), waiting for turns in progress (their chat row locks); renews the request.
/// Returns (chats, messages, whether chats remain). Must run inside a transaction.
pub(crate) fn erase_chats(
    conn: &mut PgConnection,
    user: &str,
    limit: i64,
    at: DateTime<Utc>,
) -> Result<(u64, u64, bool), PgError> {
    let ids: Vec<Uuid> = chats::table
        .filter(chats::owner.eq(user))
        .order(chats::id.asc())
        .select(chats::id)
        .limit(limit)
        .for_update()
        .load(conn)?;
    let messages: i64 = messages::table
        .filter(messages::chat_id.eq_any(&ids))
        .count()
        .get_result(conn)?;
    let chats = diesel::delete(chats::table.filter(chats::id.eq_any(&ids))).execute(conn)?;
    let more = diesel::select(diesel::dsl::exists(
        chats::table.filter(chats::owner.eq(user)),
    ))
    .get_result(conn)?;
    diesel::update(er::table.find(user))
        .set(er::renewed_at.eq(at))
        .execute(conn)?;
    Ok((chats as u64, u64::try_from(messages).unwrap_or(0), more))
}

/// The final step's deletions: removes the request (returns `false`, deleting nothing,
/// if there was none), then everything of the user left: chats, the rows of
/// [`USER_ROWS`], and every outbox entry of the user, published or not (whatever
/// columns the outbox has besides its payload). Must run inside a transaction.
pub(crate) fn finish_erasure(conn: &mut PgConnection, user: &str) -> Result<bool, PgError> {
    if diesel::delete(er::table.find(user)).execute(conn)? == 0 {
        return Ok(false);
    }
    diesel::delete(chats::table.filter(chats::owner.eq(user))).execute(conn)?;
    for (table, column) in USER_ROWS {
        diesel::sql_query(format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind::<Text, _>(user)
            .execute(conn)?;
    }
    diesel::sql_query("DELETE FROM outbox WHERE payload ->> 'userId' = $1")
        .bind::<Text, _>(user)
        .execute(conn)?;
    Ok(true)
}

/// Users whose request was last renewed before `before`, longest stalled first.
pub(crate) fn stalled_erasures(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, PgError> {
    Ok(er::table
        .filter(er::renewed_at.lt(before))
        .order(er::renewed_at.asc())
        .select(er::user_id)
        .limit(limit)
        .load(conn)?)
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes the retention job's lock for this transaction; `false` if another holds it.
pub(crate) fn try_retention_lock(conn: &mut PgConnection) -> Result<bool, PgError> {
    Ok(
        diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(RETENTION_LOCK)
            .get_result::<Locked>(conn)?
            .locked,
    )
}

/// Locks and deletes up to `limit` chats idle since before `before`, oldest first
/// (skipping chats a writer holds: they are not idle); returns them.
pub(crate) fn delete_idle_chats(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ChatRow>, PgError> {
    let rows: Vec<ChatRow> = chats::table
        .filter(chats::updated_at.lt(before))
        .order((chats::updated_at.asc(), chats::id.asc()))
        .select(ChatRow::as_select())
        .limit(limit)
        .for_update()
        .skip_locked()
        .load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    diesel::delete(chats::table.filter(chats::id.eq_any(&ids))).execute(conn)?;
    Ok(rows)
}
