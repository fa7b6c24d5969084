//! Goroutines: [`go`], [`Builder`], [`JoinHandle`], [`goexit`], [`goid`],
//! [`num_goroutine`], [`num_cpu`].

use crate::config::settings;
use crate::sched::g::{Complete, Exit, WaitReason, G};
use crate::sched::m::getg;
use crate::sched::park::{gopark, goready};
use crate::sched::proc::{newproc, SpawnOpts};
use crate::sched::schedt::SCHED;
use std::any::Any;
use std::cell::UnsafeCell;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

/// The payload of the unwinding started by [`goexit`]; `join` on a goroutine that
/// called `goexit` returns `Err` holding this.
#[derive(Debug)]
pub struct Goexit;

/// `state` values of a [`Packet`]; any other value is a `*const G` waiting in `join`.
const RUNNING: usize = 0;
const THREAD_WAITING: usize = 1;
const DONE: usize = 2;

/// A goroutine's result, shared by the goroutine and its [`JoinHandle`].
///
/// Protocol: the goroutine writes `result`, then (on g0, once it is dead) `complete`
/// swaps `state` to `DONE` (release) and wakes the waiter recorded there. A joiner reads
/// `result` only after seeing `DONE` (acquire).
pub(crate) struct Packet<T> {
    /// `RUNNING`, `THREAD_WAITING`, `DONE`, or the waiting G's address.
    state: AtomicUsize,
    /// Futex word for a thread joiner: 0 running, 1 done.
    done32: AtomicU32,
    /// Written once by the goroutine before completion; read once by the joiner after.
    result: UnsafeCell<Option<std::thread::Result<T>>>,
}

// SAFETY: `result` is written by exactly one goroutine before `complete` and read by
// exactly one joiner after observing DONE; the release/acquire pair on `state` orders
// them. T: Send because the value moves between threads.
unsafe impl<T: Send> Sync for Packet<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Packet<T> {}

impl<T> Packet<T> {
    pub(crate) fn new() -> Packet<T> {
        Packet {
            state: AtomicUsize::new(RUNNING),
            done32: AtomicU32::new(0),
            result: UnsafeCell::new(None),
        }
    }

    fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE // acquire; pairs with the swap in complete
    }

    /// Blocks the calling goroutine (parks it) or thread until the goroutine completed.
    fn wait(&self) {
        if self.is_done() {
            return;
        }
        match getg() {
            Some(g) => {
                let me = g as *const G as usize;
                let mut publish = || {
                    self.state
                        .compare_exchange(RUNNING, me, Ordering::AcqRel, Ordering::Acquire) // release: our G is published to complete()
                        .is_ok()
                };
                gopark(Some(&mut publish), WaitReason::Join);
                debug_assert!(self.is_done());
            }
            None => {
                let _ = self.state.compare_exchange(
                    RUNNING,
                    THREAD_WAITING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                while self.done32.load(Ordering::Acquire) == 0 {
                    crate::os::futex::wait(&self.done32, 0, None);
                }
            }
        }
    }
}

impl<T: Send> Complete for Packet<T> {
    fn complete(&self) {
        self.done32.store(1, Ordering::Release); // release; pairs with the thread joiner's acquire
        match self.state.swap(DONE, Ordering::AcqRel) {
            RUNNING => {}
            THREAD_WAITING => crate::os::futex::wake(&self.done32, u32::MAX),
            DONE => crate::throw!("join: goroutine completed twice"),
            // SAFETY: any other value is the address of a leaked G parked in `wait`.
            g => goready(unsafe { &*(g as *const G) }),
        }
    }
}

/// Runs a goroutine's function and stores its result in `pk` (on the goroutine's
/// stack). Panics follow the panic settings: an isolated panic is stored; otherwise the
/// panic hook has already ended the process (or, if a user hook replaced ours, the panic
/// is reported here).
pub(crate) fn run_body<T, F: FnOnce() -> T>(f: F, pk: &Packet<T>) {
    let r = catch_unwind(AssertUnwindSafe(f));
    let g = getg();
    if let Err(e) = &r {
        let isolated = e.is::<Goexit>()
            || settings().panic_isolation
            || g.is_some_and(|g| g.isolates_panics());
        if !isolated {
            crate::debug::panic_escaped(e.as_ref());
        }
    }
    // SAFETY: only this goroutine writes the result, before completion (Packet protocol).
    unsafe { *pk.result.get() = Some(r) };
    if let Some(g) = g {
        g.drop_locals();
    }
}

/// An owned permission to join a goroutine (`std::thread::JoinHandle`'s shape).
/// Dropping it detaches the goroutine.
pub struct JoinHandle<T> {
    packet: Arc<Packet<T>>,
    id: u64,
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn from_parts(packet: Arc<Packet<T>>, id: u64) -> JoinHandle<T> {
        JoinHandle { packet, id }
    }

