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

#[cfg(not(loom))]
mod api;
#[cfg(not(loom))]
pub mod chan;
#[cfg(not(loom))]
mod config;
#[cfg(not(loom))]
#[doc(hidden)]
pub mod debug;
#[cfg(not(loom))]
mod local;
mod loom;
#[cfg(all(test, loom))]
mod models;
mod os;
#[cfg(not(loom))]
mod runtime;
mod sched;
#[cfg(not(loom))]
mod stack;
#[cfg(not(loom))]
mod stats;
#[cfg(not(loom))]
pub mod sync;
#[cfg(not(loom))]
pub mod time;

#[cfg(loom)]
#[doc(hidden)]
pub mod debug {
    /// Under loom a runtime invariant violation is a test failure.
    #[macro_export]
    macro_rules! throw {
        ($($arg:tt)*) => { panic!("fatal error: {}", format_args!($($arg)*)) };
    }
}

#[cfg(not(loom))]
pub use api::{go, goexit, goid, num_cpu, num_goroutine, Builder, Goexit, JoinHandle};
#[cfg(not(loom))]
pub use config::{Config, ConfigError, Traceback, DEFAULT_MAX_THREADS};
#[cfg(not(loom))]
pub use debug::stack;
#[cfg(not(loom))]
pub use gort_macros::main;
#[cfg(not(loom))]
pub use local::LocalKey;
#[cfg(not(loom))]
pub use runtime::run;
#[cfg(not(loom))]
pub use sched::lockos::{lock_os_counts, lock_os_thread, unlock_os_thread};
#[cfg(not(loom))]
pub use sched::park::{gosched, preempt_point};
#[cfg(not(loom))]
pub use sched::procresize::gomaxprocs;
#[cfg(not(loom))]
pub use sched::schedt::MAX_PROCS;
#[cfg(not(loom))]
pub use sched::syscall::blocking;
#[cfg(not(loom))]
pub use stack::{GuardMode, DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};
#[cfg(not(loom))]
pub use stats::{stats, SchedStats};
