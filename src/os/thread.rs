//! Starting OS threads for Ms (Go: `newosproc`).

use std::io;

/// Stack of an M's own thread (its g0): the scheduler, unlock functions, and panic and
/// dump printing run here, so it is larger than a goroutine's (Go uses 8 KiB g0 stacks,
/// but Go's scheduler is tiny and its printing is frame-free).
const G0_STACK: usize = 1 << 20;

/// Sets the calling thread's timer slack to 1 ns, so that timed futex waits (the idle M
/// waiting for the next timer) wake on time instead of up to 50 µs late.
pub(crate) fn precise_timers() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Starts a thread named `gort-m<id>` running `f`.
pub(crate) fn spawn_m(id: i64, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(format!("gort-m{id}"))
        .stack_size(G0_STACK)
        .spawn(f)
        .map(|_| ())
}
