//! Goroutines: [`go`], [`Builder`], [`JoinHandle`], [`goexit`], [`goid`],
//! [`num_goroutine`], [`num_cpu`].

use crate::config::settings;
use crate::sched::g::{WaitReason, G};
use crate::sched::join::THREAD_WAITER;
use crate::sched::m::getg;
use crate::sched::park::gopark;
use crate::sched::proc::{newproc, SpawnOpts};
use crate::sched::schedt::SCHED;
use crate::sched::spawn::{self, Spawn};
use std::any::Any;
use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::Ordering;

/// The payload of the unwinding started by [`goexit`]; `join` on a goroutine that
/// called `goexit` returns `Err` holding this.
#[derive(Debug)]
pub struct Goexit;

/// Runs a goroutine's function and stores its result in its spawn record, for its join
/// handle (or drops it, if the handle was gone when the goroutine started). Panics follow
/// the panic settings: an isolated panic is stored; otherwise the panic hook has already
/// ended the process (or, if a user hook replaced ours, the panic is reported here).
/// Goroutine-locals are dropped first, so a finished join implies they are gone.
pub(crate) fn run_body<T, F: FnOnce() -> T>(f: F) {
    let Some(g) = getg() else {
        crate::throw!("run_body: goroutine body outside a goroutine");
    };
    let r = catch_unwind(AssertUnwindSafe(f));
    if let Err(e) = &r {
        let isolated = e.is::<Goexit>() || settings().panic_isolation || g.isolates_panics();
        if !isolated {
            crate::debug::panic_escaped(e.as_ref());
        }
    }
    g.drop_locals();
    match g.spawn_record() {
        // SAFETY: called once, by this goroutine, with the type its JoinHandle<T> expects.
        Some(s) => unsafe { s.join.put::<std::thread::Result<T>>(r) },
        None => drop(r), // the handle was gone before we started (join rule 1)
    }
}

/// An owned permission to join a goroutine (`std::thread::JoinHandle`'s shape).
/// Dropping it detaches the goroutine. It allocates nothing of its own: the result waits
/// in the goroutine's spawn record, which is not reused until the handle is gone.
pub struct JoinHandle<T> {
    s: &'static Spawn,
    id: u64,
    _result: PhantomData<T>,
}

// SAFETY: the handle only moves a `T` out of the record (join rule 1 picks one owner), so it
// may be sent or shared wherever `T` may be sent.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the atomic state (`is_finished`, `id`).
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn from_parts(s: &'static Spawn, id: u64) -> JoinHandle<T> {
        JoinHandle {
            s,
            id,
            _result: PhantomData,
        }
    }

    /// Blocks the calling goroutine (parks it) or thread until the G is dead.
    fn wait(&self) {
        let j = &self.s.join;
        if j.is_dead() {
            return;
        }
        match getg() {
            Some(me) => {
                let me = me as *const G as usize;
                let mut publish = || j.register(me);
                gopark(Some(&mut publish), WaitReason::Join);
                debug_assert!(j.is_dead());
            }
            None => {
                if j.register(THREAD_WAITER) {
                    // acquire; pairs with wake_joiner's release store (sched/join.rs)
                    while j.futex.load(Ordering::Acquire) == 0 {
                        crate::os::futex::wait(&j.futex, 0, None);
                    }
                }
            }
        }
    }

    /// Waits for the goroutine to finish and returns its value. On a goroutine this
    /// parks only the goroutine; on a plain thread it blocks the thread.
    ///
    /// `Err` holds the payload of an isolated panic (see
    /// [`Builder::isolate_panics`]), or [`Goexit`] if the goroutine called [`goexit`].
    pub fn join(self) -> Result<T, Box<dyn Any + Send + 'static>> {
        self.wait();
        let this = ManuallyDrop::new(self);
        let mut r = None;
        let dead = this.s.join.release_handle(|| {
            // SAFETY: release_handle calls this only with RESULT set, while HANDLE still
            // is: rule 1 gives the result to us; the goroutine stored a
            // `thread::Result<T>`.
            r = Some(unsafe { this.s.join.take::<std::thread::Result<T>>() })
        });
        debug_assert!(dead, "join: woken before the goroutine finished");
        if dead {
            spawn::free_here(this.s);
        }
        match r {
            Some(r) => r,
            None => crate::throw!("join: woken before the goroutine stored its result"),
        }
    }

    /// The goroutine's id (as [`goid`] returns inside it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the goroutine has finished.
    pub fn is_finished(&self) -> bool {
        self.s.join.is_dead()
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let dead = self.s.join.release_handle(|| {
            // SAFETY: release_handle calls this only with RESULT set, while HANDLE still
            // is: rule 1 gives the result to us; the goroutine stored a
            // `thread::Result<T>`.
            drop(unsafe { self.s.join.take::<std::thread::Result<T>>() })
        });
        if dead {
            spawn::free_here(self.s);
        }
    }
}

/// Starts a goroutine running `f` (Go's `go f()`).
///
/// The new goroutine runs next on the current P (it takes the P's `runnext` slot), and
/// other Ps steal it if the caller keeps running. From a plain thread it goes to the
/// global run queue.
///
/// # Panics
/// If no stack can be allocated for it where the stack is allocated at spawn (a
/// non-default stack size; `mprotect` guard pages on kernels before 6.13, an `RLIMIT_AS`
/// limit, or strict overcommit). [`Builder::spawn`] returns that as an error instead.
/// Elsewhere a goroutine gets its stack when it first runs, and failing then (an
/// exhausted address space) is a fatal error, as running out of memory is in Go.
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
    let opts = SpawnOpts {
        name: name.map(String::into_boxed_str),
        stack_size,
        isolate,
        main: false,
        creator: std::any::type_name::<F>,
    };
    let (s, id, _) = newproc(move || run_body(f), opts, gopc)?;
    Ok(JoinHandle::from_parts(s, id))
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
    SCHED.gcount().max(0) as usize
}

/// Number of usable CPUs (`std::thread::available_parallelism`, so cgroup CPU quotas
/// and affinity masks count; Go learnt the quota part only in 1.25). Like Go's
/// `runtime.NumCPU`, it is read once, at the first call (the runtime's spin decisions
/// ask for it on hot paths, and the query reads cgroup files).
///
/// ```
/// assert!(gort::num_cpu() >= 1);
/// ```
pub fn num_cpu() -> usize {
    crate::os::num_cpu()
}
