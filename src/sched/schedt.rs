//! The global scheduler state (Go: runtime2.go `type schedt`, and the globals `allp`,
//! `allm`, `allgs`, `gomaxprocs`).

use super::g::G;
use super::m::M;
use super::p::P;
use super::spawn::{Gp, Spawn};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::config::MAX_PROCS;

/// The state behind `sched.lock`.
pub(crate) struct Locked {
    /// Global run queue (Go: `sched.runq`), FIFO. Its length is mirrored in `runqsize`.
    pub(crate) runq: VecDeque<Gp>,
    /// Idle Ms parked on their notes (Go: `sched.midle`). Mirrored in `nmidle`.
    pub(crate) midle: Vec<&'static M>,
    /// Idle Ps (Go: `sched.pidle`). Mirrored in `npidle`.
    pub(crate) pidle: Vec<&'static P>,
}

/// The global dead-G cache (Go: `sched.gFree`), behind its own lock.
pub(crate) struct GFree {
    /// Recently freed Gs whose stacks may still hold committed pages.
    pub(crate) hot: Vec<&'static G>,
    /// Gs whose stack pages were given back (`stack::release`).
    pub(crate) cold: Vec<&'static G>,
    /// Dead Gs with stacks of a non-default size (`Builder::stack_size`).
    pub(crate) other: Vec<&'static G>,
}

/// Scheduler-wide counters for `gort::stats()`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) reclaimed: AtomicU64,
    pub(crate) handoffs: AtomicU64,
    pub(crate) preemptions: AtomicU64,
    /// Goroutines found hogging their P (a relief P was lent).
    pub(crate) hogs: AtomicU64,
    pub(crate) stack_releases: AtomicU64,
}

/// Global scheduler state. Lock order: `sched.lock` before `gfree` before the stack
/// allocator's lock; `allgs` and `allm` are leaf locks.
pub(crate) struct Sched {
    /// `sched.lock`: the global run queue and the idle M and P lists.
    pub(crate) lock: Mutex<Locked>,
    /// Length of `Locked::runq`, readable without the lock (Go: `sched.runqsize`).
    /// Written under the lock.
    pub(crate) runqsize: AtomicU32,
    /// Number of idle Ps (Go: `sched.npidle`). Written under the lock, read anywhere.
    pub(crate) npidle: AtomicU32,
    /// Number of idle Ms (Go: `sched.nmidle`). Written under the lock.
    pub(crate) nmidle: AtomicU32,
    /// Ms asleep in `stoplockedm`, waiting for their locked goroutine to become runnable
    /// (Go: `sched.nmidlelocked`); idle for `checkdead`. Changed under the lock; may dip
    /// below the true count for an instant (a hand-back racing the sleeper's increment),
    /// which only makes `checkdead` more cautious.
    pub(crate) nmidlelocked: AtomicI64,
    /// Number of spinning Ms (Go: `sched.nmspinning`). Atomic protocol: see
    /// `docs/design/scheduler.md` ("no lost wake-ups").
    pub(crate) nmspinning: AtomicU32,
    /// Active Ps: GOMAXPROCS plus `relief` (Ps `0..gomaxprocs` may run goroutines).
    /// Written under `RESIZE` (procresize.rs).
    pub(crate) gomaxprocs: AtomicU32,
    /// Relief Ps lent while goroutines hog their P without a preemption check (sysmon's
    /// hog hand-off). Written under `RESIZE`.
    pub(crate) relief: AtomicU32,
    /// Goroutine id generator (Go: `sched.goidgen`).
    pub(crate) goidgen: AtomicU64,
    /// Goroutines created from threads without a P (those created on a P are counted
    /// per P; see `P::created`).
    pub(crate) ngoroutines: AtomicI64,
    /// Ms created so far = next M id (Go: `sched.mnext`).
    pub(crate) mnext: AtomicI64,
    /// Ms that exist now (threads the runtime started, plus `run` callers).
    pub(crate) mcount: AtomicI64,
    /// Worker Ms (threads the runtime started).
    pub(crate) nworkers: AtomicI64,
    /// Runtime threads that are not Ms (sysmon). Go: `sched.nmsys`.
    pub(crate) nsys: AtomicI64,
    /// `run` callers inside `run` now.
    pub(crate) nrun_active: AtomicI64,
    /// `run` callers waiting for their main goroutine (idle, for `checkdead`).
    pub(crate) nrun_waiting: AtomicI64,
    /// Main goroutines that finished whose `run` has not returned yet (their caller is
    /// about to run again: no deadlock check meanwhile).
    pub(crate) nrun_finishing: AtomicI64,
    /// All Ps ever created, by id (Go: `allp`). Entries are set once, under the lock.
    pub(crate) allp: [AtomicPtr<P>; MAX_PROCS],
    /// Dead-G cache.
    pub(crate) gfree: Mutex<GFree>,
    /// Every G ever created (Go: `allgs`).
    pub(crate) allgs: Mutex<Vec<&'static G>>,
    /// Spawn records queued from threads without a P (see `P::records_queued`).
    pub(crate) records_queued_nop: AtomicU64,
    /// Free spawn records (`spawn.rs`), beyond the Ps' caches.
    pub(crate) spawnfree: Mutex<Vec<&'static Spawn>>,
    /// Every chunk of spawn records ever carved (for dumps).
    pub(crate) allspawn: Mutex<Vec<&'static [Spawn]>>,
    /// Every M ever created (Go: `allm`).
    pub(crate) allm: Mutex<Vec<&'static M>>,
    /// The runtime finished `schedinit`.
    pub(crate) started: AtomicBool,
    /// Counters for stats.
    pub(crate) counters: Counters,
}

