//! Goroutine-aware synchronisation: waiting parks the goroutine, not its thread.
//!
//! This release has [`WaitGroup`]; `Mutex`, `RwLock`, `Condvar`, `Once` and `Semaphore`
//! on Go's `sema.go` design arrive with the channels work.

mod sema;
mod waitgroup;

pub use waitgroup::WaitGroup;
