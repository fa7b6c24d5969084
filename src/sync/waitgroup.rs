//! `WaitGroup` (Go: sync/waitgroup.go, 1.19).

use super::sema::{semacquire, semrelease};
use crate::sched::g::WaitReason;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Waits for a collection of goroutines to finish (Go's `sync.WaitGroup`).
///
/// The main goroutine calls [`add`](WaitGroup::add) to set the number of goroutines to
/// wait for; each of them calls [`done`](WaitGroup::done) when finished; [`wait`]
/// parks until the count is zero. `done` costs one atomic operation unless it is the
/// last one with waiters.
///
/// [`wait`]: WaitGroup::wait
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// gort::run(|| {
///     let wg = Arc::new(gort::sync::WaitGroup::new());
///     let hits = Arc::new(AtomicUsize::new(0));
///     for _ in 0..100 {
///         wg.add(1);
///         let (wg, hits) = (wg.clone(), hits.clone());
///         gort::go(move || {
///             hits.fetch_add(1, Ordering::Relaxed);
///             wg.done();
///         });
///     }
///     wg.wait();
///     assert_eq!(hits.load(Ordering::Relaxed), 100);
/// });
/// ```
#[derive(Default)]
pub struct WaitGroup {
    /// High 32 bits: counter; low 32 bits: number of waiters (Go's `state1`).
    state: AtomicU64,
    /// Semaphore the waiters sleep on (Go: `sema`).
    sema: AtomicU32,
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("WaitGroup")
            .field("counter", &((s >> 32) as i32))
            .field("waiters", &(s as u32))
            .finish()
    }
}

impl WaitGroup {
    /// A WaitGroup with counter zero.
    pub const fn new() -> WaitGroup {
        WaitGroup {
            state: AtomicU64::new(0),
            sema: AtomicU32::new(0),
        }
    }

    /// Adds `delta` (which may be negative) to the counter. At zero, every waiter is
    /// released.
    ///
    /// # Panics
    /// `sync: negative WaitGroup counter` if the counter goes below zero, and Go's
    /// misuse panics if `add` races with `wait` on a counter of zero.
    pub fn add(&self, delta: isize) {
        let d = (delta as i64 as u64) << 32;
        // acq_rel; the release pairs with wait's acquire load and CAS (done publishes the
        // goroutine's work to the waiter); the acquire pairs with the earlier adds, so the
        // last one passes their work on to the waiters it wakes
        let state = self.state.fetch_add(d, Ordering::AcqRel).wrapping_add(d);
        let v = (state >> 32) as i32;
        let w = state as u32;
        if v < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        if w != 0 && delta > 0 && v as isize == delta {
            panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
        }
        if v > 0 || w == 0 {
            return;
        }
        // Counter is 0 and there are waiters: nobody may change the state now.
        // acquire; pairs with the AcqRel RMWs of a concurrent add or wait, the misuse this
        // catches (no pair is needed when used right: Relaxed would do)
        if self.state.load(Ordering::Acquire) != state {
            panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
        }
        self.state.store(0, Ordering::Release); // release; pairs with the acquire re-check in wait
        for i in 0..w {
            semrelease(&self.sema, false);
            crate::sched::park::preempt_every(i);
        }
    }

    /// Decrements the counter by one.
    pub fn done(&self) {
        self.add(-1);
    }

    /// Parks the calling goroutine (or blocks the thread) until the counter is zero.
    ///
    /// # Panics
    /// `sync: WaitGroup is reused before previous Wait has returned` (Go's misuse panic)
    /// if an `add` restarts the counter before this wait has seen it reach zero.
    pub fn wait(&self) {
        loop {
            let state = self.state.load(Ordering::Acquire); // acquire; pairs with add's release
            if state >> 32 == 0 {
                return;
            }
            // acq_rel; pairs with add's fetch_add: the add that brings the counter to zero
            // after this CAS sees us among the waiters and releases us
            if self
                .state
                .compare_exchange(state, state + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                semacquire(&self.sema, false, WaitReason::WaitGroupWait);
                // acquire; pairs with add's release store of 0 before it woke us
                if self.state.load(Ordering::Acquire) != 0 {
                    panic!("sync: WaitGroup is reused before previous Wait has returned");
                }
                return;
            }
        }
    }
}
