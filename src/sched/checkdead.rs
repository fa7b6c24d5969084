//! Deadlock detection (Go: proc.go `checkdead`).
//!
//! Called with `sched.lock` held whenever an M goes idle (`stopm`) or a `run` caller
//! starts waiting for its main goroutine. While a `run` is in progress, if no M is
//! running, no timer is pending, and no goroutine is runnable, nothing can ever run
//! again: print Go's `fatal error: all goroutines are asleep - deadlock!` with the
//! goroutine list and exit with status 2. The list shows where each goroutine is blocked
//! (its frames, walked on its own stack by `context::call_on_suspended`): with every M
//! idle and `sched.lock` held, nothing can resume a goroutine meanwhile.
//!
//! gort is a library, so threads it does not know about may hold the other end of a
//! channel and wake a goroutine later (Go has no such threads: its cgo calls count as
//! running Ms). The check therefore only reports when every thread of the process is one
//! of the runtime's own (Linux: `/proc/self/task`); otherwise it stays silent, as Go's
//! detector does whenever an M is blocked outside Go.

use super::g::{G_RUNNABLE, G_RUNNING, G_SYSCALL, G_WAITING};
use super::schedt::{Locked, SCHED};
use std::sync::atomic::Ordering;

/// Checks for a whole-program deadlock (see the module docs). `l` proves `sched.lock` is
/// held, so no M can leave the idle list meanwhile.
pub(crate) fn checkdead(l: &Locked) {
    // Go reports a deadlock while `main` waits for ever. Here that is a `run` caller
    // waiting for its main goroutine: with no `run` in progress, the program's own thread
    // is doing something else (or the process is exiting: a check then, from an M going
    // idle after the last `run` returned, once printed a false "no goroutines").
    if SCHED.nrun_active.load(Ordering::SeqCst) == 0 {
        return;
    }
    let ms = SCHED.nworkers.load(Ordering::SeqCst) + SCHED.nrun_active.load(Ordering::SeqCst);
    // nrun_finishing before nrun_waiting: `run` drops waiting, then finishing. Read the
    // other way round, a check could count a returning run as waiting (old value) and not
    // as finishing (new value), and report a deadlock while that run's own thread goes on
    // running the program. In this order, seeing finishing dropped means seeing waiting
    // dropped too (both SeqCst), and the run still counts in `ms`: no report.
    if SCHED.nrun_finishing.load(Ordering::SeqCst) > 0 {
        return;
    }
    // The timer M is not counted as idle: while it exists timers are pending, and while
    // it fires them they are no longer pending but their goroutines not yet runnable.
    let idle = SCHED.nmidle.load(Ordering::SeqCst) as i64
        + SCHED.nrun_waiting.load(Ordering::SeqCst)
        + SCHED.nmidlelocked.load(Ordering::SeqCst);
    if ms - idle > 0 {
        return;
    }
    if crate::sched::timers::timers_pending() || !l.runq.is_empty() {
        return;
    }
    if SCHED.local_work() {
        return;
    }
    // goroutines not started yet are not in allgs; one may be in transit between queues
    // (sysmon moving a retired P's queue to the global one)
    if super::spawn::queued() > 0 {
        return;
    }
    if foreign_threads(ms + SCHED.nsys.load(Ordering::SeqCst)) {
        return;
    }
    let Ok(gs) = SCHED.allgs.try_lock() else {
        return;
    };
    let mut waiting = 0;
    for g in gs.iter() {
        match g.status() {
            G_WAITING => waiting += 1,
            G_RUNNABLE | G_RUNNING | G_SYSCALL => return, // being handed over; not dead
            _ => {}
        }
    }
    drop(gs);
    if waiting == 0 {
        crate::debug::fatal_deadlock("no goroutines (main called runtime.Goexit) - deadlock!");
    }
    crate::debug::fatal_deadlock("all goroutines are asleep - deadlock!");
}

/// Whether the process has threads besides the runtime's `ms` Ms. Threads of Ms that
/// left the runtime (reclaimed idle Ms, Ms whose locked goroutine exited) may linger in
/// /proc/self/task for a moment after the decision: they are not counted (otherwise the
/// last check of a deadlocked program could take one for a foreign thread and stay
/// silent for ever). A dead M's id is forgotten once its thread is gone, so a later
/// foreign thread that reuses the id counts.
fn foreign_threads(ms: i64) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(d) = std::fs::read_dir("/proc/self/task") else {
            return true;
        };
        let tids: Vec<i64> = d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let Ok(allm) = SCHED.allm.try_lock() else {
            return true; // cannot tell: stay silent
        };
        let mut lingering = 0;
        for m in allm.iter().filter(|m| m.dead.load(Ordering::SeqCst)) {
            let tid = m.tid.load(Ordering::Relaxed);
            if tid == 0 {
                continue;
            }
            if tids.contains(&tid) {
                lingering += 1;
            } else {
                m.tid.store(0, Ordering::Relaxed); // gone: its id may be reused
            }
        }
        tids.len() as i64 - lingering > ms
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ms;
        true
    }
}
