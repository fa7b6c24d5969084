//! `RwLock` (Go: sync/rwmutex.go): readers share, a writer excludes everyone, and a
//! waiting writer stops new readers from entering, so writers are not starved.

use super::mutex::RawMutex;
use super::sema::{semacquire, semrelease};
use crate::sched::g::WaitReason;
use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// Go: `rwmutexMaxReaders`.
const MAX_READERS: i32 = 1 << 30;

/// A goroutine-aware reader-writer lock with Go's `sync.RWMutex` behaviour.
///
/// ```
/// gort::run(|| {
///     let l = std::sync::Arc::new(gort::sync::RwLock::new(vec![1, 2, 3]));
///     let r = l.clone();
///     let sum = gort::go(move || r.read().iter().sum::<i32>()).join().unwrap();
///     l.write().push(sum);
///     assert_eq!(*l.read(), vec![1, 2, 3, 6]);
/// });
/// ```
#[derive(Default)]
pub struct RwLock<T: ?Sized> {
    /// Held by a writer, or a writer waiting for readers to leave.
    w: RawMutex,
    /// Writers wait here for departing readers.
    writer_sem: AtomicU32,
    /// Readers wait here for a writer to finish.
    reader_sem: AtomicU32,
    /// Readers inside (minus MAX_READERS while a writer is pending).
    reader_count: AtomicI32,
    /// Readers a pending writer still waits for.
    reader_wait: AtomicI32,
    data: UnsafeCell<T>,
}

// SAFETY: shared access only to readers (`T: Sync`), exclusive to one writer (`T: Send`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to a [`RwLock`]'s data.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

/// Exclusive access to a [`RwLock`]'s data.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    /// A new unlocked lock.
    pub const fn new(v: T) -> RwLock<T> {
        RwLock {
            w: RawMutex::new(),
            writer_sem: AtomicU32::new(0),
            reader_sem: AtomicU32::new(0),
            reader_count: AtomicI32::new(0),
            reader_wait: AtomicI32::new(0),
            data: UnsafeCell::new(v),
        }
    }

    /// The data, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading (Go: `RLock`).
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        // acquire; pairs with write_unlock's release (the last writer's data)
        if self.reader_count.fetch_add(1, Ordering::Acquire) + 1 < 0 {
            // a writer holds the lock or waits for readers: queue behind it
            semacquire(&self.reader_sem, false, WaitReason::Semacquire);
        }
        RwLockReadGuard { l: self }
    }

    /// Locks for reading if no writer holds or waits for the lock.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut c = self.reader_count.load(Ordering::Relaxed);
        loop {
            if c < 0 {
                return None;
            }
            // acquire; pairs with write_unlock's release, as in read
            match self.reader_count.compare_exchange_weak(
                c,
                c + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(RwLockReadGuard { l: self }),
                Err(cur) => c = cur,
            }
        }
    }

    fn read_unlock(&self) {
        // release; pairs with write's AcqRel fetch_sub (a writer that counts us as gone
        // sees our reads done)
        let r = self.reader_count.fetch_sub(1, Ordering::Release) - 1;
        if r < 0 {
            if r + 1 == 0 || r + 1 == -MAX_READERS {
                crate::debug::fatal("sync: RUnlock of unlocked RWMutex");
            }
            // A writer waits for the readers it counted: we were one of them. The reader
            // that brings the count to zero wakes it.
            // acq_rel; pairs with the other departing readers' and write's reader_wait RMWs
            if self.reader_wait.fetch_sub(1, Ordering::AcqRel) - 1 == 0 {
                semrelease(&self.writer_sem, false);
            }
        }
    }

    /// Locks for writing (Go: `Lock`).
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        // one writer at a time: the others wait on `w`
        self.w.lock();
        // Make the count negative so that arriving readers queue, and learn how many
        // readers are inside.
        // acq_rel; the acquire pairs with the release of readers that left, the release
        // with the acquire of readers that arrive and see the count negative
        let r = self.reader_count.fetch_sub(MAX_READERS, Ordering::AcqRel);
        // Wait for those readers unless they all left meanwhile (each one that left after
        // our fetch_sub took one off reader_wait).
        // acq_rel; pairs with read_unlock's reader_wait fetch_sub
        if r != 0 && self.reader_wait.fetch_add(r, Ordering::AcqRel) + r != 0 {
            semacquire(&self.writer_sem, false, WaitReason::Semacquire);
        }
        RwLockWriteGuard { l: self }
    }

    /// Locks for writing if the lock is free right now.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        if !self.w.try_lock() {
            return None;
        }
        if self
            .reader_count
            .compare_exchange(0, -MAX_READERS, Ordering::AcqRel, Ordering::Relaxed) // acq_rel; as write's fetch_sub
            .is_err()
        {
            self.w.unlock();
            return None;
        }
        Some(RwLockWriteGuard { l: self })
    }

    fn write_unlock(&self) {
        // Make the count non-negative again: readers enter directly from now on. What is
        // left is the number of readers that queued meanwhile.
        // release; pairs with the acquire fetch_add/CAS of readers (read, try_read)
        let r = self.reader_count.fetch_add(MAX_READERS, Ordering::Release) + MAX_READERS;
        if r >= MAX_READERS {
            crate::debug::fatal("sync: Unlock of unlocked RWMutex");
        }
        // wake each reader that queued on reader_sem while we held the lock
        for _ in 0..r {
            semrelease(&self.reader_sem, false);
        }
        self.w.unlock();
    }

    /// The data, through a unique reference.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.l.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &mut *self.l.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_read() {
            Some(g) => f.debug_struct("RwLock").field("data", &&*g).finish(),
            None => f.debug_struct("RwLock").field("data", &"<locked>").finish(),
        }
    }
}
