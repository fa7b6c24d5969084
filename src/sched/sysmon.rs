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

/// Per-P observations (Go: `p.sysmontick`).
#[derive(Clone, Copy, Default)]
struct Tick {
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
    /// `p.defer_seq` at the last look.
    defer_seq: u32,
}

fn run() {
    crate::os::thread::precise_timers();
    let mut ticks: Vec<Tick> = Vec::new();
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
        let nps = (0..super::schedt::MAX_PROCS)
            .take_while(|&i| SCHED.p(i).is_some())
            .count();
        let r = retake_and_preempt(now, nps.max(procs), &mut ticks);
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
    (procs..super::schedt::MAX_PROCS)
        .map_while(|i| SCHED.p(i))
        .any(|p| p.status.load(Ordering::SeqCst) != super::p::P_DEAD)
}

/// Goroutines queued on a P at or above `procs` (GOMAXPROCS shrank, or a relief P was
/// withdrawn) while its M is busy: nobody steals from or counts such a P, so move them to
/// the global queue. Returns whether it moved any.
fn rescue_above(procs: usize) -> bool {
    let mut gs = Vec::new();
    for p in (procs..super::schedt::MAX_PROCS).map_while(|i| SCHED.p(i)) {
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
fn stranded_work(ticks: &mut Vec<Tick>) -> (bool, bool) {
    let procs = SCHED.procs();
    if ticks.len() < procs {
        ticks.resize(procs, Tick::default());
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

/// What one `retake_and_preempt` pass found.
struct Retake {
    /// A P in a blocking call was handed off.
    retaken: bool,
    /// A preempt request is outstanding or a goroutine hogs its P.
    watching: bool,
}

/// Step 3, Go's `retake`: Ps whose M has been in a blocking call for a whole tick are
/// handed to another M; goroutines running for 10 ms on the same time slice get their
/// preempt flag set; those still running 10 ms later get a relief P (step 5).
fn retake_and_preempt(now: i64, procs: usize, ticks: &mut Vec<Tick>) -> Retake {
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
        if let Some(goid) = t.hog {
            if status != super::p::P_RUNNING || st != t.schedtick {
                // the hog gave way (or entered a blocking call, or its P went idle)
                t.hog = None;
                hogs_changed = true;
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
            }
        }
        if status != super::p::P_RUNNING && status != super::p::P_SYSCALL {
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
        if status == super::p::P_SYSCALL {
            // Go's sysretake: a goroutine looping on short blocking calls never shows
            // one call for a whole tick, but it has held the P for a whole time slice.
            // Unlike Go, only when goroutines wait for a P (in its queue or the global
            // one): retaking from a lone caller only makes it queue and wait for a P
            // (it halves the throughput of parallel blocking-call loops).
            let sysretake = now - t.slice_start >= FORCE_PREEMPT_NS
                && (!p.runq.is_empty() || SCHED.runqsize.load(Ordering::SeqCst) != 0);
            // a blocking call must be seen for a whole tick before it is retaken
            let sc = p.syscalltick.load(Ordering::Relaxed);
            if !sysretake && sc != t.syscalltick {
                t.syscalltick = sc;
                t.syscallwhen = now;
                continue;
            }
            let held = if sysretake {
                FORCE_PREEMPT_NS
            } else {
                now - t.syscallwhen
            };
            r.retaken |= super::syscall::retake(p, held);
            continue;
        }
        if t.slice_start == now {
            continue; // a new slice just started
        }
        // Ms and Gs are never freed, so a racy read names a live G (at worst one that
        // just finished its slice: it gets one extra, harmless request, or is counted as
        // a hog until the next round sees the new schedtick).
        let Some(g) = p_m(p).and_then(|m| m.curg()) else {
            continue;
        };
        if now - t.schedwhen >= FORCE_PREEMPT_NS {
            // Go: preemptone. The M's current goroutine is asked to yield.
            if !g.preempt.swap(true, Ordering::Relaxed) {
                SCHED.counters.preemptions.fetch_add(1, Ordering::Relaxed);
            }
            t.schedwhen = now; // ask again after another slice
        }
        if t.hog.is_none() && now - t.slice_start >= HOG_NS && g.status() == super::g::G_RUNNING {
            let goid = g.goid.load(Ordering::Relaxed);
            t.hog = Some(goid);
            hogs_changed = true;
            // the hog's thread gets the kernel's default slice back, so the threads
            // running everything else (short slices) preempt it when they wake
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
    }
    let hogs = ticks.iter().filter(|t| t.hog.is_some()).count();
    r.watching |= hogs > 0;
    if hogs_changed {
        super::procresize::set_relief(hogs);
    }
    r
}

fn p_m(p: &super::p::P) -> Option<&'static super::m::M> {
    // SAFETY: Ms are leaked and never freed; `p.m` is null or a valid M.
    unsafe { p.m.load(Ordering::Relaxed).as_ref() }
}

/// Whether sysmon asked the running goroutine to give way, and if so clears the request.
#[inline]
pub(crate) fn take_preempt_request(g: &super::g::G) -> bool {
    g.preempt.load(Ordering::Relaxed) && g.preempt.swap(false, Ordering::Relaxed)
}
