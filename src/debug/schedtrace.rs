//! `GORT_DEBUG=schedtrace=MS[,scheddetail=1]` (Go: proc.go `schedtrace`): a summary of the
//! scheduler printed to stderr by sysmon every MS milliseconds, and once, in detail, when
//! the process dies of a fatal error or panic while either setting is on.
//!
//! ```text
//! SCHED 0ms: gomaxprocs=2 idleprocs=0 threads=4 spinningthreads=1 idlethreads=0 runqueue=0 [2 0]
//! ```
//!
//! The fields are Go's: milliseconds since the first trace, GOMAXPROCS, idle Ps, threads
//! (Ms and sysmon, as Go's `mcount`), spinning Ms, idle Ms, the global run queue's length,
//! and each P's local queue (`runnext` not counted). gort appends, at the end of the line
//! so that Go's fields keep their places, `unstarted=N` (goroutines queued as spawn
//! records, not started yet) and `reliefprocs=N` (Ps sysmon lends to hogs; their queues
//! are in the list too) when they are not zero.
//!
//! With `scheddetail=1` the bracket list gives way to `nmidlelocked=N sysmonwait=0|1` and
//! one line per P, per M (newest first) and per goroutine, as Go prints them, with the
//! fields gort has:
//!
//! ```text
//!   P0: status=1 schedtick=50 syscalltick=0 m=0 runqsize=1 timerslen=1
//!   M3: p=1 curg=5 spinning=false blocked=false lockedg=-1
//!   G1: status=4(sleep) m=-1 lockedm=-1
//! ```
//!
//! Statuses are numeric as in Go (P: 0 idle, 1 running, 2 syscall, 4 dead; G: 1
//! runnable, 2 running, 3 syscall, 4 waiting, 6 dead), `-1` means none, and the wait reason
//! in parentheses is the last one set (Go does not clear it either). Everything is read
//! without taking the scheduler's lock, so a line is a snapshot of moving parts. At a
//! fatal error the lists (Ms, goroutines, timers) are read only if their locks are free
//! (the dying thread may hold one), with a note otherwise.

use crate::sched::g::{G, G_DEAD};
use crate::sched::m::M;
use crate::sched::schedt::SCHED;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// When the first trace was printed (ms are counted from there, as Go does).
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn m_id(m: *const M) -> i64 {
    // SAFETY: Ms are never freed; a non-null M pointer stays valid.
    unsafe { m.as_ref() }.map_or(-1, |m| m.id)
}

fn g_id(g: *const G) -> i64 {
    // SAFETY: Gs are never freed; a non-null G pointer stays valid.
    unsafe { g.as_ref() }.map_or(-1, |g| g.goid.load(Ordering::Relaxed) as i64)
}

