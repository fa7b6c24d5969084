//! `Once` (Go: sync/once.go) and `Semaphore`.

use super::mutex::RawMutex;
use super::sema::{cansemacquire, semacquire, semrelease};
use crate::sched::g::WaitReason;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Runs a function exactly once (Go's `sync.Once`): callers arriving while it runs park
/// until it has finished.
///
/// ```
/// static INIT: gort::sync::Once = gort::sync::Once::new();
/// gort::run(|| {
///     let hs: Vec<_> = (0..4).map(|_| gort::go(|| INIT.call_once(|| println!("once")))).collect();
///     for h in hs { h.join().unwrap(); }
///     assert!(INIT.is_completed());
/// });
/// ```
#[derive(Default, Debug)]
pub struct Once {
    done: AtomicBool,
    m: RawMutex,
}

impl std::fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawMutex")
    }
}

impl Once {
    /// A new `Once`.
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            m: RawMutex::new(),
        }
    }

    /// Runs `f` if no call has run yet; otherwise waits for that call to finish. If `f`
    /// panics, the `Once` counts as done (as in Go).
    pub fn call_once(&self, f: impl FnOnce()) {
        // acquire; pairs with the release store in Unlock::drop (f's effects are visible)
        if self.done.load(Ordering::Acquire) {
            return;
        }
        self.m.lock();
        struct Unlock<'a>(&'a Once);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.done.store(true, Ordering::Release); // release; pairs with the acquire loads of `done`
                self.0.m.unlock();
            }
        }
        let guard = Unlock(self);
        // relaxed: under `m`, whose lock orders this after the store of a call that ran
        if !self.done.load(Ordering::Relaxed) {
            f();
        }
        drop(guard);
    }

    /// Whether a call has completed.
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire) // acquire; pairs with the release store in call_once
    }
}

/// A counting semaphore whose waiters are goroutines (parked) or threads (Go's runtime
/// semaphore, as `golang.org/x/sync/semaphore` offers it to users).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// gort::run(|| {
///     let sem = Arc::new(gort::sync::Semaphore::new(2));
///     let inside = Arc::new(AtomicUsize::new(0));
///     let hs: Vec<_> = (0..10).map(|_| {
///         let (sem, inside) = (sem.clone(), inside.clone());
///         gort::go(move || {
///             sem.acquire();
///             assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
///             gort::gosched();
///             inside.fetch_sub(1, Ordering::SeqCst);
///             sem.release();
///         })
///     }).collect();
///     for h in hs { h.join().unwrap(); }
/// });
/// ```
#[derive(Debug, Default)]
pub struct Semaphore {
    permits: AtomicU32,
}

impl Semaphore {
    /// A semaphore with `permits` available.
    pub const fn new(permits: u32) -> Semaphore {
        Semaphore {
            permits: AtomicU32::new(permits),
        }
    }

    /// Takes a permit, parking until one is available.
    pub fn acquire(&self) {
        semacquire(&self.permits, false, WaitReason::Semacquire);
    }

    /// Takes a permit if one is available now.
    pub fn try_acquire(&self) -> bool {
        cansemacquire(&self.permits)
    }

    /// Returns a permit, waking a waiter if any.
    pub fn release(&self) {
        semrelease(&self.permits, false);
    }

    /// Permits available now.
    pub fn available(&self) -> u32 {
        self.permits.load(Ordering::Relaxed)
    }
}
