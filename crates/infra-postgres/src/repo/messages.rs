//! Statements on `messages`: reads in `seq` order, the busy check, inserts, the
//! conditional finish of a reply and edits (deletion of a subtree: `branches`).

use crate::errors::PgError;
use crate::rows::{ChatRow, MessageRow};
use crate::schema::{chats, messages};
use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::prelude::*;
use uuid::Uuid;

/// `status = 'streaming'` written as a literal, not a bound parameter: with a parameter,
/// PostgreSQL's cached generic plan cannot prove the partial index
/// `messages_streaming_idx` (`WHERE status = 'streaming'`) applies, and falls back to
/// scanning the chat's messages (or the whole table).
fn is_streaming() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>("status = 'streaming'")
}

/// Reads a message.
pub(crate) fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<MessageRow>, PgError> {
    Ok(messages::table
        .find(id)
        .select(MessageRow::as_select())
        .first(conn)
        .optional()?)
}

/// Reads a message of one of `owner`'s chats with its chat, in one statement (by the
/// message's primary key, then its chat's): another user's message is no row, at the
/// cost of a missing one.
pub(crate) fn find_owned(
    conn: &mut PgConnection,
    owner: &str,
    id: Uuid,
) -> Result<Option<(ChatRow, MessageRow)>, PgError> {
    Ok(messages::table
        .inner_join(chats::table)
        .filter(messages::id.eq(id))
        .filter(chats::owner.eq(owner))
        .select((ChatRow::as_select(), MessageRow::as_select()))
        .first(conn)
        .optional()?)
}

/// Up to `limit` messages with `seq > after`, in `seq` order.
pub(crate) fn list(
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

/// Up to `limit` messages with `seq < before`, newest first.
pub(crate) fn recent(
    conn: &mut PgConnection,
    chat_id: Uuid,
    before: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, PgError> {
    let before = i32::try_from(before).unwrap_or(i32::MAX);
    Ok(messages::table
        .filter(messages::chat_id.eq(chat_id))
        .filter(messages::seq.lt(before))
        .order(messages::seq.desc())
        .select(MessageRow::as_select())
        .limit(limit)
        .load(conn)?)
}

super::prepared::prepared! {
    /// The chat's `streaming` messages (`messages_streaming_idx`: the status is a
    /// constant of the prepared statement, so its generic plan uses the index).
    StreamingOf { chat_id: Uuid => diesel::sql_types::Uuid }
    concat!("SELECT ", super::prepared::message_columns!(), " FROM messages \
             WHERE chat_id = $1 AND status = 'streaming' ORDER BY seq")
}

/// The chat's `streaming` messages, in `seq` order.
pub(crate) fn streaming(
    conn: &mut PgConnection,
    chat_id: Uuid,
) -> Result<Vec<MessageRow>, PgError> {
    Ok(StreamingOf { chat_id: &chat_id }.load(conn)?)
}

/// Whether the chat has a `streaming` message updated at or after `stale_before`
/// (a reply being generated, not one abandoned by a dead process).
pub(crate) fn is_busy(
    conn: &mut PgConnection,
    chat_id: Uuid,
    stale_before: DateTime<Utc>,
) -> Result<bool, PgError> {
    Ok(diesel::select(exists(
        messages::table
            .filter(messages::chat_id.eq(chat_id))
            .filter(is_streaming())
            .filter(messages::updated_at.ge(stale_before)),
    ))
    .get_result(conn)?)
}

/// Inserts messages; a taken `(chat_id, seq)` is a `Conflict`.
pub(crate) fn insert(conn: &mut PgConnection, rows: &[MessageRow]) -> Result<(), PgError> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(messages::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}

/// Replaces a message's content and `updated_at`; `NotFound` if it is gone.
pub(crate) fn update_content(conn: &mut PgConnection, row: &MessageRow) -> Result<(), PgError> {
    let n = diesel::update(
        messages::table
            .find(row.id)
            .filter(messages::chat_id.eq(row.chat_id)),
    )
    .set((
        messages::content.eq(&row.content),
        messages::updated_at.eq(row.updated_at),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(PgError::NotFound);
    }
    Ok(())
}

/// The `seq` of a message of the chat, if it is still there.
pub(crate) fn seq_of(
    conn: &mut PgConnection,
    chat_id: Uuid,
    id: Uuid,
) -> Result<Option<i32>, PgError> {
    Ok(messages::table
        .find(id)
        .filter(messages::chat_id.eq(chat_id))
        .select(messages::seq)
        .first(conn)
        .optional()?)
}
