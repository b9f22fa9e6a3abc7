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
    /// The children of `$2` (the chat's roots for `NULL`; `messages_children_idx`), with
    /// an empty `content` (only their ids are wanted), then the chat's `streaming`
    /// messages (`messages_streaming_idx`: the status stays a constant of the prepared
    /// statement), each part in `seq` order.
    ChildrenAndStreaming {
        chat: Uuid => diesel::sql_types::Uuid,
        parent: Option<Uuid> => diesel::sql_types::Nullable<diesel::sql_types::Uuid>,
        streaming_chat: Uuid => diesel::sql_types::Uuid,
    }
    concat!(
        "SELECT id, chat_id, seq, parent_id, role, ''::text AS content, status, model, ",
        "prompt_tokens, completion_tokens, error, created_at, updated_at, false AS streaming ",
        "FROM messages WHERE chat_id = $1 AND COALESCE(parent_id, ",
        "'00000000-0000-0000-0000-000000000000'::uuid) = ",
        "COALESCE($2, '00000000-0000-0000-0000-000000000000'::uuid) ",
        "UNION ALL SELECT ",
        super::prepared::message_columns!(),
        ", true FROM messages WHERE chat_id = $3 AND status = 'streaming' ",
        "ORDER BY streaming, seq"
    )
}

#[derive(QueryableByName)]
struct FactRow {
    #[diesel(embed)]
    message: MessageRow,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    streaming: bool,
}

/// The ids of the children of `parent` (the roots for `None`) and the chat's
/// `streaming` messages, each in `seq` order: one statement (a turn reads both after
/// the chat's lock, in its own statement, so it sees what the lock waited for).
pub(crate) fn children_and_streaming(
    conn: &mut PgConnection,
    chat: Uuid,
    parent: Option<Uuid>,
) -> Result<(Vec<Uuid>, Vec<MessageRow>), PgError> {
    let rows: Vec<FactRow> = ChildrenAndStreaming {
        chat: &chat,
        parent: &parent,
        streaming_chat: &chat,
    }
    .load(conn)?;
    let (streaming, children): (Vec<FactRow>, Vec<FactRow>) =
        rows.into_iter().partition(|r| r.streaming);
    Ok((
        children.into_iter().map(|r| r.message.id).collect(),
        streaming.into_iter().map(|r| r.message).collect(),
    ))
}

/// A started turn's writes as one statement, prepared once per `(M, E)` (the SQL
/// depends only on them): `M` messages, `E` outbox rows and the chat's change — new
/// `message_count`, `updated_at` moved forward (never back), the reply as the active
/// leaf — with how many chat rows it changed (1, or 0 if the chat is gone). Run in the
/// turn's transaction, after the chat's lock: the insert trigger sees the user message
/// when it places the reply below it (rows earlier in the same command are visible to
/// it), and the sub-statements touch different tables, so their order does not matter.
pub(crate) struct WriteTurn<'a, const M: usize, const E: usize> {
    messages: [&'a MessageRow; M],
    events: [&'a NewOutboxRow; E],
    count: i32,
    at: DateTime<Utc>,
    leaf: Uuid,
    chat: Uuid,
}

impl<const M: usize, const E: usize> diesel::query_builder::QueryId for WriteTurn<'_, M, E> {
    type QueryId = WriteTurn<'static, M, E>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const M: usize, const E: usize> diesel::query_builder::Query for WriteTurn<'_, M, E> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<const M: usize, const E: usize> diesel::query_builder::QueryFragment<diesel::pg::Pg>
    for WriteTurn<'_, M, E>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as U};
        out.push_sql(concat!(
            "WITH m AS (INSERT INTO messages (",
            super::prepared::message_columns!(),
            ") VALUES "
        ));
        for (i, r) in self.messages.iter().enumerate() {
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
        out.push_sql(
            "), o AS (INSERT INTO outbox (event_id, chat_id, event_type, payload) VALUES ",
        );
        for (i, r) in self.events.iter().enumerate() {
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
        out.push_sql("), c AS (UPDATE chats SET message_count = ");
        out.push_bind_param::<Integer, _>(&self.count)?;
        out.push_sql(", updated_at = GREATEST(updated_at, ");
        out.push_bind_param::<Timestamptz, _>(&self.at)?;
        out.push_sql("), active_leaf_id = ");
        out.push_bind_param::<U, _>(&self.leaf)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<U, _>(&self.chat)?;
        out.push_sql(" RETURNING id) SELECT count(*) AS updated FROM c");
        Ok(())
    }
}

impl<const M: usize, const E: usize, Conn> RunQueryDsl<Conn> for WriteTurn<'_, M, E> {}

#[derive(QueryableByName)]
struct Updated {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    updated: i64,
}

/// What a started turn writes into its (locked) chat.
pub(crate) struct TurnWrites<'a> {
    pub messages: &'a [MessageRow],
    pub events: &'a [NewOutboxRow],
    /// The chat's new `message_count`.
    pub count: i32,
    /// `updated_at` moves forward to this (never back).
    pub at: DateTime<Utc>,
    /// The new active leaf (the reply).
    pub leaf: Uuid,
    pub chat: Uuid,
}

