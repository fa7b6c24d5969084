//! The G: a goroutine's descriptor (Go: runtime2.go `type g`).
//!
//! G structs are allocated once (`malg`) at the top of their own stack, listed in `allgs`
//! and reused through the free lists with that stack: they are never freed, as in Go, so
//! a `&'static G` is always valid. Keeping the G on its stack's top page means a parked
//! goroutine costs one page for its descriptor and its frames together. A goroutine gets
//! its G when it first runs: until then it is a spawn record (`spawn.rs`).

use super::m::M;
use crate::stack::GStack;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

/// Just allocated, not yet initialised (Go `_Gidle`).
pub(crate) const G_IDLE: u32 = 0;
/// On a run queue; does not own its stack (Go `_Grunnable`).
pub(crate) const G_RUNNABLE: u32 = 1;
/// Running on an M with a P (Go `_Grunning`).
pub(crate) const G_RUNNING: u32 = 2;
/// In a blocking call; has an M, no P (Go `_Gsyscall`).
pub(crate) const G_SYSCALL: u32 = 3;
/// Parked; recorded on some wait queue (Go `_Gwaiting`).
pub(crate) const G_WAITING: u32 = 4;
/// Free, exited, or being initialised (Go `_Gdead`).
pub(crate) const G_DEAD: u32 = 6;

/// Go's `gStatusStrings`.
pub(crate) fn status_string(s: u32) -> &'static str {
    match s {
        G_IDLE => "idle",
        G_RUNNABLE => "runnable",
        G_RUNNING => "running",
        G_SYSCALL => "syscall",
        G_WAITING => "waiting",
        G_DEAD => "dead",
        _ => "???",
    }
}

/// Whether `from -> to` is a legal G status transition (Go: proc.go `casgstatus` users).
pub(crate) fn legal_transition(from: u32, to: u32) -> bool {
    matches!(
        (from, to),
        (G_IDLE, G_DEAD)
            | (G_DEAD, G_RUNNABLE)
            | (G_RUNNABLE, G_RUNNING)
            | (G_RUNNING, G_RUNNABLE)
            | (G_RUNNING, G_WAITING)
            | (G_RUNNING, G_SYSCALL)
            | (G_RUNNING, G_DEAD)
            | (G_SYSCALL, G_RUNNING)
            | (G_SYSCALL, G_RUNNABLE)
            | (G_WAITING, G_RUNNABLE)
    )
}

