//! Message search on the request's thread: the statements of `repo::search_words`
//! (a user's search for words), `repo::search_recent` and `repo::search` (the rest),
//! without a transaction.
//!
//! The pool's search runs its statements in one read-only repeatable-read transaction
//! with `enable_sort = off` set for it. A connection here is shared by the thread's
//! requests (pipelined), so it can hold no transaction: its session has the settings
//! instead (`enable_sort = off`, `default_transaction_read_only = on`, as start-up
//! options of this kind's connections only), and each statement reads its own
//! snapshot. That changes nothing a caller can see: step 3 only reads messages strictly
//! older than where the scan ended (a message written meanwhile is newer), and a match
//! deleted before the page's read is left out of the page, as on the pool.

use super::{bad_row, map_error, message_row, LocalConn, LocalReads, Prepared};
use crate::adapters::data::{assemble, missing, rank};
use crate::repo::search::{older_sql, Candidate, Scope, Terms};
use crate::repo::search_recent::{scanned, statement_sql, RecentRow, FIRST_SCAN, SCAN_BUDGET};
use crate::repo::search_words::{word_matches_of, WordRow, WORDS_SQL};
use crate::rows::MessageRow;
use domain::model::{MessageSearchCursor, SearchRow};
use domain::ports::StoreError;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

/// The page's rows with their chats' titles (`repo::data::messages_with_titles`).
const PAGE_SQL: &str = "SELECT m.id, m.chat_id, m.seq, m.parent_id, m.role, m.content, \
     m.status, m.model, m.prompt_tokens, m.completion_tokens, m.error, m.created_at, \
     m.updated_at, c.title FROM messages m JOIN chats c ON c.id = m.chat_id \
     WHERE m.id = ANY($1)";

/// The types of the scan's values (`repo::search_recent::statement_sql`).
const RECENT_TYPES: [Type; 8] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::UUID,
    Type::INT8,
    Type::INT8,
    Type::INT8,
];

/// Message search's statements: the word index's, the scan for each scope and the
/// page's read (step 3 is sent unnamed, planned with its values, as on the pool).
pub(crate) struct Searches {
    words: Statement,
    recent_owner: Statement,
    recent_chat: Statement,
    page: Statement,
}

impl Prepared for Searches {
    const OPTIONS: &'static str = " -c enable_sort=off -c default_transaction_read_only=on";

    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            words: client
                .prepare_typed(WORDS_SQL, &[Type::TEXT, Type::TEXT, Type::TEXT, Type::INT8])
                .await?,
            recent_owner: client
                .prepare_typed(&statement_sql(false), &RECENT_TYPES)
                .await?,
            recent_chat: client
                .prepare_typed(&statement_sql(true), &RECENT_TYPES)
                .await?,
            page: client.prepare_typed(PAGE_SQL, &[Type::UUID_ARRAY]).await?,
        })
    }
}

impl LocalReads<Searches> {
    /// A page of the search's hits (the steps of `repo::search`), ranked over the newest
    /// `window` matches, strictly after `after`, at most `limit`.
    pub(crate) async fn search(
        &self,
        terms: &Terms,
        scope: &Scope,
        window: i64,
        after: Option<MessageSearchCursor>,
        limit: usize,
    ) -> Result<Vec<SearchRow>, StoreError> {
        let c = self.conn().await?;
        let found = matches(&c, terms, scope, window).await?;
        let ranked = rank(found, after, limit);
        let ids: Vec<Uuid> = ranked.iter().map(|c| c.id).collect();
        let rows = c
            .client
            .query(&c.statements.page, &[&ids])
            .await
            .map_err(map_error)?
            .iter()
            .map(titled)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad_row)?;
        assemble(ranked, rows).map_err(StoreError::from)
    }
}

/// The newest `window` matches of the scope: from the word index when it can answer,
/// else steps 1 to 3.
async fn matches(
    c: &LocalConn<Searches>,
    terms: &Terms,
    scope: &Scope,
    window: i64,
) -> Result<Vec<Candidate>, StoreError> {
    let s = &c.statements;
    if let Some(owner) = terms.word_index_owner(scope) {
        let values: [&(dyn ToSql + Sync); 4] = [&terms.config, &terms.websearch, &owner, &window];
        let rows = c.client.query(&s.words, &values).await.map_err(map_error)?;
        let rows = rows
            .iter()
            .map(word_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad_row)?;
        if let Some(found) = word_matches_of(rows)? {
            return Ok(found);
        }
    }
    let (owner, chat, recent) = match scope {
        Scope::Owner(owner) => (owner, Uuid::nil(), &s.recent_owner),
        Scope::Chat(owner, chat) => (owner, *chat, &s.recent_chat),
    };
    let values: [&(dyn ToSql + Sync); 8] = [
        &terms.config,
        &terms.websearch,
        &terms.wanted,
        owner,
        &chat,
        &window,
        &FIRST_SCAN,
        &SCAN_BUDGET,
    ];
    let rows = c.client.query(recent, &values).await.map_err(map_error)?;
    let rows = rows
        .iter()
        .map(recent_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad_row)?;
    let recent = scanned(rows);
    let mut found = recent.matches;
    if let Some(from) = recent.end {
        let n = missing(&found, window);
        let values: [(&(dyn ToSql + Sync), Type); 9] = [
            (&terms.config, Type::TEXT),
            (&terms.websearch, Type::TEXT),
            (&terms.wanted, Type::TEXT),
            (owner, Type::TEXT),
            (&chat, Type::UUID),
            (&from.created_at, Type::TIMESTAMPTZ),
            (&from.id, Type::UUID),
            (&from.seq, Type::INT4),
            (&n, Type::INT8),
        ];
        let rows = c
            .client
            .query_typed(&older_sql(scope), &values)
            .await
            .map_err(map_error)?;
        for r in &rows {
            found.push(older_row(r).map_err(bad_row)?);
        }
    }
    Ok(found)
}

fn word_row(r: &Row) -> Result<WordRow, tokio_postgres::Error> {
    Ok(WordRow {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        relevance: r.try_get("relevance")?,
        hit: r.try_get("hit")?,
    })
}

fn recent_row(r: &Row) -> Result<RecentRow, tokio_postgres::Error> {
    Ok(RecentRow {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        seq: r.try_get("seq")?,
        hit: r.try_get("hit")?,
        relevance: r.try_get("relevance")?,
    })
}

fn older_row(r: &Row) -> Result<Candidate, tokio_postgres::Error> {
    Ok(Candidate {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        relevance: r.try_get("relevance")?,
    })
}

fn titled(r: &Row) -> Result<(MessageRow, String), tokio_postgres::Error> {
    Ok((message_row(r)?, r.try_get("title")?))
}
