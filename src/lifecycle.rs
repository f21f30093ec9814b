//! The phase of the service's life, shared by readiness, the API gate and
//! shutdown: an instance that is still migrating or already draining must
//! say so to the load balancer instead of pretending to be ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// Where the instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listening, but migrations are still running: the API answers 503.
    Starting,
    /// Serving traffic.
    Serving,
    /// Stopping: no new connections, in-flight work finishing.
    Draining,
}

/// A cheap handle to the current phase.
#[derive(Debug, Clone)]
pub struct Lifecycle(Arc<AtomicU8>);

impl Lifecycle {
    /// A lifecycle in `phase`.
    pub fn new(phase: Phase) -> Lifecycle {
        Lifecycle(Arc::new(AtomicU8::new(phase as u8)))
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    /// Moves to `phase`.
    pub fn enter(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Release);
    }

    /// Starting -> Serving, unless a stop signal already moved us on to
    /// Draining (which must not be forgotten).
    pub fn finish_starting(&self) {
        let _ = self.0.compare_exchange(
            Phase::Starting as u8,
            Phase::Serving as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}
