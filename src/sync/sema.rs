//! A counting semaphore whose waiters are goroutines (parked) or plain threads (futex):
//! the waiting layer under [`WaitGroup`](super::WaitGroup) (Go: sema.go
//! `semacquire`/`semrelease`, here one queue per semaphore).

use crate::sched::g::{WaitReason, G};
use crate::sched::m::getg;
use crate::sched::park::{gopark, goready};
use crate::sched::schedt::lock;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

pub(super) enum Waiter {
    G(&'static G),
    Thread(Arc<AtomicU32>),
}

#[derive(Default)]
pub(super) struct Inner {
    /// Releases not yet consumed by an acquire.
    pub(super) count: u32,
    /// FIFO of blocked acquirers.
    pub(super) waiters: VecDeque<Waiter>,
}

/// A semaphore: `acquire` waits for a `release`.
#[derive(Default)]
pub(crate) struct Sema {
    pub(super) inner: Mutex<Inner>,
}

impl Sema {
    /// Waits until a release is available and consumes it.
    pub(crate) fn acquire(&self, reason: WaitReason) {
        let mut inner = lock(&self.inner);
        if inner.count > 0 {
            inner.count -= 1;
            return;
        }
        match getg() {
            Some(g) => {
                inner.waiters.push_back(Waiter::G(g));
                let mut guard = Some(inner);
                // Runs on g0 of this same thread after the G is _Gwaiting: releasing the
                // lock publishes the G to `release`.
                let mut unlock = || {
                    drop(guard.take());
                    true
                };
                gopark(Some(&mut unlock), reason);
            }
            None => {
                let flag = Arc::new(AtomicU32::new(0));
                inner.waiters.push_back(Waiter::Thread(flag.clone()));
                drop(inner);
                while flag.load(Ordering::Acquire) == 0 {
                    crate::os::futex::wait(&flag, 0, None);
                }
            }
        }
    }

    /// Releases `n` times: wakes up to `n` waiters, FIFO, and banks the rest.
    pub(crate) fn release(&self, n: u32) {
        let mut woken = Vec::new();
        {
            let mut inner = lock(&self.inner);
            for _ in 0..n {
                match inner.waiters.pop_front() {
                    Some(w) => woken.push(w),
                    None => inner.count += 1,
                }
            }
        }
        for w in woken {
            match w {
                Waiter::G(g) => goready(g),
                Waiter::Thread(flag) => {
                    flag.store(1, Ordering::Release); // release; pairs with the waiter's acquire
                    crate::os::futex::wake(&flag, 1);
                }
            }
        }
    }
}
