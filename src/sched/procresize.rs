//! GOMAXPROCS at run time (Go: proc.go `procresize`, `runtime.GOMAXPROCS`).
//!
//! Go stops the world to resize. gort resizes without stopping anyone:
//!
//! * **Growing** creates (or revives) Ps, puts them on the idle list and wakes a spinning
//!   M, which steals work for them.
//! * **Shrinking** lowers `gomaxprocs` first, so from then on nobody steals from, hands
//!   out, or counts the Ps at or above the new count. Idle ones are retired at once. A
//!   P that an M holds is retired by that M at its next scheduling round (`find_runnable`
//!   checks its P's id), and one in a blocking call when its M comes back and schedules.
//!   A P released to the idle list at or above the count is retired instead of listed.
//!   Retiring moves the P's queued goroutines to the head of the global queue, its timers
//!   to P0 and its free goroutines to the global list, and marks it `_Pdead`; the P
//!   object stays in `allp` for reuse, as in Go.
//!
//! A goroutine that never reaches the scheduler delays the retirement of its P (Go's STW
//! waits for it the same way, bounded there by preemption).

use super::p::{P, P_DEAD, P_IDLE};
use super::schedt::{lock, Locked, SCHED};
use crate::config::MAX_PROCS;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// Serialises resizes.
static RESIZE: Mutex<()> = Mutex::new(());

/// Reads GOMAXPROCS (`n == 0`), or sets it to `n` and returns the previous value
/// (Go's `runtime.GOMAXPROCS`). Values above [`MAX_PROCS`](crate::MAX_PROCS) are clamped
/// to it, with a note on stderr.
///
/// ```
/// gort::run(|| {
///     let old = gort::gomaxprocs(0);
///     assert!(old >= 1);
///     gort::gomaxprocs(1);
///     assert_eq!(gort::gomaxprocs(0), 1);
///     gort::gomaxprocs(old);
/// });
/// ```
pub fn gomaxprocs(n: usize) -> usize {
    crate::sched::init::ensure_init();
    let _g = lock(&RESIZE);
    let relief = SCHED.relief.load(Ordering::Relaxed) as usize;
    let old = SCHED.procs() - relief;
    if n == 0 || n == old {
        return old;
    }
    let n = if n > MAX_PROCS {
        eprintln!("runtime: gomaxprocs({n}) is above the maximum; using {MAX_PROCS}");
        MAX_PROCS
    } else {
        n
    };
    // relief Ps for hogs stay on top of the new count, as far as MAX_PROCS allows
    let relief = relief.min(MAX_PROCS - n);
    SCHED.relief.store(relief as u32, Ordering::Relaxed);
    procresize(n + relief);
    old
}

/// Sets the number of relief Ps (one per goroutine that holds its P past the hog
/// hand-off limit; see `sysmon.rs`), within [`MAX_PROCS`]. Called by sysmon only.
pub(crate) fn set_relief(k: usize) {
    let _g = lock(&RESIZE);
    let relief = SCHED.relief.load(Ordering::Relaxed) as usize;
    let user = SCHED.procs() - relief;
    let k = k.min(MAX_PROCS - user);
    if k == relief {
        return;
    }
    SCHED.relief.store(k as u32, Ordering::Relaxed);
    procresize(user + k);
}

/// Makes Ps `0..n` the active ones (Go: `procresize`, without a stop-the-world): revives
/// or creates Ps up to `n`, or retires those at or above it (idle ones at once, held ones
/// by their M). Called with `RESIZE` held.
fn procresize(n: usize) {
    let old = SCHED.procs();
    if n == old {
        return;
    }
    let mut l = SCHED.lock();
    if n > old {
        for i in old..n {
            let p = match SCHED.p(i) {
                Some(p) => p,
                None => {
                    let p: &'static P = Box::leak(Box::new(P::new(i as u32)));
                    p.status.store(P_DEAD, Ordering::Relaxed);
                    SCHED.allp[i].store(p as *const P as *mut P, Ordering::Release);
                    p
                }
            };
            SCHED.gomaxprocs.store((i + 1) as u32, Ordering::SeqCst);
            // A P still held (shrunk past but not yet retired by its M) simply becomes
            // valid again; only dead ones are revived.
            if p.status.load(Ordering::Acquire) == P_DEAD {
                p.status.store(P_IDLE, Ordering::Release);
                l.pidleput(p);
            }
        }
        drop(l);
        super::idle::wakep();
    } else {
        SCHED.gomaxprocs.store(n as u32, Ordering::SeqCst);
        let retire: Vec<&'static P> = l
            .pidle
            .iter()
            .copied()
            .filter(|p| p.id as usize >= n)
            .collect();
        l.pidle.retain(|p| (p.id as usize) < n);
        SCHED
            .npidle
            .fetch_sub(retire.len() as u32, Ordering::SeqCst);
        for p in retire {
            retire_idle(&mut l, p);
        }
    }
}

/// Whether `p` is beyond the current GOMAXPROCS and must be retired.
#[inline]
pub(crate) fn must_retire(p: &P) -> bool {
    p.id as usize >= SCHED.procs()
}

/// Retires an idle P (owned by the caller, not on the idle list): `_Pidle -> _Pdead`.
/// Its queue is empty; its timers and free Gs move on. Called with `sched.lock` held.
pub(crate) fn retire_idle(l: &mut Locked, p: &'static P) {
    let _ = l;
    move_timers(p);
    move_gfree(p);
    p.status.store(P_DEAD, Ordering::Release);
}

/// Retires the P that `m` holds (at the top of `find_runnable`): moves its runnable Gs to
/// the head of the global queue, then retires it and leaves `m` without a P.
pub(crate) fn retire_held(m: &'static super::m::M, p: &'static P) {
    let mut gs = Vec::new();
    p.runq.drain(&mut gs);
    let Some(p) = super::idle::releasep(m) else {
        crate::throw!("procresize: retiring M holds no P");
    };
    let mut l = SCHED.lock();
    for &g in gs.iter().rev() {
        // SAFETY: the run queue only holds pointers made by `Gp::raw`.
        l.globrunqputhead(unsafe { super::spawn::Gp::from_raw(g) });
    }
    // GOMAXPROCS may have grown back meanwhile: then the P goes back to the idle list
    // (pidleput re-checks under the lock).
    l.pidleput(p);
    drop(l);
    if !gs.is_empty() {
        super::idle::wakep();
    }
}

fn move_timers(p: &'static P) {
    if p.id == 0 {
        return;
    }
    let Some(to) = SCHED.p(0) else {
        crate::throw!("procresize: no P0");
    };
    for e in p.timers.take_all() {
        to.timers.add(e);
    }
}

fn move_gfree(p: &'static P) {
    // SAFETY: the caller owns the retiring P.
    let cache = unsafe { p.gfree() };
    if !cache.is_empty() {
        lock(&SCHED.gfree).hot.append(cache);
    }
    // SAFETY: as above.
    let records = unsafe { p.spawnfree() };
    if !records.is_empty() {
        lock(&SCHED.spawnfree).append(records);
    }
}
