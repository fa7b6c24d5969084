//! Time: `sleep`, [`Timer`], [`after`], [`tick`] (Go's `time` package on the runtime's
//! per-P timers).
//!
//! Sleeping parks the goroutine, not its thread; on a plain thread it sleeps the thread.
//! Timers are kept in per-P 4-ary heaps and run by the scheduler; an idle M sleeps
//! exactly until the earliest timer (nanosecond futex timeouts, timer slack set to 1 ns),
//! so resolution is well below Go's 1 ms epoll granularity.
//!
//! Durations: zero means "now" (a zero sleep returns at once, a zero timer fires at
//! once); durations too large to represent saturate to "never" in practice (~146
//! years).

pub(crate) mod heap;

use crate::chan::{self, Receiver};
use crate::sched::g::WaitReason;
use crate::sched::m::{getg, getm, M};
use crate::sched::p::P;
use crate::sched::schedt::SCHED;
use heap::{nanotime, nanotime_of, Action, Entry, TimerShared};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::chan::{after, tick};

/// `now + d` in nanotime, saturating.
fn deadline(d: Duration) -> i64 {
    nanotime().saturating_add(d.as_nanos().min(i64::MAX as u128 / 2) as i64)
}

/// Adds a timer to the current P's heap (P0's from a thread without a P) and makes sure
/// some M will run it in time.
pub(crate) fn add_timer(e: Entry) {
    let when = e.when;
    let p: &'static P = match getm().and_then(|m| m.p()) {
        Some(p) => p,
        None => SCHED.p(0).expect("runtime started"),
    };
    p.timers.add(e);
    wake_for_timer(when);
}

/// Parks the calling goroutine for `d` (Go: `time.Sleep`). A zero duration returns at
/// once. On a plain thread, sleeps the thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let t = Instant::now();
///     gort::time::sleep(Duration::from_millis(5));
///     assert!(t.elapsed() >= Duration::from_millis(5));
/// });
/// ```
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    sleep_until_nanotime(deadline(d), d);
}

/// Parks the calling goroutine until `t` (at once if `t` has passed).
pub fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t <= now {
        return;
    }
    sleep_until_nanotime(nanotime_of(t), t - now);
}

fn sleep_until_nanotime(when: i64, d: Duration) {
    let Some(g) = getg() else {
        std::thread::sleep(d);
        return;
    };
    // The timer is added by the unlock function, on g0 after the G is _Gwaiting, so it
    // cannot fire before the park is complete (Go: resetForSleep).
    let mut arm = || {
        add_timer(Entry {
            when,
            seq: 0,
            action: Action::Wake(g),
        });
        true
    };
    // arming may start the timer M's thread: not on another goroutine's stack
    crate::sched::park::gopark_on_g0(&mut arm, WaitReason::Sleep);
}

/// A single-shot timer that sends the time on its channel when it fires (Go's
/// `time.Timer`).
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let t = gort::time::Timer::new(Duration::from_millis(1));
///     let fired_at = t.c().recv().unwrap();
///     assert!(fired_at.elapsed() < Duration::from_secs(1));
///     assert!(!t.stop(), "already fired");
/// });
/// ```
pub struct Timer {
    rx: Receiver<std::time::Instant>,
    tx: chan::Sender<std::time::Instant>,
    shared: Arc<TimerShared>,
    /// The current arming's flag: true while armed and not yet fired or stopped. Each
    /// arming gets a new flag; firing, stopping and resetting swap it, so exactly one
    /// of them sees it true.
    armed: std::sync::Mutex<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").finish_non_exhaustive()
    }
}

impl Timer {
    /// A timer firing after `d`.
    pub fn new(d: Duration) -> Timer {
        crate::runtime::ensure_init();
        let (tx, rx) = chan::bounded(1);
        let t = Timer {
            rx,
            tx,
            shared: Arc::new(TimerShared::default()),
            armed: std::sync::Mutex::new(Arc::new(AtomicBool::new(false))),
        };
        t.arm(d);
        t
    }

