//! Blocking calls: `gort::blocking` (Go: proc.go `entersyscall`, `exitsyscall`,
//! `exitsyscallfast`, `exitsyscall0`; sysmon's `retake` is in `retake.rs`).
//!
//! Entering a blocking call detaches the P from the M without giving it away: the P
//! goes to `_Psyscall` (still remembered as the M's `oldp`), the G to `_Gsyscall`. If
//! the call is quick, the M takes its P straight back on exit (a CAS, no lock, no
//! wake-up). If it lasts, sysmon retakes the P (CAS `_Psyscall -> _Pidle`) and hands it
//! to another M, so the other goroutines keep running. On exit the M then takes any
//! idle P, or else queues its goroutine globally and goes idle.
//!
//! While `f` runs, the calling goroutine is not "current" for the runtime: gort calls
//! inside `f` behave as on a plain thread (they block the thread), which is what a
//! blocking call means.

use super::g::{Switch, G, G_RUNNING, G_SYSCALL};
use super::idle::acquirep;
use super::m::{getm, M};
use super::p::{P, P_RUNNING, P_SYSCALL};
use super::schedt::SCHED;
use std::sync::atomic::Ordering;

/// Runs `f`, a call that may block in the OS (file I/O, a blocking socket, a foreign
/// library), without holding up other goroutines: if it lasts longer than a sysmon tick
/// (20 µs to 10 ms), the goroutine's processor is handed to another thread meanwhile
/// (Go's `entersyscall`/`exitsyscall`). Outside a goroutine it just calls `f`.
///
/// Inside `f`, gort's own blocking operations block the thread (as on a plain thread).
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let slow = gort::go(|| gort::blocking(|| std::thread::sleep(Duration::from_millis(20))));
///     // other goroutines keep running meanwhile
///     let quick = gort::go(|| 1 + 1);
///     assert_eq!(quick.join().unwrap(), 2);
///     slow.join().unwrap();
/// });
/// ```
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    let Some(m) = getm() else {
        return f();
    };
    let Some(g) = m.curg() else {
        return f(); // on g0 or inside another blocking call
    };
    entersyscall(m, g);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    exitsyscall(m, g);
    match r {
        Ok(v) => {
            // a runtime entry: honour sysmon's request (Go re-arms preemption on exit)
            if super::sysmon::take_preempt_request(g) {
                g.switch_to_g0(Switch::Preempt);
            }
            v
        }
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// Go: `entersyscall` (reentersyscall).
fn entersyscall(m: &'static M, g: &'static G) {
    let Some(p) = m.p() else {
        crate::throw!("entersyscall: no P");
    };
    // a goroutine this one readied into runnext would wait for this call otherwise
    super::park::flush_deferred_wake(g, p);
    g.cas_status(G_RUNNING, G_SYSCALL);
    p.syscalltick.store(
        p.syscalltick.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    m.oldp.store(p as *const P as *mut P, Ordering::Relaxed);
    m.p.store(std::ptr::null_mut(), Ordering::Relaxed);
    p.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    // From here sysmon may retake the P. Release publishes the stores above to the
    // retaker, whose CAS acquires; nothing after this needs a StoreLoad fence (the exit
    // path's CAS is what decides who owns the P).
    p.status.store(P_SYSCALL, Ordering::Release);
    m.curg.store(std::ptr::null_mut(), Ordering::Relaxed);
}

/// Go: `exitsyscall`. Returns with the G running on `m` with a P.
fn exitsyscall(m: &'static M, g: &'static G) {
    m.curg.store(g as *const G as *mut G, Ordering::Relaxed);
    // only this M touches oldp: a load and a store, no locked swap
    let oldp = m.oldp.load(Ordering::Relaxed);
    m.oldp.store(std::ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: Ps are leaked; oldp was set by entersyscall on this M.
    let Some(oldp) = (unsafe { oldp.as_ref() }) else {
        crate::throw!("exitsyscall: no oldp");
    };
    // Fast path: our P was not retaken.
    if oldp
        .status
        .compare_exchange(P_SYSCALL, P_RUNNING, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        oldp.m.store(m as *const M as *mut M, Ordering::Relaxed);
        m.p.store(oldp as *const P as *mut P, Ordering::Relaxed);
        if !super::procresize::must_retire(oldp) {
            g.cas_status(G_SYSCALL, G_RUNNING);
            return;
        }
        // The P was removed meanwhile (GOMAXPROCS shrank, or it was a relief P that is
        // no longer lent): retire it now, since a goroutine looping on blocking calls
        // would otherwise keep it (and the goroutines queued on it, which nobody steals
        // from a P above the count) for ever. Then take another P like the slow path.
        super::procresize::retire_held(m, oldp);
    }
    // It was: take any idle P.
    let p = SCHED.lock().pidleget();
    if let Some(p) = p {
        acquirep(m, p);
        g.cas_status(G_SYSCALL, G_RUNNING);
        return;
    }
    // None: queue the goroutine and let this M go idle (on g0). We come back on
    // whatever M runs the goroutine next.
    g.switch_to_g0(Switch::ExitSyscall);
}

/// `exitsyscall0`, on g0 of an M without a P: the goroutine goes to the global queue.
/// Returns after this M got a P again (a worker), or without a P if it is a `run` M
/// (which leaves the scheduler) or its G is locked to it (it waits for the G).
pub(crate) fn exitsyscall0(m: &'static M, gp: &'static G) {
    gp.cas_status(G_SYSCALL, super::g::G_RUNNABLE);
    SCHED.lock().globrunqput(gp.into());
    super::idle::wakep();
    if m.lockedg().is_some() {
        // locked: the scheduler loop waits for the G to be picked and handed back
        // (Go: exitsyscall0's stoplockedm)
        return;
    }
    if !m.is_run {
        super::idle::stopm(m);
    }
}
