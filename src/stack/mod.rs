//! Goroutine stacks and signal stacks: the only home of `mmap`/`madvise`/`mprotect` in gort
//! (Go: stack.go `stackalloc`/`stackfree`, `stackpool`, `stackcache`).
//!
//! # Layout
//!
//! Stacks are carved out of large slabs reserved with one `mmap(MAP_NORESERVE)` each, so
//! a million goroutines cost a few hundred memory mappings, not two million (the kernel
//! caps a process at `vm.max_map_count` = 65530 by default: that is what stops `may` near
//! 32k coroutines). Each stack is `stride = GUARD + usable` bytes; its lowest page is the
//! guard:
//!
//! ```text
//!  slab start                                                         slab end
//!  | guard | usable stack 0 ... top0 | guard | usable stack 1 ... top1 | ...
//!    ^ a fault here is "stack overflow"      stacks grow down from topN
//! ```
//!
//! Pages are committed by the kernel on first touch only, so an idle goroutine costs the
//! pages it touched (one or two). Guards are installed with
//! `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13), which adds no mapping. On older kernels
//! the fallback is `mprotect(PROT_NONE)`, which splits the mapping: two VMAs per stack,
//! so at most ~32k goroutines exist at once under the default `vm.max_map_count`
//! ([`guard_mode`] and `gort::stats()` say which mode is in use).
//!
//! # Reuse
//!
//! A G lives at the top of its own stack and keeps it for life (Go's `gFree` lists with
//! stacks), so the common path touches no system call; Gs with non-default stack sizes
//! wait in their own global list (`sched.gfree.other`). When Gs pile up in
//! the global free list after a burst, [`release`] gives back the pages below a small
//! watermark near the top of each stack (`MADV_DONTNEED`), so a burst does not pin its
//! memory forever.

use std::io;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Default usable stack size of a goroutine: 64 KiB.
///
/// Go starts goroutines at 2 KiB and grows them by copying; Rust cannot move stacks
/// (references into them would dangle), so a gort stack has a fixed size. The size is
/// reserved address space, not memory: only touched pages are committed, so a goroutine
/// that uses 3 KiB costs one page whatever the size. 64 KiB is enough for ordinary Rust
/// code (formatting, collections, I/O), keeps page-table overhead at ~128 B per live
/// goroutine (32 stacks share one page-table page), and 1,000,000 goroutines reserve
/// ~68 GB of the 128 TB address space. Code that recurses deeply or puts big arrays on
/// the stack asks for more with `Builder::stack_size` or `Config::stack_size`; running
/// past the end hits the guard page and ends the process with `fatal error: stack
/// overflow`, never silent corruption.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;
/// Smallest usable stack size accepted: 16 KiB.
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest usable stack size accepted: 1 GiB (Go's maximum stack on 64-bit).
pub const MAX_STACK_SIZE: usize = 1 << 30;
/// Bytes kept committed at the top of a stack by [`release`].
pub(crate) const RELEASE_KEEP: usize = 16 * 1024;

const MAX_SLABS: usize = 8192;
const SLAB_BYTES: usize = 1 << 30;

/// How guard pages are installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardMode {
    /// `madvise(MADV_GUARD_INSTALL)`: no extra mapping per stack.
    Madvise,
    /// `mprotect(PROT_NONE)`: two mappings per stack, so about `vm.max_map_count / 2`
    /// goroutines can be alive at once.
    Mprotect,
}

/// 0 = unknown yet, 1 = madvise, 2 = mprotect.
static GUARD_MODE: AtomicU8 = AtomicU8::new(0);

/// The guard mode in use (decided at the first stack allocation).
pub fn guard_mode() -> GuardMode {
    match GUARD_MODE.load(Ordering::Relaxed) {
        2 => GuardMode::Mprotect,
        _ => GuardMode::Madvise,
    }
}

/// Whether goroutines may get their stacks when they first run rather than at spawn
/// (`sched/spawn.rs`, "Eager starts"): only where a default-size stack can fail for
/// nothing but an exhausted address space, so that failing late (a fatal error) is as
/// unlikely as Go's out-of-memory. Not with `mprotect` guards (the map count limits live
/// stacks), an `RLIMIT_AS` limit, or strict overcommit (`vm.overcommit_memory` = 2, where
/// even `MAP_NORESERVE` slabs count against the commit limit).
pub(crate) fn late_binding_ok() -> bool {
    /// 0 = not looked yet, 1 = the limits allow it, 2 = they do not.
    static LIMITS: AtomicU8 = AtomicU8::new(0);
    if GUARD_MODE.load(Ordering::Relaxed) != 1 {
        // mprotect guards, or not known yet (no stack allocated so far: the first spawn
        // allocates one and finds out)
        return false;
    }
    match LIMITS.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = limits_allow_late_binding();
            LIMITS.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

#[cold]
fn limits_allow_late_binding() -> bool {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass; no other effect.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) };
    if r != 0 || rl.rlim_cur != libc::RLIM_INFINITY {
        return false;
    }
    #[cfg(target_os = "linux")]
    if std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|v| v.trim() == "2") {
        return false;
    }
    true
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 { p as usize } else { 4096 };
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// Rounds a requested usable size to whole pages, or says why it is not acceptable.
pub(crate) fn round_size(bytes: usize) -> Result<usize, String> {
    if bytes < MIN_STACK_SIZE {
        return Err(format!(
            "stack size {bytes} is below the minimum of {MIN_STACK_SIZE} bytes"
        ));
    }
    if bytes > MAX_STACK_SIZE {
        return Err(format!(
            "stack size {bytes} is above the maximum of {MAX_STACK_SIZE} bytes"
        ));
    }
    let page = page_size();
    Ok(bytes.div_ceil(page) * page)
}

