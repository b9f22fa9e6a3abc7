//! Statements on the conversation tree (migration `conversation_trees`): branch pages,
//! prompt history, the newest-descendant walk, children, subtree deletion and the
//! active leaf.
//!
//! A branch root → leaf is read as "lines" (chains through first children, see the
//! migration): a recursive CTE walks from the leaf's line to the line its head branched
//! from — one primary-key probe per branch point on the path, not per message — and a
//! `LATERAL` range scan of `messages_line_idx (line_id, seq)` per line reads at most a
//! page of each. So a page of a 10,000-message branch with a handful of branch points
//! reads a handful of index entries more than the page itself.

use crate::errors::PgError;
use crate::rows::MessageRow;
use crate::schema::chats;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Uuid as SqlUuid};
use uuid::Uuid;

/// The key under which a chat's roots are indexed in `messages_children_idx`.
macro_rules! nil {
    () => {
        "'00000000-0000-0000-0000-000000000000'::uuid"
    };
}

/// Each row `b` with its place among its siblings (`messages_children_idx`).
macro_rules! siblings {
    () => {
        concat!(
            " CROSS JOIN LATERAL (SELECT x.branch_index, x.branch_count, x.prev_id, x.next_id FROM (",
            "SELECT k.id, row_number() OVER o AS branch_index, count(*) OVER () AS branch_count, ",
            "lag(k.id) OVER o AS prev_id, lead(k.id) OVER o AS next_id FROM messages k ",
            "WHERE k.chat_id = b.chat_id AND COALESCE(k.parent_id, ",
            nil!(),
            ") = COALESCE(b.parent_id, ",
            nil!(),
            ") WINDOW o AS (ORDER BY k.seq)) x WHERE x.id = b.id) sib"
        )
    };
}

/// `down(id, n)`: `$2` (or the chat's newest root when `$2` is NULL), then at each step
/// the child with the highest `seq`; the deepest row is the newest leaf.
macro_rules! descend {
    () => {
        concat!(
            "down AS (SELECT m.id, 0 AS n FROM messages m WHERE m.chat_id = $1 AND m.id = ",
            "COALESCE($2, (SELECT r.id FROM messages r WHERE r.chat_id = $1 AND COALESCE(r.parent_id, ",
            nil!(),
            ") = ",
            nil!(),
            " ORDER BY r.seq DESC LIMIT 1)) ",
            "UNION ALL SELECT c.id, d.n + 1 FROM down d CROSS JOIN LATERAL (",
            "SELECT k.id FROM messages k WHERE k.chat_id = $1 AND COALESCE(k.parent_id, ",
            nil!(),
            ") = d.id ORDER BY k.seq DESC LIMIT 1) c)"
        )
    };
}