#[allow(clippy::declare_interior_mutable_const)]
const NULL_P: AtomicPtr<P> = AtomicPtr::new(std::ptr::null_mut());

/// The scheduler (Go: `sched`).
pub(crate) static SCHED: Sched = Sched {
    lock: Mutex::new(Locked {
        runq: VecDeque::new(),
        midle: Vec::new(),
        pidle: Vec::new(),
    }),
    runqsize: AtomicU32::new(0),
    npidle: AtomicU32::new(0),
    nmidle: AtomicU32::new(0),
    nmidlelocked: AtomicI64::new(0),
    nmspinning: AtomicU32::new(0),
    gomaxprocs: AtomicU32::new(0),
    relief: AtomicU32::new(0),
    goidgen: AtomicU64::new(0),
    ngoroutines: AtomicI64::new(0),
    mnext: AtomicI64::new(0),
    mcount: AtomicI64::new(0),
    nworkers: AtomicI64::new(0),
    nsys: AtomicI64::new(0),
    nrun_active: AtomicI64::new(0),
    nrun_waiting: AtomicI64::new(0),
    nrun_finishing: AtomicI64::new(0),
    allp: [NULL_P; MAX_PROCS],
    gfree: Mutex::new(GFree {
        hot: Vec::new(),
        cold: Vec::new(),
        other: Vec::new(),
    }),
    allgs: Mutex::new(Vec::new()),
    records_queued_nop: AtomicU64::new(0),
    spawnfree: Mutex::new(Vec::new()),
    allspawn: Mutex::new(Vec::new()),
    allm: Mutex::new(Vec::new()),
    started: AtomicBool::new(false),
    counters: Counters {
        reclaimed: AtomicU64::new(0),
        handoffs: AtomicU64::new(0),
        preemptions: AtomicU64::new(0),
        hogs: AtomicU64::new(0),
        stack_releases: AtomicU64::new(0),
    },
};

/// Locks a mutex, ignoring poisoning (the runtime never unwinds while holding its locks;
/// a poisoned lock means a user callback panicked, and the data is still consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sched {
    /// Takes `sched.lock`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Locked> {
        lock(&self.lock)
    }

    /// P number `i`, if created.
    pub(crate) fn p(&self, i: usize) -> Option<&'static P> {
        // SAFETY: entries are null or leaked Ps, never freed.
        unsafe { self.allp[i].load(Ordering::Acquire).as_ref() }
    }

    /// Live goroutines: those created minus those exited, over every P ever created,
    /// plus those created from plain threads.
    pub(crate) fn gcount(&self) -> i64 {
        let mut n = self.ngoroutines.load(Ordering::Relaxed);
        for slot in &self.allp {
            // SAFETY: entries are null or leaked Ps.
            match unsafe { slot.load(Ordering::Acquire).as_ref() } {
                Some(p) => {
                    n += p.created.load(Ordering::Relaxed) as i64;
                    n -= p.exited.load(Ordering::Relaxed) as i64;
                }
                None => break,
            }
        }
        n
    }

    /// Whether any P's local queue (runnext included) holds a runnable G.
    pub(crate) fn local_work(&self) -> bool {
        (0..self.procs()).any(|i| self.p(i).is_some_and(|p| !p.runq.is_empty()))
    }

    /// Whether the global queue or any local queue holds a runnable G.
    pub(crate) fn any_work(&self) -> bool {
        self.runqsize.load(Ordering::SeqCst) != 0 || self.local_work()
    }

    /// Active Ps: GOMAXPROCS plus the relief Ps lent for hogs (everything that walks,
    /// steals from or counts Ps uses this).
    pub(crate) fn procs(&self) -> usize {
        self.gomaxprocs.load(Ordering::Relaxed) as usize
    }

    /// GOMAXPROCS as the user set it (active Ps minus relief Ps).
    pub(crate) fn user_procs(&self) -> usize {
        self.procs()
            .saturating_sub(self.relief.load(Ordering::Relaxed) as usize)
    }
}

impl GFree {
    /// A dead G, preferring one whose stack pages are still warm.
    pub(crate) fn pop(&mut self) -> Option<&'static G> {
        self.hot.pop().or_else(|| self.cold.pop())
    }
}

impl Locked {
    /// Puts an idle P on the idle list (Go: `pidleput`). The P's queue must be empty.
    pub(crate) fn pidleput(&mut self, p: &'static P) {
        debug_assert!(p.runq.is_empty(), "pidleput: P has non-empty run queue");
        debug_assert_eq!(p.status.load(Ordering::Relaxed), super::p::P_IDLE);
        if super::procresize::must_retire(p) {
            // GOMAXPROCS shrank below this P: retire it instead of listing it
            super::procresize::retire_idle(self, p);
            return;
        }
        self.pidle.push(p);
        SCHED.npidle.fetch_add(1, Ordering::SeqCst); // seq_cst; read by wakep (see scheduler.md)
    }

    /// Takes an idle P (Go: `pidleget`).
    pub(crate) fn pidleget(&mut self) -> Option<&'static P> {
        let p = self.pidle.pop()?;
        SCHED.npidle.fetch_sub(1, Ordering::SeqCst); // seq_cst; pairs with wakep's read
        Some(p)
    }

    /// Puts an idle M on the idle list (Go: `mput`).
    pub(crate) fn mput(&mut self, m: &'static M) {
        self.midle.push(m);
        SCHED.nmidle.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes an idle M (Go: `mget`).
    pub(crate) fn mget(&mut self) -> Option<&'static M> {
        let m = self.midle.pop()?;
        SCHED.nmidle.fetch_sub(1, Ordering::Relaxed);
        Some(m)
    }
}
