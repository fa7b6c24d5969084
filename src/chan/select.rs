//! `select!`: wait on several channel operations at once (Go: select.go `selectgo`).
//!
//! The algorithm, as Go's:
//!
//! 1. Put the cases in a random *poll order* (so ready cases are chosen uniformly) and
//!    the channels in address *lock order* (so two selects never deadlock); lock every
//!    channel once, even if it appears in several cases.
//! 2. Pass 1: in poll order, complete the first case that is ready (a partner waiting,
//!    buffer room or values, or a closed channel). A select without `default` first
//!    tries the cases one lock at a time (see `select_impl`; docs/design/channels.md).
//! 3. If none is ready and there is a `default`, unlock and take it.
//! 4. Pass 2: enqueue a sudog for every case, all sharing one waiter, and park; the
//!    unlock function releases every channel.
//! 5. A waker that dequeues one of our sudogs claims the select by a CAS on the
//!    waiter's `done` (0 → case + 1): exactly one case wins; others that find a sudog of
//!    an already-won select skip it.
//! 6. Pass 3: relock, unlink the sudogs of the other cases, unlock, and report.
//!
//! The macro builds one case object per arm on the caller's stack and calls
//! [`select_impl`]; the case objects stay put while their sudogs are queued.

use super::hchan::{RecvFail, SendFail};
pub use super::waitq::WakeToken;
use super::waitq::{Sudog, Waiter};
use super::{Receiver, RecvError, SendError, Sender};
use crate::sched::g::{WaitReason, G};
use std::cell::Cell;

/// One arm of a `select!`, type-erased. Implementation detail of the macro.
#[doc(hidden)]
pub trait Case {
    /// The channel's address (lock order and de-duplication).
    fn chan_addr(&self) -> usize;
    /// Locks the channel.
    fn lock(&self);
    /// Unlocks the channel.
    fn unlock(&self);
    /// With the lock held: completes the operation if it is ready. Returns the party to
    /// wake once unlocked (if any), or `None` if not ready.
    fn try_now(&mut self) -> Option<Option<WakeToken>>;
    /// With the lock held: enqueues this case's sudog for `waiter` (a `&Waiter`) as case
    /// `idx`.
    fn enqueue(&mut self, waiter: *const (), idx: usize);
    /// With the lock held: unlinks this case's sudog if it is still queued.
    fn dequeue(&mut self);
    /// After this case won while parked: collects the outcome.
    fn woken(&mut self);
}

/// A `recv(rx)` arm. Implementation detail of the macro.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    rx: &'a Receiver<T>,
    slot: Option<T>,
    sg: Option<Sudog<T>>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvCase<'a, T> {
    /// A case receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvCase {
            rx,
            slot: None,
            sg: None,
            result: None,
        }
    }

    /// The outcome (after `select_impl` picked this case).
    pub fn into_result(&mut self) -> Result<T, RecvError> {
        match self.result.take() {
            Some(r) => r,
            None => crate::throw!("RecvCase::into_result: the chosen case has no outcome"),
        }
    }
}

impl<T> Case for RecvCase<'_, T> {
    fn chan_addr(&self) -> usize {
        std::sync::Arc::as_ptr(self.rx.chan()) as usize
    }
    fn lock(&self) {
        self.rx.chan().lock.lock();
    }
    fn unlock(&self) {
        self.rx.chan().lock.unlock();
    }
    fn try_now(&mut self) -> Option<Option<WakeToken>> {
        // SAFETY: select_impl holds the lock.
        match unsafe { self.rx.chan().try_recv_locked() } {
            Ok((v, w)) => {
                self.result = Some(Ok(v));
                Some(w)
            }
            Err(RecvFail::Disconnected) => {
                self.result = Some(Err(RecvError));
                Some(None)
            }
            Err(RecvFail::Empty) => None,
        }
    }
    fn enqueue(&mut self, waiter: *const (), idx: usize) {
        let slot: *mut Option<T> = &mut self.slot;
        // SAFETY: select_impl passes its `&Waiter`, alive until it returns.
        let w = unsafe { &*waiter.cast::<Waiter>() };
        let sg = self.sg.insert(Sudog::new(w, slot, idx));
        // SAFETY: lock held; this case object does not move until select_impl returns,
        // and pass 3 unlinks the sudog before that.
        unsafe { self.rx.chan().inner().recvq.enqueue(sg) };
    }
    fn dequeue(&mut self) {
        if let Some(sg) = self.sg.as_mut() {
            // SAFETY: lock held; the sudog is in this channel's recvq if queued.
            unsafe { self.rx.chan().inner().recvq.remove(sg) };
        }
    }
    fn woken(&mut self) {
        let ok = self.sg.as_ref().is_some_and(|s| s.success);
        self.result = Some(match (ok, self.slot.take()) {
            (true, Some(v)) => Ok(v),
            _ => Err(RecvError),
        });
    }
}

