//! The data ports of `PgStore`: message search, export, erasure and retention.

use super::as_i64;
use crate::errors::PgError;
use crate::repo;
use crate::repo::search::{older_matches, Candidate, Scope, Terms};
use crate::repo::search_recent::{in_search_transaction, recent_matches};
use crate::repo::search_words::word_matches;
use crate::rows::{chats_into_domain, messages_into_domain, ChatRow, MessageRow, NewOutboxRow};
use crate::store::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::Connection;
use domain::model::{
    Chat, ChatId, ChatTitle, Event, Message, MessageSearchCursor, SearchRow, UserId,
};
use domain::ports::{
    DeletedEvent, ErasedBatch, ErasureRepository, ExportRepository, MessageSearch,
    MessageSearchRepository, RetentionRepository, StoreError,
};
use std::collections::HashMap;

/// Whether a candidate comes strictly after the cursor in rank order.
fn after_cursor(c: &Candidate, cursor: Option<MessageSearchCursor>) -> bool {
    cursor.is_none_or(|k| {
        let rel = i64::from(c.relevance);
        (rel, c.created_at, c.id) < (i64::from(k.relevance), k.created_at, k.id.as_uuid())
    })
}

/// How many more matches the window holds room for.
pub(crate) fn missing(found: &[Candidate], window: i64) -> i64 {
    window - i64::try_from(found.len()).unwrap_or(window)
}

/// The page's candidates: in rank order, strictly after the cursor, at most `limit`.
pub(crate) fn rank(
    mut candidates: Vec<Candidate>,
    cursor: Option<MessageSearchCursor>,
    limit: usize,
) -> Vec<Candidate> {
    candidates.sort_by_key(|c| std::cmp::Reverse((c.relevance, c.created_at, c.id)));
    candidates.retain(|c| after_cursor(c, cursor));
    candidates.truncate(limit);
    candidates
}

/// The page's hits: the ranked candidates with their rows (message and chat title);
/// a candidate deleted meanwhile (no row) is simply left out.
pub(crate) fn assemble(
    ranked: Vec<Candidate>,
    rows: Vec<(MessageRow, String)>,
) -> Result<Vec<SearchRow>, PgError> {
    let mut by_id: HashMap<uuid::Uuid, (MessageRow, String)> = rows
        .into_iter()
        .map(|(m, title)| (m.id, (m, title)))
        .collect();
    let mut out = Vec::with_capacity(ranked.len());
    for c in ranked {
        let Some((row, title)) = by_id.remove(&c.id) else {
            continue;
        };
        let message = row.into_domain()?;
        out.push(SearchRow {
            chat_title: ChatTitle::parse(&title)
                .map_err(|e| PgError::Data(format!("chat title: {e}")))?,
            relevance: u32::try_from(c.relevance).unwrap_or(0),
            message,
        });
    }
    Ok(out)
}

/// The page: the candidates in rank order after the cursor, then their rows.
fn page(
    conn: &mut diesel::PgConnection,
    candidates: Vec<Candidate>,
    cursor: Option<MessageSearchCursor>,
    limit: usize,
) -> Result<Vec<SearchRow>, PgError> {
    let ranked = rank(candidates, cursor, limit);
    let ids: Vec<uuid::Uuid> = ranked.iter().map(|c| c.id).collect();
    assemble(ranked, repo::data::messages_with_titles(conn, &ids)?)
}

