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

/// Takes a unit if there is one (Go: `cansemacquire`). SeqCst: after `semacquire`
/// counted itself in `nwait` (SeqCst), this load must see a unit that a concurrent
/// `semrelease` added (SeqCst) before reading `nwait` as zero; an acquire load may read
/// the stale count and both sides would miss each other (found by the loom model
/// `sema_handoff_no_lost_wakeup`).
pub(crate) fn cansemacquire(sema: &AtomicU32) -> bool {
    let mut v = sema.load(Ordering::SeqCst);
    loop {
        if v == 0 {
            return false;
        }
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
        r.nwait.fetch_add(1, Ordering::SeqCst); // seq_cst; pairs with semrelease's check after its add
                                                // Dekker's pattern with semrelease (count add, then nwait read): the fence makes
                                                // the StoreLoad order explicit (the loom model checks exactly this sequence).
        std::sync::atomic::fence(Ordering::SeqCst);
        if cansemacquire(sema) {
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
                &mut queues.last_mut().expect("just pushed").1
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
                while w.futex.load(Ordering::Acquire) == 0 {
                    crate::os::futex::wait(&w.futex, 0, None);
                }
                w.futex.store(0, Ordering::Relaxed);
            }
        }
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
    sema.fetch_add(1, Ordering::SeqCst); // seq_cst; pairs with semacquire's nwait increment
    std::sync::atomic::fence(Ordering::SeqCst); // the other half of the Dekker pattern
                                                // Easy case: no waiters? This check must happen after the add, to avoid a missed
                                                // wake-up (see the loop in semacquire).
    if r.nwait.load(Ordering::SeqCst) == 0 {
        return;
    }
    r.lock.lock();
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
        r.nwait.fetch_sub(1, Ordering::SeqCst);
    }
    r.lock.unlock();
    let Some(w) = woken else { return };
    // SAFETY: a dequeued waiter stays alive until we wake it, and we alone do.
    let w = unsafe { &*w };
    let gave = handoff && cansemacquire(sema);
    if gave {
        w.ticket.store(1, Ordering::Release);
    }
    match w.g {
        Some(g) => crate::sched::park::goready(g),
        None => {
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
