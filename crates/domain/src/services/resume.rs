//! Following a reply, from any process: the text a client has not received (from a
//! byte offset), then the live text as it is generated, then the reply as stored at its
//! end. The live state gives the text while the reply is generated; storage is the
//! record once it ended (and is re-read every few seconds, in case the live state
//! missed the end, such as when its backend was down).

use super::messages::MessageService;
use super::Actor;
use crate::model::{Message, MessageId, MessageStatus, Role};
use crate::ports::{LiveError, LiveEvent, LiveStream, LlmError, StoreError, TimeoutKind};
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{BoxStream, StreamExt};
use std::collections::VecDeque;
use std::task::Poll;
use std::time::Duration;

/// What kind of failure a stored failed reply records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFailure {
    /// The provider timed out.
    Timeout,
    /// The provider failed otherwise.
    Provider,
    /// The generating process went away (or the reply could not be stored).
    Interrupted,
}

impl ReplyFailure {
    /// The failure a failed reply records (from the error the service stored).
    pub fn of(reply: &Message) -> Self {
        let error = reply.error().unwrap_or_default();
        let timed_out = [
            TimeoutKind::Connect,
            TimeoutKind::FirstToken,
            TimeoutKind::Total,
        ]
        .into_iter()
        .any(|k| error == LlmError::Timeout(k).to_string());
        if timed_out {
            Self::Timeout
        } else if error == super::live_reaper::INTERRUPTED
            || error.starts_with(super::generation::NOT_STORED)
        {
            Self::Interrupted
        } else {
            Self::Provider
        }
    }
}

/// One event of a followed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    /// Text at byte `offset` of the reply; deltas are contiguous from the offset asked.
    Delta {
        /// Where `text` starts.
        offset: u64,
        /// The text (never empty).
        text: String,
    },
    /// The reply ended `complete` or `cancelled`: as stored. Last event.
    Finished(Message),
    /// The reply ended `failed`: as stored, with the kind of failure. Last event.
    Failed(Message, ReplyFailure),
}

/// A reply being followed: the reply as read at the start, and its events.
pub struct ReplyFollow {
    /// The reply as stored when following started.
    pub reply: Message,
    /// Deltas, then one final event.
    pub events: BoxStream<'static, ReplyEvent>,
}

impl std::fmt::Debug for ReplyFollow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyFollow")
            .field("reply", &self.reply.id())
            .finish_non_exhaustive()
    }
}

/// Failure to follow a reply.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// No such message for this user.
    #[error("message not found")]
    NotFound,
    /// The message is not an assistant reply.
    #[error("only an assistant reply can be followed")]
    NotAReply,
    /// The offset is inside a character of the reply's text.
    #[error("offset {0} is not on a character boundary of the reply's text")]
    InvalidOffset(u64),
    /// The reply is being generated and the live state cannot be reached.
    #[error("live reply state is unavailable")]
    LiveUnavailable(#[source] LiveError),
    /// Storage cannot be reached.
    #[error("storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

impl From<StoreError> for ResumeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Unavailable(e) => Self::Unavailable(e),
            other => Self::Unknown(anyhow::anyhow!(other.to_string())),
        }
    }
}

/// The last event for a reply that is no longer streaming.
fn final_event(reply: Message) -> ReplyEvent {
    if reply.status() == MessageStatus::Failed {
        let failure = ReplyFailure::of(&reply);
        ReplyEvent::Failed(reply, failure)
    } else {
        ReplyEvent::Finished(reply)
    }
}

/// The text of `content` past `from` (none when `from` is at or past its end).
fn rest(content: &str, from: u64) -> Result<Option<&str>, ResumeError> {
    let at = usize::try_from(from).unwrap_or(usize::MAX);
    if at >= content.len() {
        return Ok(None);
    }
    content
        .get(at..)
        .map(Some)
        .ok_or(ResumeError::InvalidOffset(from))
}

/// The events of a reply that ended: the missing text, then the final event.
fn ended(reply: Message, from: u64) -> Result<Vec<ReplyEvent>, ResumeError> {
    let mut events = Vec::new();
    if let Some(text) = rest(reply.content(), from)? {
        events.push(ReplyEvent::Delta {
            offset: from,
            text: text.to_owned(),
        });
    }
    events.push(final_event(reply));
    Ok(events)
}

struct Following {
    svc: MessageService,
    id: MessageId,
    /// Bytes of the text already sent (or that the client had).
    sent: u64,
    live: Option<LiveStream>,
    queue: VecDeque<ReplyEvent>,
    done: bool,
}

enum Woke {
    Live(Option<Result<LiveEvent, LiveError>>),
    Check,
}

