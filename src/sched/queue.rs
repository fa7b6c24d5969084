//! Every run-queue operation, local and global (Go: proc.go `runqput`, `runqputslow`,
//! `runqget`, `globrunqput`, `globrunqputbatch`, `globrunqputhead`, `globrunqget`). The
//! local queue's lock-free ring and its stealing are `runq.rs` (a data structure with
//! loom models); the global queue is a `VecDeque` behind `sched.lock` (`schedt.rs`).
//! `docs/design/scheduler.md`, "Run queues".

use super::p::P;
use super::schedt::{Locked, SCHED};
use super::spawn::{Gp, Task};
use std::sync::atomic::Ordering;

/// Puts `g` on `p`'s local queue (`next`: in `runnext`), spilling half the queue to the
/// global queue when full (Go: `runqput` + `runqputslow`); returns whether it spilled.
/// Caller owns `p`.
pub(crate) fn runqput(p: &'static P, g: Gp, next: bool) -> bool {
    p.runq.put(g.raw(), next, &mut |batch| {
        SCHED.lock().globrunqputbatch(batch)
    })
}

/// `runqput(p, g, true)` that also says whether a G was displaced from `runnext` into the
/// ring: `(spilled, displaced)`. Caller owns `p`.
pub(crate) fn runqput_next(p: &'static P, g: Gp) -> (bool, bool) {
    p.runq
        .put_next(g.raw(), &mut |batch| SCHED.lock().globrunqputbatch(batch))
}

/// Takes the next entry of `p` (Go: `runqget`). Caller owns `p`.
pub(crate) fn runqget(p: &'static P) -> Option<(Gp, bool)> {
    // SAFETY: the queue only holds pointers made by `Gp::raw`.
    p.runq
        .get()
        .map(|(g, inh)| (unsafe { Gp::from_raw(g) }, inh))
}

/// Takes entries from the global queue for `p` (Go: `globrunqget`), putting extra ones on
/// the local queue.
pub(crate) fn globrunqget(p: &'static P, max: usize) -> Option<Gp> {
    if SCHED.runqsize.load(Ordering::SeqCst) == 0 {
        return None;
    }
    let mut extra = Vec::new();
    let g = SCHED.lock().globrunqget(max, &mut extra)?;
    for g2 in extra {
        let _ = runqput(p, g2, false);
    }
    Some(g)
}

impl Locked {
    /// Appends to the global run queue (Go: `globrunqput`).
    pub(crate) fn globrunqput(&mut self, g: Gp) {
        self.runq.push_back(g);
        SCHED
            .runqsize
            .store(self.runq.len() as u32, Ordering::SeqCst); // seq_cst; read by spinners' re-check
    }

    /// Appends a batch taken off a local run queue to the global run queue (Go:
    /// `globrunqputbatch`).
    pub(crate) fn globrunqputbatch(&mut self, gs: &[*mut Task]) {
        // SAFETY: run queues only ever hold pointers made by `Gp::raw`.
        self.runq
            .extend(gs.iter().map(|&g| unsafe { Gp::from_raw(g) }));
        SCHED
            .runqsize
            .store(self.runq.len() as u32, Ordering::SeqCst);
    }

    /// Puts a G at the head of the global run queue (Go: `globrunqputhead`).
    pub(crate) fn globrunqputhead(&mut self, g: Gp) {
        self.runq.push_front(g);
        SCHED
            .runqsize
            .store(self.runq.len() as u32, Ordering::SeqCst);
    }

    /// Takes up to `max` (0 = no limit) Gs from the global queue for a P: Go's
    /// `globrunqget` sizing, `min(len, len/gomaxprocs + 1, max, half a local queue)`.
    /// The first is returned to run; the rest are pushed into `out` for the caller to
    /// put on its local queue after dropping the lock.
    pub(crate) fn globrunqget(&mut self, max: usize, out: &mut Vec<Gp>) -> Option<Gp> {
        let len = self.runq.len();
        if len == 0 {
            return None;
        }
        let procs = SCHED.procs().max(1);
        let mut n = len.min(len / procs + 1);
        if max > 0 {
            n = n.min(max);
        }
        n = n.min(super::runq::RUNQ_HALF);
        let g = self.runq.pop_front();
        out.extend(self.runq.drain(..n - 1));
        SCHED
            .runqsize
            .store(self.runq.len() as u32, Ordering::SeqCst);
        g
    }
}
