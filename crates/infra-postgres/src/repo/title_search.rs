//! Title search: the owner's chats whose title contains the query, ignoring case,
//! newest activity first, keyset-paginated like the chat list.
//!
//! Every match is found (no bound), in up to three steps, because neither index is
//! fast for every owner and query:
//! 1. the owner's newest [`FIRST_SCAN`] chats after the cursor are read from
//!    `chats_owner_updated_idx`, which carries the title (`INCLUDE (title)`), so the
//!    scan filters titles without visiting the table (an index-only scan), stopping at
//!    `limit` matches: the whole search for common words;
//! 2. when those held some matches, but fewer than `limit`, and at that density the
//!    next chats would give at least half of the rest, the scan goes on in index order
//!    up to [`SCAN_BUDGET`] chats in all (a word in 1% of the titles);
//! 3. otherwise (or past that budget) the rest comes from the GIN index on
//!    `(owner, title gin_trgm_ops)`: its bitmap holds only this owner's candidate
//!    chats, which are few here (a rare word, or none at all). A query without any
//!    trigram (no run of three letters or digits) cannot use that index and keeps
//!    filtering the owner's chats in index order instead.
//!
//! A scan filters with `strpos(lower(title), lower(q)) > 0`, which is `title ILIKE
//! '%q%'` with `q`'s wildcards escaped in a UTF-8 database (ILIKE lowers both sides
//! there) at a fifth of its cost; the GIN step needs `ILIKE` to use the index. A scan
//! that read its whole budget without filling the page also returns the budget's last
//! chat (read from the index in the same statement, only then), and the next step starts
//! strictly after it.

use crate::errors::PgError;
use crate::rows::ChatRow;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// How many of the owner's chats (newest first) the first scan reads at most.
pub(crate) const FIRST_SCAN: i64 = 300;

/// How many the first two scans read at most, together.
pub(crate) const SCAN_BUDGET: i64 = 5_000;

type Cursor = Option<(DateTime<Utc>, Uuid)>;

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

/// A row of a scan: a matching chat, or the budget's last chat (the end marker).
#[derive(QueryableByName)]
struct ScanRow {
    #[diesel(embed)]
    chat: ChatRow,
    #[diesel(sql_type = Bool)]
    hit: bool,
    #[diesel(sql_type = Bool)]
    last: bool,
}

/// What one scan found: the matches, newest first, and the budget's last chat when the
/// scan read its whole budget without finding `want`.
struct Scanned {
    matches: Vec<ChatRow>,
    end: Cursor,
}

/// Steps 1 and 2: the matches among the owner's next `budget` chats strictly after
/// `after`, at most `want`.
fn scan(
    conn: &mut PgConnection,
    owner: &str,
    query: &str,
    after: Cursor,
    budget: i64,
    want: i64,
) -> Result<Scanned, PgError> {
    // The matches first (an index-only scan, then only they are read from the table);
    // then, only when they are fewer than `want`, the budget's last chat (the end
    // marker), read from the index.
    let (at, id) = after.unwrap_or((
        DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default(),
        Uuid::max(),
    ));
    let rows: Vec<ScanRow> = diesel::sql_query(
        "WITH hits AS ( \
            SELECT w.id FROM (SELECT id, title FROM chats \
                              WHERE owner = $1 AND (updated_at, id) < ($3, $4) \
                              ORDER BY updated_at DESC, id DESC LIMIT $5) w \
            WHERE strpos(lower(w.title), lower($2)) > 0 LIMIT $6) \
         SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, \
                c.created_at, c.updated_at, true AS hit, false AS last \
         FROM hits h JOIN chats c ON c.id = h.id \
         UNION ALL \
         SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, \
                c.created_at, c.updated_at, false, true \
         FROM (SELECT id FROM chats WHERE owner = $1 AND (updated_at, id) < ($3, $4) \
               ORDER BY updated_at DESC, id DESC OFFSET $5 - 1 LIMIT 1) b \
         JOIN chats c ON c.id = b.id \
         WHERE (SELECT count(*) FROM hits) < $6",
    )
    .bind::<Text, _>(owner)
    .bind::<Text, _>(query)
    .bind::<Timestamptz, _>(at)
    .bind::<SqlUuid, _>(id)
    .bind::<BigInt, _>(budget)
    .bind::<BigInt, _>(want)
    .load(conn)?;
    let mut rows = rows;
    rows.sort_by_key(|r| std::cmp::Reverse((r.chat.updated_at, r.chat.id)));
    let mut out = Scanned {
        matches: Vec::with_capacity(rows.len()),
        end: None,
    };
    for r in rows {
        let key = (r.chat.updated_at, r.chat.id);
        if r.hit {
            out.matches.push(r.chat);
        }
        if r.last {
            out.end = Some(key);
        }
    }
    Ok(out)
}