/// A message row with its `branch`.
#[derive(Debug, QueryableByName)]
pub(crate) struct BranchedRow {
    #[diesel(embed)]
    pub message: MessageRow,
    #[diesel(sql_type = BigInt)]
    pub branch_index: i64,
    #[diesel(sql_type = BigInt)]
    pub branch_count: i64,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub prev_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub next_id: Option<Uuid>,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// A message with its `branch`.
pub(crate) fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<BranchedRow>, PgError> {
    Ok(diesel::sql_query(concat!(
        "SELECT b.*, sib.* FROM messages b",
        siblings!(),
        " WHERE b.id = $1"
    ))
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .optional()?)
}

/// Up to `limit` messages of the branch through `through` (its ancestors, itself, its
/// newest descendants) with `seq > after`, in order, with their `branch`.
pub(crate) fn page(
    conn: &mut PgConnection,
    chat_id: Uuid,
    through: Uuid,
    after: i32,
    limit: i64,
) -> Result<Vec<BranchedRow>, PgError> {
    Ok(diesel::sql_query(concat!(
        "WITH RECURSIVE ",
        descend!(),
        ", leaf AS (SELECT id FROM down ORDER BY n DESC LIMIT 1), ",
        "seg AS (SELECT m.line_id, m.seq AS hi FROM leaf JOIN messages m ON m.id = leaf.id ",
        "UNION ALL SELECT p.line_id, p.seq FROM seg s JOIN messages h ON h.id = s.line_id ",
        "JOIN messages p ON p.id = h.parent_id) ",
        "SELECT b.*, sib.* FROM seg s CROSS JOIN LATERAL (SELECT m.* FROM messages m ",
        "WHERE m.line_id = s.line_id AND m.seq <= s.hi AND m.seq > $3 ORDER BY m.seq LIMIT $4) b",
        siblings!(),
        " ORDER BY b.seq LIMIT $4"
    ))
    .bind::<SqlUuid, _>(chat_id)
    .bind::<Nullable<SqlUuid>, _>(Some(through))
    .bind::<Integer, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

/// Up to `limit` messages of the branch root → `leaf`, newest first. The walk up stops
/// once the lines read hold `limit` messages (`depth` counts them).
pub(crate) fn history(
    conn: &mut PgConnection,
    chat_id: Uuid,
    leaf: Uuid,
    limit: i64,
) -> Result<Vec<MessageRow>, PgError> {
    Ok(diesel::sql_query(
        "WITH RECURSIVE seg AS ( \
           SELECT m.line_id, m.seq AS hi, m.depth - h.depth + 1 AS acc \
             FROM messages m JOIN messages h ON h.id = m.line_id \
            WHERE m.id = $2 AND m.chat_id = $1 \
           UNION ALL \
           SELECT p.line_id, p.seq, s.acc + p.depth - ph.depth + 1 \
             FROM seg s JOIN messages h ON h.id = s.line_id \
             JOIN messages p ON p.id = h.parent_id JOIN messages ph ON ph.id = p.line_id \
            WHERE s.acc < $3) \
         SELECT b.* FROM seg s CROSS JOIN LATERAL (SELECT m.* FROM messages m \
            WHERE m.line_id = s.line_id AND m.seq <= s.hi ORDER BY m.seq DESC LIMIT $3) b \
         ORDER BY b.seq DESC LIMIT $3",
    )
    .bind::<SqlUuid, _>(chat_id)
    .bind::<SqlUuid, _>(leaf)
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

/// The newest descendant of `below` (of the newest root for `None`).
pub(crate) fn newest_leaf(
    conn: &mut PgConnection,
    chat_id: Uuid,
    below: Option<Uuid>,
) -> Result<Option<Uuid>, PgError> {
    let row: Option<IdRow> = diesel::sql_query(concat!(
        "WITH RECURSIVE ",
        descend!(),
        " SELECT id FROM down ORDER BY n DESC LIMIT 1"
    ))
    .bind::<SqlUuid, _>(chat_id)
    .bind::<Nullable<SqlUuid>, _>(below)
    .get_result(conn)
    .optional()?;
    Ok(row.map(|r| r.id))
}

/// The ids of the children of `parent` (the roots for `None`), in `seq` order.
pub(crate) fn children(
    conn: &mut PgConnection,
    chat_id: Uuid,
    parent: Option<Uuid>,
) -> Result<Vec<Uuid>, PgError> {
    let rows: Vec<IdRow> = diesel::sql_query(concat!(
        "SELECT id FROM messages WHERE chat_id = $1 AND COALESCE(parent_id, ",
        nil!(),
        ") = COALESCE($2, ",
        nil!(),
        ") ORDER BY seq"
    ))
    .bind::<SqlUuid, _>(chat_id)
    .bind::<Nullable<SqlUuid>, _>(parent)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Deletes `id` and everything below it; returns the ids deleted. (`OFFSET 0` keeps
/// each step a nested loop over `messages_children_idx`.)
pub(crate) fn delete_subtree(
    conn: &mut PgConnection,
    chat_id: Uuid,
    id: Uuid,
) -> Result<Vec<Uuid>, PgError> {
    let rows: Vec<IdRow> = diesel::sql_query(concat!(
        "WITH RECURSIVE sub AS (SELECT m.id FROM messages m WHERE m.id = $2 AND m.chat_id = $1 ",
        "UNION ALL SELECT k.id FROM sub CROSS JOIN LATERAL (SELECT c.id FROM messages c ",
        "WHERE c.chat_id = $1 AND COALESCE(c.parent_id, ",
        nil!(),
        ") = sub.id OFFSET 0) k) ",
        "DELETE FROM messages WHERE id IN (SELECT id FROM sub) RETURNING id"
    ))
    .bind::<SqlUuid, _>(chat_id)
    .bind::<SqlUuid, _>(id)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Closes up the `seq`s after `from` (exclusive) to `from + 1, from + 2, …`.
///
/// `UNIQUE (chat_id, seq)` is checked row by row, so the moving messages first go to
/// their new places negated (distinct, and free), then are flipped back.
pub(crate) fn close_up(conn: &mut PgConnection, chat_id: Uuid, from: i32) -> Result<(), PgError> {
    diesel::sql_query(
        "UPDATE messages m SET seq = -r.new_seq \
           FROM (SELECT id, seq, (row_number() OVER (ORDER BY seq))::int4 + $2 AS new_seq \
                   FROM messages WHERE chat_id = $1 AND seq > $2) r \
          WHERE m.id = r.id AND r.seq <> r.new_seq",
    )
    .bind::<SqlUuid, _>(chat_id)
    .bind::<Integer, _>(from)
    .execute(conn)?;
    diesel::sql_query("UPDATE messages SET seq = -seq WHERE chat_id = $1 AND seq < 0")
        .bind::<SqlUuid, _>(chat_id)
        .execute(conn)?;
    Ok(())
}

/// The chat's active leaf.
pub(crate) fn active_leaf(conn: &mut PgConnection, chat_id: Uuid) -> Result<Option<Uuid>, PgError> {
    Ok(chats::table
        .find(chat_id)
        .select(chats::active_leaf_id)
        .first::<Option<Uuid>>(conn)
        .optional()?
        .flatten())
}

/// Sets the chat's active leaf.
pub(crate) fn set_active_leaf(
    conn: &mut PgConnection,
    chat_id: Uuid,
    leaf: Option<Uuid>,
) -> Result<(), PgError> {
    diesel::update(chats::table.find(chat_id))
        .set(chats::active_leaf_id.eq(leaf))
        .execute(conn)?;
    Ok(())
}
