//! Operating-system glue: futexes, notes (one-shot sleep/wake-up), thread start and
//! signals. Linux is the target; other Unix systems build with portable fallbacks.

pub(crate) mod futex;
pub(crate) mod lock;
pub(crate) mod note;
pub(crate) mod signal;
pub(crate) mod thread;

/// The number of CPUs this process may use (the affinity mask; cgroup quotas through
/// `available_parallelism`), read once (Go: `getproccount`). The public face is
/// `gort::num_cpu`.
pub(crate) fn num_cpu() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NCPU: AtomicUsize = AtomicUsize::new(0);
    let n = NCPU.load(Ordering::Relaxed); // a cache: every thread computes the same value
    if n != 0 {
        return n;
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    NCPU.store(n, Ordering::Relaxed);
    n
}
