//! Ms going idle and waking up: `acquirep`/`releasep`, `startm`/`stopm`, `wakep`,
//! `handoff_p`, `resetspinning`, and thread creation (`newm`/`mstart`).
//!
//! The protocol that keeps enough Ms running without losing a wake-up is described in
//! `docs/design/scheduler.md`; the comments below name its steps.

use super::m::{setm, M};
use super::p::{P, P_IDLE, P_RUNNING};
use super::schedt::SCHED;
use crate::config::settings;
use std::ptr;
use std::sync::atomic::{fence, Ordering};

/// Binds `p` to `m` (Go: `acquirep`). `p` must be idle and owned by the caller (taken
/// from the idle list or handed over via `nextp`).
pub(crate) fn acquirep(m: &'static M, p: &'static P) {
    if p.status
        .compare_exchange(P_IDLE, P_RUNNING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        crate::throw!(
            "acquirep: invalid p state {} for p{}",
            p.status.load(Ordering::Relaxed),
            p.id
        );
    }
    debug_assert!(m.p().is_none(), "acquirep: already in go");
    p.m.store(m as *const M as *mut M, Ordering::Relaxed);
    m.p.store(p as *const P as *mut P, Ordering::Relaxed);
    // a P is busy again: sysmon must watch it
    super::sysmon::wake();
}

/// Unbinds the current P from `m` and returns it (Go: `releasep`).
pub(crate) fn releasep(m: &'static M) -> Option<&'static P> {
    let p = m.p()?;
    debug_assert_eq!(p.m.load(Ordering::Relaxed), m as *const M as *mut M);
    m.p.store(ptr::null_mut(), Ordering::Relaxed);
    p.m.store(ptr::null_mut(), Ordering::Relaxed);
    if p.status
        .compare_exchange(P_RUNNING, P_IDLE, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        crate::throw!("releasep: invalid p state");
    }
    Some(p)
}

/// Tries to add one more M to run Gs, if there is an idle P and no M is spinning
/// (Go: `wakep`). Called after making work available.
pub(crate) fn wakep() {
    // The caller just published work (a run-queue slot or the global queue). This fence
    // orders that store before our loads of npidle/nmspinning; it pairs with the SeqCst
    // decrement of nmspinning in find_runnable's give-up path (Dekker's pattern): either
    // we see the spinner still counted (and it will re-check and find the work) or it
    // sees our work.
    fence(Ordering::SeqCst);
    wakep_after_seqcst_put();
}

/// `wakep` for a caller whose work was published by a SeqCst read-modify-write (the
/// `runnext` swap of `runqput(.., next = true)`): that RMW already orders the publication
/// before the loads below (C++20: a SeqCst RMW, then SeqCst loads, against the idler's
/// SeqCst RMW on nmspinning and fence), so the fence of [`wakep`] is not needed. This saves
/// an `mfence` on every `goready` and `go`.
pub(crate) fn wakep_after_seqcst_put() {
    if SCHED.npidle.load(Ordering::SeqCst) == 0 {
        return;
    }
    if SCHED.nmspinning.load(Ordering::SeqCst) != 0
        || SCHED
            .nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
    {
        return;
    }
    startm(None, true);
}

/// Schedules some M to run `p` (or an idle P if `None`), creating an M if needed
/// (Go: `startm`). With `spinning`, the caller has already counted the M in
/// `nmspinning`; if no P is available that count is undone here.
pub(crate) fn startm(p: Option<&'static P>, spinning: bool) {
    let mut l = SCHED.lock();
    let p = match p {
        Some(p) => p,
        None => match l.pidleget() {
            Some(p) => p,
            None => {
                drop(l);
                if spinning {
                    // The caller incremented nmspinning, but there are no idle Ps, so
                    // it is okay to just undo the increment and give up.
                    if SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst) == 0 {
                        crate::throw!("startm: negative nmspinning");
                    }
                }
                return;
            }
        },
    };
    let nm = l.mget();
    drop(l);
    match nm {
        None => newm(p, spinning),
        Some(nm) => {
            debug_assert!(nm.p().is_none(), "startm: m has p");
            debug_assert!(nm.nextp.load(Ordering::Relaxed).is_null());
            nm.spinning.store(spinning, Ordering::Relaxed);
            nm.nextp.store(p as *const P as *mut P, Ordering::Relaxed); // published by the note's release
            nm.park.wakeup();
        }
    }
}

