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

/// Slice a runtime thread asks of the kernel's fair scheduler (EEVDF's custom slice).
const M_SLICE_NS: u64 = 100_000;

/// Asks Linux's EEVDF scheduler (6.12+) for a short time slice for a runtime thread.
/// It only matters when the runtime's threads outnumber the CPUs, which happens exactly
/// when goroutines hog their P without a preemption check (the hog hand-off lends their
/// queues another thread) or sit in blocking calls: the kernel then time-slices between
/// the hogs' threads and the ones running everything else, and a thread with a short
/// slice that wakes for a timer or a goroutine preempts a hog's thread (which sysmon gives
/// the default slice back, [`set_slice`]) within ~0.1 ms instead of waiting out a default
/// slice of a few ms. Best effort: older kernels ignore the request or refuse it.
///
/// `tid` 0 is the calling thread (an M starting); else an M whose goroutine stopped
/// hogging.
pub(crate) fn short_slice(tid: i64) {
    set_slice(tid, M_SLICE_NS);
}

/// Sets the EEVDF slice of thread `tid` (0: the calling thread; `ns` 0: the kernel's
/// default). Best effort, see [`short_slice`].
pub(crate) fn set_slice(tid: i64, ns: u64) {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr` (linux/sched/types.h, version 1: 56 bytes).
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            sched_policy: u32,
            sched_flags: u64,
            sched_nice: i32,
            sched_priority: u32,
            sched_runtime: u64,
            sched_deadline: u64,
            sched_period: u64,
            sched_util_min: u32,
            sched_util_max: u32,
        }
        // SAFETY: getpriority only reads the thread's nice value (errno tells a nice of
        // -1 from an error; either way we keep what we read, or 0).
        let nice = unsafe {
            *libc::__errno_location() = 0;
            let n = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            if *libc::__errno_location() != 0 {
                0
            } else {
                n
            }
        };
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            sched_policy: libc::SCHED_OTHER as u32,
            sched_flags: 0,
            sched_nice: nice,
            sched_priority: 0,
            sched_runtime: ns,
            sched_deadline: 0,
            sched_period: 0,
            sched_util_min: 0,
            sched_util_max: 0,
        };
        // SAFETY: sched_setattr reads `attr` (a valid, correctly sized struct) and only
        // changes thread `tid`'s scheduling parameters (one of this process's threads).
        unsafe {
            libc::syscall(libc::SYS_sched_setattr, tid, &attr as *const SchedAttr, 0);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (tid, ns);
}

/// Starts a thread named `gort-m<id>` running `f`.
pub(crate) fn spawn_m(id: i64, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(format!("gort-m{id}"))
        .stack_size(G0_STACK)
        .spawn(f)
        .map(|_| ())
}
