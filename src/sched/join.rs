//! A goroutine's result and its joiner, kept in its spawn record (`spawn.rs`) so that
//! spawning allocates nothing beyond the record (Go's `go` returns no handle; gort's
//! `JoinHandle` costs no allocation of its own).
//!
//! # Protocol
//!
//! `state` packs three flags and the joiner:
//!
//! * `HANDLE`: a `JoinHandle` exists. Set at spawn; cleared when the handle is joined
//!   or dropped.
//! * `RESULT`: the goroutine wrote its result into `slot`.
//! * `DEAD`: the G finished (`goexit0`).
//! * the bits above: the waiting joiner, a `*const G` or [`THREAD_WAITER`].
//!
//! Rules (each is one atomic RMW, so exactly one party acts):
//!
//! 1. The result is dropped by whoever sets the second of {`RESULT` set, `HANDLE`
//!    cleared}: the goroutine (on its own stack, where it knows `T`) if the handle was
//!    already gone, else the handle, which takes it *before* clearing `HANDLE` (after
//!    that, rule 2 may let `goexit0` recycle the record under it), and clears `HANDLE`
//!    without a result only by a CAS that sees `RESULT` clear.
//! 2. The record is freed for reuse by whoever sets the second of {`DEAD` set, `HANDLE`
//!    cleared}: `goexit0` if no handle exists, else the handle's join or drop. So a
//!    record is never reused while a handle may still read it. (A goroutine that starts
//!    when its handle is already gone does not keep its record: it is freed then, and the
//!    goroutine drops its result itself, as rule 1 has it.)
//! 3. A joiner registers itself only while `DEAD` is clear (CAS); `goexit0` sets `DEAD`
//!    with a swap that returns the registered joiner, and wakes it.

use std::cell::UnsafeCell;
use std::mem::{align_of, size_of, MaybeUninit};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

pub(crate) const HANDLE: usize = 1;
pub(crate) const RESULT: usize = 2;
pub(crate) const DEAD: usize = 4;
const FLAGS: usize = 7;
/// The joiner is a plain thread sleeping on `futex`.
pub(crate) const THREAD_WAITER: usize = 8;

type Slot = [MaybeUninit<usize>; 4];

/// Result storage and join state of one goroutine.
pub(crate) struct Join {
    /// Flags and joiner (protocol above).
    pub(crate) state: AtomicUsize,
    /// Futex word a thread joiner sleeps on: 0 until the G is dead.
    pub(crate) futex: AtomicU32,
    /// The result, inline if it fits, else a `Box` pointer. Written by the goroutine
    /// before it sets `RESULT`; read by the one party that rule 1 picks.
    slot: UnsafeCell<Slot>,
}

/// Whether a value of type `R` is stored inline.
const fn fits<R>() -> bool {
    size_of::<R>() <= size_of::<Slot>() && align_of::<R>() <= align_of::<Slot>()
}

impl Join {
    pub(crate) fn new() -> Join {
        Join {
            state: AtomicUsize::new(0),
            futex: AtomicU32::new(0),
            slot: UnsafeCell::new([MaybeUninit::uninit(); 4]),
        }
    }

    /// Resets for a new goroutine with a handle. The caller owns the dead G.
    pub(crate) fn reset(&self) {
        self.futex.store(0, Ordering::Relaxed);
        self.state.store(HANDLE, Ordering::Relaxed); // published with the G by the run queue
    }

    /// Goroutine side: stores the result (rule 1).
    ///
    /// # Safety
    /// Called once per goroutine, by the goroutine, with the `R` its handle expects.
    pub(crate) unsafe fn put<R>(&self, r: R) {
        let slot = self.slot.get();
        // SAFETY: only this goroutine writes the slot, before RESULT is set.
        unsafe {
            if fits::<R>() {
                slot.cast::<R>().write(r);
            } else {
                slot.cast::<*mut R>().write(Box::into_raw(Box::new(r)));
            }
        }
        let old = self.state.fetch_or(RESULT, Ordering::AcqRel); // release: the slot write; acquire: the handle's drop
        if old & HANDLE == 0 {
            // SAFETY: the handle is gone (rule 1): we own the result; take it back.
            drop(unsafe { self.take::<R>() });
        }
    }

    /// Takes the result out of the slot.
    ///
    /// # Safety
    /// `RESULT` is set, the value is of type `R`, and rule 1 gave it to the caller.
    pub(crate) unsafe fn take<R>(&self) -> R {
        let slot = self.slot.get();
        // SAFETY: per the contract the slot holds an `R` (inline or boxed).
        unsafe {
            if fits::<R>() {
                slot.cast::<R>().read()
            } else {
                *Box::from_raw(slot.cast::<*mut R>().read())
            }
        }
    }

    /// Whether a handle exists (at start: whether the record must stay with the G).
    pub(crate) fn has_handle(&self) -> bool {
        self.state.load(Ordering::Acquire) & HANDLE != 0 // acquire; pairs with release_handle
    }

    /// Whether the G is dead.
    pub(crate) fn is_dead(&self) -> bool {
        self.state.load(Ordering::Acquire) & DEAD != 0 // acquire; pairs with goexit0's release
    }

    /// `goexit0` side: marks the G dead and returns (joiner, whether a handle still
    /// exists). The caller wakes the joiner and frees the record if no handle exists.
    pub(crate) fn mark_dead(&self) -> (usize, bool) {
        let old = self.state.fetch_or(DEAD, Ordering::AcqRel); // release: everything the G did
        (old & !FLAGS, old & HANDLE != 0)
    }

    /// A goroutine joiner registers `me`; false if the G is already dead.
    pub(crate) fn register(&self, me: usize) -> bool {
        debug_assert_eq!(me & FLAGS, 0);
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & DEAD != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                (s & FLAGS) | me,
                Ordering::AcqRel, // release: publishes our G to goexit0
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    /// Handle side: drops the handle (rules 1 and 2), handing the result (if the
    /// goroutine stored it) to `take` first: once `HANDLE` is clear, `goexit0` may
    /// recycle the record at any moment, so nothing may read it after that. Returns
    /// whether the caller must recycle the record.
    pub(crate) fn release_handle(&self, take: impl FnOnce()) -> bool {
        let mut s = self.state.load(Ordering::Acquire); // acquire; pairs with put's release
        loop {
            debug_assert!(s & HANDLE != 0);
            if s & RESULT != 0 {
                // ours by rule 1 (HANDLE is still set, so nobody else reads or frees it)
                take();
                let old = self.state.fetch_and(!HANDLE, Ordering::AcqRel);
                return old & DEAD != 0;
            }
            // no result yet: give up the handle only while that holds, so that the
            // goroutine drops its result itself (and `goexit0` recycles the record)
            match self.state.compare_exchange_weak(
                s,
                s & !HANDLE,
                Ordering::AcqRel, // release: our reads of the record before goexit0's free
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // DEAD implies RESULT (`put` comes before `mark_dead`)
                    debug_assert!(s & DEAD == 0);
                    return false;
                }
                Err(cur) => s = cur,
            }
        }
    }
}

/// Wakes the joiner recorded by [`Join::mark_dead`].
pub(crate) fn wake_joiner(j: &Join, waiter: usize) {
    match waiter {
        0 => {}
        THREAD_WAITER => {
            j.futex.store(1, Ordering::Release); // release; pairs with the thread's acquire
            crate::os::futex::wake(&j.futex, u32::MAX);
        }
        // SAFETY: any other value is the address of a leaked G parked in join.
        w => super::park::goready(unsafe { &*(w as *const super::g::G) }),
    }
}
