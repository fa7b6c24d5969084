//! Creating and finishing goroutines: `newproc`, `malg`, `gfget`/`gfput`, `gdestroy`
//! (Go: proc.go).

use super::g::{G, G_DEAD, G_IDLE, G_RUNNING};
use super::m::getm;
use super::p::bump;
use super::p::P;
use super::schedt::{lock, SCHED};
use super::spawn::{self, Gp, Spawn};
use crate::stack;
use std::io;
use std::panic::Location;
use std::sync::atomic::Ordering;

/// Go: gfput spills to the global list at this many cached Gs...
const GFREE_SPILL_AT: usize = 64;
/// ...down to this many; gfget refills to this many.
const GFREE_KEEP: usize = 32;
/// Dead Gs kept with warm stacks in the global list; beyond this, idle Ms give back the
/// extra stacks' pages.
const GFREE_HOT_KEEP: usize = 256;
/// Most stacks one idle M releases before sleeping (bounds the work per idle transition).
const SCAVENGE_BATCH: usize = 1024;

/// What `newproc` needs besides the function.
pub(crate) struct SpawnOpts {
    pub(crate) name: Option<Box<str>>,
    /// Usable stack bytes, already rounded by `stack::round_size`.
    pub(crate) stack_size: usize,
    pub(crate) isolate: bool,
    /// The main goroutine of a `run` call.
    pub(crate) main: bool,
    /// The type name of the user's function (`std::any::type_name::<F>`): for a closure,
    /// it names the function that spawned the goroutine (`debug::creator_name`).
    pub(crate) creator: Creator,
}

/// See [`SpawnOpts::creator`].
pub(crate) type Creator = fn() -> &'static str;

/// The creator of a goroutine that has none to show (a `run` call's main goroutine).
pub(crate) fn no_creator() -> &'static str {
    ""
}

/// Creates a goroutine running `f` and makes it runnable (Go: `newproc` + `newproc1`).
/// On a goroutine it goes into the current P's `runnext`, so it runs next; from a plain
/// thread it goes to the global queue. What is queued is a spawn record (`spawn.rs`): the
/// goroutine gets its G and stack when it first runs, unless it starts eagerly (returned
/// G; see spawn.rs, "Eager starts"). Returns the record (whose join state says a handle
/// exists), the goroutine's id, and its G if it has one already.
pub(crate) fn newproc<F>(
    f: F,
    opts: SpawnOpts,
    gopc: &'static Location<'static>,
) -> io::Result<(&'static Spawn, u64, Option<&'static G>)>
where
    F: FnOnce() + Send + 'static,
{
    crate::sched::init::ensure_init();
    // the spawning goroutine (None on a plain thread); spawning is a runtime entry:
    // honour sysmon's request to give way first (before reading our P, which a yield may
    // change, and before queueing the new goroutine, so that this call does not also age
    // the wake-up it defers for it: see `park::put_runnable`)
    let m0 = getm();
    let me = m0.and_then(|m| m.curg());
    super::park::preempt_point_g(me);
    let p = match me {
        // SAFETY: Ms are never freed; a running goroutine's `m` is the M running it.
        Some(g) => unsafe { g.m.load(Ordering::Relaxed).as_ref() }.and_then(|m| m.p()),
        None => m0.and_then(|m| m.p()),
    };
    let main = opts.main;
    let eager = main
        || opts.stack_size != crate::config::settings().stack_size
        || !stack::late_binding_ok();
    let gp = if eager {
        Some(gfget(p, opts.stack_size)?)
    } else {
        None
    };
    let goid = match p {
        Some(p) => p.next_goid(&SCHED.goidgen),
        None => SCHED.goidgen.fetch_add(1, Ordering::Relaxed) + 1,
    };
    let s = spawn::get(p);
    s.fill(f, goid, gopc, opts);
    match p {
        Some(p) => bump(&p.created),
        None => {
            SCHED.ngoroutines.fetch_add(1, Ordering::Relaxed);
        }
    }
    let entry = match gp {
        Some(g) => {
            // SAFETY: gfget returned a dead G that we own; the record is ours, filled.
            unsafe { spawn::adopt(p, g, s) };
            Gp::from(g)
        }
        None => {
            spawn::count_queued(p);
            Gp::spawn(s)
        }
    };
    if main && p.is_some() {
        // A `run` call's main goroutine on a thread that holds a P: the caller runs it
        // itself, first (`schedule::schedule_main`), as Go's m0 runs main. Queued, it
        // could be stolen by a spinning M before the caller gets to schedule.
        return Ok((s, goid, gp));
    }
    let spilled = super::park::put_runnable(p, entry, me);
    if spilled && me.is_some() {
        // The local queue overflowed: this goroutine is spawning faster than the Ps run
        // what it spawns. Give way to the queue once (the spawner goes to its tail), so
        // a spawning loop does not pile up unbounded live goroutines in the global queue.
        super::park::gosched();
    }
    Ok((s, goid, gp))
}

