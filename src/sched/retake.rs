//! sysmon's `retake` (Go: proc.go `retake`, `preemptone`, and the blocking-call half of
//! `handoffp`'s callers): once per sysmon round, every P is looked at. A P whose M has
//! been in a blocking call for a whole round is handed to another M; a goroutine that
//! has run 10 ms on one time slice is asked to give way; one still running 10 ms after
//! that is a hog, and its queue gets a relief P. `docs/design/sysmon.md`, steps 3 and 5.

use super::g::G_RUNNING;
use super::m::M;
use super::p::{P, P_IDLE, P_RUNNING, P_SYSCALL};
use super::schedt::SCHED;
use super::sysmon::{FORCE_PREEMPT_NS, HOG_NS};
use crate::config::settings;
use std::sync::atomic::Ordering;

/// Per-P observations (Go: `p.sysmontick`). Owned by sysmon.
#[derive(Clone, Copy, Default)]
pub(crate) struct Tick {
    schedtick: u32,
    schedwhen: i64,
    syscalltick: u32,
    syscallwhen: i64,
    /// When `schedtick` was first seen at its current value (start of the slice).
    slice_start: i64,
    /// The slice's goroutine was found hogging (a relief P is lent for it); its id.
    hog: Option<u64>,
    /// The P was running or in a blocking call last round (its slice fields are valid).
    watched: bool,
    /// Kernel id of the hog's thread, whose slice sysmon lengthened (0: none).
    hog_tid: i64,
    /// `p.defer_seq` at the last look (sysmon's `stranded_work`).
    pub(crate) defer_seq: u32,
}

/// What one `retake` pass found.
pub(crate) struct Retake {
    /// A P in a blocking call was handed off.
    pub(crate) retaken: bool,
    /// A preempt request is outstanding or a goroutine hogs its P.
    pub(crate) watching: bool,
}

/// Go: `retake`. Looks at Ps `0..procs` (with `ticks` holding what the last pass saw):
/// hands off Ps stuck in blocking calls, asks long-running goroutines to give way, and
/// sets the number of relief Ps to the number of hogs.
pub(crate) fn retake(now: i64, procs: usize, ticks: &mut Vec<Tick>) -> Retake {
    if ticks.len() < procs {
        ticks.resize(procs, Tick::default());
    }
    let mut r = Retake {
        retaken: false,
        watching: false,
    };
    let mut hogs_changed = false;
    for (i, t) in ticks.iter_mut().enumerate().take(procs) {
        let Some(p) = SCHED.p(i) else { continue };
        let status = p.status.load(Ordering::SeqCst);
        let st = p.schedtick.load(Ordering::Relaxed);
        hogs_changed |= hog_gave_way(t, now, status, st);
        if status != P_RUNNING && status != P_SYSCALL {
            t.watched = false;
            continue;
        }
        if !t.watched || st != t.schedtick {
            // a new slice, or a P we were not watching (new, relief, or idle last round):
            // its slice is counted from now, not from whenever schedtick last moved
            t.watched = true;
            t.schedtick = st;
            t.schedwhen = now;
            t.slice_start = now;
        }
        if status == P_SYSCALL {
            r.retaken |= retake_syscall(p, t, now);
        } else if t.slice_start != now {
            // (a slice that just started has nothing to preempt)
            hogs_changed |= preempt_running(p, t, now, &mut r);
        }
    }
    let hogs = ticks.iter().filter(|t| t.hog.is_some()).count();
    r.watching |= hogs > 0;
    if hogs_changed {
        super::procresize::set_relief(hogs);
    }
    r
}

/// A P watched as a hog's that changed slice, or stopped running (the hog gave way,
/// entered a blocking call, or its P went idle): the hog mark goes, and its thread's
/// kernel slice is shortened again. Returns whether the hog count changed.
fn hog_gave_way(t: &mut Tick, now: i64, status: u32, schedtick: u32) -> bool {
    let Some(goid) = t.hog else { return false };
    if status == P_RUNNING && schedtick == t.schedtick {
        return false;
    }
    t.hog = None;
    if t.hog_tid != 0 {
        crate::os::thread::short_slice(t.hog_tid);
        t.hog_tid = 0;
    }
    if settings().debug.hogreport {
        eprintln!(
            "gort: hogreport: goroutine {goid} gave way after {}ms",
            (now - t.slice_start) / 1_000_000
        );
    }
    true
}