impl<'a> TurnWrites<'a> {
    fn statement<const M: usize, const E: usize>(
        &self,
        messages: [&'a MessageRow; M],
        events: [&'a NewOutboxRow; E],
    ) -> WriteTurn<'a, M, E> {
        WriteTurn {
            messages,
            events,
            count: self.count,
            at: self.at,
            leaf: self.leaf,
            chat: self.chat,
        }
    }
}

/// Writes a started turn: one prepared statement for the shapes turns have (one or two
/// messages, one or two events); any other shape as three unprepared ones.
pub(crate) fn write_turn(conn: &mut PgConnection, w: &TurnWrites<'_>) -> Result<(), PgError> {
    let done: Updated = match (w.messages, w.events) {
        ([a, b], [x, y]) => w.statement([a, b], [x, y]).get_result(conn)?,
        ([a], [x]) => w.statement([a], [x]).get_result(conn)?,
        ([a, b], [x]) => w.statement([a, b], [x]).get_result(conn)?,
        ([a], [x, y]) => w.statement([a], [x, y]).get_result(conn)?,
        _ => {
            super::messages::insert(conn, w.messages)?;
            super::outbox::append(conn, w.events)?;
            let n = Started {
                count: &w.count,
                at: &w.at,
                leaf: &w.leaf,
                id: &w.chat,
            }
            .execute(conn)?;
            Updated {
                updated: i64::try_from(n).unwrap_or(i64::MAX),
            }
        }
    };
    if done.updated == 0 {
        return Err(PgError::NotFound);
    }
    Ok(())
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
        let m = MessageRow {
            id,
            chat_id: id,
            seq: 1,
            parent_id: None,
            role: "user".into(),
            content: String::new(),
            status: "complete".into(),
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            error: None,
            created_at: at,
            updated_at: at,
        };
        let w = TurnWrites {
            messages: &[],
            events: &[],
            count: 1,
            at,
            leaf: id,
            chat: id,
        };
        assert_eq!(
            sql_of(&w.statement([&m], [&e, &e])),
            "WITH m AS (INSERT INTO messages (id, chat_id, seq, parent_id, role, content, \
             status, model, prompt_tokens, completion_tokens, error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)), \
             o AS (INSERT INTO outbox (event_id, chat_id, event_type, payload) \
             VALUES ($14, $15, $16, $17), ($18, $19, $20, $21)), \
             c AS (UPDATE chats SET message_count = $22, updated_at = GREATEST(updated_at, $23), \
             active_leaf_id = $24 WHERE id = $25 RETURNING id) SELECT count(*) AS updated FROM c"
        );
    }
}
