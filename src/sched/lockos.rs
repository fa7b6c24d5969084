//! Wiring a goroutine to its OS thread: `lock_os_thread`/`unlock_os_thread` (Go: proc.go
//! `LockOSThread`, `UnlockOSThread`, `startlockedm`, `stoplockedm`, and the `mexit` of a
//! goroutine that exits while locked).
//!
//! A locked G runs only on its M, and that M runs only it:
//!
//! * When the locked G stops running (parks, yields, is preempted, or comes back from a
//!   blocking call without a P), its M hands its P to another M (`handoff_p`) and sleeps
//!   on its `park` note (`stoplockedm`).
//! * Whichever M later picks the G from a run queue (its own, the global one, or by
//!   stealing) does not run it: it hands its own P to the G's M through `nextp`, wakes
//!   it, and goes idle (`startlockedm`). The locked M takes the P and runs the G.
//! * A G that exits while locked takes its thread with it: the M hands its P off and its
//!   thread ends. (A `run` caller's thread is the user's: it is only unwired.)
//!
//! Both hand-offs poll the note for a few microseconds before sleeping in the kernel, so
//! a locked goroutine that talks to an unlocked one costs two thread switches per round
//! trip, not two futex wake-ups.
//!
//! The nesting count lives on the M (Go: `m.lockedExt`) and is touched only by the
//! goroutine running there, which is the locked one whenever the count is non-zero.

use super::g::{Switch, G, G_RUNNABLE};
use super::idle::{handoff_p, releasep};
use super::m::{getg, getm, M};
use super::schedt::SCHED;
use std::ptr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a thread that handed its P away for a locked goroutine polls before it
/// sleeps in the kernel.
const HANDOFF_SPIN: Duration = Duration::from_micros(50);

/// Wires the calling goroutine to its current OS thread: until a matching number of
/// [`unlock_os_thread`] calls, it always runs on this thread and no other goroutine runs
/// on it (Go: `runtime.LockOSThread`). Calls nest. A goroutine that returns while locked
/// ends its thread (unless the thread is a [`run`](crate::run) caller's, which is only
/// unwired). On a plain thread this does nothing: the code already runs on its thread.
///
/// Use it for thread-affine foreign state: thread-local state of a C library, a GUI
/// toolkit's main thread, `setns`/per-thread credentials.
///
/// A goroutine other than the main one that locks while on a `run` caller's thread is
/// first moved to one of the runtime's threads (the caller's thread must be free to
/// return when its main goroutine is done).
///
/// ```
/// gort::run(|| {
///     let h = gort::go(|| {
///         gort::lock_os_thread();
///         let before = std::thread::current().id();
///         gort::time::sleep(std::time::Duration::from_millis(1)); // parks; may not migrate
///         assert_eq!(std::thread::current().id(), before);
///         gort::unlock_os_thread();
///     });
///     h.join().unwrap();
/// });
/// ```
pub fn lock_os_thread() {
    let Some(g) = getg() else {
        return;
    };
    let Some(mut m) = getm() else {
        crate::throw!("lock_os_thread: a goroutine without an M");
    };
    // loop: the worker the G was handed to may lose it to a thief that is another `run`
    // caller's thread
    while m.is_run && !ptr::eq(m.run_main.load(Ordering::Relaxed), g) && m.locked_ext.get() == 0 {
        g.switch_to_g0(Switch::LeaveRunM);
        m = match getm() {
            Some(m) => m,
            None => crate::throw!("lock_os_thread: a goroutine without an M"),
        };
    }
    let n = m.locked_ext.get();
    if n == u32::MAX {
        crate::throw!("LockOSThread nesting overflow");
    }
    m.locked_ext.set(n + 1);
    if n == 0 {
        g.lockedm.store(m as *const M as *mut M, Ordering::Relaxed);
        m.lockedg.store(g as *const G as *mut G, Ordering::Relaxed);
    }
}