    /// Waits for the goroutine to finish and returns its value. On a goroutine this
    /// parks only the goroutine; on a plain thread it blocks the thread.
    ///
    /// `Err` holds the payload of an isolated panic (see
    /// [`Builder::isolate_panics`]), or [`Goexit`] if the goroutine called [`goexit`].
    pub fn join(self) -> Result<T, Box<dyn Any + Send + 'static>> {
        self.packet.wait();
        // SAFETY: DONE was observed in `wait` (acquire), so the goroutine's write of the
        // result happened before, and we are the only reader (join consumes the handle).
        let r = unsafe { (*self.packet.result.get()).take() };
        r.expect("join: goroutine finished without a result")
    }

    /// The goroutine's id (as [`goid`] returns inside it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the goroutine has finished.
    pub fn is_finished(&self) -> bool {
        self.packet.is_done()
    }
}

/// Starts a goroutine running `f` (Go's `go f()`).
///
/// The new goroutine runs next on the current P (it takes the P's `runnext` slot), and
/// other Ps steal it if the caller keeps running. From a plain thread it goes to the
/// global run queue.
///
/// # Panics
/// If no stack can be allocated for it (address space exhausted). [`Builder::spawn`]
/// returns that as an error instead.
///
/// ```
/// gort::run(|| {
///     let h = gort::go(|| "hello from a goroutine");
///     assert_eq!(h.join().unwrap(), "hello from a goroutine");
/// });
/// ```
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let gopc = Location::caller();
    spawn_with(f, None, None, false, gopc)
        .unwrap_or_else(|e| panic!("go: failed to spawn goroutine: {e}"))
}

fn spawn_with<F, T>(
    f: F,
    name: Option<String>,
    stack_size: Option<usize>,
    isolate: bool,
    gopc: &'static Location<'static>,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let stack_size = match stack_size {
        Some(b) => crate::stack::round_size(b)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        None => settings().stack_size,
    };
    let packet: Arc<Packet<T>> = Arc::new(Packet::new());
    let pk = packet.clone();
    let body = move || -> Exit {
        run_body(f, &pk);
        Some(pk)
    };
    let opts = SpawnOpts {
        name: name.map(String::into_boxed_str),
        stack_size,
        isolate,
    };
    let id = newproc(body, opts, gopc)?;
    Ok(JoinHandle::from_parts(packet, id))
}

/// Starts a goroutine: `go!(move || ...)` or `go!{ ... }` (a block run as a `move`
/// closure). Returns its [`JoinHandle`].
///
/// ```
/// gort::run(|| {
///     let x = 20;
///     let a = gort::go!(move || x + 1);
///     let b = gort::go! { x * 2 };
///     assert_eq!(a.join().unwrap() + b.join().unwrap(), 61);
/// });
/// ```
#[macro_export]
macro_rules! go {
    (move || $($body:tt)*) => { $crate::go(move || $($body)*) };
    (|| $($body:tt)*) => { $crate::go(|| $($body)*) };
    ($($body:tt)*) => { $crate::go(move || { $($body)* }) };
}

/// Configures a goroutine before starting it (`std::thread::Builder`'s shape).
///
/// ```
/// gort::run(|| {
///     let h = gort::Builder::new()
///         .name("worker")
///         .stack_size(256 * 1024)
///         .spawn(|| gort::goid())
///         .expect("spawn");
///     assert!(h.join().unwrap() > 0);
/// });
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    isolate: bool,
}

impl Builder {
    /// A builder with the defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine (shown in goroutine dumps).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack size in bytes, rounded up to whole pages. Out of range
    /// ([`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE)..=[`MAX_STACK_SIZE`](crate::MAX_STACK_SIZE))
    /// makes `spawn` fail with `InvalidInput`.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// With `true`, a panic in this goroutine ends only it, and `join` returns the panic
    /// as `Err` (`std::thread` behaviour) instead of ending the process (Go's).
    pub fn isolate_panics(mut self, on: bool) -> Builder {
        self.isolate = on;
        self
    }

    /// Starts the goroutine.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_with(
            f,
            self.name,
            self.stack_size,
            self.isolate,
            Location::caller(),
        )
    }
}

/// Ends the calling goroutine, running the destructors of the values on its stack
/// (Go's `runtime.Goexit`). Its [`JoinHandle::join`] returns `Err` holding [`Goexit`].
///
/// # Panics
/// If called outside a goroutine.
pub fn goexit() -> ! {
    if getg().is_none() {
        panic!("gort::goexit called outside a goroutine");
    }
    std::panic::resume_unwind(Box::new(Goexit))
}

/// The calling goroutine's id (main = 1), or 0 outside the runtime.
pub fn goid() -> u64 {
    getg().map_or(0, |g| g.goid.load(Ordering::Relaxed))
}

/// Number of goroutines that exist now (Go's `runtime.NumGoroutine`).
pub fn num_goroutine() -> usize {
    SCHED.ngoroutines.load(Ordering::Relaxed).max(0) as usize
}

/// Number of usable CPUs (`std::thread::available_parallelism`, so cgroup CPU quotas
/// and affinity masks count; Go learnt the quota part only in 1.25).
pub fn num_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
