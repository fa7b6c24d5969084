//! Semaphores keyed by address, the waiting layer under `Mutex`, `RwLock`,
//! `WaitGroup` and `Semaphore` (Go: sema.go `semacquire1`/`semrelease1`).
//!
//! A semaphore is any `AtomicU32` counter. `semacquire` takes a unit if one is there
//! (a CAS) and otherwise parks the caller on the wait queue for that address in a
//! fixed table of 251 roots (Go's `semTabSize`). `semrelease` adds a unit and wakes the
//! first waiter. With `handoff`, the released unit is given directly to the woken
//! waiter (its "ticket") and the releaser yields so the waiter runs next: this is what
//! makes a starving `Mutex` fair (Go: `TestSemaHandoff`).
//!
//! Waiters live on the waiting goroutine's (or thread's) stack; they are queued and
//! unqueued under the root's lock, and a waiter is woken exactly once by whoever
//! dequeued it.

use crate::os::lock::RawLock;
use crate::sched::g::{WaitReason, G};
use crate::sched::m::getg;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};

const SEM_TAB_SIZE: usize = 251;

/// A blocked acquirer.
struct SemaWaiter {
    /// The goroutine, or `None` for a thread (sleeping on `futex`).
    g: Option<&'static G>,
    /// Thread wake-up flag.
    futex: AtomicU32,
    /// Set by a handoff release: the unit is already ours (Go: `sudog.ticket`).
    ticket: AtomicU32,
}

/// One root: the wait queues of the addresses that hash to it.
struct Root {
    lock: RawLock,
    /// Waiters on this root (read without the lock for the release fast path).
    nwait: AtomicU32,
    /// Per-address FIFO queues. Protected by `lock`.
    queues: UnsafeCell<Vec<(usize, VecDeque<*const SemaWaiter>)>>,
}

// SAFETY: `queues` is only touched with `lock` held; the pointers it holds are waiters
// that stay alive until dequeued and woken.
unsafe impl Sync for Root {}

#[allow(clippy::declare_interior_mutable_const)]
const ROOT: crossbeam_utils::CachePadded<Root> = crossbeam_utils::CachePadded::new(Root {
    lock: RawLock::new(),
    nwait: AtomicU32::new(0),
    queues: UnsafeCell::new(Vec::new()),
});

static TABLE: [crossbeam_utils::CachePadded<Root>; SEM_TAB_SIZE] = [ROOT; SEM_TAB_SIZE];

fn root(addr: usize) -> &'static Root {
    &TABLE[(addr >> 3) % SEM_TAB_SIZE]
}

/// Takes a unit if there is one (Go: sema.go `cansemacquire`).
///
/// The no-lost-wake-up argument is a Dekker pair between the two sides, each a store,
/// a SeqCst fence, then a load of the other side's word:
/// - `semacquire`: `nwait += 1`, fence, then this function reads the count;
/// - `semrelease`: count `+= 1`, fence, then it reads `nwait`.
///
/// The fences are ordered one way or the other in the single SeqCst order, so the later
/// side's load sees the earlier side's store: the acquirer finds the unit, or the
/// releaser finds the waiter and wakes it. If both loads could read the old values, the
/// acquirer would sleep on a unit nobody will hand it (the loom model
/// `sema_handoff_no_lost_wakeup` in models.rs deadlocks without the fences).
pub(crate) fn cansemacquire(sema: &AtomicU32) -> bool {
    // SeqCst (here and in the CAS): the load half of semacquire's Dekker pair, after its
    // fence; pairs with semrelease's count add and fence. (With both fences in place the
    // fences alone close the race and Acquire would do; not weakened yet.)
    let mut v = sema.load(Ordering::SeqCst);
    loop {
        if v == 0 {
            return false;
        }
        // SeqCst as for the load; taking the unit, its acquire half pairs with
        // semrelease's count add.
        match sema.compare_exchange_weak(v, v - 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(cur) => v = cur,
        }
    }
}

