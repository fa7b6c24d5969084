//! Parking and readying goroutines: `gopark`, `goready`, `gosched`
//! (Go: proc.go `gopark`/`park_m`, `goready`/`ready`, `Gosched`/`gosched_m`).
//!
//! # The contract of `gopark`
//!
//! `gopark(unlockf, reason)` switches the calling goroutine to its M's g0, which
//!
//! 1. sets the G `_Gwaiting` (so from now on a waker may `goready` it), then
//! 2. calls `unlockf` (if any) on g0. `unlockf` typically publishes the G on a wait
//!    queue or releases the lock that protects one. If it returns `false`, the park is
//!    cancelled: the G becomes `_Grunnable` and resumes at once, on the same M, keeping its
//!    time slice. If it returns `true` (or there is none), the M schedules something else.
//!
//! `unlockf` lives on the parked G's stack. Once it has published the G, another M may
//! resume the G, so `unlockf` must not touch anything on that stack after its publishing
//! step (return a value computed before it). It must not block or park.
//!
//! # Direct switches
//!
//! When the parking goroutine's P has a goroutine in `runnext` (the usual case on a
//! channel hand-off: the sender readied the receiver, then waits for the reply), `gopark`
//! switches straight to it instead of going through g0 and the scheduler loop, which
//! would pick that same goroutine: `unlockf` then runs on the next goroutine's stack,
//! first thing after the switch ([`after_switch`]), still after the parked G's context is
//! saved. If it cancels the park, the G goes to `runnext` (it runs when the next one
//! parks or yields) instead of resuming at once. Anything unusual (a locked thread, a
//! pending preemption, due timers, the global queue's turn, GOMAXPROCS shrinking, a next
//! goroutine wired to another thread) takes the path through g0.
//!
//! `goready(g)` makes a `_Gwaiting` G runnable: into the current P's `runnext` (so it runs
//! next and inherits the time slice), or onto the global queue from a thread without a
//! P, and then `wakep()`. Each park is matched by exactly one ready.

use super::g::{Switch, WaitReason, G, G_RUNNABLE, G_RUNNING, G_WAITING};
use super::idle::wakep;
use super::m::{getg, getm, M};
use super::p::P;
use super::schedt::SCHED;
use super::queue::runqput;
use super::spawn::Gp;
use std::sync::atomic::Ordering;

/// What a goroutine that switched directly to another asks of it (see the module docs).
/// Lives on the switching goroutine's stack; the next one copies it out first thing.
struct Handoff {
    /// The goroutine that switched away, owned by the next goroutine until published.
    prev: &'static G,
    /// What to do with it.
    then: Then,
}

