//! The draining flag: set when a shutdown signal arrives, so `/readyz` answers 503
//! and load balancers stop routing here while in-flight requests and streams finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether the service is shutting down.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Marks the service as draining.
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the service is draining.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
