//! Statements of message search: the newest matches of a user (or of one chat) with
//! their relevance, in one or two statements, then the rows of one page.
//!
//! Relevance ordering over every match is the trap: a common word matches a large
//! part of a heavy user's messages, and ranking them all reads them all. So only the
//! newest `window` matches are ranked, found in up to three steps:
//! 1. the scope's newest `FIRST_SCAN` messages are read in index order
//!    (`messages_owner_created_idx`, or the chat's `(chat_id, seq)`), filtered by the
//!    query, stopping at `window` matches: this is the whole search for common words;
//! 2. when those held few matches but enough to fill the window within
//!    `SCAN_BUDGET` messages, the scan goes on from where it stopped, up to that
//!    budget (mid-frequency words);
//! 3. otherwise (or if the budget ran out) the rest comes from the GIN index
//!    (`messages_search_idx`: owner, chat and words), whose bitmap holds only this
//!    user's matching messages, which are few (rare words, or none at all).
//!
//! A user's search for words that must all occur (no phrase, exclusion or `or`) reads
//! the word index `message_terms` instead (`repo::search_words`): one statement, a few
//! hundred index entries, whatever the words' frequencies. The steps below answer the
//! other queries, and one chat's.
//!
//! Steps 1 and 2 are one prepared statement (`repo::search_recent`), which returns the
//! matches and, when they may be incomplete, the position to go on from; step 3 is
//! [`older_matches`], sent unnamed so that it is planned with its values each time (its
//! plan depends on how many messages the owner has: a generic plan would scan a heavy
//! user's messages in index order instead of asking the GIN index). The query
//! (`websearch_to_tsquery`) and the wanted lexemes are computed once per statement
//! (scalar sub-selects, which PostgreSQL runs once as init plans): written inline, the
//! cast of the bound configuration name to `regconfig` is not constant, and the query
//! would be parsed again for every row.

use crate::errors::PgError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// The query parameters every statement shares.
#[derive(Debug, Clone)]
pub(crate) struct Terms {
    /// The text-search configuration.
    pub config: String,
    /// The canonical `websearch_to_tsquery` text.
    pub websearch: String,
    /// The wanted words, space-separated (their lexemes count for relevance).
    pub wanted: String,
    /// Whether the query only asks for words that must all occur
    /// (`MessageQuery::words_only`): a user's search then reads the word index first
    /// (`repo::search_words`).
    pub words_only: bool,
}

impl Terms {
    /// The owner whose word index answers this search first: a user's search (not one
    /// chat's) for words only.
    pub(crate) fn word_index_owner<'s>(&self, scope: &'s Scope) -> Option<&'s str> {
        match scope {
            Scope::Owner(owner) if self.words_only => Some(owner),
            _ => None,
        }
    }
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

/// What the scan in index order (steps 1 and 2) found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scanned {
    /// The matches, newest first.
    pub matches: Vec<Candidate>,
    /// The last message read, when the scan read its whole budget without filling the
    /// window (step 3 goes on strictly after it); `None` when the window is full or the
    /// scope has no older message.
    pub end: Option<Position>,
}

/// `$1` config, `$2` websearch text, `$3` wanted words: computed once per statement
/// (the relevance as in `repo::search_recent`).
const QUERY: &str = "(SELECT websearch_to_tsquery($1::regconfig, $2))";
const RELEVANCE: &str = super::search_recent::relevance!(
    "r",
    "(SELECT tsvector_to_array(to_tsvector($1::regconfig, $3)))"
);

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

/// Binds `$1`..`$8`: the terms, the scope, and the position to start strictly after.
fn bind<'a>(sql: String, terms: &'a Terms, scope: &'a Scope, after: Position) -> Boxed<'a> {
    let q = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Text, _>(&terms.config)
        .bind::<Text, _>(&terms.websearch)
        .bind::<Text, _>(&terms.wanted);
    let q = match scope {
        Scope::Owner(owner) => q.bind::<Text, _>(owner).bind::<SqlUuid, _>(Uuid::nil()),
        Scope::Chat(owner, chat) => q.bind::<Text, _>(owner).bind::<SqlUuid, _>(*chat),
    };
    q.bind::<Timestamptz, _>(after.created_at)
        .bind::<SqlUuid, _>(after.id)
        .bind::<Integer, _>(after.seq)
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

/// Step 3's text for one scope: `$1`..`$3` the terms (`text`), `$4` the owner (`text`),
/// `$5` the chat (`uuid`), `$6`..`$8` the position (`timestamptz`, `uuid`, `int4`), `$9`
/// how many (`int8`). Sent unnamed, so that it is planned with its values.
pub(crate) fn older_sql(scope: &Scope) -> String {
    let (filter, order, older) = scope_sql(scope);
    // The matching set first (the GIN bitmap), then only its newest `n` are ranked.
    format!(
        "WITH hits AS MATERIALIZED ( \
            SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m \
            WHERE {filter} AND m.content_tsv @@ {QUERY} AND {older}) \
         SELECT r.id, r.created_at, {RELEVANCE} AS relevance \
         FROM (SELECT * FROM hits m ORDER BY {order} LIMIT $9) r"
    )
}

/// Step 3: matches strictly older than `after`, from the GIN index, newest first, at
/// most `n`. The transaction's `enable_sort = off` (for the scan) leaves this plan as it
/// is: the matching set is materialised first (its own plan has no order to choose),
/// so sorting it is the only way to order it; `EXPLAIN` on the bench's seed gives the
/// same plan with the setting on or off, for both scopes.
pub(crate) fn older_matches(
    conn: &mut PgConnection,
    terms: &Terms,
    scope: &Scope,
    after: Position,
    n: i64,
) -> Result<Vec<Candidate>, PgError> {
    let rows: Vec<OlderRow> = bind(older_sql(scope), terms, scope, after)
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
