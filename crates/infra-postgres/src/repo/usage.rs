//! Statements on `usage_ledger`: adding a charge to its row (summed in place) and
//! reading a user's rows over a range of days.

use crate::errors::PgError;
use crate::schema::usage_ledger as ul;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::upsert::excluded;

/// A charge as the table takes it (one row's worth, `requests = 1`).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ul)]
pub(crate) struct UsageCharge {
    pub(crate) user_id: String,
    pub(crate) day: NaiveDate,
    pub(crate) model: String,
    pub(crate) purpose: String,
    pub(crate) estimated: bool,
    pub(crate) prompt_tokens: i64,
    pub(crate) completion_tokens: i64,
    pub(crate) requests: i64,
}

/// A ledger row as read.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ul)]
pub(crate) struct UsageRecord {
    pub(crate) day: NaiveDate,
    pub(crate) model: String,
    pub(crate) purpose: String,
    pub(crate) estimated: bool,
    pub(crate) prompt_tokens: i64,
    pub(crate) completion_tokens: i64,
    pub(crate) requests: i64,
}

/// Adds the charge to its row (creating it at the first charge).
pub(crate) fn add(conn: &mut PgConnection, charge: &UsageCharge) -> Result<(), PgError> {
    diesel::insert_into(ul::table)
        .values(charge)
        .on_conflict((ul::user_id, ul::day, ul::model, ul::purpose, ul::estimated))
        .do_update()
        .set((
            ul::prompt_tokens.eq(ul::prompt_tokens + excluded(ul::prompt_tokens)),
            ul::completion_tokens.eq(ul::completion_tokens + excluded(ul::completion_tokens)),
            ul::requests.eq(ul::requests + excluded(ul::requests)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The user's rows with `from <= day <= to`, in primary-key order.
pub(crate) fn range(
    conn: &mut PgConnection,
    user: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<UsageRecord>, PgError> {
    Ok(ul::table
        .filter(ul::user_id.eq(user))
        .filter(ul::day.between(from, to))
        .order((ul::day, ul::model, ul::purpose, ul::estimated))
        .select(UsageRecord::as_select())
        .load(conn)?)
}
