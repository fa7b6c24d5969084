//! The P: the right to run goroutines, with its local run queue and caches
//! (Go: runtime2.go `type p`).
//!
//! Ps are leaked, published in `allp`, and never freed; a P beyond the current
//! GOMAXPROCS is kept for reuse (Go's `_Pdead`).

use super::g::G;
use super::m::M;
use super::runq::LocalQueue;
use std::cell::{Cell, UnsafeCell};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// On the idle list, empty run queue (Go `_Pidle`).
pub(crate) const P_IDLE: u32 = 0;
/// Owned by an M; only that M changes it (Go `_Prunning`).
pub(crate) const P_RUNNING: u32 = 1;
/// Its M is in a blocking call; sysmon may retake it (Go `_Psyscall`).
pub(crate) const P_SYSCALL: u32 = 2;
/// Beyond GOMAXPROCS; kept for reuse (Go `_Pdead`).
pub(crate) const P_DEAD: u32 = 4;

/// A processor.
///
/// Aligned to 128 bytes (two cache lines, as crossbeam's `CachePadded` on x86-64) so that
/// two of them, written on every switch by different threads, never share a line.
///
/// `repr(C)` keeps apart what other threads read while the owner runs (`status`, `m`,
/// `timers`, and the queue's `head`/`tail`: spinning Ms poll them) from what the owner
/// writes on every switch (`runnext`, `schedtick`, `parks`...): sharing a line, each poll
/// would cost the owner a cache miss on its next write (pingpong at 2 Ps: see
/// docs/design/scheduler.md).
#[repr(C, align(128))]
pub(crate) struct P {
    // --- read by other Ms; written rarely ---
    /// Index in `allp`. Immutable.
    pub(crate) id: u32,
    /// `_P*` status. Set by its owner M, or under `sched.lock` while idle.
    pub(crate) status: AtomicU32,
    /// The M holding this P, or null (Go: `p.m`). Written by that M.
    pub(crate) m: AtomicPtr<M>,
    /// This P's timers (Go: `p.timers`, `timersLock`, `timer0When`); own lock.
    pub(crate) timers: crate::time::heap::Timers,
    /// Local run queue and `runnext` (each on its own lines). Protocol in `runq.rs`.
    pub(crate) runq: LocalQueue<super::spawn::Task>,
    // --- written by the owner M all the time ---
    /// Incremented when `execute` starts a new time slice (Go: `p.schedtick`). Written by
    /// the owner M; read by others (sysmon, stats).
    pub(crate) schedtick: AtomicU32,
    /// Incremented by `entersyscall` (Go: `p.syscalltick`). Owner-written; read by sysmon.
    pub(crate) syscalltick: AtomicU32,
    /// Goroutines created on this P, and goroutines that exited on it; `num_goroutine`
    /// sums the differences. Written by the owner M only (with [`bump`]); read by anyone.
    pub(crate) created: AtomicU64,
    pub(crate) exited: AtomicU64,
    /// Counters for stats, owner-written: parks on this P, successful steals by it.
    pub(crate) parks: AtomicU64,
    pub(crate) steals: AtomicU64,
    /// Goroutines queued as spawn records by this P, and records bound to a G on this P
    /// (`spawn.rs`); the sums over all Ps say how many wait unstarted. Owner-written.
    pub(crate) records_queued: AtomicU64,
    pub(crate) records_started: AtomicU64,
    /// Dead Gs with stacks, for reuse (Go: `p.gFree`). Owner M only.
    gfree: UnsafeCell<Vec<&'static G>>,
    /// Free spawn records (`spawn.rs`). Owner M only.
    spawnfree: UnsafeCell<Vec<&'static super::spawn::Spawn>>,
    /// Set when a time slice was preempted: the next scheduling round looks at the global
    /// queue first (where the preempted goroutine went). Owner M only.
    pub(crate) global_first: Cell<bool>,
    /// Counts goroutines readied into `runnext` without waking an idle P for them (see
    /// `park::put_runnable`), so that sysmon can tell a `runnext` that has sat
    /// there since its last look from a fresh one. Owner-written; read by sysmon.
    pub(crate) defer_seq: AtomicU32,
    /// Goroutine-id cache (Go: `p.goidcache`, `p.goidcacheend`). Owner M only.
    goidcache: Cell<u64>,
    goidcacheend: Cell<u64>,
}

// SAFETY: `gfree`, `spawnfree`, `global_first`, `goidcache` and `goidcacheend` are touched only by
// the M that owns the P (status `_Prunning` with `p.m` = that M), and ownership passes between Ms through
// `sched.lock` (pidleput/pidleget) or `nextp` + note wake-up, both of which order the
// previous owner's writes before the next owner's reads. Everything else is atomic.
unsafe impl Sync for P {}
// SAFETY: as above.
unsafe impl Send for P {}

impl P {
    /// A new idle P.
    pub(crate) fn new(id: u32) -> P {
        P {
            id,
            status: AtomicU32::new(P_IDLE),
            m: AtomicPtr::new(ptr::null_mut()),
            runq: LocalQueue::new(),
            schedtick: AtomicU32::new(0),
            syscalltick: AtomicU32::new(0),
            created: AtomicU64::new(0),
            exited: AtomicU64::new(0),
            parks: AtomicU64::new(0),
            steals: AtomicU64::new(0),
            records_queued: AtomicU64::new(0),
            records_started: AtomicU64::new(0),
            timers: crate::time::heap::Timers::new(),
            gfree: UnsafeCell::new(Vec::new()),
            spawnfree: UnsafeCell::new(Vec::new()),
            global_first: Cell::new(false),
            defer_seq: AtomicU32::new(0),
            goidcache: Cell::new(0),
            goidcacheend: Cell::new(0),
        }
    }

    /// The owner's free-G cache.
    ///
    /// # Safety
    /// Only the M that owns this P may call this, and must not hold two results at once.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn gfree(&self) -> &mut Vec<&'static G> {
        // SAFETY: owner-only access per the contract.
        unsafe { &mut *self.gfree.get() }
    }

    /// The owner's free spawn-record cache.
    ///
    /// # Safety
    /// As for [`P::gfree`].
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn spawnfree(&self) -> &mut Vec<&'static super::spawn::Spawn> {
        // SAFETY: owner-only access per the contract.
        unsafe { &mut *self.spawnfree.get() }
    }

    /// Next goroutine id from this P's batch (Go: `newproc1`'s goidcache refill, batch 16).
    /// Owner M only.
    pub(crate) fn next_goid(&self, gen: &std::sync::atomic::AtomicU64) -> u64 {
        if self.goidcache.get() == self.goidcacheend.get() {
            let start = gen.fetch_add(GOID_BATCH, Ordering::Relaxed) + 1;
            self.goidcache.set(start);
            self.goidcacheend.set(start + GOID_BATCH);
        }
        let id = self.goidcache.get();
        self.goidcache.set(id + 1);
        id
    }
}

/// Go: `_GoidCacheBatch`.
pub(crate) const GOID_BATCH: u64 = 16;

/// Increments a counter that only one thread writes (no locked instruction needed; a
/// concurrent reader sees the old or the new value).
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}
