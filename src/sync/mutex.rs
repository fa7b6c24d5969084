//! `Mutex` (Go: sync/mutex.go, 1.19): barging with brief spinning in normal mode, and a
//! starvation mode, entered after a waiter has waited 1 ms, in which the lock is handed
//! directly from the unlocker to the first waiter.

use super::sema::{semacquire, semrelease};
use crate::sched::g::WaitReason;
use crate::sched::schedt::SCHED;
use crate::time::heap::nanotime;
use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

const LOCKED: i32 = 1;
const WOKEN: i32 = 2;
const STARVING: i32 = 4;
const WAITER_SHIFT: i32 = 3;
/// Go: `starvationThresholdNs`.
const STARVATION_NS: i64 = 1_000_000;
/// Go: `active_spin` (each round backs off as `os::lock::backoff`, not Go's 30 `PAUSE`s).
const ACTIVE_SPIN: u32 = 4;

/// The lock itself, without data (Go's `sync.Mutex`).
#[derive(Default)]
pub(crate) struct RawMutex {
    /// LOCKED | WOKEN | STARVING | waiters << WAITER_SHIFT.
    state: AtomicI32,
    sema: AtomicU32,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            state: AtomicI32::new(0),
            sema: AtomicU32::new(0),
        }
    }

    /// Takes the lock if it is free.
    pub(crate) fn try_lock(&self) -> bool {
        let old = self.state.load(Ordering::Relaxed);
        if old & (LOCKED | STARVING) != 0 {
            return false;
        }
        self.state
            .compare_exchange(old, old | LOCKED, Ordering::Acquire, Ordering::Relaxed) // acquire; pairs with unlock's release
            .is_ok()
    }

    /// Takes the lock, parking while it is held.
    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed) // acquire; pairs with unlock's release
            .is_ok()
        {
            return;
        }
        self.lock_slow();
    }

    /// Slow path of `lock` (Go: sync/mutex.go `lockSlow`). Each round either spins (the
    /// holder runs and may let go soon), or CASes in the next state from `next_state`:
    /// that takes the lock if it was free, else counts us as a waiter and we sleep on
    /// `sema`. A sleeper woken in starvation mode owns the lock already (`take_handoff`);
    /// one woken in normal mode competes again, flagged as `awoke`.
    #[cold]
    fn lock_slow(&self) {
        crate::preempt_point();
        let mut wait_start = 0i64;
        let mut starving = false;
        let mut awoke = false;
        let mut iter = 0u32;
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // Spin only while the lock is held in normal mode: when starving, the unlocker
            // hands the lock to the queue's head, so spinning could never get it.
            if old & (LOCKED | STARVING) == LOCKED && can_spin(iter) {
                awoke = awoke || self.claim_woken(old);
                // wait without touching the state's line (see os::lock::backoff)
                crate::os::lock::backoff(iter);
                iter += 1;
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            let new = next_state(old, starving, awoke);
            // acquire; pairs with unlock's release (when this CAS takes the lock)
            match self
                .state
                .compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if old & (LOCKED | STARVING) == 0 => return, // locked with the CAS
                Ok(_) => {
                    // Counted as a waiter: sleep. A waiter coming back goes to the front.
                    let lifo = wait_start != 0;
                    if wait_start == 0 {
                        wait_start = nanotime();
                    }
                    semacquire(&self.sema, lifo, WaitReason::Semacquire);
                    starving = starving || nanotime() - wait_start > STARVATION_NS;
                    // acquire; pairs with the release of the unlock that woke us
                    old = self.state.load(Ordering::Acquire);
                    if old & STARVING != 0 {
                        self.take_handoff(old, starving);
                        return;
                    }
                    awoke = true;
                    iter = 0;
                }
                Err(cur) => old = cur,
            }
        }
    }

    /// While spinning: sets WOKEN if there are sleepers and nobody else is awake, so that
    /// `unlock` leaves them asleep (we will take the lock). Returns whether we set it.
    #[inline]
    fn claim_woken(&self, old: i32) -> bool {
        old & WOKEN == 0
            && old >> WAITER_SHIFT != 0
            && self
                .state
                .compare_exchange(old, old | WOKEN, Ordering::Relaxed, Ordering::Relaxed) // relaxed: a hint to unlock, publishes no data
                .is_ok()
    }

    /// A waiter woken in starvation mode: the unlocker handed the lock over without
    /// setting LOCKED, and still counts us as a waiter. Set LOCKED, drop our count, and
    /// leave starvation mode if we did not wait long or were the last waiter (staying in
    /// it would hand the lock back and forth between two goroutines, each round a
    /// sleep and a wake-up; Go: sync/mutex.go `lockSlow`).
    #[inline]
    fn take_handoff(&self, old: i32, starving: bool) {
        if old & (LOCKED | WOKEN) != 0 || old >> WAITER_SHIFT == 0 {
            crate::throw!("take_handoff: inconsistent mutex state {old:#x}");
        }
        let mut delta = LOCKED - (1 << WAITER_SHIFT);
        if !starving || old >> WAITER_SHIFT == 1 {
            delta -= STARVING;
        }
        // acquire; pairs with the release of the unlock that handed the lock over
        self.state.fetch_add(delta, Ordering::Acquire);
    }

    /// Releases the lock. Go's `fatal error: sync: unlock of unlocked mutex` if it was
    /// not locked (unreachable through the guard API).
    #[inline]
    pub(crate) fn unlock(&self) {
        let new = self.state.fetch_sub(LOCKED, Ordering::Release) - LOCKED; // release; pairs with lock's acquire
        if new != 0 {
            self.unlock_slow(new);
        }
    }

    #[cold]
    fn unlock_slow(&self, new: i32) {
        if (new + LOCKED) & LOCKED == 0 {
            crate::debug::fatal("sync: unlock of unlocked mutex");
        }
        if new & STARVING == 0 {
            let mut old = new;
            loop {
                // Nobody to wake: no sleepers, or one is awake already (spinning, or woken
                // and not yet back), or the lock was taken again (its holder's unlock will
                // wake), or it went starving after our unlock (hand-offs wake from then on).
                if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                    return;
                }
                // Take the right to wake one sleeper: one waiter fewer, WOKEN set.
                let new = (old - (1 << WAITER_SHIFT)) | WOKEN;
                // release; continues the release sequence of unlock's fetch_sub (which
                // published the data), read by lock_slow's acquire CAS
                match self
                    .state
                    .compare_exchange(old, new, Ordering::Release, Ordering::Relaxed)
                {
                    Ok(_) => {
                        semrelease(&self.sema, false);
                        return;
                    }
                    Err(cur) => old = cur,
                }
            }
        } else {
            // Starvation mode: the lock goes to the first sleeper as is (LOCKED clear, but
            // STARVING keeps newcomers out; it sets LOCKED in take_handoff), and the
            // hand-off makes it run next.
            semrelease(&self.sema, true);
        }
    }
}

