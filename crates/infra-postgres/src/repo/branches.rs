//! Statements on the conversation tree (migrations `conversation_trees` and
//! `branch_lines`): branch pages, prompt history, the newest-descendant walk, children,
//! subtree deletion and the active leaf.
//!
//! A branch root → leaf is read as "lines" (chains through first children, see the
//! migrations): the rows of `message_lines` list the lines of the branch with their
//! `seq` ranges and lengths, 64 lines per row — one primary-key probe per 64 branch
//! points between the leaf and the cursor, instead of two per branch point — and a
//! `LATERAL` range scan of `messages_line_idx (line_id, seq)` reads the part of a line
//! that is needed. A page reads its rows from
//! at most the few lines around its cursor (the lines a page needs are chosen before
//! any of their rows is read): at most three pages' worth of rows, whatever the
//! branch's length or its number of branch points. The branch reads are
//! [`prepared::Prepared`] statements, planned once per connection.

use crate::errors::PgError;
use crate::rows::MessageRow;
use crate::schema::chats;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Uuid as SqlUuid};
use prepared::{Bind, Prepared};
use uuid::Uuid;

mod prepared;

/// The key under which a chat's roots are indexed in `messages_children_idx`.
macro_rules! nil {
    () => {
        "'00000000-0000-0000-0000-000000000000'::uuid"
    };
}

/// The columns of a `MessageRow`, of `messages m` (never `m.*`: a prepared statement
/// must keep its result type when a migration adds a column, and the search vector
/// `content_tsv` is not for the page).
macro_rules! columns {
    () => {
        "m.id, m.chat_id, m.seq, m.parent_id, m.role, m.content, m.status, m.model, \
         m.prompt_tokens, m.completion_tokens, m.error, m.created_at, m.updated_at"
    };
}

/// Each row's place among its siblings, stored with it (migration `branch_reads`): the
/// `branch_*` columns of a [`BranchedRow`] but the count, which [`count!`] adds.
macro_rules! branch {
    () => {
        "m.branch_index, m.prev_id, m.next_id"
    };
}

