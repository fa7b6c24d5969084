//! Spawn records: a goroutine between `go` and its first run, and the home of its
//! [`JoinHandle`](crate::JoinHandle)'s state (gort's own; Go's `newproc1` gives a new
//! goroutine its `g` and stack at once).
//!
//! # Why
//!
//! A G lives on its stack's top page (`g.rs`), so a G costs a page from the moment it
//! exists. A goroutine that is queued but has not run needs no stack: only its closure,
//! its id and creation site. Programs that spawn faster than they run (a tree of
//! goroutines such as skynet, a loop that fans out work) hold tens of thousands of those
//! at once: as Gs they cost 4 KiB each, as records 192 bytes. So `newproc` queues a
//! [`Spawn`] record, and the M that takes it off a run queue binds it to a G with a stack
//! ([`start`]) right before running it, on the P that runs it (whose free-G cache has a
//! warm stack: a fan-out's children also reuse the stacks of the ones that finished).
//!
//! A run-queue entry is therefore a [`Gp`]: a G, or a record (tagged pointer).
//!
//! # Join state
//!
//! The record also holds the goroutine's result and joiner (`join.rs`) while a handle
//! exists: the handle refers to the record, never to the G. When the goroutine starts,
//! the record stays with it only if a handle still exists (the G points at it,
//! `G::spawn`); otherwise it is freed at once, and a parked goroutine costs its stack page
//! alone. A kept record is freed by whoever of {the goroutine's exit, the handle's join or
//! drop} comes second (join rule 2).
//!
//! # Eager starts
//!
//! A goroutine with a non-default stack size gets its G and stack at spawn, and so does
//! every goroutine where a default-size stack may fail for more than an exhausted address
//! space (`stack::late_binding_ok`: guard pages by `mprotect` on kernels before 6.13,
//! where the map count limits live stacks; an `RLIMIT_AS` limit; strict overcommit), so
//! that failing to allocate a stack is an `Err` from `Builder::spawn` where it is likely.
//! Elsewhere a stack fails only when the address space is exhausted; at first run that is
//! a fatal error, as Go's out-of-memory is. Closures above 64 bytes (or aligned above 16)
//! are boxed: one allocation per spawn, where a G on its stack held up to 1 KiB inline.
//!
//! # Lifetime
//!
//! Records are carved in chunks, never freed (a `&'static Spawn` stays valid, as a
//! `&'static G` does), recycled through per-P caches and a global list like dead Gs, and
//! listed in `SCHED.allspawn` so that goroutine dumps show unstarted goroutines.

use super::g::G;
use super::join::Join;
use super::p::P;
use super::schedt::{lock, SCHED};
use std::cell::{Cell, UnsafeCell};
use std::mem::{align_of, size_of, MaybeUninit};
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};

/// On a free list.
pub(crate) const S_FREE: u8 = 0;
/// Queued: the goroutine is runnable and has not started.
pub(crate) const S_QUEUED: u8 = 1;
/// The goroutine started; the record stays for its handle.
pub(crate) const S_STARTED: u8 = 2;

/// Bytes of closure a record holds inline; larger closures are boxed.
const INLINE: usize = 64;

/// Records per chunk.
const CHUNK: usize = 64;
/// A P caches up to this many free records, spilling half to the global list.
const CACHE_SPILL_AT: usize = 64;
/// ...and refills to this many.
const CACHE_KEEP: usize = 32;

/// Moves a record's closure onto a G's stack (see `Spawn::start`).
type StartFn = unsafe fn(&Spawn, &G);

/// Inline closure storage (16-byte aligned, as `G::set_entry` places closures).
#[repr(C, align(16))]
struct Inline([MaybeUninit<u8>; INLINE]);

/// A goroutine that has not started, or the join state of one that has (module docs).
///
/// Fields are owned like a G's: by the spawner until the record is queued, then by the
/// M that takes it off a run queue; `join` follows `join.rs`'s protocol; dumps read the
/// atomic ones racily.
#[repr(C, align(64))]
pub(crate) struct Spawn {
    /// Result and joiner (protocol in `join.rs`).
    pub(crate) join: Join,
    /// `S_*`. Written by the owner; read by dumps.
    state: AtomicU8,
    /// `Builder::isolate_panics`.
    isolate: Cell<bool>,
    /// The main goroutine of a `run` call.
    main: Cell<bool>,
    /// Whether `name` holds a name (dumps skip the lock otherwise).
    has_name: AtomicBool,
    /// Usable stack bytes (rounded).
    stack_size: Cell<usize>,
    /// Goroutine id; read by dumps.
    goid: AtomicU64,
    /// Creation site; read by dumps.
    gopc: AtomicPtr<Location<'static>>,
    /// `SpawnOpts::creator`, as a pointer (`proc::Creator`); read by dumps.
    creator: AtomicPtr<()>,
    /// `Builder::name`, moved into the G at start; dumps `try_lock` it.
    name: std::sync::Mutex<Option<Box<str>>>,
    /// Moves the closure from `closure` onto a G's stack (`G::set_entry`), monomorphised
    /// for its type; `None` when the record holds no closure.
    start: Cell<Option<StartFn>>,
    /// The closure (or a box of it), until `start` moves it out.
    closure: UnsafeCell<Inline>,
}