/// Undoes one [`lock_os_thread`]; after the last one the goroutine may run on any
/// thread again (Go: `runtime.UnlockOSThread`). Without a matching lock it does nothing,
/// as in Go.
///
/// ```
/// gort::run(|| {
///     gort::unlock_os_thread(); // not locked: a no-op
///     gort::lock_os_thread();
///     gort::lock_os_thread();
///     gort::unlock_os_thread();
///     assert_eq!(gort::lock_os_counts(), (1, 0));
///     gort::unlock_os_thread();
///     assert_eq!(gort::lock_os_counts(), (0, 0));
/// });
/// ```
pub fn unlock_os_thread() {
    let Some(g) = getg() else {
        return;
    };
    let Some(m) = getm() else {
        crate::throw!("unlock_os_thread: a goroutine without an M");
    };
    let n = m.locked_ext.get();
    if n == 0 {
        return;
    }
    m.locked_ext.set(n - 1);
    if n == 1 {
        unwire(m, g);
    }
}

/// The calling goroutine's lock counts, `(external, internal)` (Go's test hook
/// `runtime.LockOSCounts`; gort has no internal locks, so the second is always 0).
/// `(0, 0)` on a plain thread.
#[doc(hidden)]
pub fn lock_os_counts() -> (u32, u32) {
    match (getg(), getm()) {
        (Some(_), Some(m)) => (m.locked_ext.get(), 0),
        _ => (0, 0),
    }
}

fn unwire(m: &'static M, g: &'static G) {
    debug_assert!(ptr::eq(m.lockedg.load(Ordering::Relaxed), g));
    g.lockedm.store(ptr::null_mut(), Ordering::Relaxed);
    m.lockedg.store(ptr::null_mut(), Ordering::Relaxed);
}

/// The M a runnable G is wired to, if it is not `m` (then `m` must not run it).
#[inline]
pub(crate) fn locked_elsewhere(m: &'static M, gp: &'static G) -> Option<&'static M> {
    let lm = gp.lockedm.load(Ordering::Relaxed);
    if lm.is_null() || ptr::eq(lm, m) {
        return None;
    }
    // SAFETY: Ms are leaked and never freed.
    Some(unsafe { &*lm })
}

/// `m` picked `gp`, which is wired to `lm`: hand `m`'s P to `lm` and wake it to run
/// `gp`, then idle `m` until it gets a P again (Go: `startlockedm`). `m` owns `gp`
/// (taken off a queue, `_Grunnable`); ownership passes with the wake-up.
pub(crate) fn startlockedm(m: &'static M, lm: &'static M, gp: &'static G) {
    debug_assert_eq!(gp.status(), G_RUNNABLE);
    debug_assert!(ptr::eq(lm.lockedg.load(Ordering::Relaxed), gp));
    let Some(p) = releasep(m) else {
        crate::throw!("startlockedm: no P");
    };
    {
        let _l = SCHED.lock();
        SCHED.nmidlelocked.fetch_sub(1, Ordering::SeqCst);
    }
    lm.nextp.store(p as *const _ as *mut _, Ordering::Relaxed); // published by the note's release
    lm.park.wakeup();
    if m.is_run {
        // a run caller's thread does not idle on the list: it leaves the scheduler and
        // waits for its main goroutine (schedule sees it has no P)
        return;
    }
    // the locked goroutine usually comes back soon (it talks to someone): poll first
    super::idle::stopm_spin(m, HANDOFF_SPIN);
}