/// Allocates a new G at the top of a new stack of `size` usable bytes
/// (Go: `malg`, `allgadd`).
fn malg(size: usize) -> io::Result<&'static G> {
    let (stack, at) = stack::alloc_with_header(size, std::mem::size_of::<G>())?;
    let gp = at as *mut G;
    debug_assert_eq!(at % std::mem::align_of::<G>(), 0);
    // SAFETY: `at` is the 64-byte aligned header reserved at the top of a stack nobody
    // else uses; it is writable and stays mapped forever (slabs are never unmapped), so
    // the G written there is valid for 'static. The coroutine stack ends below it.
    let g: &'static G = unsafe {
        gp.write(G::new());
        &*gp
    };
    // SAFETY: the G is new and ours.
    unsafe { g.put_stack(stack) };
    g.cas_status(G_IDLE, G_DEAD);
    lock(&SCHED.allgs).push(g);
    Ok(g)
}

/// Gets a dead G whose stack has `size` usable bytes: for the default size from `p`'s
/// cache, refilled from the global list; other sizes from the global list of odd-sized
/// Gs; else a new one (Go: `gfget`).
pub(crate) fn gfget(p: Option<&'static P>, size: usize) -> io::Result<&'static G> {
    if size != crate::config::settings().stack_size {
        let mut gl = lock(&SCHED.gfree);
        if let Some(i) = gl.other.iter().position(|g| g.stack_class() == size) {
            return Ok(gl.other.swap_remove(i));
        }
        drop(gl);
        return malg(size);
    }
    let cached = match p {
        Some(p) => {
            // SAFETY: we run on the M that owns p.
            let cache = unsafe { p.gfree() };
            if cache.is_empty() {
                let mut gl = lock(&SCHED.gfree);
                while cache.len() < GFREE_KEEP {
                    match gl.pop() {
                        Some(g) => cache.push(g),
                        None => break,
                    }
                }
            }
            cache.pop()
        }
        None => {
            let mut gl = lock(&SCHED.gfree);
            gl.pop()
        }
    };
    match cached {
        Some(g) => Ok(g),
        None => malg(size),
    }
}

/// Puts a dead G on `p`'s free list, spilling to the global list (Go: `gfput`).
/// Odd-sized Gs go straight to the global list of those.
fn gfput(p: &'static P, gp: &'static G) {
    if gp.stack_class() != crate::config::settings().stack_size {
        lock(&SCHED.gfree).other.push(gp);
        return;
    }
    // SAFETY: we run on the M that owns p.
    let cache = unsafe { p.gfree() };
    cache.push(gp);
    if cache.len() >= GFREE_SPILL_AT {
        let mut gl = lock(&SCHED.gfree);
        while cache.len() > GFREE_KEEP {
            let Some(g) = cache.pop() else {
                crate::throw!("gfput: cache emptied under its owner");
            };
            gl.hot.push(g);
        }
    }
}

/// The G's body returned: mark it dead, wake its joiner, free its spawn record if the
/// handle is gone (join rule 2), and cache the G for reuse (Go: `gdestroy`, the part of
/// `goexit0` after unwiring; `schedule::goexit0` calls it). A `run` call's main G is freed
/// by `run` once it has joined it. Runs on g0 of the M that ran the G, which holds `p`.
pub(crate) fn gdestroy(p: &'static P, gp: &'static G) {
    // SAFETY: the coroutine returned on this M; we own the G.
    unsafe { gp.finish() };
    let main = gp.is_main.get();
    if main {
        // its run caller is about to return to its own code (see checkdead)
        SCHED.nrun_finishing.fetch_add(1, Ordering::SeqCst);
    }
    gp.cas_status(G_RUNNING, G_DEAD);
    bump(&p.exited);
    if let Some(s) = gp.spawn_record() {
        let (waiter, handle) = s.join.mark_dead();
        super::join::wake_joiner(&s.join, waiter);
        if !handle {
            spawn::free(Some(p), s);
        }
    }
    if !main {
        gfput(p, gp);
    }
}

/// Frees a dead G that was kept after its exit (a `run` call's main G): into the current
/// P's cache if the caller holds one, else the global list.
pub(crate) fn free_g(gp: &'static G) {
    debug_assert_eq!(gp.status(), G_DEAD);
    match getm().and_then(|m| m.p()) {
        Some(p) => gfput(p, gp),
        None if gp.stack_class() == crate::config::settings().stack_size => {
            lock(&SCHED.gfree).hot.push(gp)
        }
        None => lock(&SCHED.gfree).other.push(gp),
    }
}

/// Gives back the stack pages of dead Gs piled up in the global free list beyond a warm
/// reserve (called by Ms about to sleep, when a burst is over). Bounded per call.
pub(crate) fn scavenge_gfree() {
    let batch: Vec<&'static G> = {
        let Ok(mut gl) = SCHED.gfree.try_lock() else {
            return;
        };
        if gl.hot.len() <= GFREE_HOT_KEEP {
            return;
        }
        let n = (gl.hot.len() - GFREE_HOT_KEEP).min(SCAVENGE_BATCH);
        // the oldest entries are the coldest
        gl.hot.drain(..n).collect()
    };
    for &g in &batch {
        // SAFETY: the Gs are dead and, out of every list, owned by us until pushed back.
        if let Some(s) = unsafe { g.kept_stack() } {
            stack::release(s);
        }
    }
    SCHED
        .counters
        .stack_releases
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    lock(&SCHED.gfree).cold.extend(batch);
}