const _: () = assert!(size_of::<Spawn>() <= 192);

// SAFETY: as for G: the `Cell`s and the closure are touched only by the record's owner
// (the spawner, then the M that dequeued it; ownership moves through the run queues'
// release/acquire edges); everything others read is atomic or behind a lock. The closure
// is `Send`.
unsafe impl Sync for Spawn {}
// SAFETY: as above.
unsafe impl Send for Spawn {}

impl Spawn {
    fn new() -> Spawn {
        Spawn {
            join: Join::new(),
            state: AtomicU8::new(S_FREE),
            isolate: Cell::new(false),
            main: Cell::new(false),
            has_name: AtomicBool::new(false),
            stack_size: Cell::new(0),
            goid: AtomicU64::new(0),
            gopc: AtomicPtr::new(ptr::null_mut()),
            creator: AtomicPtr::new(super::proc::no_creator as *mut ()),
            name: std::sync::Mutex::new(None),
            start: Cell::new(None),
            closure: UnsafeCell::new(Inline([MaybeUninit::uninit(); INLINE])),
        }
    }

    /// `S_*` state (racy for others than the owner).
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Goroutine id.
    pub(crate) fn goid(&self) -> u64 {
        self.goid.load(Ordering::Relaxed)
    }

    /// Creation site, if set.
    pub(crate) fn gopc(&self) -> Option<&'static Location<'static>> {
        // SAFETY: only ever set from `&'static Location`s (or null).
        unsafe { self.gopc.load(Ordering::Relaxed).as_ref() }
    }

    /// `SpawnOpts::creator`.
    pub(crate) fn creator(&self) -> super::proc::Creator {
        creator_from(self.creator.load(Ordering::Relaxed))
    }

    /// Name given at spawn, if any and still here (copied; for dumps).
    pub(crate) fn name(&self) -> Option<String> {
        if !self.has_name.load(Ordering::Acquire) {
            return None;
        }
        // try_lock: a dump from a fatal path must never block
        self.name.try_lock().ok()?.as_deref().map(str::to_string)
    }

    /// Fills a free record for a new goroutine running `f`, with a handle (`HANDLE`
    /// set). The caller owns the record; it publishes it by queueing it.
    pub(crate) fn fill<F: FnOnce() + Send + 'static>(
        &self,
        f: F,
        goid: u64,
        gopc: &'static Location<'static>,
        opts: super::proc::SpawnOpts,
    ) {
        debug_assert_eq!(self.state.load(Ordering::Relaxed), S_FREE);
        debug_assert!(self.start.get().is_none(), "a free record held a closure");
        if size_of::<F>() <= INLINE && align_of::<F>() <= align_of::<Inline>() {
            // SAFETY: the storage is free (no closure: checked above), large and aligned
            // enough for F; `take_closure::<F>` reads it back exactly once.
            unsafe { self.closure.get().cast::<F>().write(f) };
            self.start.set(Some(take_closure::<F>));
        } else {
            type Boxed = Box<dyn FnOnce() + Send>;
            const _: () = assert!(size_of::<Boxed>() <= INLINE);
            let b: Boxed = Box::new(f);
            // SAFETY: as above, for the box.
            unsafe { self.closure.get().cast::<Boxed>().write(b) };
            self.start.set(Some(take_closure::<Boxed>));
        }
        self.goid.store(goid, Ordering::Relaxed);
        self.gopc.store(
            gopc as *const Location<'static> as *mut _,
            Ordering::Relaxed,
        );
        if opts.name.is_some() || self.has_name.load(Ordering::Relaxed) {
            self.has_name.store(opts.name.is_some(), Ordering::Release);
            *self.name.lock().unwrap_or_else(|e| e.into_inner()) = opts.name;
        }
        self.creator
            .store(opts.creator as *mut (), Ordering::Relaxed);
        self.isolate.set(opts.isolate);
        self.main.set(opts.main);
        self.stack_size.set(opts.stack_size);
        self.join.reset();
        self.state.store(S_QUEUED, Ordering::Release);
    }
}

