//! Message search from the word index (`message_terms`): a user's newest matches of a
//! query whose words must all occur, in one statement, without reading `messages`.
//!
//! The statement first checks that the query, as PostgreSQL reads it
//! (`websearch_to_tsquery`), is a conjunction of at most eight lexemes: its text is
//! quoted lexemes joined by `&` and nothing else. Otherwise it returns a single row with
//! `hit` false, and the search takes the scan's way (`repo::search_recent`). The driving
//! lexeme is the rarest among the recent messages: the one whose `window`-th newest
//! posting is the oldest (or that has fewer), found by reading at most `window` entries
//! of each. Its postings are read newest first in index order, each checked for the
//! other lexemes by key (one index probe each), until `window` messages hold them all.
//! The relevance is the sum of the lexemes' position counts (`n`), as the scan's
//! `relevance!` counts them: a conjunction's wanted lexemes are its lexemes. Every value
//! comes in through the first CTE and is read back as an init plan, so the plan never
//! depends on them: on the request's thread the statement is prepared once per
//! connection (`local_reads::search`); on the pool diesel sends it unnamed.

use super::search::Candidate;
use crate::errors::PgError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// `$1` the configuration name, `$2` the websearch text, `$3` the owner (`text`), `$4`
/// the window (`int8`).
pub(crate) const WORDS_SQL: &str = r"WITH a AS MATERIALIZED (SELECT $1::text::regconfig AS cfg, $2::text AS ws, $3::text AS owner, $4::int8 AS win),
 q AS MATERIALIZED (SELECT websearch_to_tsquery(cfg, ws)::text AS t FROM a),
 l AS MATERIALIZED (SELECT DISTINCT x[1] AS lexeme FROM q, regexp_matches(q.t, '''([^''\\]*)''', 'g') AS x),
 ok AS MATERIALIZED (SELECT regexp_replace(t, '''[^''\\]*''', '', 'g') ~ '^[ &]*$' AND (SELECT count(*) FROM l) <= 8 AS pure FROM q),
 sized AS MATERIALIZED (SELECT l.lexeme, (SELECT t.created_at FROM message_terms t
     WHERE t.owner = (SELECT owner FROM a) AND t.lexeme = l.lexeme
     ORDER BY t.created_at DESC, t.message_id DESC OFFSET (SELECT win - 1 FROM a) LIMIT 1) AS at
   FROM l WHERE (SELECT pure FROM ok)),
 d AS MATERIALIZED (SELECT lexeme FROM sized ORDER BY at NULLS FIRST, lexeme LIMIT 1),
 r AS MATERIALIZED (SELECT lexeme FROM sized WHERE lexeme <> (SELECT lexeme FROM d)),
 k AS MATERIALIZED (SELECT count(*) AS k FROM r),
 hits AS MATERIALIZED (SELECT t.message_id AS id, t.created_at, (t.n + p.s)::int4 AS relevance
   FROM message_terms t CROSS JOIN LATERAL (SELECT count(x.n) AS c, coalesce(sum(x.n), 0) AS s
     FROM r, LATERAL (SELECT u.n FROM message_terms u WHERE u.owner = t.owner AND u.lexeme = r.lexeme
       AND u.created_at = t.created_at AND u.message_id = t.message_id) x) p
   WHERE t.owner = (SELECT owner FROM a) AND t.lexeme = (SELECT lexeme FROM d) AND p.c = (SELECT k FROM k)
   ORDER BY t.created_at DESC, t.message_id DESC LIMIT (SELECT win FROM a))
SELECT id, created_at, relevance, true AS hit FROM hits
UNION ALL SELECT NULL::uuid, NULL::timestamptz, NULL::int4, false WHERE NOT (SELECT pure FROM ok)";

/// A row of [`WORDS_SQL`]: a match, or (`hit` false, the rest null) "not a conjunction".
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct WordRow {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub relevance: Option<i32>,
    #[diesel(sql_type = Bool)]
    pub hit: bool,
}

/// The matches, newest first (all of the newest `window`: nothing more is to be read),
/// or `None` when the query is not a conjunction of words.
pub(crate) fn word_matches_of(
    rows: impl IntoIterator<Item = WordRow>,
) -> Result<Option<Vec<Candidate>>, PgError> {
    let mut out = Vec::new();
    for r in rows {
        if !r.hit {
            return Ok(None);
        }
        match (r.id, r.created_at, r.relevance) {
            (Some(id), Some(created_at), Some(relevance)) => out.push(Candidate {
                id,
                created_at,
                relevance,
            }),
            _ => return Err(PgError::Data("a word-index match without its key".into())),
        }
    }
    Ok(Some(out))
}

/// The owner's newest `window` matches from the word index, or `None` when the query
/// is not a conjunction of words (then the scan answers). Sent through diesel, unnamed.
pub(crate) fn word_matches(
    conn: &mut PgConnection,
    config: &str,
    websearch: &str,
    owner: &str,
    window: i64,
) -> Result<Option<Vec<Candidate>>, PgError> {
    let rows: Vec<WordRow> = diesel::sql_query(WORDS_SQL)
        .bind::<Text, _>(config)
        .bind::<Text, _>(websearch)
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(window)
        .load(conn)?;
    word_matches_of(rows)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::word_matches;
    use crate::testing::TestDb;

    /// The statement's own check, whatever the caller decided: only a conjunction of at
    /// most eight lexemes, as PostgreSQL reads the query, is answered from the index.
    #[test]
    fn only_a_conjunction_of_at_most_eight_lexemes_is_answered() {
        let db = TestDb::new();
        let conn = &mut db.connect();
        // Whether the statement answers `websearch` itself (`Some`) or hands it over.
        let mut answers = |config: &str, websearch: &str| {
            word_matches(conn, config, websearch, "alice", 100)
                .unwrap()
                .is_some()
        };
        assert!(answers("simple", r#""python""#));
        assert!(answers("simple", r#""a" "b" "c" "d" "e" "f" "g" "h""#));
        assert!(
            answers("simple", r#""a" "a" "b""#),
            "distinct lexemes count"
        );
        for handed_over in [
            r#""a" "b" "c" "d" "e" "f" "g" "h" "i""#,
            r#""a b""#,
            r#""a" -"b""#,
            r#""a" or "b""#,
        ] {
            assert!(!answers("simple", handed_over), "{handed_over}");
        }
        // Only stop words: PostgreSQL's query is empty, which matches nothing.
        assert_eq!(
            word_matches(conn, "english", r#""the""#, "alice", 100).unwrap(),
            Some(vec![])
        );
    }
}
