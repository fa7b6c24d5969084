//! Goroutine-aware synchronisation (Go's `sync` package): waiting parks the goroutine,
//! not its thread, and the same types block the thread when used outside the runtime.
//!
//! [`Mutex`] and [`RwLock`] follow Go's `sync.Mutex` and `sync.RWMutex` (barging with a
//! starvation mode; writers not starved), on a semaphore layer keyed by address (Go's
//! `sema.go`) that also serves [`WaitGroup`] and [`Semaphore`].

mod condvar;
mod mutex;
mod once;
mod rwlock;
pub(crate) mod sema;
mod waitgroup;

pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use once::{Once, Semaphore};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use waitgroup::WaitGroup;