/// Waits for a unit of `sema` and takes it (Go: `semacquire1`). `lifo` queues the
/// caller at the head (a waiter that already waited once, as sync.Mutex does).
pub(crate) fn semacquire(sema: &AtomicU32, lifo: bool, reason: WaitReason) {
    if cansemacquire(sema) {
        return;
    }
    let addr = sema as *const AtomicU32 as usize;
    let r = root(addr);
    let w = SemaWaiter {
        g: getg(),
        futex: AtomicU32::new(0),
        ticket: AtomicU32::new(0),
    };
    loop {
        r.lock.lock();
        // Count ourselves as a waiter before the re-check, so that a release from now on
        // takes its slow path and looks in the queue.
        // SeqCst: the store half of the Dekker pair with semrelease (see cansemacquire);
        // pairs with semrelease's nwait load after its fence.
        r.nwait.fetch_add(1, Ordering::SeqCst);
        // SeqCst fence: orders the nwait add before the count re-check (StoreLoad), against
        // semrelease's fence between its count add and its nwait load.
        std::sync::atomic::fence(Ordering::SeqCst);
        if cansemacquire(sema) {
            // SeqCst: not needed (under the root lock; semrelease's unlocked read of a
            // stale non-zero only costs it the lock): kept as is in this pass.
            r.nwait.fetch_sub(1, Ordering::SeqCst);
            r.lock.unlock();
            return;
        }
        // SAFETY: root lock held.
        let queues = unsafe { &mut *r.queues.get() };
        let q = match queues.iter_mut().position(|(a, _)| *a == addr) {
            Some(i) => &mut queues[i].1,
            None => {
                queues.push((addr, VecDeque::new()));
                match queues.last_mut() {
                    Some(q) => &mut q.1,
                    None => crate::throw!("semacquire: queue vanished right after its push"),
                }
            }
        };
        if lifo {
            q.push_front(&w);
        } else {
            q.push_back(&w);
        }
        match w.g {
            Some(_) => {
                let mut unlock = || {
                    r.lock.unlock();
                    true
                };
                crate::sched::park::gopark(Some(&mut unlock), reason);
            }
            None => {
                r.lock.unlock();
                // acquire; pairs with semrelease's release store of the flag
                while w.futex.load(Ordering::Acquire) == 0 {
                    crate::os::futex::wait(&w.futex, 0, None);
                }
                w.futex.store(0, Ordering::Relaxed);
            }
        }
        // acquire; pairs with semrelease's release store of the ticket (the hand-off)
        if w.ticket.load(Ordering::Acquire) != 0 || cansemacquire(sema) {
            return;
        }
    }
}

/// Adds a unit to `sema` and wakes the first waiter (Go: `semrelease1`). With
/// `handoff`, the unit goes straight to that waiter and the caller yields to it.
pub(crate) fn semrelease(sema: &AtomicU32, handoff: bool) {
    let addr = sema as *const AtomicU32 as usize;
    let r = root(addr);
    // SeqCst: the store half of the Dekker pair with semacquire (see cansemacquire); pairs
    // with the count re-check that semacquire makes after its nwait add and fence.
    sema.fetch_add(1, Ordering::SeqCst);
    // SeqCst fence: orders the count add before the nwait load below (StoreLoad), against
    // semacquire's fence between its nwait add and its re-check.
    std::sync::atomic::fence(Ordering::SeqCst);
    // Nobody waiting: done without the lock. Reading nwait only after publishing the unit
    // is what makes this skip safe: a waiter not counted yet will see the unit.
    // SeqCst: the load half of the Dekker pair; pairs with semacquire's nwait add. (After
    // the fence Relaxed would do; not weakened yet.)
    if r.nwait.load(Ordering::SeqCst) == 0 {
        return;
    }
    r.lock.lock();
    // SeqCst: not needed (the root lock orders it after every enqueuer's add): kept.
    if r.nwait.load(Ordering::SeqCst) == 0 {
        r.lock.unlock();
        return;
    }
    // SAFETY: root lock held.
    let queues = unsafe { &mut *r.queues.get() };
    let mut woken: Option<*const SemaWaiter> = None;
    if let Some(i) = queues.iter().position(|(a, _)| *a == addr) {
        woken = queues[i].1.pop_front();
        if queues[i].1.is_empty() {
            queues.swap_remove(i);
        }
    }
    if woken.is_some() {
        // SeqCst: not needed (under the root lock, and a stale larger count read by
        // semrelease's fast path only sends it here): kept as is in this pass.
        r.nwait.fetch_sub(1, Ordering::SeqCst);
    }
    r.lock.unlock();
    let Some(w) = woken else { return };
    // SAFETY: a dequeued waiter stays alive until we wake it, and we alone do.
    let w = unsafe { &*w };
    let gave = handoff && cansemacquire(sema);
    if gave {
        w.ticket.store(1, Ordering::Release); // release; pairs with semacquire's ticket load
    }
    match w.g {
        Some(g) => crate::sched::park::goready(g),
        None => {
            // release; pairs with the sleeping thread's acquire load in semacquire
            w.futex.store(1, Ordering::Release);
            crate::os::futex::wake(&w.futex, 1);
        }
    }
    if gave && getg().is_some() {
        // Direct handoff: the woken goroutine is in our runnext; yield so it runs now
        // (Go: goyield).
        crate::gosched();
    }
}