/// A `send(tx, value)` arm. Implementation detail of the macro.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    tx: &'a Sender<T>,
    slot: Option<T>,
    sg: Option<Sudog<T>>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    /// A case sending `v` on `tx`.
    pub fn new(tx: &'a Sender<T>, v: T) -> Self {
        SendCase {
            tx,
            slot: Some(v),
            sg: None,
            result: None,
        }
    }

    /// The outcome (after `select_impl` picked this case).
    pub fn into_result(&mut self) -> Result<(), SendError<T>> {
        match self.result.take() {
            Some(r) => r,
            None => crate::throw!("SendCase::into_result: the chosen case has no outcome"),
        }
    }

    /// The value, if this case did not send it (another case won).
    pub(crate) fn take_value(&mut self) -> Option<T> {
        self.slot.take()
    }
}

impl<T> Case for SendCase<'_, T> {
    fn chan_addr(&self) -> usize {
        std::sync::Arc::as_ptr(self.tx.chan()) as usize
    }
    fn lock(&self) {
        self.tx.chan().lock.lock();
    }
    fn unlock(&self) {
        self.tx.chan().lock.unlock();
    }
    fn try_now(&mut self) -> Option<Option<WakeToken>> {
        let Some(v) = self.slot.take() else {
            crate::throw!("SendCase::try_now: the value to send is gone");
        };
        // SAFETY: select_impl holds the lock.
        match unsafe { self.tx.chan().try_send_locked(v) } {
            Ok(w) => {
                self.result = Some(Ok(()));
                Some(w)
            }
            Err(SendFail::Disconnected(v)) => {
                self.result = Some(Err(SendError(v)));
                Some(None)
            }
            Err(SendFail::Full(v)) => {
                self.slot = Some(v);
                None
            }
        }
    }
    fn enqueue(&mut self, waiter: *const (), idx: usize) {
        let slot: *mut Option<T> = &mut self.slot;
        // SAFETY: select_impl passes its `&Waiter`, alive until it returns.
        let w = unsafe { &*waiter.cast::<Waiter>() };
        let sg = self.sg.insert(Sudog::new(w, slot, idx));
        // SAFETY: as for RecvCase.
        unsafe { self.tx.chan().inner().sendq.enqueue(sg) };
    }
    fn dequeue(&mut self) {
        if let Some(sg) = self.sg.as_mut() {
            // SAFETY: lock held; the sudog is in this channel's sendq if queued.
            unsafe { self.tx.chan().inner().sendq.remove(sg) };
        }
    }
    fn woken(&mut self) {
        let ok = self.sg.as_ref().is_some_and(|s| s.success);
        self.result = Some(if ok {
            Ok(())
        } else {
            match self.slot.take() {
                Some(v) => Err(SendError(v)),
                None => crate::throw!("SendCase::woken: woken by close without its value"),
            }
        });
    }
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A pseudo-random number for the poll order (wyrand, per thread).
fn fastrand() -> u64 {
    RNG.with(|r| {
        let mut s = r.get();
        if s == 0 {
            s = (r as *const Cell<u64> as u64) ^ 0x9E37_79B9_7F4A_7C15;
        }
        s = s.wrapping_add(0xA076_1D64_78BD_642F);
        r.set(s);
        let t = (s as u128).wrapping_mul((s ^ 0xE703_7ED1_A0B4_28DB) as u128);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

fn lock_all(cases: &[&mut dyn Case], order: &[usize]) {
    let mut prev = 0;
    for &i in order {
        let a = cases[i].chan_addr();
        if a != prev {
            cases[i].lock();
            prev = a;
        }
    }
}

/// Unlocks every channel once, in reverse lock order. Used as `gopark`'s unlock
/// function, so the very last thing it does is the final unlock: after that the parked
/// goroutine may run, and `cases`/`order` live on its stack (Go: `selparkcommit`).
fn unlock_all(cases: &[&mut dyn Case], order: &[usize]) {
    let first = cases[order[0]].chan_addr();
    let mut prev = 0;
    for &i in order.iter().rev() {
        let a = cases[i].chan_addr();
        if a == first {
            break; // the lowest address is unlocked last, below
        }
        if a != prev {
            cases[i].unlock();
            prev = a;
        }
    }
    cases[order[0]].unlock();
}

/// Runs a select over `cases`. Returns the index of the case that completed, or `None`
/// if `block` is false and none was ready (the `default` arm). With no cases and
/// `block`, waits forever (Go's `select {}`). The steps are the module docs' (Go:
/// select.go `selectgo`).
#[doc(hidden)]
pub fn select_impl(cases: &mut [&mut dyn Case], block: bool) -> Option<usize> {
    let n = cases.len();
    if n == 0 {
        if !block {
            return None;
        }
        block_forever();
    }
    // the caller, read once (it stays the same goroutine across switches); a select is a
    // runtime entry, like a channel operation
    let me = crate::sched::m::getg();
    crate::sched::park::preempt_point_g(me);
    // Up to 8 cases keep their orders on the stack (no allocation per select).
    let mut poll_buf = [0usize; 8];
    let mut order_buf = [0usize; 8];
    let (mut poll_vec, mut order_vec);
    let (poll, order): (&mut [usize], &mut [usize]) = if n <= 8 {
        (&mut poll_buf[..n], &mut order_buf[..n])
    } else {
        poll_vec = vec![0; n];
        order_vec = vec![0; n];
        (&mut poll_vec[..], &mut order_vec[..])
    };
    shuffle_poll_order(poll);
    if block {
        if let Some(i) = fast_pass(cases, poll, me) {
            return Some(i);
        }
    }
    sort_lock_order(cases, poll, order);
    let (poll, order) = (&*poll, &*order);

    lock_all(cases, order);
    if let Some(i) = pass1(cases, poll, order, me) {
        return Some(i);
    }
    if !block {
        unlock_all(cases, order);
        return None;
    }
    Some(park_on_all(cases, order, me))
}

/// Step 1, poll order: a uniformly random permutation of the case indices (Fisher-Yates).
#[inline]
fn shuffle_poll_order(poll: &mut [usize]) {
    for (i, p) in poll.iter_mut().enumerate() {
        *p = i;
    }
    for i in (1..poll.len()).rev() {
        let j = (fastrand() % (i as u64 + 1)) as usize;
        poll.swap(i, j);
    }
}

/// The fast pass of a blocking select: completes the first case, in poll order, that is
/// ready when looked at under its own lock. Any such case is a valid choice (it was ready
/// at that instant), the random poll order keeps the choice uniform among cases that stay
/// ready, and it takes one lock instead of all of them. A select with `default` must not
/// use it: it may take `default` only if no case was ready at one instant, which needs
/// every lock at once (TestNonblockSelectRace).
#[inline]
fn fast_pass(cases: &mut [&mut dyn Case], poll: &[usize], me: Option<&'static G>) -> Option<usize> {
    for &i in poll {
        cases[i].lock();
        let r = cases[i].try_now();
        cases[i].unlock();
        if let Some(w) = r {
            if let Some(w) = w {
                w.wake_by(me); // try_now dequeued its sudog: we alone wake it
            }
            return Some(i);
        }
    }
    None
}

/// Step 1, lock order: the cases by channel address. It starts from the poll order and
/// the sort is stable, so arms on the same channel are queued in random order as well
/// (Go: select.go `selectgo` builds its lock order the same way); a sort from index order
/// would let a later partner always take the first such arm.
#[inline]
fn sort_lock_order(cases: &[&mut dyn Case], poll: &[usize], order: &mut [usize]) {
    order.copy_from_slice(poll);
    order.sort_by_key(|&i| cases[i].chan_addr());
}

/// Pass 1, with every channel locked: completes the first ready case in poll order,
/// unlocks and returns it; `None` (still locked) if no case is ready.
#[inline]
fn pass1(
    cases: &mut [&mut dyn Case],
    poll: &[usize],
    order: &[usize],
    me: Option<&'static G>,
) -> Option<usize> {
    for &i in poll {
        if let Some(w) = cases[i].try_now() {
            unlock_all(cases, order);
            if let Some(w) = w {
                w.wake_by(me); // try_now dequeued its sudog: we alone wake it
            }
            return Some(i);
        }
    }
    None
}

/// Passes 2 and 3, entered with every channel locked and no case ready: queues a sudog
/// per case, parks until a partner claims one, then unlinks the others. Returns the
/// winning case.
fn park_on_all(cases: &mut [&mut dyn Case], order: &[usize], me: Option<&'static G>) -> usize {
    // pass 2: enqueue on every channel and park; the unlock function releases them
    let waiter = Waiter::of(me, true);
    let wp: *const Waiter = &waiter;
    for &i in order {
        cases[i].enqueue(wp.cast(), i);
    }
    {
        let cases_ref: &[&mut dyn Case] = cases;
        waiter.block(WaitReason::Select, &mut || unlock_all(cases_ref, order));
    }
    // pass 3: the winner was unlinked by its waker; unlink the others
    // acquire; pairs with the winning waker's AcqRel CAS in WaitQ::dequeue
    let won = waiter.done.load(std::sync::atomic::Ordering::Acquire);
    if won == 0 {
        crate::throw!("selectgo: woken without a winning case");
    }
    lock_all(cases, order);
    for c in cases.iter_mut() {
        c.dequeue();
    }
    unlock_all(cases, order);
    cases[won - 1].woken();
    won - 1
}

/// `select {}`: park forever (Go: `block`, wait reason "select (no cases)").
fn block_forever() -> ! {
    loop {
        if crate::sched::m::getg().is_some() {
            crate::sched::park::gopark(None, WaitReason::SelectNoCases);
        } else {
            std::thread::park();
        }
    }
}

/// Waits on several channel operations and runs the arm of the one that completes
/// (Go's `select`), with crossbeam-channel's syntax:
///
/// ```
/// use gort::chan;
/// gort::run(|| {
///     let (tx1, rx1) = chan::bounded::<i32>(1);
///     let (tx2, rx2) = chan::bounded::<&str>(1);
///     tx2.send("two").unwrap();
///     let got = gort::select! {
///         recv(rx1) -> v => format!("one: {:?}", v),
///         recv(rx2) -> v => format!("two: {:?}", v),
///         send(tx1, 7) -> r => format!("sent: {:?}", r),
///     };
///     assert!(got == "two: Ok(\"two\")" || got == "sent: Ok(())");
///     let (_tx3, rx3) = chan::bounded::<u8>(0);
///     let idle = gort::select! {
///         recv(rx3) -> _ => false,
///         default => true,
///     };
///     assert!(idle); // nothing is ready on rx3
/// });
/// ```
///
/// Arms: `recv(rx) -> pattern => body` (the pattern binds `Result<T, RecvError>`),
/// `send(tx, value) -> pattern => body` (binds `Result<(), SendError<T>>`), and at most
/// one of `default => body`, taken at once if no operation is ready, or
/// `default(timeout) => body`, taken if none became ready within `timeout` (a receive on
/// [`after`](crate::chan::after)`(timeout)`). When several are ready, one is chosen
/// uniformly at random. The same channel may appear in several arms. `select! {}`
/// blocks forever.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(@cases [] @default [] $($tokens)*)
    };
}

/// Parses `select!` arms. Implementation detail.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // recv arms
    (@cases [$($c:tt)*] @default $d:tt recv($r:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (recv ($r) ($p) $body)] @default $d $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt recv($r:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (recv ($r) ($p) $body)] @default $d $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt recv($r:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (recv ($r) ($p) { $body })] @default $d $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt recv($r:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@cases [$($c)* (recv ($r) ($p) { $body })] @default $d)
    };
    // send arms
    (@cases [$($c:tt)*] @default $d:tt send($s:expr, $v:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (send ($s, $v) ($p) $body)] @default $d $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt send($s:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (send ($s, $v) ($p) $body)] @default $d $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt send($s:expr, $v:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (send ($s, $v) ($p) { $body })] @default $d $($rest)*)
    };
    (@cases [$($c:tt)*] @default $d:tt send($s:expr, $v:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@cases [$($c)* (send ($s, $v) ($p) { $body })] @default $d)
    };
    // default(timeout): a receive on `after(timeout)`, and the select blocks
    (@cases [$($c:tt)*] @default [] default($t:expr) => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (recv ($crate::chan::after($t)) (_) $body)] @default [@timeout] $($rest)*)
    };
    (@cases [$($c:tt)*] @default [] default($t:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (recv ($crate::chan::after($t)) (_) $body)] @default [@timeout] $($rest)*)
    };
    (@cases [$($c:tt)*] @default [] default($t:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($c)* (recv ($crate::chan::after($t)) (_) { $body })] @default [@timeout] $($rest)*)
    };
    (@cases [$($c:tt)*] @default [] default($t:expr) => $body:expr) => {
        $crate::__select_parse!(@cases [$($c)* (recv ($crate::chan::after($t)) (_) { $body })] @default [@timeout])
    };
    // default
    (@cases $c:tt @default [] default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default [$body] $($rest)*)
    };
    (@cases $c:tt @default [] default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default [$body] $($rest)*)
    };
    (@cases $c:tt @default [] default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default [{ $body }] $($rest)*)
    };
    (@cases $c:tt @default [] default => $body:expr) => {
        $crate::__select_parse!(@cases $c @default [{ $body }])
    };
    (@cases $c:tt @default [$($d:tt)+] default $($rest:tt)*) => {
        compile_error!("select!: more than one `default` arm")
    };
    // done
    (@cases [$($c:tt)*] @default $d:tt) => {
        $crate::__select_gen!(@cases [$($c)*] @default $d @bound [])
    };
    (@cases $c:tt @default $d:tt $($rest:tt)+) => {
        compile_error!(concat!("select!: expected `recv(rx) -> v => ...`, `send(tx, x) -> r => ...` or `default => ...`, found: ", stringify!($($rest)+)))
    };
}

