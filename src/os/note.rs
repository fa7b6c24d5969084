//! Notes: one-shot sleep/wake-up events for threads (Go: lock_futex.go `note`).
//!
//! An idle M sleeps on its `park` note (`note_sleep`); whoever hands it a P calls
//! `note_wakeup`. The protocol on the key word:
//!
//! * `0`: cleared, nobody has woken it yet; `1`: woken; `2`: not woken, and the sleeper
//!   is in (or about to enter) a futex wait.
//! * `wakeup` swaps in `1` (release; pairs with the acquire load in `sleep`) and issues a
//!   futex wake only if it swapped out `2`: waking a sleeper that is still spinning, or
//!   that has not started to sleep, costs no system call. A second wake-up of the same
//!   cleared note is a runtime bug and throws, as in Go.
//! * `sleep` loops: load the key (acquire); if `1`, return; if `0`, CAS it to `2` (a
//!   failed CAS means the wake-up came: loop); then futex-wait while it is `2`. The futex
//!   re-checks the word inside the kernel, so a wake-up that lands between the CAS and the
//!   wait makes the wait return at once: no wake-up is lost. `sleep_spin` first polls the
//!   key for a while, for hand-offs that come back within microseconds.
//! * `clear` resets the key to `0`; only the sleeper calls it, after `sleep` returned and
//!   before publishing itself as sleepable again (e.g. on `sched.midle`).

use crate::loom::AtomicU32;
use std::sync::atomic::Ordering;

/// Key value: not fired, and the sleeper may be in a futex wait.
const SLEEPING: u32 = 2;

/// A one-shot event one thread sleeps on and another thread fires.
#[derive(Debug)]
pub(crate) struct Note {
    /// 0 = not fired, 1 = fired, 2 = not fired and the sleeper may be in the kernel.
    /// Atomic protocol described in the module docs.
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
        match old {
            0 => {}
            SLEEPING => super::futex::wake(&self.key, 1),
            _ => crate::throw!("notewakeup: double wakeup"),
        }
    }

    /// Announces that the sleeper is going into the kernel: `0 -> 2`. Returns false if
    /// the note fired meanwhile.
    fn announce_sleep(&self) -> bool {
        match self
            .key
            .compare_exchange(0, SLEEPING, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(v) => v == SLEEPING, // a timed-out sleep left it announced
        }
    }

    /// Whether the note has fired.
    #[cfg(loom)]
    pub(crate) fn is_fired(&self) -> bool {
        self.key.load(Ordering::Acquire) == 1 // acquire; pairs with the release in `wakeup`
    }

    /// Sleeps until the note is fired.
    pub(crate) fn sleep(&self) {
        // acquire loads pair with the release swap in `wakeup`
        while self.key.load(Ordering::Acquire) != 1 {
            if self.announce_sleep() {
                super::futex::wait(&self.key, SLEEPING, None);
            }
        }
    }

    /// Polls the note for up to `spin` (on a machine with more than one CPU), then sleeps
    /// until it is fired. For hand-offs that usually come back within microseconds (a
    /// locked goroutine's thread waiting for its goroutine): a futex sleep and wake-up
    /// cost tens of microseconds on a VM.
    #[cfg(not(loom))]
    pub(crate) fn sleep_spin(&self, spin: std::time::Duration) {
        if super::num_cpu() > 1 {
            let t = std::time::Instant::now();
            'spin: loop {
                for _ in 0..64 {
                    if self.key.load(Ordering::Acquire) == 1 {
                        break 'spin; // acquire; pairs with the release in `wakeup`
                    }
                    std::hint::spin_loop();
                }
                if t.elapsed() >= spin {
                    break 'spin;
                }
            }
        }
        self.sleep();
    }

    /// Sleeps until the note is fired or `timeout` passed; returns whether it fired.
    #[cfg(not(loom))]
    pub(crate) fn sleep_timeout(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.key.load(Ordering::Acquire) == 1 {
                return true; // acquire; pairs with the release in `wakeup`
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            if self.announce_sleep() {
                super::futex::wait(&self.key, SLEEPING, Some(deadline - now));
            }
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

    /// A timed-out sleep leaves the note announced (`2`); a later wake-up must still
    /// reach a sleeper in the kernel, and a poller sees it without one.
    #[test]
    fn wakeup_after_timeout_and_while_polling() {
        let n = Arc::new(Note::new());
        assert!(!n.sleep_timeout(Duration::from_millis(2)));
        let n2 = n.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            n2.wakeup();
        });
        n.sleep();
        t.join().unwrap();
        n.clear();
        let n3 = n.clone();
        let t = std::thread::spawn(move || n3.wakeup());
        n.sleep_spin(Duration::from_millis(50));
        t.join().unwrap();
    }

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
