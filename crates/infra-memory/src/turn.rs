//! The start of a turn in memory: `start_turn` and `run_turn` (the facts read, the
//! domain's decision and the write, all under the store's one lock).

use crate::store::{MemoryStore, State};
use domain::ports::{IdempotentReplay, NewTurn, StoreError, TurnDecision, TurnFacts, TurnParent};
use domain::ports::{TurnRead, TurnRun};
use domain::{IdempotentSend, Message, MessageStatus};

impl State {
    /// The live idempotency record of `rec`'s user and key, if any.
    fn live_record(
        &self,
        rec: &IdempotentSend,
        live_since: chrono::DateTime<chrono::Utc>,
    ) -> Option<&IdempotentSend> {
        self.idempotency
            .get(&(rec.user.clone(), rec.key.as_str().to_owned()))
            .filter(|old| old.created_at >= live_since)
    }

    /// Stores a turn whose checks passed: the claim, the messages, the chat's count,
    /// `updated_at` and active leaf. (Not the events: the caller queues them.)
    fn store_turn(
        &mut self,
        turn: &NewTurn,
        claim: Option<&IdempotentSend>,
    ) -> Result<(), StoreError> {
        let chat = self.chats.get(&turn.chat_id).ok_or(StoreError::NotFound)?;
        let count = chat.message_count();
        let new: Vec<Message> = turn
            .user_message
            .iter()
            .cloned()
            .chain([turn.reply.clone()])
            .collect();
        for (i, m) in new.iter().enumerate() {
            let seq = count + 1 + u32::try_from(i).unwrap_or(u32::MAX);
            if m.seq() != seq || m.chat_id() != turn.chat_id {
                return Err(StoreError::Unknown(anyhow::anyhow!(
                    "turn message {} has seq {} in chat {}, expected seq {seq} in chat {}",
                    m.id(),
                    m.seq(),
                    m.chat_id(),
                    turn.chat_id
                )));
            }
        }
        let parent = new.first().and_then(|m| m.parent_id());
        if parent.is_some_and(|p| self.message_chat.get(&p) != Some(&turn.chat_id)) {
            return Err(StoreError::Conflict);
        }
        if let Some(rec) = claim {
            let k = (rec.user.clone(), rec.key.as_str().to_owned());
            self.idempotency.insert(k, rec.clone());
        }
        let added = u32::try_from(new.len()).unwrap_or(u32::MAX);
        for m in &new {
            self.message_chat.insert(m.id(), m.chat_id());
        }
        self.messages.entry(turn.chat_id).or_default().extend(new);
        if let Some(c) = self.chats.get_mut(&turn.chat_id) {
            c.record_turn(added, turn.reply.id(), turn.now);
        }
        Ok(())
    }

    /// What a turn depends on, as `run_turn` reads it.
    fn turn_facts(&self, read: &TurnRead) -> TurnFacts {
        let Some(chat) = self.chats.get(&read.chat_id) else {
            return TurnFacts::default();
        };
        let mut facts = TurnFacts {
            chat: Some(chat.clone()),
            ..TurnFacts::default()
        };
        if let Some(rec) = read
            .claim
            .as_ref()
            .and_then(|c| self.live_record(c, read.live_since))
        {
            let find = |id| {
                let ms = self.messages.get(self.message_chat.get(&id)?)?;
                let m = ms.iter().find(|m| m.id() == id)?;
                Some(crate::tree::with_branch(ms, m))
            };
            facts.replay = Some(IdempotentReplay {
                record: rec.clone(),
                message: find(rec.message_id),
                reply: find(rec.reply_id),
            });
            return facts;
        }
        let ms: &[Message] = self.messages.get(&chat.id()).map_or(&[], |v| v.as_slice());
        facts.parent_id = match read.parent {
            TurnParent::ActiveLeaf => chat.active_leaf_id(),
            TurnParent::Root => None,
            TurnParent::Message(id) => Some(id),
        };
        if let Some(p) = facts.parent_id {
            if ms.iter().any(|m| m.id() == p) {
                facts.history = crate::tree::path_to(ms, p)
                    .into_iter()
                    .rev()
                    .take(read.history_limit.max(1) as usize)
                    .cloned()
                    .collect();
            }
        }
        facts.siblings = crate::tree::children(ms, facts.parent_id);
        facts.streaming = ms
            .iter()
            .filter(|m| m.status() == MessageStatus::Streaming)
            .cloned()
            .collect();
        if let Some((user, from, to)) = &read.usage {
            facts.usage = self.usage.rows(user, *from, *to);
        }
        facts
    }
}

impl MemoryStore {
    pub(crate) async fn start_turn_in_memory(&self, turn: &NewTurn) -> Result<(), StoreError> {
        self.commit(&turn.events, |st| {
            let chat = st.chats.get(&turn.chat_id).ok_or(StoreError::NotFound)?;
            let expected = chat.message_count() == turn.expected_count;
            // The key is checked first: a retry racing the send it repeats must re-read
            // (and find the record), not be told the chat is busy with its own reply.
            let live_since = turn.now - chrono::Duration::hours(IdempotentSend::TTL_HOURS);
            if let Some(rec) = &turn.idempotency {
                if st.live_record(rec, live_since).is_some() {
                    return Err(StoreError::Conflict);
                }
            }
            if !expected {
                return Err(StoreError::Conflict);
            }
            if st.busy(turn.chat_id, turn.stale_before) {
                return Err(StoreError::ChatBusy);
            }
            st.store_turn(turn, turn.idempotency.as_ref())
        })
        .await
    }

    pub(crate) async fn run_turn_in_memory(
        &self,
        read: &TurnRead,
        decide: TurnDecision,
    ) -> Result<TurnRun, StoreError> {
        let run = {
            let mut st = self.lock();
            let facts = st.turn_facts(read);
            match decide(&facts) {
                None => TurnRun {
                    facts,
                    started: None,
                },
                Some(turn) => {
                    if facts.chat.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    if facts.replay.is_some() {
                        return Err(StoreError::Conflict);
                    }
                    st.store_turn(&turn, read.claim.as_ref())?;
                    st.pending.extend(turn.events.iter().cloned());
                    TurnRun {
                        facts,
                        started: Some(turn),
                    }
                }
            }
        };
        self.flush().await;
        Ok(run)
    }
}