/// A `proc::Creator` back from the pointer it was stored as.
pub(crate) fn creator_from(p: *mut ()) -> super::proc::Creator {
    // SAFETY: the only values stored are `proc::Creator` function pointers cast to
    // `*mut ()` (fn pointers and data pointers have the same size on every target gort
    // builds for).
    unsafe { std::mem::transmute::<*mut (), super::proc::Creator>(p) }
}

/// Moves the `F` out of a record onto a G's stack.
///
/// # Safety
/// The record holds an `F` written by `fill` and not yet taken; the caller owns the
/// record and the dead G.
unsafe fn take_closure<F: FnOnce() + Send + 'static>(s: &Spawn, g: &G) {
    // SAFETY: per the contract; the read is the only one (the caller clears `start`).
    let f = unsafe { s.closure.get().cast::<F>().read() };
    // SAFETY: the caller owns the dead G.
    unsafe { g.set_entry(f) };
}

/// A run-queue entry: the G of a goroutine that has run, or the [`Spawn`] record of one
/// that has not (bit 0 set; both are 64-byte aligned).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Gp(usize);

/// The pointee type of run-queue pointers (never dereferenced: a [`Gp`]'s bits).
pub(crate) enum Task {}

impl Gp {
    /// Back from a run-queue pointer.
    ///
    /// # Safety
    /// `t` came from [`Gp::raw`].
    #[inline]
    pub(crate) unsafe fn from_raw(t: *mut Task) -> Gp {
        Gp(t as usize)
    }

    /// As a run-queue pointer.
    #[inline]
    pub(crate) fn raw(self) -> *mut Task {
        self.0 as *mut Task
    }

    /// A record's entry.
    #[inline]
    pub(crate) fn spawn(s: &'static Spawn) -> Gp {
        Gp(s as *const Spawn as usize | 1)
    }

    /// The G, if this entry is one.
    #[inline]
    pub(crate) fn g(self) -> Option<&'static G> {
        // SAFETY: an untagged entry was made from a `&'static G` (`From`).
        (self.0 & 1 == 0).then(|| unsafe { &*(self.0 as *const G) })
    }

    /// The record, if this entry is one.
    #[inline]
    pub(crate) fn record(self) -> Option<&'static Spawn> {
        // SAFETY: a tagged entry was made from a `&'static Spawn` (`Gp::spawn`).
        (self.0 & 1 != 0).then(|| unsafe { &*((self.0 & !1) as *const Spawn) })
    }
}

impl From<&'static G> for Gp {
    #[inline]
    fn from(g: &'static G) -> Gp {
        Gp(g as *const G as usize)
    }
}

const _: () = assert!(align_of::<G>() >= 2 && align_of::<Spawn>() >= 2);

/// Makes the entry runnable on this M: a G as it is; a record bound to a dead G from
/// `p`'s cache with a stack of the size it asked for (Go: the second half of
/// `newproc1`, done late). The caller owns the entry (took it off a run queue) and `p`.
#[inline]
pub(crate) fn bind(p: &'static P, gp: Gp) -> &'static G {
    match gp.record() {
        None => match gp.g() {
            Some(g) => g,
            None => crate::throw!("bind: run-queue entry neither a record nor a G"),
        },
        Some(s) => start(p, s),
    }
}

/// [`bind`] for a record: binds `s` (owned by the caller, which owns `p`) to a dead G and
/// returns the G, `_Grunnable`.
pub(crate) fn start(p: &'static P, s: &'static Spawn) -> &'static G {
    let g = match super::proc::gfget(Some(p), s.stack_size.get()) {
        Ok(g) => g,
        Err(e) => no_stack(e),
    };
    // SAFETY: the dead G is ours (gfget), the record too (caller).
    unsafe { adopt(Some(p), g, s) };
    super::p::bump(&p.records_started);
    g
}

#[cold]
fn no_stack(e: std::io::Error) -> ! {
    crate::throw!("newproc: cannot allocate a goroutine stack: {e}")
}