    /// Arms a new flag and entry; returns whether the previous arming was still active.
    fn arm(&self, d: Duration) -> bool {
        let flag = Arc::new(AtomicBool::new(true));
        let old = {
            let mut a = self.armed.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *a, flag.clone())
        };
        let was = old.swap(false, Ordering::AcqRel);
        let seq = self.shared.seq.fetch_add(1, Ordering::AcqRel) + 1;
        add_timer(Entry {
            when: deadline(d),
            seq,
            action: Action::Send {
                tx: self.tx.clone(),
                period: 0,
                shared: self.shared.clone(),
                fired: Some(flag),
            },
        });
        was
    }

    /// The channel the time is sent on (Go's `t.C`).
    pub fn c(&self) -> &Receiver<std::time::Instant> {
        &self.rx
    }

    /// Stops the timer. Returns `true` if that prevented it from firing, `false` if it
    /// had already fired or been stopped (Go's `Timer.Stop`).
    pub fn stop(&self) -> bool {
        self.shared.seq.fetch_add(1, Ordering::AcqRel);
        let was = {
            let a = self.armed.lock().unwrap_or_else(|e| e.into_inner());
            a.swap(false, Ordering::AcqRel)
        };
        if was {
            clean_stale_tops();
        }
        was
    }

    /// Re-arms the timer to fire after `d`; returns whether it was still active (Go's
    /// `Timer.Reset`). Resetting a fired timer is allowed and re-arms it; a value it
    /// already sent and nobody received stays in the channel, as in Go before 1.23.
    pub fn reset(&self, d: Duration) -> bool {
        self.arm(d)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------
// The idle M that waits for timers.

/// The M sleeping until the earliest timer, or null (at most one; Go's equivalent is the
/// M blocked in netpoll with a timeout).
static TIMER_M: AtomicPtr<M> = AtomicPtr::new(std::ptr::null_mut());
/// Futex word the timer M sleeps on; bumped to make it recompute its deadline.
static TIMER_GEN: AtomicU32 = AtomicU32::new(0);
/// When the timer M will wake up on its own (nanotime), 0 if none.
static TIMER_UNTIL: AtomicI64 = AtomicI64::new(0);

/// The earliest timer over all Ps, 0 if none.
pub(crate) fn earliest_timer() -> i64 {
    let mut best = 0i64;
    for i in 0..SCHED.procs() {
        if let Some(p) = SCHED.p(i) {
            let t = p.timers.timer0.load(Ordering::SeqCst);
            if t != 0 && (best == 0 || t < best) {
                best = t;
            }
        }
    }
    best
}

/// A timer due at `when` was added: make sure an M will wake for it (Go:
/// `wakeNetPoller`). If the timer M sleeps past `when`, it is woken to recompute;
/// if there is none, an idle M is started (it will become the timer M when it finds
/// nothing else to do).
fn wake_for_timer(when: i64) {
    if TIMER_M.load(Ordering::SeqCst).is_null() {
        crate::sched::idle::wakep();
        return;
    }
    let until = TIMER_UNTIL.load(Ordering::SeqCst);
    if until == 0 || when < until {
        TIMER_GEN.fetch_add(1, Ordering::SeqCst);
        crate::os::futex::wake(&TIMER_GEN, 1);
    }
}

/// Runs the due timers of every P (Go: `checkTimers` over all Ps). With a P held the
/// readied goroutines go to its queue; without one, to the global queue.
pub(crate) fn run_all_due(now: i64) -> usize {
    // While the due timers are out of the heaps but their goroutines not yet readied,
    // they still count as pending: sysmon fires them without being an M, and an M going
    // idle meanwhile would otherwise see no timer, no work and only waiting goroutines,
    // and report a deadlock (seen under heavy load: the timer M started for them had not
    // got to run yet, so sysmon found them overdue).
    FIRING.fetch_add(1, Ordering::SeqCst);
    let mut due = Vec::new();
    for i in 0..SCHED.procs() {
        if let Some(p) = SCHED.p(i) {
            p.timers.take_due(now, &mut due);
        }
    }
    let n = due.len();
    for e in due {
        heap::fire(e);
    }
    FIRING.fetch_sub(1, Ordering::SeqCst);
    n
}

/// Callers of `run_all_due` between taking due timers and having fired them.
static FIRING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether `p` has a timer due now (what `check_timers` would run).
#[inline]
pub(crate) fn timers_due(p: &P) -> bool {
    let w = p.timers.timer0.load(Ordering::Relaxed);
    w != 0 && w <= nanotime()
}

/// Runs `p`'s due timers (Go: `checkTimers`). Cheap when none is due.
pub(crate) fn check_timers(p: &'static P) {
    if p.timers.timer0.load(Ordering::Relaxed) == 0 {
        return;
    }
    let now = nanotime();
    if p.timers.timer0.load(Ordering::SeqCst) > now {
        return;
    }
    let mut due = Vec::new();
    p.timers.take_due(now, &mut due);
    for e in due {
        heap::fire(e);
    }
}

/// Called by an M with no P that found no work. If timers are pending and no other M is
/// waiting for them, this M waits until the earliest one, runs what is due, and returns a
/// P to schedule with (`None`: the caller should `stopm`).
pub(crate) fn idle_timer_wait(m: &'static M) -> Option<&'static P> {
    if earliest_timer() == 0 {
        return None;
    }
    let me = m as *const M as *mut M;
    if TIMER_M
        .compare_exchange(std::ptr::null_mut(), me, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return None;
    }
    loop {
        // No deadline while we recompute: a timer added meanwhile always bumps TIMER_GEN,
        // which makes the wait below return at once.
        TIMER_UNTIL.store(0, Ordering::SeqCst);
        let gen = TIMER_GEN.load(Ordering::SeqCst);
        let next = earliest_timer();
        if next == 0 {
            TIMER_UNTIL.store(0, Ordering::SeqCst);
            TIMER_M.store(std::ptr::null_mut(), Ordering::SeqCst);
            // a timer added between our check and the store saw a timer M: re-check
            if earliest_timer() != 0
                && TIMER_M
                    .compare_exchange(std::ptr::null_mut(), me, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                continue;
            }
            return None;
        }
        let now = nanotime();
        if next <= now {
            TIMER_UNTIL.store(0, Ordering::SeqCst);
            // take a P first so the woken goroutines run here, without another wake-up
            let p = SCHED.lock().pidleget();
            if let Some(p) = p {
                crate::sched::idle::acquirep(m, p);
                // leave the timer-M role before readying anyone, so an M that goes idle
                // meanwhile can take it over
                TIMER_M.store(std::ptr::null_mut(), Ordering::SeqCst);
                run_all_due(now);
                return Some(p);
            }
            run_all_due(now);
            continue;
        }
        TIMER_UNTIL.store(next, Ordering::SeqCst);
        if TIMER_GEN.load(Ordering::SeqCst) == gen {
            crate::os::futex::wait(
                &TIMER_GEN,
                gen,
                Some(Duration::from_nanos((next - now) as u64)),
            );
        }
    }
}

/// Drops stale entries from the top of every P's heap (after a `Timer` was stopped).
fn clean_stale_tops() {
    for i in 0..SCHED.procs() {
        if let Some(p) = SCHED.p(i) {
            p.timers.clean_top();
        }
    }
}

/// Whether an M is waiting for timers (it counts as idle, but timers are pending).
pub(crate) fn timer_m_exists() -> bool {
    !TIMER_M.load(Ordering::SeqCst).is_null()
}

/// Whether any timer is pending (for deadlock detection), counting timers being fired by
/// `run_all_due`.
pub(crate) fn timers_pending() -> bool {
    earliest_timer() != 0 || FIRING.load(Ordering::SeqCst) != 0
}

/// Number of timer heap entries over all Ps (stale ones included), for stats.
pub(crate) fn timer_count() -> usize {
    (0..SCHED.procs())
        .filter_map(|i| SCHED.p(i))
        .map(|p| p.timers.len())
        .sum()
}
