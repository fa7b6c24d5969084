//! The per-P local run queue: a fixed ring plus the `runnext` slot
//! (Go: proc.go `runqput`, `runqputslow`, `runqget`, `runqgrab`, `runqsteal`, `runqempty`).
//!
//! # Protocol
//!
//! The ring is single-producer, multi-consumer:
//!
//! * only the owner (the M holding the P) writes slots and advances `tail`;
//! * the owner and thieves consume from `head` with a CAS.
//!
//! A slot is written before `tail` is published with a release store; a consumer reads
//! `tail` with acquire, copies the slots it wants, then claims them by CAS-ing `head`.
//! A thief's copy may read a slot the owner is concurrently refilling (after a wrap),
//! but then its CAS on `head` fails and the copy is thrown away, so slots are atomics
//! (relaxed) to keep that speculative read free of data races.
//!
//! `runnext` holds the G that should run next and inherit the current time slice. Only
//! the owner stores a non-null value into it; anyone may CAS it to null to take it.
//!
//! Under loom the ring shrinks to 4 slots (as tokio does) so the overflow path
//! (`put_slow`) and wrap-around are part of every model.

use crate::loom::{AtomicPtr, AtomicU32};
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

/// Ring capacity (Go: `len(p.runq)` = 256).
#[cfg(not(loom))]
pub(crate) const RUNQ_CAP: u32 = 256;
/// Ring capacity under loom: small, so the overflow path is modelled.
#[cfg(loom)]
pub(crate) const RUNQ_CAP: u32 = 4;

/// How many Gs `put_slow` moves to the global queue: half the ring, plus the new G.
pub(crate) const RUNQ_HALF: usize = (RUNQ_CAP / 2) as usize;

/// A P's local run queue of `*mut T` (T is `spawn::Task` in the runtime, whose pointers are
/// `Gp`s: a G or a spawn record; tests use other types).
///
/// Each field has its own cache lines: spinning Ms poll `head` and `tail` (and read `buf`)
/// of every P, while the owner swaps `runnext` on every channel hand-off.
#[repr(C)]
pub(crate) struct LocalQueue<T> {
    /// Next slot to consume. Advanced by CAS by the owner (`get`) and thieves (`grab`).
    head: crossbeam_utils::CachePadded<AtomicU32>,
    /// Next slot to fill. Written only by the owner, with release.
    tail: crossbeam_utils::CachePadded<AtomicU32>,
    /// The G to run next. Non-null stores by the owner only; anyone may CAS it to null.
    runnext: crossbeam_utils::CachePadded<AtomicPtr<T>>,
    /// The ring. Slot `i % RUNQ_CAP` for `head <= i < tail` holds a queued G.
    buf: crossbeam_utils::CachePadded<Box<[AtomicPtr<T>]>>,
}

// SAFETY: the queue holds raw pointers it never dereferences; transferring and sharing
// them between threads is the point. Ownership of the pointees moves with the pointers
// under the protocol in the module docs.
unsafe impl<T> Send for LocalQueue<T> {}
// SAFETY: as above; all shared mutation goes through atomics.
unsafe impl<T> Sync for LocalQueue<T> {}