/// Generates a `select!`: binds one case object per arm (each a distinct hygienic
/// `__case`), runs the select, then the chosen arm. Implementation detail.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_gen {
    // `match &expr` keeps a temporary channel (`recv(after(d))`) alive for the whole
    // select; deref coercion accepts both `rx` and `&rx`.
    (@cases [(recv ($r:expr) $p:tt $body:block) $($rest:tt)*] @default $d:tt @bound [$($b:tt)*]) => {
        match &$r {
            __r => {
                let mut __case = $crate::chan::select::RecvCase::new(__r);
                $crate::__select_gen!(@cases [$($rest)*] @default $d @bound [$($b)* (__case $p $body)])
            }
        }
    };
    (@cases [(send ($s:expr, $v:expr) $p:tt $body:block) $($rest:tt)*] @default $d:tt @bound [$($b:tt)*]) => {
        match &$s {
            __s => {
                let mut __case = $crate::chan::select::SendCase::new(__s, $v);
                $crate::__select_gen!(@cases [$($rest)*] @default $d @bound [$($b)* (__case $p $body)])
            }
        }
    };
    (@cases [] @default [$($d:tt)*] @bound [$(($case:ident ($p:pat) $body:block))*]) => {{
        let __sel = {
            let mut __cases: [&mut dyn $crate::chan::select::Case; 0 $(+ { let _ = stringify!($case); 1 })*] =
                [$(&mut $case),*];
            $crate::chan::select::select_impl(&mut __cases, $crate::__select_default!(@block [$($d)*]))
        };
        $crate::__select_dispatch!(__sel, 0usize, [$(($case ($p) $body))*], [$($d)*])
    }};
}

/// Runs the chosen arm: an `if`/`else` chain (no labeled block, so `break` and
/// `continue` in an arm refer to the caller's loop). Implementation detail.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_dispatch {
    ($sel:ident, $k:expr, [($case:ident ($p:pat) $body:block) $($rest:tt)*], $d:tt) => {
        if $sel == Some($k) {
            let $p = $case.into_result();
            $body
        } else {
            $crate::__select_dispatch!($sel, $k + 1, [$($rest)*], $d)
        }
    };
    ($sel:ident, $k:expr, [], [$($d:tt)*]) => {
        $crate::__select_default!(@body [$($d)*])
    };
}

/// The `default` arm of a `select!`. Implementation detail.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_default {
    (@block []) => {
        true
    };
    (@block [@timeout]) => {
        true
    };
    (@block [$body:block]) => {
        false
    };
    (@body []) => {
        $crate::throw!("select!: a blocking select returned without a case")
    };
    (@body [@timeout]) => {
        $crate::throw!("select!: a blocking select returned without a case")
    };
    (@body [$body:block]) => {
        $body
    };
}
