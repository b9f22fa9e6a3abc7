//! A reply being generated: drives the LLM stream, forwards deltas, honours cancel
//! requests and stores the reply's final state.

use super::live_replies::{LiveStop, LiveWriter};
use super::messages::Inner;
use super::{Actor, SendError};
use crate::model::{Event, EventKind, Message, MessageStatus, Usage};
use crate::ports::{CancelWatch, LiveEnd};
use crate::ports::{LlmChunk, LlmError, LlmRequest};
use futures::channel::oneshot;
use futures::future::{Fuse, FutureExt};
use futures::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

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
    /// The provider call, when it was started before the turn's commit returned.
    pub(crate) early: Option<super::messages::EarlyCall>,
    pub(crate) cancel: CancelRx,
    pub(crate) _guard: RunningGuard,
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("reply", &self.reply.id())
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

enum Wake<T> {
    Item(T),
    Cancel(Option<CancelAck>),
    Timer,
}

/// Waits for `fut`, a cancel (local or from the live state), or the live writer's timer,
/// cancels first.
async fn next_wake<F: Future + Unpin>(
    fut: &mut F,
    cancel: &mut CancelRx,
    local_open: &mut bool,
    writer: &mut LiveWriter,
    watch: &mut Fuse<CancelWatch>,
) -> Wake<F::Output> {
    let mut timer = writer.timer();
    let woke = futures::future::poll_fn(|cx| {
        if *local_open {
            match Pin::new(&mut *cancel).poll(cx) {
                Poll::Ready(Ok(ack)) => return Poll::Ready(Wake::Cancel(Some(ack))),
                // The registry let go without cancelling: nothing local can cancel any more.
                Poll::Ready(Err(_)) => *local_open = false,
                Poll::Pending => {}
            }
        }
        if let Poll::Ready(r) = watch.poll_unpin(cx) {
            return Poll::Ready(match r {
                Ok(()) => Wake::Cancel(None),
                Err(e) => {
                    writer.watch_lost(&e);
                    Wake::Timer
                }
            });
        }
        if let Some(t) = timer.as_mut() {
            if t.poll_unpin(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
        }
        fut.poll_unpin(cx).map(Wake::Item)
    })
    .await;
    woke
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
                        tracing::warn!(error = %e, message_id = %reply.id(), "storage unavailable while storing a reply; retrying");
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
    /// Another process marked the reply failed (its lease had lapsed).
    Taken,
}

/// Provider output goes into stored text: U+0000 cannot be stored (PostgreSQL `text`)
/// and is removed, the same way for what is streamed and what is stored.
pub(crate) fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
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
    /// The text is published to the live reply state as it arrives (coalesced), the
    /// reply's lease is held and renewed, and a cancel requested from any process stops
    /// the provider call. U+0000 is removed from the provider's text before anything
    /// else sees it, so the streamed text is the stored text.
    ///
    /// A provider failure is `Err(SendError::Llm)`, with the stored failed reply.
    #[tracing::instrument(skip_all, fields(chat_id = %self.reply.chat_id(), message_id = %self.reply.id()))]
    pub async fn run<F: FnMut(&str) + Send>(self, mut on_delta: F) -> Result<Message, SendError> {
        let Generation {
            inner,
            actor,
            mut reply,
            request,
            early,
            mut cancel,
            _guard,
        } = self;
        let started = inner.clock.now();
        let prompt_estimate = super::usage::estimate_prompt(&request);
        let mut model = request.model.clone();
        let mut content = String::new();
        let mut usage: Option<Usage> = None;
        let (mut writer, mut watch) = LiveWriter::start(
            inner.live.clone(),
            inner.clock.clone(),
            inner.sleeper.clone(),
            inner.live_config.clone(),
            reply.id(),
            inner.instance.clone(),
        )
        .await;
        let mut local_open = true;

        // The call started while the turn was being committed, if it was; its output
        // has waited unread until now.
        let llm = inner.llm.clone();
        let mut starting: Pin<Box<dyn Future<Output = Result<_, LlmError>> + Send + '_>> =
            match early {
                Some(call) => Box::pin(async move {
                    match call.await {
                        Some(called) => called,
                        None => llm.stream(request).await,
                    }
                }),
                None => inner.llm.stream(request),
            };
        let end = 'run: loop {
            let woke = next_wake(
                &mut starting,
                &mut cancel,
                &mut local_open,
                &mut writer,
                &mut watch,
            )
            .await;
            match woke {
                Wake::Cancel(ack) => break End::Cancelled(ack),
                Wake::Timer => match writer.tick(&content, &mut watch).await {
                    Some(LiveStop::Cancelled) => break End::Cancelled(None),
                    Some(LiveStop::LeaseLost) => break End::Taken,
                    None => {}
                },
                Wake::Item(Err(e)) => break End::Failed(e),
                Wake::Item(Ok(mut stream)) => loop {
                    let mut next = stream.next();
                    let woke = next_wake(
                        &mut next,
                        &mut cancel,
                        &mut local_open,
                        &mut writer,
                        &mut watch,
                    )
                    .await;
                    drop(next);
                    match woke {
                        Wake::Cancel(ack) => break 'run End::Cancelled(ack),
                        Wake::Timer => {}
                        Wake::Item(None) => break 'run End::Done,
                        Wake::Item(Some(Err(e))) => break 'run End::Failed(e),
                        Wake::Item(Some(Ok(chunk))) => match chunk {
                            LlmChunk::Delta(t) => {
                                let t = storable(&t);
                                if !t.is_empty() {
                                    content.push_str(&t);
                                    on_delta(&t);
                                    writer.pushed();
                                }
                            }
                            LlmChunk::Usage(u) => usage = Some(u),
                            LlmChunk::Model(m) => model = storable(&m).into_owned(),
                            LlmChunk::Finish(_) => {}
                        },
                    }
                    match writer.tick(&content, &mut watch).await {
                        Some(LiveStop::Cancelled) => break 'run End::Cancelled(None),
                        Some(LiveStop::LeaseLost) => break 'run End::Taken,
                        None => {}
                    }
                },
            }
        };
        drop(starting);
        drop(_guard);
        writer.flush_all(&content).await;

        let now = inner.clock.now();
        reply.record_output(content, model, usage, now);
        let kind = match &end {
            End::Done => {
                reply.complete();
                let latency_ms = u64::try_from((now - started).num_milliseconds()).unwrap_or(0);
                EventKind::MessageCompleted {
                    message: reply.clone(),
                    latency_ms,
                }
            }
            End::Failed(e) => {
                reply.fail(storable(&e.to_string()).into_owned());
                EventKind::MessageFailed(reply.clone())
            }
            End::Taken => {
                reply.fail(super::live_reaper::INTERRUPTED.into());
                EventKind::MessageFailed(reply.clone())
            }
            End::Cancelled(_) => {
                reply.cancel();
                EventKind::MessageCancelled(reply.clone())
            }
        };
        let event = inner.tag_provider(
            Event::new(now, actor.user.clone(), reply.chat_id(), kind)
                .with_request_id(actor.request_id.clone()),
        );
        let charge = super::usage::reply_entry(&actor.user, &reply, prompt_estimate);
        let stored = match store_final(&inner, &reply, &event, charge.as_ref()).await {
            Ok(stored) => stored,
            Err(crate::ports::StoreError::Unavailable(e)) => {
                // The lease is left to lapse: whoever notices marks the reply failed
                // with the text the live state holds.
                tracing::error!(error = %e, message_id = %reply.id(), "the reply could not be stored");
                return Err(SendError::Unavailable(e));
            }
            Err(e) => {
                // Anything but unavailable storage: store the reply failed, so that
                // it does not stay `streaming` and the chat is not wedged.
                tracing::error!(error = %e, message_id = %reply.id(), "storing the reply failed; storing it failed");
                store_failed_instead(&inner, &actor, &mut reply, &e).await?
            }
        };
        if let (true, Some(observer)) = (stored, &inner.observer) {
            observer.reply_stored(&actor, &reply);
        }
        if !stored {
            // Cancelled or deleted meanwhile (possibly by another replica): report what is stored.
            match inner.messages.find_message(reply.id()).await? {
                Some(m) => reply = m,
                None => {
                    writer.finish(LiveEnd::Failed).await;
                    return Err(SendError::NotFound);
                }
            }
        }
        writer.finish(live_end(reply.status())).await;
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

/// The start of the error stored on a reply whose final write was refused.
pub(crate) const NOT_STORED: &str = "the reply could not be stored";

/// How live state names a stored status.
pub(crate) fn live_end(status: MessageStatus) -> LiveEnd {
    match status {
        MessageStatus::Complete => LiveEnd::Complete,
        MessageStatus::Cancelled => LiveEnd::Cancelled,
        MessageStatus::Failed | MessageStatus::Streaming => LiveEnd::Failed,
    }
}

/// Stores `reply` as failed after its final write was refused (not for unavailability).
async fn store_failed_instead(
    inner: &Inner,
    actor: &Actor,
    reply: &mut Message,
    cause: &crate::ports::StoreError,
) -> Result<bool, SendError> {
    reply.fail(storable(&format!("{NOT_STORED}: {cause}")).into_owned());
    let event = inner.tag_provider(
        Event::new(
            inner.clock.now(),
            actor.user.clone(),
            reply.chat_id(),
            EventKind::MessageFailed(reply.clone()),
        )
        .with_request_id(actor.request_id.clone()),
    );
    match inner.messages.finish_reply(reply, &event, None).await {
        Ok(stored) => Ok(stored),
        Err(e) => {
            // Not even that: keep the text out of it, as a last resort.
            tracing::error!(error = %e, message_id = %reply.id(), "storing the failed reply failed too; storing it without its text");
            reply.drop_content();
            let event = inner.tag_provider(
                Event::new(
                    inner.clock.now(),
                    actor.user.clone(),
                    reply.chat_id(),
                    EventKind::MessageFailed(reply.clone()),
                )
                .with_request_id(actor.request_id.clone()),
            );
            Ok(inner.messages.finish_reply(reply, &event, None).await?)
        }
    }
}
