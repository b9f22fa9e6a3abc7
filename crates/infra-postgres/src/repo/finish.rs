//! A reply's finish as one statement (its own implicit transaction, one round trip):
//! the chat row locked, the reply's final state stored while it is still `streaming`,
//! the chat's `updated_at` moved forward, the usage charge added (when there is one)
//! and the event appended — or, if the reply is no longer streaming or is gone,
//! nothing at all.
//!
//! The order is the one every change takes (the chat's lock first): `c` locks the chat
//! row, and the reply's `UPDATE` names `c` in its condition, so the lock is taken
//! before the reply's row is; every later part reads the reply's `RETURNING`, so it
//! writes only when the reply was finished here. The chat row is locked by `c` and
//! updated by `t` in the same statement: a row lock is not a new row version, so this
//! is not the "same row updated twice" that PostgreSQL refuses.

use crate::errors::PgError;
use crate::repo::usage::UsageCharge;
use crate::rows::{MessageRow, NewOutboxRow};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Jsonb, Nullable, Text, Timestamptz, Uuid as U};
use uuid::Uuid;

/// `$1` chat, `$2..$8` the reply's final state, `$9` reply, `$10` the chat's new
/// `updated_at`, `$11..$14` the event, `$15..$22` the usage charge (all `NULL` when
/// there is none: `u` then inserts nothing). Each placeholder appears once, in order
/// (`prepared!` binds them so).
const SQL: &str = concat!(
    "WITH c AS (SELECT id FROM chats WHERE id = $1 FOR UPDATE), ",
    "m AS (UPDATE messages SET content = $2, status = $3, model = $4, prompt_tokens = $5, ",
    "completion_tokens = $6, error = $7, updated_at = $8 ",
    "WHERE id = $9 AND chat_id = (SELECT id FROM c) AND status = 'streaming' ",
    "RETURNING chat_id), ",
    "t AS (UPDATE chats SET updated_at = GREATEST(updated_at, $10) ",
    "WHERE id = (SELECT chat_id FROM m)), ",
    "o AS (INSERT INTO outbox (event_id, chat_id, event_type, payload) ",
    "SELECT $11, $12, $13, $14 FROM m), ",
    "u AS (INSERT INTO usage_ledger (user_id, day, model, purpose, estimated, ",
    "prompt_tokens, completion_tokens, requests) ",
    "SELECT v.* FROM m CROSS JOIN (VALUES ($15, $16, $17, $18, $19, $20, $21, $22)) ",
    "v (user_id, day, model, purpose, estimated, prompt_tokens, completion_tokens, requests) ",
    "WHERE v.user_id IS NOT NULL ",
    "ON CONFLICT (user_id, day, model, purpose, estimated) DO UPDATE SET ",
    "prompt_tokens = usage_ledger.prompt_tokens + excluded.prompt_tokens, ",
    "completion_tokens = usage_ledger.completion_tokens + excluded.completion_tokens, ",
    "requests = usage_ledger.requests + excluded.requests) ",
    "SELECT count(*) AS finished FROM m"
);

super::prepared::prepared! {
    /// A reply's finish, with or without a usage charge.
    Finish {
        chat: Uuid => U,
        content: String => Text,
        status: String => Text,
        model: Option<String> => Nullable<Text>,
        prompt_tokens: Option<i64> => Nullable<BigInt>,
        completion_tokens: Option<i64> => Nullable<BigInt>,
        error: Option<String> => Nullable<Text>,
        updated_at: DateTime<Utc> => Timestamptz,
        id: Uuid => U,
        touched: DateTime<Utc> => Timestamptz,
        event_id: Uuid => U,
        event_chat: Uuid => U,
        event_type: String => Text,
        payload: serde_json::Value => Jsonb,
        user_id: Option<String> => Nullable<Text>,
        day: Option<NaiveDate> => Nullable<Date>,
        charged_model: Option<String> => Nullable<Text>,
        purpose: Option<String> => Nullable<Text>,
        estimated: Option<bool> => Nullable<Bool>,
        charged_prompt: Option<i64> => Nullable<BigInt>,
        charged_completion: Option<i64> => Nullable<BigInt>,
        requests: Option<i64> => Nullable<BigInt>,
    }
    SQL
}

#[derive(QueryableByName)]
struct Finished {
    #[diesel(sql_type = BigInt)]
    finished: i64,
}

/// Stores a reply's final state, its event and its charge in one statement if the
/// reply is still `streaming` in its chat; returns whether it was (else nothing changed).
pub(crate) fn finish(
    conn: &mut PgConnection,
    row: &MessageRow,
    event: &NewOutboxRow,
    charge: Option<&UsageCharge>,
) -> Result<bool, PgError> {
    let c = charge;
    let done: Finished = Finish {
        chat: &row.chat_id,
        content: &row.content,
        status: &row.status,
        model: &row.model,
        prompt_tokens: &row.prompt_tokens,
        completion_tokens: &row.completion_tokens,
        error: &row.error,
        updated_at: &row.updated_at,
        id: &row.id,
        touched: &row.updated_at,
        event_id: &event.event_id,
        event_chat: &event.chat_id,
        event_type: &event.event_type,
        payload: &event.payload,
        user_id: &c.map(|u| u.user_id.clone()),
        day: &c.map(|u| u.day),
        charged_model: &c.map(|u| u.model.clone()),
        purpose: &c.map(|u| u.purpose.clone()),
        estimated: &c.map(|u| u.estimated),
        charged_prompt: &c.map(|u| u.prompt_tokens),
        charged_completion: &c.map(|u| u.completion_tokens),
        requests: &c.map(|u| u.requests),
    }
    .get_result(conn)?;
    Ok(done.finished > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_placeholder_is_bound_once_in_order() {
        let mut n = 0;
        let mut rest = SQL;
        while let Some(at) = rest.find('$') {
            let digits: String = rest[at + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            n += 1;
            assert_eq!(digits, n.to_string(), "in {SQL}");
            rest = &rest[at + 1..];
        }
        assert_eq!(n, 22, "placeholders in {SQL}");
    }
}
