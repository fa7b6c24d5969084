//! The runtime's own lock (Go: lock_futex.go `lock`/`unlock`): a futex word that spins
//! briefly, then sleeps. Unlike `std::sync::Mutex` it has no guard, so a goroutine can
//! take several (a `select` over many channels) and release them from g0 in `gopark`'s
//! unlock function.
//!
//! Key states: 0 unlocked, 1 locked, 2 locked with possible sleepers.

use std::sync::atomic::{AtomicU32, Ordering};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const SLEEPING: u32 = 2;
/// Go: `active_spin` rounds of `active_spin_cnt` pauses, then `passive_spin` yields.
const ACTIVE_SPIN: u32 = 4;
const ACTIVE_SPIN_CNT: u32 = 30;

/// A spin-then-futex lock.
#[derive(Debug, Default)]
pub(crate) struct RawLock {
    key: AtomicU32,
}

impl RawLock {
    /// An unlocked lock.
    pub(crate) const fn new() -> RawLock {
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
        let spin = if crate::num_cpu() > 1 { ACTIVE_SPIN } else { 0 };
        loop {
            for _ in 0..spin {
                for _ in 0..ACTIVE_SPIN_CNT {
                    std::hint::spin_loop();
                }
                if self.key.load(Ordering::Relaxed) == UNLOCKED
                    && self
                        .key
                        .compare_exchange(UNLOCKED, wait, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    return;
                }
            }
            std::thread::yield_now();
            if self.key.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .key
                    .compare_exchange(UNLOCKED, wait, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
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

#[cfg(test)]
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
