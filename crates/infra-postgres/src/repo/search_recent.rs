//! Steps 1 and 2 of message search in one prepared statement: the scope's newest
//! messages read in index order, filtered by the query, with their relevance, and
//! where the scan ended (see `repo::search` for the steps).
//!
//! The statement's text is fixed per scope, so diesel prepares it once per connection
//! and PostgreSQL reuses its plan: planning it cost about as much as running it for a
//! common word. Every value comes in through the first CTE (`a`), each placeholder
//! once, and is read back as a scalar sub-select (an init plan), so the plan never
//! depends on the values. It runs in a transaction that turns `enable_sort` off
//! ([`in_search_transaction`]) so that no plan, generic or custom, whatever the
//! statistics say about the owner, can fetch all of a heavy user's messages and sort
//! them: reading in index order is then the only plan without a sort.
//!
//! Step 1 reads the newest `first` messages, stopping at `window` matches. It ends
//! early only when those held fewer than `window` matches: then the position of the
//! `first`-th message is read from the index alone (`e1`). Step 2 runs only when step 1
//! ended early and, at the density it found, the rest of the `budget` would give at
//! least half of the window (`2 * found * budget >= window * first`); it goes on from
//! `e1` up to `budget` messages in all, and when still short reads the position of
//! the budget's last message (`e2`). The rows are the matches, then at most one end
//! position (`hit` false): `e2` when step 2 ran, else `e1`; none means the matches
//! are complete.

use super::search::{Candidate, Position, Scanned, Scope, Terms};
use crate::errors::PgError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// How many of the newest messages step 1 reads at most.
pub(crate) const FIRST_SCAN: i64 = 500;

/// How many of the newest messages steps 1 and 2 read at most, together.
pub(crate) const SCAN_BUDGET: i64 = 10_000;

/// The statement after its first CTE, for one scope: `$filter` selects the scope's
/// messages, `$order` is its newest-first index order, `$older` "strictly older than
/// the position `e1`".
macro_rules! recent_sql {
    ($filter:literal, $order:literal, $older:literal) => {
        concat!(
            "p AS MATERIALIZED (SELECT websearch_to_tsquery(cfg, ws) AS q, \
                 tsvector_to_array(to_tsvector(cfg, wanted)) AS w FROM a), \
             s1 AS MATERIALIZED ( \
               SELECT r.id, r.created_at, r.seq, r.content_tsv FROM ( \
                 SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m \
                 WHERE ",
            $filter,
            " ORDER BY ",
            $order,
            " LIMIT (SELECT first FROM a)) r \
               WHERE r.content_tsv @@ (SELECT q FROM p) LIMIT (SELECT win FROM a)), \
             n1 AS MATERIALIZED (SELECT count(*) AS n, \
                 2 * count(*) * (SELECT budget FROM a) >= (SELECT win * first FROM a) AS go \
               FROM s1), \
             e1 AS MATERIALIZED ( \
               SELECT m.created_at, m.id, m.seq FROM messages m \
               WHERE ",
            $filter,
            " AND (SELECT n FROM n1) < (SELECT win FROM a) \
               ORDER BY ",
            $order,
            " OFFSET (SELECT first - 1 FROM a) LIMIT 1), \
             s2 AS MATERIALIZED ( \
               SELECT r.id, r.created_at, r.seq, r.content_tsv FROM ( \
                 SELECT m.id, m.created_at, m.seq, m.content_tsv FROM messages m \
                 WHERE ",
            $filter,
            " AND (SELECT go FROM n1) AND ",
            $older,
            " \
                 ORDER BY ",
            $order,
            " LIMIT (SELECT budget - first FROM a)) r \
               WHERE r.content_tsv @@ (SELECT q FROM p) \
               LIMIT (SELECT win FROM a) - (SELECT n FROM n1)), \
             e2 AS MATERIALIZED ( \
               SELECT m.created_at, m.id, m.seq FROM messages m \
               WHERE ",
            $filter,
            " AND (SELECT go FROM n1) AND ",
            $older,
            " \
                 AND (SELECT n FROM n1) + (SELECT count(*) FROM s2) < (SELECT win FROM a) \
               ORDER BY ",
            $order,
            " OFFSET (SELECT budget - first - 1 FROM a) LIMIT 1) \
             SELECT r.id, r.created_at, r.seq, true AS hit, ",
            relevance!("r", "(SELECT w FROM p)"),
            " AS relevance \
             FROM (SELECT * FROM s1 UNION ALL SELECT * FROM s2) r \
             UNION ALL SELECT id, created_at, seq, false, NULL FROM e2 \
             UNION ALL SELECT id, created_at, seq, false, NULL FROM e1 \
               WHERE NOT (SELECT go FROM n1)"
        )
    };
}

