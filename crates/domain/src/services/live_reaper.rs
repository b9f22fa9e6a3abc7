//! Replies whose generating process died: found by their lapsed lease (when live state
//! is shared) or, as a fallback, by their age (`stale_after`), and marked `failed` with
//! the text generated so far, so their chat accepts sends again.

use super::messages::MessageService;
use super::{Actor, MessageError};
use crate::model::{ChatId, EventKind, Message, MessageStatus};
use crate::ports::{LiveEnd, StoreError};

/// The error stored on a reply whose generating process went away.
pub(crate) const INTERRUPTED: &str = "generation was interrupted";

/// Most lapsed leases handled by one sweep.
const SWEEP_LIMIT: usize = 100;

impl MessageService {
    /// Marks failed (with its partial text) every reply whose generating process's
    /// lease lapsed; returns how many were marked. Run it periodically (every few
    /// seconds): with shared live state, a killed process's chats are free again within
    /// the lease time plus the period.
    pub async fn reap_lapsed(&self) -> Result<usize, MessageError> {
        let Some(live) = self.inner.live.clone() else {
            return Ok(0);
        };
        let now = self.inner.clock.now();
        let lapsed = match live.lapsed_leases(now, SWEEP_LIMIT).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "lapsed leases cannot be listed now");
                return Ok(0);
            }
        };
        let mut marked = 0;
        for id in lapsed {
            if self.inner.is_running(id) {
                continue;
            }
            match self.inner.messages.find_message(id).await? {
                Some(m) if m.status() == MessageStatus::Streaming => {
                    let Some(chat) = self.inner.chats.find_chat(m.chat_id()).await? else {
                        continue;
                    };
                    if self
                        .mark_interrupted(&Actor::new(chat.owner().clone()), m)
                        .await?
                    {
                        marked += 1;
                    }
                }
                Some(m) => {
                    let _ = live
                        .finish(id, super::generation::live_end(m.status()))
                        .await;
                }
                None => {
                    let _ = live.finish(id, LiveEnd::Failed).await;
                }
            }
        }
        Ok(marked)
    }

    /// Marks the chat's abandoned `streaming` replies failed (the busy check of a
    /// delete).
    pub(crate) async fn reap_chat(&self, actor: &Actor, chat_id: ChatId) -> Result<(), StoreError> {
        let streaming = self.inner.messages.streaming_messages(chat_id).await?;
        self.reap_listed(actor, streaming).await.map(|_| ())
    }

    /// Marks failed those of `streaming` (a chat's `streaming` replies) whose generating
    /// process is gone: not this one, and they are older than the staleness cut-off or
    /// their lease lapsed. Returns the first one still being generated, if any (the
    /// chat is busy with it).
    pub(crate) async fn reap_listed(
        &self,
        actor: &Actor,
        streaming: Vec<Message>,
    ) -> Result<Option<crate::model::MessageId>, StoreError> {
        let cutoff = self.stale_before();
        let mut busy = None;
        for m in streaming {
            let running = self.inner.is_running(m.id());
            if !running && (m.updated_at() < cutoff || self.lease_lapsed(&m).await) {
                self.mark_interrupted(actor, m).await?;
            } else if busy.is_none() && m.updated_at() >= cutoff {
                busy = Some(m.id());
            }
        }
        Ok(busy)
    }

    /// Whether shared live state says that `m`'s generating process is gone: its lease
    /// lapsed, or it never had one although it started longer than a lease ago.
    async fn lease_lapsed(&self, m: &Message) -> bool {
        let Some(live) = self.inner.live.as_ref().filter(|l| l.is_shared()) else {
            return false;
        };
        let now = self.inner.clock.now();
        match live.lease(m.id()).await {
            Ok(Some(lease)) => lease.until < now,
            Ok(None) => {
                m.created_at() + super::live_replies::chrono_of(self.inner.live_config.lease_ttl)
                    < now
            }
            Err(e) => {
                tracing::debug!(error = %e, message_id = %m.id(), "lease unknown; only the age of the reply counts");
                false
            }
        }
    }

    /// Stores `m` failed with the text the live state holds (when it holds more than
    /// storage); returns whether it was still streaming.
    async fn mark_interrupted(&self, actor: &Actor, mut m: Message) -> Result<bool, StoreError> {
        tracing::warn!(message_id = %m.id(), "marking an abandoned streaming reply as failed");
        if let Some(live) = &self.inner.live {
            if let Ok(Some(text)) = live.read(m.id(), 0).await {
                m.catch_up(text.text);
            }
        }
        m.fail(INTERRUPTED.into());
        m.touch(self.inner.clock.now());
        let event = self.event(actor, m.chat_id(), EventKind::MessageFailed(m.clone()));
        let stored = self.inner.messages.finish_reply(&m, &event, None).await?;
        if let (true, Some(live)) = (stored, &self.inner.live) {
            let _ = live.finish(m.id(), LiveEnd::Failed).await;
        }
        Ok(stored)
    }
}
