//! The one bridge from the synchronous script thread into the async LXD client.
//!
//! Scripts run on their own thread (never a tokio worker: `block_on` there panics). Every call
//! into the client goes through [`Bridge::block_on`], which races the call against the run's
//! interrupt token, so Ctrl-C stops even a call that is blocked on the network.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::errors::{RhaiResultOf, interrupted, lxd_error};
use crate::lxd;

/// The interrupt of the current evaluation: Ctrl-C trips it; the REPL resets it between lines.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    token: Arc<RwLock<CancellationToken>>,
    /// Mirrors the token for the per-operation check, which must be cheap.
    triggered: Arc<AtomicBool>,
}

impl Interrupt {
    /// The token of the current evaluation.
    pub fn token(&self) -> CancellationToken {
        match self.token.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Trips the interrupt: blocked calls return at once and the script stops.
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        self.token().cancel();
    }

    /// True once tripped.
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Relaxed)
    }

    /// Starts a fresh evaluation with an untripped token.
    pub fn reset(&self) {
        let mut guard = match self.token.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = CancellationToken::new();
        self.triggered.store(false, Ordering::SeqCst);
    }
}

/// Runs async client calls from the script thread, cancellable by the interrupt.
#[derive(Debug, Clone)]
pub struct Bridge {
    handle: Handle,
    interrupt: Interrupt,
}

impl Bridge {
    /// A bridge onto a runtime.
    pub fn new(handle: Handle, interrupt: Interrupt) -> Self {
        Bridge { handle, interrupt }
    }

    /// The interrupt this bridge obeys.
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// Runs `fut` to completion, or stops at once with an uncatchable termination on Ctrl-C.
    pub fn block_on<T>(&self, fut: impl Future<Output = lxd::Result<T>>) -> RhaiResultOf<T> {
        let token = self.interrupt.token();
        if token.is_cancelled() {
            return Err(interrupted());
        }
        self.handle.block_on(async {
            tokio::select! {
                biased;
                _ = token.cancelled() => Err(interrupted()),
                result = fut => result.map_err(lxd_error),
            }
        })
    }

    /// Starts a task on the runtime (for work whose progress the script thread consumes).
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }

    /// Waits for a future without racing it against the interrupt: only for futures that obey
    /// the interrupt themselves (an exec sends SIGINT to its command first, then ends).
    pub fn wait<F: Future>(&self, fut: F) -> F::Output {
        self.handle.block_on(fut)
    }

    /// Sleeps, interruptibly.
    pub fn sleep(&self, duration: std::time::Duration) -> RhaiResultOf<()> {
        self.block_on(async {
            tokio::time::sleep(duration).await;
            Ok(())
        })
    }
}
