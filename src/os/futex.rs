//! Futex wait/wake on a 32-bit atomic (Go: os_linux.go `futexsleep`/`futexwakeup`).
//!
//! `wait` may return spuriously; every caller loops on its own condition. Under loom
//! the wait is a yield, which is exactly such a spurious return, so the models check
//! that callers tolerate it.

use crate::loom::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == val`, at most `timeout` (forever if `None`). May return early
/// for any reason.
#[cfg(all(target_os = "linux", not(loom)))]
pub(crate) fn wait(word: &AtomicU32, val: u32, timeout: Option<Duration>) {
    let ts;
    let tsp = match timeout {
        Some(d) => {
            ts = libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            };
            &ts as *const libc::timespec
        }
        None => std::ptr::null(),
    };
    // SAFETY: `word` is a live, aligned 32-bit atomic for the duration of the call; the
    // kernel only reads it. `tsp` is null or points at `ts`, alive until we return.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            tsp,
        );
    }
}

/// Wakes up to `n` threads sleeping in [`wait`] on `word`.
#[cfg(all(target_os = "linux", not(loom)))]
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is live.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n.min(i32::MAX as u32),
        );
    }
}

/// Portable fallback for non-Linux targets: a short sleep stands in for the futex (the
/// callers loop, so this is correct, only slower). Linux x86-64 is the supported target.
#[cfg(all(not(target_os = "linux"), not(loom)))]
pub(crate) fn wait(word: &AtomicU32, val: u32, timeout: Option<Duration>) {
    use std::sync::atomic::Ordering;
    if word.load(Ordering::Acquire) == val {
        std::thread::sleep(
            timeout
                .unwrap_or(Duration::from_micros(50))
                .min(Duration::from_micros(50)),
        );
    }
}

/// See the Linux version.
#[cfg(all(not(target_os = "linux"), not(loom)))]
pub(crate) fn wake(_word: &AtomicU32, _n: u32) {}

/// Loom stand-in: a futex wait may always return spuriously, so a yield is a faithful model.
#[cfg(loom)]
pub(crate) fn wait(_word: &AtomicU32, _val: u32, _timeout: Option<Duration>) {
    loom::thread::yield_now();
}

/// Loom stand-in: waking is implicit in the yield-based wait.
#[cfg(loom)]
pub(crate) fn wake(_word: &AtomicU32, _n: u32) {}
