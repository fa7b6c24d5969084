//! The runtime's own lock (Go: lock_futex.go `lock`/`unlock`): a futex word that spins
//! briefly, then sleeps. Unlike `std::sync::Mutex` it has no guard, so a goroutine can
//! take several (a `select` over many channels) and release them from g0 in `gopark`'s
//! unlock function.
//!
//! Key states: 0 unlocked, 1 locked, 2 locked with possible sleepers.

use crate::loom::AtomicU32;
use std::sync::atomic::Ordering;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const SLEEPING: u32 = 2;
/// Go: `active_spin` rounds of `active_spin_cnt` pauses, then `passive_spin` yields.
#[cfg_attr(loom, allow(dead_code))]
const ACTIVE_SPIN: u32 = 4;
const ACTIVE_SPIN_CNT: u32 = 30;

/// A spin-then-futex lock.
#[derive(Debug)]
pub(crate) struct RawLock {
    key: AtomicU32,
}

impl RawLock {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> RawLock {
        RawLock {
            key: AtomicU32::new(UNLOCKED),
        }
    }

    /// An unlocked lock (loom atomics are not `const`).
    #[cfg(loom)]
    pub(crate) fn new() -> RawLock {
        RawLock {
            key: AtomicU32::new(UNLOCKED),
        }
    }

    /// Takes the lock.
    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .key
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed) // acquire; pairs with unlock's release
            .is_ok()
        {
            return;
        }
        self.lock_slow();
    }

    #[cold]
    fn lock_slow(&self) {
        // Go: lock2. `wait` is what we put back: LOCKED, or SLEEPING once anyone slept.
        let mut wait = self.key.swap(LOCKED, Ordering::Acquire);
        if wait == UNLOCKED {
            return;
        }
        #[cfg(not(loom))]
        let spin = if super::num_cpu() > 1 { ACTIVE_SPIN } else { 0 };
        #[cfg(loom)]
        let spin = 1; // keep the model small: one round
                      // Takes the lock if it looks free, putting back `wait`.
        let try_take = |wait: u32| {
            self.key.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .key
                    .compare_exchange(UNLOCKED, wait, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        };
        loop {
            for i in 0..spin {
                backoff(i);
                if try_take(wait) {
                    return;
                }
            }
            #[cfg(not(loom))]
            std::thread::yield_now();
            #[cfg(loom)]
            loom::thread::yield_now();
            if try_take(wait) {
                return;
            }
            // Sleep, marking the lock as having sleepers.
            if self.key.swap(SLEEPING, Ordering::Acquire) == UNLOCKED {
                return;
            }
            wait = SLEEPING;
            super::futex::wait(&self.key, SLEEPING, None);
        }
    }

    /// Releases the lock.
    #[inline]
    pub(crate) fn unlock(&self) {
        let v = self.key.swap(UNLOCKED, Ordering::Release); // release; pairs with lock's acquire
        if v == UNLOCKED {
            crate::throw!("unlock of unlocked lock");
        }
        if v == SLEEPING {
            super::futex::wake(&self.key, 1);
        }
    }
}

/// Second back-off of a contended lock, doubled on each later retry.
#[cfg(not(loom))]
const BACKOFF_BASE_NS: u64 = 2000;

/// Waits before the `i`-th retry of a contended lock without touching its line: first
/// Go's 30 `PAUSE`s (a lock held for a few instructions is free by then), then
/// `BACKOFF_BASE_NS << (i - 1)` (2, 4, 8 µs). On the 2-vCPU machine we measure on, a
/// cache line moving between the CPUs costs so much that, under real contention, letting
/// the holder's CPU keep it for a few microseconds (taking the lock again meanwhile) is
/// worth far more than the wait: Go's channel producer/consumer benchmarks run 2-3x
/// faster (`bench/chanbench`), a contended `sync::Mutex` ~1.3x. A futex sleep and wake-up,
/// the alternative, costs tens of microseconds. Backing off from the first retry cost
/// skynet (ten children sending to one parent) ~10%; the quick first retry keeps that.
#[cfg(not(loom))]
pub(crate) fn backoff(i: u32) {
    if i == 0 {
        for _ in 0..ACTIVE_SPIN_CNT {
            std::hint::spin_loop();
        }
        return;
    }
    let d = std::time::Duration::from_nanos(BACKOFF_BASE_NS << (i - 1).min(8));
    let t = std::time::Instant::now();
    while t.elapsed() < d {
        for _ in 0..ACTIVE_SPIN_CNT {
            std::hint::spin_loop();
        }
    }
}

/// Loom stand-in: no waiting (the model only needs the retry).
#[cfg(loom)]
pub(crate) fn backoff(_i: u32) {}

impl Default for RawLock {
    fn default() -> RawLock {
        RawLock::new()
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::RawLock;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    /// Two threads contend (spin, then sleep on the futex word): mutual exclusion holds
    /// and nobody sleeps forever (a lost unlock wake-up would hang the model).
    #[test]
    fn lock_unlock_contended() {
        loom::model(|| {
            let l = Arc::new((RawLock::new(), UnsafeCell::new(0u32)));
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let l = l.clone();
                    loom::thread::spawn(move || {
                        l.0.lock();
                        // SAFETY: lock held.
                        l.1.with_mut(|v| unsafe { *v += 1 });
                        l.0.unlock();
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            l.0.lock();
            // SAFETY: lock held.
            assert_eq!(l.1.with(|v| unsafe { *v }), 2);
            l.0.unlock();
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::RawLock;
    use std::cell::UnsafeCell;
    use std::sync::Arc;

    struct Shared(RawLock, UnsafeCell<u64>);
    // SAFETY: the counter is only touched with the lock held.
    unsafe impl Sync for Shared {}

    #[test]
    fn mutual_exclusion_under_contention() {
        let s = Arc::new(Shared(RawLock::new(), UnsafeCell::new(0)));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        s.0.lock();
                        // SAFETY: lock held.
                        unsafe { *s.1.get() += 1 };
                        s.0.unlock();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        s.0.lock();
        // SAFETY: lock held.
        assert_eq!(unsafe { *s.1.get() }, 200_000);
        s.0.unlock();
    }
}