/// The relevance of the row `$r`: how many times the wanted lexemes (`$w`, a `text[]`)
/// occur in its `content_tsv`. The wanted lexemes' positions are marked with weight A
/// and only those kept (`setweight`, `ts_filter`), so `unnest` expands one or two
/// lexemes instead of every lexeme of the message with its arrays, a fifth of the
/// cost. Every position of `content_tsv` has weight D (`to_tsvector` sets no other), so
/// exactly the wanted lexemes have weight A.
macro_rules! relevance {
    ($r:literal, $w:literal) => {
        concat!(
            "(SELECT coalesce(sum(array_length(u.positions, 1)), 0)::int4 \
             FROM unnest(ts_filter(setweight(",
            $r,
            ".content_tsv, 'A', ",
            $w,
            "), '{a}')) u)"
        )
    };
}
pub(crate) use relevance;

const OWNER_SQL: &str = recent_sql!(
    "m.owner = (SELECT owner FROM a)",
    "m.created_at DESC, m.id DESC",
    "(m.created_at, m.id) < ((SELECT created_at FROM e1), (SELECT id FROM e1))"
);

const CHAT_SQL: &str = recent_sql!(
    "m.chat_id = (SELECT chat FROM a) AND m.owner = (SELECT owner FROM a)",
    "m.seq DESC",
    "m.seq < (SELECT seq FROM e1)"
);

/// The statement for one scope (`CHAT`: one chat's messages by `seq`, else the
/// owner's by `(created_at, id)`); its SQL never changes, so it is prepared once.
struct Recent<'a, const CHAT: bool> {
    terms: &'a Terms,
    owner: &'a String,
    chat: Uuid,
    window: i64,
    first: i64,
    budget: i64,
}

impl<const CHAT: bool> diesel::query_builder::QueryId for Recent<'_, CHAT> {
    type QueryId = Recent<'static, CHAT>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const CHAT: bool> diesel::query_builder::QueryFragment<diesel::pg::Pg> for Recent<'_, CHAT> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("WITH a AS MATERIALIZED (SELECT ");
        out.push_bind_param::<Text, _>(&self.terms.config)?;
        out.push_sql("::regconfig AS cfg, ");
        out.push_bind_param::<Text, _>(&self.terms.websearch)?;
        out.push_sql("::text AS ws, ");
        out.push_bind_param::<Text, _>(&self.terms.wanted)?;
        out.push_sql("::text AS wanted, ");
        out.push_bind_param::<Text, _>(self.owner)?;
        out.push_sql("::text AS owner, ");
        out.push_bind_param::<SqlUuid, _>(&self.chat)?;
        out.push_sql("::uuid AS chat, ");
        out.push_bind_param::<BigInt, _>(&self.window)?;
        out.push_sql("::int8 AS win, ");
        out.push_bind_param::<BigInt, _>(&self.first)?;
        out.push_sql("::int8 AS first, ");
        out.push_bind_param::<BigInt, _>(&self.budget)?;
        out.push_sql("::int8 AS budget), ");
        out.push_sql(if CHAT { CHAT_SQL } else { OWNER_SQL });
        Ok(())
    }
}

impl<const CHAT: bool> diesel::query_builder::Query for Recent<'_, CHAT> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<const CHAT: bool, Conn> RunQueryDsl<Conn> for Recent<'_, CHAT> {}

/// The statement's text for one scope, with its values as `$1`..`$8`, each once: the
/// configuration name, the websearch text, the wanted words, the owner (all `text`), the
/// chat (`uuid`, nil for the owner's scope), the window, the first scan's and the whole
/// scan's budgets (`int8`). What [`Recent`] sends through diesel, for a client that
/// prepares it itself (`local_reads::search`).
pub(crate) fn statement_sql(chat: bool) -> String {
    let first = "WITH a AS MATERIALIZED (SELECT $1::regconfig AS cfg, $2::text AS ws, \
                 $3::text AS wanted, $4::text AS owner, $5::uuid AS chat, $6::int8 AS win, \
                 $7::int8 AS first, $8::int8 AS budget), ";
    format!("{first}{}", if chat { CHAT_SQL } else { OWNER_SQL })
}

/// A row of the scan: a match (with its relevance) or the end position.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct RecentRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub seq: i32,
    #[diesel(sql_type = Bool)]
    pub hit: bool,
    #[diesel(sql_type = Nullable<Integer>)]
    pub relevance: Option<i32>,
}

/// The scan's rows as its matches and end position.
pub(crate) fn scanned(rows: impl IntoIterator<Item = RecentRow>) -> Scanned {
    let mut out = Scanned::default();
    for r in rows {
        if r.hit {
            out.matches.push(Candidate {
                id: r.id,
                created_at: r.created_at,
                relevance: r.relevance.unwrap_or(0),
            });
        } else {
            out.end = Some(Position {
                created_at: r.created_at,
                id: r.id,
                seq: r.seq,
            });
        }
    }
    out
}

