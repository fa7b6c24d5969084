//! Per-P timer heaps (Go 1.14+: time.go `addtimer`, `runtimer`, `checkTimers`, the
//! 4-ary `siftupTimer`/`siftdownTimer`).
//!
//! Each P owns a 4-ary min-heap of timers keyed by `when`, behind its own lock (Go's
//! `timersLock`), and publishes the earliest `when` in `timer0` (0 = none) so that
//! schedulers can skip the lock when nothing is due. Timers are run by the P's own
//! scheduler (`find_runnable`), by thieves on their last steal pass, and by an idle M
//! that sleeps until the earliest timer of all Ps (see `idle_timer_wait`), which also
//! services overdue timers of Ps whose goroutine keeps them busy (Go weakness #38860).
//!
//! Stopping or resetting a user `Timer` does not search the heap: it bumps the timer's
//! sequence number, and a heap entry whose sequence is stale is dropped when its own
//! deadline comes (it stays in the heap until then: a known cost, see
//! docs/design/timers.md).

use crate::chan::Sender;
use crate::sched::g::G;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Monotonic nanoseconds since the runtime's epoch (Go: `nanotime`). Never 0.
pub(crate) fn nanotime() -> i64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as i64 + 1
}

/// The `nanotime` value of an instant (clamped to the epoch).
pub(crate) fn nanotime_of(t: Instant) -> i64 {
    let e = *EPOCH.get_or_init(Instant::now);
    t.saturating_duration_since(e)
        .as_nanos()
        .min(i64::MAX as u128 / 2) as i64
        + 1
}

/// Shared state of a user timer: its current sequence number. Stop/reset bump it.
#[derive(Default)]
pub(crate) struct TimerShared {
    pub(crate) seq: AtomicU64,
}

