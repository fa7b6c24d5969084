//! The fault handler that turns a goroutine stack overflow into Go's
//! `fatal error: stack overflow` (Go: signal_unix.go, stack.go's overflow check).
//!
//! A SIGSEGV/SIGBUS whose fault address lies in a goroutine stack's guard page calls the
//! overflow report the runtime passed to [`install`] (it names the goroutine, which this
//! leaf module knows nothing of: `debug::report_overflow`), then `_exit(2)`s. Any other fault is handed
//! back to the previous handler (Rust's std prints its thread stack-overflow message;
//! otherwise the default action kills the process), by restoring it and returning so the
//! faulting instruction runs again.
//!
//! The handler runs on an alternate signal stack (the overflowing stack has no room);
//! `minit` gives every M one if its thread has none.

use crate::stack;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Previous actions for SIGSEGV and SIGBUS, restored for faults that are not ours. Set
/// once, before our handler is installed; the handler reads it lock-free.
static PREV: OnceLock<[libc::sigaction; 2]> = OnceLock::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// What a guard-page fault calls after the first lines of the report, before `_exit(2)`:
/// the goroutine's lines. It must use only async-signal-safe calls ([`write_raw`],
/// [`fmt_u64`]). Set once by `install` before the handler is; `OnceLock::get` is a plain
/// atomic load, safe in the handler.
static REPORT: OnceLock<fn()> = OnceLock::new();

const ALTSTACK: usize = 64 * 1024;

/// Installs the handler once per process; `report` prints the overflow report (see
/// [`REPORT`]).
pub(crate) fn install(report: fn()) {
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    let _ = REPORT.set(report);
    // SAFETY: plain sigaction calls with valid, zero-initialised structs; PREV is set
    // before our handler (its only reader) is installed.
    unsafe {
        let mut old_segv: libc::sigaction = std::mem::zeroed();
        let mut old_bus: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut old_segv);
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old_bus);
        let _ = PREV.set([old_segv, old_bus]);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
    minit();
}

/// Gives the calling thread an alternate signal stack if it has none (Go:
/// `minitSignalStack`). The stack is leaked with the thread (Ms live for the process).
pub(crate) fn minit() {
    super::thread::precise_timers();
    // SAFETY: sigaltstack with a null new stack only reads the current setting.
    unsafe {
        let mut cur: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut cur);
        if cur.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
    }
    let Some(p) = crate::stack::alloc_signal_stack(ALTSTACK) else {
        return; // no altstack: an overflow then dies by the default action
    };
    let st = libc::stack_t {
        ss_sp: p as *mut libc::c_void,
        ss_flags: 0,
        ss_size: ALTSTACK,
    };
    // SAFETY: `st` describes the mapping just made, which stays mapped forever.
    unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) };
}

/// Writes bytes to stderr (async-signal-safe).
pub(crate) fn write_raw(b: &[u8]) {
    // SAFETY: write(2) on fd 2 with a valid buffer.
    unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
}

/// Formats `v` in decimal into `buf`, returning the digits (async-signal-safe).
pub(crate) fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // si_code > 0: raised by the kernel for a real fault (not sent with kill/tgkill)
    let hit = if code > 0 {
        stack::guard_hit(addr)
    } else {
        None
    };
    if let Some(size) = hit {
        let mut buf = [0u8; 20];
        write_raw(b"runtime: goroutine stack exceeds ");
        write_raw(fmt_u64(size as u64, &mut buf));
        write_raw(b"-byte limit\nfatal error: stack overflow\n\n");
        if let Some(report) = REPORT.get() {
            report();
        }
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(2) };
    }
    // Not a goroutine guard page: restore the previous action and return; the fault
    // happens again and is handled as if we were not here.
    let idx = if sig == libc::SIGBUS { 1 } else { 0 };
    if let Some(prev) = PREV.get() {
        // SAFETY: restoring a sigaction the kernel gave us; async-signal-safe.
        unsafe { libc::sigaction(sig, &prev[idx], std::ptr::null_mut()) };
    }
}
