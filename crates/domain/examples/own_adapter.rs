//! Another Rust service reusing the chat domain with adapters of its own: a tiny
//! storage over a `Mutex`, and a "model" that answers in upper case.
//!
//! Run with `cargo run -p domain --example own_adapter`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::*;
use domain::services::{
    Actor, ChatService, CreateChat, MessageService, MessageServiceConfig, SendMessage,
};
use domain::*;
use futures::executor::block_on;
use std::sync::{Arc, Mutex};

/// Storage: every chat and message in two vectors. Events are printed.
#[derive(Default)]
struct VecStore {
    chats: Mutex<Vec<Chat>>,
    messages: Mutex<Vec<Message>>,
    idempotent: Mutex<Vec<IdempotentSend>>,
}

fn emit(events: &[&Event]) {
    for e in events {
        println!("event: {} (chat {})", e.kind.type_name(), e.chat_id);
    }
}

#[async_trait]
impl ChatRepository for VecStore {
    async fn insert_chat(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        self.chats
            .lock()
            .map_err(|_| StoreError::Conflict)?
            .push(chat.clone());
        emit(&[event]);
        Ok(())
    }
    async fn find_chat(&self, id: ChatId) -> Result<Option<Chat>, StoreError> {
        Ok(self
            .chats
            .lock()
            .map_err(|_| StoreError::Conflict)?
            .iter()
            .find(|c| c.id() == id)
            .cloned())
    }
    async fn update_chat(
        &self,
        chat: &Chat,
        expected: &Chat,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut chats = self.chats.lock().map_err(|_| StoreError::Conflict)?;
        let c = chats
            .iter_mut()
            .find(|c| c.id() == chat.id())
            .ok_or(StoreError::NotFound)?;
        if c.title() != expected.title() || c.settings() != expected.settings() {
            return Err(StoreError::Conflict);
        }
        c.take_update(chat);
        emit(&[event]);
        Ok(())
    }
    async fn retitle_chat(
        &self,
        chat: &Chat,
        expected: &ChatTitle,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut chats = self.chats.lock().map_err(|_| StoreError::Conflict)?;
        match chats.iter_mut().find(|c| c.id() == chat.id()) {
            Some(c) if c.title() == expected => {
                c.take_title(chat);
                emit(&[event]);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn delete_chat(&self, id: ChatId, event: &Event) -> Result<(), StoreError> {
        self.chats
            .lock()
            .map_err(|_| StoreError::Conflict)?
            .retain(|c| c.id() != id);
        self.messages
            .lock()
            .map_err(|_| StoreError::Conflict)?
            .retain(|m| m.chat_id() != id);
        emit(&[event]);
        Ok(())
    }
    async fn list_chats(
        &self,
        owner: &UserId,
        _after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        let chats = self.chats.lock().map_err(|_| StoreError::Conflict)?;
        Ok(chats
            .iter()
            .rev()
            .filter(|c| c.owner() == owner)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn search_chats(
        &self,
        owner: &UserId,
        query: &SearchQuery,
        after: Option<ChatCursor>,
        limit: u32,
    ) -> Result<Vec<Chat>, StoreError> {
        let all = self.list_chats(owner, after, u32::MAX).await?;
        Ok(all
            .into_iter()
            .filter(|c| query.matches(c.title().as_str()))
            .take(limit as usize)
            .collect())
    }
}

#[async_trait]
impl MessageRepository for VecStore {
    async fn find_message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        Ok(self
            .messages
            .lock()
            .map_err(|_| StoreError::Conflict)?
            .iter()
            .find(|m| m.id() == id)
            .cloned())
    }
    async fn find_owned_message(
        &self,
        owner: &UserId,
        id: MessageId,
    ) -> Result<Option<(Chat, Message)>, StoreError> {
        let Some(m) = self.find_message(id).await? else {
            return Ok(None);
        };
        Ok(self
            .find_chat(m.chat_id())
            .await?
            .filter(|c| c.owner() == owner)
            .map(|c| (c, m)))
    }
    async fn list_owned_active_branch(
        &self,
        owner: &UserId,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        // Two reads here; a database adapter makes it one.
        let Some(chat) = self
            .find_chat(chat_id)
            .await?
            .filter(|c| c.owner() == owner)
        else {
            return Ok(None);
        };
        let page = match chat.active_leaf_id() {
            Some(leaf) => self.list_branch(chat_id, leaf, after, limit).await?,
            None => Vec::new(),
        };
        Ok(Some(page))
    }
    async fn list_messages(
        &self,
        chat_id: ChatId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let from = after.map_or(0, |c| c.seq);
        let ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        Ok(ms
            .iter()
            .filter(|m| m.chat_id() == chat_id && m.seq() > from)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn recent_messages(
        &self,
        chat_id: ChatId,
        before_seq: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        Ok(ms
            .iter()
            .rev()
            .filter(|m| m.chat_id() == chat_id && m.seq() < before_seq)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn find_idempotent(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<IdempotentSend>, StoreError> {
        let recs = self.idempotent.lock().map_err(|_| StoreError::Conflict)?;
        Ok(recs
            .iter()
            .find(|r| &r.user == user && &r.key == key && r.created_at >= since)
            .cloned())
    }
    async fn streaming_messages(&self, chat_id: ChatId) -> Result<Vec<Message>, StoreError> {
        let ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        Ok(ms
            .iter()
            .filter(|m| m.chat_id() == chat_id && m.status() == MessageStatus::Streaming)
            .cloned()
            .collect())
    }
    async fn start_turn(&self, turn: &NewTurn) -> Result<(), StoreError> {
        // One lock order (chats, then messages) makes the whole turn atomic.
        let mut chats = self.chats.lock().map_err(|_| StoreError::Conflict)?;
        let mut ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        let chat = chats
            .iter_mut()
            .find(|c| c.id() == turn.chat_id)
            .ok_or(StoreError::NotFound)?;
        // The idempotency key is checked before the busy check (see the port's contract).
        let mut recs = self.idempotent.lock().map_err(|_| StoreError::Conflict)?;
        if let Some(rec) = &turn.idempotency {
            let live = turn.now - chrono::Duration::hours(IdempotentSend::TTL_HOURS);
            if recs
                .iter()
                .any(|r| r.user == rec.user && r.key == rec.key && r.created_at >= live)
            {
                return Err(StoreError::Conflict);
            }
        }
        if chat.message_count() != turn.expected_count {
            return Err(StoreError::Conflict);
        }
        if ms.iter().any(|m| {
            m.chat_id() == turn.chat_id
                && m.status() == MessageStatus::Streaming
                && m.updated_at() >= turn.stale_before
        }) {
            return Err(StoreError::ChatBusy);
        }
        let first = turn.user_message.as_ref().unwrap_or(&turn.reply);
        if let Some(p) = first.parent_id() {
            if !ms
                .iter()
                .any(|m| m.id() == p && m.chat_id() == turn.chat_id)
            {
                return Err(StoreError::Conflict);
            }
        }
        if let Some(rec) = &turn.idempotency {
            recs.retain(|r| !(r.user == rec.user && r.key == rec.key));
            recs.push(rec.clone());
        }
        ms.extend(turn.user_message.iter().cloned());
        ms.push(turn.reply.clone());
        let added = u32::from(turn.user_message.is_some()) + 1;
        chat.record_turn(added, turn.reply.id(), turn.now);
        emit(&turn.events.iter().collect::<Vec<_>>());
        Ok(())
    }
    async fn run_turn(&self, read: &TurnRead, decide: TurnDecision) -> Result<TurnRun, StoreError> {
        // One lock order (chats, messages, records): reading the facts, the domain's
        // decision and the write are one atomic step.
        let mut chats = self.chats.lock().map_err(|_| StoreError::Conflict)?;
        let mut ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        let mut recs = self.idempotent.lock().map_err(|_| StoreError::Conflict)?;
        let mut facts = TurnFacts {
            chat: chats.iter().find(|c| c.id() == read.chat_id).cloned(),
            ..TurnFacts::default()
        };
        let find = |id: MessageId| ms.iter().find(|m| m.id() == id).cloned();
        let live = read.claim.as_ref().and_then(|claim| {
            recs.iter().find(|r| {
                r.user == claim.user && r.key == claim.key && r.created_at >= read.live_since
            })
        });
        if let (Some(chat), None) = (&facts.chat, live) {
            facts.parent_id = match read.parent {
                TurnParent::ActiveLeaf => chat.active_leaf_id(),
                TurnParent::Root => None,
                TurnParent::Message(id) => Some(id),
            };
            let mut at = facts.parent_id;
            while let Some(m) = at.and_then(find).filter(|m| m.chat_id() == chat.id()) {
                if facts.history.len() >= read.history_limit.max(1) as usize {
                    break;
                }
                at = m.parent_id();
                facts.history.push(m);
            }
            let mine = ms.iter().filter(|m| m.chat_id() == chat.id());
            facts.siblings = mine
                .clone()
                .filter(|m| m.parent_id() == facts.parent_id)
                .map(|m| m.id())
                .collect();
            facts.streaming = mine
                .filter(|m| m.status() == MessageStatus::Streaming)
                .cloned()
                .collect();
        }
        facts.replay = live.map(|r| IdempotentReplay {
            record: r.clone(),
            message: find(r.message_id),
            reply: find(r.reply_id),
        });
        let Some(turn) = decide(&facts) else {
            return Ok(TurnRun {
                facts,
                started: None,
            });
        };
        let Some(chat) = chats.iter_mut().find(|c| c.id() == read.chat_id) else {
            return Err(StoreError::NotFound);
        };
        if facts.replay.is_some() {
            return Err(StoreError::Conflict);
        }
        if let Some(rec) = &read.claim {
            recs.retain(|r| !(r.user == rec.user && r.key == rec.key));
            recs.push(rec.clone());
        }
        ms.extend(turn.user_message.iter().cloned());
        ms.push(turn.reply.clone());
        // The decision numbered the reply last: the count is its seq.
        let added = turn.reply.seq().saturating_sub(chat.message_count());
        chat.record_turn(added, turn.reply.id(), turn.now);
        emit(&turn.events.iter().collect::<Vec<_>>());
        Ok(TurnRun {
            facts,
            started: Some(turn),
        })
    }
    async fn finish_reply<'u>(
        &self,
        reply: &Message,
        event: &Event,
        _usage: Option<&'u domain::UsageEntry>,
    ) -> Result<bool, StoreError> {
        // (A real adapter adds `_usage` to its usage ledger in the same change.)
        let mut ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        match ms
            .iter_mut()
            .find(|m| m.id() == reply.id() && m.status() == MessageStatus::Streaming)
        {
            Some(m) => {
                *m = reply.clone();
                emit(&[event]);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn update_message(&self, message: &Message, event: &Event) -> Result<(), StoreError> {
        let mut ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        let m = ms
            .iter_mut()
            .find(|m| m.id() == message.id())
            .ok_or(StoreError::NotFound)?;
        m.take_edit(message);
        emit(&[event]);
        Ok(())
    }
    async fn delete_message(
        &self,
        message: &Message,
        _stale_before: DateTime<Utc>,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut chats = self.chats.lock().map_err(|_| StoreError::Conflict)?;
        let mut ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        // The subtree: children come after their parents in `seq` order.
        let mut gone = vec![message.id()];
        for m in ms.iter().filter(|m| m.chat_id() == message.chat_id()) {
            if m.parent_id().is_some_and(|p| gone.contains(&p)) {
                gone.push(m.id());
            }
        }
        ms.retain(|m| !gone.contains(&m.id()));
        for (i, m) in ms
            .iter_mut()
            .filter(|m| m.chat_id() == message.chat_id())
            .enumerate()
        {
            m.renumber(i);
        }
        let fallback = newest_below(&ms, message.chat_id(), message.parent_id());
        let left: Vec<Message> = ms
            .iter()
            .filter(|m| m.chat_id() == message.chat_id())
            .cloned()
            .collect();
        if let Some(c) = chats.iter_mut().find(|c| c.id() == message.chat_id()) {
            c.record_delete(&left, |l| gone.contains(&l), fallback, event.time);
        }
        emit(&[event]);
        Ok(())
    }
    async fn list_branch(
        &self,
        chat_id: ChatId,
        through: MessageId,
        after: Option<MessageCursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        if !ms
            .iter()
            .any(|m| m.id() == through && m.chat_id() == chat_id)
        {
            return Ok(Vec::new());
        }
        let leaf = newest_below(&ms, chat_id, Some(through)).unwrap_or(through);
        let from = after.map_or(0, |c| c.seq);
        let mut path = path_to(&ms, leaf);
        path.reverse();
        Ok(path
            .into_iter()
            .filter(|m| m.seq() > from)
            .take(limit as usize)
            .map(|mut m| {
                let siblings: Vec<MessageId> = ms
                    .iter()
                    .filter(|s| s.chat_id() == chat_id && s.parent_id() == m.parent_id())
                    .map(|s| s.id())
                    .collect();
                m.set_branch(Branch::among(&siblings, m.id()));
                m
            })
            .collect())
    }
    async fn branch_history(
        &self,
        _chat_id: ChatId,
        leaf: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        let mut path = path_to(&ms, leaf);
        path.truncate(limit as usize);
        Ok(path)
    }
    async fn newest_leaf(
        &self,
        chat_id: ChatId,
        below: Option<MessageId>,
    ) -> Result<Option<MessageId>, StoreError> {
        let ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        Ok(newest_below(&ms, chat_id, below))
    }
    async fn children(
        &self,
        chat_id: ChatId,
        parent: Option<MessageId>,
    ) -> Result<Vec<MessageId>, StoreError> {
        let ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        Ok(ms
            .iter()
            .filter(|m| m.chat_id() == chat_id && m.parent_id() == parent)
            .map(|m| m.id())
            .collect())
    }
    async fn select_branch(&self, chat: &Chat, event: &Event) -> Result<(), StoreError> {
        let mut chats = self.chats.lock().map_err(|_| StoreError::Conflict)?;
        let c = chats
            .iter_mut()
            .find(|c| c.id() == chat.id())
            .ok_or(StoreError::NotFound)?;
        if let Some(leaf) = chat.active_leaf_id() {
            c.select_leaf(leaf);
        }
        emit(&[event]);
        Ok(())
    }
    async fn insert_chat_with_messages(
        &self,
        chat: &Chat,
        messages: &[Message],
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut chats = self.chats.lock().map_err(|_| StoreError::Conflict)?;
        let mut ms = self.messages.lock().map_err(|_| StoreError::Conflict)?;
        chats.push(chat.clone());
        ms.extend(messages.iter().cloned());
        emit(&events.iter().collect::<Vec<_>>());
        Ok(())
    }
}

/// The newest descendant of `below` (of the newest root for `None`) in a chat.
fn newest_below(ms: &[Message], chat_id: ChatId, below: Option<MessageId>) -> Option<MessageId> {
    let newest_child = |p: Option<MessageId>| {
        ms.iter()
            .filter(|m| m.chat_id() == chat_id && m.parent_id() == p)
            .max_by_key(|m| m.seq())
            .map(|m| m.id())
    };
    let mut at = match below {
        Some(id) => id,
        None => newest_child(None)?,
    };
    while let Some(next) = newest_child(Some(at)) {
        at = next;
    }
    Some(at)
}

/// The branch ending at `leaf`, newest first.
fn path_to(ms: &[Message], leaf: MessageId) -> Vec<Message> {
    let mut path = Vec::new();
    let mut at = ms.iter().find(|m| m.id() == leaf);
    while let Some(m) = at {
        path.push(m.clone());
        at = m.parent_id().and_then(|p| ms.iter().find(|x| x.id() == p));
    }
    path
}

/// A model that answers the last message in upper case, in two chunks.
struct Shouter;

#[async_trait]
impl LlmClient for Shouter {
    async fn complete(&self, request: LlmRequest) -> Result<LlmReply, LlmError> {
        let last = request
            .messages
            .last()
            .map(|m| m.content.to_uppercase())
            .unwrap_or_default();
        Ok(LlmReply {
            content: last,
            model: "shouter".into(),
            usage: None,
            finish_reason: Some("stop".into()),
        })
    }
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, LlmError> {
        let text = self.complete(request).await?.content;
        let (a, b) = text.split_at(text.len() / 2);
        let chunks = vec![
            Ok(LlmChunk::Delta(a.to_owned())),
            Ok(LlmChunk::Delta(b.to_owned())),
        ];
        Ok(Box::pin(futures::stream::iter(chunks)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(VecStore::default());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let chats = ChatService::new(store.clone(), clock.clone());
    let messages = MessageService::new(
        store.clone(),
        store,
        Arc::new(Shouter),
        clock,
        MessageServiceConfig {
            default_model: "shouter".into(),
            ..Default::default()
        },
    );
    let me = Actor::new(UserId::parse("example-user")?);
    block_on(async {
        let chat = chats
            .create(
                &me,
                CreateChat {
                    title: Some(ChatTitle::parse("Demo")?),
                    settings: None,
                },
            )
            .await?;
        let turn = messages
            .send(
                &me,
                SendMessage {
                    chat_id: chat.id(),
                    content: MessageContent::parse("hello there")?,
                    parent: Default::default(),
                },
            )
            .await?;
        let reply = turn
            .generation
            .run(|delta| println!("delta: {delta:?}"))
            .await?;
        println!("reply #{}: {}", reply.seq(), reply.content());
        assert_eq!(reply.content(), "HELLO THERE");
        Ok(())
    })
}
