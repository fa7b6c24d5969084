//! sysmon: the monitor thread (Go: proc.go `sysmon`), first part.
//!
//! A dedicated thread with no P. It sleeps 20 µs between rounds, doubling the sleep after
//! 50 rounds in which it had nothing to do, up to 10 ms; when every P is idle and no
//! timer is pending it sleeps until `wake` is called (a P being acquired), unless
//! `GORT_DEBUG=schedtrace` is on (step 6). Each round it:
//!
//! 1. runs timers that are overdue by more than a round while no M waits for timers, so
//!    a goroutine computing on a P does not hold up that P's timers (Go weakness #38860);
//! 2. starts an M when runnable goroutines wait in some queue while Ps are idle and no M
//!    is spinning (work stranded behind a busy goroutine, or readied into its `runnext`
//!    with a deferred wake-up: a readier deferring one ends a long sysmon sleep,
//!    [`nudge`], and sysmon looks every `DEFER_LOOK` while such a goroutine waits);
//! 3. asks goroutines that have held their P for 10 ms (`FORCE_PREEMPT_NS`) to give
//!    way: it sets their preempt flag, which [`preempt_point`](crate::preempt_point) and
//!    the runtime's entry points check.
//!
//! 4. retakes Ps whose M sits in a `gort::blocking` call (see `syscall.rs`);
//! 5. **hog hand-off**: a goroutine that still holds its P 10 ms after the preempt
//!    request (`HOG_NS` into its slice) is computing without reaching a check. Its P
//!    cannot be taken from under it (the goroutine may enter the runtime and use the P
//!    at any instant), so sysmon lends a *relief P* instead: the active P count grows by
//!    one (`procresize::set_relief`) and an M starts on the new P, stealing the hog P's
//!    queue, runnext and timers. The hog keeps running on its thread and the OS shares
//!    the CPUs between it and the others, exactly as for a goroutine in a blocking call.
//!    When the hog gives way (its P's schedtick moves, or the P leaves `_Prunning`) the
//!    relief is withdrawn and the highest P retires at its next scheduling round.
//!    `GORT_DEBUG=hogreport=1` prints both events with the goroutine's creation site.
//! 6. prints the scheduler trace every `GORT_DEBUG=schedtrace=MS` (`debug::schedtrace`).

use super::schedt::SCHED;
use crate::config::settings;
use crate::time::heap::nanotime;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// Go: `forcePreemptNS`.
pub(crate) const FORCE_PREEMPT_NS: i64 = 10_000_000;
/// A slice this long (10 ms past the preempt request) makes its goroutine a hog.
pub(crate) const HOG_NS: i64 = 2 * FORCE_PREEMPT_NS;
/// Sysmon's longest sleep while a preempt request or a hog is outstanding.
const WATCH_DELAY: Duration = Duration::from_millis(1);

/// Sysmon's longest sleep while a goroutine readied into some P's `runnext` waits for its
/// wake-up (deferred: see `park::put_runnable`), so that a readier that keeps computing
/// without a gort call holds it up for about this long, not for sysmon's 10 ms backoff.
const DEFER_LOOK: Duration = Duration::from_micros(500);

/// Futex word sysmon sleeps on when it has nothing to watch, and during sleeps longer
/// than `DEFER_LOOK`.
static PARK: AtomicU32 = AtomicU32::new(0);
/// Whether sysmon is in that deep sleep.
static SLEEPING: AtomicBool = AtomicBool::new(false);
/// Whether sysmon is in a sleep longer than `DEFER_LOOK` (protocol: `nudge`).
static NAPPING: AtomicBool = AtomicBool::new(false);

/// Starts sysmon (once, from `init::ensure_init`).
pub(crate) fn start() {
    let r = std::thread::Builder::new()
        .name("gort-sysmon".into())
        .stack_size(256 * 1024)
        .spawn(|| {
            if std::panic::catch_unwind(run).is_err() {
                crate::throw!("panic on the sysmon thread");
            }
        });
    if let Err(e) = r {
        crate::debug::fatal_os_thread(SCHED.mcount.load(Ordering::Relaxed), &e);
    }
    SCHED.nsys.fetch_add(1, Ordering::SeqCst);
}

