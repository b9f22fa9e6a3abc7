//! Statements of message search: the newest matches of a user (or of one chat) with
//! their relevance, in at most three small statements, and the rows of one page.
//!
//! Relevance ordering over every match is the trap: a common word matches a large
//! part of a heavy user's messages, and ranking them all reads them all. So only the
//! newest `window` matches are ranked, found in up to three steps (see
//! `adapters::data` for the choice between them):
//! 1. the scope's newest [`FIRST_SCAN`] messages are read in index order
//!    (`messages_owner_created_idx`, or the chat's `(chat_id, seq)`), filtered by the
//!    query, stopping at `window` matches: this is the whole search for common words;
//! 2. when those held few matches but enough to fill the window within
//!    [`SCAN_BUDGET`] messages, the scan goes on from where it stopped, up to that
//!    budget (mid-frequency words);
//! 3. otherwise (or if the budget ran out) the rest comes from the GIN index
//!    (`messages_search_idx`: owner, chat and words), whose bitmap holds only this
//!    user's matching messages, which are few (rare words, or none at all).
//!
//! A scan returns its matches and, when it read its whole budget without filling the
//! window, the position of the last message of that budget (the "end", read from the
//! index alone in the same statement, only in that case): the next step starts strictly
//! after it, and no end means the scope has no older message. The query (`websearch_to_tsquery`) and the
//! wanted lexemes are computed once per statement (scalar sub-selects, which PostgreSQL
//! runs once as init plans): written inline, the cast of the bound configuration name
//! to `regconfig` is not constant, and the query would be parsed again for every row.

use crate::errors::PgError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// How many of the newest messages the first step reads at most.
pub(crate) const FIRST_SCAN: i64 = 500;

/// How many of the newest messages the first two steps read at most, together.
pub(crate) const SCAN_BUDGET: i64 = 10_000;

/// The query parameters every statement shares.
#[derive(Debug, Clone)]
pub(crate) struct Terms {
    /// The text-search configuration.
    pub config: String,
    /// The canonical `websearch_to_tsquery` text.
    pub websearch: String,
    /// The wanted words, space-separated (their lexemes count for relevance).
    pub wanted: String,
}

/// Whose messages.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    /// A user's.
    Owner(String),
    /// One chat's (of this owner).
    Chat(String, Uuid),
}

/// A message's position in the scope's newest-first order: `(created_at, id)` for a
/// user's messages, `seq` within one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    pub seq: i32,
}

/// A matching message: its key and its relevance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub relevance: i32,
}

/// What one scan in index order found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scanned {
    /// The matches, newest first.
    pub matches: Vec<Candidate>,
    /// The last message read, when the scan read its whole budget without filling the
    /// window; `None` when it stopped on a full window or ran out of messages.
    pub end: Option<Position>,
}

/// A row of a scan: a match (with its relevance) or the end marker.
#[derive(Debug, Clone, QueryableByName)]
struct ScanRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    seq: i32,
    #[diesel(sql_type = Bool)]
    hit: bool,
    #[diesel(sql_type = Bool)]
    last: bool,
    #[diesel(sql_type = Nullable<Integer>)]
    relevance: Option<i32>,
}

/// `$1` config, `$2` websearch text, `$3` wanted words: computed once per statement.
const QUERY: &str = "(SELECT websearch_to_tsquery($1::regconfig, $2))";
const RELEVANCE: &str = "(SELECT coalesce(sum(array_length(u.positions, 1)), 0)::int4 \
     FROM unnest(r.content_tsv) u \
     WHERE u.lexeme = ANY((SELECT tsvector_to_array(to_tsvector($1::regconfig, $3)))::text[]))";

/// The scope's filter on `m` from `$4` (and `$5`), its newest-first order, and the
/// condition "strictly older than the position `$6`, `$7`, `$8`".
fn scope_sql(scope: &Scope) -> (&'static str, &'static str, &'static str) {
    match scope {
        Scope::Owner(_) => (
            "m.owner = $4 AND $5::uuid IS NOT NULL",
            "m.created_at DESC, m.id DESC",
            "(m.created_at, m.id) < ($6, $7) AND $8::int4 IS NOT NULL",
        ),
        Scope::Chat(..) => (
            "m.owner = $4 AND m.chat_id = $5",
            "m.seq DESC",
            "m.seq < $8 AND $6::timestamptz IS NOT NULL AND $7::uuid IS NOT NULL",
        ),
    }
}

type Boxed<'a> =
    diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery>;

/// Binds `$1`..`$8`: the terms, the scope, and the position to start strictly after
/// (9999-12-31 when there is none: every message is older).
fn bind<'a>(sql: String, terms: &'a Terms, scope: &'a Scope, after: Option<Position>) -> Boxed<'a> {
    let q = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Text, _>(&terms.config)
        .bind::<Text, _>(&terms.websearch)
        .bind::<Text, _>(&terms.wanted);
    let q = match scope {
        Scope::Owner(owner) => q.bind::<Text, _>(owner).bind::<SqlUuid, _>(Uuid::nil()),
        Scope::Chat(owner, chat) => q.bind::<Text, _>(owner).bind::<SqlUuid, _>(*chat),
    };
    let after = after.unwrap_or(Position {
        created_at: DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default(),
        id: Uuid::max(),
        seq: i32::MAX,
    });
    q.bind::<Timestamptz, _>(after.created_at)
        .bind::<SqlUuid, _>(after.id)
        .bind::<Integer, _>(after.seq)
}