impl<T> LocalQueue<T> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        LocalQueue {
            head: crossbeam_utils::CachePadded::new(AtomicU32::new(0)),
            tail: crossbeam_utils::CachePadded::new(AtomicU32::new(0)),
            runnext: crossbeam_utils::CachePadded::new(AtomicPtr::new(ptr::null_mut())),
            buf: crossbeam_utils::CachePadded::new(
                (0..RUNQ_CAP)
                    .map(|_| AtomicPtr::new(ptr::null_mut()))
                    .collect(),
            ),
        }
    }

    fn slot(&self, i: u32) -> &AtomicPtr<T> {
        &self.buf[(i % RUNQ_CAP) as usize]
    }

    /// Puts `g` on the queue (owner only). With `next`, `g` goes into `runnext` and the
    /// G it displaces goes to the tail. When the ring is full, half of it plus the new G
    /// are handed to `overflow` (which puts them on the global queue), oldest first.
    /// Returns whether that happened.
    ///
    /// Go: proc.go `runqput`.
    pub(crate) fn put(
        &self,
        mut g: *mut T,
        next: bool,
        overflow: &mut dyn FnMut(&[*mut T]),
    ) -> bool {
        debug_assert!(!g.is_null());
        if next {
            // seq_cst: release publishes g to whoever takes it from runnext and orders our
            // earlier tail stores before it for `is_empty`'s re-read of tail; seq_cst makes
            // it the StoreLoad barrier between publishing work and wakep's reads (see
            // `idle::wakep_after_seqcst_put`)
            let old = self.runnext.swap(g, SeqCst);
            if old.is_null() {
                return false;
            }
            g = old; // kick the old runnext out to the regular queue
        }
        loop {
            let h = self.head.load(Acquire); // acquire; pairs with the CAS release in get/grab: slots before h are free
            let t = self.tail.load(Relaxed); // only we write tail
            if t.wrapping_sub(h) < RUNQ_CAP {
                self.slot(t).store(g, Relaxed);
                self.tail.store(t.wrapping_add(1), Release); // release; pairs with the acquire of tail in grab
                return false;
            }
            if self.put_slow(g, h, t, overflow) {
                return true;
            }
            // a consumer took some Gs meanwhile: the fast path will work now
        }
    }

    /// `put(g, true, overflow)` that also says whether a G was displaced from `runnext`
    /// into the ring: `(spilled, displaced)`.
    pub(crate) fn put_next(&self, g: *mut T, overflow: &mut dyn FnMut(&[*mut T])) -> (bool, bool) {
        debug_assert!(!g.is_null());
        // seq_cst, as in `put`
        let old = self.runnext.swap(g, SeqCst);
        if old.is_null() {
            return (false, false);
        }
        (self.put(old, false, overflow), true)
    }

    /// Whether `runnext` holds a G (a racy snapshot for other threads).
    pub(crate) fn has_runnext(&self) -> bool {
        !self.runnext.load(Relaxed).is_null()
    }

    /// Whether the ring (not counting `runnext`) looks empty (a racy snapshot).
    pub(crate) fn ring_is_empty(&self) -> bool {
        let h = self.head.load(Acquire);
        self.tail.load(Acquire) == h
    }

    /// Moves half the ring plus `g` to `overflow`. Fails if a consumer raced us.
    ///
    /// Go: proc.go `runqputslow`.
    fn put_slow(&self, g: *mut T, h: u32, t: u32, overflow: &mut dyn FnMut(&[*mut T])) -> bool {
        let n = RUNQ_HALF as u32;
        if t.wrapping_sub(h) != RUNQ_CAP {
            crate::throw!("runqputslow: queue is not full");
        }
        let mut batch = [ptr::null_mut(); RUNQ_HALF + 1];
        for (i, b) in batch.iter_mut().take(RUNQ_HALF).enumerate() {
            *b = self.slot(h.wrapping_add(i as u32)).load(Relaxed);
        }
        if self
            .head
            .compare_exchange(h, h.wrapping_add(n), Release, Relaxed) // release: our slot reads happen before the slots are reusable
            .is_err()
        {
            return false;
        }
        batch[RUNQ_HALF] = g;
        overflow(&batch);
        true
    }

    /// Takes the `runnext` G, if any (owner only).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn take_runnext(&self) -> Option<*mut T> {
        let next = self.runnext.load(Relaxed);
        if !next.is_null()
            && self
                .runnext
                .compare_exchange(next, ptr::null_mut(), AcqRel, Relaxed) // as in get
                .is_ok()
        {
            return Some(next);
        }
        None
    }

    /// Takes the next G (owner only). The flag says whether it came from `runnext` and so
    /// inherits the current time slice.
    ///
    /// Go: proc.go `runqget`.
    pub(crate) fn get(&self) -> Option<(*mut T, bool)> {
        let next = self.runnext.load(Relaxed);
        if !next.is_null()
            && self
                .runnext
                .compare_exchange(next, ptr::null_mut(), AcqRel, Relaxed) // acq_rel; release orders our tail stores before the null `is_empty` may read
                .is_ok()
        {
            return Some((next, true));
        }
        loop {
            let h = self.head.load(Acquire); // acquire; pairs with the release CAS of other consumers
            let t = self.tail.load(Relaxed); // only we write tail
            if t == h {
                return None;
            }
            let g = self.slot(h).load(Relaxed);
            if self
                .head
                .compare_exchange(h, h.wrapping_add(1), Release, Relaxed) // release; the slot read is done before it can be reused
                .is_ok()
            {
                return Some((g, false));
            }
        }
    }

    /// Takes everything queued, for a party that does not own the queue (sysmon rescuing
    /// the queue of a P above GOMAXPROCS whose M is busy): `runnext` first, then the ring
    /// in order. Safe against the owner's `put` and other consumers, like a steal.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn take_all(&self, out: &mut Vec<*mut T>) {
        if let Some(next) = self.take_runnext() {
            out.push(next);
        }
        loop {
            let h = self.head.load(Acquire); // acquire; pairs with consumers' release CAS
            let t = self.tail.load(Acquire); // acquire; pairs with the owner's release store in put
            let n = t.wrapping_sub(h);
            if n == 0 {
                return;
            }
            if n > RUNQ_CAP {
                continue; // read an inconsistent head/tail pair
            }
            let start = out.len();
            for i in 0..n {
                out.push(self.slot(h.wrapping_add(i)).load(Relaxed));
            }
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), Release, Relaxed) // release; our slot reads happen before reuse
                .is_ok()
            {
                return;
            }
            out.truncate(start); // a consumer raced us: read again
        }
    }

    /// Thief side: copies about half of this queue into `dst`'s ring starting at index
    /// `dst_tail` and claims them; returns how many. With `steal_runnext`, an otherwise
    /// empty queue gives up its `runnext` (after `before_runnext`, which lets a running
    /// owner schedule it first: Go sleeps 3 µs there).
    ///
    /// Go: proc.go `runqgrab`.
    fn grab(
        &self,
        dst: &LocalQueue<T>,
        dst_tail: u32,
        steal_runnext: bool,
        before_runnext: &dyn Fn(),
    ) -> u32 {
        loop {
            let h = self.head.load(Acquire); // acquire; pairs with consumers' release CAS
            let t = self.tail.load(Acquire); // acquire; pairs with the owner's release store in put
            let n = t.wrapping_sub(h);
            let n = n - n / 2;
            if n == 0 {
                if steal_runnext {
                    let next = self.runnext.load(Acquire);
                    if !next.is_null() {
                        before_runnext();
                        if self
                            .runnext
                            .compare_exchange(next, ptr::null_mut(), AcqRel, Relaxed) // acq_rel; acquire pairs with the owner's release swap
                            .is_err()
                        {
                            continue;
                        }
                        dst.slot(dst_tail).store(next, Relaxed);
                        return 1;
                    }
                }
                return 0;
            }
            if n > RUNQ_CAP / 2 {
                continue; // read an inconsistent head/tail pair
            }
            for i in 0..n {
                let g = self.slot(h.wrapping_add(i)).load(Relaxed);
                dst.slot(dst_tail.wrapping_add(i)).store(g, Relaxed);
            }
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), Release, Relaxed) // release; our slot reads happen before reuse
                .is_ok()
            {
                return n;
            }
        }
    }

    /// Steals about half of `victim`'s Gs into this queue (the caller owns `self`) and
    /// returns one of them to run.
    ///
    /// Go: proc.go `runqsteal`.
    pub(crate) fn steal_from(
        &self,
        victim: &LocalQueue<T>,
        steal_runnext: bool,
        before_runnext: &dyn Fn(),
    ) -> Option<*mut T> {
        let t = self.tail.load(Relaxed); // only we write our tail
        let mut n = victim.grab(self, t, steal_runnext, before_runnext);
        if n == 0 {
            return None;
        }
        n -= 1;
        let g = self.slot(t.wrapping_add(n)).load(Relaxed);
        if n == 0 {
            return Some(g);
        }
        let h = self.head.load(Acquire);
        if t.wrapping_sub(h).wrapping_add(n) >= RUNQ_CAP {
            crate::throw!("runqsteal: runq overflow");
        }
        self.tail.store(t.wrapping_add(n), Release); // release; publishes the copied slots to our consumers
        Some(g)
    }

    /// Whether the queue holds no G, runnext included. Never spuriously true while Gs
    /// move between the ring and runnext.
    ///
    /// Go: proc.go `runqempty`.
    pub(crate) fn is_empty(&self) -> bool {
        // Read head, tail and runnext, then tail again: if tail did not move, the owner
        // did not kick runnext into the ring between our reads of tail and runnext.
        // Reading a null runnext written by a taker's release CAS makes every tail store
        // the owner made before it visible to the re-read (the loom model
        // `empty_check_never_spurious` found the race when those CASes were acquire-only).
        loop {
            let h = self.head.load(Acquire);
            let t = self.tail.load(Acquire);
            let next = self.runnext.load(Acquire);
            if self.tail.load(Acquire) == t {
                return h == t && next.is_null();
            }
        }
    }

    /// Gs in the ring (runnext not counted, as in Go's schedtrace).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn len(&self) -> u32 {
        let h = self.head.load(Acquire);
        let t = self.tail.load(Acquire);
        t.wrapping_sub(h).min(RUNQ_CAP)
    }

    /// Takes everything (owner only; used when a P is destroyed): runnext first, then
    /// the ring in order.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn drain(&self, out: &mut Vec<*mut T>) {
        let next = self.runnext.swap(ptr::null_mut(), AcqRel);
        if !next.is_null() {
            out.push(next);
        }
        while let Some((g, _)) = self.get() {
            out.push(g);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Ported from Go's proc_test.go: TestSchedLocalQueue, TestSchedLocalQueueSteal,
    //! TestSchedLocalQueueEmpty (the last one lives in tests/ as it needs the runtime's
    //! threads; here it is run against the bare queue).
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[allow(clippy::vec_box)] // each item needs its own stable address, like a G
    fn items(n: usize) -> Vec<Box<usize>> {
        (0..n).map(Box::new).collect()
    }

    fn no_overflow(_: &[*mut usize]) {
        panic!("unexpected overflow");
    }

    /// Go: TestSchedLocalQueue.
    #[test]
    fn test_sched_local_queue() {
        let q = LocalQueue::<usize>::new();
        let mut gs = items(RUNQ_CAP as usize);
        for i in 0..RUNQ_CAP as usize {
            assert!(q.get().is_none(), "runq is not empty initially");
            for g in gs.iter_mut().take(i) {
                q.put(&mut **g, false, &mut no_overflow);
            }
            for g in gs.iter_mut().take(i) {
                let (got, inh) = q.get().expect("runq is empty");
                assert_eq!(got, &mut **g as *mut usize, "bad element at iter {i}");
                assert!(!inh);
            }
            assert!(q.get().is_none(), "runq is not empty afterwards");
            assert!(q.is_empty());
        }
    }

    /// Go: TestSchedLocalQueueSteal.
    #[test]
    fn test_sched_local_queue_steal() {
        let p1 = LocalQueue::<usize>::new();
        let p2 = LocalQueue::<usize>::new();
        let mut gs = items(RUNQ_CAP as usize);
        for i in 0..RUNQ_CAP as usize {
            for g in gs.iter_mut().take(i) {
                **g = 0;
                p1.put(&mut **g, false, &mut no_overflow);
            }
            let gp = p2.steal_from(&p1, true, &|| {});
            let mut s = 0;
            if let Some(gp) = gp {
                s += 1;
                // SAFETY: gp points into `gs`, alive for the test.
                unsafe { *gp += 1 };
            }
            while let Some((gp, _)) = p2.get() {
                s += 1;
                // SAFETY: as above.
                unsafe { *gp += 1 };
            }
            while let Some((gp, _)) = p1.get() {
                // SAFETY: as above.
                unsafe { *gp += 1 };
            }
            for (j, g) in gs.iter().take(i).enumerate() {
                assert_eq!(**g, 1, "bad element {j}({}) at iter {i}", **g);
            }
            assert!(
                s == i / 2 || s == i / 2 + 1,
                "bad steal {s}, want {} or {}, iter {i}",
                i / 2,
                i / 2 + 1
            );
        }
    }

    #[test]
    fn runnext_inherits_and_displaces() {
        let q = LocalQueue::<usize>::new();
        let mut a = Box::new(1usize);
        let mut b = Box::new(2usize);
        q.put(&mut *a, true, &mut no_overflow);
        q.put(&mut *b, true, &mut no_overflow);
        // b is runnext, a was kicked to the ring
        assert_eq!(q.get(), Some((&mut *b as *mut usize, true)));
        assert_eq!(q.get(), Some((&mut *a as *mut usize, false)));
        assert!(q.is_empty());
    }

    #[test]
    fn overflow_moves_half_plus_one_oldest_first() {
        let q = LocalQueue::<usize>::new();
        let mut gs = items(RUNQ_CAP as usize + 1);
        let mut spilled: Vec<*mut usize> = Vec::new();
        let ptrs: Vec<*mut usize> = gs.iter_mut().map(|g| &mut **g as *mut usize).collect();
        for &p in &ptrs {
            q.put(p, false, &mut |b: &[*mut usize]| {
                spilled.extend_from_slice(b)
            });
        }
        assert_eq!(spilled.len(), RUNQ_HALF + 1);
        assert_eq!(&spilled[..RUNQ_HALF], &ptrs[..RUNQ_HALF]);
        assert_eq!(spilled[RUNQ_HALF], ptrs[RUNQ_CAP as usize]);
        assert_eq!(q.len() as usize, RUNQ_CAP as usize - RUNQ_HALF);
    }

    /// Go: TestSchedLocalQueueEmpty, on the bare queue: in each round the owner puts g0,
    /// then, while another thread checks `is_empty`, puts g1 and takes one G back; one G
    /// is queued throughout, so `is_empty` must never be true.
    #[test]
    fn test_sched_local_queue_empty() {
        let q = Arc::new(LocalQueue::<usize>::new());
        let ready = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let bad = Arc::new(AtomicUsize::new(0));
        const ROUNDS: usize = 100_000;
        let mut gs = items(2);
        let g0 = &mut *gs[0] as *mut usize;
        let g1 = &mut *gs[1] as *mut usize;
        let checker = {
            let (q, ready, done, bad) = (q.clone(), ready.clone(), done.clone(), bad.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    ready.fetch_add(1, Ordering::SeqCst);
                    while ready.load(Ordering::SeqCst) < 2 * (round + 1) {
                        std::hint::spin_loop();
                    }
                    if q.is_empty() {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                    done.store(round + 1, Ordering::SeqCst);
                }
            })
        };
        for i in 0..ROUNDS {
            let (next0, next1) = (i & 1 == 0, i & 2 == 0);
            q.put(g0, next0, &mut no_overflow);
            ready.fetch_add(1, Ordering::SeqCst);
            while ready.load(Ordering::SeqCst) < 2 * (i + 1) {
                std::hint::spin_loop();
            }
            q.put(g1, next1, &mut no_overflow);
            q.get().unwrap();
            while done.load(Ordering::SeqCst) < i + 1 {
                std::hint::spin_loop();
            }
            q.get().unwrap();
            assert!(q.is_empty());
        }
        checker.join().unwrap();
        assert_eq!(
            bad.load(Ordering::Relaxed),
            0,
            "runqempty was spuriously true"
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Loom models of the run queue with the ring shrunk to 4 slots.
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn leak(n: usize) -> Vec<*mut usize> {
        (0..n).map(|i| Box::into_raw(Box::new(i))).collect()
    }

    /// The owner puts and gets while a thief steals (runnext included): every item is
    /// taken exactly once, overflow included.
    #[test]
    fn put_get_steal() {
        loom::model(|| {
            let q = Arc::new(LocalQueue::<usize>::new());
            let thief_q = Arc::new(LocalQueue::<usize>::new());
            let items = leak(5);
            let addr: Vec<usize> = items.iter().map(|&p| p as usize).collect();
            let th = {
                let (q, tq) = (q.clone(), thief_q.clone());
                thread::spawn(move || {
                    let mut got = Vec::new();
                    if let Some(g) = tq.steal_from(&q, true, &|| {}) {
                        got.push(g as usize);
                    }
                    while let Some((g, _)) = tq.get() {
                        got.push(g as usize);
                    }
                    got
                })
            };
            let mut spilled = Vec::new();
            let mut got = Vec::new();
            for (i, &p) in items.iter().enumerate() {
                q.put(p, i % 2 == 0, &mut |b: &[*mut usize]| {
                    spilled.extend(b.iter().map(|&x| x as usize))
                });
                if i == 2 {
                    if let Some((g, _)) = q.get() {
                        got.push(g as usize);
                    }
                }
            }
            while let Some((g, _)) = q.get() {
                got.push(g as usize);
            }
            got.extend(th.join().unwrap());
            got.extend(spilled);
            got.sort_unstable();
            let mut want = addr.clone();
            want.sort_unstable();
            assert_eq!(got, want, "lost or duplicated G");
            for p in items {
                // SAFETY: leaked above, no longer referenced by the queues.
                drop(unsafe { Box::from_raw(p) });
            }
        });
    }

    /// Two thieves race for the same runnext: exactly one gets it.
    #[test]
    fn runnext_steal_race() {
        loom::model(|| {
            let q = Arc::new(LocalQueue::<usize>::new());
            let items = leak(1);
            q.put(items[0], true, &mut |_: &[*mut usize]| unreachable!());
            let mk = |q: Arc<LocalQueue<usize>>| {
                thread::spawn(move || {
                    let mine = LocalQueue::<usize>::new();
                    mine.steal_from(&q, true, &|| {}).map(|g| g as usize)
                })
            };
            let a = mk(q.clone());
            let b = mk(q.clone());
            let owner = q.get().map(|(g, _)| g as usize);
            let got: Vec<usize> = [a.join().unwrap(), b.join().unwrap(), owner]
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(got, vec![items[0] as usize]);
            // SAFETY: leaked above, taken exactly once.
            drop(unsafe { Box::from_raw(items[0]) });
        });
    }

    /// `is_empty` is never true while the owner keeps one G queued, moving it between
    /// runnext and the ring (TestSchedLocalQueueEmpty as a model).
    #[test]
    fn empty_check_never_spurious() {
        loom::model(|| {
            let q = Arc::new(LocalQueue::<usize>::new());
            let items = leak(2);
            q.put(items[0], true, &mut |_: &[*mut usize]| unreachable!());
            let checker = {
                let q = q.clone();
                thread::spawn(move || assert!(!q.is_empty()))
            };
            q.put(items[1], true, &mut |_: &[*mut usize]| unreachable!()); // kicks items[0] to the ring
            let (x, _) = q.get().unwrap();
            assert_eq!(x, items[1]);
            checker.join().unwrap();
            for p in items {
                // SAFETY: leaked above.
                drop(unsafe { Box::from_raw(p) });
            }
        });
    }
}
