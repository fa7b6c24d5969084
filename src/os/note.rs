//! Notes: one-shot sleep/wake-up events for threads (Go: lock_futex.go `note`).
//!
//! An idle M sleeps on its `park` note (`note_sleep`); whoever hands it a P calls
//! `note_wakeup`. The protocol on the key word:
//!
//! * `0`: cleared, nobody has woken it yet; `1`: woken.
//! * `wakeup` swaps in `1` (release; pairs with the acquire load in `sleep`) and then
//!   issues a futex wake. A second wake-up of the same cleared note is a runtime bug and
//!   throws, as in Go.
//! * `sleep` loops: load the key (acquire); if `1`, return; else futex-wait while it is
//!   `0`. The futex re-checks the word inside the kernel, so a wake-up that lands between
//!   the load and the wait makes the wait return at once: no wake-up is lost.
//! * `clear` resets the key to `0`; only the sleeper calls it, after `sleep` returned and
//!   before publishing itself as sleepable again (e.g. on `sched.midle`).

use crate::loom::AtomicU32;
use std::sync::atomic::Ordering;

/// A one-shot event one thread sleeps on and another thread fires.
#[derive(Debug)]
pub(crate) struct Note {
    /// 0 = not fired, 1 = fired. Atomic protocol described in the module docs.
    key: AtomicU32,
}

impl Note {
    /// A cleared note.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Note {
        Note {
            key: AtomicU32::new(0),
        }
    }

    /// A cleared note (loom atomics are not `const`).
    #[cfg(loom)]
    pub(crate) fn new() -> Note {
        Note {
            key: AtomicU32::new(0),
        }
    }

    /// Resets the note so it can be slept on again. Only the sleeper calls this.
    pub(crate) fn clear(&self) {
        self.key.store(0, Ordering::Relaxed); // ordered before re-publication by the lock that publishes the sleeper
    }

    /// Fires the note, waking its sleeper. Throws if it was already fired.
    pub(crate) fn wakeup(&self) {
        let old = self.key.swap(1, Ordering::Release); // release; pairs with the acquire in `sleep`
        if old != 0 {
            crate::throw!("notewakeup: double wakeup");
        }
        super::futex::wake(&self.key, 1);
    }

    /// Whether the note has fired.
    #[cfg(loom)]
    pub(crate) fn is_fired(&self) -> bool {
        self.key.load(Ordering::Acquire) != 0 // acquire; pairs with the release in `wakeup`
    }

    /// Sleeps until the note is fired.
    pub(crate) fn sleep(&self) {
        while self.key.load(Ordering::Acquire) == 0 {
            // acquire above pairs with the release swap in `wakeup`
            super::futex::wait(&self.key, 0, None);
        }
    }

    /// Sleeps until the note is fired or `timeout` passed; returns whether it fired.
    #[cfg(not(loom))]
    pub(crate) fn sleep_timeout(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.key.load(Ordering::Acquire) != 0 {
                return true; // acquire; pairs with the release in `wakeup`
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            super::futex::wait(&self.key, 0, Some(deadline - now));
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::Note;
    use loom::sync::Arc;

    /// A wake-up racing with the sleeper's check is never lost: the sleeper returns.
    #[test]
    fn note_sleep_wakeup() {
        loom::model(|| {
            let n = Arc::new(Note::new());
            let n2 = n.clone();
            let t = loom::thread::spawn(move || n2.wakeup());
            n.sleep();
            assert!(n.is_fired());
            t.join().unwrap();
        });
    }

    /// clear-then-sleep-again by the sleeper after a fire, with a second waker handing
    /// over: the second wake-up is seen (the M re-parks after each hand-off).
    #[test]
    fn note_reuse_after_clear() {
        loom::model(|| {
            let n = Arc::new(Note::new());
            let n2 = n.clone();
            let t = loom::thread::spawn(move || {
                n2.wakeup();
            });
            n.sleep();
            t.join().unwrap();
            n.clear();
            let n3 = n.clone();
            let t2 = loom::thread::spawn(move || n3.wakeup());
            n.sleep();
            t2.join().unwrap();
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Note;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn sleep_until_woken_from_other_thread() {
        let n = Arc::new(Note::new());
        let n2 = n.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            n2.wakeup();
        });
        n.sleep();
        t.join().unwrap();
    }
}
