//! [`Guarded`]: the stream of one accepted connection, between the socket and actix-http's
//! dispatcher. It decodes a copy of what the client sends with actix-http's own HTTP/1
//! codec, times each head and body, holds back what the dispatcher would refuse with an
//! empty body, and answers that itself once every earlier response is finished.

use super::answer::{self, Answer};
use super::{ConnHandle, CutCounter, Limits, Shared};
use actix_http::h1::{Codec, Message, MessageType};
use bytes::{Buf, Bytes, BytesMut};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where the client is in its request stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending a head (or, on a fresh connection, not yet sending anything).
    Head,
    /// Sending a body.
    Body,
    /// Between requests: idle time is the dispatcher's keep-alive timer's business.
    Between,
}

/// What the guard decided about a client that broke the rules.
#[derive(Debug)]
enum Cut {
    /// Write this answer once every earlier response is finished, then close.
    Answer(Answer),
    /// Writing the answer.
    Writing(Bytes),
    /// End the input now: the dispatcher fails the request whose body is incomplete (400),
    /// finishes any response under way, and closes.
    Close,
    /// The input is ended.
    Closed,
}

/// An accepted connection, guarded (see the module docs).
pub struct Guarded<T> {
    inner: T,
    limits: Limits,
    shadow: Codec,
    unparsed: BytesMut,
    phase: Phase,
    deadline: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// Heads decoded and passed on to the dispatcher.
    decoded: u64,
    /// Whether the dispatcher's last write was not taken whole (its buffer is not empty).
    write_pending: bool,
    cut: Option<Cut>,
    linger: bool,
    shut_down: bool,
    shared: Rc<Shared>,
    count: Option<CutCounter>,
}

