//! The one import path for the atomics and threads used by the lock-free structures
//! (the run queue and notes). Under `cfg(loom)` they come from `loom`, so `loom` can
//! model-check every interleaving; otherwise from `std`.
//!
//! Only `sched::runq` and `os::note` use this facade: they are the parts with loom
//! models. The rest of the runtime lives in `static`s and uses `std` directly.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU32};
