//! Operating-system glue: futexes, notes (one-shot sleep/wake-up), thread start and
//! signals. Linux is the target; other Unix systems build with portable fallbacks.

pub(crate) mod futex;
pub(crate) mod lock;
pub(crate) mod note;
#[cfg(not(loom))]
pub(crate) mod signal;
#[cfg(not(loom))]
pub(crate) mod thread;
