//! Statements on `chats`: insert, lock, update, delete, keyset listing and title search.

use crate::errors::PgError;
use crate::rows::ChatRow;
use crate::schema::chats;
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz};
use uuid::Uuid;

/// How many of an owner's chats (newest first) a title search filters in index order
/// before it switches to the trigram index; see [`search`].
pub(crate) const SEARCH_SCAN_BUDGET: i64 = 1000;

/// Inserts a chat.
pub(crate) fn insert(conn: &mut PgConnection, row: &ChatRow) -> Result<(), PgError> {
    diesel::insert_into(chats::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Reads a chat.
pub(crate) fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<ChatRow>, PgError> {
    Ok(chats::table
        .find(id)
        .select(ChatRow::as_select())
        .first(conn)
        .optional()?)
}

/// Locks a chat's row until the transaction ends and returns its `message_count`;
/// `None` if it does not exist. Every change to a chat or its messages takes this lock
/// first, so they are serialized per chat and always lock in the same order.
pub(crate) fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<i32>, PgError> {
    Ok(chats::table
        .find(id)
        .select(chats::message_count)
        .for_update()
        .first(conn)
        .optional()?)
}

/// Sets title and settings and moves `updated_at` forward (never back), only while the
/// stored title and settings are `expected`'s: one statement, whose condition
/// PostgreSQL re-checks on the latest row version when a concurrent update got there
/// first. `Conflict` when they changed, `NotFound` if the chat is gone.
pub(crate) fn update(
    conn: &mut PgConnection,
    row: &ChatRow,
    expected: &ChatRow,
) -> Result<(), PgError> {
    let n = diesel::update(
        chats::table
            .find(row.id)
            .filter(chats::title.eq(&expected.title))
            .filter(chats::settings.eq(&expected.settings)),
    )
    .set((
        chats::title.eq(&row.title),
        chats::settings.eq(&row.settings),
        chats::updated_at.eq(later_of(row.updated_at)),
    ))
    .execute(conn)?;
    if n == 1 {
        return Ok(());
    }
    let exists = diesel::select(diesel::dsl::exists(chats::table.find(row.id))).get_result(conn)?;
    Err(if exists {
        PgError::Conflict
    } else {
        PgError::NotFound
    })
}

/// Sets the title and moves `updated_at` forward to `at`, only while the stored title
/// is `expected`; whether a row changed.
pub(crate) fn retitle(
    conn: &mut PgConnection,
    id: Uuid,
    expected: &str,
    title: &str,
    at: DateTime<Utc>,
) -> Result<bool, PgError> {
    let n = diesel::update(chats::table.find(id).filter(chats::title.eq(expected)))
        .set((chats::title.eq(title), chats::updated_at.eq(later_of(at))))
        .execute(conn)?;
    Ok(n == 1)
}

/// Deletes a chat (its messages go with it); `NotFound` if it is gone.
pub(crate) fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), PgError> {
    found(diesel::delete(chats::table.find(id)).execute(conn)?)
}

/// Sets `message_count` and moves `updated_at` forward to `at` (never back).
pub(crate) fn set_count(
    conn: &mut PgConnection,
    id: Uuid,
    count: i32,
    at: DateTime<Utc>,
) -> Result<(), PgError> {
    let n = diesel::update(chats::table.find(id))
        .set((
            chats::message_count.eq(count),
            chats::updated_at.eq(later_of(at)),
        ))
        .execute(conn)?;
    found(n)
}

/// Moves `updated_at` forward to `at` (never back).
pub(crate) fn touch(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<(), PgError> {
    let n = diesel::update(chats::table.find(id))
        .set(chats::updated_at.eq(later_of(at)))
        .execute(conn)?;
    found(n)
}

/// `GREATEST(updated_at, at)`.
fn later_of(
    at: DateTime<Utc>,
) -> diesel::expression::SqlLiteral<Timestamptz, impl diesel::query_builder::QueryFragment<Pg>> {
    sql::<Timestamptz>("GREATEST(updated_at, ")
        .bind::<Timestamptz, _>(at)
        .sql(")")
}

fn found(rows: usize) -> Result<(), PgError> {
    if rows == 0 {
        Err(PgError::NotFound)
    } else {
        Ok(())
    }
}

/// `(updated_at, id) < (at, id)`: strictly after a cursor in newest-first order.
fn before(at: DateTime<Utc>, id: Uuid) -> KeyFilter {
    key_compare("<", at, id)
}

/// `(updated_at, id) >= (at, id)`.
fn at_or_after(at: DateTime<Utc>, id: Uuid) -> KeyFilter {
    key_compare(">=", at, id)
}

type KeyFilter = Box<dyn BoxableExpression<chats::table, Pg, SqlType = Bool>>;

fn key_compare(op: &str, at: DateTime<Utc>, id: Uuid) -> KeyFilter {
    Box::new(
        sql::<Bool>(&format!("(updated_at, id) {op} ("))
            .bind::<Timestamptz, _>(at)
            .sql(", ")
            .bind::<diesel::sql_types::Uuid, _>(id)
            .sql(")"),
    )
}

type Cursor = Option<(DateTime<Utc>, Uuid)>;

fn owned_after<'a>(owner: &'a str, after: Cursor) -> chats::BoxedQuery<'a, Pg> {
    let mut q = chats::table.filter(chats::owner.eq(owner)).into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(before(at, id));
    }
    q.order((chats::updated_at.desc(), chats::id.desc()))
}

