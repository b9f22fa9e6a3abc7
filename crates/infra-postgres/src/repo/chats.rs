//! Statements on `chats`: insert, lock, update, delete and keyset listing (title search
//! is in [`super::title_search`]).

use crate::errors::PgError;
use crate::rows::ChatRow;
use crate::schema::chats;
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamptz};
use uuid::Uuid;

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

pub(crate) fn owned_after<'a>(owner: &'a str, after: Cursor) -> chats::BoxedQuery<'a, Pg> {
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