/// Whether sysmon is in its deep sleep (Go: `sched.sysmonwait`; for traces).
pub(crate) fn waiting() -> bool {
    SLEEPING.load(Ordering::Relaxed)
}

/// Wakes sysmon from its deep sleep (called when a P is acquired).
pub(crate) fn wake() {
    if SLEEPING.load(Ordering::SeqCst) {
        PARK.fetch_add(1, Ordering::SeqCst);
        crate::os::futex::wake(&PARK, 1);
    }
}

/// Called by a goroutine that deferred a wake-up (after its SeqCst `runnext` swap): if
/// sysmon is in a long sleep, cut it short, so that sysmon looks at that `runnext` within
/// `DEFER_LOOK` (twice: it wakes an idle P for a goroutine still there at the second
/// look). Dekker with sysmon's nap: it stores `NAPPING` (SeqCst), fences (SeqCst) and
/// reads every `runnext`; the readier swaps `runnext` then reads `NAPPING` (SeqCst both):
/// either sysmon sees the goroutine and naps briefly, or the readier sees the nap and
/// ends it.
/// (Were a nudge lost, the goroutine would wait for sysmon's next timed look, at most
/// 10 ms: a delay, never a hang.)
#[inline]
pub(crate) fn nudge() {
    if NAPPING.load(Ordering::SeqCst) {
        nudge_slow();
    }
}

#[cold]
fn nudge_slow() {
    if NAPPING.swap(false, Ordering::SeqCst) {
        PARK.fetch_add(1, Ordering::SeqCst);
        crate::os::futex::wake(&PARK, 1);
    }
}

/// Sleeps `delay` between rounds: a plain sleep when short, else a nap on `PARK` that a
/// readier deferring a wake-up can end (`nudge`), or a short one if a goroutine waits in
/// some `runnext` already.
fn nap(delay: Duration, procs: usize) {
    // (elsewhere than Linux the futex wait is a short sleep: sleep plainly there)
    if delay <= DEFER_LOOK || cfg!(not(target_os = "linux")) {
        std::thread::sleep(delay);
        return;
    }
    let gen = PARK.load(Ordering::SeqCst);
    NAPPING.store(true, Ordering::SeqCst);
    // the store above before the runnext reads below, also where a SeqCst store and a
    // later plain load may pass each other (aarch64: stlr, ldr)
    std::sync::atomic::fence(Ordering::SeqCst);
    let waiting = (0..procs).any(|i| SCHED.p(i).is_some_and(|p| p.runq.has_runnext()));
    if waiting {
        NAPPING.store(false, Ordering::SeqCst);
        std::thread::sleep(DEFER_LOOK);
        return;
    }
    crate::os::futex::wait(&PARK, gen, Some(delay));
    NAPPING.store(false, Ordering::SeqCst);
}

fn run() {
    crate::os::thread::precise_timers();
    let mut ticks: Vec<super::retake::Tick> = Vec::new();
    let mut idle = 0u32;
    let mut delay = Duration::from_micros(20);
    loop {
        if idle == 0 {
            delay = Duration::from_micros(20);
        } else if idle > 50 {
            delay = (delay * 2).min(Duration::from_millis(10));
        }
        let procs = SCHED.procs();
        // every P idle, and none above the count still held (an M retiring it later)
        let all_idle = SCHED.npidle.load(Ordering::SeqCst) as usize == procs && !held_above(procs);
        let tracing = settings().debug.schedtrace_ms > 0;
        // (Go: no deep sleep while schedtrace is on)
        if all_idle && !crate::sched::timers::timers_pending() && !tracing {
            // Deep sleep until a P is acquired (Go: sysmonwait).
            let gen = PARK.load(Ordering::SeqCst);
            SLEEPING.store(true, Ordering::SeqCst);
            if SCHED.npidle.load(Ordering::SeqCst) as usize == procs
                && !crate::sched::timers::timers_pending()
            {
                crate::os::futex::wait(&PARK, gen, Some(Duration::from_secs(60)));
            }
            SLEEPING.store(false, Ordering::SeqCst);
            idle = 0;
            continue;
        }
        if tracing {
            // the next trace is due within a period
            delay = delay.min(Duration::from_millis(settings().debug.schedtrace_ms));
        }
        nap(delay, procs);
        let now = nanotime();
        crate::debug::schedtrace::sysmon_tick(now);
        let mut did = false;
        did |= overdue_timers(now, delay);
        did |= rescue_above(procs);
        let (woke, deferred) = stranded_work(&mut ticks);
        did |= woke;
        // every P that exists: a P retired by a GOMAXPROCS decrease may still be held by
        // an M in a blocking call, with goroutines queued behind it
        let nps = (0..crate::config::MAX_PROCS)
            .take_while(|&i| SCHED.p(i).is_some())
            .count();
        let r = super::retake::retake(now, nps.max(procs), &mut ticks);
        did |= r.retaken;
        idle = if did { 0 } else { idle + 1 };
        if r.watching {
            // a request is pending or a hog runs: look again soon
            delay = delay.min(WATCH_DELAY);
        }
        if deferred {
            // a goroutine waits in a runnext for a deferred wake-up: look again soon
            delay = delay.min(DEFER_LOOK);
        }
    }
}