/// The second half of a direct switch, done by the goroutine switched to.
enum Then {
    /// `prev` parked (`_Gwaiting`): run its unlock function (Go: `park_m`).
    Park(Option<*mut (dyn FnMut() -> bool + 'static)>),
    /// `prev` yielded (`_Grunnable`): queue it at the tail of this P's queue (Go:
    /// `gosched_m`, with the local queue as in `schedule.rs`'s `Switch::Gosched`).
    Yield,
}

/// Parks the calling goroutine (see the module docs for the contract). `unlockf` must be
/// light: it may run on the stack of the goroutine switched to (see "Direct switches").
pub(crate) fn gopark(unlockf: Option<&mut dyn FnMut() -> bool>, reason: WaitReason) {
    let Some(g) = getg() else {
        crate::throw!("gopark: not on a goroutine");
    };
    gopark_g(g, unlockf, reason);
}

/// `gopark` for an unlock function that may need a deep stack (arming a timer can start
/// a thread): it always runs on g0, never on the next goroutine's stack.
pub(crate) fn gopark_on_g0(unlockf: &mut dyn FnMut() -> bool, reason: WaitReason) {
    let Some(g) = getg() else {
        crate::throw!("gopark: not on a goroutine");
    };
    g.set_waitreason(reason);
    g.defer_wake.set(0);
    // SAFETY: g0 calls the function while this G is suspended in `switch_to_g0`, so the
    // borrow is live throughout.
    let f = unsafe { erase_unlockf(unlockf) };
    g.switch_to_g0(Switch::Park(Some(f)));
}

/// Erases the lifetime of an unlock function, for passing it to whoever runs it while the
/// parking goroutine is suspended.
///
/// # Safety
/// The pointer may be used only while the borrow is live: until the parking goroutine
/// resumes (it is suspended for as long as g0 or the next goroutine runs the function).
unsafe fn erase_unlockf<'a>(
    f: &'a mut (dyn FnMut() -> bool + 'a),
) -> *mut (dyn FnMut() -> bool + 'static) {
    let p: *mut (dyn FnMut() -> bool + 'a) = f;
    // SAFETY: only the lifetime changes (same pointer and vtable); the caller keeps the
    // borrow live for every use (contract above).
    unsafe {
        std::mem::transmute::<*mut (dyn FnMut() -> bool + 'a), *mut (dyn FnMut() -> bool + 'static)>(
            p,
        )
    }
}

/// `gopark` for a caller that already knows it is goroutine `g` (saves a thread-local
/// read on hot paths).
pub(crate) fn gopark_g(
    g: &'static G,
    unlockf: Option<&mut dyn FnMut() -> bool>,
    reason: WaitReason,
) {
    debug_assert!(
        getg().is_some_and(|cur| std::ptr::eq(cur, g)),
        "gopark_g: not g"
    );
    g.set_waitreason(reason);
    // whatever this G readied into runnext runs on this P now (directly or through
    // schedule): no wake-up needed for it
    g.defer_wake.set(0);
    // SAFETY: g0 (after `switch_to_g0`) or the goroutine switched to (after
    // `switch_to`, in `after_switch`) calls the function while this G is suspended below,
    // so the borrow is live for every use.
    let f = unlockf.map(|f| unsafe { erase_unlockf(f) });
    if let Some((m, p, next, _)) = direct_target(g, true) {
        // Go: park_m's first half, then execute(next, inheritTime=true)
        super::p::bump(&p.parks);
        switch_directly(g, G_WAITING, m, p, next, true, Then::Park(f));
        return;
    }
    g.switch_to_g0(Switch::Park(f));
}

/// Whether nothing calls for a trip through the scheduler when `g` (running on `m`,
/// which holds `p`) switches away (see the module docs).
#[inline]
fn may_switch_directly(g: &'static G, m: &'static M, p: &'static P) -> bool {
    if m.is_run && run_main_done(m) {
        // the `run` caller's thread checks whether its main goroutine is done only when
        // it gets back to its scheduler loop: a chain of direct switches would keep the
        // `run` call from returning (until a preemption broke the chain)
        return false;
    }
    m.lockedg.load(Ordering::Relaxed).is_null()
        && !g.preempt.load(Ordering::Relaxed)
        && !p.global_first.get()
        // not the global queue's turn (schedule's 1-in-61 check)
        && (!p.schedtick.load(Ordering::Relaxed).is_multiple_of(61)
            || SCHED.runqsize.load(Ordering::Relaxed) == 0)
        && !crate::config::settings().debug.migrate
        && !super::procresize::must_retire(p)
        && !crate::sched::timers::timers_due(p)
}

/// Whether the main goroutine of the `run` call on run M `m` has finished.
#[cold]
fn run_main_done(m: &'static M) -> bool {
    // SAFETY: Gs are never freed; `run` frees its main goroutine's G only after it
    // joined it, and keeps the handle (so the record) until then.
    match unsafe { m.run_main.load(Ordering::Relaxed).as_ref() } {
        Some(main) => main.spawn_record().is_some_and(|s| s.join.is_dead()),
        None => false,
    }
}

/// The goroutine `g` (running, about to park or yield) may switch directly to the next
/// goroutine of its P, when nothing calls for a trip through the scheduler (see the module
/// docs): the one in `runnext` (a park: `runnext_only`), or the next one `schedule` would
/// take from the local queue (`runnext` first, inheriting the time slice). Returns the M,
/// the P, the goroutine (taken off the queue) and whether it came from `runnext`.
#[inline]
fn direct_target(
    g: &'static G,
    runnext_only: bool,
) -> Option<(&'static M, &'static P, &'static G, bool)> {
    // SAFETY: Ms are never freed; g.m is the M running us (set before it resumed us).
    let m = unsafe { g.m.load(Ordering::Relaxed).as_ref()? };
    let p = m.p()?;
    if !may_switch_directly(g, m, p) {
        return None;
    }
    let (next, inherit) = if runnext_only {
        (p.runq.take_runnext()?, true)
    } else {
        p.runq.get()?
    };
    // SAFETY: the queue only holds pointers made by `Gp::raw`; a goroutine that has not
    // run yet gets its G and stack here (spawn.rs; gfget is light enough for a
    // goroutine's stack: newproc runs it there too).
    let next = super::spawn::bind(p, unsafe { Gp::from_raw(next) });
    if !next.lockedm.load(Ordering::Relaxed).is_null() {
        // it must run on its own thread: put it back (into runnext if it came from there,
        // which is empty now, so it returns to exactly where it was; a head G goes to the
        // tail, a rare reordering) and let the scheduler hand it over
        let _ = runqput(p, next.into(), inherit);
        return None;
    }
    Some((m, p, next, inherit))
}

/// Switches from running goroutine `g` (which becomes `status`) straight to `next`, taken
/// off `p`'s queue by [`direct_target`]; `next` does `then` with `g` first thing
/// (`after_switch`). Returns when `g` is resumed. (From the `start_running` below until
/// the switch, `m.curg` already names `next` while we still run on `g`'s stack: a fault
/// report in that window would name the wrong goroutine.)
#[inline]
fn switch_directly(
    g: &'static G,
    status: u32,
    m: &'static M,
    p: &'static P,
    next: &'static G,
    inherit: bool,
    then: Then,
) {
    g.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    g.cas_status(G_RUNNING, status);
    super::schedule::start_running(m, p, next, inherit);
    let h = Handoff { prev: g, then };
    // SAFETY: we are `g`, on its stack; `next` came off our P's queue and is suspended
    // (made running on this M above); `h` stays valid until `next` copies it out in
    // `after_switch`, before anything can publish or resume us.
    let t = unsafe { g.switch_to(next, &h as *const Handoff as usize) };
    after_switch(t);
}

/// What a goroutine does first when resumed by a switch (from g0: `handoff` is 0;
/// directly from a parking goroutine: its [`Handoff`]): runs the parked goroutine's
/// unlock function, as g0's `park_m` would have.
pub(crate) fn after_switch(handoff: usize) {
    if handoff == 0 {
        return;
    }
    // SAFETY: a non-zero handoff is the address of a `Handoff` on the stack of the
    // goroutine that switched to us; that goroutine stays suspended until its unlock
    // function publishes it, and we copy the record out before calling that.
    let h = unsafe { std::ptr::read(handoff as *const Handoff) };
    match h.then {
        Then::Park(Some(f)) => {
            // SAFETY: gopark's contract: the function lives on the parked G's stack, which
            // nobody resumes until the function published the G.
            if !unsafe { (*f)() } {
                // cancelled: the goroutine is runnable again; it runs next
                h.prev.cas_status(G_WAITING, G_RUNNABLE);
                let _ = put_runnable(getm().and_then(|m| m.p()), h.prev.into(), getg());
            }
        }
        Then::Park(None) => {}
        Then::Yield => match getm().and_then(|m| m.p()) {
            Some(p) => {
                let _ = runqput(p, h.prev.into(), false);
            }
            None => crate::throw!("gosched: direct switch without a P"),
        },
    }
}

/// Makes a parked goroutine runnable (see the module docs).
pub(crate) fn goready(gp: &'static G) {
    goready_by(gp, getg());
}

/// `goready` by a caller that knows whether it is a goroutine (`me`: itself) or not
/// (`None`), which saves a thread-local read when it is one.
#[inline]
pub(crate) fn goready_by(gp: &'static G, me: Option<&'static G>) {
    let p = match me {
        // SAFETY: Ms are never freed; a running goroutine's `m` is the M running it.
        Some(me) => unsafe { me.m.load(Ordering::Relaxed).as_ref() }.and_then(|m| m.p()),
        None => getm().and_then(|m| m.p()),
    };
    gp.prefetch_stack();
    let lm = gp.lockedm.load(std::sync::atomic::Ordering::Relaxed);
    if !lm.is_null() {
        // SAFETY: Ms are leaked; a parked G's lockedm does not change until it runs.
        if super::lockos::ready_locked(gp, unsafe { &*lm }) {
            return;
        }
    }
    gp.cas_status(G_WAITING, G_RUNNABLE);
    let _ = put_runnable(p, gp.into(), me);
}

/// Queues runnable `gp` to run next: in `p`'s `runnext` (the caller's P), or on the
/// global queue from a thread without a P; then makes sure an M will look for it
/// (`goready` and `newproc`). `me` is the calling goroutine (`None` on g0 or a plain
/// thread). Returns whether `p`'s local queue overflowed into the global queue.
///
/// # Deferred wake-ups
///
/// Go wakes an idle P on every ready (`wakep`), so that it can steal the goroutine if the
/// readier keeps running. Most readiers park soon after (a channel hand-off, then waiting
/// for the reply), and their P runs the readied goroutine itself (`gopark`'s direct
/// switch). The wake-up is then wasted, and not cheap: a futex wake of a sleeping thread
/// costs the readier 10-40 us on a VM, and the woken M spins and steals. So when the
/// goroutine goes into an empty `runnext` (the ring did not grow), gort defers the wake:
/// the readier's `defer_wake` is set, and if it is still running at its second runtime
/// entry after that (`preempt_point_g`: channel operations, `select!`, spawns, contended
/// locks, `preempt_point`), or enters a blocking call, the wake happens then; its park or
/// yield cancels it. On g0 (timers, unlock functions) nothing is deferred: g0 schedules
/// next, and its P runs the goroutine. Sysmon wakes a P for a `runnext` that sits
/// unchanged through a whole sysmon interval (a readier computing without gort calls);
/// a deferral nudges sysmon out of a long sleep, so that takes about a millisecond.
/// A goroutine that displaces another one from `runnext` into the ring wakes at once, as
/// in Go.
#[inline]
pub(crate) fn put_runnable(
    p: Option<&'static super::p::P>,
    gp: Gp,
    me: Option<&'static G>,
) -> bool {
    match p {
        Some(p) => {
            let (spilled, displaced) = super::queue::runqput_next(p, gp);
            if displaced {
                // the runnext swap was a SeqCst RMW: no extra fence needed
                super::idle::wakep_after_seqcst_put();
            } else {
                if let Some(me) = me {
                    me.defer_wake.set(1);
                }
                p.defer_seq.store(
                    p.defer_seq.load(Ordering::Relaxed).wrapping_add(1),
                    Ordering::Relaxed,
                );
                // after the SeqCst runnext swap: end a long sysmon sleep (its protocol);
                // not from g0, which schedules the goroutine next anyway (timers, unlock
                // functions: nothing is deferred there)
                if me.is_some() {
                    super::sysmon::nudge();
                }
            }
            spilled
        }
        None => {
            SCHED.lock().globrunqput(gp);
            wakep();
            false
        }
    }
}

/// A cheap check for long-running loops: if the scheduler asked the calling goroutine to
/// give way (it has held its processor for 10 ms, Go's time slice), yields; otherwise
/// returns at once. Go preempts such loops by itself; a Rust library cannot interrupt
/// code safely, so place this in loops that may run long (channel operations, spawning
/// and other gort calls check it too).
///
/// ```
/// gort::run(|| {
///     let mut x = 0u64;
///     for i in 0..10_000_000u64 {
///         x = x.wrapping_add(i);
///         if i % 4096 == 0 {
///             gort::preempt_point();
///         }
///     }
///     assert!(x > 0);
/// });
/// ```
#[inline]
pub fn preempt_point() {
    preempt_point_g(getg());
}

/// `preempt_point` for a caller that knows whether it is a goroutine (`g`: itself).
#[inline]
pub(crate) fn preempt_point_g(g: Option<&'static G>) {
    if let Some(g) = g {
        if super::sysmon::take_preempt_request(g) {
            g.switch_to_g0(Switch::Preempt);
        }
        // a wake-up deferred (see `put_runnable`) since the gort call before this one
        // happens now
        match g.defer_wake.get() {
            0 => {}
            1 => g.defer_wake.set(2),
            _ => {
                // SAFETY: Ms are never freed; a running G's `m` is the M running it.
                let m = unsafe { g.m.load(Ordering::Relaxed).as_ref() };
                if let Some(p) = m.and_then(|m| m.p()) {
                    flush_deferred_wake(g, p);
                }
            }
        }
    }
}

/// Carries out the wake-up running goroutine `g` deferred, if any, if the goroutine it
/// readied still waits in `p`'s `runnext` (`p`: the P running `g`).
#[cold]
pub(crate) fn flush_deferred_wake(g: &'static G, p: &'static P) {
    if g.defer_wake.replace(0) != 0 && p.runq.has_runnext() {
        wakep();
    }
}

/// For loops inside the runtime that wake many goroutines (a `WaitGroup` reaching zero,
/// a channel closed under many waiters, `notify_all`): every 64th iteration, honour a
/// preempt request, so that waking a million waiters does not hold the P for a time slice
/// and more (sysmon would take it for a hog).
#[inline]
pub(crate) fn preempt_every(i: u32) {
    if i % 64 == 63 {
        preempt_point();
    }
}

/// Yields the processor: the goroutine goes to the back of its P's run queue and runs
/// again after the goroutines queued there (Go: `runtime.Gosched`, which uses the global
/// queue; gort uses the local one, like Go's internal `goyield`, which avoids a global
/// lock per yield; other Ps can still steal the goroutine). On a plain thread, yields
/// the thread.
pub fn gosched() {
    let Some(g) = getg() else {
        std::thread::yield_now();
        return;
    };
    // what this G readied into runnext runs before it again: no wake-up needed for it
    g.defer_wake.set(0);
    if let Some((m, p, next, inherit)) = direct_target(g, false) {
        // Go: gosched_m's first half, then execute(next); the G is queued by `next`
        // (`after_switch`), once its context is saved
        switch_directly(g, G_RUNNABLE, m, p, next, inherit, Then::Yield);
        return;
    }
    g.switch_to_g0(Switch::Gosched);
}

/// Runs `f` on the current M's g0 stack and returns (Go: `systemstack`). Used for work
/// that needs more stack than a goroutine has (symbolising a backtrace). On a plain
/// thread or g0 it just calls `f`.
pub(crate) fn systemstack(f: &mut dyn FnMut()) {
    match getg() {
        Some(g) => {
            let p: *mut (dyn FnMut() + '_) = f;
            // SAFETY: only the lifetime is erased; g0 calls the function while this G is
            // suspended in `switch_to_g0`, so the borrow is live throughout.
            let p = unsafe {
                std::mem::transmute::<*mut (dyn FnMut() + '_), *mut (dyn FnMut() + 'static)>(p)
            };
            g.switch_to_g0(Switch::Call(p));
        }
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// gopark's contract: the unlock function runs on g0 after the G is _Gwaiting;
    /// returning false cancels the park and the G resumes at once, on the same M.
    #[test]
    fn park_cancelled_by_unlock_function_resumes_at_once() {
        crate::run(|| {
            let me = getg().unwrap();
            let calls = AtomicUsize::new(0);
            let m_before = getm().unwrap().id;
            let mut unlock = || {
                assert!(getg().is_none(), "runs on g0");
                assert_eq!(me.status(), G_WAITING, "status changes before the callback");
                calls.fetch_add(1, Ordering::SeqCst);
                false
            };
            gopark(Some(&mut unlock), WaitReason::Zero);
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert_eq!(getm().unwrap().id, m_before, "resumed on the same M");
            assert_eq!(me.status(), crate::sched::g::G_RUNNING);
        });
    }

    /// A park published by its unlock function is matched by exactly one goready.
    #[test]
    fn park_then_ready_from_another_thread() {
        crate::run(|| {
            let me = getg().unwrap();
            let slot = std::sync::Arc::new(std::sync::Mutex::new(None::<&'static G>));
            let s2 = slot.clone();
            let waker = std::thread::spawn(move || loop {
                if let Some(g) = s2.lock().unwrap().take() {
                    goready(g);
                    return;
                }
                std::thread::yield_now();
            });
            let mut publish = || {
                *slot.lock().unwrap() = Some(me);
                true
            };
            gopark(Some(&mut publish), WaitReason::Zero);
            waker.join().unwrap();
        });
    }
}
