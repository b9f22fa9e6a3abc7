//! Statements of a turn's start and finish that no other use case shares: the chat row
//! read and locked in one statement, and the chat's one update when a turn starts.

use crate::errors::PgError;
use crate::rows::ChatRow;
use crate::schema::chats;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

/// Reads a chat and locks its row until the transaction ends (every change to a chat
/// or its messages takes this lock first); `None` if it does not exist.
pub(crate) fn lock_chat(conn: &mut PgConnection, id: Uuid) -> Result<Option<ChatRow>, PgError> {
    Ok(chats::table
        .find(id)
        .select(ChatRow::as_select())
        .for_update()
        .first(conn)
        .optional()?)
}

/// A started turn's change to its (locked) chat: the new `message_count`, `updated_at`
/// moved forward to `at` (never back) and the reply as the active leaf.
pub(crate) fn started(
    conn: &mut PgConnection,
    id: Uuid,
    count: i32,
    at: DateTime<Utc>,
    leaf: Uuid,
) -> Result<(), PgError> {
    let n = diesel::update(chats::table.find(id))
        .set((
            chats::message_count.eq(count),
            chats::updated_at.eq(diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
                "GREATEST(updated_at, ",
            )
            .bind::<diesel::sql_types::Timestamptz, _>(at)
            .sql(")")),
            chats::active_leaf_id.eq(Some(leaf)),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(PgError::NotFound);
    }
    Ok(())
}