/// A P in a blocking call: retaken once the call has been seen for a whole sysmon round,
/// or (Go's sysretake) once its goroutine has held it a whole time slice over many short
/// calls, which never show one call for a whole round. Unlike Go, the latter only while
/// goroutines wait for a P (in its queue or the global one): retaking from a lone caller
/// only makes it queue and wait for a P (it halves the throughput of parallel
/// blocking-call loops). Returns whether the P was handed off.
fn retake_syscall(p: &'static P, t: &mut Tick, now: i64) -> bool {
    let sysretake = now - t.slice_start >= FORCE_PREEMPT_NS
        && (!p.runq.is_empty() || SCHED.runqsize.load(Ordering::SeqCst) != 0);
    // a blocking call must be seen for a whole tick before it is retaken
    let sc = p.syscalltick.load(Ordering::Relaxed);
    if !sysretake && sc != t.syscalltick {
        t.syscalltick = sc;
        t.syscallwhen = now;
        return false;
    }
    let held = if sysretake {
        FORCE_PREEMPT_NS
    } else {
        now - t.syscallwhen
    };
    handoff_syscall_p(p, held)
}

/// Hands off `p`, in `_Psyscall` for `syscall_for` ns, if there is work for it (or
/// nobody else to look for work, or the call passed 10 ms); the CAS races the M coming
/// back from its call (`exitsyscall`'s fast path). Returns whether it did.
fn handoff_syscall_p(p: &'static P, syscall_for: i64) -> bool {
    if p.runq.is_empty()
        && SCHED.nmspinning.load(Ordering::SeqCst) + SCHED.npidle.load(Ordering::SeqCst) > 0
        && syscall_for < FORCE_PREEMPT_NS
    {
        return false;
    }
    if p.status
        .compare_exchange(P_SYSCALL, P_IDLE, Ordering::AcqRel, Ordering::Relaxed) // acq_rel; pairs with exitsyscall's CAS on the same word
        .is_err()
    {
        return false; // its M came back first
    }
    SCHED.counters.handoffs.fetch_add(1, Ordering::Relaxed);
    super::idle::handoff_p(p);
    true
}

/// A running P: its goroutine is asked to give way after a time slice (Go:
/// `preemptone`), and marked a hog `HOG_NS` into the slice. Returns whether the hog
/// count changed.
fn preempt_running(p: &'static P, t: &mut Tick, now: i64, r: &mut Retake) -> bool {
    // Ms and Gs are never freed, so a racy read names a live G (at worst one that just
    // finished its slice: it gets one extra, harmless request, or is counted as a hog
    // until the next round sees the new schedtick).
    let Some(g) = p_m(p).and_then(|m| m.curg()) else {
        return false;
    };
    if now - t.schedwhen >= FORCE_PREEMPT_NS {
        if !g.preempt.swap(true, Ordering::Relaxed) {
            SCHED.counters.preemptions.fetch_add(1, Ordering::Relaxed);
        }
        t.schedwhen = now; // ask again after another slice
    }
    let mut changed = false;
    if t.hog.is_none() && now - t.slice_start >= HOG_NS && g.status() == G_RUNNING {
        let goid = g.goid.load(Ordering::Relaxed);
        t.hog = Some(goid);
        changed = true;
        // the hog's thread gets the kernel's default slice back, so the threads running
        // everything else (short slices) preempt it when they wake
        if let Some(m) = p_m(p) {
            t.hog_tid = m.tid.load(Ordering::Relaxed);
            crate::os::thread::set_slice(t.hog_tid, 0);
        }
        SCHED.counters.hogs.fetch_add(1, Ordering::Relaxed);
        if settings().debug.hogreport {
            let at = g.gopc();
            eprintln!(
                "gort: hogreport: goroutine {goid} ran {}ms on p{} without a preemption \
                 check; lending its queue another P\ncreated at {}:{}:{}",
                (now - t.slice_start) / 1_000_000,
                p.id,
                at.file(),
                at.line(),
                at.column()
            );
        }
    }
    r.watching |= g.preempt.load(Ordering::Relaxed) || t.hog.is_some();
    changed
}

/// The M holding `p`, if any (a racy read, see `preempt_running`).
fn p_m(p: &P) -> Option<&'static M> {
    // SAFETY: Ms are leaked and never freed; `p.m` is null or a valid M.
    unsafe { p.m.load(Ordering::Relaxed).as_ref() }
}
