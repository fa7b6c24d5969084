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
use crate::sched::m::{getg, getm};
use crate::sched::p::P;
use crate::sched::schedt::SCHED;
use heap::{nanotime, nanotime_of, Action, Entry, TimerShared};
use std::sync::atomic::{AtomicBool, Ordering};
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
        None => match SCHED.p(0) {
            Some(p) => p,
            None => crate::throw!("addtimer: the runtime has no P0"),
        },
    };
    p.timers.add(e);
    crate::sched::timers::wake_for_timer(when);
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
        crate::sched::init::ensure_init();
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

/// Drops stale entries from the top of every P's heap (after a `Timer` was stopped).
fn clean_stale_tops() {
    for i in 0..SCHED.procs() {
        if let Some(p) = SCHED.p(i) {
            p.timers.clean_top();
        }
    }
}
