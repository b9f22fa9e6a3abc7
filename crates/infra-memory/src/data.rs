//! The data ports (message search, export, erasure, retention) of the in-memory store,
//! with the reference semantics of the domain's search model.

use crate::store::{MemoryStore, State};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::model::text::WordIndex;
use domain::ports::{
    DeletedEvent, ErasedBatch, ErasureRepository, ExportRepository, MessageSearch,
    MessageSearchRepository, RetentionRepository, StoreError,
};
use domain::{Chat, ChatId, Event, Message, SearchRow, UserId};
use std::collections::HashMap;

/// Pending erasure requests: user → when last renewed.
pub(crate) type Erasures = HashMap<UserId, DateTime<Utc>>;

impl State {
    /// Removes a chat with its messages and idempotency records; returns it and how
    /// many messages it held.
    fn remove_chat(&mut self, id: ChatId) -> Option<(Chat, u64)> {
        let chat = self.chats.remove(&id)?;
        if let Some(set) = self.by_owner.get_mut(chat.owner()) {
            set.remove(&id);
        }
        let messages = self.messages.remove(&id).unwrap_or_default();
        for m in &messages {
            self.message_chat.remove(&m.id());
        }
        self.idempotency.retain(|_, r| r.chat_id != id);
        Some((chat, messages.len() as u64))
    }

    /// The owner's chat ids, oldest id first.
    fn chat_ids(&self, owner: &UserId) -> Vec<ChatId> {
        let mut ids: Vec<ChatId> = self
            .by_owner
            .get(owner)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

/// The candidates of a search: the newest `window` matches (by `seq` within one chat).
fn candidates(st: &State, search: &MessageSearch) -> Vec<(Message, u32)> {
    let chat_ids = match search.chat_id {
        Some(id) => vec![id],
        None => st.chat_ids(&search.owner),
    };
    let mut matches: Vec<(Message, u32)> = chat_ids
        .iter()
        .filter(|id| st.chats.get(id).is_some_and(|c| *c.owner() == search.owner))
        .flat_map(|id| st.messages.get(id).into_iter().flatten())
        .filter_map(|m| {
            let index = WordIndex::new(m.content());
            search
                .query
                .matches(&index)
                .then(|| (m.clone(), search.query.relevance(&index)))
        })
        .collect();
    if search.chat_id.is_some() {
        matches.sort_by_key(|(m, _)| std::cmp::Reverse(m.seq()));
    } else {
        matches.sort_by_key(|(m, _)| std::cmp::Reverse((m.created_at(), m.id())));
    }
    matches.truncate(search.window as usize);
    matches
}

#[async_trait]
impl MessageSearchRepository for MemoryStore {
    async fn search_messages(&self, search: &MessageSearch) -> Result<Vec<SearchRow>, StoreError> {
        let st = self.lock();
        let mut ranked = candidates(&st, search);
        ranked.sort_by_key(|(m, r)| std::cmp::Reverse((*r, m.created_at(), m.id())));
        Ok(ranked
            .into_iter()
            .filter(|(m, r)| {
                search.after.is_none_or(|c| {
                    (*r, m.created_at(), m.id()) < (c.relevance, c.created_at, c.id)
                })
            })
            .take(search.limit as usize)
            .filter_map(|(m, relevance)| {
                let chat_title = st.chats.get(&m.chat_id())?.title().clone();
                Some(SearchRow {
                    message: m,
                    chat_title,
                    relevance,
                })
            })
            .collect())
    }
}

#[async_trait]
impl ExportRepository for MemoryStore {
    async fn export_chats(
        &self,
        owner: &UserId,
        after: Option<ChatId>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        let st = self.lock();
        Ok(st
            .chat_ids(owner)
            .into_iter()
            .filter(|id| after.is_none_or(|a| *id > a))
            .filter_map(|id| st.chats.get(&id).cloned())
            .take(limit as usize)
            .collect())
    }

    async fn export_messages(
        &self,
        chat_id: ChatId,
        after_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let st = self.lock();
        let mut ms: Vec<Message> = st
            .messages
            .get(&chat_id)
            .map(|ms| ms.iter().filter(|m| m.seq() > after_seq).cloned().collect())
            .unwrap_or_default();
        ms.sort_by_key(|m| m.seq());
        ms.truncate(limit as usize);
        Ok(ms)
    }
}

#[async_trait]
impl ErasureRepository for MemoryStore {
    async fn request_erasure(&self, user: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.lock().erasures.insert(user.clone(), at);
        Ok(())
    }

    async fn erase_chats(
        &self,
        user: &UserId,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<ErasedBatch, StoreError> {
        let mut st = self.lock();
        let ids = st.chat_ids(user);
        let mut batch = ErasedBatch::default();
        for id in ids.iter().take(limit as usize) {
            if let Some((_, n)) = st.remove_chat(*id) {
                batch.chats += 1;
                batch.messages += n;
            }
        }
        batch.more = ids.len() > limit as usize;
        if let Some(t) = st.erasures.get_mut(user) {
            *t = at;
        }
        Ok(batch)
    }

    async fn finish_erasure(&self, user: &UserId, event: &Event) -> Result<bool, StoreError> {
        self.commit(std::slice::from_ref(event), |st| {
            if st.erasures.remove(user).is_none() {
                return Err(StoreError::NotFound);
            }
            for id in st.chat_ids(user) {
                st.remove_chat(id);
            }
            // Every other collection holding rows of a user: one line each.
            st.idempotency.retain(|(u, _), _| u != user);
            st.usage.remove_user(user);
            st.by_owner.remove(user);
            st.pending.retain(|e| &e.user_id != user);
            Ok(())
        })
        .await
        .map(|()| true)
        .or_else(|e| match e {
            StoreError::NotFound => Ok(false),
            other => Err(other),
        })
    }

    async fn stalled_erasures(
        &self,
        idle_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        let st = self.lock();
        let mut users: Vec<(DateTime<Utc>, UserId)> = st
            .erasures
            .iter()
            .filter(|(_, at)| **at < idle_before)
            .map(|(u, at)| (*at, u.clone()))
            .collect();
        users.sort();
        Ok(users
            .into_iter()
            .take(limit as usize)
            .map(|(_, u)| u)
            .collect())
    }
}

#[async_trait]
impl RetentionRepository for MemoryStore {
    async fn delete_idle_chats(
        &self,
        idle_before: DateTime<Utc>,
        limit: u32,
        at: DateTime<Utc>,
        event: DeletedEvent,
    ) -> Result<Option<Vec<Chat>>, StoreError> {
        let deleted = self
            .commit(&[], |st| {
                let mut idle: Vec<(DateTime<Utc>, ChatId)> = st
                    .chats
                    .values()
                    .filter(|c| c.updated_at() < idle_before)
                    .map(|c| (c.updated_at(), c.id()))
                    .collect();
                idle.sort();
                let mut deleted = Vec::new();
                for (_, id) in idle.into_iter().take(limit as usize) {
                    if let Some((c, _)) = st.remove_chat(id) {
                        st.pending.push_back(event(&c, at));
                        deleted.push(c);
                    }
                }
                Ok(deleted)
            })
            .await?;
        Ok(Some(deleted))
    }
}