/// The number of siblings of row `b` (with [`branch!`]'s columns), as `branch_count`:
/// its own position when it is the last (`next_id` NULL, as most rows are), else the
/// last sibling's, from one probe of `messages_children_idx` — for the rows returned
/// only.
macro_rules! count {
    () => {
        concat!(
            "CASE WHEN b.next_id IS NULL THEN b.branch_index ELSE (SELECT l.branch_index ",
            "FROM messages l WHERE l.chat_id = b.chat_id AND COALESCE(l.parent_id, ",
            nil!(),
            ") = COALESCE(b.parent_id, ",
            nil!(),
            ") ORDER BY l.seq DESC LIMIT 1) END AS branch_count"
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
    #[diesel(sql_type = Integer)]
    pub branch_index: i32,
    #[diesel(sql_type = Integer)]
    pub branch_count: i32,
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
    const SQL: &str = concat!(
        "SELECT b.*, ",
        count!(),
        " FROM (SELECT ",
        columns!(),
        ", ",
        branch!(),
        " FROM messages m WHERE m.id = $1) b"
    );
    Ok(Prepared::new(SQL, vec![Bind::Uuid(id)])
        .get_result(conn)
        .optional()?)
}

/// `blocks`, then `path(line_id, lo, dep, hi, after)`: the lines of the branch root → `m`
/// that a read needs, from the rows of `message_lines` (migration `branch_lines`): the
/// row of `m`'s line (found by `$leaf`, which names `m` and `l`), then the row of each
/// block before while `$more` holds of the last one read — one primary-key probe per 64
/// lines, not two per line. In `path`, line `line_id` holds the branch's `seq`s
/// `lo..=hi` (up to where the next line leaves it, the last one up to `m`) and its
/// depths from `dep` (its head's) on; `after` rows of the branch follow it (from the
/// next head's `depth`). The next line of a block's last one is the first of the block
/// read before it (nearer `m`), so each block row carries that line's `from_seqs[1]` and
/// `head_depths[1]` (`next_up`, `next_dep`; for `m`'s block, `m` itself): `path` is a
/// plain projection of the arrays, no window over the lines.
macro_rules! lines_of_branch {
    ($leaf:expr, $more:expr) => {
        concat!(
            "blocks AS (SELECT l.up_line, l.lines, l.head_seqs, l.head_depths, l.from_seqs, ",
            "m.seq AS leaf_seq, m.depth AS leaf_depth, m.seq AS next_up, m.depth + 1 AS next_dep FROM ",
            $leaf,
            " UNION ALL SELECT p.up_line, p.lines, p.head_seqs, p.head_depths, p.from_seqs, ",
            "bl.leaf_seq, bl.leaf_depth, bl.from_seqs[1], bl.head_depths[1] ",
            "FROM blocks bl JOIN message_lines p ON p.line_id = bl.up_line WHERE ",
            $more,
            "), path AS (SELECT u.line_id, u.lo, u.dep, CASE WHEN u.i < cardinality(bl.lines) ",
            "THEN bl.from_seqs[u.i + 1] ELSE bl.next_up END AS hi, bl.leaf_depth + 1 - CASE ",
            "WHEN u.i < cardinality(bl.lines) THEN bl.head_depths[u.i + 1] ELSE bl.next_dep END ",
            "AS after FROM blocks bl CROSS JOIN LATERAL ",
            "unnest(bl.lines, bl.head_seqs, bl.head_depths) WITH ORDINALITY u(line_id, lo, dep, i))"
        )
    };
}

/// The statement of [`page`]: `$1` chat, `$2` through, `$3` after, `$4` limit.
///
/// * `path`: the lines of the branch through the leaf (see [`lines_of_branch!`]), the
///   blocks before the leaf's read while the branch has rows after the cursor in them
///   (where it leaves the block before, `from_seqs[1]`, is after the cursor).
/// * `pick`: the lines holding rows after the cursor (`hi > $3`): the one holding the
///   cursor (at most one, `lo <= $3`) and those wholly after it; `stop`: the depth
///   `$4` rows after the first head past the cursor. The branch's depths are
///   consecutive, so a line wholly after the cursor whose head is that deep or deeper
///   lies past the page and is not read.
/// * `b`: up to `$4` rows of each line read, the first `$4` of them in `seq` order,
///   each with its place among its siblings.
pub(crate) const PAGE_SQL: &str = concat!(
    "WITH RECURSIVE ",
    descend!(),
    ", leaf AS (SELECT id FROM down ORDER BY n DESC LIMIT 1), ",
    lines_of_branch!(
        "leaf JOIN messages m ON m.id = leaf.id JOIN message_lines l ON l.line_id = m.line_id",
        "bl.from_seqs[1] > $3"
    ),
    ", pick AS MATERIALIZED (SELECT s.line_id, s.lo, s.dep, s.hi FROM path s WHERE s.hi > $3), ",
    "stop AS (SELECT min(s.dep) FILTER (WHERE s.lo > $3) + $4 AS dep FROM pick s), ",
    "b AS (SELECT m.* FROM pick s CROSS JOIN LATERAL (SELECT ",
    columns!(),
    ", ",
    branch!(),
    " FROM messages m ",
    "WHERE m.line_id = s.line_id AND m.seq <= s.hi AND m.seq > $3 ORDER BY m.seq LIMIT $4) m ",
    "WHERE s.lo <= $3 OR s.dep < (SELECT dep FROM stop) ORDER BY m.seq LIMIT $4) ",
    "SELECT b.*, ",
    count!(),
    " FROM b ORDER BY b.seq"
);

/// Up to `limit` messages of the branch through `through` (its ancestors, itself, its
/// newest descendants) with `seq > after`, in order, with their `branch`.
pub(crate) fn page(
    conn: &mut PgConnection,
    chat_id: Uuid,
    through: Uuid,
    after: i32,
    limit: i64,
) -> Result<Vec<BranchedRow>, PgError> {
    let binds = vec![
        Bind::Uuid(chat_id),
        Bind::OptUuid(Some(through)),
        Bind::Int(after),
        Bind::Big(limit),
    ];
    Ok(Prepared::new(PAGE_SQL, binds).load(conn)?)
}

/// The statement of [`owned_active_page`]: `$1` chat, `$2` owner, `$3` after, `$4`
/// limit.
///
/// The chat is `$1` if `$2` owns it (else the page is empty: the owner check is in the
/// statement). The lines of its active branch are its rows of `chat_active_lines` (migration
/// `branch_reads`), in `seq` order by their `hi`: the lines with rows after the cursor
/// are those with `hi > $3`, and each holds at least one, so the nested loop reads them
/// in order, each line's rows after the cursor by `messages_line_idx` in `seq` order,
/// and stops at the `$4`-th row — one range scan of the chat's lines and one per line
/// the page touches. Which rows the inner `LIMIT` keeps rests on that plan: lines in
/// primary-key order (`ORDER BY a.hi` needs no sort), each line's rows in its lateral's
/// order; `ORDER BY a.hi, m.seq` would say it in SQL, but with the generic plan's
/// estimate of one row PostgreSQL then sorts every line after the cursor (3 ms instead
/// of 0.07 on the deep chat). The line tests (`tests/it/lines.rs`, `check_reads`) read
/// every cursor and limit of a 151-line branch against a walk of the parents. Every value is read back as a scalar sub-select (an init plan), so
/// the plan does not depend on the values and PostgreSQL keeps one generic plan per
/// connection: planned with the values, this statement was planned again on every
/// execution (its custom plans looked cheaper than the generic one), which cost twice
/// its execution.
pub(crate) const ACTIVE_PAGE_SQL: &str = concat!(
    "SELECT b.*, ",
    count!(),
    " FROM (SELECT m.* FROM chat_active_lines a CROSS JOIN LATERAL (SELECT ",
    columns!(),
    ", ",
    branch!(),
    " FROM messages m WHERE m.line_id = a.line_id AND m.seq > (SELECT $3::int4) ",
    "AND m.seq <= a.hi ORDER BY m.seq LIMIT (SELECT $4::int8)) m ",
    "WHERE a.chat_id = (SELECT c.id FROM chats c WHERE c.id = $1 AND c.owner = $2) ",
    "AND a.hi > (SELECT $3::int4) ORDER BY a.hi LIMIT (SELECT $4::int8)) b ORDER BY b.seq"
);

/// Up to `limit` messages of the active branch of chat `chat_id` with `seq > after`, in
/// order, with their `branch`; none when `owner` does not own the chat (or it does not
/// exist).
pub(crate) fn owned_active_page(
    conn: &mut PgConnection,
    chat_id: Uuid,
    owner: &str,
    after: i32,
    limit: i64,
) -> Result<Vec<BranchedRow>, PgError> {
    let binds = vec![
        Bind::Uuid(chat_id),
        Bind::Text(owner.to_owned()),
        Bind::Int(after),
        Bind::Big(limit),
    ];
    Ok(Prepared::new(ACTIVE_PAGE_SQL, binds).load(conn)?)
}

/// The statement of [`history`]: `$1` chat, `$2` leaf, `$3` limit. The lines of the
/// branch ([`lines_of_branch!`]), the blocks before the leaf's read while those read
/// hold fewer than `$3` rows (from the leaf's `depth` and the first head's); then each
/// line from the leaf's up while the lines after it hold fewer than `$3` rows.
pub(crate) const HISTORY_SQL: &str = concat!(
    "WITH RECURSIVE ",
    lines_of_branch!(
        "messages m JOIN message_lines l ON l.line_id = m.line_id WHERE m.id = $2 AND m.chat_id = $1",
        "bl.leaf_depth + 1 - bl.head_depths[1] < $3"
    ),
    " SELECT b.* FROM path s CROSS JOIN LATERAL (SELECT ",
    columns!(),
    " FROM messages m ",
    "WHERE m.line_id = s.line_id AND m.seq <= s.hi ORDER BY m.seq DESC LIMIT $3) b ",
    "WHERE s.after < $3 ORDER BY b.seq DESC LIMIT $3"
);

/// Up to `limit` messages of the branch root → `leaf`, newest first: from the lines
/// nearest the leaf that hold `limit` messages (`depth` counts them).
pub(crate) fn history(
    conn: &mut PgConnection,
    chat_id: Uuid,
    leaf: Uuid,
    limit: i64,
) -> Result<Vec<MessageRow>, PgError> {
    let binds = vec![Bind::Uuid(chat_id), Bind::Uuid(leaf), Bind::Big(limit)];
    Ok(Prepared::new(HISTORY_SQL, binds).load(conn)?)
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

/// Gives the children of `parent` (the roots for `None`) their places again, after a
/// subtree among them went: positions and neighbours in `seq` order (only the rows that
/// change are written).
pub(crate) fn renumber_siblings(
    conn: &mut PgConnection,
    chat_id: Uuid,
    parent: Option<Uuid>,
) -> Result<(), PgError> {
    diesel::sql_query(concat!(
        "UPDATE messages m SET branch_index = r.i, prev_id = r.prev, next_id = r.next ",
        "FROM (SELECT id, (row_number() OVER w)::int4 AS i, lag(id) OVER w AS prev, ",
        "lead(id) OVER w AS next ",
        "FROM messages WHERE chat_id = $1 AND COALESCE(parent_id, ",
        nil!(),
        ") = COALESCE($2, ",
        nil!(),
        ") WINDOW w AS (ORDER BY seq)) r WHERE m.id = r.id AND ",
        "(m.branch_index, m.prev_id, m.next_id) IS DISTINCT FROM (r.i, r.prev, r.next)"
    ))
    .bind::<SqlUuid, _>(chat_id)
    .bind::<Nullable<SqlUuid>, _>(parent)
    .execute(conn)?;
    Ok(())
}

/// Rewrites the chat's rows of `chat_active_lines` from its active leaf (after its
/// `seq`s were renumbered; a moved active leaf does it at commit anyway).
pub(crate) fn refresh_active_lines(conn: &mut PgConnection, chat_id: Uuid) -> Result<(), PgError> {
    diesel::sql_query("SELECT FROM chat_active_lines_refresh($1)")
        .bind::<SqlUuid, _>(chat_id)
        .execute(conn)?;
    Ok(())
}

/// Closes up the `seq`s after `from` (exclusive) to `from + 1, from + 2, …`, in the
/// messages and in the chat's line paths (`message_lines`).
///
/// The paths first: each `seq` above `from` in them is a surviving message's (a path
/// lists only the ancestors of a line that survived), and its new value is `from` plus
/// its rank among the chat's `seq`s above `from` (`width_bucket` on their sorted
/// array) — no probe per entry. Only paths whose own head is above `from` change.
/// Then the messages: `UNIQUE (chat_id, seq)` is checked row by row, so the moving
/// messages first go to their new places negated (distinct, and free), then are
/// flipped back.
pub(crate) fn close_up(conn: &mut PgConnection, chat_id: Uuid, from: i32) -> Result<(), PgError> {
    diesel::sql_query(concat!(
        "WITH moved AS (SELECT array_agg(seq ORDER BY seq) AS seqs FROM messages ",
        "WHERE chat_id = $1 AND seq > $2) ",
        "UPDATE message_lines l SET ",
        "head_seqs = ARRAY(SELECT CASE WHEN u.s > $2 THEN $2 + width_bucket(u.s, moved.seqs) ",
        "ELSE u.s END FROM unnest(l.head_seqs) WITH ORDINALITY u(s, o) ORDER BY u.o), ",
        "from_seqs = ARRAY(SELECT CASE WHEN u.s > $2 THEN $2 + width_bucket(u.s, moved.seqs) ",
        "ELSE u.s END FROM unnest(l.from_seqs) WITH ORDINALITY u(s, o) ORDER BY u.o) ",
        "FROM moved WHERE l.chat_id = $1 AND l.head_seqs[cardinality(l.head_seqs)] > $2"
    ))
    .bind::<SqlUuid, _>(chat_id)
    .bind::<Integer, _>(from)
    .execute(conn)?;
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

#[cfg(test)]
mod bench_scripts;

#[cfg(all(test, feature = "testing"))]
mod tests;