/// 1. Overdue timers nobody is going to run soon.
fn overdue_timers(now: i64, delay: Duration) -> bool {
    if crate::sched::timers::timer_m_exists() {
        return false;
    }
    let next = crate::sched::timers::earliest_timer();
    if next == 0 || next > now - delay.as_nanos() as i64 {
        return false;
    }
    crate::sched::timers::run_all_due(now) > 0
}

/// Whether some P at or above `procs` is still held by an M (it retires at its M's next
/// scheduling round, which a hog or a blocking-call loop may put off indefinitely).
fn held_above(procs: usize) -> bool {
    (procs..crate::config::MAX_PROCS)
        .map_while(|i| SCHED.p(i))
        .any(|p| p.status.load(Ordering::SeqCst) != super::p::P_DEAD)
}

/// Goroutines queued on a P at or above `procs` (GOMAXPROCS shrank, or a relief P was
/// withdrawn) while its M is busy: nobody steals from or counts such a P, so move them to
/// the global queue. Returns whether it moved any.
fn rescue_above(procs: usize) -> bool {
    let mut gs = Vec::new();
    for p in (procs..crate::config::MAX_PROCS).map_while(|i| SCHED.p(i)) {
        if p.status.load(Ordering::SeqCst) != super::p::P_DEAD && !p.runq.is_empty() {
            p.runq.take_all(&mut gs);
        }
    }
    if gs.is_empty() {
        return false;
    }
    let mut l = SCHED.lock();
    l.globrunqputbatch(&gs);
    drop(l);
    super::idle::wakep();
    true
}

/// Step 2: runnable goroutines queued while Ps are idle and nobody is looking for work.
/// A goroutine in `runnext` counts only if it has been there since the last look (its
/// wake-up was deferred, and the readier went on running: see `park::put_runnable`).
/// Returns whether it woke a P, and whether a goroutine readied since the last look
/// waits in some `runnext` (to be looked at again soon).
fn stranded_work(ticks: &mut Vec<super::retake::Tick>) -> (bool, bool) {
    let procs = SCHED.procs();
    if ticks.len() < procs {
        ticks.resize(procs, super::retake::Tick::default());
    }
    let mut queued = SCHED.runqsize.load(Ordering::SeqCst) != 0;
    let mut fresh = false;
    for (i, t) in ticks.iter_mut().enumerate().take(procs) {
        let Some(p) = SCHED.p(i) else { continue };
        let seq = p.defer_seq.load(Ordering::Relaxed);
        let stale = seq == t.defer_seq;
        t.defer_seq = seq;
        let next = p.runq.has_runnext();
        queued |= !p.runq.ring_is_empty() || (stale && next);
        fresh |= !stale && next;
    }
    if !queued
        || SCHED.npidle.load(Ordering::SeqCst) == 0
        || SCHED.nmspinning.load(Ordering::SeqCst) != 0
    {
        return (false, fresh);
    }
    super::idle::wakep();
    (true, fresh)
}

/// Whether sysmon asked the running goroutine to give way, and if so clears the request.
#[inline]
pub(crate) fn take_preempt_request(g: &super::g::G) -> bool {
    g.preempt.load(Ordering::Relaxed) && g.preempt.swap(false, Ordering::Relaxed)
}
