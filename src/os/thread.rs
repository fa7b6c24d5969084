//! Starting OS threads for Ms (Go: `newosproc`).

use std::io;

/// Stack of an M's own thread (its g0): the scheduler, unlock functions, and panic and
/// dump printing run here, so it is larger than a goroutine's (Go uses 8 KiB g0 stacks,
/// but Go's scheduler is tiny and its printing is frame-free).
const G0_STACK: usize = 1 << 20;

/// Starts a thread named `gort-m<id>` running `f`.
pub(crate) fn spawn_m(id: i64, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(format!("gort-m{id}"))
        .stack_size(G0_STACK)
        .spawn(f)
        .map(|_| ())
}