/// One goroutine stack: `[bottom, bottom + page)` is the guard, `top` the highest address
/// the coroutine may use (the G descriptor lives just above it, see [`alloc_with_header`]).
#[derive(Debug)]
pub(crate) struct GStack {
    top: usize,
    bottom: usize,
    /// The usable size that was requested (the size class).
    class: usize,
}

impl GStack {
    /// The requested usable size (size class) of this stack.
    pub(crate) fn class(&self) -> usize {
        self.class
    }
    /// Lowest usable address.
    pub(crate) fn lo(&self) -> usize {
        self.bottom + page_size()
    }
    /// Highest address (the initial stack pointer).
    pub(crate) fn hi(&self) -> usize {
        self.top
    }
}

impl GStack {
    /// Where a goroutine's frames start: the top, lowered by the stack's colour (16-byte
    /// aligned; the stack stays mapped for the life of the process, since slabs are never
    /// unmapped).
    pub(crate) fn start(&self) -> usize {
        self.top - colour(self.top)
    }
}

/// Offset of a stack's starting point below its top, varied per stack ("colouring").
///
/// Stacks are a multiple of the page size apart, so without it the hot top of every
/// stack falls on the same cache sets, and switching among many goroutines thrashes
/// those sets. Shifting each start by a multiple of 64 bytes (a cache line) within the
/// first kilobyte spreads them over 16 sets.
fn colour(top: usize) -> usize {
    let idx = top / page_size();
    (idx.wrapping_mul(7) % 16) * 64
}

/// A slab's address range and stride, readable from the SIGSEGV handler without locks.
struct SlabRec {
    start: AtomicUsize,
    end: AtomicUsize,
    stride: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_REC: SlabRec = SlabRec {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    stride: AtomicUsize::new(0),
};
/// Slab registry. Entries `< NSLABS` are complete; appended under `ALLOC`'s lock.
static SLABS: [SlabRec; MAX_SLABS] = [EMPTY_REC; MAX_SLABS];
/// Number of published entries in `SLABS` (release on publish, acquire on read).
static NSLABS: AtomicUsize = AtomicUsize::new(0);

/// Per-size state: the slab being carved.
struct SizeClass {
    usable: usize,
    stride: usize,
    /// Next unused address in the current slab, and its end.
    next: usize,
    end: usize,
}

/// Allocator state. Lock order: taken after `sched.gfree`, never while holding `sched.lock`.
static ALLOC: Mutex<Vec<SizeClass>> = Mutex::new(Vec::new());

/// Counters for `stats()`: bytes reserved in slabs, and stacks handed out.
pub(crate) static RESERVED_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Stacks carved from slabs so far.
pub(crate) static STACKS_CARVED: AtomicUsize = AtomicUsize::new(0);

/// Allocates a stack with `usable` bytes (already rounded by [`round_size`]) and reserves
/// `header` bytes at its very top (64-byte aligned) for the goroutine's descriptor, so a
/// parked goroutine's G and its top frames share one page. Returns the stack below the
/// header and the header's address.
pub(crate) fn alloc_with_header(usable: usize, header: usize) -> io::Result<(GStack, usize)> {
    let s = alloc(usable)?;
    let h = s.top - header.div_ceil(64) * 64;
    Ok((
        GStack {
            top: h,
            bottom: s.bottom,
            class: s.class,
        },
        h,
    ))
}

/// Allocates a stack with `usable` bytes (already rounded by [`round_size`]).
fn alloc(usable: usize) -> io::Result<GStack> {
    let page = page_size();
    let mut classes = ALLOC.lock().unwrap_or_else(|e| e.into_inner());
    let idx = match classes.iter().position(|c| c.usable == usable) {
        Some(i) => i,
        None => {
            classes.push(SizeClass {
                usable,
                stride: usable + page,
                next: 0,
                end: 0,
            });
            classes.len() - 1
        }
    };
    let class = &mut classes[idx];
    if class.next + class.stride > class.end {
        let (start, end) = new_slab(class.stride)?;
        class.next = start;
        class.end = end;
    }
    let bottom = class.next;
    class.next += class.stride;
    drop(classes);
    install_guard(bottom)?;
    STACKS_CARVED.fetch_add(1, Ordering::Relaxed);
    Ok(GStack {
        top: bottom + usable + page,
        bottom,
        class: usable,
    })
}

/// Maps `len` bytes for a thread's alternate signal stack (leaked with the thread).
pub(crate) fn alloc_signal_stack(len: usize) -> Option<usize> {
    // SAFETY: a fresh private anonymous mapping; nothing else is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

/// Gives back the pages of `s` below the top [`RELEASE_KEEP`] bytes (`MADV_DONTNEED`).
/// The stack stays valid: the pages read as zero and are committed again on touch.
pub(crate) fn release(s: &GStack) {
    let keep_from = s.top.saturating_sub(RELEASE_KEEP);
    let lo = s.lo();
    if keep_from <= lo {
        return;
    }
    // SAFETY: [lo, keep_from) lies inside this stack's usable range, which no running code
    // uses (the caller holds a dead G's stack); MADV_DONTNEED on private anonymous memory
    // only drops its contents.
    unsafe {
        libc::madvise(lo as *mut libc::c_void, keep_from - lo, libc::MADV_DONTNEED);
    }
}

/// Reserves a new slab for stacks of `stride` bytes; returns its range.
fn new_slab(stride: usize) -> io::Result<(usize, usize)> {
    let n = NSLABS.load(Ordering::Relaxed);
    if n >= MAX_SLABS {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            "goroutine stack address space exhausted",
        ));
    }
    let count = (SLAB_BYTES / stride).clamp(16, 16384);
    let len = count * stride;
    // SAFETY: a fresh anonymous private mapping at an address the kernel picks; no
    // existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    #[cfg(target_os = "linux")]
    // SAFETY: advice on the mapping we just created; it only affects huge-page use (a
    // transparent huge page would commit 2 MiB of stacks on one touch).
    unsafe {
        libc::madvise(p, len, libc::MADV_NOHUGEPAGE);
    }
    let start = p as usize;
    let rec = &SLABS[n];
    rec.start.store(start, Ordering::Relaxed);
    rec.end.store(start + len, Ordering::Relaxed);
    rec.stride.store(stride, Ordering::Relaxed);
    NSLABS.store(n + 1, Ordering::Release); // release; pairs with the acquire in `guard_hit`
    RESERVED_BYTES.fetch_add(len, Ordering::Relaxed);
    Ok((start, start + len))
}

