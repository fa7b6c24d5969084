//! Goroutine-local storage: [`local!`](crate::local) and [`LocalKey`].
//!
//! # `thread_local!` inside goroutines
//!
//! A goroutine may run on a different OS thread after every point where it can switch
//! (spawning, joining, yielding, any blocking gort call). Rust's `thread_local!` is per
//! *thread*: a value read before such a point and after it may belong to two different
//! threads, and a `RefCell` borrowed across it is borrowed on the old thread. Do not
//! hold a `thread_local!` borrow across a gort call, and do not use a thread-local to
//! carry state for one goroutine. Use `gort::local!` for that: its values follow the
//! goroutine, and are dropped when it ends.

use crate::sched::m::getg;
use std::any::Any;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Key ids handed out so far (0 = not yet assigned).
static NEXT_KEY: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// Locals of code that is not running on a goroutine.
    static THREAD_LOCALS: UnsafeCell<Vec<Option<Box<dyn Any>>>> = const { UnsafeCell::new(Vec::new()) };
}

/// A goroutine-local value declared with [`local!`](crate::local). Each goroutine sees
/// its own value, created on first use by the initialiser; it is dropped when the
/// goroutine ends. Outside goroutines each thread has its own value.
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    id: AtomicUsize,
}

impl<T: 'static> std::fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

impl<T: 'static> LocalKey<T> {
    /// Used by [`local!`](crate::local).
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            init,
            id: AtomicUsize::new(0),
        }
    }

    fn id(&self) -> usize {
        // acquire; pairs with the CAS below (only the number is shared: Relaxed would do)
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        let new = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        // acq_rel; racing first uses pair with each other: one id wins, the others adopt it
        match self
            .id
            .compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => new,
            Err(other) => other,
        }
    }

    /// Calls `f` with a reference to the calling goroutine's value.
    ///
    /// Use interior mutability (`Cell`, `RefCell`) to change it.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let id = self.id();
        // Each access borrows the locals vector only for a moment and never across
        // user code: the initialiser may itself use other locals (or this one).
        let get = || -> Option<*const T> {
            with_locals(|v| {
                v.get(id)
                    .and_then(|b| b.as_ref())
                    .map(|b| match b.downcast_ref::<T>() {
                        Some(v) => v as *const T,
                        // ids are unique per key, so the slot holds this key's type
                        None => crate::throw!("LocalKey::with: slot {id} holds another type"),
                    })
            })
        };
        let ptr = match get() {
            Some(p) => p,
            None => {
                let value: Box<dyn Any> = Box::new((self.init)());
                with_locals(|v| {
                    if v.len() <= id {
                        v.resize_with(id + 1, || None);
                    }
                    // a re-entrant initialiser may have set it meanwhile: keep the first
                    if v[id].is_none() {
                        v[id] = Some(value);
                    }
                });
                match get() {
                    Some(p) => p,
                    None => crate::throw!("LocalKey::with: slot {id} empty right after its init"),
                }
            }
        };
        // SAFETY: the value is boxed, so it does not move when the vector grows, and it
        // is dropped only when its goroutine (or thread) ends, after `f` returned.
        f(unsafe { &*ptr })
    }
}

/// Runs `f` on the current goroutine's locals (or the thread's, off goroutines). `f`
/// must not run user code: the borrow is exclusive.
fn with_locals<R>(f: impl FnOnce(&mut Vec<Option<Box<dyn Any>>>) -> R) -> R {
    match getg() {
        // SAFETY: only the running goroutine touches its locals, and no other borrow of
        // the vector is live (every borrow is confined to one `with_locals` call, which
        // runs no user code).
        Some(g) => f(unsafe { &mut *g.locals.get() }),
        // SAFETY: as above, for the current thread's locals.
        None => THREAD_LOCALS.with(|c| f(unsafe { &mut *c.get() })),
    }
}

/// Declares goroutine-local values, with `thread_local!`'s syntax.
///
/// ```
/// use std::cell::Cell;
/// gort::local! {
///     static REQUESTS: Cell<u32> = Cell::new(0);
/// }
/// gort::run(|| {
///     REQUESTS.with(|r| r.set(r.get() + 1));
///     let other = gort::go(|| REQUESTS.with(|r| r.get())).join().unwrap();
///     assert_eq!(other, 0); // a new goroutine starts from the initialiser
///     assert_eq!(REQUESTS.with(|r| r.get()), 1);
/// });
/// ```
#[macro_export]
macro_rules! local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey::new({
            fn __gort_local_init() -> $t { $init }
            __gort_local_init
        });
        $crate::local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr) => {
        $crate::local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
