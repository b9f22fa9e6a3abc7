//! The provider call overlapped with the turn's commit (DESIGN.md §6): it starts as
//! soon as the decision inside the turn's transaction knows the prompt, and its output
//! waits (unread) until the commit returns; a commit that fails drops it, which
//! cancels the provider request. It is started only for a turn the decision accepted
//! after the idempotency key was claimed and the busy check passed under the chat's
//! lock, so a duplicate or concurrent send never reaches the provider.

use crate::ports::{LlmClient, LlmError, LlmRequest, LlmStream};
use futures::channel::oneshot;
use futures::future::Either;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A provider call started before its turn was committed: `None` when it was never
/// started (the decision declined, or never ran).
pub(crate) type EarlyCall =
    Pin<Box<dyn Future<Output = Option<Result<LlmStream, LlmError>>> + Send>>;

/// Starts the early call from inside the decision (no I/O there: it hands the prompt
/// over a channel to the caller's task, which calls the provider).
pub(crate) struct Starter {
    tx: oneshot::Sender<LlmRequest>,
    kept: Arc<Mutex<Option<LlmRequest>>>,
}

impl Starter {
    /// Starts the call with `request`.
    pub(crate) fn start(self, request: LlmRequest) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(request.clone());
        let _ = self.tx.send(request);
    }
}

/// The caller's side: the call, and the request it was started with.
pub(crate) struct Early {
    pub(crate) call: EarlyCall,
    kept: Arc<Mutex<Option<LlmRequest>>>,
}

impl Early {
    /// The request the call was started with, if it was.
    pub(crate) fn request(&self) -> Option<LlmRequest> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A starter for the decision and the call it starts.
pub(crate) fn early_call(llm: Arc<dyn LlmClient>) -> (Starter, Early) {
    let (tx, rx) = oneshot::channel::<LlmRequest>();
    let kept = Arc::new(Mutex::new(None));
    let call: EarlyCall = Box::pin(async move {
        let request = rx.await.ok()?;
        Some(llm.stream(request).await)
    });
    (
        Starter {
            tx,
            kept: kept.clone(),
        },
        Early { call, kept },
    )
}

/// Awaits `store` while driving `early`'s call; returns the store's result and the call
/// as far as it got (still pending, or done).
pub(crate) async fn overlap<T>(store: impl Future<Output = T>, mut early: Early) -> (T, Early) {
    let store = std::pin::pin!(store);
    match futures::future::select(store, early.call).await {
        Either::Left((stored, call)) => {
            early.call = call;
            (stored, early)
        }
        Either::Right((called, store)) => {
            let stored = store.await;
            early.call = Box::pin(futures::future::ready(called));
            (stored, early)
        }
    }
}
