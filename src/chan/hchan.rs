//! The channel itself (Go: chan.go `hchan`, `chansend`, `chanrecv`, `closechan`).
//!
//! All state is behind `lock` (a [`RawLock`], so `select` can hold several). A value
//! meets a waiting partner directly: a sender hands its value to a blocked receiver's
//! slot without touching the buffer; a receiver from a full buffer takes the head and
//! moves the first blocked sender's value to the tail. Wake-ups happen after unlocking.

use super::waitq::{Sudog, WaitQ, Waiter, WakeToken};
use crate::os::lock::RawLock;
use crate::sched::g::{WaitReason, G};
use crate::sched::m::getg;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;

/// State behind the lock.
pub(crate) struct Inner<T> {
    /// Buffered values (at most `cap`).
    pub(crate) buf: VecDeque<T>,
    /// Blocked receivers (Go: `recvq`).
    pub(crate) recvq: WaitQ<T>,
    /// Blocked senders (Go: `sendq`).
    pub(crate) sendq: WaitQ<T>,
    /// `close` was called or every sender is gone.
    pub(crate) closed: bool,
    /// Every receiver is gone: sends fail.
    pub(crate) rx_gone: bool,
}

/// A blocked sender's or receiver's sudog and value slot, side by side so a waker
/// touches one or two cache lines of the sleeper's stack.
#[repr(C, align(64))]
struct Blocked<T> {
    sg: Sudog<T>,
    slot: Option<T>,
}

/// A channel.
pub(crate) struct Chan<T> {
    pub(crate) lock: RawLock,
    /// Protected by `lock`.
    inner: UnsafeCell<Inner<T>>,
    /// Capacity (`usize::MAX`: unbounded).
    pub(crate) cap: usize,
    /// Live `Sender`s / `Receiver`s.
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
}

// SAFETY: `inner` is only touched with `lock` held; values of T move between threads.
unsafe impl<T: Send> Sync for Chan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Chan<T> {}

/// Why a send did not complete.
pub(crate) enum SendFail<T> {
    Full(T),
    Disconnected(T),
}