/// The `BEGIN` of a search: one read-only snapshot for all its statements, with
/// `enable_sort` off until it ends (the scan's plan must read in index order, see the
/// module's header). Sent as one message: one round trip, not two.
const BEGIN_SEARCH: &str = "BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
                            SET LOCAL enable_sort = off";

/// Runs `f` in a search's transaction ([`BEGIN_SEARCH`]): committed when it returns
/// `Ok`, rolled back otherwise (as diesel's own transactions are).
pub(crate) fn in_search_transaction<T>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, PgError>,
) -> Result<T, PgError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    AnsiTransactionManager::begin_transaction_sql(conn, BEGIN_SEARCH)?;
    match f(conn) {
        Ok(v) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            Ok(v)
        }
        Err(e) => match AnsiTransactionManager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Steps 1 and 2: the newest matches of the scope (at most `window`) and, when they
/// may be incomplete, the position to go on from (strictly older).
pub(crate) fn recent_matches(
    conn: &mut PgConnection,
    terms: &Terms,
    scope: &Scope,
    window: i64,
) -> Result<Scanned, PgError> {
    let rows: Vec<RecentRow> = match scope {
        Scope::Owner(owner) => Recent::<false> {
            terms,
            owner,
            chat: Uuid::nil(),
            window,
            first: FIRST_SCAN,
            budget: SCAN_BUDGET,
        }
        .load(conn)?,
        Scope::Chat(owner, chat) => Recent::<true> {
            terms,
            owner,
            chat: *chat,
            window,
            first: FIRST_SCAN,
            budget: SCAN_BUDGET,
        }
        .load(conn)?,
    };
    Ok(scanned(rows))
}

#[cfg(test)]
mod tests {
    use super::{CHAT_SQL, OWNER_SQL};

    /// The SQL diesel sends for `Recent<CHAT>`, without its binds.
    fn sent<const CHAT: bool>() -> String {
        let terms = super::Terms {
            config: "simple".into(),
            websearch: "w".into(),
            wanted: "w".into(),
            words_only: true,
        };
        let owner = "o".to_owned();
        let q = super::Recent::<CHAT> {
            terms: &terms,
            owner: &owner,
            chat: uuid::Uuid::nil(),
            window: 1,
            first: 1,
            budget: 1,
        };
        let text = diesel::debug_query::<diesel::pg::Pg, _>(&q).to_string();
        text.split(" -- binds:")
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn the_prepared_text_is_the_one_diesel_sends() {
        assert_eq!(sent::<true>(), super::statement_sql(true));
        assert_eq!(sent::<false>(), super::statement_sql(false));
    }

    #[test]
    fn the_scans_read_their_scope_in_index_order() {
        assert!(OWNER_SQL.contains("ORDER BY m.created_at DESC, m.id DESC LIMIT"));
        assert!(CHAT_SQL.contains("ORDER BY m.seq DESC LIMIT"));
        // Each value is read from `a`: the statement holds no placeholder of its own.
        assert!(!OWNER_SQL.contains('$') && !CHAT_SQL.contains('$'));
    }
}

#[cfg(all(test, feature = "testing"))]
mod transaction_tests {
    use super::in_search_transaction;
    use crate::errors::PgError;
    use crate::testing::TestDb;
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        value: String,
    }

    fn setting(conn: &mut PgConnection, sql: &str) -> Result<String, PgError> {
        Ok(diesel::sql_query(sql).get_result::<Setting>(conn)?.value)
    }

    const SORT: &str = "SELECT current_setting('enable_sort') AS value";

    #[test]
    fn a_search_reads_in_one_read_only_snapshot_without_sorts_and_leaves_nothing_behind() {
        let db = TestDb::new();
        let mut conn = db.connect();
        let (read_only, isolation, sort) = in_search_transaction(&mut conn, |c| {
            let read_only = "SELECT current_setting('transaction_read_only') AS value";
            let isolation = "SELECT current_setting('transaction_isolation') AS value";
            Ok((
                setting(c, read_only)?,
                setting(c, isolation)?,
                setting(c, SORT)?,
            ))
        })
        .unwrap();
        assert_eq!(
            (read_only.as_str(), isolation.as_str(), sort.as_str()),
            ("on", "repeatable read", "off")
        );
        assert_eq!(
            setting(&mut conn, SORT).unwrap(),
            "on",
            "only for the transaction"
        );
        let refused: Result<usize, PgError> = in_search_transaction(&mut conn, |c| {
            Ok(diesel::sql_query("CREATE TABLE not_here (x int)").execute(c)?)
        });
        assert!(refused.is_err(), "a read-only transaction refuses writes");
        assert_eq!(setting(&mut conn, SORT).unwrap(), "on", "rolled back");
        // The connection is out of any transaction, for diesel and for the server.
        conn.transaction(|c| diesel::sql_query("CREATE TABLE after_search (x int)").execute(c))
            .unwrap();
    }
}