/// Up to `limit` of the owner's chats, newest activity first, strictly after `after`.
/// One range scan of `chats_owner_updated_idx` reading `limit` entries.
pub(crate) fn list(
    conn: &mut PgConnection,
    owner: &str,
    after: Cursor,
    limit: i64,
) -> Result<Vec<ChatRow>, PgError> {
    Ok(owned_after(owner, after)
        .select(ChatRow::as_select())
        .limit(limit)
        .load(conn)?)
}

/// `%query%` for `ILIKE`, with `\`, `%` and `_` escaped so they match literally.
pub(crate) fn like_pattern(query: &str) -> String {
    let mut p = String::with_capacity(query.len() + 2);
    p.push('%');
    for ch in query.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// Like [`list`], only chats whose title contains `query`, ignoring case.
///
/// Two plans, because neither index is fast for every owner and query:
/// 1. the owner's newest [`SEARCH_SCAN_BUDGET`] chats (after the cursor) are filtered
///    in `chats_owner_updated_idx` order, stopping at `limit` matches: fast whenever
///    matches are common or the owner has few chats;
/// 2. if that window held fewer than `limit` matches and the owner has older chats, the
///    rest comes from the GIN index on `(owner, title gin_trgm_ops)`: its bitmap holds
///    only this owner's matching chats, which are rare (fewer than `limit` in the
///    newest window), and only their ids are sorted. A query without any trigram (no
///    run of three letters or digits) cannot use that index and keeps filtering the
///    owner's chats in index order instead.
pub(crate) fn search(
    conn: &mut PgConnection,
    owner: &str,
    query: &str,
    after: Cursor,
    limit: i64,
) -> Result<Vec<ChatRow>, PgError> {
    let pattern = like_pattern(query);
    let boundary: Option<(DateTime<Utc>, Uuid)> = owned_after(owner, after)
        .select((chats::updated_at, chats::id))
        .offset(SEARCH_SCAN_BUDGET - 1)
        .limit(1)
        .first(conn)
        .optional()?;
    let mut window = owned_after(owner, after).filter(chats::title.ilike(&pattern));
    if let Some((at, id)) = boundary {
        window = window.filter(at_or_after(at, id));
    }
    let mut rows: Vec<ChatRow> = window
        .select(ChatRow::as_select())
        .limit(limit)
        .load(conn)?;
    let missing = limit - i64::try_from(rows.len()).unwrap_or(limit);
    let Some((at, id)) = boundary.filter(|_| missing > 0) else {
        return Ok(rows);
    };
    if !has_trigram(query) {
        // No trigram to look up: keep filtering in index order past the window.
        rows.extend(
            owned_after(owner, Some((at, id)))
                .filter(chats::title.ilike(&pattern))
                .select(ChatRow::as_select())
                .limit(missing)
                .load(conn)?,
        );
        return Ok(rows);
    }
    let older = diesel::sql_query(
        "WITH m AS MATERIALIZED ( \
            SELECT id, updated_at FROM chats \
            WHERE owner = $1 AND title ILIKE $2 AND (updated_at, id) < ($3, $4) \
         ) \
         SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.created_at, c.updated_at \
         FROM chats c \
         JOIN (SELECT id FROM m ORDER BY updated_at DESC, id DESC LIMIT $5) t ON t.id = c.id \
         ORDER BY c.updated_at DESC, c.id DESC",
    )
    .bind::<Text, _>(owner)
    .bind::<Text, _>(&pattern)
    .bind::<Timestamptz, _>(at)
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<BigInt, _>(missing)
    .load::<ChatRow>(conn)?;
    rows.extend(older);
    Ok(rows)
}

/// Whether pg_trgm can extract a trigram from `query`: it needs a run of at least three
/// letters or digits (shorter words give no trigram, so the index cannot narrow anything).
fn has_trigram(query: &str) -> bool {
    let mut run = 0;
    for ch in query.chars() {
        run = if ch.is_alphanumeric() { run + 1 } else { 0 };
        if run >= 3 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{has_trigram, like_pattern};

    #[test]
    fn short_words_have_no_trigram() {
        assert!(has_trigram("abc"));
        assert!(has_trigram("x ÉLAN"));
        assert!(!has_trigram("ab"));
        assert!(!has_trigram("a b c d"));
        assert!(!has_trigram("1%_"));
    }

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(like_pattern("abc"), "%abc%");
        assert_eq!(like_pattern("100%"), "%100\\%%");
        assert_eq!(like_pattern("a_b"), "%a\\_b%");
        assert_eq!(like_pattern("c:\\x"), "%c:\\\\x%");
    }
}
