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
    /// A waiter for the caller, which is goroutine `g` (`None`: a plain thread or g0).
    #[inline]
    pub(crate) fn of(g: Option<&'static G>, is_select: bool) -> Waiter {
        Waiter {
            g,
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
            Some(g) => {
                let mut f = || {
                    unlock();
                    true
                };
                crate::sched::park::gopark_g(g, Some(&mut f), reason);
            }
            None => {
                unlock();
                // acquire; pairs with the release store in WakeToken::wake_by
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
        self.wake_by(getg());
    }

    /// `wake` by a caller that knows whether it is a goroutine (`me`: itself).
    #[inline]
    pub(crate) fn wake_by(self, me: Option<&'static G>) {
        match self.g {
            Some(g) => crate::sched::park::goready_by(g, me),
            None => {
                // SAFETY: a blocked thread's waiter is live until it sees the flag set:
                // the store below is the first thing that can let it return. A thread's
                // stack stays mapped, so the futex wake by address after the store is
                // harmless even if the waiter already returned.
                let futex = unsafe { &*self.futex };
                futex.store(1, Ordering::Release); // release; pairs with the acquire in Waiter::block
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
}

/// What a waker needs from the first queued sudog, copied into the queue (in the
/// channel, whose line the waker already holds for the lock) when that sudog becomes the
/// first. Waking the only waiter then *reads* nothing on the sleeper's stack: it only
/// writes there (the value, `success`, the unlink), and stores to lines not in cache do
/// not stall the waker the way loads do. In a ring of thousands of goroutines every
/// hop's receiver is cold (`gort-bench ring`: about 10% faster than reading the sudog).
struct Head<T> {
    g: Option<&'static G>,
    elem: *mut Option<T>,
    waiter: *const Waiter,
    /// The sudog's `case` (a `select!` has far fewer than 2^32 arms).
    case: u32,
    is_select: bool,
}

impl<T> Clone for Head<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Head<T> {}

impl<T> Head<T> {
    const EMPTY: Head<T> = Head {
        g: None,
        elem: ptr::null_mut(),
        waiter: ptr::null(),
        case: 0,
        is_select: false,
    };

    /// # Safety
    /// `sg` is valid.
    unsafe fn of(sg: *const Sudog<T>) -> Head<T> {
        // SAFETY: per the contract.
        let sg = unsafe { &*sg };
        Head {
            g: sg.g,
            elem: sg.elem,
            waiter: sg.waiter,
            case: sg.case as u32,
            is_select: sg.is_select,
        }
    }
}

/// A sudog taken off a queue by a waker: where to put or take the value, and how to
/// wake its party.
pub(crate) struct Taken<T> {
    pub(crate) sg: *mut Sudog<T>,
    pub(crate) elem: *mut Option<T>,
    pub(crate) token: WakeToken,
}

/// An intrusive FIFO of sudogs. Protected by the channel's lock.
pub(crate) struct WaitQ<T> {
    first: *mut Sudog<T>,
    last: *mut Sudog<T>,
    /// Copy of the first sudog's fields (valid while `first` is not null).
    head: Head<T>,
}

impl<T> WaitQ<T> {
    pub(crate) const fn new() -> WaitQ<T> {
        WaitQ {
            first: ptr::null_mut(),
            last: ptr::null_mut(),
            head: Head::EMPTY,
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
                None => {
                    self.first = sg;
                    self.head = Head::of(sg);
                }
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
            self.unlink(sg);
        }
    }

    /// Unlinks queued `sg`. For the only queued sudog it reads nothing from `sg`.
    ///
    /// # Safety
    /// `sg` is queued in this queue; channel lock held.
    unsafe fn unlink(&mut self, sg: *mut Sudog<T>) {
        // SAFETY: per the contract.
        unsafe {
            if self.first == sg && self.last == sg {
                self.first = ptr::null_mut();
                self.last = ptr::null_mut();
            } else {
                let (prev, next) = ((*sg).prev, (*sg).next);
                match prev.as_mut() {
                    Some(p) => p.next = next,
                    None => {
                        self.first = next;
                        if !next.is_null() {
                            self.head = Head::of(next);
                        }
                    }
                }
                match next.as_mut() {
                    Some(n) => n.prev = prev,
                    None => self.last = prev,
                }
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
    pub(crate) unsafe fn dequeue(&mut self) -> Option<Taken<T>> {
        loop {
            let sg = self.first;
            if sg.is_null() {
                return None;
            }
            let h = self.head;
            // SAFETY: linked sudogs are valid (contract), and so are their waiters.
            unsafe {
                self.unlink(sg);
                // acq_rel; claims the select: the CASes of its cases' wakers pair with each
                // other (one modification order, one winner), and the winner's release pairs
                // with the acquire load of `done` in select_impl after the park
                if h.is_select
                    && (*h.waiter)
                        .done
                        .compare_exchange(
                            0,
                            h.case as usize + 1,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_err()
                {
                    continue; // another case of that select already won
                }
            }
            let futex = if h.g.is_some() {
                ptr::null()
            } else {
                // SAFETY: address arithmetic only; the waiter outlives its queued sudogs.
                unsafe { ptr::addr_of!((*h.waiter).futex) }
            };
            return Some(Taken {
                sg,
                elem: h.elem,
                token: WakeToken { g: h.g, futex },
            });
        }
    }
}