/// Step 3: up to `n` matches strictly older than `(at, id)`, from the trigram index.
fn older_matches(
    conn: &mut PgConnection,
    owner: &str,
    query: &str,
    (at, id): (DateTime<Utc>, Uuid),
    n: i64,
) -> Result<Vec<ChatRow>, PgError> {
    Ok(diesel::sql_query(
        "WITH m AS MATERIALIZED ( \
            SELECT id, updated_at FROM chats \
            WHERE owner = $1 AND title ILIKE $2 AND (updated_at, id) < ($3, $4) \
         ) \
         SELECT c.id, c.owner, c.title, c.settings, c.message_count, c.active_leaf_id, c.created_at, c.updated_at \
         FROM chats c \
         JOIN (SELECT id FROM m ORDER BY updated_at DESC, id DESC LIMIT $5) t ON t.id = c.id \
         ORDER BY c.updated_at DESC, c.id DESC",
    )
    .bind::<Text, _>(owner)
    .bind::<Text, _>(like_pattern(query))
    .bind::<Timestamptz, _>(at)
    .bind::<SqlUuid, _>(id)
    .bind::<BigInt, _>(n)
    .load(conn)?)
}

/// Whether a first scan that found `found` of the `want` matches should go on in index
/// order: only when, at that density, the rest of the budget would find at least half
/// of them. Rarer words go to the trigram index at once.
fn keep_scanning(found: usize, want: i64) -> bool {
    let found = i64::try_from(found).unwrap_or(i64::MAX);
    2 * found.saturating_mul(SCAN_BUDGET) >= want.saturating_mul(FIRST_SCAN) && found > 0
}

/// Up to `limit` of the owner's chats strictly after `after` whose title contains
/// `query`, ignoring case, newest activity first (see the module documentation).
pub(crate) fn search(
    conn: &mut PgConnection,
    owner: &str,
    query: &str,
    after: Cursor,
    limit: i64,
) -> Result<Vec<ChatRow>, PgError> {
    let missing = |rows: &[ChatRow]| limit - i64::try_from(rows.len()).unwrap_or(limit);
    let first = scan(conn, owner, query, after, FIRST_SCAN, limit)?;
    let mut rows = first.matches;
    let mut end = first.end;
    if let Some(from) = end.filter(|_| keep_scanning(rows.len(), limit)) {
        let more = scan(
            conn,
            owner,
            query,
            Some(from),
            SCAN_BUDGET - FIRST_SCAN,
            missing(&rows),
        )?;
        rows.extend(more.matches);
        end = more.end;
    }
    let Some(from) = end else {
        return Ok(rows);
    };
    if has_trigram(query) {
        let older = older_matches(conn, owner, query, from, missing(&rows))?;
        rows.extend(older);
    } else {
        // No trigram to look up: keep filtering in index order, without a budget.
        let rest = scan(conn, owner, query, Some(from), i64::MAX, missing(&rows))?;
        rows.extend(rest.matches);
    }
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
    use super::{has_trigram, keep_scanning, like_pattern};

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

    #[test]
    fn rare_words_go_to_the_index() {
        // A page of 21: 1 match in the first 300 chats predicts 16 in 5,000.
        assert!(keep_scanning(1, 21));
        assert!(!keep_scanning(1, 51));
        assert!(!keep_scanning(0, 1));
    }
}
