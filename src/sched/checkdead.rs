//! Deadlock detection (Go: proc.go `checkdead`).
//!
//! Called with `sched.lock` held whenever an M goes idle (`stopm`) or a `run` caller
//! starts waiting for its main goroutine. If no M is running, no timer is pending, and
//! no goroutine is runnable, nothing can ever run again: print Go's
//! `fatal error: all goroutines are asleep - deadlock!` with the goroutine list and exit
//! with status 2.
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
    checkdead_exiting(l, 0);
}

/// `checkdead` from a thread that is about to exit (`exiting` threads still show in
/// /proc/self/task but are no longer Ms).
pub(crate) fn checkdead_exiting(l: &Locked, exiting: i64) {
    let ms = SCHED.nworkers.load(Ordering::SeqCst) + SCHED.nrun_active.load(Ordering::SeqCst);
    // The timer M is not counted as idle: while it exists timers are pending, and while
    // it fires them they are no longer pending but their goroutines not yet runnable.
    let idle = SCHED.nmidle.load(Ordering::SeqCst) as i64
        + SCHED.nrun_waiting.load(Ordering::SeqCst)
        + SCHED.nmidlelocked.load(Ordering::SeqCst);
    if ms - idle > 0 || SCHED.nrun_finishing.load(Ordering::SeqCst) > 0 {
        return;
    }
    if crate::time::timers_pending() || !l.runq.is_empty() {
        return;
    }
    if SCHED.local_work() {
        return;
    }
    if foreign_threads(ms + SCHED.nsys.load(Ordering::SeqCst) + exiting) {
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
        crate::debug::fatal("no goroutines (main called runtime.Goexit) - deadlock!");
    }
    crate::debug::fatal("all goroutines are asleep - deadlock!");
}

/// Whether the process has threads besides the runtime's `ms` Ms.
fn foreign_threads(ms: i64) -> bool {
    #[cfg(target_os = "linux")]
    {
        match std::fs::read_dir("/proc/self/task") {
            Ok(d) => d.count() as i64 > ms,
            Err(_) => true,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ms;
        true
    }
}
