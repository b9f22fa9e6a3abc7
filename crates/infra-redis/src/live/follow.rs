//! Following a reply: subscribe to its channel first, then read the buffer from the
//! offset (so nothing appended in between is missed), then take each published piece
//! that continues the text; anything out of line (a gap, a lagged receiver, a
//! (re)subscription, a reconnection, or a quiet [`POLL_INTERVAL`]) re-reads the buffer from where the
//! follower is. Deltas are therefore contiguous and never doubled.

use super::{RedisLive, POLL_INTERVAL, POLL_UNSUBSCRIBED};
use crate::hub::{Note, Subscription};
use domain::ports::{LiveEnd, LiveError, LiveEvent, LiveResult, LiveStream, LiveText};
use domain::MessageId;
use futures::StreamExt;
use std::collections::VecDeque;
use tokio::sync::broadcast::error::RecvError;

struct Follower {
    live: RedisLive,
    reply: MessageId,
    sub: Subscription,
    at: u64,
    poll: std::time::Duration,
    out: VecDeque<Result<LiveEvent, LiveError>>,
    done: bool,
}

impl Follower {
    /// Queues what `read` holds past the follower's offset, and the end if there is one.
    fn take(&mut self, read: Option<LiveText>) {
        let Some(read) = read else { return };
        if !read.text.is_empty() {
            let offset = self.at;
            self.at = read.len;
            self.out.push_back(Ok(LiveEvent::Delta {
                offset,
                text: read.text,
            }));
        }
        if let Some(end) = read.end {
            self.end(end);
        }
    }

    fn end(&mut self, end: LiveEnd) {
        self.out.push_back(Ok(LiveEvent::End(end)));
        self.done = true;
    }

    async fn reread(&mut self) {
        match self.live.read_raw(self.reply, self.at).await {
            Ok(r) => self.take(r),
            Err(e) => {
                self.out.push_back(Err(e));
                self.done = true;
            }
        }
    }

    async fn step(&mut self) {
        let note = tokio::select! {
            n = self.sub.notes.recv() => n,
            () = tokio::time::sleep(self.poll) => return self.reread().await,
        };
        match note {
            Ok(Note::Delta { offset, text }) => {
                let end = offset + text.len() as u64;
                if end <= self.at {
                    return;
                }
                if offset > self.at {
                    return self.reread().await;
                }
                let skip = usize::try_from(self.at - offset).unwrap_or(usize::MAX);
                match text.get(skip..) {
                    Some(rest) if !rest.is_empty() => {
                        self.out.push_back(Ok(LiveEvent::Delta {
                            offset: self.at,
                            text: rest.to_owned(),
                        }));
                        self.at = end;
                    }
                    _ => self.reread().await,
                }
            }
            // Whatever was appended before the end is in the buffer: read it, then end.
            Ok(Note::End(_)) | Ok(Note::Resync) | Err(RecvError::Lagged(_)) => self.reread().await,
            Err(RecvError::Closed) => {
                self.out
                    .push_back(Err(LiveError::Unavailable("the subscriber stopped".into())));
                self.done = true;
            }
        }
    }
}

pub(super) async fn follow(live: RedisLive, reply: MessageId, from: u64) -> LiveResult<LiveStream> {
    let channel = live.keys(reply).channel;
    let (sub, subscribed) = live.hub().subscribe(&channel).await;
    let first = live.read_raw(reply, from).await?;
    let mut f = Follower {
        live,
        reply,
        sub,
        at: from,
        poll: if subscribed {
            POLL_INTERVAL
        } else {
            POLL_UNSUBSCRIBED
        },
        out: VecDeque::new(),
        done: false,
    };
    f.take(first);
    Ok(futures::stream::unfold(f, |mut f| async move {
        loop {
            if let Some(item) = f.out.pop_front() {
                return Some((item, f));
            }
            if f.done {
                return None;
            }
            f.step().await;
        }
    })
    .boxed())
}