/// Why a receive did not complete.
pub(crate) enum RecvFail {
    Empty,
    Disconnected,
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: usize) -> Chan<T> {
        Chan {
            lock: RawLock::new(),
            inner: UnsafeCell::new(Inner {
                buf: VecDeque::new(),
                recvq: WaitQ::new(),
                sendq: WaitQ::new(),
                closed: false,
                rx_gone: false,
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    /// The locked state.
    ///
    /// # Safety
    /// `lock` is held by the caller, and no other reference from `inner` is live.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn inner(&self) -> &mut Inner<T> {
        // SAFETY: per the contract.
        unsafe { &mut *self.inner.get() }
    }

    /// Send, with the lock held: hand to a waiting receiver, or buffer. Never blocks.
    ///
    /// # Safety
    /// `lock` held.
    pub(crate) unsafe fn try_send_locked(&self, v: T) -> Result<Option<WakeToken>, SendFail<T>> {
        // SAFETY: lock held.
        let inner = unsafe { self.inner() };
        if inner.closed || inner.rx_gone {
            return Err(SendFail::Disconnected(v));
        }
        // SAFETY: lock held; queued sudogs are valid.
        if let Some(t) = unsafe { inner.recvq.dequeue() } {
            // SAFETY: a dequeued receiver's slot and waiter stay valid until we wake it.
            // A blocked receiver's slot is `None`: write without reading (and dropping)
            // it, so the cold line is only stored to.
            unsafe {
                std::ptr::write(t.elem, Some(v));
                (*t.sg).success = true;
            }
            return Ok(Some(t.token));
        }
        if inner.buf.len() < self.cap {
            inner.buf.push_back(v);
            return Ok(None);
        }
        Err(SendFail::Full(v))
    }

    /// Receive, with the lock held: from a waiting sender (rotating the buffer), or the
    /// buffer. Never blocks.
    ///
    /// # Safety
    /// `lock` held.
    pub(crate) unsafe fn try_recv_locked(&self) -> Result<(T, Option<WakeToken>), RecvFail> {
        // SAFETY: lock held.
        let inner = unsafe { self.inner() };
        // SAFETY: lock held; queued sudogs are valid.
        if let Some(t) = unsafe { inner.sendq.dequeue() } {
            // SAFETY: a dequeued sender's slot and waiter stay valid until we wake it.
            unsafe {
                let Some(theirs) = (*t.elem).take() else {
                    crate::throw!("try_recv_locked: blocked sender without a value");
                };
                (*t.sg).success = true;
                let v = match inner.buf.pop_front() {
                    // the buffer is full: take its head, their value goes to the tail
                    Some(head) => {
                        inner.buf.push_back(theirs);
                        head
                    }
                    None => theirs, // unbuffered: straight from the sender
                };
                return Ok((v, Some(t.token)));
            }
        }
        if let Some(v) = inner.buf.pop_front() {
            return Ok((v, None));
        }
        if inner.closed {
            return Err(RecvFail::Disconnected);
        }
        Err(RecvFail::Empty)
    }

    /// Sends `v`, blocking (parking the goroutine) while the channel is full.
    pub(crate) fn send(&self, v: T, block: bool) -> Result<(), SendFail<T>> {
        // the caller, read once (it stays the same goroutine across switches)
        let me = getg();
        crate::sched::park::preempt_point_g(me);
        self.lock.lock();
        // SAFETY: lock held.
        match unsafe { self.try_send_locked(v) } {
            Ok(w) => {
                self.lock.unlock();
                if let Some(w) = w {
                    w.wake_by(me); // we dequeued its sudog: we alone wake it
                }
                Ok(())
            }
            Err(SendFail::Full(v)) if block => self.send_block(v, me),
            Err(e) => {
                self.lock.unlock();
                Err(e)
            }
        }
    }

    /// Slow path of `send`: enqueue and park (lock held on entry, released by the park).
    fn send_block(&self, v: T, me: Option<&'static G>) -> Result<(), SendFail<T>> {
        let waiter = Waiter::of(me, false);
        let mut b = Blocked {
            slot: Some(v),
            sg: Sudog::new(&waiter, std::ptr::null_mut(), 0),
        };
        b.sg.elem = &mut b.slot;
        // SAFETY: lock held; `b` lives on this stack until a waker or the closer has
        // unlinked the sudog, which happens before we are woken. We touch `b` again only
        // after waking (the waker's accesses through its pointers happen before).
        unsafe { self.inner().sendq.enqueue(&mut b.sg) };
        waiter.block(WaitReason::ChanSend, &mut || self.lock.unlock());
        if b.sg.success {
            return Ok(());
        }
        match b.slot.take() {
            Some(v) => Err(SendFail::Disconnected(v)),
            None => crate::throw!("send_block: woken by close without its value"),
        }
    }

    /// Receives a value, blocking while the channel is empty and open.
    pub(crate) fn recv(&self, block: bool) -> Result<T, RecvFail> {
        // the caller, read once (it stays the same goroutine across switches)
        let me = getg();
        crate::sched::park::preempt_point_g(me);
        self.lock.lock();
        // SAFETY: lock held.
        match unsafe { self.try_recv_locked() } {
            Ok((v, w)) => {
                self.lock.unlock();
                if let Some(w) = w {
                    w.wake_by(me); // we dequeued its sudog: we alone wake it
                }
                Ok(v)
            }
            Err(RecvFail::Empty) if block => self.recv_block(me),
            Err(e) => {
                self.lock.unlock();
                Err(e)
            }
        }
    }

    /// Slow path of `recv`: enqueue and park (lock held on entry).
    fn recv_block(&self, me: Option<&'static G>) -> Result<T, RecvFail> {
        let waiter = Waiter::of(me, false);
        let mut b = Blocked {
            slot: None,
            sg: Sudog::new(&waiter, std::ptr::null_mut(), 0),
        };
        b.sg.elem = &mut b.slot;
        // SAFETY: as in send_block.
        unsafe { self.inner().recvq.enqueue(&mut b.sg) };
        waiter.block(WaitReason::ChanReceive, &mut || self.lock.unlock());
        if !b.sg.success {
            return Err(RecvFail::Disconnected);
        }
        match b.slot.take() {
            Some(v) => Ok(v),
            None => crate::throw!("recv_block: woken with success but no value"),
        }
    }

    /// Closes the channel (Go: `closechan`): every blocked receiver and sender wakes up
    /// (receivers see the end once the buffer is drained; senders get their values back).
    /// Returns false if it was already closed.
    pub(crate) fn close(&self) -> bool {
        self.lock.lock();
        // SAFETY: lock held.
        let inner = unsafe { self.inner() };
        if inner.closed {
            self.lock.unlock();
            return false;
        }
        inner.closed = true;
        let wake = Self::fail_all(&mut inner.recvq, &mut inner.sendq, true);
        self.lock.unlock();
        Self::wake_all(wake);
        true
    }

    /// The last receiver is gone: blocked senders fail (their values come back).
    pub(crate) fn receivers_gone(&self) {
        self.lock.lock();
        // SAFETY: lock held.
        let inner = unsafe { self.inner() };
        inner.rx_gone = true;
        let wake = Self::fail_all(&mut inner.recvq, &mut inner.sendq, false);
        self.lock.unlock();
        Self::wake_all(wake);
    }

    /// Wakes the parties `fail_all` dequeued (after the unlock), checking for preempt
    /// requests as it goes: there may be many.
    fn wake_all(wake: Vec<WakeToken>) {
        for (i, w) in wake.into_iter().enumerate() {
            w.wake(); // we dequeued each of them
            crate::sched::park::preempt_every(i as u32);
        }
    }

    /// Dequeues every waiter (receivers too if `receivers`) marking them failed.
    fn fail_all(recvq: &mut WaitQ<T>, sendq: &mut WaitQ<T>, receivers: bool) -> Vec<WakeToken> {
        let mut wake = Vec::new();
        loop {
            let sg = if receivers {
                // SAFETY: lock held by the caller; queued sudogs are valid.
                unsafe { recvq.dequeue() }
            } else {
                None
            };
            // SAFETY: as above.
            let sg = sg.or_else(|| unsafe { sendq.dequeue() });
            let Some(t) = sg else { break };
            // SAFETY: dequeued sudogs stay valid until their owner is woken.
            unsafe { (*t.sg).success = false };
            wake.push(t.token);
        }
        wake
    }

    /// Buffered values now.
    pub(crate) fn len(&self) -> usize {
        self.lock.lock();
        // SAFETY: lock held.
        let n = unsafe { self.inner().buf.len() };
        self.lock.unlock();
        n
    }
}
