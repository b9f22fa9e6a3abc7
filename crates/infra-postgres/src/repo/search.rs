//! Statements of message search: the newest matches of a user (or of one chat) with
//! their relevance, in at most three small statements, and the rows of one page.
//!
//! Relevance ordering over every match is the trap: a common word matches a large
//! part of a heavy user's messages, and ranking them all reads them all. So only the
//! newest `window` matches are ranked, found in two steps:
//! 1. the user's newest [`SCAN_BUDGET`] messages are read in index order
//!    (`messages_owner_created_idx`, or the chat's `(chat_id, seq)`), filtered by the
//!    query, stopping at `window` matches: this is the whole search for common words;
//! 2. if those held fewer than `window` matches and the user has older messages, the
//!    rest comes from the GIN index (`messages_search_idx`: owner, chat and words), whose
//!    bitmap holds only this user's matching messages, which are few (fewer than
//!    `window` in the newest [`SCAN_BUDGET`]).
//!
//! Both steps compute relevance for the rows they return only; the ranking, the cursor
//! and the page are then applied to at most `window` candidates.

use crate::errors::PgError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// How many of the newest messages the first step reads at most.
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

/// A matching message: its key and its relevance.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct Candidate {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub relevance: i32,
}

/// `$1` config, `$2` websearch text, `$3` wanted words.
const QUERY: &str = "websearch_to_tsquery($1::regconfig, $2)";
const RELEVANCE: &str = "(SELECT coalesce(sum(array_length(u.positions, 1)), 0)::int4 \
     FROM unnest(r.content_tsv) u \
     WHERE u.lexeme = ANY(tsvector_to_array(to_tsvector($1::regconfig, $3))))";

/// The scope's filter on `m` from `$4` (and `$5`), its newest-first order.
fn scope_sql(scope: &Scope) -> (&'static str, &'static str) {
    match scope {
        Scope::Owner(_) => ("m.owner = $4", "m.created_at DESC, m.id DESC"),
        Scope::Chat(..) => ("m.owner = $4 AND m.chat_id = $5", "m.seq DESC"),
    }
}

fn bind_scope<'a>(
    q: diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery>,
    terms: &'a Terms,
    scope: &'a Scope,
) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    let q = q
        .bind::<Text, _>(&terms.config)
        .bind::<Text, _>(&terms.websearch)
        .bind::<Text, _>(&terms.wanted);
    match scope {
        Scope::Owner(owner) => q.bind::<Text, _>(owner).bind::<SqlUuid, _>(Uuid::nil()),
        Scope::Chat(owner, chat) => q.bind::<Text, _>(owner).bind::<SqlUuid, _>(*chat),
    }
}

/// Step 1: the matches among the scope's newest [`SCAN_BUDGET`] messages, newest
/// first, at most `window`.
pub(crate) fn recent_matches(
    conn: &mut PgConnection,
    terms: &Terms,
    scope: &Scope,
    window: i64,
) -> Result<Vec<Candidate>, PgError> {
    let (filter, order) = scope_sql(scope);
    // `$5` is bound in both scopes; the owner scope compares it to nothing.
    let sql = format!(
        "SELECT r.id, r.created_at, {RELEVANCE} AS relevance \
         FROM (SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m \
               WHERE {filter} AND $5::uuid IS NOT NULL ORDER BY {order} LIMIT $6) r \
         WHERE r.content_tsv @@ {QUERY} \
         LIMIT $7"
    );
    let q = bind_scope(diesel::sql_query(sql).into_boxed(), terms, scope)
        .bind::<BigInt, _>(SCAN_BUDGET)
        .bind::<BigInt, _>(window);
    Ok(q.load(conn)?)
}

/// Where step 1 stopped: the scope's [`SCAN_BUDGET`]-th newest message, if it has that many.
pub(crate) fn boundary(
    conn: &mut PgConnection,
    scope: &Scope,
) -> Result<Option<(DateTime<Utc>, Uuid, i32)>, PgError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Timestamptz)]
        created_at: DateTime<Utc>,
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = Integer)]
        seq: i32,
    }
    let (sql, owner, chat) = match scope {
        Scope::Owner(o) => (
            "SELECT created_at, id, seq FROM messages m WHERE m.owner = $1 AND $2::uuid IS NOT NULL \
             ORDER BY m.created_at DESC, m.id DESC OFFSET $3 LIMIT 1",
            o,
            Uuid::nil(),
        ),
        Scope::Chat(o, c) => (
            "SELECT created_at, id, seq FROM messages m WHERE m.chat_id = $2 AND $1 IS NOT NULL \
             ORDER BY m.seq DESC OFFSET $3 LIMIT 1",
            o,
            *c,
        ),
    };
    let row: Option<Row> = diesel::sql_query(sql)
        .bind::<Text, _>(owner)
        .bind::<SqlUuid, _>(chat)
        .bind::<BigInt, _>(SCAN_BUDGET - 1)
        .get_result(conn)
        .optional()?;
    Ok(row.map(|r| (r.created_at, r.id, r.seq)))
}

/// Step 2: matches older than the boundary, from the GIN index, newest first, at most `n`.
pub(crate) fn older_matches(
    conn: &mut PgConnection,
    terms: &Terms,
    scope: &Scope,
    boundary: (DateTime<Utc>, Uuid, i32),
    n: i64,
) -> Result<Vec<Candidate>, PgError> {
    let (filter, order) = scope_sql(scope);
    let older = match scope {
        Scope::Owner(_) => "(m.created_at, m.id) < ($6, $7) AND $8::int4 IS NOT NULL",
        Scope::Chat(..) => "m.seq < $8 AND $6::timestamptz IS NOT NULL AND $7::uuid IS NOT NULL",
    };
    // The matching set first (the GIN bitmap), then only its newest `n` are ranked.
    let sql = format!(
        "WITH hits AS MATERIALIZED ( \
            SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m \
            WHERE {filter} AND m.content_tsv @@ {QUERY} AND {older}) \
         SELECT r.id, r.created_at, {RELEVANCE} AS relevance \
         FROM (SELECT * FROM hits m ORDER BY {order} LIMIT $9) r"
    );
    let q = bind_scope(diesel::sql_query(sql).into_boxed(), terms, scope)
        .bind::<Timestamptz, _>(boundary.0)
        .bind::<SqlUuid, _>(boundary.1)
        .bind::<Integer, _>(boundary.2)
        .bind::<BigInt, _>(n);
    Ok(q.load(conn)?)
}