/// Idle Ms kept however long they sleep (the reclaim never goes below this many).
pub(crate) const KEEP_IDLE_MS: u32 = 2;

/// Parks `m` on the idle list until `startm` hands it a P (Go: `stopm` + `mPark`).
pub(crate) fn stopm(m: &'static M) {
    if !stopm_or_reclaim(m, false) {
        crate::throw!("stopm: reclaimed");
    }
}

/// `stopm` for an M with nothing to do. With `reclaim`, an M that stays idle longer
/// than `GORT_DEBUG=mreclaim` (while more than [`KEEP_IDLE_MS`] are idle) leaves the idle
/// list and returns `false`: its thread should exit. Go never frees idle Ms
/// (golang/go#14592), so a burst of blocking calls would leave its threads forever.
pub(crate) fn stopm_or_reclaim(m: &'static M, reclaim: bool) -> bool {
    stopm_inner(m, reclaim, None)
}

/// `stopm` that polls its note for up to `spin` before sleeping in the kernel, for an M
/// that is likely to be handed a P again within microseconds.
pub(crate) fn stopm_spin(m: &'static M, spin: std::time::Duration) {
    if !stopm_inner(m, false, Some(spin)) {
        crate::throw!("stopm: reclaimed");
    }
}

fn stopm_inner(m: &'static M, reclaim: bool, spin: Option<std::time::Duration>) -> bool {
    debug_assert!(m.p().is_none(), "stopm: holding p");
    debug_assert!(!m.is_spinning(), "stopm: spinning");
    // Give back stack pages of a burst's dead goroutines before sleeping.
    super::proc::scavenge_gfree();
    let mut l = SCHED.lock();
    l.mput(m);
    super::checkdead::checkdead(&l);
    drop(l);
    m.blocked.store(true, Ordering::Relaxed);
    let after_ms = settings().debug.mreclaim_ms;
    if reclaim && after_ms > 0 {
        let after = std::time::Duration::from_millis(after_ms);
        while !m.park.sleep_timeout(after) {
            // Timed out. Still on the idle list (nobody chose us), and enough idle Ms?
            let mut l = SCHED.lock();
            if SCHED.nmidle.load(Ordering::Relaxed) > KEEP_IDLE_MS {
                if let Some(i) = l.midle.iter().position(|x| std::ptr::eq(*x, m)) {
                    l.midle.swap_remove(i);
                    SCHED.nmidle.fetch_sub(1, Ordering::Relaxed);
                    SCHED.nworkers.fetch_sub(1, Ordering::SeqCst);
                    SCHED.mcount.fetch_sub(1, Ordering::Relaxed);
                    SCHED.counters.reclaimed.fetch_add(1, Ordering::Relaxed);
                    // from here the thread is on its way out (checkdead discounts it)
                    m.dead.store(true, Ordering::SeqCst);
                    drop(l);
                    m.blocked.store(false, Ordering::Relaxed);
                    return false;
                }
            }
            // someone is handing us a P (its wake-up is on the way), or we are needed
        }
    } else if let Some(spin) = spin {
        m.park.sleep_spin(spin);
    } else {
        m.park.sleep();
    }
    m.blocked.store(false, Ordering::Relaxed);
    acquire_handed_p(m, "stopm");
    true
}

