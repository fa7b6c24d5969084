//! Wait queues of blocked senders and receivers (Go: chan.go `waitq`, runtime2.go
//! `sudog`).
//!
//! A [`Sudog`] lives on the stack of the goroutine (or thread) that blocks; it is linked
//! into a channel's queue under the channel's lock, and unlinked under that lock by
//! exactly one party: a waker (`dequeue`), the closer, or the blocked `select` itself
//! (pass 3, `remove`). A [`Waiter`] is the blocked party: one per blocked goroutine,
//! shared by all its sudogs in a `select`.

use crate::sched::g::G;
use crate::sched::m::getg;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// A blocked goroutine or thread.
pub(crate) struct Waiter {
    /// The goroutine, or `None` for a plain thread (which sleeps on `futex`).
    g: Option<&'static G>,
    /// Thread wake-up flag: 0 until woken.
    futex: AtomicU32,
    /// For a `select`: 0 while undecided, else the winning case index + 1. The waker
    /// that CASes it from 0 owns the wake-up (Go: `g.selectDone`).
    pub(crate) done: AtomicUsize,
    /// Whether this waiter is a `select` (its sudogs may be stale in other queues).
    pub(crate) is_select: bool,
}

impl Waiter {
    /// A waiter for the calling goroutine or thread.
    pub(crate) fn current(is_select: bool) -> Waiter {
        Waiter {
            g: getg(),
            futex: AtomicU32::new(0),
            done: AtomicUsize::new(0),
            is_select,
        }
    }

    /// Blocks until woken. `unlock` releases the channel lock(s) after the waiter can no
    /// longer miss its wake-up: on g0 after the goroutine is `_Gwaiting` (gopark's
    /// unlock function), or before a thread sleeps on its futex flag.
    pub(crate) fn block(&self, reason: crate::sched::g::WaitReason, unlock: &mut dyn FnMut()) {
        match self.g {
            Some(_) => {
                let mut f = || {
                    unlock();
                    true
                };
                crate::sched::park::gopark(Some(&mut f), reason);
            }
            None => {
                unlock();
                while self.futex.load(Ordering::Acquire) == 0 {
                    crate::os::futex::wait(&self.futex, 0, None);
                }
            }
        }
    }
}

/// What a waker needs to wake a blocked party, copied out of its sudog while the channel
/// lock is held, so that waking after the unlock touches nothing on the sleeper's stack
/// but (for a thread) its futex word.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct WakeToken {
    g: Option<&'static G>,
    futex: *const AtomicU32,
}

impl WakeToken {
    /// Wakes the party. The caller must be the one entitled to wake it (it dequeued the
    /// sudog), and must not have woken it already.
    pub(crate) fn wake(self) {
        match self.g {
            Some(g) => crate::sched::park::goready(g),
            None => {
                // SAFETY: a blocked thread's waiter is live until it sees the flag set:
                // the store below is the first thing that can let it return. A thread's
                // stack stays mapped, so the futex wake by address after the store is
                // harmless even if the waiter already returned.
                let futex = unsafe { &*self.futex };
                futex.store(1, Ordering::Release); // release; pairs with the acquire in block
                crate::os::futex::wake(futex, 1);
            }
        }
    }
}

/// A blocked send or receive on one channel (Go: `sudog`). It carries copies of what a
/// waker needs (the G, whether it is a select) so that a wake-up touches this one cache
/// line of the sleeper's stack, not also its [`Waiter`].
pub(crate) struct Sudog<T> {
    next: *mut Sudog<T>,
    prev: *mut Sudog<T>,
    /// Whether linked into a queue.
    queued: bool,
    /// Copy of `waiter.is_select`.
    is_select: bool,
    /// Copy of `waiter.g`.
    g: Option<&'static G>,
    /// The blocked party.
    pub(crate) waiter: *const Waiter,
    /// Sender: `Some(value)` to hand over. Receiver: `None`, filled by the sender.
    pub(crate) elem: *mut Option<T>,
    /// The `select` case this sudog stands for.
    pub(crate) case: usize,
    /// Set by the waker: true if a value moved, false if woken by close/disconnect.
    pub(crate) success: bool,
}

impl<T> Sudog<T> {
    /// An unlinked sudog.
    pub(crate) fn new(waiter: &Waiter, elem: *mut Option<T>, case: usize) -> Sudog<T> {
        Sudog {
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            queued: false,
            is_select: waiter.is_select,
            g: waiter.g,
            waiter,
            elem,
            case,
            success: false,
        }
    }

    /// The token that wakes this sudog's party (read under the channel lock).
    pub(crate) fn wake_token(&self) -> WakeToken {
        WakeToken {
            g: self.g,
            futex: if self.g.is_some() {
                ptr::null()
            } else {
                // SAFETY: the waiter outlives its queued sudogs (same stack frame).
                unsafe { &(*self.waiter).futex }
            },
        }
    }
}

/// An intrusive FIFO of sudogs. Protected by the channel's lock.
pub(crate) struct WaitQ<T> {
    first: *mut Sudog<T>,
    last: *mut Sudog<T>,
}

impl<T> WaitQ<T> {
    pub(crate) const fn new() -> WaitQ<T> {
        WaitQ {
            first: ptr::null_mut(),
            last: ptr::null_mut(),
        }
    }

    /// Appends `sg`.
    ///
    /// # Safety
    /// `sg` stays valid and unmoved until it is unlinked; channel lock held.
    pub(crate) unsafe fn enqueue(&mut self, sg: *mut Sudog<T>) {
        // SAFETY: valid per the contract; the queue's own links are valid (lock held).
        unsafe {
            debug_assert!(!(*sg).queued);
            (*sg).next = ptr::null_mut();
            (*sg).prev = self.last;
            (*sg).queued = true;
            match self.last.as_mut() {
                Some(l) => l.next = sg,
                None => self.first = sg,
            }
            self.last = sg;
        }
    }

    /// Unlinks `sg` if it is queued (select pass 3).
    ///
    /// # Safety
    /// `sg` is valid; if queued, it is in this queue; channel lock held.
    pub(crate) unsafe fn remove(&mut self, sg: *mut Sudog<T>) {
        // SAFETY: per the contract.
        unsafe {
            if !(*sg).queued {
                return;
            }
            let (prev, next) = ((*sg).prev, (*sg).next);
            match prev.as_mut() {
                Some(p) => p.next = next,
                None => self.first = next,
            }
            match next.as_mut() {
                Some(n) => n.prev = prev,
                None => self.last = prev,
            }
            (*sg).queued = false;
            (*sg).next = ptr::null_mut();
            (*sg).prev = ptr::null_mut();
        }
    }

    /// Takes the first sudog whose waiter can still be woken: a `select` whose `done`
    /// was already won by another case is skipped (its owner unlinks the rest). The
    /// returned sudog's `select` is claimed for its case (Go: `waitq.dequeue`).
    ///
    /// # Safety
    /// Channel lock held; every linked sudog is valid.
    pub(crate) unsafe fn dequeue(&mut self) -> Option<*mut Sudog<T>> {
        loop {
            let sg = self.first;
            if sg.is_null() {
                return None;
            }
            // SAFETY: linked sudogs are valid (contract).
            unsafe {
                self.remove(sg);
                if (*sg).is_select
                    && (*(*sg).waiter)
                        .done
                        .compare_exchange(0, (*sg).case + 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                {
                    continue; // another case of that select already won
                }
            }
            return Some(sg);
        }
    }
}
