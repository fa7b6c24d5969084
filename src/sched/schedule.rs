//! One round of scheduling: `schedule`, `find_runnable`, `execute` and the `mcall`
//! targets it runs (`park_m`, `gosched_m`, `gopreempt_m`, `goexit0`), work stealing
//! (Go: proc.go `schedule`, `findRunnable`, `execute`, `stealWork`). The run-queue
//! operations they use are in `queue.rs`.

use super::g::{Switch, G, G_RUNNABLE, G_RUNNING, G_WAITING};
use super::idle::{acquirep, handoff_p, releasep, resetspinning, startm, stopm};
use super::m::M;
use super::p::P;
use super::queue::{globrunqget, runqget, runqput};
use super::runq::RUNQ_CAP;
use super::schedt::SCHED;
use super::spawn::Gp;
use crate::config::settings;
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

/// Go: `stealTries`.
const STEAL_TRIES: usize = 4;
/// How long a spinning M keeps looking for work before it gives its P back and sleeps.
const SPIN_FOR: Duration = Duration::from_micros(50);

/// The scheduler loop of an M (Go: `schedule`, looping). A worker M never leaves it.
/// The M of a `run` call passes `until`, and leaves when it returns true (its main
/// goroutine finished) or when it runs out of work; it then holds no P.
pub(crate) fn schedule(m: &'static M, until: Option<&dyn Fn() -> bool>) {
    schedule_loop(m, until, None);
}

/// `schedule`, running `first` (owned by the caller, runnable) before looking for work.
/// One loop with one call of `execute`, which the compiler inlines.
fn schedule_loop(m: &'static M, until: Option<&dyn Fn() -> bool>, mut first: Option<&'static G>) {
    loop {
        let (gp, inherit) = if let Some(gp) = first.take() {
            (gp, false)
        } else if m.lockedg().is_some() {
            // this M runs only its locked goroutine: wait until it is runnable
            // (Go: schedule's stoplockedm + execute(lockedg))
            (super::lockos::stoplockedm(m), false)
        } else {
            let Some((gp, inherit)) = find_runnable(m, until) else {
                if let Some(p) = releasep(m) {
                    handoff_p(p);
                }
                return;
            };
            // About to run something: a spinning M stops spinning here, and starts
            // another spinner if there may be more work (Go: resetspinning)
            if m.is_spinning() {
                resetspinning(m);
            }
            // a goroutine that has not run yet gets its G and stack now (spawn.rs)
            let gp = match m.p() {
                Some(p) => super::spawn::bind(p, gp),
                None => crate::throw!("schedule: no P"),
            };
            if let Some(lm) = super::lockos::locked_elsewhere(m, gp) {
                // gp belongs to another M's thread: give it our P and gp, and wait
                // for a P of our own (Go: startlockedm)
                super::lockos::startlockedm(m, lm, gp);
                if m.p().is_none() {
                    debug_assert!(m.is_run);
                    return; // a run M leaves the scheduler instead of idling
                }
                continue;
            }
            (gp, inherit)
        };
        match execute(m, gp, inherit) {
            Executed::Done => {}
            Executed::ThreadExit => return,
        }
        if m.p().is_none() {
            if m.lockedg().is_some() {
                // a locked goroutine came back from a blocking call without a P: wait
                // for it to be scheduled again (top of the loop)
                continue;
            }
            // the run M handed its P away (GORT_DEBUG=migrate=1, or a goroutine that
            // locks moved to a worker): it leaves the scheduler and waits for its main
            // goroutine
            debug_assert!(m.is_run);
            return;
        }
        if let Some(done) = until {
            if done() {
                if let Some(p) = releasep(m) {
                    handoff_p(p);
                }
                return;
            }
        }
    }
}

/// The scheduler loop of a `run` caller's M that holds a P, starting with that run's
/// main goroutine `gp` (created runnable but not queued: see `newproc`), which it runs
/// before anything else, as Go's m0 runs `main` (and as `lock_os_thread` in main then
/// wires the caller's own thread).
pub(crate) fn schedule_main(m: &'static M, gp: &'static G, until: &dyn Fn() -> bool) {
    schedule_loop(m, Some(until), Some(gp));
}

/// How `execute` ended.
enum Executed {
    /// The goroutine switched away or finished; the M schedules on.
    Done,
    /// A goroutine exited while locked to this worker M: its thread ends (Go: `mexit`).
    ThreadExit,
}

