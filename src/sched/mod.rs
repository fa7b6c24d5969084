//! The G-M-P scheduler. Types and their invariants live in `g.rs`, `m.rs`, `p.rs` and
//! `schedt.rs`; the algorithms in `runq.rs` (local queues), `schedule.rs`
//! (`schedule`/`find_runnable`/`execute`), `idle.rs` (spinning and parking Ms),
//! `park.rs` (`gopark`/`goready`), `proc.rs` (creating and finishing Gs) and
//! `context.rs` (switching stacks).
//! `docs/design/scheduler.md` explains how they fit together.

#[cfg(not(loom))]
pub(crate) mod checkdead;
#[cfg(not(loom))]
pub(crate) mod context;
#[cfg(not(loom))]
pub(crate) mod g;
#[cfg(not(loom))]
pub(crate) mod idle;
#[cfg(not(loom))]
pub(crate) mod init;
#[cfg(not(loom))]
pub(crate) mod join;
#[cfg(not(loom))]
pub(crate) mod lockos;
#[cfg(not(loom))]
pub(crate) mod m;
#[cfg(not(loom))]
pub(crate) mod p;
#[cfg(not(loom))]
pub(crate) mod park;
#[cfg(not(loom))]
pub(crate) mod proc;
#[cfg(not(loom))]
pub(crate) mod procresize;
#[cfg(not(loom))]
pub(crate) mod retake;
pub(crate) mod runq;
#[cfg(not(loom))]
pub(crate) mod schedt;
#[cfg(not(loom))]
pub(crate) mod schedule;
#[cfg(not(loom))]
pub(crate) mod spawn;
#[cfg(not(loom))]
pub(crate) mod syscall;
#[cfg(not(loom))]
pub(crate) mod sysmon;
#[cfg(not(loom))]
pub(crate) mod timers;
