//! The M: an OS thread that runs goroutines while it holds a P (Go: runtime2.go `type m`).
//!
//! M structs are leaked and listed in `allm`; a `&'static M` is always valid. The thread
//! an M runs on finds its M through [`getm`], whose read cannot be cached across a
//! goroutine switch (see `docs/design/thread-locals.md`).

use super::g::G;
use super::p::P;
use crate::os::note::Note;
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering};

/// An OS thread known to the scheduler.
///
/// Aligned to 128 bytes (two cache lines, as crossbeam's `CachePadded` on x86-64) so that
/// two of them, written on every switch by different threads, never share a line.
#[repr(align(128))]
pub(crate) struct M {
    /// M id (m0 = 0). Immutable.
    pub(crate) id: i64,
    /// The user G running on this M, or null while on g0 (Go: `m.curg`). Written by this
    /// M's thread only; read by dumps.
    pub(crate) curg: AtomicPtr<G>,
    /// The attached P, or null (Go: `m.p`). Written by this M's thread only
    /// (`acquirep`/`releasep`); read by dumps and, later, sysmon.
    pub(crate) p: AtomicPtr<P>,
    /// A P handed to this M before waking it (Go: `m.nextp`). Written by `startm` (or
    /// `newm`) before `park.wakeup()` (or the thread spawn), which publishes it; taken by
    /// this M after waking.
    pub(crate) nextp: AtomicPtr<P>,
    /// The P held before entering a blocking call (Go: `m.oldp`). This M only.
    pub(crate) oldp: AtomicPtr<P>,
    /// Out of work and looking for some (Go: `m.spinning`). Written by this M, or by
    /// `startm` before waking it.
    pub(crate) spinning: AtomicBool,
    /// Sleeping on `park` (Go: `m.blocked`). For dumps.
    pub(crate) blocked: AtomicBool,
    /// The thread exited (reclaimed while idle). For dumps.
    pub(crate) dead: AtomicBool,
    /// The note an idle M sleeps on (Go: `m.park`). Cleared only by this M.
    pub(crate) park: Note,
    /// Kernel thread id, for dumps. Written once by the M's thread.
    pub(crate) tid: AtomicI64,
    /// Whether this M is the calling thread of a `run` (it leaves the scheduler when its
    /// main goroutine is done, instead of idling on `sched.midle`). Immutable.
    pub(crate) is_run: bool,
    /// Random state for steal order. Used by this M's thread only.
    fastrand: Cell<u64>,
    /// The G wired to this M by `lock_os_thread`, or null (Go: `m.lockedg`). Written by
    /// that G while it runs here (and by `goexit` on this M); read by this M's scheduler.
    pub(crate) lockedg: AtomicPtr<G>,
    /// `lock_os_thread` nesting count (Go: `m.lockedExt`). Touched only by the goroutine
    /// running on this M, which is the locked one whenever the count is non-zero.
    pub(crate) locked_ext: Cell<u32>,
    /// For a `run` M: the main goroutine of the current `run` call (the only goroutine
    /// that may lock this thread). Written by `run` on this thread.
    pub(crate) run_main: AtomicPtr<G>,
    /// g0's saved stack pointer while a goroutine runs on this M (Go: `m.g0.sched`).
    /// Used only on this M's thread: by g0 when it resumes a goroutine, and by that
    /// goroutine (or one it switched to directly) when it switches back.
    pub(crate) g0_sp: Cell<usize>,
}

// SAFETY: `fastrand`, `locked_ext` and `g0_sp` are the only non-atomic fields and only
// the M's own thread touches them; everything else is atomic or immutable.
unsafe impl Sync for M {}
// SAFETY: as above.
unsafe impl Send for M {}

impl M {
    /// A new M (not yet running).
    pub(crate) fn new(id: i64, is_run: bool) -> M {
        M {
            id,
            curg: AtomicPtr::new(ptr::null_mut()),
            p: AtomicPtr::new(ptr::null_mut()),
            nextp: AtomicPtr::new(ptr::null_mut()),
            oldp: AtomicPtr::new(ptr::null_mut()),
            spinning: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            park: Note::new(),
            tid: AtomicI64::new(0),
            is_run,
            fastrand: Cell::new(
                0x9E37_79B9_7F4A_7C15u64 ^ (id as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93) | 1,
            ),
            lockedg: AtomicPtr::new(ptr::null_mut()),
            locked_ext: Cell::new(0),
            run_main: AtomicPtr::new(ptr::null_mut()),
            g0_sp: Cell::new(0),
        }
    }

    /// The attached P.
    pub(crate) fn p(&self) -> Option<&'static P> {
        // SAFETY: Ps are leaked and never freed; the pointer is null or a valid P.
        unsafe { self.p.load(Ordering::Relaxed).as_ref() }
    }

    /// The running user G.
    pub(crate) fn curg(&self) -> Option<&'static G> {
        // SAFETY: Gs are leaked and never freed.
        unsafe { self.curg.load(Ordering::Relaxed).as_ref() }
    }

    /// The goroutine wired to this M, if any.
    pub(crate) fn lockedg(&self) -> Option<&'static G> {
        // SAFETY: Gs are leaked and never freed.
        unsafe { self.lockedg.load(Ordering::Relaxed).as_ref() }
    }

    /// Whether this M is spinning.
    pub(crate) fn is_spinning(&self) -> bool {
        self.spinning.load(Ordering::Relaxed)
    }

    /// A pseudo-random number (wyrand). Only the M's own thread calls this.
    pub(crate) fn fastrand(&self) -> u32 {
        let s = self.fastrand.get().wrapping_add(0xA076_1D64_78BD_642F);
        self.fastrand.set(s);
        let t = (s as u128).wrapping_mul((s ^ 0xE703_7ED1_A0B4_28DB) as u128);
        ((t >> 64) as u64 ^ t as u64) as u32
    }

    /// Records the calling thread's kernel id.
    pub(crate) fn record_tid(&self) {
        #[cfg(target_os = "linux")]
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i64;
        #[cfg(not(target_os = "linux"))]
        let tid = 0;
        self.tid.store(tid, Ordering::Relaxed);
    }
}

thread_local! {
    /// The M of the current thread, or null (Go: `getg().m` through TLS).
    static CUR_M: Cell<*const M> = const { Cell::new(ptr::null()) };
}

/// The current thread's M.
///
/// `#[inline(never)]` plus `black_box` make every call re-read the thread-local: a
/// goroutine may call this, switch away, and resume on another thread, and an inlined
/// TLS access could have its address hoisted across the switch by LLVM
/// (llvm/llvm-project#98479), reading the old thread's M.
#[inline(never)]
pub(crate) fn getm() -> Option<&'static M> {
    let p = CUR_M.with(|c| c.get());
    let p = std::hint::black_box(p);
    // SAFETY: Ms are leaked and never freed; the slot holds null or a valid M.
    unsafe { p.as_ref() }
}

/// Binds the current thread to `m` (or unbinds with `None`).
pub(crate) fn setm(m: Option<&'static M>) {
    CUR_M.with(|c| c.set(m.map_or(ptr::null(), |m| m as *const M)));
}

/// The running goroutine, if the caller is one (Go: `getg()` when not on g0).
#[inline(never)]
pub(crate) fn getg() -> Option<&'static G> {
    getm()?.curg()
}
