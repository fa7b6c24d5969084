//! `run` (Go: `runtime.main`); the start-up it needs is `sched::init`.

use crate::api::JoinHandle;
use crate::config::settings;
use crate::sched::idle::{acquirep, new_run_m};
use crate::sched::m::{getg, getm, setm, M};
use crate::sched::schedt::SCHED;
use std::cell::Cell;
use std::sync::atomic::Ordering;

thread_local! {
    /// The M this thread used for an earlier `run`, reused by later ones.
    static RUN_M: Cell<Option<&'static M>> = const { Cell::new(None) };
}

/// Starts the runtime if needed and runs `f` as a main goroutine, on the calling thread
/// while there is work for it, returning its value (Go: `runtime.main`).
///
/// The calling thread becomes an M: it takes an idle P (if one is free), runs `f` as a
/// goroutine on it, and keeps scheduling goroutines until `f` is done or its P runs out
/// of work; then it waits for `f`. The first `run` of a process that created no
/// goroutine before runs on m0, and its goroutine is goroutine 1.
///
/// Unlike Go's `main`, returning from `run` does not end the other goroutines: they keep
/// running on the runtime's threads. `#[gort::main]` returns from `fn main`, which ends
/// the process as in Go. Called from a goroutine, `run` just calls `f`.
///
/// A panic in `f` follows the panic settings: by default the process exits with status 2
/// after printing the panic (Go's semantics); with
/// [`Config::panic_isolation`](crate::Config::panic_isolation) it is resumed on the
/// calling thread.
///
/// ```
/// let sum = gort::run(|| {
///     let hs: Vec<_> = (1..=10u64).map(|i| gort::go(move || i * i)).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
/// });
/// assert_eq!(sum, 385);
/// ```
#[track_caller]
pub fn run<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if getg().is_some() {
        return f();
    }
    let gopc = std::panic::Location::caller();
    crate::sched::init::ensure_init();
    let (m, prev) = enter();
    let (handle, g) = spawn_main(m, f, gopc);
    if m.p().is_some() {
        let done = || handle.is_finished();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::sched::schedule::schedule_main(m, g, &done)
        }));
        if r.is_err() {
            // the scheduler itself panicked on this thread: runtime state is unknown
            crate::throw!("panic in the scheduler on a run thread");
        }
    }
    let r = wait_main(m, g, handle);
    setm(prev);
    match r {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// The calling thread becomes this thread's run M (made on its first `run`), with an
/// idle P if one is free. Returns the M and what the thread was before.
fn enter() -> (&'static M, Option<&'static M>) {
    let m = RUN_M.with(|c| match c.get() {
        Some(m) => m,
        None => {
            let m = new_run_m();
            c.set(Some(m));
            m
        }
    });
    let prev = getm();
    setm(Some(m));
    SCHED.nrun_active.fetch_add(1, Ordering::SeqCst); // SeqCst: no race to close (checkdead reads it under sched.lock; missing it skips one check); Release would do
    m.record_tid();
    crate::os::signal::minit();
    if let Some(p) = SCHED.lock().pidleget() {
        acquirep(m, p);
    }
    (m, prev)
}

/// Creates `f`'s main goroutine, started eagerly (it has its G at once, not queued:
/// `schedule_main` runs it first).
fn spawn_main<T, F>(
    m: &'static M,
    f: F,
    gopc: &'static std::panic::Location<'static>,
) -> (JoinHandle<T>, &'static crate::sched::g::G)
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let opts = crate::sched::proc::SpawnOpts {
        name: Some("main".into()),
        stack_size: settings().stack_size,
        isolate: false,
        main: true,
        creator: crate::sched::proc::no_creator,
    };
    let body: Box<dyn FnOnce() + Send + '_> = Box::new(move || crate::api::run_body(f));
    // SAFETY: only the lifetime is erased. `run` does not return before the main
    // goroutine has finished (it joins the handle in wait_main, and nothing on the way
    // unwinds: failures throw), so everything `f` borrows outlives the goroutine.
    let body = unsafe {
        std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Box<dyn FnOnce() + Send + 'static>>(
            body,
        )
    };
    let (s, goid, g) = match crate::sched::proc::newproc(body, opts, gopc) {
        Ok((s, goid, Some(g))) => (s, goid, g),
        Ok(_) => crate::throw!("run: the main goroutine did not start eagerly"),
        Err(e) => crate::throw!("run: cannot create the main goroutine: {e}"),
    };
    // only this goroutine may lock the caller's thread (see lock_os_thread)
    m.run_main
        .store(g as *const crate::sched::g::G as *mut _, Ordering::Relaxed);
    (JoinHandle::from_parts(s, goid), g)
}

/// After the run M left the scheduler: waits for the main goroutine (counting as idle for
/// deadlock detection), frees its G and leaves the run-M counts.
fn wait_main<T>(
    m: &'static M,
    g: &'static crate::sched::g::G,
    handle: JoinHandle<T>,
) -> std::thread::Result<T> {
    if !handle.is_finished() {
        // about to wait: this M counts as idle for deadlock detection
        let l = SCHED.lock();
        SCHED.nrun_waiting.fetch_add(1, Ordering::SeqCst); // SeqCst: no race to close (under sched.lock, as checkdead is)
        crate::sched::checkdead::checkdead(&l);
        drop(l);
    } else {
        SCHED.nrun_waiting.fetch_add(1, Ordering::SeqCst); // SeqCst: no StoreLoad pair (main is done: goexit0's nrun_finishing counts us); Release would do
    }
    // for traces: this M sleeps until its main goroutine is done
    m.blocked.store(true, Ordering::Relaxed);
    let r = handle.join();
    m.blocked.store(false, Ordering::Relaxed);
    // the main G was kept for us (goexit0): nobody refers to it any more
    m.run_main.store(std::ptr::null_mut(), Ordering::Relaxed);
    crate::sched::proc::free_g(g);
    SCHED.nrun_waiting.fetch_sub(1, Ordering::SeqCst); // SeqCst: drops before nrun_finishing; pairs with checkdead, which must read finishing first
    SCHED.nrun_finishing.fetch_sub(1, Ordering::SeqCst); // SeqCst: after nrun_waiting's drop (a reader seeing this sees that); Release would do
    SCHED.nrun_active.fetch_sub(1, Ordering::SeqCst); // SeqCst: no StoreLoad pair (checkdead runs under sched.lock); Release would do
    r
}
