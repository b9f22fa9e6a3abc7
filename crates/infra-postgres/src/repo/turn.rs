//! Statements of a turn's start and finish that no other use case shares: the chat row
//! read and locked in one statement, and the chat's one update when a turn starts.

use crate::errors::PgError;
use crate::rows::{ChatRow, MessageRow, NewOutboxRow};
use crate::schema::chats;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::QueryResult;
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

super::prepared::prepared! {
    /// A started turn's change to its chat.
    Started {
        count: i32 => diesel::sql_types::Integer,
        at: DateTime<Utc> => diesel::sql_types::Timestamptz,
        leaf: Uuid => diesel::sql_types::Uuid,
        id: Uuid => diesel::sql_types::Uuid,
    }
    "UPDATE chats SET message_count = $1, updated_at = GREATEST(updated_at, $2), \
     active_leaf_id = $3 WHERE id = $4"
}

super::prepared::prepared! {
    /// A finished reply's change to its chat (which also locks its row).
    Touch {
        at: DateTime<Utc> => diesel::sql_types::Timestamptz,
        id: Uuid => diesel::sql_types::Uuid,
    }
    "UPDATE chats SET updated_at = GREATEST(updated_at, $1) WHERE id = $2"
}

/// `N` messages in one statement, prepared once per `N` (the SQL depends only on it).
struct InsertMessages<'a, const N: usize>([&'a MessageRow; N]);

/// `N` outbox rows in one statement, prepared once per `N`.
struct InsertEvents<'a, const N: usize>([&'a NewOutboxRow; N]);

impl<const N: usize> diesel::query_builder::QueryId for InsertMessages<'_, N> {
    type QueryId = InsertMessages<'static, N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const N: usize> diesel::query_builder::QueryId for InsertEvents<'_, N> {
    type QueryId = InsertEvents<'static, N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const N: usize> diesel::query_builder::QueryFragment<diesel::pg::Pg>
    for InsertMessages<'_, N>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as U};
        out.push_sql(concat!(
            "INSERT INTO messages (",
            super::prepared::message_columns!(),
            ") VALUES "
        ));
        for (i, r) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<U, _>(&r.id)?;
            out.push_sql(", ");
            out.push_bind_param::<U, _>(&r.chat_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Integer, _>(&r.seq)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<U>, _>(&r.parent_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.role)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.content)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.status)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&r.model)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(&r.prompt_tokens)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(&r.completion_tokens)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&r.error)?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamptz, _>(&r.created_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamptz, _>(&r.updated_at)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<const N: usize> diesel::query_builder::QueryFragment<diesel::pg::Pg> for InsertEvents<'_, N> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Jsonb, Text, Uuid as U};
        out.push_sql("INSERT INTO outbox (event_id, chat_id, event_type, payload) VALUES ");
        for (i, r) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<U, _>(&r.event_id)?;
            out.push_sql(", ");
            out.push_bind_param::<U, _>(&r.chat_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&r.event_type)?;
            out.push_sql(", ");
            out.push_bind_param::<Jsonb, _>(&r.payload)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<const N: usize, Conn> RunQueryDsl<Conn> for InsertMessages<'_, N> {}
impl<const N: usize, Conn> RunQueryDsl<Conn> for InsertEvents<'_, N> {}

/// Inserts a turn's messages (one or two: prepared statements; more: one unprepared).
pub(crate) fn insert_messages(conn: &mut PgConnection, rows: &[MessageRow]) -> Result<(), PgError> {
    match rows {
        [a] => InsertMessages([a]).execute(conn)?,
        [a, b] => InsertMessages([a, b]).execute(conn)?,
        _ => return super::messages::insert(conn, rows),
    };
    Ok(())
}

/// Appends a turn's or a reply's events (one or two: prepared; more: one unprepared).
pub(crate) fn append_events(conn: &mut PgConnection, rows: &[NewOutboxRow]) -> Result<(), PgError> {
    match rows {
        [a] => InsertEvents([a]).execute(conn)?,
        [a, b] => InsertEvents([a, b]).execute(conn)?,
        _ => return super::outbox::append(conn, rows),
    };
    Ok(())
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
    let n = Started {
        count: &count,
        at: &at,
        leaf: &leaf,
        id: &id,
    }
    .execute(conn)?;
    if n == 0 {
        return Err(PgError::NotFound);
    }
    Ok(())
}

/// Moves a chat's `updated_at` forward to `at` (never back), taking its row lock;
/// whether the chat exists.
pub(crate) fn touch(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<bool, PgError> {
    Ok(Touch { at: &at, id: &id }.execute(conn)? == 1)
}

#[cfg(test)]
mod tests {
    use super::super::prepared::sql_of;
    use super::*;

    #[test]
    fn prepared_statements_send_their_sql_with_numbered_placeholders() {
        let (id, at) = (Uuid::nil(), Utc::now());
        assert_eq!(
            sql_of(&Started {
                count: &1,
                at: &at,
                leaf: &id,
                id: &id
            }),
            "UPDATE chats SET message_count = $1, updated_at = GREATEST(updated_at, $2), \
             active_leaf_id = $3 WHERE id = $4"
        );
        assert_eq!(
            sql_of(&super::super::messages::StreamingOf { chat_id: &id }),
            "SELECT id, chat_id, seq, parent_id, role, content, status, model, prompt_tokens, \
             completion_tokens, error, created_at, updated_at FROM messages \
             WHERE chat_id = $1 AND status = 'streaming' ORDER BY seq"
        );
        let e = NewOutboxRow {
            event_id: id,
            chat_id: id,
            event_type: "t".into(),
            payload: serde_json::Value::Null,
        };
        assert_eq!(
            sql_of(&InsertEvents([&e, &e])),
            "INSERT INTO outbox (event_id, chat_id, event_type, payload) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)"
        );
    }
}