impl Following {
    async fn next(&mut self) -> Option<ReplyEvent> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            match self.wait().await {
                Woke::Live(Some(Ok(LiveEvent::Delta { offset, text }))) => {
                    self.take_delta(offset, text);
                }
                Woke::Live(Some(Ok(LiveEvent::End(_)))) | Woke::Live(None) => {
                    self.live = None;
                    self.check().await;
                }
                Woke::Live(Some(Err(e))) => {
                    tracing::warn!(error = %e, message_id = %self.id, "lost the live reply; following storage");
                    self.live = None;
                    self.check().await;
                }
                Woke::Check => self.check().await,
            }
        }
    }

    /// Waits for the live state, or until storage is due a re-read.
    async fn wait(&mut self) -> Woke {
        let inner = &self.svc.inner;
        let mut timer: Option<BoxFuture<'static, ()>> = inner.sleeper.clone().map(|s| {
            let every = inner.live_config.follow_check_every;
            async move { s.sleep(every).await }.boxed()
        });
        let live = &mut self.live;
        futures::future::poll_fn(|cx| {
            if let Some(l) = live.as_mut() {
                if let Poll::Ready(item) = l.poll_next_unpin(cx) {
                    return Poll::Ready(Woke::Live(item));
                }
            }
            match timer.as_mut() {
                Some(t) => t.poll_unpin(cx).map(|()| Woke::Check),
                // Without a sleeper (and without live state) only the live end counts.
                None if live.is_none() => Poll::Ready(Woke::Check),
                None => Poll::Pending,
            }
        })
        .await
    }

    fn take_delta(&mut self, offset: u64, text: String) {
        let end = offset + text.len() as u64;
        if offset > self.sent || end <= self.sent {
            // A gap (the live state lost text) is filled from storage at the end.
            return;
        }
        let skip = usize::try_from(self.sent - offset).unwrap_or(usize::MAX);
        if let Some(t) = text.get(skip..) {
            self.queue.push_back(ReplyEvent::Delta {
                offset: self.sent,
                text: t.to_owned(),
            });
            self.sent = end;
        }
    }

    /// Re-reads the stored reply: once it ended, queues what is missing and the end.
    async fn check(&mut self) {
        let stored = self.svc.inner.messages.find_message(self.id).await;
        match stored {
            Ok(Some(m)) if m.status() != MessageStatus::Streaming => {
                if let Ok(Some(text)) = rest(m.content(), self.sent) {
                    self.queue.push_back(ReplyEvent::Delta {
                        offset: self.sent,
                        text: text.to_owned(),
                    });
                }
                self.queue.push_back(final_event(m));
                self.done = true;
            }
            Ok(Some(_)) => self.refollow().await,
            Ok(None) => self.done = true,
            Err(e) => {
                tracing::warn!(error = %e, message_id = %self.id, "cannot re-read a followed reply")
            }
        }
    }

    async fn refollow(&mut self) {
        if self.live.is_some() {
            return;
        }
        if let Some(live) = self.svc.inner.live.clone() {
            if let Ok(s) = live.follow(self.id, self.sent).await {
                self.live = Some(s);
            }
        }
        if self.live.is_none() && self.svc.inner.sleeper.is_none() {
            // Nothing can tell when the reply ends: stop rather than spin.
            self.done = true;
        }
    }
}

impl MessageService {
    /// A `streaming` reply with the text generated so far (from the live state; as
    /// stored when that is unavailable). Other messages are returned as they are.
    pub(crate) async fn with_live_text(&self, mut m: Message) -> Message {
        if m.status() != MessageStatus::Streaming {
            return m;
        }
        if let Some(live) = &self.inner.live {
            match live.read(m.id(), 0).await {
                Ok(Some(t)) if t.text.len() > m.content().len() => m.catch_up(t.text),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, message_id = %m.id(), "partial text unavailable")
                }
            }
        }
        m
    }

    /// Follows a reply of one of the actor's chats from byte `after` of its text (0:
    /// from the start; past the end: nothing but the end). For a reply that ended, the
    /// missing text and the final event come at once; for one being generated (on any
    /// process sharing the live state), the text held past `after`, each new piece, then
    /// the final event.
    #[tracing::instrument(skip_all, fields(message_id = %id))]
    pub async fn follow_reply(
        &self,
        actor: &Actor,
        id: MessageId,
        after: u64,
    ) -> Result<ReplyFollow, ResumeError> {
        let (_, reply) = self.owned_message(actor, id).await?;
        if reply.role() != Role::Assistant {
            return Err(ResumeError::NotAReply);
        }
        if reply.status() != MessageStatus::Streaming {
            let events = ended(reply.clone(), after)?;
            return Ok(ReplyFollow {
                reply,
                events: futures::stream::iter(events).boxed(),
            });
        }
        let live = match &self.inner.live {
            Some(live) => Some(live.follow(id, after).await.map_err(|e| match e {
                LiveError::InvalidOffset(at) => ResumeError::InvalidOffset(at),
                other => ResumeError::LiveUnavailable(other),
            })?),
            None => None,
        };
        let following = Following {
            svc: self.clone(),
            id,
            sent: after,
            live,
            queue: VecDeque::new(),
            done: false,
        };
        let events =
            futures::stream::unfold(
                following,
                |mut f| async move { f.next().await.map(|e| (e, f)) },
            )
            .boxed();
        Ok(ReplyFollow { reply, events })
    }

    /// The reply once it is no longer being generated (waiting, at most `within` when
    /// the service has a sleeper, for its end, followed through the live state); the
    /// reply as stored then.
    pub async fn settled(
        &self,
        actor: &Actor,
        reply: Message,
        within: Duration,
    ) -> Result<Message, ResumeError> {
        if reply.status() != MessageStatus::Streaming {
            return Ok(reply);
        }
        let follow = self.follow_reply(actor, reply.id(), u64::MAX).await;
        let mut events = match follow {
            Ok(f) => f.events,
            // Without live state, storage alone tells.
            Err(ResumeError::LiveUnavailable(_)) => futures::stream::empty().boxed(),
            Err(e) => return Err(e),
        };
        let end = async {
            while let Some(e) = events.next().await {
                match e {
                    ReplyEvent::Finished(m) | ReplyEvent::Failed(m, _) => return Some(m),
                    ReplyEvent::Delta { .. } => {}
                }
            }
            None
        };
        let ended = match &self.inner.sleeper {
            Some(s) => {
                let timeout = s.sleep(within);
                futures::pin_mut!(end, timeout);
                match futures::future::select(end, timeout).await {
                    futures::future::Either::Left((m, _)) => m,
                    futures::future::Either::Right(_) => None,
                }
            }
            None => end.await,
        };
        match ended {
            Some(m) => Ok(m),
            None => Ok(self.owned_message(actor, reply.id()).await?.1),
        }
    }
}