/// What a timer does when it fires.
pub(crate) enum Action {
    /// Ready a goroutine parked in `sleep`.
    Wake(&'static G),
    /// Send the current instant on a channel without blocking (Go's `sendTime`), and
    /// re-arm every `period` ns if non-zero. Valid while `shared.seq == seq`.
    Send {
        tx: Sender<Instant>,
        period: i64,
        shared: Arc<TimerShared>,
        /// A one-shot `Timer`'s "active" flag, cleared when it fires.
        fired: Option<Arc<AtomicBool>>,
    },
    /// Run a function (e.g. a `Condvar::wait_timeout` expiry). It must not block.
    Call(Box<dyn FnOnce() + Send>),
}

/// A heap entry.
pub(crate) struct Entry {
    pub(crate) when: i64,
    pub(crate) seq: u64,
    pub(crate) action: Action,
}

/// One P's timers.
pub(crate) struct Timers {
    heap: Mutex<Vec<Entry>>,
    /// Earliest `when` in the heap, 0 if empty (Go: `timer0When`). Written under the lock;
    /// read without it as a hint (a reader that acts on it takes the lock).
    ///
    /// Its SeqCst store in `add` is one half of a Dekker pair with the timer M (time/mod.rs
    /// `idle_timer_wait`): `add_timer` stores `timer0`, then reads `TIMER_M` and
    /// `TIMER_UNTIL` (`wake_for_timer`); the timer M stores `TIMER_M`/`TIMER_UNTIL`, then
    /// reads every P's `timer0` (`earliest_timer`). All four are SeqCst, so one of the two
    /// sees the other: the M's deadline includes the new timer, or the adder sees the M (or
    /// its stale deadline) and bumps `TIMER_GEN` to make it recompute. Otherwise an M could
    /// sleep past a timer added meanwhile.
    pub(crate) timer0: AtomicI64,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: Mutex::new(Vec::new()),
            timer0: AtomicI64::new(0),
        }
    }

    /// Adds a timer (Go: `doaddtimer`).
    pub(crate) fn add(&self, e: Entry) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        h.push(e);
        let i = h.len() - 1;
        siftup(&mut h, i);
        // SeqCst: the store half of the Dekker pair with the timer M (see `timer0`); pairs
        // with earliest_timer's SeqCst loads, and precedes wake_for_timer's TIMER_M and
        // TIMER_UNTIL loads in add_timer.
        self.timer0.store(h[0].when, Ordering::SeqCst);
    }

    /// Drops stale entries from the top of the heap (a stopped or re-armed `Timer`'s
    /// old arming, a ticker or `after` channel nobody can receive from any more), so they
    /// neither keep an idle M waking for nothing nor count as pending timers.
    pub(crate) fn clean_top(&self) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        while h.first().is_some_and(is_stale) {
            pop(&mut h);
            changed = true;
        }
        if changed {
            // SeqCst: closes no race (the top only moves later or empties, so a reader with
            // the old value wakes early and recomputes; no load follows on this side to
            // pair with). Release would do; kept as the other timer0 stores.
            self.timer0
                .store(h.first().map_or(0, |e| e.when), Ordering::SeqCst);
        }
    }

    /// Takes every entry (when the P is retired).
    pub(crate) fn take_all(&self) -> Vec<Entry> {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        // SeqCst: closes no race (emptying only makes a stale reader wake early); as in
        // clean_top, Release would do.
        self.timer0.store(0, Ordering::SeqCst);
        std::mem::take(&mut *h)
    }

    /// Number of entries (stale ones included).
    pub(crate) fn len(&self) -> usize {
        self.heap.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// `len`, or `None` if the heap is locked right now (for traces from fatal paths).
    pub(crate) fn try_len(&self) -> Option<usize> {
        match self.heap.try_lock() {
            Ok(h) => Some(h.len()),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner().len()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Removes and returns the entries due at `now` (Go: `runtimer` loop of
    /// `checkTimers`), re-arming periodic ones. Actions run after the lock is dropped.
    pub(crate) fn take_due(&self, now: i64, out: &mut Vec<Entry>) {
        // SeqCst: closes no race here (a hint: a stale 0 or later value skips timers the
        // next check runs; the heap is read under its lock). Acquire would do.
        let t0 = self.timer0.load(Ordering::SeqCst);
        if t0 == 0 || t0 > now {
            return;
        }
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(top) = h.first() {
            if is_stale(top) {
                pop(&mut h);
                continue;
            }
            if top.when > now {
                break;
            }
            let e = pop(&mut h);
            if let Action::Send {
                period, shared, tx, ..
            } = &e.action
            {
                // acquire; pairs with the AcqRel seq bump of Timer::stop/arm (time/mod.rs)
                if *period > 0 && shared.seq.load(Ordering::Acquire) == e.seq && tx.has_receivers()
                {
                    // re-arm a ticker at its next period after now (Go drops missed ticks)
                    let mut when = e.when + period;
                    if when <= now {
                        when = now + period - (now - e.when) % period;
                    }
                    h.push(Entry {
                        when,
                        seq: e.seq,
                        action: Action::Send {
                            tx: tx.clone(),
                            period: *period,
                            shared: shared.clone(),
                            fired: None,
                        },
                    });
                    let i = h.len() - 1;
                    siftup(&mut h, i);
                }
            }
            out.push(e);
        }
        // SeqCst: closes no race. The new top is an entry the timer M already counted (or
        // whose `add` bumped TIMER_GEN), or a re-armed ticker later than the due entry it
        // replaces, which the M's deadline was not after: never earlier than what the M
        // waits for, so a reader of the old value only wakes early. Release would do.
        self.timer0
            .store(h.first().map_or(0, |e| e.when), Ordering::SeqCst);
    }
}

/// Whether an entry can no longer do anything when it fires.
fn is_stale(e: &Entry) -> bool {
    match &e.action {
        Action::Wake(_) | Action::Call(_) => false,
        // acquire; pairs with the AcqRel swap of fire or Timer::stop/arm
        Action::Send { fired: Some(f), .. } => !f.load(Ordering::Acquire),
        Action::Send { tx, .. } => !tx.has_receivers(),
    }
}

/// Runs a fired timer's action. Called without any timer lock held.
pub(crate) fn fire(e: Entry) {
    match e.action {
        Action::Wake(g) => crate::sched::park::goready(g),
        Action::Call(f) => f(),
        Action::Send {
            tx, shared, fired, ..
        } => match fired {
            // a Timer's arming: whoever swaps its flag first (this fire or a stop/reset)
            // decides whether the value is sent, so `stop` returning true means no send
            Some(f) => {
                // acq_rel; pairs with the swap in Timer::stop/arm (one of them sees true)
                if f.swap(false, Ordering::AcqRel) {
                    let _ = tx.try_send(Instant::now());
                }
            }
            None => {
                // acquire; pairs with the AcqRel seq bump of Timer::stop/arm
                if shared.seq.load(Ordering::Acquire) == e.seq {
                    let _ = tx.try_send(Instant::now());
                }
            }
        },
    }
}

/// Removes the top entry (the last one takes its place and sifts down). Every caller has
/// just seen the heap non-empty.
fn pop(h: &mut Vec<Entry>) -> Entry {
    if h.is_empty() {
        crate::throw!("pop: empty timer heap");
    }
    let e = h.swap_remove(0);
    if !h.is_empty() {
        siftdown(h, 0);
    }
    e
}

/// Go: `siftupTimer` (4-ary).
fn siftup(h: &mut [Entry], mut i: usize) {
    while i > 0 {
        let p = (i - 1) / 4;
        if h[i].when >= h[p].when {
            break;
        }
        h.swap(i, p);
        i = p;
    }
}

/// Go: `siftdownTimer` (4-ary).
fn siftdown(h: &mut [Entry], mut i: usize) {
    let n = h.len();
    loop {
        let c = i * 4 + 1;
        if c >= n {
            break;
        }
        let mut m = c;
        for k in c + 1..(c + 4).min(n) {
            if h[k].when < h[m].when {
                m = k;
            }
        }
        if h[m].when >= h[i].when {
            break;
        }
        h.swap(i, m);
        i = m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry whose channel has a live receiver (kept in `keep`), so it is not stale.
    fn entry(when: i64, keep: &mut Vec<crate::chan::Receiver<Instant>>) -> Entry {
        let (tx, rx) = crate::chan::bounded(1);
        keep.push(rx);
        Entry {
            when,
            seq: 0,
            action: Action::Send {
                tx,
                period: 0,
                shared: Arc::new(TimerShared::default()),
                fired: None,
            },
        }
    }

    #[test]
    fn heap_pops_in_order() {
        let t = Timers::new();
        let mut keep = Vec::new();
        let whens = [50, 10, 40, 30, 20, 60, 5, 45, 15, 25, 35, 55];
        for w in whens {
            t.add(entry(w, &mut keep));
        }
        assert_eq!(t.timer0.load(Ordering::SeqCst), 5);
        let mut out = Vec::new();
        t.take_due(30, &mut out);
        let got: Vec<i64> = out.iter().map(|e| e.when).collect();
        assert_eq!(got, vec![5, 10, 15, 20, 25, 30]);
        assert_eq!(t.timer0.load(Ordering::SeqCst), 35);
        out.clear();
        t.take_due(i64::MAX, &mut out);
        assert_eq!(out.len(), 6);
        assert_eq!(t.timer0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn stale_entries_leave_from_the_top() {
        let t = Timers::new();
        let mut keep = Vec::new();
        t.add(entry(10, &mut keep));
        t.add(entry(20, &mut keep));
        keep.remove(0); // nobody can receive the first entry's value any more
        t.clean_top();
        assert_eq!(t.timer0.load(Ordering::SeqCst), 20);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn instants_and_nanotime_agree() {
        let a = nanotime();
        let b = nanotime_of(Instant::now());
        assert!(b >= a && b - a < 50_000_000, "{a} {b}");
    }
}
