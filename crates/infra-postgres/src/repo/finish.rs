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

/// The parts every finish shares: `$1` chat, `$2..$8` the reply's final state, `$9`
/// reply, `$10` the chat's new `updated_at`, `$11..$14` the event.
macro_rules! finish_sql {
    ($charge:expr) => {
        concat!(
            "WITH c AS (SELECT id FROM chats WHERE id = $1 FOR UPDATE), ",
            "m AS (UPDATE messages SET content = $2, status = $3, model = $4, prompt_tokens = $5, ",
            "completion_tokens = $6, error = $7, updated_at = $8 ",
            "WHERE id = $9 AND chat_id = (SELECT id FROM c) AND status = 'streaming' ",
            "RETURNING chat_id), ",
            "t AS (UPDATE chats SET updated_at = GREATEST(updated_at, $10) ",
            "WHERE id = (SELECT chat_id FROM m)), ",
            "o AS (INSERT INTO outbox (event_id, chat_id, event_type, payload) ",
            "SELECT $11, $12, $13, $14 FROM m)",
            $charge,
            " SELECT count(*) AS finished FROM m"
        )
    };
}

/// The finish without a charge.
const PLAIN_SQL: &str = finish_sql!("");

/// The finish with a charge: `$15..$22` the ledger row's key and amounts.
const CHARGED_SQL: &str = finish_sql!(concat!(
    ", u AS (INSERT INTO usage_ledger (user_id, day, model, purpose, estimated, ",
    "prompt_tokens, completion_tokens, requests) ",
    "SELECT $15, $16, $17, $18, $19, $20, $21, $22 FROM m ",
    "ON CONFLICT (user_id, day, model, purpose, estimated) DO UPDATE SET ",
    "prompt_tokens = usage_ledger.prompt_tokens + excluded.prompt_tokens, ",
    "completion_tokens = usage_ledger.completion_tokens + excluded.completion_tokens, ",
    "requests = usage_ledger.requests + excluded.requests)"
));

super::prepared::prepared! {
    /// A reply's finish without a usage charge.
    Plain {
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
    }
    PLAIN_SQL
}

super::prepared::prepared! {
    /// A reply's finish with its usage charge added to the ledger row (created at the
    /// first charge).
    Charged {
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
        user_id: String => Text,
        day: NaiveDate => Date,
        charged_model: String => Text,
        purpose: String => Text,
        estimated: bool => Bool,
        charged_prompt: i64 => BigInt,
        charged_completion: i64 => BigInt,
        requests: i64 => BigInt,
    }
    CHARGED_SQL
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
    let done: Finished = match charge {
        None => Plain {
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
        }
        .get_result(conn)?,
        Some(u) => Charged {
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
            user_id: &u.user_id,
            day: &u.day,
            charged_model: &u.model,
            purpose: &u.purpose,
            estimated: &u.estimated,
            charged_prompt: &u.prompt_tokens,
            charged_completion: &u.completion_tokens,
            requests: &u.requests,
        }
        .get_result(conn)?,
    };
    Ok(done.finished > 0)
}

#[cfg(test)]
mod tests {
    use super::super::prepared::sql_of;
    use super::*;

    #[test]
    fn each_placeholder_is_bound_once_in_order() {
        for sql in [PLAIN_SQL, CHARGED_SQL] {
            let mut n = 0;
            let mut rest = sql;
            while let Some(at) = rest.find('$') {
                n += 1;
                let digits: String = rest[at + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                assert_eq!(digits, n.to_string(), "in {sql}");
                rest = &rest[at + 1..];
            }
            assert!(n == 14 || n == 22, "{n} placeholders in {sql}");
        }
        let (id, at) = (Uuid::nil(), Utc::now());
        let s = String::new();
        let none = None;
        let sql = sql_of(&Plain {
            chat: &id,
            content: &s,
            status: &s,
            model: &none,
            prompt_tokens: &None,
            completion_tokens: &None,
            error: &none,
            updated_at: &at,
            id: &id,
            touched: &at,
            event_id: &id,
            event_chat: &id,
            event_type: &s,
            payload: &serde_json::Value::Null,
        });
        assert_eq!(sql, PLAIN_SQL);
    }
}