/// Declares [`WaitReason`] from one table: each variant with the string Go prints for
/// it, so a variant cannot lack its string or its place in the `u8` encoding.
macro_rules! wait_reasons {
    ($( $(#[$doc:meta])* $name:ident => $text:literal, )*) => {
        /// Why a G is waiting (Go: runtime2.go `waitReason`, with Go's strings).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        #[allow(dead_code)]
        pub(crate) enum WaitReason {
            $( $(#[$doc])* $name, )*
        }

        impl WaitReason {
            /// Every reason, in encoding order.
            const ALL: &'static [WaitReason] = &[$( WaitReason::$name, )*];
            /// Go's string for each, in the same order.
            const TEXT: &'static [&'static str] = &[$( $text, )*];
        }
    };
}

wait_reasons! {
    Zero => "",
    IoWait => "IO wait",
    ChanReceiveNilChan => "chan receive (nil chan)",
    ChanSendNilChan => "chan send (nil chan)",
    Select => "select",
    SelectNoCases => "select (no cases)",
    ChanReceive => "chan receive",
    ChanSend => "chan send",
    Semacquire => "semacquire",
    Sleep => "sleep",
    SyncCondWait => "sync.Cond.Wait",
    Preempted => "preempted",
    /// gort: waiting in `JoinHandle::join` (Go has no join; this is gort's own).
    Join => "join",
    /// gort: waiting in `WaitGroup::wait` (Go 1.19 shows "semacquire"; newer Go this string).
    WaitGroupWait => "sync.WaitGroup.Wait",
}

impl WaitReason {
    /// The string Go prints.
    pub(crate) fn as_str(self) -> &'static str {
        WaitReason::TEXT[self as usize]
    }

    /// The reason stored as `v` (only `self as u8` values are ever stored).
    fn from_u8(v: u8) -> WaitReason {
        match WaitReason::ALL.get(v as usize) {
            Some(&r) => r,
            None => crate::throw!("waitreason: no reason is encoded as {v}"),
        }
    }
}

/// Bytes of a parked goroutine's stack above its saved context that `goready` prefetches.
#[cfg(target_arch = "x86_64")]
const PREFETCH_SPAN: isize = 1024;
/// What a G asks of its M's scheduler context (g0) when it switches away: the Rust
/// analogue of the function passed to Go's `mcall`.
pub(crate) enum Switch {
    /// `gopark`: become `_Gwaiting`, then run the unlock function (if any) on g0; if it
    /// returns false the park is cancelled and the G resumes at once (Go: `park_m`).
    Park(Option<*mut (dyn FnMut() -> bool + 'static)>),
    /// `Gosched`: back to the global run queue (Go: `gosched_m`).
    Gosched,
    /// Yield on sysmon's request (Go: `gopreempt_m`): the time slice ends and is not
    /// passed on through `runnext`.
    Preempt,
    /// `systemstack`: run the function on g0's stack, then resume the G at once.
    Call(*mut (dyn FnMut() + 'static)),
    /// `exitsyscall` found no P: queue the G globally, and idle this M (Go: `exitsyscall0`).
    ExitSyscall,
    /// `lock_os_thread` on a `run` caller's thread by a goroutine other than that run's
    /// main one: the G moves to a worker M (with the P) before it locks, since the caller's
    /// thread leaves the scheduler when its own main goroutine is done.
    LeaveRunM,
    /// An unrecovered panic: print the report on g0's larger stack and exit(2).
    Fatal(Box<crate::debug::FatalReport>),
    /// The goroutine's function returned (Go: `goexit1`, then `goexit0` on g0). The G is
    /// never resumed again. (Not sent through `switch_to_g0`: see `gentry`.)
    Exit,
}

/// Closures up to this size are moved onto the goroutine's stack; larger ones are boxed.
const MAX_INLINE_CLOSURE: usize = 1024;

/// The first function a goroutine runs on its stack (Go: `goexit` is the return address
/// of its function): `data` points at its closure (see `G::set_entry`), `handoff` is
/// what the switch that started it asks of it first. Returns, when the closure has
/// returned, the saved pointer of the g0 of the M it finished on, to which the stack's
/// bottom frame returns with `context::EXIT` (Go: `goexit1`, then `goexit0` on g0).
unsafe extern "C" fn gentry<F: FnOnce()>(data: usize, handoff: usize) -> usize {
    // SAFETY: `set_entry` wrote an F at `data`, read exactly once, here; the frames of
    // this stack start below it.
    let f = unsafe { ptr::read(data as *const F) };
    super::park::after_switch(handoff);
    f();
    let Some(m) = super::m::getm() else {
        crate::throw!("goexit: not on an M");
    };
    m.g0_sp.get()
}

/// What a goroutine is, as opposed to what it is doing: given to its G when it starts
/// (`G::prepare`, from its spawn record).
pub(crate) struct Identity {
    pub(crate) goid: u64,
    /// Creation site (Go: `gopc`).
    pub(crate) gopc: &'static Location<'static>,
    pub(crate) name: Option<Box<str>>,
    /// `Builder::isolate_panics`.
    pub(crate) isolate: bool,
    /// The main goroutine of a `run` call.
    pub(crate) main: bool,
    /// `SpawnOpts::creator`.
    pub(crate) creator: super::proc::Creator,
}

/// A goroutine.
///
/// `repr(C)` with the fields a switch touches first, so that running a G touches one
/// or two cache lines of it.
#[repr(C, align(64))]
pub(crate) struct G {
    // --- hot: touched on every switch ---
    /// Saved stack pointer while the G is not running (Go: `g.sched`; `context.rs`), 0
    /// while it has no context. Owned exclusively by whoever holds the G: its creator
    /// until it is queued, then the M that took it off a queue (running it), then that
    /// M's g0 or the goroutine it switched to directly.
    sched_sp: Cell<usize>,
    /// `_G*` status. Changed only through [`G::cas_status`].
    status: AtomicU32,
    /// Last wait reason (Go keeps it after the G becomes runnable, too).
    waitreason: AtomicU8,
    /// The scheduler asked this G to give way (Go: `g.preempt`).
    pub(crate) preempt: AtomicBool,
    /// This G readied a goroutine into its P's `runnext` without waking an idle P (see
    /// `park::put_runnable`): 0 none, 1 in this gort call, 2 in the one before. Only the G
    /// itself touches it, while running.
    pub(crate) defer_wake: Cell<u8>,
    /// The M running this G, or null (Go: `g.m`). Written by that M.
    pub(crate) m: AtomicPtr<M>,
    /// Roughly where the G's stack pointer was when it last switched away: `goready`
    /// prefetches those lines so the resume does not wait for memory. Written by the G,
    /// read (racily, as a hint) by wakers.
    sp_hint: AtomicUsize,
    /// The M that last ran this G (for `GORT_DEBUG=migrate=1`). Written by that M.
    pub(crate) last_m: AtomicPtr<M>,
    /// The M this G is wired to by `lock_os_thread`, or null (Go: `g.lockedm`). Written
    /// by the G itself while running on that M; read by schedulers that took the G off a
    /// queue (the queue's release/acquire edge orders the write before the read).
    pub(crate) lockedm: AtomicPtr<M>,
    /// Goroutine id (main = 1). Written when the G is bound to its spawn record, before the
    /// G is visible to others (it runs at once, or is published on a run
    /// queue (the queue's release store publishes it); read by anyone.
    pub(crate) goid: AtomicU64,
    // --- warm: spawn, exit, join ---
    /// The spawn record holding this goroutine's join state, if a handle existed when it
    /// started (`spawn.rs`), else null. Set when the G is bound; read by the goroutine
    /// (its result) and by goexit0, owned like `sched_sp`.
    spawn: Cell<*const super::spawn::Spawn>,
    /// The G's stack, kept for life (its home: the G lives at its top). Owned like
    /// `sched_sp`.
    stack: UnsafeCell<Option<GStack>>,
    /// Creation site (Go: `gopc`). Written at binding, before publication; read by
    /// dumps of Gs they do not own, hence atomic.
    gopc: AtomicPtr<Location<'static>>,
    /// `SpawnOpts::creator` as a pointer. Written at binding; read by dumps.
    creator: AtomicPtr<()>,
    /// Whether a panic ends only this G (`Builder::isolate_panics`). Written at binding.
    isolate: Cell<bool>,
    /// Whether this is the main goroutine of a `run` call. Written at binding.
    pub(crate) is_main: Cell<bool>,
    /// Usable size requested for this G's stack. Immutable after `malg`.
    stack_class: Cell<usize>,
    // --- cold ---
    /// Bounds of the current stack, for dumps and fault reports. Written by the owner.
    pub(crate) stack_lo: AtomicU64,
    pub(crate) stack_hi: AtomicU64,
    /// Name from `Builder::name`. Dumps read names of Gs they do not own, so it sits
    /// behind a lock, taken only when a name is set or cleared (`has_name`).
    name: std::sync::Mutex<Option<Box<str>>>,
    /// Whether `name` holds a name. Written by the G's owner.
    has_name: AtomicBool,
    /// Goroutine-local values (`gort::local!`), indexed by key id. Only the G touches them.
    pub(crate) locals: UnsafeCell<Vec<Option<Box<dyn Any>>>>,
}

// SAFETY: every field is either atomic or documented above as owned by exactly one party
// at a time (the creator before publication, then the M holding the G); ownership moves
// through the run queues' and wait queues' release/acquire edges, so no two threads touch
// an owned field concurrently. Values on a suspended stack move threads with it: a
// goroutine's closure is `Send + 'static`, and the
// `!Send` values it creates while running (e.g. an `Rc`, a `thread_local!` borrow) stay on
// its stack and are used only by it, one thread at a time; what that means for
// thread-locals is the documented policy in docs/design/thread-locals.md.
unsafe impl Sync for G {}
// SAFETY: as above.
unsafe impl Send for G {}

impl G {
    /// A fresh, `_Gidle` G with no stack.
    pub(crate) fn new() -> G {
        G {
            goid: AtomicU64::new(0),
            status: AtomicU32::new(G_IDLE),
            sched_sp: Cell::new(0),
            stack: UnsafeCell::new(None),
            stack_lo: AtomicU64::new(0),
            stack_hi: AtomicU64::new(0),
            sp_hint: AtomicUsize::new(0),
            waitreason: AtomicU8::new(0),
            gopc: AtomicPtr::new(Location::caller() as *const Location<'static> as *mut _),
            creator: AtomicPtr::new(super::proc::no_creator as *mut ()),
            name: std::sync::Mutex::new(None),
            has_name: AtomicBool::new(false),
            isolate: Cell::new(false),
            m: AtomicPtr::new(ptr::null_mut()),
            last_m: AtomicPtr::new(ptr::null_mut()),
            lockedm: AtomicPtr::new(ptr::null_mut()),
            preempt: AtomicBool::new(false),
            defer_wake: Cell::new(0),
            is_main: Cell::new(false),
            locals: UnsafeCell::new(Vec::new()),
            spawn: Cell::new(ptr::null()),
            stack_class: Cell::new(0),
        }
    }

    /// Current status.
    pub(crate) fn status(&self) -> u32 {
        self.status.load(Ordering::Acquire)
    }

    /// Changes the status from `from` to `to` (Go: proc.go `casgstatus`).
    ///
    /// Go needs a CAS because its garbage collector sets a scan bit on the status of Gs
    /// it does not own. gort has no collector: the status is only ever written by the
    /// party that owns the G at that moment (its creator, the M running it, that M's
    /// g0, or the one waker that took it off a wait queue), so a store suffices and
    /// saves two locked instructions per switch. Debug builds check the transition
    /// against Go's table and that the G really was in `from` (throwing otherwise).
    pub(crate) fn cas_status(&self, from: u32, to: u32) {
        if cfg!(debug_assertions) {
            if !legal_transition(from, to) {
                crate::throw!(
                    "casgstatus: bad transition {} -> {}",
                    status_string(from),
                    status_string(to)
                );
            }
            let cur = self.status.load(Ordering::Acquire);
            if cur != from {
                crate::throw!(
                    "casgstatus: goroutine {} is {}, want {} -> {}",
                    self.goid.load(Ordering::Relaxed),
                    status_string(cur),
                    status_string(from),
                    status_string(to)
                );
            }
        }
        // release: the new status publishes the owner's writes to readers of the status
        self.status.store(to, Ordering::Release);
    }

    /// Records why the G is about to wait.
    pub(crate) fn set_waitreason(&self, r: WaitReason) {
        self.waitreason.store(r as u8, Ordering::Relaxed);
    }

    /// The last wait reason.
    pub(crate) fn waitreason(&self) -> WaitReason {
        WaitReason::from_u8(self.waitreason.load(Ordering::Relaxed))
    }

    /// Creation site.
    pub(crate) fn gopc(&self) -> &'static Location<'static> {
        // SAFETY: only ever set from `&'static Location`s.
        unsafe { &*self.gopc.load(Ordering::Relaxed) }
    }

    /// The type name of the goroutine's function (`SpawnOpts::creator`).
    pub(crate) fn creator(&self) -> super::proc::Creator {
        super::spawn::creator_from(self.creator.load(Ordering::Relaxed))
    }

    /// Name given at spawn, if any (copied: the G may be reused meanwhile).
    pub(crate) fn name(&self) -> Option<String> {
        if !self.has_name.load(Ordering::Acquire) {
            return None;
        }
        // try_lock: a dump from a fatal path must never block
        self.name.try_lock().ok()?.as_deref().map(str::to_string)
    }

    /// Whether panics in this G are isolated.
    pub(crate) fn isolates_panics(&self) -> bool {
        self.isolate.get()
    }

    /// Initialises a dead G for a new goroutine (Go: `newproc1`), whose entry the caller
    /// set with `set_entry`; `spawn` is the record holding its join state, if it keeps one.
    ///
    /// # Safety
    /// The caller must own `self` exclusively: a `_Gdead` G taken from a free list or
    /// just allocated, not yet published.
    pub(crate) unsafe fn prepare(&self, id: Identity, spawn: Option<&'static super::spawn::Spawn>) {
        let Identity {
            goid,
            gopc,
            name,
            isolate,
            main,
            creator,
        } = id;
        debug_assert_eq!(self.status(), G_DEAD);
        if name.is_some() || self.has_name.load(Ordering::Relaxed) {
            self.has_name.store(name.is_some(), Ordering::Release);
            *self.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
        }
        self.goid.store(goid, Ordering::Relaxed); // published by the run queue's release
        self.gopc.store(
            gopc as *const Location<'static> as *mut _,
            Ordering::Relaxed,
        );
        self.creator.store(creator as *mut (), Ordering::Relaxed);
        self.isolate.set(isolate);
        self.is_main.set(main);
        self.last_m.store(std::ptr::null_mut(), Ordering::Relaxed);
        self.preempt.store(false, Ordering::Relaxed);
        self.defer_wake.set(0);
        debug_assert!(
            self.lockedm.load(Ordering::Relaxed).is_null(),
            "a dead G was still wired to an M"
        );
        self.lockedm.store(std::ptr::null_mut(), Ordering::Relaxed);
        self.waitreason.store(0, Ordering::Relaxed);
        self.spawn.set(spawn.map_or(ptr::null(), |s| s as *const _));
    }

    /// The record holding this goroutine's join state, if any (see `spawn`).
    pub(crate) fn spawn_record(&self) -> Option<&'static super::spawn::Spawn> {
        // SAFETY: records are never freed; the pointer is set from a `&'static Spawn`.
        unsafe { self.spawn.get().as_ref() }
    }

    /// Lays out the G's stack so that its first resume runs `f` (Go: the `gostartcall`
    /// part of `newproc1`). The closure is moved to the top of the stack (boxed if it is
    /// large), the context below it.
    ///
    /// # Safety
    /// The caller owns the dead G exclusively.
    pub(crate) unsafe fn set_entry<F: FnOnce() + Send + 'static>(&self, f: F) {
        if std::mem::size_of::<F>() > MAX_INLINE_CLOSURE {
            // a closure holding a big value by value: keep the stack for the goroutine
            let boxed: Box<dyn FnOnce() + Send> = Box::new(f);
            // SAFETY: as above.
            unsafe { self.place_entry(boxed) }
        } else {
            // SAFETY: as above.
            unsafe { self.place_entry(f) }
        }
    }

    /// `set_entry` for a closure that fits in `MAX_INLINE_CLOSURE`.
    ///
    /// # Safety
    /// As for `set_entry`.
    unsafe fn place_entry<F: FnOnce() + Send + 'static>(&self, f: F) {
        // SAFETY: exclusive ownership per the contract.
        let Some(stack) = (unsafe { (*self.stack.get()).as_ref() }) else {
            crate::throw!("newproc1: goroutine without a stack");
        };
        let start = stack.start();
        let align = std::mem::align_of::<F>().max(16);
        let at = (start - std::mem::size_of::<F>()) & !(align - 1);
        // SAFETY: `at` lies in the top kilobytes of the G's own stack (MAX_INLINE_CLOSURE
        // is far below the smallest stack), suitably aligned for F; nobody runs on the
        // stack (the G is dead and ours). The entry reads F back exactly once.
        unsafe { (at as *mut F).write(f) };
        // SAFETY: `at` is 16-byte aligned and the stack below it is free.
        let sp = unsafe { super::context::init(at, gentry::<F>, at) };
        self.sched_sp.set(sp);
    }

    /// Gives the dead G a stack to keep, recording its bounds.
    ///
    /// # Safety
    /// The caller owns the dead G exclusively.
    pub(crate) unsafe fn put_stack(&self, s: GStack) {
        self.stack_class.set(s.class());
        self.stack_lo.store(s.lo() as u64, Ordering::Relaxed);
        self.stack_hi.store(s.hi() as u64, Ordering::Relaxed);
        // SAFETY: exclusive ownership per the contract.
        unsafe { *self.stack.get() = Some(s) };
    }

    /// Size class of the G's stack (its home: the G lives at the top of it).
    pub(crate) fn stack_class(&self) -> usize {
        self.stack_class.get()
    }

    /// The saved stack pointer of a suspended G (0 while it runs or has no context): for
    /// walking its frames while the world is stopped (`context::call_on_suspended`).
    pub(crate) fn saved_sp(&self) -> usize {
        self.sched_sp.get()
    }

    /// Reference to the kept stack (for releasing its pages).
    ///
    /// # Safety
    /// The caller owns the dead G exclusively.
    pub(crate) unsafe fn kept_stack(&self) -> Option<&GStack> {
        // SAFETY: exclusive ownership per the contract.
        unsafe { (*self.stack.get()).as_ref() }
    }

    /// Runs the G on `m` until a goroutine of `m` switches back to g0 (Go: `gogo`, and
    /// the `mcall` that comes back), returning its request. That goroutine is `m.curg`,
    /// which is not `self` if `self` switched directly to another one (`gopark`).
    ///
    /// # Safety
    /// The caller is `m`'s g0 (on `m`'s thread), which took this G off a run queue and
    /// set it `_Grunning`, so it owns the context exclusively.
    pub(crate) unsafe fn resume(&self, m: &M) -> Switch {
        let sp = self.sched_sp.get();
        if sp == 0 {
            crate::throw!("execute: goroutine has no context");
        }
        // SAFETY: `sp` is the suspended context of this G, which we own (contract);
        // g0's own context is saved in `m.g0_sp`, which only this thread uses.
        let t = unsafe { super::context::resume(m.g0_sp.as_ptr(), sp) };
        if t == super::context::EXIT {
            return Switch::Exit;
        }
        // SAFETY: a goroutine switches to g0 only through `switch_to_g0`, whose argument
        // is a `Switch` on its (now suspended) stack that it never drops: we move it out
        // before anything can resume that goroutine.
        unsafe { ptr::read(t as *const Switch) }
    }

    /// Runs the switch into `next` (which the caller set up as running on this M),
    /// saving this G's context: `handoff` is what `next` does first (see
    /// `park::after_switch`). Returns when this G is resumed, with the resumer's handoff.
    ///
    /// # Safety
    /// Called by this G on its own stack; `next` is suspended and owned by the caller's M.
    pub(crate) unsafe fn switch_to(&self, next: &G, handoff: usize) -> usize {
        self.note_sp();
        // SAFETY: per the contract, `next.sched_sp` is a suspended context we own, and
        // ours is saved before anyone can see it.
        unsafe {
            super::context::switch_direct(self.sched_sp.as_ptr(), next.sched_sp.get(), handoff)
        }
    }

    /// After the G's function returned and it switched to g0 for good (Go: `goexit0`).
    ///
    /// # Safety
    /// Called by the M that ran the G to completion; it owns the G.
    pub(crate) unsafe fn finish(&self) {
        self.sched_sp.set(0);
        if self.has_name.swap(false, Ordering::AcqRel) {
            // the name is dropped here, on g0
            *self.name.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Asks the CPU to start loading the lines the G's resume will touch (its saved
    /// context near `sp_hint`, and the frames above it). A hint only: it cannot fault.
    #[inline]
    pub(crate) fn prefetch_stack(&self) {
        let sp = self.sp_hint.load(Ordering::Relaxed);
        if sp == 0 {
            return;
        }
        // A parked goroutine's resume returns up through its park path's frames, about
        // 1.7 KiB of stack above the saved context: ask for the first KiB of it (the
        // ring benchmark, where every resume is cold, runs ~20% faster than with the
        // 6 lines around `sp` alone; lines already cached cost next to nothing).
        #[cfg(target_arch = "x86_64")]
        {
            let mut off = -128isize;
            while off < PREFETCH_SPAN {
                let p = (sp as isize + off) as *const i8;
                // SAFETY: prefetch is a hint that never faults, whatever the address.
                unsafe { std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0) };
                off += 64;
            }
        }
    }

    /// Records roughly where the stack pointer is, for `prefetch_stack`.
    #[inline(always)]
    fn note_sp(&self) {
        let here = 0u8;
        self.sp_hint
            .store(&here as *const u8 as usize, Ordering::Relaxed);
    }

    /// Switches from the running G to its M's g0 with `req` (Go: `mcall`).
    ///
    /// Must be called by the G itself (on its own stack).
    pub(crate) fn switch_to_g0(&self, req: Switch) {
        let mp = self.m.load(Ordering::Relaxed);
        if mp.is_null() {
            crate::throw!("mcall: goroutine has no M");
        }
        // SAFETY: Ms are never freed.
        let m = unsafe { &*mp };
        debug_assert!(
            super::m::getm().is_some_and(|cur| ptr::eq(cur, m)),
            "mcall: g.m is not this thread's M"
        );
        let req = std::mem::ManuallyDrop::new(req);
        self.note_sp();
        // SAFETY: g0 of this M is suspended in `resume` (it resumed us, or a goroutine
        // that switched to us directly); it moves `req` out before anything can resume
        // this G, and `ManuallyDrop` keeps us from dropping it again.
        let t = unsafe {
            super::context::suspend_to_g0(
                self.sched_sp.as_ptr(),
                m.g0_sp.get(),
                &*req as *const Switch as usize,
            )
        };
        super::park::after_switch(t);
    }

    /// Drops the goroutine-local values. Called by the G itself before it exits.
    pub(crate) fn drop_locals(&self) {
        // Take the vector out first: a destructor may touch other locals.
        loop {
            // SAFETY: only the running G touches its locals, and it is running this code.
            let v = unsafe { std::mem::take(&mut *self.locals.get()) };
            if v.is_empty() {
                break;
            }
            drop(v);
        }
    }
}
