//! A reply being generated: drives the LLM stream, forwards deltas, honours cancel
//! requests and stores the reply's final state.

use super::messages::Inner;
use super::{Actor, SendError};
use crate::model::{Event, EventKind, Message, MessageStatus, Usage};
use crate::ports::{LlmChunk, LlmError, LlmRequest};
use futures::channel::oneshot;
use futures::future::{select, Either};
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;

/// What a cancel request hands the generation: where to send the final reply.
pub(crate) type CancelAck = oneshot::Sender<Message>;
pub(crate) type CancelRx = oneshot::Receiver<CancelAck>;

/// The stored start of a turn, and the generation that will finish it.
#[derive(Debug)]
pub struct Turn {
    /// The user's message (for a regenerate: the message being answered again).
    pub message: Message,
    /// The reply as stored at the start: status `streaming`, no content yet.
    pub reply: Message,
    /// Runs the provider call; must be driven to completion by the caller (spawn it,
    /// so that it finishes even when the client goes away).
    pub generation: Generation,
}

/// A reply to generate. Run it with [`Generation::run`].
pub struct Generation {
    pub(crate) inner: Arc<Inner>,
    pub(crate) actor: Actor,
    pub(crate) reply: Message,
    pub(crate) request: LlmRequest,
    pub(crate) cancel: CancelRx,
    pub(crate) _guard: RunningGuard,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("reply", &self.reply.id)
            .finish_non_exhaustive()
    }
}

/// Removes a generation from the registry of running ones when it ends.
pub(crate) struct RunningGuard {
    pub(crate) inner: Arc<Inner>,
    pub(crate) id: crate::model::MessageId,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.inner.unregister(self.id);
    }
}

enum Step<T> {
    Item(T),
    Cancel(CancelAck),
}

async fn or_cancel<F: Future>(fut: F, cancel: &mut CancelRx) -> Step<F::Output> {
    futures::pin_mut!(fut);
    match select(fut, cancel).await {
        Either::Left((v, _)) => Step::Item(v),
        Either::Right((Ok(ack), _)) => Step::Cancel(ack),
        // The registry let go without cancelling: nothing can cancel any more.
        Either::Right((Err(_), fut)) => Step::Item(fut.await),
    }
}

/// Pauses between attempts to store a finished reply while storage is unavailable
/// (about 20 s in all).
const FINISH_RETRY_DELAYS_MS: [u64; 10] =
    [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000, 5_000];

/// Stores a reply's final state, retrying while storage is unavailable (when the
/// service has a sleeper), so a database blip at the end of a reply does not lose it.
async fn store_final(
    inner: &Inner,
    reply: &crate::model::Message,
    event: &Event,
    usage: Option<&crate::model::UsageEntry>,
) -> Result<bool, crate::ports::StoreError> {
    let mut delays = FINISH_RETRY_DELAYS_MS.iter();
    loop {
        match inner.messages.finish_reply(reply, event, usage).await {
            Err(crate::ports::StoreError::Unavailable(e)) => {
                match (&inner.sleeper, delays.next()) {
                    (Some(sleeper), Some(ms)) => {
                        tracing::warn!(error = %e, message_id = %reply.id, "storage unavailable while storing a reply; retrying");
                        sleeper.sleep(std::time::Duration::from_millis(*ms)).await;
                    }
                    _ => return Err(crate::ports::StoreError::Unavailable(e)),
                }
            }
            other => return other,
        }
    }
}

enum End {
    Done,
    Failed(LlmError),
    Cancelled(Option<CancelAck>),
}

impl Generation {
    /// The reply being generated (as stored at the start).
    pub fn reply(&self) -> &Message {
        &self.reply
    }

    /// Generates the reply, calling `on_delta` with each piece of text as it arrives,
    /// then stores the reply's final state with its event (`message.completed`,
    /// `message.failed` or `message.cancelled`) and returns it.
    ///
    /// A provider failure is `Err(SendError::Llm)`, with the stored failed reply.
    #[tracing::instrument(skip_all, fields(chat_id = %self.reply.chat_id, message_id = %self.reply.id))]
    pub async fn run<F: FnMut(&str) + Send>(self, mut on_delta: F) -> Result<Message, SendError> {
        let Generation {
            inner,
            actor,
            mut reply,
            request,
            mut cancel,
            _guard,
        } = self;
        let started = inner.clock.now();
        let prompt_estimate = super::usage::estimate_prompt(&request);
        let mut model = request.model.clone();
        let mut content = String::new();
        let mut usage: Option<Usage> = None;

        let end = match or_cancel(inner.llm.stream(request), &mut cancel).await {
            Step::Cancel(ack) => End::Cancelled(Some(ack)),
            Step::Item(Err(e)) => End::Failed(e),
            Step::Item(Ok(mut stream)) => loop {
                match or_cancel(stream.next(), &mut cancel).await {
                    Step::Cancel(ack) => break End::Cancelled(Some(ack)),
                    Step::Item(None) => break End::Done,
                    Step::Item(Some(Err(e))) => break End::Failed(e),
                    Step::Item(Some(Ok(chunk))) => match chunk {
                        LlmChunk::Delta(t) => {
                            content.push_str(&t);
                            on_delta(&t);
                        }
                        LlmChunk::Usage(u) => usage = Some(u),
                        LlmChunk::Model(m) => model = m,
                        LlmChunk::Finish(_) => {}
                    },
                }
            },
        };
        drop(_guard);

        let now = inner.clock.now();
        reply.content = content;
        reply.model = Some(model);
        reply.usage = usage;
        reply.updated_at = now;
        let kind = match &end {
            End::Done => {
                reply.status = MessageStatus::Complete;
                let latency_ms = u64::try_from((now - started).num_milliseconds()).unwrap_or(0);
                EventKind::MessageCompleted {
                    message: reply.clone(),
                    latency_ms,
                }
            }
            End::Failed(e) => {
                reply.status = MessageStatus::Failed;
                reply.error = Some(e.to_string());
                EventKind::MessageFailed(reply.clone())
            }
            End::Cancelled(_) => {
                reply.status = MessageStatus::Cancelled;
                EventKind::MessageCancelled(reply.clone())
            }
        };
        let event = inner.tag_provider(
            Event::new(now, actor.user.clone(), reply.chat_id, kind)
                .with_request_id(actor.request_id.clone()),
        );
        let charge = super::usage::reply_entry(&actor.user, &reply, prompt_estimate);
        let stored = store_final(&inner, &reply, &event, charge.as_ref()).await?;
        if let (true, Some(observer)) = (stored, &inner.observer) {
            observer.reply_stored(&actor, &reply);
        }
        if !stored {
            // Cancelled or deleted meanwhile (possibly by another replica): report what is stored.
            reply = inner
                .messages
                .find_message(reply.id)
                .await?
                .ok_or(SendError::NotFound)?;
        }
        match end {
            End::Failed(error) if stored => Err(SendError::Llm {
                error,
                reply: Box::new(reply),
            }),
            End::Cancelled(Some(ack)) => {
                let _ = ack.send(reply.clone());
                Ok(reply)
            }
            _ => Ok(reply),
        }
    }
}