#[async_trait]
impl MessageSearchRepository for PgStore {
    #[tracing::instrument(skip_all)]
    async fn search_messages(&self, search: &MessageSearch) -> Result<Vec<SearchRow>, StoreError> {
        let terms = Terms {
            config: self.config().text_search_config.clone(),
            websearch: search.query.websearch(),
            wanted: search.query.wanted_words().join(" "),
            words_only: search.query.words_only(),
        };
        let owner = search.owner.as_str().to_owned();
        let scope = match search.chat_id {
            Some(c) => Scope::Chat(owner, c.as_uuid()),
            None => Scope::Owner(owner),
        };
        let window = as_i64(search.window);
        let (after, limit) = (search.after, search.limit as usize);
        if let Some(local) = self.local_reads() {
            return local
                .searches
                .search(&terms, &scope, window, after, limit)
                .await;
        }
        self.run_read(move |c| {
            in_search_transaction(c, |c| {
                if let Some(owner) = terms.word_index_owner(&scope) {
                    let words = word_matches(c, &terms.config, &terms.websearch, owner, window)?;
                    if let Some(found) = words {
                        return page(c, found, after, limit);
                    }
                }
                let recent = recent_matches(c, &terms, &scope, window)?;
                let mut found = recent.matches;
                if let Some(from) = recent.end {
                    let more = older_matches(c, &terms, &scope, from, missing(&found, window))?;
                    found.extend(more);
                }
                page(c, found, after, limit)
            })
        })
        .await
    }
}

#[async_trait]
impl ExportRepository for PgStore {
    #[tracing::instrument(skip_all)]
    async fn export_chats(
        &self,
        owner: &UserId,
        after: Option<ChatId>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        let owner = owner.as_str().to_owned();
        let after = after.map(|a| a.as_uuid());
        self.run_read(move |c| {
            chats_into_domain(repo::data::chats_by_id(c, &owner, after, as_i64(limit))?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(chat_id = %chat_id))]
    async fn export_messages(
        &self,
        chat_id: ChatId,
        after_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let chat_id = chat_id.as_uuid();
        let after = i32::try_from(after_seq).unwrap_or(i32::MAX);
        self.run_read(move |c| {
            messages_into_domain(repo::data::messages_by_seq(
                c,
                chat_id,
                after,
                as_i64(limit),
            )?)
        })
        .await
    }
}

#[async_trait]
impl ErasureRepository for PgStore {
    #[tracing::instrument(skip_all)]
    async fn request_erasure(&self, user: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| repo::data::request_erasure(c, &user, at))
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn erase_chats(
        &self,
        user: &UserId,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<ErasedBatch, StoreError> {
        let user = user.as_str().to_owned();
        let (chats, messages, more) = self
            .run(move |c| c.transaction(|c| repo::data::erase_chats(c, &user, as_i64(limit), at)))
            .await?;
        Ok(ErasedBatch {
            chats,
            messages,
            more,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn finish_erasure(&self, user: &UserId, event: &Event) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        let events = NewOutboxRow::all(std::slice::from_ref(event))?;
        self.run(move |c| {
            c.transaction(|c| {
                if !repo::data::finish_erasure(c, &user)? {
                    return Ok(false);
                }
                repo::outbox::append(c, &events)?;
                Ok(true)
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn stalled_erasures(
        &self,
        idle_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        self.run(move |c| {
            repo::data::stalled_erasures(c, idle_before, as_i64(limit))?
                .into_iter()
                .map(|u| {
                    UserId::parse(&u).map_err(|e| PgError::Data(format!("erasure of {u}: {e}")))
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl RetentionRepository for PgStore {
    #[tracing::instrument(skip_all)]
    async fn delete_idle_chats(
        &self,
        idle_before: DateTime<Utc>,
        limit: u32,
        at: DateTime<Utc>,
        event: DeletedEvent,
    ) -> Result<Option<Vec<Chat>>, StoreError> {
        self.run(move |c| {
            c.transaction(|c| {
                if !repo::data::try_retention_lock(c)? {
                    return Ok(None);
                }
                let rows = repo::data::delete_idle_chats(c, idle_before, as_i64(limit))?;
                let chats: Vec<Chat> = rows
                    .into_iter()
                    .map(ChatRow::into_domain)
                    .collect::<Result<_, _>>()?;
                let events: Vec<Event> = chats.iter().map(|chat| event(chat, at)).collect();
                repo::outbox::append(c, &NewOutboxRow::all(&events)?)?;
                Ok(Some(chats))
            })
        })
        .await
    }
}
