//! Slow and malformed clients, per connection: every request head on a connection (the
//! first and each later one on a keep-alive connection) must arrive within
//! `http.client_request_timeout_ms` of its first byte (else 408 and the connection is
//! closed), and every body within the same budget counted from the end of its head (else
//! the request fails with 400 and the connection is closed). Heads actix-http would refuse
//! with an empty body (431 too large, 400 malformed) are answered with a problem document
//! and an `X-Request-Id`, like every other error.
//!
//! actix-http times only the first head of a connection, and its keep-alive timer stops at
//! the first byte of the next request, so a client dribbling later heads would hold a
//! connection forever; and it drains a chunked body the handler stopped reading for as long
//! as the client sends it. So the service wraps each accepted connection in a [`Guarded`]
//! stream that runs actix-http's own HTTP/1 decoder over what the client sends (a shadow of
//! the dispatcher's), and so knows where each head and body begins and ends. The
//! [`middleware`] tells it when each response is done, so its own answers never cut into
//! another response.

mod answer;
mod guard;
mod track;

pub use guard::Guarded;
pub use track::middleware;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

/// The time budgets of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest time from the first byte of a request head to its end, for every request
    /// (for the first, from the connection's start).
    pub head: Duration,
    /// Longest time from the end of a request head to the end of its body.
    pub body: Duration,
    /// After a cut: how long the client's remaining input is read and dropped before the
    /// socket closes, so closing does not reset the connection before the answer is read.
    pub linger: Duration,
}

impl Limits {
    /// Head and body budgets of `request`, a one-second linger.
    pub fn new(request: Duration) -> Self {
        Self {
            head: request,
            body: request,
            linger: Duration::from_secs(1),
        }
    }
}

/// What a connection's guard and its requests share (all on one worker thread).
#[derive(Debug, Default)]
struct Shared {
    /// Requests handed to the service whose response is not finished.
    in_service: Cell<usize>,
    /// Requests handed to the service so far.
    entered: Cell<u64>,
    /// The connection task, to wake when a response finishes.
    waker: RefCell<Option<Waker>>,
}

impl Shared {
    fn set_waker(&self, w: &Waker) {
        let mut slot = self.waker.borrow_mut();
        if !slot.as_ref().is_some_and(|old| old.will_wake(w)) {
            *slot = Some(w.clone());
        }
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow().as_ref() {
            w.wake_by_ref();
        }
    }
}

/// Counts the answers a guard writes itself, by status (the service's metrics).
pub type CutCounter = std::sync::Arc<dyn Fn(u16) + Send + Sync>;

/// The connection's side of the guard, stored in its connection data for the
/// [`middleware`].
#[derive(Debug, Clone)]
pub struct ConnHandle(Rc<Shared>);