/// Runs `gp` on `m` until it switches back, then carries out what it asked for
/// (Go: `execute`, then the `mcall` target: [`park_m`], [`gosched_m`], [`gopreempt_m`],
/// [`goexit0`]).
fn execute(m: &'static M, gp: &'static G, inherit: bool) -> Executed {
    let mut gp = gp;
    let mut inherit = inherit;
    // GORT_DEBUG=migrate=1 moves a goroutine when it is scheduled, not when it resumes at
    // once on its own M (a cancelled park, a systemstack call), as those never switch M
    let mut fresh = true;
    loop {
        let p = match m.p() {
            Some(p) => p,
            None => crate::throw!("execute: no P"),
        };
        if fresh && settings().debug.migrate && m.lockedg().is_none() && migrate_away(m, p, gp) {
            return Executed::Done;
        }
        fresh = false;
        start_running(m, p, gp, inherit);
        // SAFETY: we took gp off a run queue and made it _Grunning: we own its context.
        let r = unsafe { gp.resume(m) };
        // Back on g0 (Go: dropg). The goroutine switching back may be another one than
        // the one resumed: gopark switches directly to the P's next goroutine.
        gp = match m.curg() {
            Some(g) => g,
            None => crate::throw!("execute: a goroutine switched back with no curg"),
        };
        m.curg.store(std::ptr::null_mut(), Ordering::Relaxed);
        gp.m.store(std::ptr::null_mut(), Ordering::Relaxed);
        // The G may have been through a blocking call meanwhile, after which this M holds
        // a different P (or none: the ExitSyscall case): re-read it.
        let p = match (&r, m.p()) {
            (Switch::ExitSyscall, _) => p,
            (_, Some(now)) => now,
            (_, None) => crate::throw!("execute: goroutine switched back without a P"),
        };
        match r {
            Switch::Park(unlockf) => {
                if park_m(p, gp, unlockf) {
                    return Executed::Done;
                }
                inherit = true; // the park was cancelled: execute(gp, inheritTime=true)
            }
            Switch::Gosched => {
                gosched_m(p, gp);
                return Executed::Done;
            }
            Switch::Preempt => {
                gopreempt_m(p, gp);
                return Executed::Done;
            }
            Switch::Call(f) => {
                // Go: systemstack. SAFETY: systemstack's contract: the function lives on
                // the G's stack, which stays suspended until we resume it below.
                unsafe { (*f)() };
                gp.cas_status(G_RUNNING, G_RUNNABLE);
                inherit = true;
            }
            Switch::ExitSyscall => {
                // `p` was retaken while the G was in its blocking call: do not touch it.
                super::syscall::exitsyscall0(m, gp);
                return Executed::Done;
            }
            Switch::Fatal(report) => {
                crate::debug::fatal_panic(gp, &report);
            }
            Switch::LeaveRunM => {
                super::lockos::leave_run_m(m, p, gp);
                return Executed::Done;
            }
            Switch::Exit => return goexit0(m, p, gp),
        }
    }
}