/// Moves what the record holds into the G and makes the G runnable; the record stays
/// with the G if a handle exists, and is freed otherwise. Used by [`start`], and by
/// `newproc` for an eager start (module docs).
///
/// # Safety
/// The caller owns the dead G and the queued record.
pub(crate) unsafe fn adopt(p: Option<&'static P>, g: &'static G, s: &'static Spawn) {
    debug_assert_eq!(s.state.load(Ordering::Relaxed), S_QUEUED);
    let Some(take) = s.start.take() else {
        crate::throw!("newproc: spawn record without a function");
    };
    // SAFETY: the record holds the closure `take` was made for; both are ours.
    unsafe { take(s, g) };
    let name = if s.has_name.load(Ordering::Relaxed) {
        s.has_name.store(false, Ordering::Release);
        s.name.lock().unwrap_or_else(|e| e.into_inner()).take()
    } else {
        None
    };
    // Whether a handle exists now. If it is dropped later, the goroutine's exit sees
    // HANDLE clear and frees the record (rule 2); if it is gone already, nobody else
    // uses the record: free it now.
    let keep = s.join.has_handle();
    // SAFETY: the caller owns the dead G.
    unsafe {
        g.prepare(
            super::g::Identity {
                goid: s.goid(),
                gopc: s.gopc().unwrap_or(Location::caller()),
                name,
                isolate: s.isolate.get(),
                main: s.main.get(),
                creator: s.creator(),
            },
            keep.then_some(s),
        )
    };
    if keep {
        s.state.store(S_STARTED, Ordering::Release);
    } else {
        free(p, s);
    }
    g.cas_status(super::g::G_DEAD, super::g::G_RUNNABLE);
}

/// A free record: from `p`'s cache (refilled from the global list), or a new chunk.
pub(crate) fn get(p: Option<&'static P>) -> &'static Spawn {
    if let Some(p) = p {
        // SAFETY: we run on the M that owns p.
        let cache = unsafe { p.spawnfree() };
        if let Some(s) = cache.pop() {
            return s;
        }
        let mut gl = lock(&SCHED.spawnfree);
        while cache.len() < CACHE_KEEP {
            match gl.pop() {
                Some(s) => cache.push(s),
                None => break,
            }
        }
        drop(gl);
        if let Some(s) = cache.pop() {
            return s;
        }
        let chunk = new_chunk();
        cache.extend(chunk[1..].iter());
        return &chunk[0];
    }
    if let Some(s) = lock(&SCHED.spawnfree).pop() {
        return s;
    }
    let chunk = new_chunk();
    lock(&SCHED.spawnfree).extend(chunk[1..].iter());
    &chunk[0]
}

/// Carves a chunk of records, listed in `allspawn` for dumps.
#[cold]
fn new_chunk() -> &'static [Spawn] {
    let chunk: &'static [Spawn] =
        Box::leak((0..CHUNK).map(|_| Spawn::new()).collect::<Box<[Spawn]>>());
    lock(&SCHED.allspawn).push(chunk);
    chunk
}

/// Gives a record back (its goroutine started without a handle, or rule 2 picked the
/// caller): to `p`'s cache, spilling to the global list.
pub(crate) fn free(p: Option<&'static P>, s: &'static Spawn) {
    debug_assert!(
        s.start.get().is_none(),
        "freeing a record that holds a closure"
    );
    s.state.store(S_FREE, Ordering::Release);
    match p {
        Some(p) => {
            // SAFETY: we run on the M that owns p.
            let cache = unsafe { p.spawnfree() };
            cache.push(s);
            if cache.len() >= CACHE_SPILL_AT {
                let mut gl = lock(&SCHED.spawnfree);
                while cache.len() > CACHE_KEEP {
                    let Some(s) = cache.pop() else {
                        crate::throw!("spawn::free: cache emptied under its owner");
                    };
                    gl.push(s);
                }
            }
        }
        None => lock(&SCHED.spawnfree).push(s),
    }
}

/// [`free`] from wherever the caller runs (a join handle's drop).
pub(crate) fn free_here(s: &'static Spawn) {
    free(super::m::getm().and_then(|m| m.p()), s)
}

/// Counts a record queued by `newproc` on `p` (or a thread without a P).
#[inline]
pub(crate) fn count_queued(p: Option<&'static P>) {
    match p {
        Some(p) => super::p::bump(&p.records_queued),
        None => {
            SCHED.records_queued_nop.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How many goroutines wait unstarted, as spawn records on run queues. Exact when every
/// P's owner is quiescent (`checkdead`: all Ms idle, under `sched.lock`); a racy snapshot
/// otherwise (`stats`).
pub(crate) fn queued() -> u64 {
    let mut n = SCHED.records_queued_nop.load(Ordering::Relaxed) as i64;
    for p in (0..crate::config::MAX_PROCS).map_while(|i| SCHED.p(i)) {
        n += p.records_queued.load(Ordering::Relaxed) as i64;
        n -= p.records_started.load(Ordering::Relaxed) as i64;
    }
    n.max(0) as u64
}

/// Every record that holds an unstarted goroutine now (racy: for dumps); `None` if the
/// list is locked.
pub(crate) fn unstarted() -> Option<Vec<&'static Spawn>> {
    let chunks = SCHED.allspawn.try_lock().ok()?.clone();
    Some(
        chunks
            .iter()
            .flat_map(|c| c.iter())
            .filter(|s| s.state() == S_QUEUED)
            .collect(),
    )
}