/// Steps 1 and 2: the matches among the scope's next `budget` messages (newest first,
/// strictly older than `after`), at most `want`, and where the scan ended.
pub(crate) fn scan(
    conn: &mut PgConnection,
    terms: &Terms,
    scope: &Scope,
    after: Option<Position>,
    budget: i64,
    want: i64,
) -> Result<Scanned, PgError> {
    let (filter, order, older) = scope_sql(scope);
    // The matches first; then, only when they are fewer than `want`, the budget's last
    // message (the end marker, always the last row), read from the index alone.
    let boundary = match scope {
        Scope::Owner(_) => {
            "SELECT m.id, m.created_at, 0::int4 AS seq FROM messages m \
             WHERE m.owner = $4 AND (m.created_at, m.id) < ($6, $7) \
             ORDER BY m.created_at DESC, m.id DESC OFFSET $9 - 1 LIMIT 1"
        }
        Scope::Chat(..) => {
            "SELECT $7::uuid AS id, $6::timestamptz AS created_at, m.seq FROM messages m \
             WHERE m.chat_id = $5 AND m.seq < $8 ORDER BY m.seq DESC OFFSET $9 - 1 LIMIT 1"
        }
    };
    let sql = format!(
        "WITH hits AS ( \
            SELECT r.id, r.created_at, r.seq, {RELEVANCE} AS relevance \
            FROM (SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m \
                  WHERE {filter} AND {older} ORDER BY {order} LIMIT $9) r \
            WHERE r.content_tsv @@ {QUERY} LIMIT $10) \
         SELECT id, created_at, seq, true AS hit, false AS last, relevance FROM hits \
         UNION ALL \
         SELECT b.id, b.created_at, b.seq, false, true, NULL FROM ({boundary}) b \
         WHERE (SELECT count(*) FROM hits) < $10"
    );
    let rows: Vec<ScanRow> = bind(sql, terms, scope, after)
        .bind::<BigInt, _>(budget)
        .bind::<BigInt, _>(want)
        .load(conn)?;
    let mut out = Scanned::default();
    for r in rows {
        if r.hit {
            out.matches.push(Candidate {
                id: r.id,
                created_at: r.created_at,
                relevance: r.relevance.unwrap_or(0),
            });
        }
        if r.last {
            out.end = Some(Position {
                created_at: r.created_at,
                id: r.id,
                seq: r.seq,
            });
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, QueryableByName)]
struct OlderRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    relevance: i32,
}

/// Step 3: matches strictly older than `after`, from the GIN index, newest first, at
/// most `n`.
pub(crate) fn older_matches(
    conn: &mut PgConnection,
    terms: &Terms,
    scope: &Scope,
    after: Position,
    n: i64,
) -> Result<Vec<Candidate>, PgError> {
    let (filter, order, older) = scope_sql(scope);
    // The matching set first (the GIN bitmap), then only its newest `n` are ranked.
    let sql = format!(
        "WITH hits AS MATERIALIZED ( \
            SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m \
            WHERE {filter} AND m.content_tsv @@ {QUERY} AND {older}) \
         SELECT r.id, r.created_at, {RELEVANCE} AS relevance \
         FROM (SELECT * FROM hits m ORDER BY {order} LIMIT $9) r"
    );
    let rows: Vec<OlderRow> = bind(sql, terms, scope, Some(after))
        .bind::<BigInt, _>(n)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| Candidate {
            id: r.id,
            created_at: r.created_at,
            relevance: r.relevance,
        })
        .collect())
}

/// Whether a first scan that found `found` matches in [`FIRST_SCAN`] messages should
/// go on in index order: only when, at that density, the rest of the budget would find
/// at least half of the `window`. Rarer words go to the GIN index at once (its cost
/// grows with the number of matches, the scan's with the number of messages read).
pub(crate) fn keep_scanning(found: usize, window: i64) -> bool {
    let found = i64::try_from(found).unwrap_or(i64::MAX);
    2 * found.saturating_mul(SCAN_BUDGET) >= window.saturating_mul(FIRST_SCAN)
}

#[cfg(test)]
mod tests {
    use super::keep_scanning;

    #[test]
    fn rare_words_go_to_the_index() {
        // 100 ranked: 3 matches in the first 500 messages predict 60 in 10,000.
        assert!(keep_scanning(3, 100));
        assert!(!keep_scanning(2, 100));
        assert!(!keep_scanning(0, 100));
        assert!(keep_scanning(1, 3));
        assert!(!keep_scanning(0, 3));
    }
}