/// `gp` parked (Go: `park_m`): marks it waiting and runs its unlock function, which
/// publishes it where a waker will find it. Returns false if the unlock function
/// cancelled the park: `gp` is runnable again and the caller resumes it at once.
/// (`docs/design/parking.md`, "gopark".)
#[inline]
fn park_m(
    p: &'static P,
    gp: &'static G,
    unlockf: Option<*mut (dyn FnMut() -> bool + 'static)>,
) -> bool {
    // The status changes before the unlock function runs, so a waker that sees the G on
    // its wait queue may ready it at once.
    gp.cas_status(G_RUNNING, G_WAITING);
    super::p::bump(&p.parks);
    // A pending preempt request (read before the G can be published and readied
    // elsewhere) ends the time slice here: otherwise the goroutine readied into runnext
    // would inherit it, and a chain of goroutines that park (or exit) without reaching a
    // check would hold the P for ever and look like a hog to sysmon.
    let asked = super::sysmon::take_preempt_request(gp);
    if let Some(f) = unlockf {
        // SAFETY: gopark's contract: the function lives on the parked G's stack, which
        // nobody resumes until the function published the G.
        let ok = unsafe { (*f)() };
        if !ok {
            if asked {
                gp.preempt.store(true, Ordering::Relaxed); // still to honour
            }
            gp.cas_status(G_WAITING, G_RUNNABLE);
            return false;
        }
    }
    if asked {
        end_slice(p);
    }
    true
}

/// `gp` yielded (Go: `gosched_m`). Go's Gosched puts the G on the global queue; gort puts
/// it at the tail of the local queue, as Go's runtime-internal `goyield` does: no lock,
/// and idle Ps still steal it. The 1-in-61 global check keeps the global queue served.
#[inline]
fn gosched_m(p: &'static P, gp: &'static G) {
    gp.cas_status(G_RUNNING, G_RUNNABLE);
    let _ = runqput(p, gp.into(), false);
}

/// `gp` honoured a preempt request (Go: `gopreempt_m`). Its slice ends here: a G waiting
/// in runnext (which would inherit the slice, e.g. a goroutine chain spawning its
/// successor) goes to the tail, then the preempted G behind it (Go uses the global queue;
/// the local tail keeps it stealable and in order), the next G starts a new slice, and
/// the next round looks at the global queue first so goroutines waiting there get a turn.
fn gopreempt_m(p: &'static P, gp: &'static G) {
    gp.cas_status(G_RUNNING, G_RUNNABLE);
    if let Some(next) = p.runq.take_runnext() {
        // SAFETY: the queue only holds pointers made by `Gp::raw`.
        let _ = runqput(p, unsafe { Gp::from_raw(next) }, false);
    }
    let _ = runqput(p, gp.into(), false);
    end_slice(p);
}

/// `gp`'s function returned (Go: `goexit0`): unwires it if it was locked to this M,
/// frees it (`proc::gdestroy`), and ends the thread if Go's rules say a locked
/// goroutine's exit takes its thread with it.
fn goexit0(m: &'static M, p: &'static P, gp: &'static G) -> Executed {
    // Unwire before gdestroy frees the G for reuse: a new goroutine on this G must not
    // start out wired to this (exiting) M.
    if super::sysmon::take_preempt_request(gp) {
        end_slice(p); // as for a park
    }
    let was_locked = std::ptr::eq(m.lockedg.load(Ordering::Relaxed), gp);
    if was_locked {
        super::lockos::unwire_exited(m, gp);
    }
    super::proc::gdestroy(p, gp);
    if was_locked && super::lockos::exit_locked(m) {
        return Executed::ThreadExit;
    }
    Executed::Done
}

/// Makes runnable `gp` (owned by the caller) the running goroutine of `m`, which holds
/// `p` (Go: the first half of `execute`). `inherit`: it continues the current time slice
/// (it came from `runnext`), so the P's schedtick does not move.
#[inline]
pub(crate) fn start_running(m: &'static M, p: &'static P, gp: &'static G, inherit: bool) {
    let mp = m as *const M as *mut M;
    m.curg.store(gp as *const G as *mut G, Ordering::Relaxed);
    gp.m.store(mp, Ordering::Relaxed);
    gp.last_m.store(mp, Ordering::Relaxed);
    gp.cas_status(G_RUNNABLE, G_RUNNING);
    gp.preempt.store(false, Ordering::Relaxed);
    if !inherit {
        // only the owner writes schedtick
        p.schedtick.store(
            p.schedtick.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }
}

/// Ends `p`'s time slice (a preempt request was honoured): the next goroutine starts a
/// new one even if it comes from `runnext`, and the next round looks at the global queue
/// first.
#[inline]
fn end_slice(p: &'static P) {
    p.schedtick.store(
        p.schedtick.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    p.global_first.set(true);
}

/// `GORT_DEBUG=migrate=1`: if `gp` last ran on `m`, hand it and the P to another M so
/// the G resumes on a different thread. Returns true if it did (this M then stops).
fn migrate_away(m: &'static M, p: &'static P, gp: &'static G) -> bool {
    if !std::ptr::eq(gp.last_m.load(Ordering::Relaxed), m) {
        return false;
    }
    // gp is runnable and owned by us: put it in runnext and give the P to another M,
    // which runs runnext first.
    let _ = runqput(p, gp.into(), true);
    let Some(p) = releasep(m) else {
        crate::throw!("migrate: P vanished while held");
    };
    startm(Some(p), false);
    if !m.is_run {
        stopm(m);
    }
    true
}

/// What a phase of `find_runnable` decided.
enum Found {
    /// Run this entry (`true`: it inherits the time slice).
    Run(Gp, bool),
    /// Start over from the top (the M holds a P again, or new work appeared).
    Retry,
    /// Go on to the next phase.
    Next,
    /// Leave the scheduler (a `run` M done or out of work, or a reclaimed M); no P held.
    Leave,
}

/// Finds a runnable goroutine (Go: proc.go `findRunnable`), in named phases run in
/// order until one decides: [`retire_if_shrunk`] (GOMAXPROCS fell below our P),
/// [`queues`] (due timers, the 1-in-61 global check, local queue, global queue), then
/// the netpoller's non-blocking poll will sit, [`steal`] (as a spinning M),
/// [`give_up_p`] and [`idle`] (the timer M, or sleep). Returns `None` only for a `run`
/// M, when `until` became true or it ran out of work, or for a reclaimed M; it then
/// holds no P. (`docs/design/scheduler.md`, "Finding work" and "no lost wake-ups".)
fn find_runnable(m: &'static M, until: Option<&dyn Fn() -> bool>) -> Option<(Gp, bool)> {
    /// Runs one phase: returns or restarts on its decision, falls through on `Next`.
    macro_rules! phase {
        ($decision:expr) => {
            match $decision {
                Found::Next => {}
                Found::Run(g, inherit) => return Some((g, inherit)),
                Found::Retry => continue,
                Found::Leave => return None,
            }
        };
    }
    loop {
        if leave_if(m, until) {
            return None;
        }
        let p = match m.p() {
            Some(p) => p,
            None => crate::throw!("findrunnable: no P"),
        };
        phase!(retire_if_shrunk(m, p));
        phase!(queues(p));
        phase!(steal(m, p));
        phase!(give_up_p(m, p));
        phase!(idle(m));
    }
}

/// Phase 0: a `run` M whose main goroutine finished leaves (dropping out of the
/// spinning count first).
#[inline]
fn leave_if(m: &'static M, until: Option<&dyn Fn() -> bool>) -> bool {
    let Some(done) = until else { return false };
    if !done() {
        return false;
    }
    if m.is_spinning() {
        super::idle::stop_spinning(m);
    }
    true
}

/// Phase 1: GOMAXPROCS shrank below our P: retire it and look for another (Go does this
/// in `procresize` with the world stopped; gort's Ms retire their own Ps).
#[inline]
fn retire_if_shrunk(m: &'static M, p: &'static P) -> Found {
    if !super::procresize::must_retire(p) {
        return Found::Next;
    }
    if m.is_spinning() {
        super::idle::stop_spinning(m);
    }
    super::procresize::retire_held(m, p);
    let np = SCHED.lock().pidleget();
    match np {
        Some(np) => {
            acquirep(m, np);
            Found::Retry
        }
        None if m.is_run => Found::Leave,
        None if super::idle::stopm_or_reclaim(m, true) => Found::Retry,
        None => Found::Leave,
    }
}

/// Phase 2: this P's due timers (Go: `checkTimers`), then the queues. Every 61st
/// schedule (or right after a preemption) the global queue goes first: without that, a
/// pair of goroutines that keep readying each other through `runnext` would keep the
/// global queue waiting for ever (Go: findRunnable's fairness check).
#[inline]
fn queues(p: &'static P) -> Found {
    crate::sched::timers::check_timers(p);
    if p.schedtick.load(Ordering::Relaxed).is_multiple_of(61) || p.global_first.replace(false) {
        if let Some(g) = globrunqget(p, 1) {
            return Found::Run(g, false);
        }
    }
    if let Some((g, inherit)) = runqget(p) {
        return Found::Run(g, inherit);
    }
    if let Some(g) = globrunqget(p, 0) {
        return Found::Run(g, false);
    }
    // (here the netpoller's non-blocking poll, when it exists: Go's netpoll(0))
    Found::Next
}

/// Phase 3: steal from other Ps, as a spinning M. Spinning is capped at half the busy
/// Ps: with many Ps and little parallelism, more spinners would only burn CPU looking at
/// empty queues (Go: findRunnable, the `2*nmspinning < gomaxprocs-npidle` test).
fn steal(m: &'static M, p: &'static P) -> Found {
    let procs = SCHED.procs() as u32;
    // A spinning M keeps spinning; another becomes one only under the cap. SeqCst loads,
    // though only a heuristic reads them here (a stale count costs one spinner too many
    // or too few; give_up_p's re-check is what keeps work from being lost).
    if !m.is_spinning() {
        let npidle = SCHED.npidle.load(Ordering::SeqCst);
        let nmspinning = SCHED.nmspinning.load(Ordering::SeqCst);
        if 2 * nmspinning >= procs - npidle.min(procs) {
            return Found::Next;
        }
        m.spinning.store(true, Ordering::Relaxed);
        SCHED.nmspinning.fetch_add(1, Ordering::SeqCst); // SeqCst: wakep reads it to decide whether to start a spinner; see give_up_p
    }
    // Go gives up after one round of stealing; waking a sleeping thread costs tens of
    // microseconds here, so a spinning M keeps looking for a short while first
    // (SPIN_FOR), which turns bursts of spawns and wake-ups into steals instead of
    // futex sleep/wake pairs. Between attempts it backs off (1, 2, 4, 8 µs) so that its
    // reads of other Ps' queues do not keep stealing their cache lines from the owners.
    let deadline = Instant::now() + SPIN_FOR;
    let mut backoff = Duration::from_micros(1);
    loop {
        if let Some(g) = steal_work(m, p) {
            return Found::Run(g, false);
        }
        if SCHED.runqsize.load(Ordering::SeqCst) != 0 || Instant::now() >= deadline {
            break;
        }
        pause(backoff);
        backoff = (backoff * 2).min(Duration::from_micros(8));
    }
    if SCHED.runqsize.load(Ordering::SeqCst) != 0 {
        return Found::Retry;
    }
    Found::Next
}

/// Phase 4: nothing to do: give the P back (after a last look at the global queue under
/// the lock), then, if this M was spinning, stop spinning and look once more.
///
/// The order is what keeps work from being stranded: a goroutine readied while we were
/// spinning did not wake anyone (wakep saw a spinner), so we must first leave the
/// spinning count, then (after a full fence) re-check every queue. Checking first and
/// leaving after would open a window in which new work arrives, its readier still sees
/// us spinning and wakes nobody, and we go to sleep without having seen it (Go:
/// findRunnable, dropping `nmspinning`; `docs/design/scheduler.md`, "no lost wake-ups").
fn give_up_p(m: &'static M, p: &'static P) -> Found {
    let mut l = SCHED.lock();
    if !l.runq.is_empty() {
        let mut extra = Vec::new();
        let g = l.globrunqget(0, &mut extra);
        drop(l);
        for g2 in extra {
            let _ = runqput(p, g2, false);
        }
        return match g {
            Some(g) => Found::Run(g, false),
            None => Found::Retry,
        };
    }
    let Some(p) = releasep(m) else {
        crate::throw!("findrunnable: P vanished while held");
    };
    l.pidleput(p);
    drop(l);
    if m.is_spinning() {
        super::idle::stop_spinning(m);
        // SeqCst fence: orders our nmspinning decrement before the queue reads below;
        // pairs with the fence in wakep, between a readier's queue write and its
        // nmspinning read (either we see its work, or it sees us gone and wakes an M)
        fence(Ordering::SeqCst);
        if let Some(p) = check_runqs_no_p() {
            acquirep(m, p);
            m.spinning.store(true, Ordering::Relaxed);
            SCHED.nmspinning.fetch_add(1, Ordering::SeqCst); // SeqCst: as in steal
            return Found::Retry;
        }
    }
    Found::Next
}

/// Phase 5: an M without a P and without work. A `run` M leaves the scheduler (first
/// starting an M for pending timers if none waits for them: it becomes the timer M once
/// it finds nothing else to do). Otherwise, with timers pending, one idle M sleeps until
/// the earliest (`timers::idle_timer_wait`); the others sleep until handed a P, or exit
/// if reclaimed.
fn idle(m: &'static M) -> Found {
    if m.is_run {
        if crate::sched::timers::timers_pending() && !crate::sched::timers::timer_m_exists() {
            startm(None, false);
        }
        return Found::Leave;
    }
    if let Some(p) = crate::sched::timers::idle_timer_wait(m) {
        if m.p().is_none() {
            acquirep(m, p); // idle_timer_wait may have acquired it already
        }
        return Found::Retry;
    }
    if super::idle::stopm_or_reclaim(m, true) {
        Found::Retry
    } else {
        Found::Leave // reclaimed: the thread exits (schedule returns to mstart)
    }
}

/// After dropping out of spinning: if any P or the global queue has work, take an idle P
/// to go and get it (Go: `checkRunqsNoP`).
fn check_runqs_no_p() -> Option<&'static P> {
    if !SCHED.any_work() {
        return None;
    }
    SCHED.lock().pidleget()
}

/// Tries to steal a G from another P: 4 passes over the Ps in a random order; the last
/// pass may take a victim's `runnext` (Go: `stealWork`).
fn steal_work(m: &'static M, p: &'static P) -> Option<Gp> {
    let procs = SCHED.procs();
    if procs <= 1 {
        return None;
    }
    for i in 0..STEAL_TRIES {
        let steal_runnext = i == STEAL_TRIES - 1;
        let order = RandomOrder::new(procs as u32, m.fastrand());
        for idx in order {
            let Some(p2) = SCHED.p(idx as usize) else {
                continue;
            };
            if std::ptr::eq(p2, p) {
                continue;
            }
            // the last pass also runs the victim's due timers (its goroutines land on
            // our queue)
            if steal_runnext {
                crate::sched::timers::check_timers(p2);
                if let Some((g, _)) = runqget(p) {
                    return Some(g);
                }
            }
            let victim_running = || {
                // Go sleeps 3 µs before taking a running P's runnext, so the owner gets a
                // chance to schedule it. The owner runs on another CPU, so a 3 µs spin
                // does the same without two system calls.
                if p2.status.load(Ordering::Relaxed) == super::p::P_RUNNING {
                    pause(Duration::from_micros(3));
                }
            };
            if let Some(g) = p.runq.steal_from(&p2.runq, steal_runnext, &victim_running) {
                super::p::bump(&p.steals);
                // SAFETY: the queues only hold pointers made by `Gp::raw`.
                return Some(unsafe { Gp::from_raw(g) });
            }
        }
    }
    None
}

/// Spins for `d` (yields instead when there is a single CPU, where spinning would only
/// delay the thread we wait for).
fn pause(d: Duration) {
    if crate::os::num_cpu() <= 1 {
        std::thread::yield_now();
        return;
    }
    let t = Instant::now();
    while t.elapsed() < d {
        for _ in 0..16 {
            std::hint::spin_loop();
        }
    }
}

/// Enumerates `0..count` exactly once each, starting at a random position with a random
/// stride coprime to `count` (Go: proc.go `randomOrder`/`randomEnum`).
pub(crate) struct RandomOrder {
    count: u32,
    pos: u32,
    inc: u32,
    i: u32,
}

impl RandomOrder {
    /// An enumeration of `0..count` seeded by `seed`.
    pub(crate) fn new(count: u32, seed: u32) -> RandomOrder {
        let count = count.max(1);
        // a stride coprime to count, picked from the seed without allocating
        let mut inc = (seed / count) % count + 1;
        while gcd(inc, count) != 1 {
            inc = inc % count + 1;
        }
        RandomOrder {
            count,
            pos: seed % count,
            inc,
            i: 0,
        }
    }
}

impl Iterator for RandomOrder {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.i == self.count {
            return None;
        }
        let r = self.pos;
        self.pos = (self.pos + self.inc) % self.count;
        self.i += 1;
        Some(r)
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

const _: () = assert!(RUNQ_CAP >= 4);

#[cfg(test)]
mod tests {
    use super::*;

    /// Go: TestStealOrder — every enumeration visits each P exactly once, for 1..64 Ps,
    /// and the seeds cover every start position and more than one stride.
    #[test]
    fn test_steal_order() {
        for procs in 1..=64u32 {
            let mut starts = std::collections::HashSet::new();
            let mut incs = std::collections::HashSet::new();
            for seed in 0..(procs * 4) {
                let ord = RandomOrder::new(procs, seed);
                starts.insert(ord.pos);
                incs.insert(ord.inc);
                let mut seen = vec![false; procs as usize];
                for i in ord {
                    assert!(!seen[i as usize], "procs={procs} seed={seed}: {i} twice");
                    seen[i as usize] = true;
                }
                assert!(
                    seen.iter().all(|&s| s),
                    "procs={procs} seed={seed}: missed a P"
                );
            }
            assert_eq!(
                starts.len(),
                procs as usize,
                "procs={procs}: every start used"
            );
            let ncoprimes = (1..=procs).filter(|&i| gcd(i, procs) == 1).count();
            assert!(
                incs.len() >= ncoprimes.min(2),
                "procs={procs}: strides vary"
            );
        }
    }
}
