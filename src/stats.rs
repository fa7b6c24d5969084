//! [`stats`]: a snapshot of the scheduler's state and counters.

use crate::sched::schedt::{lock, SCHED};
use crate::stack;
use std::sync::atomic::Ordering;

/// A snapshot of the scheduler (the numbers `GORT_DEBUG=schedtrace` prints, and more).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SchedStats {
    /// Live goroutines.
    pub goroutines: usize,
    /// Live goroutines that are queued and have not started yet: they have no stack, only
    /// a 192-byte spawn record each (they get a G and a stack when they first run).
    pub unstarted_goroutines: usize,
    /// Ms (OS threads) in the runtime, including `run` callers.
    pub threads: usize,
    /// Ms parked on the idle list.
    pub idle_threads: usize,
    /// Ms spinning (looking for work).
    pub spinning_threads: usize,
    /// GOMAXPROCS.
    pub procs: usize,
    /// Extra Ps lent while goroutines hold theirs without reaching a preemption check
    /// (sysmon's hog hand-off; 0 when nothing hogs). `local_runq` covers these too.
    pub relief_procs: usize,
    /// Idle Ps.
    pub idle_procs: usize,
    /// Length of the global run queue.
    pub global_runq: usize,
    /// Length of each P's local run queue (runnext not counted, as in Go).
    pub local_runq: Vec<usize>,
    /// Goroutines created since start.
    pub spawns: u64,
    /// Successful steals.
    pub steals: u64,
    /// Parks.
    pub parks: u64,
    /// Ps handed off from blocked Ms.
    pub handoffs: u64,
    /// Preemptions.
    pub preemptions: u64,
    /// Goroutines found holding their P 10 ms past a preempt request without reaching a
    /// check; each got a relief P (sysmon's hog hand-off).
    pub hogs: u64,
    /// How stack guard pages are installed (`Mprotect` limits live goroutines to about
    /// `vm.max_map_count / 2`).
    pub stack_guard_mode: stack::GuardMode,
    /// Address space reserved for stacks, bytes.
    pub stack_reserved_bytes: usize,
    /// Stacks carved so far (each is reused many times).
    pub stacks_carved: usize,
    /// Dead goroutines' stacks whose pages were given back.
    pub stack_releases: u64,
    /// Entries in the timer heaps (stopped timers included until they surface).
    pub timers: usize,
    /// Idle threads that exited after `GORT_DEBUG=mreclaim` (default 10 s) of idleness.
    pub reclaimed_threads: u64,
}

/// A snapshot of the scheduler.
///
/// ```
/// gort::run(|| {
///     let s = gort::stats();
///     assert!(s.procs >= 1 && s.goroutines >= 1);
/// });
/// ```
pub fn stats() -> SchedStats {
    let procs = SCHED.procs();
    let c = &SCHED.counters;
    let per_p = |f: fn(&crate::sched::p::P) -> u64| -> u64 {
        (0..crate::MAX_PROCS).map_while(|i| SCHED.p(i)).map(f).sum()
    };
    SchedStats {
        goroutines: crate::num_goroutine(),
        unstarted_goroutines: crate::sched::spawn::queued() as usize,
        threads: SCHED.mcount.load(Ordering::Relaxed).max(0) as usize,
        idle_threads: SCHED.nmidle.load(Ordering::Relaxed) as usize,
        spinning_threads: SCHED.nmspinning.load(Ordering::Relaxed) as usize,
        procs: SCHED.user_procs(),
        relief_procs: procs - SCHED.user_procs().min(procs),
        idle_procs: SCHED.npidle.load(Ordering::Relaxed) as usize,
        global_runq: lock(&SCHED.lock).runq.len(),
        local_runq: (0..procs)
            .map(|i| SCHED.p(i).map_or(0, |p| p.runq.len() as usize))
            .collect(),
        spawns: per_p(|p| p.created.load(Ordering::Relaxed))
            + SCHED.ngoroutines.load(Ordering::Relaxed).max(0) as u64,
        steals: per_p(|p| p.steals.load(Ordering::Relaxed)),
        parks: per_p(|p| p.parks.load(Ordering::Relaxed)),
        handoffs: c.handoffs.load(Ordering::Relaxed),
        preemptions: c.preemptions.load(Ordering::Relaxed),
        hogs: c.hogs.load(Ordering::Relaxed),
        stack_guard_mode: stack::guard_mode(),
        stack_reserved_bytes: stack::RESERVED_BYTES.load(Ordering::Relaxed),
        stacks_carved: stack::STACKS_CARVED.load(Ordering::Relaxed),
        stack_releases: c.stack_releases.load(Ordering::Relaxed),
        timers: crate::sched::timers::timer_count(),
        reclaimed_threads: c.reclaimed.load(Ordering::Relaxed),
    }
}
