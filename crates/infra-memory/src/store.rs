//! The in-memory chat and message store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{ChatRepository, EventPublisher, MessageRepository, NewTurn, StoreError};
use domain::ports::{TurnDecision, TurnRead, TurnRun};
use domain::{
    Chat, ChatCursor, ChatId, ChatTitle, Event, IdempotencyKey, IdempotentSend, Message,
    MessageCursor, MessageId, MessageStatus, SearchQuery, UsageEntry, UserId,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
pub(crate) struct State {
    pub(crate) chats: HashMap<ChatId, Chat>,
    pub(crate) by_owner: HashMap<UserId, HashSet<ChatId>>,
    /// Each chat's messages in `seq` order (index = seq - 1).
    pub(crate) messages: HashMap<ChatId, Vec<Message>>,
    pub(crate) message_chat: HashMap<MessageId, ChatId>,
    /// Events of committed changes, in commit order, not yet published.
    pub(crate) pending: VecDeque<Event>,
    /// Idempotent sends by (user, key).
    pub(crate) idempotency: HashMap<(UserId, String), IdempotentSend>,
    /// Pending erasures (see `crate::data`).
    pub(crate) erasures: crate::data::Erasures,
    /// The usage ledger (see `crate::usage`).
    pub(crate) usage: crate::usage::Ledger,
}

impl State {
    pub(crate) fn busy(&self, chat_id: ChatId, stale_before: DateTime<Utc>) -> bool {
        self.messages.get(&chat_id).is_some_and(|ms| {
            ms.iter()
                .any(|m| m.status() == MessageStatus::Streaming && m.updated_at() >= stale_before)
        })
    }

    fn touch(&mut self, chat_id: ChatId, at: DateTime<Utc>) {
        if let Some(c) = self.chats.get_mut(&chat_id) {
            c.touch(at);
        }
    }

    fn message_mut(&mut self, id: MessageId) -> Option<&mut Message> {
        let chat_id = self.message_chat.get(&id)?;
        self.messages
            .get_mut(chat_id)?
            .iter_mut()
            .find(|m| m.id() == id)
    }
}

/// Chats and messages kept in memory; events go to an [`EventPublisher`] right after
/// each change, in commit order.
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    publisher: Arc<dyn EventPublisher>,
    publish_lock: Arc<futures::lock::Mutex<()>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store publishing its events to `publisher`.
    pub fn new(publisher: Arc<dyn EventPublisher>) -> Self {
        Self {
            state: Arc::default(),
            publisher,
            publish_lock: Arc::new(futures::lock::Mutex::new(())),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a change under the lock, queues its events, then publishes them.
    pub(crate) async fn commit<T>(
        &self,
        events: &[Event],
        change: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let out = {
            let mut st = self.lock();
            let out = change(&mut st)?;
            st.pending.extend(events.iter().cloned());
            out
        };
        self.flush().await;
        Ok(out)
    }

    /// Publishes queued events in commit order. Memory storage keeps nothing across
    /// restarts, so a publisher failure is logged, not retried.
    pub(crate) async fn flush(&self) {
        let _order = self.publish_lock.lock().await;
        let batch: Vec<Event> = self.lock().pending.drain(..).collect();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.publisher.publish(&batch).await.into_result() {
            tracing::warn!(error = ?e, count = batch.len(), "events could not be published");
        }
    }

    fn page(mut chats: Vec<Chat>, after: Option<ChatCursor>, limit: u32) -> Vec<Chat> {
        chats.sort_by_key(|c| std::cmp::Reverse((c.updated_at(), c.id())));
        chats
            .into_iter()
            .filter(|c| after.is_none_or(|k| (c.updated_at(), c.id()) < (k.updated_at, k.id)))
            .take(limit as usize)
            .collect()
    }

    fn owned(&self, owner: &UserId, keep: impl Fn(&Chat) -> bool) -> Vec<Chat> {
        let st = self.lock();
        st.by_owner
            .get(owner)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| st.chats.get(id))
                    .filter(|c| keep(c))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[async_trait]
impl ChatRepository for MemoryStore {
    async fn insert_chat(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        self.commit(std::slice::from_ref(event), |st| {
            st.by_owner
                .entry(chat.owner().clone())
                .or_default()
                .insert(chat.id());
            st.messages.insert(chat.id(), Vec::new());
            st.chats.insert(chat.id(), chat.clone());
            Ok(())
        })
        .await
    }

    async fn find_chat(&self, id: ChatId) -> Result<Option<Chat>, StoreError> {
        Ok(self.lock().chats.get(&id).cloned())
    }

    async fn update_chat(
        &self,
        chat: &Chat,
        expected: &Chat,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.commit(std::slice::from_ref(event), |st| {
            let c = st.chats.get_mut(&chat.id()).ok_or(StoreError::NotFound)?;
            if c.title() != expected.title() || c.settings() != expected.settings() {
                return Err(StoreError::Conflict);
            }
            c.take_update(chat);
            Ok(())
        })
        .await
    }

    async fn retitle_chat(
        &self,
        chat: &Chat,
        expected: &ChatTitle,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let changed = {
            let mut st = self.lock();
            let changed = match st.chats.get_mut(&chat.id()) {
                Some(c) if c.title() == expected => {
                    c.take_title(chat);
                    true
                }
                _ => false,
            };
            if changed {
                st.pending.push_back(event.clone());
            }
            changed
        };
        self.flush().await;
        Ok(changed)
    }

    async fn delete_chat(&self, id: ChatId, event: &Event) -> Result<(), StoreError> {
        self.commit(std::slice::from_ref(event), |st| {
            let chat = st.chats.remove(&id).ok_or(StoreError::NotFound)?;
            if let Some(set) = st.by_owner.get_mut(chat.owner()) {
                set.remove(&id);
            }
            for m in st.messages.remove(&id).unwrap_or_default() {
                st.message_chat.remove(&m.id());
            }
            st.idempotency.retain(|_, r| r.chat_id != id);
            Ok(())
        })
        .await
    }

    async fn list_chats(
        &self,
        owner: &UserId,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        Ok(Self::page(self.owned(owner, |_| true), after, limit))
    }

    async fn search_chats(
        &self,
        owner: &UserId,
        query: &SearchQuery,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        Ok(Self::page(
            self.owned(owner, |c| query.matches(c.title().as_str())),
            after,
            limit,
        ))
    }
}

#[async_trait]
impl MessageRepository for MemoryStore {
    async fn find_message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        let st = self.lock();
        let Some(chat_id) = st.message_chat.get(&id) else {
            return Ok(None);
        };
        Ok(st.messages.get(chat_id).and_then(|ms| {
            ms.iter()
                .find(|m| m.id() == id)
                .map(|m| crate::tree::with_branch(ms, m))
        }))
    }

    async fn find_owned_message(
        &self,
        owner: &UserId,
        id: MessageId,
    ) -> Result<Option<(Chat, Message)>, StoreError> {
        let st = self.lock();
        let Some(chat) = st
            .message_chat
            .get(&id)
            .and_then(|c| st.chats.get(c))
            .filter(|c| c.owner() == owner)
        else {
            return Ok(None);
        };
        let message = st
            .messages
            .get(&chat.id())
            .and_then(|ms| ms.iter().find(|m| m.id() == id));
        Ok(message.map(|m| (chat.clone(), m.clone())))
    }

    async fn list_messages(
        &self,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let st = self.lock();
        let from = after.map_or(0, |c| c.seq as usize);
        Ok(st
            .messages
            .get(&chat_id)
            .map(|ms| ms.iter().skip(from).take(limit as usize).cloned().collect())
            .unwrap_or_default())
    }

    async fn recent_messages(
        &self,
        chat_id: ChatId,
        before_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let st = self.lock();
        Ok(st
            .messages
            .get(&chat_id)
            .map(|ms| {
                ms.iter()
                    .rev()
                    .filter(|m| m.seq() < before_seq)
                    .take(limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn find_idempotent(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<IdempotentSend>, StoreError> {
        let mut st = self.lock();
        st.idempotency.retain(|_, r| r.created_at >= since);
        Ok(st
            .idempotency
            .get(&(user.clone(), key.as_str().to_owned()))
            .cloned())
    }

    async fn streaming_messages(&self, chat_id: ChatId) -> Result<Vec<Message>, StoreError> {
        let st = self.lock();
        Ok(st
            .messages
            .get(&chat_id)
            .map(|ms| {
                ms.iter()
                    .filter(|m| m.status() == MessageStatus::Streaming)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn start_turn(&self, turn: &NewTurn) -> Result<(), StoreError> {
        self.start_turn_in_memory(turn).await
    }

    async fn run_turn(&self, read: &TurnRead, decide: TurnDecision) -> Result<TurnRun, StoreError> {
        self.run_turn_in_memory(read, decide).await
    }

    async fn finish_reply<'u>(
        &self,
        reply: &Message,
        event: &Event,
        usage: Option<&'u UsageEntry>,
    ) -> Result<bool, StoreError> {
        let done = {
            let mut st = self.lock();
            match st.message_mut(reply.id()) {
                Some(m) if m.status() == MessageStatus::Streaming => {
                    m.take_outcome(reply);
                    st.touch(reply.chat_id(), reply.updated_at());
                    if let Some(u) = usage {
                        st.usage.add(u);
                    }
                    st.pending.push_back(event.clone());
                    true
                }
                _ => false,
            }
        };
        self.flush().await;
        Ok(done)
    }

    async fn update_message(&self, message: &Message, event: &Event) -> Result<(), StoreError> {
        self.commit(std::slice::from_ref(event), |st| {
            let m = st.message_mut(message.id()).ok_or(StoreError::NotFound)?;
            m.take_edit(message);
            st.touch(message.chat_id(), message.updated_at());
            Ok(())
        })
        .await
    }

    async fn delete_message(
        &self,
        message: &Message,
        stale_before: DateTime<Utc>,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.commit(std::slice::from_ref(event), |st| {
            let chat_id = *st
                .message_chat
                .get(&message.id())
                .ok_or(StoreError::NotFound)?;
            if st.busy(chat_id, stale_before) {
                return Err(StoreError::ChatBusy);
            }
            let ms = st.messages.entry(chat_id).or_default();
            let Some(parent) = ms
                .iter()
                .find(|m| m.id() == message.id())
                .map(|m| m.parent_id())
            else {
                return Err(StoreError::NotFound);
            };
            let gone = crate::tree::subtree(ms, message.id());
            ms.retain(|m| !gone.contains(&m.id()));
            for (i, m) in ms.iter_mut().enumerate() {
                m.renumber(i);
            }
            let fallback =
                crate::tree::newest_leaf(ms, parent).or_else(|| crate::tree::newest_leaf(ms, None));
            for id in &gone {
                st.message_chat.remove(id);
            }
            if let Some(c) = st.chats.get_mut(&chat_id) {
                c.record_delete(ms, |l| gone.contains(&l), fallback, event.time);
            }
            Ok(())
        })
        .await
    }

    async fn list_branch(
        &self,
        chat_id: ChatId,
        through: MessageId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let st = self.lock();
        Ok(st
            .messages
            .get(&chat_id)
            .map_or_else(Vec::new, |ms| crate::tree::page(ms, through, after, limit)))
    }

    async fn list_owned_active_branch(
        &self,
        owner: &UserId,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        let st = self.lock();
        let Some(chat) = st.chats.get(&chat_id).filter(|c| c.owner() == owner) else {
            return Ok(None);
        };
        let page = match (chat.active_leaf_id(), st.messages.get(&chat_id)) {
            (Some(leaf), Some(ms)) => crate::tree::page(ms, leaf, after, limit),
            _ => Vec::new(),
        };
        Ok(Some(page))
    }

    async fn branch_history(
        &self,
        chat_id: ChatId,
        leaf: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let st = self.lock();
        let Some(ms) = st.messages.get(&chat_id) else {
            return Ok(Vec::new());
        };
        Ok(crate::tree::path_to(ms, leaf)
            .into_iter()
            .rev()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn newest_leaf(
        &self,
        chat_id: ChatId,
        below: Option<MessageId>,
    ) -> Result<Option<MessageId>, StoreError> {
        let st = self.lock();
        Ok(st
            .messages
            .get(&chat_id)
            .and_then(|ms| crate::tree::newest_leaf(ms, below)))
    }

    async fn children(
        &self,
        chat_id: ChatId,
        parent: Option<MessageId>,
    ) -> Result<Vec<MessageId>, StoreError> {
        let st = self.lock();
        Ok(st
            .messages
            .get(&chat_id)
            .map(|ms| crate::tree::children(ms, parent))
            .unwrap_or_default())
    }

    async fn select_branch(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        self.commit(std::slice::from_ref(event), |st| {
            let leaf = chat.active_leaf_id().ok_or(StoreError::NotFound)?;
            if st.message_chat.get(&leaf) != Some(&chat.id()) {
                return Err(StoreError::NotFound);
            }
            let c = st.chats.get_mut(&chat.id()).ok_or(StoreError::NotFound)?;
            c.select_leaf(leaf);
            Ok(())
        })
        .await
    }

    async fn insert_chat_with_messages(
        &self,
        chat: &Chat,
        messages: &[Message],
        events: &[Event],
    ) -> Result<(), StoreError> {
        self.commit(events, |st| {
            st.by_owner
                .entry(chat.owner().clone())
                .or_default()
                .insert(chat.id());
            for m in messages {
                st.message_chat.insert(m.id(), chat.id());
            }
            st.messages.insert(chat.id(), messages.to_vec());
            st.chats.insert(chat.id(), chat.clone());
            Ok(())
        })
        .await
    }
}