/// Locks `m`, or with `fatal` only tries to (a dying thread may hold it).
fn lock_for<T>(m: &std::sync::Mutex<T>, fatal: bool) -> Option<std::sync::MutexGuard<'_, T>> {
    if fatal {
        match m.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    } else {
        Some(m.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One trace, as Go's `schedtrace(detailed)` prints it (`fatal`: from a dying thread).
pub(crate) fn schedtrace(detailed: bool, fatal: bool) -> String {
    let start = *START.get_or_init(Instant::now);
    let ms = start.elapsed().as_millis();
    let procs = SCHED.procs();
    let user = SCHED.user_procs();
    let mut out = String::new();
    write_summary(&mut out, ms, user);
    let extra = gort_extras(procs, user);
    if !detailed {
        write_queue_lengths(&mut out, procs);
        out.push_str(&extra);
        out.push('\n');
        return out;
    }
    let _ = writeln!(
        out,
        " nmidlelocked={} sysmonwait={}{extra}",
        SCHED.nmidlelocked.load(Ordering::Relaxed),
        u8::from(crate::sched::sysmon::waiting()),
    );
    write_ps(&mut out, procs, fatal);
    write_ms(&mut out, fatal);
    write_gs(&mut out, fatal);
    write_unstarted(&mut out);
    out
}

/// Go's fields of the first line, up to `runqueue=`.
fn write_summary(out: &mut String, ms: u128, user: usize) {
    let _ = write!(
        out,
        "SCHED {ms}ms: gomaxprocs={user} idleprocs={} threads={} spinningthreads={} \
         idlethreads={} runqueue={}",
        SCHED.npidle.load(Ordering::Relaxed),
        SCHED.mcount.load(Ordering::Relaxed).max(0) + SCHED.nsys.load(Ordering::Relaxed).max(0),
        SCHED.nmspinning.load(Ordering::Relaxed),
        SCHED.nmidle.load(Ordering::Relaxed),
        SCHED.runqsize.load(Ordering::Relaxed),
    );
}

/// gort's fields, appended after Go's (` unstarted=N reliefprocs=N`, each only if not
/// zero).
fn gort_extras(procs: usize, user: usize) -> String {
    let mut extra = String::new();
    let unstarted = crate::sched::spawn::queued();
    if unstarted > 0 {
        let _ = write!(extra, " unstarted={unstarted}");
    }
    if procs > user {
        let _ = write!(extra, " reliefprocs={}", procs - user);
    }
    extra
}

/// The summary's ` [n0 n1 ...]`: each P's local run queue length.
fn write_queue_lengths(out: &mut String, procs: usize) {
    out.push_str(" [");
    for i in 0..procs {
        if i > 0 {
            out.push(' ');
        }
        let n = SCHED.p(i).map_or(0, |p| p.runq.len());
        let _ = write!(out, "{n}");
    }
    out.push(']');
}

/// One `  P<id>: ...` line per P.
fn write_ps(out: &mut String, procs: usize, fatal: bool) {
    for p in (0..procs).filter_map(|i| SCHED.p(i)) {
        let timers = if fatal {
            p.timers
                .try_len()
                .map_or_else(|| "?".to_string(), |n| n.to_string())
        } else {
            p.timers.len().to_string()
        };
        let _ = writeln!(
            out,
            "  P{}: status={} schedtick={} syscalltick={} m={} runqsize={} timerslen={}",
            p.id,
            p.status.load(Ordering::Relaxed),
            p.schedtick.load(Ordering::Relaxed),
            p.syscalltick.load(Ordering::Relaxed),
            m_id(p.m.load(Ordering::Relaxed)),
            p.runq.len(),
            timers,
        );
    }
}

/// One `  M<id>: ...` line per live M, newest first (a copy of `allm`, formatted after
/// its lock is released).
fn write_ms(out: &mut String, fatal: bool) {
    let Some(ms) = lock_for(&SCHED.allm, fatal).map(|l| l.clone()) else {
        out.push_str("  (Ms not listed: allm is locked)\n");
        return;
    };
    for m in ms.iter().rev().filter(|m| !m.dead.load(Ordering::Relaxed)) {
        let p = m.p.load(Ordering::Relaxed).cast_const();
        // SAFETY: Ps are never freed.
        let pid = unsafe { p.as_ref() }.map_or(-1, |p| i64::from(p.id));
        let _ = writeln!(
            out,
            "  M{}: p={} curg={} spinning={} blocked={} lockedg={}",
            m.id,
            pid,
            g_id(m.curg.load(Ordering::Relaxed)),
            m.spinning.load(Ordering::Relaxed),
            m.blocked.load(Ordering::Relaxed),
            g_id(m.lockedg.load(Ordering::Relaxed)),
        );
    }
}

/// One `  G<id>: ...` line per goroutine in `allgs` (a copy, formatted after its lock is
/// released).
fn write_gs(out: &mut String, fatal: bool) {
    let Some(gs) = lock_for(&SCHED.allgs, fatal).map(|l| l.clone()) else {
        out.push_str("  (goroutines not listed: allgs is locked)\n");
        return;
    };
    for g in gs.iter() {
        let st = g.status();
        let why = if st == G_DEAD {
            ""
        } else {
            g.waitreason().as_str()
        };
        let _ = writeln!(
            out,
            "  G{}: status={}({}) m={} lockedm={}",
            g.goid.load(Ordering::Relaxed),
            st,
            why,
            m_id(g.m.load(Ordering::Relaxed)),
            m_id(g.lockedm.load(Ordering::Relaxed)),
        );
    }
}

/// One `  G<id>: status=1() ...` line per goroutine queued as a spawn record, not started.
fn write_unstarted(out: &mut String) {
    match crate::sched::spawn::unstarted() {
        Some(recs) => {
            for s in recs {
                let _ = writeln!(out, "  G{}: status=1() m=-1 lockedm=-1", s.goid());
            }
        }
        None => out.push_str("  (unstarted goroutines not listed: their list is locked)\n"),
    }
}

/// Sysmon's part: prints a trace when `GORT_DEBUG=schedtrace=MS` is on and MS have passed
/// since the last one (`now`: sysmon's clock, ns; sysmon sleeps at most MS between
/// rounds while tracing).
pub(crate) fn sysmon_tick(now: i64) {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let d = &crate::config::settings().debug;
    if d.schedtrace_ms == 0 {
        return;
    }
    let period = i64::try_from(d.schedtrace_ms)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000);
    let last = LAST.load(Ordering::Relaxed);
    if last == i64::MIN || now - last >= period {
        LAST.store(now, Ordering::Relaxed);
        let text = schedtrace(d.scheddetail, false);
        let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
    }
}

/// At a fatal error or panic with `schedtrace` or `scheddetail` on: the detailed trace
/// (Go's `startpanic_m`), first thing.
pub(crate) fn on_fatal() -> Option<String> {
    let d = &crate::config::settings().debug;
    (d.schedtrace_ms > 0 || d.scheddetail).then(|| schedtrace(true, true))
}
