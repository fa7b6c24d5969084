//! `throw!`: the runtime's report of a state that cannot happen (Go: panic.go `throw`).
//!
//! This module is a leaf of the layering (see `HACKING.md`): anything in the crate,
//! down to the futex lock and the notes, may throw without depending on the scheduler.
//! A throw writes `fatal error: <what>` to stderr, then hands over to the fatal hook the
//! runtime registers when it starts ([`set_fatal_hook`]): that hook prints the
//! scheduler trace and the goroutines and exits with status 2 (or aborts, per
//! `GORT_TRACEBACK`). Before the runtime has started, or if the hook itself throws, the
//! process aborts right after the message. Under `cfg(loom)` a throw is a panic, so a
//! model that reaches an impossible state fails as a test.

use std::fmt;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(loom))]
use std::sync::OnceLock;

/// Reports an impossible runtime state and ends the process (Go: `throw`).
/// Usage: `throw!("fn_name: what")`.
#[doc(hidden)]
#[macro_export]
macro_rules! throw {
    ($($arg:tt)*) => { $crate::throw::throw_impl(format_args!($($arg)*)) };
}

/// What runs after a throw's message: prints whatever the runtime adds (trace, dump) and
/// ends the process. It must not return.
pub(crate) type FatalHook = fn() -> !;

/// The registered hook; empty until the runtime starts. Set once at start-up, read by a
/// throwing thread (`OnceLock` orders the two).
#[cfg(not(loom))]
static HOOK: OnceLock<FatalHook> = OnceLock::new();

/// Throws already under way: a second one (the hook failed, or two threads broke at
/// once) must not run the hook again.
#[cfg(not(loom))]
static THROWING: AtomicU8 = AtomicU8::new(0);

/// Registers the hook that finishes every later throw. Called once by the runtime's
/// start-up (`sched::init`); a later registration is ignored.
#[cfg(not(loom))]
pub(crate) fn set_fatal_hook(hook: FatalHook) {
    let _ = HOOK.set(hook);
}

/// Body of [`throw!`].
#[doc(hidden)]
#[cold]
#[inline(never)]
#[cfg(not(loom))]
pub fn throw_impl(args: fmt::Arguments<'_>) -> ! {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("fatal error: {args}\n").as_bytes());
    let first = THROWING.fetch_add(1, Ordering::AcqRel) == 0; // only the first throw runs the hook
    if let (true, Some(hook)) = (first, HOOK.get()) {
        hook()
    }
    std::process::abort()
}

/// Body of [`throw!`] under loom: a panic, so the model run reports it.
#[doc(hidden)]
#[cold]
#[cfg(loom)]
pub fn throw_impl(args: fmt::Arguments<'_>) -> ! {
    panic!("fatal error: {args}")
}
