//! The scheduler's side of timers (Go: proc.go `checkTimers`, and the M that blocks in
//! `netpoll` with a timeout, here a futex sleep): running due timers from the scheduling
//! loop, and the one idle M that sleeps until the earliest timer of all Ps (the timer M).
//!
//! The heaps themselves (`time::heap::Timers`, one per P) and the user-facing timers
//! (`gort::time`) live in `time/`; `docs/design/timers.md` describes the whole.

use super::m::M;
use super::p::P;
use super::schedt::SCHED;
use crate::time::heap::nanotime;
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32, Ordering};
use std::time::Duration;

/// The M sleeping until the earliest timer, or null (at most one; Go's equivalent is the
/// M blocked in netpoll with a timeout).
static TIMER_M: AtomicPtr<M> = AtomicPtr::new(std::ptr::null_mut());
/// Futex word the timer M sleeps on; bumped to make it recompute its deadline.
static TIMER_GEN: AtomicU32 = AtomicU32::new(0);
/// When the timer M will wake up on its own (nanotime), 0 if none.
static TIMER_UNTIL: AtomicI64 = AtomicI64::new(0);

/// The earliest timer over all Ps, 0 if none.
pub(crate) fn earliest_timer() -> i64 {
    let mut best = 0i64;
    for i in 0..SCHED.procs() {
        if let Some(p) = SCHED.p(i) {
            let t = p.timers.timer0.load(Ordering::SeqCst);
            if t != 0 && (best == 0 || t < best) {
                best = t;
            }
        }
    }
    best
}

/// A timer due at `when` was added: make sure an M will wake for it (Go:
/// `wakeNetPoller`). If the timer M sleeps past `when`, it is woken to recompute;
/// if there is none, an idle M is started (it will become the timer M when it finds
/// nothing else to do).
pub(crate) fn wake_for_timer(when: i64) {
    if TIMER_M.load(Ordering::SeqCst).is_null() {
        super::idle::wakep();
        return;
    }
    let until = TIMER_UNTIL.load(Ordering::SeqCst);
    if until == 0 || when < until {
        TIMER_GEN.fetch_add(1, Ordering::SeqCst);
        crate::os::futex::wake(&TIMER_GEN, 1);
    }
}

/// Runs the due timers of every P (Go: `checkTimers` over all Ps). With a P held the
/// readied goroutines go to its queue; without one, to the global queue.
pub(crate) fn run_all_due(now: i64) -> usize {
    // While the due timers are out of the heaps but their goroutines not yet readied,
    // they still count as pending: sysmon fires them without being an M, and an M going
    // idle meanwhile would otherwise see no timer, no work and only waiting goroutines,
    // and report a deadlock (seen under heavy load: the timer M started for them had not
    // got to run yet, so sysmon found them overdue).
    FIRING.fetch_add(1, Ordering::SeqCst);
    let mut due = Vec::new();
    for i in 0..SCHED.procs() {
        if let Some(p) = SCHED.p(i) {
            p.timers.take_due(now, &mut due);
        }
    }
    let n = due.len();
    for e in due {
        crate::time::heap::fire(e);
    }
    FIRING.fetch_sub(1, Ordering::SeqCst);
    n
}

/// Callers of `run_all_due` between taking due timers and having fired them.
static FIRING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether `p` has a timer due now (what `check_timers` would run).
#[inline]
pub(crate) fn timers_due(p: &P) -> bool {
    let w = p.timers.timer0.load(Ordering::Relaxed);
    w != 0 && w <= nanotime()
}

/// Runs `p`'s due timers (Go: `checkTimers`). Cheap when none is due.
pub(crate) fn check_timers(p: &'static P) {
    if p.timers.timer0.load(Ordering::Relaxed) == 0 {
        return;
    }
    let now = nanotime();
    if p.timers.timer0.load(Ordering::SeqCst) > now {
        return;
    }
    let mut due = Vec::new();
    p.timers.take_due(now, &mut due);
    for e in due {
        crate::time::heap::fire(e);
    }
}

/// Called by an M with no P that found no work. If timers are pending and no other M is
/// waiting for them, this M waits until the earliest one, runs what is due, and returns a
/// P to schedule with (`None`: the caller should `stopm`).
pub(crate) fn idle_timer_wait(m: &'static M) -> Option<&'static P> {
    if earliest_timer() == 0 {
        return None;
    }
    let me = m as *const M as *mut M;
    if TIMER_M
        .compare_exchange(std::ptr::null_mut(), me, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return None;
    }
    loop {
        // No deadline while we recompute: a timer added meanwhile always bumps TIMER_GEN,
        // which makes the wait below return at once.
        TIMER_UNTIL.store(0, Ordering::SeqCst);
        let gen = TIMER_GEN.load(Ordering::SeqCst);
        let next = earliest_timer();
        if next == 0 {
            TIMER_UNTIL.store(0, Ordering::SeqCst);
            TIMER_M.store(std::ptr::null_mut(), Ordering::SeqCst);
            // a timer added between our check and the store saw a timer M: re-check
            if earliest_timer() != 0
                && TIMER_M
                    .compare_exchange(std::ptr::null_mut(), me, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                continue;
            }
            return None;
        }
        let now = nanotime();
        if next <= now {
            TIMER_UNTIL.store(0, Ordering::SeqCst);
            // take a P first so the woken goroutines run here, without another wake-up
            let p = SCHED.lock().pidleget();
            if let Some(p) = p {
                super::idle::acquirep(m, p);
                // leave the timer-M role before readying anyone, so an M that goes idle
                // meanwhile can take it over
                TIMER_M.store(std::ptr::null_mut(), Ordering::SeqCst);
                run_all_due(now);
                return Some(p);
            }
            run_all_due(now);
            continue;
        }
        TIMER_UNTIL.store(next, Ordering::SeqCst);
        if TIMER_GEN.load(Ordering::SeqCst) == gen {
            crate::os::futex::wait(
                &TIMER_GEN,
                gen,
                Some(Duration::from_nanos((next - now) as u64)),
            );
        }
    }
}

/// Whether an M is waiting for timers (it counts as idle, but timers are pending).
pub(crate) fn timer_m_exists() -> bool {
    !TIMER_M.load(Ordering::SeqCst).is_null()
}

/// Whether any timer is pending (for deadlock detection), counting timers being fired by
/// `run_all_due`.
pub(crate) fn timers_pending() -> bool {
    earliest_timer() != 0 || FIRING.load(Ordering::SeqCst) != 0
}

/// Number of timer heap entries over all Ps (stale ones included), for stats.
pub(crate) fn timer_count() -> usize {
    (0..SCHED.procs())
        .filter_map(|i| SCHED.p(i))
        .map(|p| p.timers.len())
        .sum()
}