/// `m`'s locked goroutine is not running: hand off `m`'s P (if it has one) and sleep
/// until some M hands a P back with the goroutine runnable (Go: `stoplockedm`). Returns
/// the goroutine, owned by `m` and `_Grunnable`, with `m` holding a P.
pub(crate) fn stoplockedm(m: &'static M) -> &'static G {
    let Some(gp) = m.lockedg() else {
        crate::throw!("stoplockedm: inconsistent locking");
    };
    if let Some(p) = releasep(m) {
        handoff_to_spinner_or_m(p);
    }
    {
        let l = SCHED.lock();
        SCHED.nmidlelocked.fetch_add(1, Ordering::SeqCst);
        super::checkdead::checkdead(&l);
    }
    m.blocked.store(true, Ordering::Relaxed);
    m.park.sleep_spin(HANDOFF_SPIN);
    m.blocked.store(false, Ordering::Relaxed);
    super::idle::acquire_handed_p(m, "stoplockedm");
    if gp.status() != G_RUNNABLE {
        crate::throw!(
            "stoplockedm: not runnable (goroutine {} status {})",
            gp.goid.load(Ordering::Relaxed),
            super::g::status_string(gp.status())
        );
    }
    gp
}

/// Hands off the P of an M that stops for its locked goroutine. Go's `handoffp` starts
/// an M for a P with queued work; when an M is spinning anyway and the queue is short,
/// the work goes to the global queue instead (which the spinner watches) and the P to
/// the idle list. The typical case is a locked goroutine that just readied its partner:
/// waking a third thread for it would cost more than the exchange itself.
fn handoff_to_spinner_or_m(p: &'static super::p::P) {
    if p.runq.is_empty()
        || SCHED.nmspinning.load(Ordering::SeqCst) == 0
        || p.runq.len() > HANDOFF_GLOBAL_MAX
    {
        handoff_p(p);
        return;
    }
    let mut gs = Vec::new();
    p.runq.drain(&mut gs);
    let mut l = SCHED.lock();
    l.globrunqputbatch(&gs);
    l.pidleput(p);
    drop(l);
    // The spinner we counted on may be giving up right now: its re-check under the lock
    // sees the global queue; if it already left, wakep finds nmspinning at 0 and starts
    // an M for the idle P.
    super::idle::wakep();
}

/// Longest local queue `handoff_to_spinner_or_m` moves to the global queue.
const HANDOFF_GLOBAL_MAX: u32 = 8;

/// `goready` of a goroutine wired to `lm`: if a P is idle, hand it straight to `lm`
/// (which waits in `stoplockedm`, or is on its way there) instead of queueing the
/// goroutine for some other M to pick up and pass its own P over. Returns false if no P
/// was idle (the caller then queues it as usual).
pub(crate) fn ready_locked(gp: &'static G, lm: &'static M) -> bool {
    if SCHED.npidle.load(Ordering::SeqCst) == 0 {
        return false;
    }
    let p = {
        let mut l = SCHED.lock();
        let Some(p) = l.pidleget() else {
            return false;
        };
        SCHED.nmidlelocked.fetch_sub(1, Ordering::SeqCst);
        p
    };
    gp.cas_status(super::g::G_WAITING, G_RUNNABLE);
    lm.nextp.store(p as *const _ as *mut _, Ordering::Relaxed); // published by the note's release
    lm.park.wakeup();
    true
}

/// `gp` returned while wired to `m` (on `m`'s g0, before `goexit0` frees it): unwires
/// it and drops the nesting count.
pub(crate) fn unwire_exited(m: &'static M, gp: &'static G) {
    m.locked_ext.set(0);
    unwire(m, gp);
}

/// After a goroutine exited while wired to `m` (unwired, `goexit0` done): returns
/// whether `m`'s thread must end (Go: `mexit`): a worker M hands its P off and leaves
/// the scheduler; a `run` caller's thread stays.
pub(crate) fn exit_locked(m: &'static M) -> bool {
    if m.is_run {
        return false;
    }
    if let Some(p) = releasep(m) {
        handoff_p(p);
    }
    let l = SCHED.lock();
    SCHED.nworkers.fetch_sub(1, Ordering::SeqCst);
    SCHED.mcount.fetch_sub(1, Ordering::Relaxed);
    // from here the thread is on its way out (checkdead discounts it)
    m.dead.store(true, Ordering::SeqCst);
    super::checkdead::checkdead(&l);
    true
}

/// `Switch::LeaveRunM` on g0 of a run M: `gp` goes to `runnext` and the P to a worker M
/// (which runs it next); the run M leaves the scheduler.
pub(crate) fn leave_run_m(m: &'static M, p: &'static super::p::P, gp: &'static G) {
    gp.cas_status(super::g::G_RUNNING, G_RUNNABLE);
    let _ = super::queue::runqput(p, gp.into(), true);
    let Some(p) = releasep(m) else {
        crate::throw!("leave_run_m: the run M holds no P");
    };
    super::idle::startm(Some(p), false);
}