#[cfg(target_os = "linux")]
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Makes the page at `bottom` a guard page.
fn install_guard(bottom: usize) -> io::Result<()> {
    let page = page_size();
    #[cfg(target_os = "linux")]
    if GUARD_MODE.load(Ordering::Relaxed) != 2 {
        // SAFETY: `bottom` is the page-aligned first page of a stack we just carved out of
        // our own slab; nothing uses it.
        let r = unsafe { libc::madvise(bottom as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
        if r == 0 {
            GUARD_MODE.store(1, Ordering::Relaxed);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if GUARD_MODE.load(Ordering::Relaxed) == 1 || err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
        GUARD_MODE.store(2, Ordering::Relaxed); // the kernel predates 6.13
    }
    GUARD_MODE.store(2, Ordering::Relaxed);
    // SAFETY: as above; PROT_NONE on our own unused page.
    let r = unsafe { libc::mprotect(bottom as *mut libc::c_void, page, libc::PROT_NONE) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// If `addr` is inside a guard page of a goroutine stack, returns that stack's usable
/// size. Async-signal-safe: atomics only.
pub(crate) fn guard_hit(addr: usize) -> Option<usize> {
    let n = NSLABS.load(Ordering::Acquire); // acquire; pairs with the release in `new_slab`
    let page = page_size();
    for rec in &SLABS[..n] {
        let start = rec.start.load(Ordering::Relaxed);
        let end = rec.end.load(Ordering::Relaxed);
        if addr >= start && addr < end {
            let stride = rec.stride.load(Ordering::Relaxed);
            let off = (addr - start) % stride;
            return (off < page).then_some(stride - page);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_and_rounded() {
        assert!(round_size(1024).is_err());
        assert!(round_size(MAX_STACK_SIZE + 1).is_err());
        assert_eq!(round_size(MIN_STACK_SIZE + 1).unwrap() % page_size(), 0);
    }

    #[test]
    fn carve_write_release() {
        let (s, header) = alloc_with_header(round_size(64 * 1024).unwrap(), 300).unwrap();
        assert_eq!(s.class(), 64 * 1024);
        assert_eq!(header % 64, 0);
        assert_eq!(s.hi(), header);
        assert!(header + 300 <= s.bottom + page_size() + 64 * 1024);
        let len = s.hi() - s.lo();
        // SAFETY: [lo, hi) is this stack's usable memory, owned by the test.
        unsafe { std::ptr::write_bytes(s.lo() as *mut u8, 0xAB, len) };
        assert!(
            guard_hit(s.lo() - 1).is_some(),
            "guard page below the stack"
        );
        assert!(guard_hit(s.lo()).is_none());
        release(&s);
        // SAFETY: still our memory; released pages read back as zero.
        let low = unsafe { *(s.lo() as *const u8) };
        assert_eq!(low, 0, "released page reads as zero");
        // SAFETY: the kept top part is intact.
        let high = unsafe { *((s.hi() - 1) as *const u8) };
        assert_eq!(high, 0xAB);
    }
}