/// After `m` woke from its `park` note: clears the note and takes the P whoever woke it
/// left in `nextp` (`startm`, `startlockedm`, `ready_locked`). `who` names the caller in
/// the throw if there is none.
pub(crate) fn acquire_handed_p(m: &'static M, who: &str) {
    m.park.clear();
    let p = m.nextp.swap(ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: the waker stored a leaked P before firing the note (its release, our
    // acquire in the note's sleep, order it).
    match unsafe { p.as_ref() } {
        Some(p) => acquirep(m, p),
        None => crate::throw!("{who}: woken without a P"),
    }
}

/// Hands off `p` from an M that stops running Gs (Go: `handoffp`): start an M for it if
/// it has work, or if nobody is spinning; else put it on the idle list.
pub(crate) fn handoff_p(p: &'static P) {
    // if it has local work or there is global work, start it straight away
    if !p.runq.is_empty() || SCHED.runqsize.load(Ordering::SeqCst) != 0 {
        startm(Some(p), false);
        return;
    }
    // no local work: if nobody is spinning and no P is idle, someone must look for work
    if SCHED.nmspinning.load(Ordering::SeqCst) + SCHED.npidle.load(Ordering::SeqCst) == 0
        && SCHED
            .nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        startm(Some(p), true);
        return;
    }
    let mut l = SCHED.lock();
    if !l.runq.is_empty() {
        drop(l);
        startm(Some(p), false);
        return;
    }
    l.pidleput(p);
}

/// A spinning M found work: it stops spinning, and if it was the last spinner it wakes
/// another M to look for more (Go: `resetspinning`).
pub(crate) fn resetspinning(m: &'static M) {
    debug_assert!(m.is_spinning());
    stop_spinning(m);
    // Go wakes another spinner here unconditionally: a producer that saw this M
    // spinning did not wake anyone, counting on it. Only work that is queued now (or a
    // timer waiting for a timer M) can have been counted on that way (a producer publishes, then reads nmspinning; we decrement,
    // then read the queues: with the fences on both sides one of us sees the other), so
    // with nothing queued nobody is woken. This spares a futex wake-up and a third
    // spinning thread on every hand-off between two goroutines on a machine with an idle P.
    fence(Ordering::SeqCst); // pairs with the fence in wakep / the SeqCst runnext swap
                             // Timers count as work too: `wake_for_timer` relies on a spinner becoming the timer M
                             // when none exists.
    if SCHED.any_work()
        || (crate::sched::timers::timers_pending() && !crate::sched::timers::timer_m_exists())
    {
        wakep_after_seqcst_put();
    }
}

/// `m` stops spinning: clears its flag and leaves the `nmspinning` count (SeqCst: the
/// give-up path's re-check pairs with `wakep`'s fence).
pub(crate) fn stop_spinning(m: &'static M) {
    m.spinning.store(false, Ordering::Relaxed);
    if SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst) == 0 {
        crate::throw!("findrunnable: negative nmspinning");
    }
}

/// Creates a new M (thread) to run `p` (Go: `newm` → `newm1` → `newosproc`).
pub(crate) fn newm(p: &'static P, spinning: bool) {
    let id = SCHED.mnext.fetch_add(1, Ordering::Relaxed);
    let count = SCHED.mcount.fetch_add(1, Ordering::Relaxed) + 1;
    check_mcount(count);
    SCHED.nworkers.fetch_add(1, Ordering::SeqCst);
    let m: &'static M = Box::leak(Box::new(M::new(id, false)));
    m.spinning.store(spinning, Ordering::Relaxed);
    m.nextp.store(p as *const P as *mut P, Ordering::Relaxed); // published by thread spawn
    super::schedt::lock(&SCHED.allm).push(m);
    let body = move || {
        // A panic on an M's own stack (g0) is a runtime failure: end the process as Go's
        // throw does, instead of losing the thread and hanging.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mstart(m))).is_err() {
            crate::throw!("panic on runtime thread gort-m{}", m.id);
        }
    };
    if let Err(e) = crate::os::thread::spawn_m(m.id, body) {
        crate::debug::fatal_os_thread(SCHED.mcount.load(Ordering::Relaxed), &e);
    }
}

/// Registers a `run` caller's thread as an M.
pub(crate) fn new_run_m() -> &'static M {
    let id = SCHED.mnext.fetch_add(1, Ordering::Relaxed);
    let count = SCHED.mcount.fetch_add(1, Ordering::Relaxed) + 1;
    check_mcount(count);
    let m: &'static M = Box::leak(Box::new(M::new(id, true)));
    super::schedt::lock(&SCHED.allm).push(m);
    m
}

/// Go: `checkmcount`: too many threads is fatal.
fn check_mcount(count: i64) {
    let max = settings().max_threads as i64;
    if count > max {
        crate::debug::fatal_thread_exhaustion(max);
    }
}

/// Entry of a new M's thread (Go: `mstart` → `mstart1` → `schedule`).
fn mstart(m: &'static M) {
    setm(Some(m));
    m.record_tid();
    crate::os::signal::minit();
    crate::os::thread::short_slice(0);
    let p = m.nextp.swap(ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: newm stored a leaked P before spawning the thread.
    match unsafe { p.as_ref() } {
        Some(p) => acquirep(m, p),
        None => crate::throw!("mstart: no P"),
    }
    super::schedule::schedule(m, None);
    // reclaimed while idle (mexit): the thread ends; the M stays listed in allm, dead
    m.dead.store(true, Ordering::Relaxed);
}