impl<T> std::fmt::Debug for Guarded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("phase", &self.phase)
            .field("cut", &self.cut)
            .finish_non_exhaustive()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Guarded<T> {
    /// Guards a connection that has just been accepted: its first head is due within
    /// `limits.head` from now. `count` is told the status of each answer it writes.
    pub fn new(inner: T, limits: Limits, count: Option<CutCounter>) -> Self {
        let at = Instant::now() + limits.head;
        Self {
            inner,
            limits,
            shadow: Codec::default(),
            unparsed: BytesMut::new(),
            phase: Phase::Head,
            deadline: Some(at),
            timer: Box::pin(tokio::time::sleep_until(at)),
            decoded: 0,
            write_pending: false,
            cut: None,
            linger: false,
            shut_down: false,
            shared: Rc::default(),
            count,
        }
    }

    /// The handle to put in the connection's data, for the tracking middleware.
    pub fn handle(&self) -> ConnHandle {
        ConnHandle(self.shared.clone())
    }

    fn arm(&mut self, at: Option<Instant>) {
        self.deadline = at;
        if let Some(at) = at {
            self.timer.as_mut().reset(at);
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        let budget = match phase {
            Phase::Head => Some(self.limits.head),
            Phase::Body => Some(self.limits.body),
            Phase::Between => None,
        };
        self.arm(budget.map(|b| Instant::now() + b));
    }

    /// Whether the deadline has passed (registering a wake-up for it when not).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(at) = self.deadline else {
            return false;
        };
        if Instant::now() >= at || self.timer.as_mut().poll(cx).is_ready() {
            self.deadline = None;
            return true;
        }
        false
    }

    /// No response under way or queued, nothing left in the dispatcher's write buffer.
    fn idle(&self) -> bool {
        self.shared.in_service.get() == 0
            && self.shared.entered.get() == self.decoded
            && !self.write_pending
    }

    fn on_deadline(&mut self) {
        match self.phase {
            Phase::Head => {
                self.cut = Some(Cut::Answer(answer::timeout(self.limits.head)));
            }
            Phase::Body => {
                tracing::info!(
                    budget_ms = self.limits.body.as_millis() as u64,
                    "request body not received in time: failing the request and closing the connection"
                );
                self.cut = Some(Cut::Close);
            }
            Phase::Between => {}
        }
    }

    /// Decodes a copy of `fresh`; returns how many of its bytes go on to the dispatcher
    /// (fewer than all when they hold something it would refuse: then a cut is set).
    fn inspect(&mut self, fresh: &[u8]) -> usize {
        self.unparsed.extend_from_slice(fresh);
        loop {
            if self.phase == Phase::Between && !self.unparsed.is_empty() {
                self.enter(Phase::Head);
            }
            let unconsumed = self.unparsed.len();
            match tokio_util::codec::Decoder::decode(&mut self.shadow, &mut self.unparsed) {
                Ok(Some(Message::Item(_))) => {
                    self.decoded += 1;
                    match self.shadow.message_type() {
                        MessageType::None => self.enter(Phase::Between),
                        MessageType::Payload | MessageType::Stream => self.enter(Phase::Body),
                    }
                }
                Ok(Some(Message::Chunk(Some(_)))) => {}
                Ok(Some(Message::Chunk(None))) => self.enter(Phase::Between),
                Ok(None) => return fresh.len(),
                Err(e) => {
                    // The refused message starts `unconsumed` bytes before the end.
                    let keep = fresh.len().saturating_sub(unconsumed);
                    self.unparsed.clear();
                    self.arm(None);
                    self.cut = Some(if self.phase == Phase::Body {
                        tracing::info!(error = %e, "malformed request body: failing the request and closing the connection");
                        Cut::Close
                    } else {
                        Cut::Answer(answer::refused(&e))
                    });
                    return keep;
                }
            }
        }
    }

    /// Carries out the cut; `Ready(Ok(()))` with nothing read ends the dispatcher's input.
    fn poll_cut(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.cut.take() {
                Some(Cut::Answer(answer)) => {
                    if !self.idle() {
                        // Woken when a response finishes or a write completes.
                        self.cut = Some(Cut::Answer(answer));
                        return Poll::Pending;
                    }
                    if let Some(count) = &self.count {
                        count(answer.status);
                    }
                    self.arm(Some(Instant::now() + self.limits.linger));
                    self.cut = Some(Cut::Writing(answer.bytes));
                }
                Some(Cut::Writing(mut bytes)) => {
                    if self.expired(cx) {
                        self.cut = Some(Cut::Closed);
                        return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                    }
                    while !bytes.is_empty() {
                        match Pin::new(&mut self.inner).poll_write(cx, &bytes) {
                            Poll::Ready(Ok(0)) => {
                                self.cut = Some(Cut::Closed);
                                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                            }
                            Poll::Ready(Ok(n)) => bytes.advance(n),
                            Poll::Ready(Err(e)) => {
                                self.cut = Some(Cut::Closed);
                                return Poll::Ready(Err(e));
                            }
                            Poll::Pending => {
                                self.cut = Some(Cut::Writing(bytes));
                                return Poll::Pending;
                            }
                        }
                    }
                    self.arm(None);
                    self.cut = Some(Cut::Close);
                }
                Some(Cut::Close) | Some(Cut::Closed) | None => {
                    self.linger = true;
                    self.cut = Some(Cut::Closed);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.shared.set_waker(cx.waker());
        loop {
            if this.cut.is_some() {
                return this.poll_cut(cx);
            }
            // Read first: bytes that arrived before the deadline count even when this task
            // runs late (a busy machine).
            let before = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                Poll::Pending => {
                    if this.expired(cx) {
                        this.on_deadline();
                        continue;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
            let fresh = buf.filled().len() - before;
            if fresh == 0 {
                return Poll::Ready(Ok(())); // the client closed its side
            }
            let keep = this.inspect(&buf.filled()[before..]);
            buf.set_filled(before + keep);
            // A client that keeps dribbling never lets the read above be pending.
            if this.cut.is_none() && this.deadline.is_some_and(|at| Instant::now() >= at) {
                this.deadline = None;
                this.on_deadline();
            }
            if keep > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        match &r {
            Poll::Ready(Ok(n)) if *n == data.len() => {
                this.write_pending = false;
                if matches!(this.cut, Some(Cut::Answer(_))) {
                    cx.waker().wake_by_ref();
                }
            }
            Poll::Ready(Ok(_)) | Poll::Pending => this.write_pending = true,
            Poll::Ready(Err(_)) => {}
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    /// Sends FIN; after a cut, then reads and drops what the client still sends (for
    /// `limits.linger` at most), so closing does not reset the connection before the
    /// client has read the answer.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut_down {
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.shut_down = true;
            if !this.linger {
                return Poll::Ready(Ok(()));
            }
            this.arm(Some(Instant::now() + this.limits.linger));
        }
        if !this.linger {
            return Poll::Ready(Ok(()));
        }
        let mut scratch = [0u8; 2048];
        loop {
            if this.deadline.is_none() || this.expired(cx) {
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
