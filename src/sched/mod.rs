//! The G-M-P scheduler. `docs/design/scheduler.md` explains how the parts fit together;
//! `HACKING.md` places this module in the layering. Each file, with the Go functions
//! (Go 1.19 `runtime/`, mostly proc.go) whose work it does:
//!
//! | file | what | Go |
//! |---|---|---|
//! | `g.rs` | the G, its status table (`cas_status`), wait reasons, switching to g0 | runtime2.go `g`, `casgstatus`, `waitReason`, `mcall` |
//! | `m.rs` | the M, `getg`/`getm` | runtime2.go `m` |
//! | `p.rs` | the P and its states | runtime2.go `p` |
//! | `schedt.rs` | global state: `SCHED`, idle P/M lists | runtime2.go `schedt`, `pidleput`/`pidleget`, `mput`/`mget` |
//! | `runq.rs` | the local queue's lock-free ring and stealing (loom-checked) | `runqput`/`runqget`/`runqgrab`/`runqsteal` internals |
//! | `queue.rs` | every run-queue operation the scheduler calls, local and global | `runqput`, `runqputslow`, `runqget`, `globrunqput*`, `globrunqget` |
//! | `schedule.rs` | the scheduling loop, `find_runnable`'s phases, `execute` and its mcall targets, stealing | `schedule`, `findRunnable`, `execute`, `park_m`, `gosched_m`, `gopreempt_m`, `goexit0`, `stealWork` |
//! | `idle.rs` | Ms going idle and waking: P hand-over, spinning, thread start | `acquirep`, `releasep`, `wakep`, `startm`, `stopm`, `handoffp`, `resetspinning`, `newm`, `mstart` |
//! | `park.rs` | parking and readying goroutines, the direct switch, preemption points | `gopark`, `goready`, `ready`, `Gosched`, `systemstack` |
//! | `proc.rs` | creating and freeing Gs | `newproc`, `malg`, `gfget`, `gfput`, `gdestroy` |
//! | `spawn.rs` | spawn records: a goroutine before its first run (gort's own) | part of `newproc1` |
//! | `join.rs` | a goroutine's result and its joiner (gort's own) | - |
//! | `init.rs` | start-up | `schedinit` |
//! | `timers.rs` | running due timers, the timer M | `checkTimers`, the M blocked in `netpoll` with a timeout |
//! | `syscall.rs` | `gort::blocking` | `entersyscall`, `exitsyscall`, `exitsyscallfast`, `exitsyscall0` |
//! | `sysmon.rs` | the monitor thread | `sysmon`, `sysmonwake` |
//! | `retake.rs` | sysmon's look at every P: blocking-call hand-off, preemption, hogs | `retake`, `preemptone` |
//! | `lockos.rs` | wiring goroutines to threads | `LockOSThread`, `UnlockOSThread`, `startlockedm`, `stoplockedm`, `mexit` |
//! | `procresize.rs` | GOMAXPROCS at run time, relief Ps | `GOMAXPROCS`, `procresize` |
//! | `checkdead.rs` | the deadlock report | `checkdead` |
//!
//! The stack switch itself is `crate::arch`; the timer heaps are `crate::time::heap`.

// Under loom only the run queue is built (see lib.rs).
pub(crate) mod runq;

not_loom! {
    pub(crate) mod checkdead;
    pub(crate) mod context;
    pub(crate) mod g;
    pub(crate) mod idle;
    pub(crate) mod init;
    pub(crate) mod join;
    pub(crate) mod lockos;
    pub(crate) mod m;
    pub(crate) mod p;
    pub(crate) mod park;
    pub(crate) mod proc;
    pub(crate) mod procresize;
    pub(crate) mod queue;
    pub(crate) mod retake;
    pub(crate) mod schedt;
    pub(crate) mod schedule;
    pub(crate) mod spawn;
    pub(crate) mod syscall;
    pub(crate) mod sysmon;
    pub(crate) mod timers;
}
