//! # gort: Go's goroutine runtime, in Rust
//!
//! Millions of cheap goroutines written as plain blocking code (no `async`), scheduled
//! M:N over a few OS threads by Go's G-M-P design: per-P run queues with `runnext`, a
//! global queue, work stealing and spinning Ms.
//!
//! ```
//! gort::run(|| {
//!     let handles: Vec<_> = (0..1000u64).map(|i| gort::go(move || i * 2)).collect();
//!     let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//!     assert_eq!(sum, 999_000);
//! });
//! ```
//!
//! Goroutines migrate between OS threads: see [`local!`] for goroutine-local storage and
//! what `thread_local!` means inside a goroutine. Design notes are in `docs/design/`.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]
// Under loom only the lock-free parts with models are built (the run queue, notes, the
// runtime lock, and the leaves they stand on); the rest of the runtime lives in `static`s
// that loom's atomics cannot initialise. Items only part of that build uses are not dead.
#![cfg_attr(loom, allow(dead_code))]

/// Declares items that exist only in the real build, not under `cfg(loom)`.
macro_rules! not_loom {
    ($($item:item)*) => { $( #[cfg(not(loom))] $item )* };
}

// Leaves of the layering (HACKING.md): they name nothing above them.
mod config;
mod loom;
mod os;
mod stack;
#[doc(hidden)]
pub mod throw;

// The scheduler (under loom: the run queue only).
mod sched;

#[cfg(all(test, loom))]
mod models;

// The rest of the runtime and the public API. (`not_loom!` cannot declare these modules:
// macros they `macro_export` would then not be reachable by path.)
#[cfg(not(loom))]
mod api;
#[cfg(not(loom))]
pub mod chan;
#[cfg(not(loom))]
#[doc(hidden)]
pub mod debug;
#[cfg(not(loom))]
mod local;
#[cfg(not(loom))]
mod runtime;
#[cfg(not(loom))]
mod stats;
#[cfg(not(loom))]
pub mod sync;
#[cfg(not(loom))]
pub mod time;

not_loom! {
    pub use api::{go, goexit, goid, num_cpu, num_goroutine, Builder, Goexit, JoinHandle};
    pub use config::{Config, ConfigError, Traceback, DEFAULT_MAX_THREADS, MAX_PROCS};
    pub use debug::stack;
    pub use gort_macros::main;
    pub use local::LocalKey;
    pub use runtime::run;
    pub use sched::lockos::{lock_os_counts, lock_os_thread, unlock_os_thread};
    pub use sched::park::{gosched, preempt_point};
    pub use sched::procresize::gomaxprocs;
    pub use sched::syscall::blocking;
    pub use stack::{GuardMode, DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};
    pub use stats::{stats, SchedStats};
}
