//! `Condvar` (Go: sync/cond.go): goroutines wait for a condition while releasing a
//! [`Mutex`](super::Mutex).
//!
//! Each waiter is an entry in a FIFO list with a state word it and its wakers race on:
//! 0 waiting (not yet parked), 1 parked, 2 notified, 3 timed out. A notifier claims an
//! entry by moving it from 0 or 1 to 2 (readying it if it was parked); a timeout moves it
//! from 0 or 1 to 3. The waiter's park is cancelled if it was claimed before it parked,
//! so no notification is lost between releasing the mutex and parking.

use super::mutex::MutexGuard;
use crate::os::lock::RawLock;
use crate::sched::g::{WaitReason, G};
use crate::sched::m::getg;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const WAITING: u32 = 0;
const PARKED: u32 = 1;
const NOTIFIED: u32 = 2;
const TIMED_OUT: u32 = 3;

struct CvWaiter {
    state: AtomicU32,
    g: Option<&'static G>,
}

impl CvWaiter {
    /// Moves the waiter from WAITING/PARKED to `to`; returns the previous state, or
    /// `None` if it was already claimed. Readies it if it was parked.
    fn claim(&self, to: u32) -> Option<u32> {
        let mut s = self.state.load(Ordering::Acquire); // acquire; as the CAS below
        loop {
            if s != WAITING && s != PARKED {
                return None;
            }
            // acq_rel; notifiers, the timeout and the waiter's own WAITING -> PARKED CAS
            // pair with each other on this word: exactly one claim wins, and the waiter's
            // acquire loads in wait_inner see the winner's state
            match self
                .state
                .compare_exchange(s, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(prev) => return Some(prev),
                Err(cur) => s = cur,
            }
        }
    }

    /// Wakes the waiter after a successful claim from `prev`.
    fn wake(&self, prev: u32) {
        match self.g {
            Some(g) if prev == PARKED => crate::sched::park::goready(g),
            Some(_) => {} // it had not parked yet: its park is cancelled
            None => crate::os::futex::wake(&self.state, 1),
        }
    }
}

/// A condition variable for gort's [`Mutex`](super::Mutex) (Go's `sync.Cond`). Waiting
/// parks the goroutine. As with `std::sync::Condvar`, re-check the condition in a loop.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Condvar, Mutex};
/// gort::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let p2 = pair.clone();
///     gort::go(move || {
///         *p2.0.lock() = true;
///         p2.1.notify_one();
///     });
///     let mut ready = pair.0.lock();
///     while !*ready {
///         pair.1.wait(&mut ready);
///     }
/// });
/// ```
#[derive(Default)]
pub struct Condvar {
    lock: RawLock,
    /// Protected by `lock`.
    waiters: UnsafeCell<VecDeque<Arc<CvWaiter>>>,
}

// SAFETY: `waiters` is only touched with `lock` held.
unsafe impl Sync for Condvar {}
// SAFETY: as above.
unsafe impl Send for Condvar {}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Condvar { .. }")
    }
}

/// Whether [`Condvar::wait_timeout`] returned because the time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended by timeout rather than a notification.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A new condition variable.
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Releases the guard's mutex, parks until notified, and re-locks.
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        self.wait_inner(guard, None);
    }

    /// Like [`wait`](Condvar::wait), but gives up after `timeout`.
    pub fn wait_timeout<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        WaitTimeoutResult(self.wait_inner(guard, Some(timeout)))
    }

    /// Returns whether it timed out.
    fn wait_inner<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Option<Duration>,
    ) -> bool {
        let w = Arc::new(CvWaiter {
            state: AtomicU32::new(WAITING),
            g: getg(),
        });
        self.lock.lock();
        // SAFETY: lock held.
        unsafe { (*self.waiters.get()).push_back(w.clone()) };
        self.lock.unlock();
        let m = guard.mutex();
        m.raw().unlock();
        if let Some(d) = timeout {
            if w.g.is_some() {
                let tw = w.clone();
                crate::time::add_timer(crate::time::heap::Entry {
                    when: crate::time::heap::nanotime()
                        .saturating_add(d.as_nanos().min(i64::MAX as u128 / 2) as i64),
                    seq: 0,
                    action: crate::time::heap::Action::Call(Box::new(move || {
                        if let Some(prev) = tw.claim(TIMED_OUT) {
                            tw.wake(prev);
                        }
                    })),
                });
            }
        }
        match w.g {
            Some(_) => {
                // gopark's commit: park only if nobody claimed us yet; acq_rel, pairs with
                // claim's CAS (if a claim came first, the park is cancelled)
                let mut park = || {
                    w.state
                        .compare_exchange(WAITING, PARKED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                };
                crate::sched::park::gopark(Some(&mut park), WaitReason::SyncCondWait);
            }
            None => {
                let deadline = timeout.map(|d| std::time::Instant::now() + d);
                // acquire; pairs with claim's CAS (the notifier or our own timeout claim)
                while w.state.load(Ordering::Acquire) == WAITING {
                    let left =
                        deadline.map(|t| t.saturating_duration_since(std::time::Instant::now()));
                    if left == Some(Duration::ZERO) {
                        w.claim(TIMED_OUT);
                        break;
                    }
                    crate::os::futex::wait(&w.state, WAITING, left);
                }
            }
        }
        let timed_out = w.state.load(Ordering::Acquire) == TIMED_OUT; // acquire; pairs with claim's CAS
        if timed_out {
            self.lock.lock();
            // SAFETY: lock held.
            unsafe { (*self.waiters.get()).retain(|x| !Arc::ptr_eq(x, &w)) };
            self.lock.unlock();
        }
        m.raw().lock();
        timed_out
    }

    /// Wakes one waiting goroutine, if any.
    pub fn notify_one(&self) {
        self.lock.lock();
        let mut woken = None;
        // SAFETY: lock held.
        let q = unsafe { &mut *self.waiters.get() };
        while let Some(w) = q.pop_front() {
            if let Some(prev) = w.claim(NOTIFIED) {
                woken = Some((w, prev));
                break;
            }
        }
        self.lock.unlock();
        if let Some((w, prev)) = woken {
            w.wake(prev);
        }
    }

    /// Wakes every waiting goroutine.
    pub fn notify_all(&self) {
        self.lock.lock();
        // SAFETY: lock held.
        let all = std::mem::take(unsafe { &mut *self.waiters.get() });
        self.lock.unlock();
        for (i, w) in all.into_iter().enumerate() {
            if let Some(prev) = w.claim(NOTIFIED) {
                w.wake(prev);
            }
            crate::sched::park::preempt_every(i as u32);
        }
    }
}