/// The state `lock_slow` tries to install over `old`: LOCKED if not starving (a
/// starving lock belongs to the queue, newcomers wait behind it), one more waiter if it
/// stays held, STARVING if we starved and it is still held (unlock expects waiters in a
/// starving lock), and our WOKEN flag cleared if we set it or were woken.
#[inline]
fn next_state(old: i32, starving: bool, awoke: bool) -> i32 {
    let mut new = old;
    if old & STARVING == 0 {
        new |= LOCKED;
    }
    if old & (LOCKED | STARVING) != 0 {
        new += 1 << WAITER_SHIFT;
    }
    if starving && old & LOCKED != 0 {
        new |= STARVING;
    }
    if awoke {
        if new & WOKEN == 0 {
            crate::throw!("next_state: inconsistent mutex state {old:#x}: woken without WOKEN");
        }
        new &= !WOKEN;
    }
    new
}

/// Go: `sync_runtime_canSpin`: spin only on a multicore machine, a few times, when
/// other Ps are running and our P has nothing else to do.
fn can_spin(iter: u32) -> bool {
    if iter >= ACTIVE_SPIN || crate::num_cpu() <= 1 {
        return false;
    }
    let procs = SCHED.procs() as u32;
    if procs <= SCHED.npidle.load(Ordering::Relaxed) + SCHED.nmspinning.load(Ordering::Relaxed) + 1
    {
        return false;
    }
    match crate::sched::m::getm().and_then(|m| m.p()) {
        Some(p) => p.runq.is_empty(),
        None => false,
    }
}

/// A goroutine-aware mutual-exclusion lock with Go's `sync.Mutex` behaviour: waiting
/// parks the goroutine, a newly arriving goroutine may barge past parked waiters (fast),
/// and a waiter starved for 1 ms switches the lock to FIFO hand-off (fair). No
/// poisoning: a panic while locked simply unlocks.
///
/// ```
/// use std::sync::Arc;
/// gort::run(|| {
///     let m = Arc::new(gort::sync::Mutex::new(0u64));
///     let hs: Vec<_> = (0..8)
///         .map(|_| {
///             let m = m.clone();
///             gort::go(move || {
///                 for _ in 0..1000 {
///                     *m.lock() += 1;
///                 }
///             })
///         })
///         .collect();
///     for h in hs {
///         h.join().unwrap();
///     }
///     assert_eq!(*m.lock(), 8000);
/// });
/// ```
#[derive(Default)]
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `data` to one holder at a time.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above; `&Mutex` only gives access under the lock, so T: Send suffices.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Access to a locked [`Mutex`]'s data; unlocks when dropped.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
}

// SAFETY: a guard shared between threads only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub const fn new(v: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            data: UnsafeCell::new(v),
        }
    }

    /// The data, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the goroutine (or blocking the thread) while another holds it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { m: self }
    }

    /// Locks if free right now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // `then`, not `then_some`: a guard built eagerly would unlock on drop even when
        // the lock was not taken
        self.raw.try_lock().then(|| MutexGuard { m: self })
    }

    /// The data, through a unique reference (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    pub(crate) fn raw(&self) -> &RawMutex {
        &self.raw
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, and `&mut self` makes it unique.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.raw.unlock();
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.m
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("data", &&*g).finish(),
            None => f.debug_struct("Mutex").field("data", &"<locked>").finish(),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
