//! `gort::sync`: Mutex, RwLock, Condvar, WaitGroup, Once and Semaphore, with tests
//! ported by name from Go's `sync/{mutex,rwmutex,cond,waitgroup,once}_test.go` and
//! `runtime/sema_test.go`, plus gort's own (writer starvation, timeouts, plain threads).
//! GOMAXPROCS is 2 in this binary; the GOMAXPROCS 1 and 2 variants of the semaphore
//! hand-off test run as child processes.
//!
//! Scenarios that could hang on a bug (a lost wake-up) run under [`run_within`], so a
//! hang fails the test instead of stalling the binary; checks are returned to the test
//! thread where practical, because a panic in a (non-isolated) goroutine ends the
//! process, as in Go.

mod common;

use common::{assert_child_ok, init, is_child, run_child_within};
use gort::chan::{self, RecvTimeoutError};
use gort::sync::{Condvar, Mutex, Once, RwLock, Semaphore, WaitGroup};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

const SEQ: Ordering = Ordering::SeqCst;

/// Runs `f` as an isolated goroutine under `gort::run` and waits at most `limit` for it.
/// A panic in `f` or a timeout (a hang, a lost wake-up) fails the calling test.
fn run_within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let r = gort::run(move || {
        let (tx, rx) = chan::bounded(1);
        let h = gort::Builder::new()
            .name("scenario")
            .isolate_panics(true)
            .spawn(move || {
                let _ = tx.send(f());
            })
            .expect("spawn scenario");
        match rx.recv_timeout(limit) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "scenario did not finish within {limit:?} (hang or lost wake-up?)"
            )),
            Err(RecvTimeoutError::Disconnected) => Err(match h.join() {
                Err(p) => format!("scenario panicked: {}", panic_text(p.as_ref())),
                Ok(()) => "scenario ended without a result".to_string(),
            }),
        }
    });
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `f` on a plain thread (no runtime in it) and waits at most `limit`.
fn thread_within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r.map_err(|p| panic_text(p.as_ref())));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => panic!("thread scenario panicked: {p}"),
        Err(_) => panic!("thread scenario did not finish within {limit:?}"),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string payload)".to_string()
    }
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

// ---------------------------------------------------------------------------------
// Mutex

/// Go: TestMutex (with HammerMutex). 10 goroutines lock and unlock one mutex 1000 times
/// each. Go only checks that this finishes; gort also checks exclusion: a counter of
/// holders must read 0 on entry, a non-atomic counter under the lock must end at 10000,
/// and every 50th holder yields while holding, so waiters really queue.
#[test]
fn test_mutex() {
    init(2);
    let (total, overlaps) = run_within(Duration::from_secs(20), || {
        let m = Arc::new(Mutex::new(0u64));
        let inside = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::bounded::<bool>(0);
        for _ in 0..10 {
            let (m, inside, overlaps, tx) =
                (m.clone(), inside.clone(), overlaps.clone(), tx.clone());
            gort::go(move || {
                for i in 0..1000 {
                    let mut g = m.lock();
                    if inside.fetch_add(1, SEQ) != 0 {
                        overlaps.fetch_add(1, SEQ);
                    }
                    let v = *g;
                    if i % 50 == 0 {
                        gort::gosched();
                    }
                    *g = v + 1;
                    inside.fetch_sub(1, SEQ);
                }
                let _ = tx.send(true);
            });
        }
        for _ in 0..10 {
            rx.recv().unwrap();
        }
        let total = *m.lock();
        (total, overlaps.load(SEQ))
    });
    assert_eq!(overlaps, 0, "two goroutines held the mutex at once");
    assert_eq!(total, 10_000, "lost updates under the mutex");
}

/// try_lock fails while the lock is held (by this or another goroutine) and leaves it
/// held; it succeeds once the lock is free.
#[test]
fn mutex_try_lock() {
    init(2);
    let (fail_here, fail_there, still_held) = run_within(Duration::from_secs(10), || {
        let m = Arc::new(Mutex::new(0u32));
        let g = m.lock();
        let fail_here = m.try_lock().is_none();
        let m2 = m.clone();
        let fail_there = gort::go(move || match m2.try_lock() {
            Some(g) => {
                std::mem::forget(g); // leave it locked: the holder still unlocks it
                false
            }
            None => true,
        })
        .join()
        .unwrap();
        // the holder must still hold it: a third try_lock must fail too
        let still_held = match m.try_lock() {
            Some(g2) => {
                std::mem::forget(g2);
                false
            }
            None => true,
        };
        // with the bug the mutex is free or relocked by a leaked guard: don't unlock
        // it again (that is a fatal error, which would end the whole test binary)
        std::mem::forget(g);
        (fail_here, fail_there, still_held)
    });
    assert!(
        fail_here,
        "try_lock of a mutex held by the caller succeeded"
    );
    assert!(
        fail_there,
        "try_lock from another goroutine of a held mutex succeeded"
    );
    assert!(still_held, "a failed try_lock released the holder's lock");
    let m = Mutex::new(1u32);
    *m.try_lock().expect("try_lock of a free mutex") += 1;
    assert_eq!(*m.lock(), 2);
}

/// get_mut and into_inner reach the data without locking.
#[test]
fn mutex_get_mut_into_inner() {
    let mut m = Mutex::new(vec![1]);
    m.get_mut().push(2);
    m.lock().push(3);
    assert_eq!(m.into_inner(), vec![1, 2, 3]);
}

/// Go: TestMutexFairness. One goroutine holds the mutex 100 µs at a time in a loop and
/// re-locks at once; another wants it 10 times (sleeping 100 µs in between) and must get
/// its 10 locks within 10 s (Go's bound), and in gort within 1 s. Without starvation
/// mode the releaser usually re-locks before the woken waiter runs, and the waiter
/// starves (with the 1 ms threshold disabled, this took 4.4 s).
#[test]
fn test_mutex_fairness() {
    init(2);
    let got = run_within(Duration::from_secs(20), || {
        let mu = Arc::new(Mutex::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let (mu1, stop1) = (mu.clone(), stop.clone());
        let hog = gort::go(move || loop {
            let g = mu1.lock();
            gort::time::sleep(Duration::from_micros(100));
            drop(g);
            if stop1.load(SEQ) {
                return;
            }
        });
        let (done_tx, done_rx) = chan::bounded::<bool>(0);
        let mu2 = mu.clone();
        gort::go(move || {
            for _ in 0..10 {
                gort::time::sleep(Duration::from_micros(100));
                drop(mu2.lock());
            }
            let _ = done_tx.send(true);
        });
        let t = Instant::now();
        let got = gort::select! {
            recv(done_rx) -> _ => Some(t.elapsed()),
            default(Duration::from_secs(10)) => None,
        };
        stop.store(true, SEQ);
        hog.join().unwrap();
        got
    });
    let got = got.expect("can't acquire Mutex in 10 seconds");
    println!("test_mutex_fairness: 10 locks in {got:?}");
    // gort's own, tighter bound: in starvation mode each lock waits about 1 ms (the
    // threshold) plus one 100 µs hold; without it, this takes seconds.
    assert!(
        got < Duration::from_secs(1),
        "10 locks took {got:?}: starvation mode did not hand the lock over"
    );
}

/// Mutex from plain threads: a thread blocked on a mutex held by another thread for
/// 100 ms really blocks (its own CPU time stays well below the wait) and does not become
/// part of the runtime (goid stays 0); then threads and goroutines share the mutex.
#[test]
fn mutex_blocks_plain_threads() {
    init(2);
    static M: Mutex<u64> = Mutex::new(0);
    let (waited, cpu, goid) = thread_within(Duration::from_secs(10), || {
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let g = M.lock();
            let _ = locked_tx.send(());
            std::thread::sleep(Duration::from_millis(100));
            drop(g);
        });
        locked_rx.recv().unwrap();
        let cpu0 = thread_cpu_time();
        let t = Instant::now();
        *M.lock() += 1;
        let waited = t.elapsed();
        let cpu = thread_cpu_time() - cpu0;
        holder.join().unwrap();
        (waited, cpu, gort::goid())
    });
    assert!(
        waited >= Duration::from_millis(50),
        "lock did not wait: {waited:?}"
    );
    assert!(
        cpu < waited / 2,
        "blocked thread spun: {cpu:?} of CPU in {waited:?}"
    );
    assert_eq!(goid, 0, "a plain thread became a goroutine");

    // 4 threads and 4 goroutines hammer one mutex
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let work = |inside: Arc<AtomicUsize>, overlaps: Arc<AtomicUsize>| {
        move || {
            for _ in 0..2000 {
                let mut g = M.lock();
                if inside.fetch_add(1, SEQ) != 0 {
                    overlaps.fetch_add(1, SEQ);
                }
                *g += 1;
                inside.fetch_sub(1, SEQ);
            }
        }
    };
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(work(inside.clone(), overlaps.clone())))
        .collect();
    let gs: Vec<_> = (0..4)
        .map(|_| gort::go(work(inside.clone(), overlaps.clone())))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(overlaps.load(SEQ), 0, "threads and goroutines overlapped");
    assert_eq!(*M.lock(), 1 + 8 * 2000);
}

// ---------------------------------------------------------------------------------
// Semaphore hand-off (runtime/sema_test.go), through a starving Mutex

/// One trial of Go's `testSemaHandoff`, ported to the public API. Go releases a runtime
/// semaphore with `Semrelease1(handoff=true)` while a goroutine waits in `Semacquire`,
/// then races a CAS against the waiter's CAS: the waiter must win. gort's only
/// handoff release is the unlock of a Mutex in starvation mode, so the waiter here
/// blocks in `Mutex::lock`, and the mutex is put into starvation mode first: the waiter
/// waits > 1 ms, main unlocks (normal mode: the waiter is woken but not given the lock)
/// and re-locks before the waiter runs, and yields; the woken waiter finds the lock
/// taken after > 1 ms, switches the mutex to starvation mode and queues again. Main's
/// next unlock then hands the lock over and yields (the crux), and main CASes `res`.
///
/// With `starve == false` (a control) main just unlocks in normal mode: the woken
/// waiter must then *not* run first, which shows the check measures the handoff.
///
/// As in Go, one busy goroutine per P keeps the other Ps from stealing main or the
/// waiter. Returns whether the waiter ran first.
fn sema_handoff_trial(starve: bool) -> bool {
    let procs = gort::stats().procs;
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..procs)
        .map(|_| {
            let stop = stop.clone();
            gort::go(move || {
                while !stop.load(SEQ) {
                    gort::gosched();
                }
            })
        })
        .collect();
    let m = Arc::new(Mutex::new(()));
    let res = Arc::new(AtomicU32::new(0));
    let g = m.lock();
    let (m2, res2) = (m.clone(), res.clone());
    let waiter = gort::go(move || {
        let _g = m2.lock();
        let _ = res2.compare_exchange(0, 1, SEQ, SEQ);
    });
    // The waiter blocks in lock() and waits past the 1 ms starvation threshold.
    gort::time::sleep(Duration::from_micros(1500));
    let g = if starve {
        drop(g);
        let g = m.lock(); // barge in before the woken waiter runs
        gort::gosched(); // the waiter runs, sets starvation mode, parks again
        g
    } else {
        g
    };
    drop(g); // the crux: handoff (starving) or plain wake-up (control)
    let _ = res.compare_exchange(0, 2, SEQ, SEQ);
    waiter.join().unwrap();
    stop.store(true, SEQ);
    for b in busy {
        b.join().unwrap();
    }
    res.load(SEQ) == 1
}

/// Go's TestSemaHandoff check: the waiter runs first in at least 2/3 of the trials
/// with handoff (Go: 10000 trials; 300 here, each sleeps 1.5 ms), and in under 1/3
/// without (gort's control). Returns a description of a failure.
fn sema_handoff_check() -> Result<String, String> {
    const ITER: usize = 300;
    let ok = (0..ITER).filter(|_| sema_handoff_trial(true)).count();
    let control = (0..ITER).filter(|_| sema_handoff_trial(false)).count();
    let msg = format!(
        "procs {}: direct handoff {ok}/{ITER}, waiter first without handoff {control}/{ITER}",
        gort::stats().procs
    );
    if ok < ITER * 2 / 3 {
        return Err(format!("direct handoff < 2/3: {msg}"));
    }
    if control >= ITER / 3 {
        return Err(format!("normal-mode unlock behaved like a handoff: {msg}"));
    }
    Ok(msg)
}

/// Child side of the handoff tests: runs the check at the child's GOMAXPROCS.
fn sema_handoff_child() {
    let r = gort::run(|| {
        let (tx, rx) = chan::bounded(1);
        gort::go(move || {
            let _ = tx.send(sema_handoff_check());
        });
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|e| format!("handoff trials hung: {e:?}"))
            .and_then(|r| r)
    });
    match r {
        Ok(msg) => println!("{msg}"),
        Err(e) => panic!("{e}"),
    }
}

/// Go: TestSemaHandoff, at the default GOMAXPROCS (the CPU count; child process so
/// that other tests' goroutines do not disturb the scheduling it depends on). Handoff
/// is reached through a starving `Mutex` (see `sema_handoff_trial`).
#[test]
fn test_sema_handoff() {
    sema_handoff_in_child("test_sema_handoff", &[]);
}

/// Go: TestSemaHandoff1: the handoff check with GOMAXPROCS 1 (child process).
#[test]
fn test_sema_handoff1() {
    sema_handoff_in_child("test_sema_handoff1", &[("GORT_MAXPROCS", "1")]);
}

/// Go: TestSemaHandoff2: the handoff check with GOMAXPROCS 2 (child process).
#[test]
fn test_sema_handoff2() {
    sema_handoff_in_child("test_sema_handoff2", &[("GORT_MAXPROCS", "2")]);
}

/// Runs test `name` as a child with `env`, which does the handoff check
/// (`sema_handoff_child`); in the child, does it.
fn sema_handoff_in_child(name: &str, env: &[(&str, &str)]) {
    if is_child() {
        return sema_handoff_child();
    }
    let out = run_child_within(name, env, Duration::from_secs(60));
    assert_child_ok(name, &out);
}

// ---------------------------------------------------------------------------------
// WaitGroup

/// Go: testWaitGroup. 16 goroutines each call wg1.done() then wait on wg2; main waits
/// on wg1, then checks no goroutine got past wg2 before main counted it down to zero,
/// and that all of them are released after.
fn wait_group_round(wg1: &Arc<WaitGroup>, wg2: &Arc<WaitGroup>) -> Result<(), String> {
    let n = 16;
    wg1.add(n);
    wg2.add(n);
    let (exited_tx, exited_rx) = chan::bounded::<bool>(n as usize);
    for _ in 0..n {
        let (wg1, wg2, exited_tx) = (wg1.clone(), wg2.clone(), exited_tx.clone());
        gort::go(move || {
            wg1.done();
            wg2.wait();
            let _ = exited_tx.send(true);
        });
    }
    wg1.wait();
    for _ in 0..n {
        if exited_rx.try_recv().is_ok() {
            return Err("WaitGroup released group too soon".into());
        }
        wg2.done();
    }
    for _ in 0..n {
        exited_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "WaitGroup did not release a waiter".to_string())?;
    }
    Ok(())
}

/// Go: TestWaitGroup: 8 rounds of `wait_group_round` on the same pair of WaitGroups
/// (the barrier must be reusable).
#[test]
fn test_wait_group() {
    init(2);
    run_within(Duration::from_secs(30), || {
        let (wg1, wg2) = (Arc::new(WaitGroup::new()), Arc::new(WaitGroup::new()));
        for _ in 0..8 {
            wait_group_round(&wg1, &wg2)?;
        }
        Ok::<(), String>(())
    })
    .unwrap();
}

/// Go: TestWaitGroupMisuse: done() below zero panics with "sync: negative WaitGroup
/// counter". Go recovers in the same goroutine; gort's panic hook ends the process on
/// a goroutine panic unless the goroutine isolates panics, so this runs in an isolated
/// goroutine (catch_unwind there), and the same panic is checked through join's Err.
#[test]
fn test_wait_group_misuse() {
    init(2);
    const WANT: &str = "sync: negative WaitGroup counter";
    let (caught, joined) = gort::run(|| {
        let caught = gort::Builder::new()
            .isolate_panics(true)
            .spawn(|| {
                let wg = WaitGroup::new();
                wg.add(1);
                wg.done();
                std::panic::catch_unwind(|| wg.done())
                    .map_err(|p| panic_text(p.as_ref()))
                    .err()
            })
            .unwrap()
            .join()
            .expect("the panic was caught inside");
        let joined = gort::Builder::new()
            .isolate_panics(true)
            .spawn(|| {
                let wg = WaitGroup::new();
                wg.add(1);
                wg.done();
                wg.done();
            })
            .unwrap()
            .join()
            .err()
            .map(|p| panic_text(p.as_ref()));
        (caught, joined)
    });
    assert_eq!(
        caught.as_deref(),
        Some(WANT),
        "catch_unwind in the goroutine"
    );
    assert_eq!(joined.as_deref(), Some(WANT), "join's Err payload");
    // and on a plain thread
    let r = std::thread::spawn(|| {
        let wg = WaitGroup::new();
        wg.add(-1);
    })
    .join();
    assert_eq!(
        r.err().map(|p| panic_text(p.as_ref())).as_deref(),
        Some(WANT)
    );
}

/// Go: TestWaitGroupRace: 1000 times, two goroutines increment a counter and call done;
/// after wait() the counter must be 2 (no early return from wait).
#[test]
fn test_wait_group_race() {
    init(2);
    let spurious = run_within(Duration::from_secs(30), || {
        let mut spurious = 0;
        for _ in 0..1000 {
            let wg = Arc::new(WaitGroup::new());
            let n = Arc::new(AtomicU32::new(0));
            for _ in 0..2 {
                wg.add(1);
                let (wg, n) = (wg.clone(), n.clone());
                gort::go(move || {
                    n.fetch_add(1, SEQ);
                    wg.done();
                });
            }
            wg.wait();
            if n.load(SEQ) != 2 {
                spurious += 1;
            }
        }
        spurious
    });
    assert_eq!(spurious, 0, "spurious wake-ups from wait");
}

/// WaitGroup from plain threads: a thread waits for goroutines (blocking the thread,
/// not spinning), and a goroutine waits for threads.
#[test]
fn wait_group_with_plain_threads() {
    init(2);
    let (waited, cpu, hits) = thread_within(Duration::from_secs(10), || {
        let wg = Arc::new(WaitGroup::new());
        let hits = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            wg.add(1);
            let (wg, hits) = (wg.clone(), hits.clone());
            gort::go(move || {
                gort::time::sleep(Duration::from_millis(100));
                hits.fetch_add(1, SEQ);
                wg.done();
            });
        }
        let cpu0 = thread_cpu_time();
        let t = Instant::now();
        wg.wait();
        (t.elapsed(), thread_cpu_time() - cpu0, hits.load(SEQ))
    });
    assert_eq!(hits, 4, "thread's wait returned before every done");
    assert!(
        waited >= Duration::from_millis(50),
        "wait did not wait: {waited:?}"
    );
    assert!(
        cpu < waited / 2,
        "waiting thread spun: {cpu:?} in {waited:?}"
    );

    let hits = run_within(Duration::from_secs(10), || {
        let wg = Arc::new(WaitGroup::new());
        let hits = Arc::new(AtomicUsize::new(0));
        wg.add(4);
        for _ in 0..4 {
            let (wg, hits) = (wg.clone(), hits.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                hits.fetch_add(1, SEQ);
                wg.done();
            });
        }
        wg.wait();
        hits.load(SEQ)
    });
    assert_eq!(
        hits, 4,
        "goroutine's wait returned before every thread's done"
    );
}

// ---------------------------------------------------------------------------------
// RwLock

/// Go: doTestParallelReaders: `n` goroutines take the read lock, report it, and hold it
/// until main has heard from all of them: only possible if they share it.
fn parallel_readers(n: usize) -> Result<(), String> {
    static L: RwLock<()> = RwLock::new(());
    let (locked_tx, locked_rx) = chan::bounded::<bool>(0);
    let (unlock_tx, unlock_rx) = chan::bounded::<bool>(0);
    let (done_tx, done_rx) = chan::bounded::<bool>(0);
    for _ in 0..n {
        let (locked_tx, unlock_rx, done_tx) =
            (locked_tx.clone(), unlock_rx.clone(), done_tx.clone());
        gort::go(move || {
            let g = L.read();
            let _ = locked_tx.send(true);
            unlock_rx.recv().unwrap();
            drop(g);
            let _ = done_tx.send(true);
        });
    }
    for i in 0..n {
        locked_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| format!("{n} readers: only {i} got the read lock together"))?;
    }
    for _ in 0..n {
        let _ = unlock_tx.send(true);
    }
    for _ in 0..n {
        done_rx.recv().unwrap();
    }
    Ok(())
}

/// Go: TestParallelReaders (1, 3 and 4 readers; GOMAXPROCS is fixed at 2 here, where
/// Go uses 4, 4 and 2).
#[test]
fn test_parallel_readers() {
    init(2);
    run_within(Duration::from_secs(30), || {
        parallel_readers(1)?;
        parallel_readers(3)?;
        parallel_readers(4)
    })
    .unwrap();
}

/// Go: HammerRWMutex: 2 writers and `readers` readers, `iters` lock/unlock each.
/// `activity` counts readers inside + 10000 per writer inside; a reader must see 1..9999
/// and a writer exactly 10000. Returns the number of violations.
fn hammer_rw_mutex(readers: usize, iters: usize) -> usize {
    let l = Arc::new(RwLock::new(()));
    let activity = Arc::new(AtomicU32::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = chan::bounded::<bool>(0);
    let writer = || {
        let (l, activity, bad, done_tx) =
            (l.clone(), activity.clone(), bad.clone(), done_tx.clone());
        gort::go(move || {
            for _ in 0..iters {
                let g = l.write();
                if activity.fetch_add(10000, SEQ) + 10000 != 10000 {
                    bad.fetch_add(1, SEQ);
                }
                for _ in 0..100 {
                    std::hint::black_box(());
                }
                activity.fetch_sub(10000, SEQ);
                drop(g);
            }
            let _ = done_tx.send(true);
        });
    };
    let reader = || {
        let (l, activity, bad, done_tx) =
            (l.clone(), activity.clone(), bad.clone(), done_tx.clone());
        gort::go(move || {
            for _ in 0..iters {
                let g = l.read();
                let n = activity.fetch_add(1, SEQ) + 1;
                if !(1..10000).contains(&n) {
                    bad.fetch_add(1, SEQ);
                }
                for _ in 0..100 {
                    std::hint::black_box(());
                }
                activity.fetch_sub(1, SEQ);
                drop(g);
            }
            let _ = done_tx.send(true);
        });
    };
    writer();
    for _ in 0..readers / 2 {
        reader();
    }
    writer();
    for _ in readers / 2..readers {
        reader();
    }
    for _ in 0..2 + readers {
        done_rx.recv().unwrap();
    }
    bad.load(SEQ)
}

/// Go: TestRWMutex: HammerRWMutex with 1, 3, 10 and 5 readers, 1000 iterations
/// (GOMAXPROCS fixed at 2; Go also varies it over 1, 4 and 10).
#[test]
fn test_rw_mutex() {
    init(2);
    let bad = run_within(Duration::from_secs(60), || {
        [1, 3, 10, 5]
            .into_iter()
            .map(|r| hammer_rw_mutex(r, 1000))
            .sum::<usize>()
    });
    assert_eq!(
        bad, 0,
        "a reader and a writer (or two writers) were inside at once"
    );
}

/// Go: TestRLocker, with read guards for `RLocker`: a goroutine takes the read lock
/// twice (readers share, even with themselves), then asks for the write lock; the write
/// lock must wait until main has dropped both read guards, and the next read lock must
/// wait until main drops the write guard.
#[test]
fn test_rlocker() {
    init(2);
    static WL: RwLock<()> = RwLock::new(());
    run_within(Duration::from_secs(20), || {
        let n = 10;
        let (rlocked_tx, rlocked_rx) = chan::bounded(1);
        let (wlocked_tx, wlocked_rx) = chan::bounded(1);
        gort::go(move || {
            for _ in 0..n {
                let r1 = WL.read();
                let r2 = WL.read();
                let _ = rlocked_tx.send((r1, r2));
                let _ = wlocked_tx.send(WL.write());
            }
        });
        for _ in 0..n {
            let (r1, r2) = rlocked_rx.recv().unwrap();
            drop(r1);
            gort::time::sleep(Duration::from_millis(1));
            if wlocked_rx.try_recv().is_ok() {
                return Err("RLocker() didn't read-lock it");
            }
            drop(r2);
            let w = wlocked_rx.recv().unwrap();
            gort::time::sleep(Duration::from_millis(1));
            if rlocked_rx.try_recv().is_ok() {
                return Err("RLocker() didn't respect the write lock");
            }
            drop(w);
        }
        Ok(())
    })
    .unwrap();
}

/// try_read/try_write: a reader blocks try_write, a writer blocks both, and a pending
/// writer blocks try_read (new readers queue behind it).
#[test]
fn rwlock_try_read_try_write() {
    init(2);
    run_within(Duration::from_secs(10), || {
        static L: RwLock<u32> = RwLock::new(0);
        let r = L.read();
        assert!(L.try_write().is_none(), "try_write with a reader inside");
        assert!(L.try_read().is_some(), "try_read with only readers inside");
        let writer = gort::go(|| *L.write() += 1);
        gort::time::sleep(Duration::from_millis(5)); // writer is pending now
        assert!(L.try_read().is_none(), "try_read while a writer waits");
        drop(r);
        writer.join().unwrap();
        let w = L.try_write().expect("try_write of a free lock");
        assert!(L.try_read().is_none(), "try_read while a writer holds it");
        drop(w);
        assert_eq!(*L.try_read().expect("free"), 1);
    });
}

/// A waiting writer is not starved by a stream of overlapping readers (Go issue #76808
/// reports RWMutex writers waiting for seconds). 4 readers each hold the read lock for
/// 200 µs and re-take it at once, so the lock is almost never free of readers; a writer
/// asks 20 times and each time must get in within 500 ms (it needs only the readers
/// already inside to leave). Readers must keep making progress in between, and no
/// reader may be inside while the writer is.
#[test]
fn rwlock_writer_not_starved_by_readers() {
    init(2);
    let (worst, reads, overlaps) = run_within(Duration::from_secs(60), || {
        let l = Arc::new(RwLock::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let readers_in = Arc::new(AtomicUsize::new(0));
        let reads = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (l, stop, readers_in, reads) =
                    (l.clone(), stop.clone(), readers_in.clone(), reads.clone());
                gort::go(move || {
                    while !stop.load(SEQ) {
                        let g = l.read();
                        readers_in.fetch_add(1, SEQ);
                        reads.fetch_add(1, SEQ);
                        gort::time::sleep(Duration::from_micros(200));
                        readers_in.fetch_sub(1, SEQ);
                        drop(g);
                    }
                })
            })
            .collect();
        gort::time::sleep(Duration::from_millis(20)); // readers overlap now
        let reads0 = reads.load(SEQ);
        let (l2, readers_in2) = (l.clone(), readers_in.clone());
        let writer = gort::go(move || {
            let mut worst = Duration::ZERO;
            let mut overlaps = 0;
            for _ in 0..20 {
                let t = Instant::now();
                let w = l2.write();
                worst = worst.max(t.elapsed());
                if readers_in2.load(SEQ) != 0 {
                    overlaps += 1;
                }
                drop(w);
                gort::time::sleep(Duration::from_millis(2));
            }
            (worst, overlaps)
        });
        // A starved writer would wait forever: give up after 5 s (stopping the readers
        // lets it in) and report the time instead.
        let t = Instant::now();
        while !writer.is_finished() && t.elapsed() < Duration::from_secs(5) {
            gort::time::sleep(Duration::from_millis(1));
        }
        let gave_up = (!writer.is_finished()).then(|| t.elapsed());
        let reads = reads.load(SEQ) - reads0;
        stop.store(true, SEQ);
        let (worst, overlaps) = writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        (gave_up.unwrap_or(worst), reads, overlaps)
    });
    assert_eq!(overlaps, 0, "readers inside together with the writer");
    assert!(
        worst < Duration::from_millis(500),
        "writer starved by readers: waited {worst:?}"
    );
    assert!(reads >= 20, "readers starved by the writer: {reads} reads");
}

/// RwLock from plain threads: two threads hold the read lock at once; a writer thread
/// blocks (without spinning) until both leave; a reader thread blocks while it writes.
#[test]
fn rwlock_with_plain_threads() {
    init(2);
    static L: RwLock<u32> = RwLock::new(0);
    let (together, w_waited, w_cpu, r_waited, v) = thread_within(Duration::from_secs(20), || {
        let both_in = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let together = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (both_in, release, together) =
                    (both_in.clone(), release.clone(), together.clone());
                std::thread::spawn(move || {
                    let g = L.read();
                    both_in.fetch_add(1, SEQ);
                    let t = Instant::now();
                    while both_in.load(SEQ) < 2 && t.elapsed() < Duration::from_secs(5) {
                        std::thread::yield_now();
                    }
                    if both_in.load(SEQ) == 2 {
                        together.store(true, SEQ);
                    }
                    while !release.load(SEQ) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    drop(g);
                })
            })
            .collect();
        while both_in.load(SEQ) < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        release.store(true, SEQ);
        let cpu0 = thread_cpu_time();
        let t = Instant::now();
        let mut w = L.write();
        let w_waited = t.elapsed();
        let w_cpu = thread_cpu_time() - cpu0;
        *w += 1;
        let reader = std::thread::spawn(|| {
            let t = Instant::now();
            let v = *L.read();
            (t.elapsed(), v)
        });
        std::thread::sleep(Duration::from_millis(100));
        *w += 1;
        drop(w);
        let (r_waited, v) = reader.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        (together.load(SEQ), w_waited, w_cpu, r_waited, v)
    });
    assert!(
        together,
        "two reader threads could not hold the read lock together"
    );
    assert!(
        w_waited >= Duration::from_millis(50),
        "writer did not wait for readers"
    );
    assert!(
        w_cpu < w_waited / 2,
        "blocked writer thread spun: {w_cpu:?}"
    );
    assert!(
        r_waited >= Duration::from_millis(50),
        "reader did not wait for writer"
    );
    assert_eq!(v, 2, "reader saw the writer's data half-done");
}

// ---------------------------------------------------------------------------------
// Condvar

/// Go: TestCondSignal. 2 goroutines wait; each notify_one (under the mutex) wakes
/// exactly one of them, and none wakes without it.
#[test]
fn test_cond_signal() {
    init(2);
    run_within(Duration::from_secs(20), || {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let mut n = 2;
        let (running_tx, running_rx) = chan::bounded::<bool>(n);
        let (awake_tx, awake_rx) = chan::bounded::<bool>(n);
        for _ in 0..n {
            let (pair, running_tx, awake_tx) = (pair.clone(), running_tx.clone(), awake_tx.clone());
            gort::go(move || {
                let mut g = pair.0.lock();
                let _ = running_tx.send(true);
                pair.1.wait(&mut g);
                let _ = awake_tx.send(true);
                drop(g);
            });
        }
        for _ in 0..n {
            running_rx.recv().unwrap(); // wait for everyone to run
        }
        while n > 0 {
            if awake_rx.try_recv().is_ok() {
                return Err("goroutine not asleep");
            }
            let g = pair.0.lock();
            pair.1.notify_one();
            drop(g);
            if awake_rx.recv_timeout(Duration::from_secs(5)).is_err() {
                return Err("notify_one woke nobody");
            }
            gort::time::sleep(Duration::from_millis(1));
            if awake_rx.try_recv().is_ok() {
                return Err("too many goroutines awake");
            }
            n -= 1;
        }
        pair.1.notify_one();
        Ok(())
    })
    .unwrap();
}

/// Go: TestCondSignalGenerations. 100 goroutines start one at a time and wait, and
/// main notifies once per goroutine: a notification must wake the goroutine that was
/// waiting when it was sent, never one that started waiting later.
#[test]
fn test_cond_signal_generations() {
    init(2);
    run_within(Duration::from_secs(20), || {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let n = 100;
        let (running_tx, running_rx) = chan::bounded::<bool>(n);
        let (awake_tx, awake_rx) = chan::bounded::<usize>(n);
        for i in 0..n {
            let (p, running_tx, awake_tx) = (pair.clone(), running_tx.clone(), awake_tx.clone());
            gort::go(move || {
                let mut g = p.0.lock();
                let _ = running_tx.send(true);
                p.1.wait(&mut g);
                let _ = awake_tx.send(i);
                drop(g);
            });
            if i > 0 {
                let a = awake_rx.recv().unwrap();
                if a != i - 1 {
                    return Err(format!("wrong goroutine woke up: want {}, got {a}", i - 1));
                }
            }
            running_rx.recv().unwrap();
            let g = pair.0.lock();
            pair.1.notify_one();
            drop(g);
        }
        Ok(())
    })
    .unwrap();
}

/// Go: TestCondBroadcast. 200 goroutines wait in a loop; each of 200 rounds,
/// notify_all wakes every one of them exactly once; none wakes early; at the end all
/// exit.
#[test]
fn test_cond_broadcast() {
    init(2);
    run_within(Duration::from_secs(60), || {
        let n = 200;
        let pair = Arc::new((Mutex::new(false), Condvar::new())); // exit flag
        let (running_tx, running_rx) = chan::bounded::<usize>(n);
        let (awake_tx, awake_rx) = chan::bounded::<usize>(n);
        for i in 0..n {
            let (p, running_tx, awake_tx) = (pair.clone(), running_tx.clone(), awake_tx.clone());
            gort::go(move || {
                let mut g = p.0.lock();
                while !*g {
                    let _ = running_tx.send(i);
                    p.1.wait(&mut g);
                    let _ = awake_tx.send(i);
                }
            });
        }
        for round in 0..n {
            for _ in 0..n {
                running_rx.recv().unwrap(); // deadlocks unless n are running
            }
            if round == n - 1 {
                *pair.0.lock() = true;
            }
            if awake_rx.try_recv().is_ok() {
                return Err("goroutine not asleep".to_string());
            }
            let g = pair.0.lock();
            pair.1.notify_all();
            drop(g);
            let mut seen = vec![false; n];
            for _ in 0..n {
                let g = awake_rx
                    .recv_timeout(Duration::from_secs(5))
                    .map_err(|_| format!("round {round}: notify_all missed a waiter"))?;
                if seen[g] {
                    return Err("goroutine woke up twice".to_string());
                }
                seen[g] = true;
            }
        }
        gort::time::sleep(Duration::from_millis(1));
        if running_rx.try_recv().is_ok() {
            return Err("goroutine did not exit".to_string());
        }
        pair.1.notify_all();
        Ok(())
    })
    .unwrap();
}

/// Go: TestRace (cond_test.go). Three goroutines hand a value along under one mutex and
/// condvar: 1 waits for 2, 2 signals, 3 waits for 3: each must see the value it waits
/// for after its wait.
#[test]
fn test_race() {
    init(2);
    let errors = run_within(Duration::from_secs(20), || {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let errors = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = chan::bounded::<bool>(0);
        {
            let (p, errors, done_tx) = (pair.clone(), errors.clone(), done_tx.clone());
            gort::go(move || {
                let mut x = p.0.lock();
                *x = 1;
                p.1.wait(&mut x);
                if *x != 2 {
                    errors.fetch_add(1, SEQ); // want 2
                }
                *x = 3;
                p.1.notify_one();
                drop(x);
                let _ = done_tx.send(true);
            });
        }
        {
            let (p, done_tx) = (pair.clone(), done_tx.clone());
            gort::go(move || {
                let mut x = p.0.lock();
                loop {
                    if *x == 1 {
                        *x = 2;
                        p.1.notify_one();
                        break;
                    }
                    drop(x);
                    gort::gosched();
                    x = p.0.lock();
                }
                drop(x);
                let _ = done_tx.send(true);
            });
        }
        {
            let (p, errors, done_tx) = (pair.clone(), errors.clone(), done_tx.clone());
            gort::go(move || {
                let mut x = p.0.lock();
                loop {
                    if *x == 2 {
                        p.1.wait(&mut x);
                        if *x != 3 {
                            errors.fetch_add(1, SEQ); // want 3
                        }
                        break;
                    }
                    if *x == 3 {
                        break;
                    }
                    drop(x);
                    gort::gosched();
                    x = p.0.lock();
                }
                drop(x);
                let _ = done_tx.send(true);
            });
        }
        for _ in 0..3 {
            done_rx.recv().unwrap();
        }
        errors.load(SEQ)
    });
    assert_eq!(errors, 0, "a waiter saw the wrong value after its wait");
}

/// Go: TestCondSignalStealing. A goroutine waits; then a notify_all races a second
/// goroutine starting to wait: the first waiter must be woken (the new waiter must not
/// steal its notification). 1000 iterations, 2 s each at most.
#[test]
fn test_cond_signal_stealing() {
    init(2);
    run_within(Duration::from_secs(60), || {
        for iter in 0..1000 {
            let pair = Arc::new((Mutex::new(false), Condvar::new())); // done flag
            let (ch_tx, ch_rx) = chan::bounded::<()>(0);
            {
                let (p, ch_tx) = (pair.clone(), ch_tx.clone());
                gort::go(move || {
                    let mut g = p.0.lock();
                    let _ = ch_tx.send(());
                    p.1.wait(&mut g);
                    drop(g);
                    let _ = ch_tx.send(());
                });
            }
            ch_rx.recv().unwrap();
            drop(pair.0.lock()); // the waiter is in wait() now
            {
                let p = pair.clone();
                gort::go(move || p.1.notify_all());
            }
            {
                let p = pair.clone();
                gort::go(move || {
                    let mut g = p.0.lock();
                    while !*g {
                        p.1.wait(&mut g);
                    }
                });
            }
            let got = gort::select! {
                recv(ch_rx) -> _ => true,
                default(Duration::from_secs(2)) => false,
            };
            if !got {
                return Err(format!(
                    "iteration {iter}: first waiter didn't get broadcast"
                ));
            }
            *pair.0.lock() = true;
            pair.1.notify_all();
        }
        Ok(())
    })
    .unwrap();
}

/// wait_timeout: with no notification it returns after at least the timeout, reports
/// `timed_out()`, and holds the mutex again; a notification before the timeout returns
/// early with `!timed_out()`.
#[test]
fn condvar_wait_timeout() {
    init(2);
    run_within(Duration::from_secs(20), || {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let mut g = pair.0.lock();
        let d = Duration::from_millis(20);
        let t = Instant::now();
        let r = pair.1.wait_timeout(&mut g, d);
        let el = t.elapsed();
        assert!(r.timed_out(), "no notification, yet not timed out");
        assert!(el >= d, "timed out early: {el:?}");
        assert!(el < d + Duration::from_secs(2), "timed out late: {el:?}");
        *g += 1; // still ours: another goroutine's lock() must wait for us
        let p2 = pair.clone();
        let got_in = Arc::new(AtomicBool::new(false));
        let got_in2 = got_in.clone();
        let locker = gort::go(move || {
            drop(p2.0.lock());
            got_in2.store(true, SEQ);
        });
        gort::time::sleep(Duration::from_millis(5));
        assert!(
            !got_in.load(SEQ),
            "wait_timeout returned without re-locking the mutex"
        );
        pair.1.wait_timeout(&mut g, Duration::from_millis(1)); // lets the locker in
        locker.join().unwrap();
        let p2 = pair.clone();
        let notifier = gort::go(move || {
            gort::time::sleep(Duration::from_millis(10));
            *p2.0.lock() = 7;
            p2.1.notify_one();
        });
        let t = Instant::now();
        let mut timed_out = false;
        while *g != 7 && !timed_out {
            timed_out = pair
                .1
                .wait_timeout(&mut g, Duration::from_secs(5))
                .timed_out();
        }
        assert!(!timed_out, "notified wait reported a timeout");
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "notification did not end the wait"
        );
        drop(g);
        notifier.join().unwrap();
    });
}

/// One round of `condvar_notify_skips_timed_out_waiter`: waiter A (wait_timeout 1 ms)
/// queues first, B (no timeout) second, and main notifies once, `offset_us` after A's
/// deadline (approximately: main sees A registered just before A arms its timer).
/// Returns whether A timed out and whether the notification was then lost.
fn notify_vs_timeout_round(offset_us: i64) -> (bool, bool) {
    let pair = Arc::new((Mutex::new(0u32), Condvar::new())); // waiters registered
    let wait_for = |n: u32| loop {
        let g = pair.0.lock();
        if *g == n {
            break; // they register and wait under the lock
        }
        drop(g);
        gort::gosched();
    };
    let p = pair.clone();
    let a = gort::go(move || {
        let mut g = p.0.lock();
        *g += 1;
        p.1.wait_timeout(&mut g, Duration::from_millis(1))
            .timed_out()
    });
    wait_for(1); // A is first in the waiter list
    let deadline = Instant::now() + Duration::from_millis(1);
    let p = pair.clone();
    let b = gort::go(move || {
        let mut g = p.0.lock();
        *g += 1;
        p.1.wait(&mut g);
    });
    wait_for(2);
    let at = if offset_us >= 0 {
        deadline + Duration::from_micros(offset_us as u64)
    } else {
        deadline - Duration::from_micros((-offset_us) as u64)
    };
    while Instant::now() < at {
        std::hint::spin_loop(); // the other P is idle: A's timer fires there
    }
    pair.1.notify_one(); // if A is claimed as timed out, it must be skipped
    let a_timed_out = a.join().unwrap();
    let mut lost = false;
    if a_timed_out {
        let t = Instant::now();
        while !b.is_finished() && t.elapsed() < Duration::from_secs(2) {
            gort::time::sleep(Duration::from_micros(100));
        }
        lost = !b.is_finished();
    }
    if !b.is_finished() {
        pair.1.notify_one(); // A took the notification (or it was lost): release B
    }
    b.join().unwrap();
    (a_timed_out, lost)
}

/// gort's own (Go's Cond has no timed wait): notify_one is not spent on a waiter whose
/// wait_timeout has expired. Waiter A (wait_timeout 1 ms) queues first, B (no timeout)
/// second; main notifies once, at times swept from 50 µs before to 150 µs after A's
/// deadline (in a child process with GOMAXPROCS 2, so nothing else disturbs it): if A
/// reports a timeout, B must be woken by that notification. 500 rounds; both outcomes
/// must occur, or the sweep missed the race. The window in which a timed-out A is still
/// queued is microseconds wide, so this is a stress test (it caught a notify_one that
/// does not skip timed-out entries in 6 of 6 runs).
#[test]
fn condvar_notify_skips_timed_out_waiter() {
    if !is_child() {
        let env = [("GORT_MAXPROCS", "2")];
        let name = "condvar_notify_skips_timed_out_waiter";
        let out = run_child_within(name, &env, Duration::from_secs(60));
        assert_child_ok(name, &out);
        return;
    }
    let (timed_out, lost, n) = gort::run(|| {
        let offsets: Vec<i64> = (0..5).flat_map(|_| (-50..150).step_by(2)).collect();
        let rounds: Vec<_> = offsets
            .iter()
            .map(|&o| notify_vs_timeout_round(o))
            .collect();
        let timed_out = rounds.iter().filter(|r| r.0).count();
        let lost = rounds.iter().filter(|r| r.1).count();
        (timed_out, lost, rounds.len())
    });
    println!("A timed out in {timed_out}/{n} rounds; notification lost in {lost}");
    assert_eq!(lost, 0, "notify_one was spent on a timed-out waiter");
    assert!(timed_out > 0, "the timed-out case never happened");
    assert!(timed_out < n, "the notified case never happened");
}

/// gort's own regression test: timed waits must expire while the main goroutine waits,
/// with GOMAXPROCS 1 (child process). B (no timeout) queues first, A (wait_timeout
/// 1 ms) second; main keeps the P for 3 ms, notifies once (B, first in line, gets it),
/// joins A, which only its timer can wake, and polls B with 100 µs sleeps. 50 rounds.
/// Against the sources before commit af62920 ("run M leaving with pending timers
/// starts a timer M") this hung in 3 of 3 runs (10 of 10 for an earlier variant).
#[test]
fn condvar_wait_timeout_fires_while_main_waits_one_p() {
    if !is_child() {
        let env = [("GORT_MAXPROCS", "1")];
        let name = "condvar_wait_timeout_fires_while_main_waits_one_p";
        let out = run_child_within(name, &env, Duration::from_secs(30));
        assert_child_ok(name, &out);
        return;
    }
    let rounds = gort::run(|| {
        (0..50)
            .map(|_| {
                let pair = Arc::new((Mutex::new(0u32), Condvar::new())); // waiters queued
                let p = pair.clone();
                let a = gort::go(move || {
                    let mut g = p.0.lock();
                    *g += 1;
                    p.1.wait_timeout(&mut g, Duration::from_millis(1))
                        .timed_out()
                });
                let p = pair.clone();
                let b = gort::go(move || {
                    let mut g = p.0.lock();
                    *g += 1;
                    p.1.wait(&mut g);
                });
                // B runs first (it took the run-next slot from A), so it queues first
                loop {
                    let g = pair.0.lock();
                    if *g == 2 {
                        break;
                    }
                    drop(g);
                    gort::gosched();
                }
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(3) {
                    std::hint::spin_loop();
                }
                pair.1.notify_one(); // to B
                let a_timed_out = a.join().unwrap();
                let t = Instant::now();
                while !b.is_finished() && t.elapsed() < Duration::from_secs(2) {
                    gort::time::sleep(Duration::from_micros(100));
                }
                if !b.is_finished() {
                    pair.1.notify_one(); // A took the notification: release B
                }
                b.join().unwrap();
                a_timed_out
            })
            .collect::<Vec<bool>>()
    });
    assert!(
        rounds.iter().all(|&t| t),
        "A was notified instead of B: {rounds:?}"
    );
}

/// notify_one wakes the longest waiter: 10 goroutines start waiting one after the
/// other; 10 notify_one calls wake them in that order (gort's Condvar keeps a FIFO
/// list; Go's notifyList also wakes in ticket order).
#[test]
fn condvar_notify_one_is_fifo() {
    init(2);
    let order = run_within(Duration::from_secs(20), || {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let (running_tx, running_rx) = chan::bounded::<()>(0);
        let (awake_tx, awake_rx) = chan::bounded::<usize>(0);
        for i in 0..10 {
            let (p, running_tx, awake_tx) = (pair.clone(), running_tx.clone(), awake_tx.clone());
            gort::go(move || {
                let mut g = p.0.lock();
                let _ = running_tx.send(());
                p.1.wait(&mut g);
                drop(g);
                let _ = awake_tx.send(i);
            });
            running_rx.recv().unwrap();
            drop(pair.0.lock()); // goroutine i is in wait() now
        }
        (0..10)
            .map(|_| {
                pair.1.notify_one();
                awake_rx.recv().unwrap()
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(order, (0..10).collect::<Vec<_>>(), "wake-up order");
}

/// No lost notification under stress: a queue under a mutex with 2 producers and 2
/// consumers using notify_one per item and notify_all at the end; every item is consumed
/// exactly once (a lost wake-up hangs and fails by timeout). Then Go's benchmarkCond
/// pattern: 5 goroutines meet 2000 times, the last to arrive broadcasts.
#[test]
fn condvar_no_lost_notification_stress() {
    init(2);
    let (sum, rounds) = run_within(Duration::from_secs(60), || {
        struct Q {
            items: VecDeque<u64>,
            producers_left: usize,
        }
        let pair = Arc::new((
            Mutex::new(Q {
                items: VecDeque::new(),
                producers_left: 2,
            }),
            Condvar::new(),
        ));
        let per = 5000u64;
        let producers: Vec<_> = (0..2u64)
            .map(|k| {
                let p = pair.clone();
                gort::go(move || {
                    for i in 0..per {
                        p.0.lock().items.push_back(k * per + i + 1);
                        p.1.notify_one();
                        if i % 64 == 0 {
                            gort::gosched();
                        }
                    }
                    p.0.lock().producers_left -= 1;
                    p.1.notify_all();
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let p = pair.clone();
                gort::go(move || {
                    let mut sum = 0u64;
                    let mut g = p.0.lock();
                    loop {
                        if let Some(v) = g.items.pop_front() {
                            sum += v;
                        } else if g.producers_left == 0 {
                            return sum;
                        } else {
                            p.1.wait(&mut g);
                        }
                    }
                })
            })
            .collect();
        for h in producers {
            h.join().unwrap();
        }
        let sum: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();

        // benchmarkCond(waiters = 4), 2000 rounds
        let waiters = 4;
        let n = 2000;
        let pair = Arc::new((Mutex::new(0i64), Condvar::new())); // id
        let rounds = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..waiters + 1)
            .map(|_| {
                let (p, rounds) = (pair.clone(), rounds.clone());
                gort::go(move || {
                    for _ in 0..n {
                        let mut id = p.0.lock();
                        if *id == -1 {
                            break;
                        }
                        *id += 1;
                        if *id == waiters + 1 {
                            *id = 0;
                            rounds.fetch_add(1, SEQ);
                            p.1.notify_all();
                        } else {
                            p.1.wait(&mut id);
                        }
                    }
                    *p.0.lock() = -1;
                    p.1.notify_all();
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        (sum, rounds.load(SEQ))
    });
    let n = 10_000u64;
    assert_eq!(sum, n * (n + 1) / 2, "items lost or consumed twice");
    assert!(rounds > 0, "benchmarkCond pattern made no round");
}

/// Condvar from plain threads: a thread waits and a goroutine notifies it, a goroutine
/// waits and a thread notifies it, and a thread's wait_timeout times out (blocking the
/// thread, not spinning).
#[test]
fn condvar_with_plain_threads() {
    init(2);
    static PAIR: LazyLock<(Mutex<u32>, Condvar)> =
        LazyLock::new(|| (Mutex::new(0), Condvar::new()));
    // thread waits, goroutine notifies
    let (v, goid) = thread_within(Duration::from_secs(10), || {
        gort::go(|| {
            gort::time::sleep(Duration::from_millis(10));
            *PAIR.0.lock() = 1;
            PAIR.1.notify_all();
        });
        let mut g = PAIR.0.lock();
        while *g != 1 {
            PAIR.1.wait(&mut g);
        }
        (*g, gort::goid())
    });
    assert_eq!((v, goid), (1, 0));
    // goroutine waits, thread notifies
    let v = run_within(Duration::from_secs(10), || {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(10));
            *PAIR.0.lock() = 2;
            PAIR.1.notify_one();
        });
        let mut g = PAIR.0.lock();
        while *g != 2 {
            PAIR.1.wait(&mut g);
        }
        *g
    });
    assert_eq!(v, 2);
    // thread wait_timeout
    let (timed_out, el, cpu) = thread_within(Duration::from_secs(10), || {
        let mut g = PAIR.0.lock();
        let cpu0 = thread_cpu_time();
        let t = Instant::now();
        let r = PAIR.1.wait_timeout(&mut g, Duration::from_millis(100));
        (r.timed_out(), t.elapsed(), thread_cpu_time() - cpu0)
    });
    assert!(timed_out, "thread wait_timeout did not report a timeout");
    assert!(
        el >= Duration::from_millis(100),
        "thread wait_timeout returned early: {el:?}"
    );
    assert!(cpu < el / 2, "waiting thread spun: {cpu:?} in {el:?}");
}

// ---------------------------------------------------------------------------------
// Once

/// Go: TestOnce. 10 goroutines call call_once; the function runs once, and every caller
/// (also those that arrived while it ran: it sleeps 10 ms) sees its effect on return.
#[test]
fn test_once() {
    init(2);
    let (inside, outside) = run_within(Duration::from_secs(20), || {
        let once = Arc::new(Once::new());
        let o = Arc::new(AtomicU32::new(0));
        let bad_inside = Arc::new(AtomicUsize::new(0));
        let (c_tx, c_rx) = chan::bounded::<bool>(0);
        for _ in 0..10 {
            let (once, o, bad_inside, c_tx) =
                (once.clone(), o.clone(), bad_inside.clone(), c_tx.clone());
            gort::go(move || {
                once.call_once(|| {
                    gort::time::sleep(Duration::from_millis(10));
                    o.fetch_add(1, SEQ);
                });
                if o.load(SEQ) != 1 {
                    bad_inside.fetch_add(1, SEQ);
                }
                let _ = c_tx.send(true);
            });
        }
        for _ in 0..10 {
            c_rx.recv().unwrap();
        }
        assert!(once.is_completed());
        (bad_inside.load(SEQ), o.load(SEQ))
    });
    assert_eq!(
        inside, 0,
        "once failed inside run: a caller returned before the call ended"
    );
    assert_eq!(outside, 1, "once failed outside run");
}

/// Go: TestOncePanic. If the function panics, call_once propagates the panic and the
/// Once counts as done: a second call does not run its function. (In an isolated
/// goroutine, since a panic in a goroutine otherwise ends the process.)
#[test]
fn test_once_panic() {
    init(2);
    let r = gort::run(|| {
        gort::Builder::new()
            .isolate_panics(true)
            .spawn(|| {
                let once = Once::new();
                let first = std::panic::catch_unwind(|| once.call_once(|| panic!("failed")));
                let mut twice = false;
                once.call_once(|| twice = true);
                (first.is_err(), twice, once.is_completed())
            })
            .unwrap()
            .join()
    });
    let (panicked, twice, completed) = r.expect("panic escaped catch_unwind");
    assert!(panicked, "Once.Do did not panic");
    assert!(!twice, "Once.Do called twice");
    assert!(completed, "a panicked call does not count as done");
}

/// Once from plain threads and goroutines together: 4 threads and 4 goroutines race;
/// the function (sleeping 20 ms) runs once; every caller returns after it finished.
#[test]
fn once_with_plain_threads() {
    init(2);
    static ONCE: Once = Once::new();
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let f = || {
        ONCE.call_once(|| {
            gort::time::sleep(Duration::from_millis(20)); // a thread sleep on threads
            RUNS.fetch_add(1, SEQ);
        });
        RUNS.load(SEQ)
    };
    let ts: Vec<_> = (0..4).map(|_| std::thread::spawn(f)).collect();
    let gs: Vec<_> = (0..4).map(|_| gort::go(f)).collect();
    let seen: Vec<u32> = ts
        .into_iter()
        .map(|t| t.join().unwrap())
        .chain(gs.into_iter().map(|g| g.join().unwrap()))
        .collect();
    assert_eq!(RUNS.load(SEQ), 1, "ran more than once");
    assert_eq!(
        seen,
        vec![1; 8],
        "a caller returned before the call finished"
    );
}

// ---------------------------------------------------------------------------------
// Semaphore

/// Go: TestSemaphore (HammerSemaphore on a runtime semaphore of 1, through gort's
/// Semaphore): 10 goroutines acquire and release 1000 times each. Go checks only that it
/// finishes; gort also checks that at most one is inside.
#[test]
fn test_semaphore() {
    init(2);
    let overlaps = run_within(Duration::from_secs(20), || {
        let s = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let (c_tx, c_rx) = chan::bounded::<bool>(0);
        for _ in 0..10 {
            let (s, inside, overlaps, c_tx) =
                (s.clone(), inside.clone(), overlaps.clone(), c_tx.clone());
            gort::go(move || {
                for i in 0..1000 {
                    s.acquire();
                    if inside.fetch_add(1, SEQ) != 0 {
                        overlaps.fetch_add(1, SEQ);
                    }
                    if i % 100 == 0 {
                        gort::gosched();
                    }
                    inside.fetch_sub(1, SEQ);
                    s.release();
                }
                let _ = c_tx.send(true);
            });
        }
        for _ in 0..10 {
            c_rx.recv().unwrap();
        }
        assert_eq!(s.available(), 1);
        overlaps.load(SEQ)
    });
    assert_eq!(overlaps, 0, "two holders of a 1-permit semaphore");
}

/// A semaphore of 3 never lets more than 3 goroutines and threads in, and does let 3 in
/// together; try_acquire fails when none is left; available counts permits.
#[test]
fn semaphore_bounds_concurrency() {
    init(2);
    static S: Semaphore = Semaphore::new(3);
    static INSIDE: AtomicUsize = AtomicUsize::new(0);
    static MAX: AtomicUsize = AtomicUsize::new(0);
    let work = |sleep_thread: bool| {
        move || {
            for _ in 0..50 {
                S.acquire();
                let n = INSIDE.fetch_add(1, SEQ) + 1;
                MAX.fetch_max(n, SEQ);
                if sleep_thread {
                    std::thread::sleep(Duration::from_micros(200));
                } else {
                    gort::time::sleep(Duration::from_micros(200));
                }
                INSIDE.fetch_sub(1, SEQ);
                S.release();
            }
        }
    };
    let ts: Vec<_> = (0..3).map(|_| std::thread::spawn(work(true))).collect();
    run_within(Duration::from_secs(30), move || {
        let gs: Vec<_> = (0..12).map(|_| gort::go(work(false))).collect();
        for g in gs {
            g.join().unwrap();
        }
    });
    for t in ts {
        t.join().unwrap();
    }
    let max = MAX.load(SEQ);
    assert!(max <= 3, "{max} inside a semaphore of 3");
    assert_eq!(max, 3, "15 contenders never filled the 3 permits");
    assert_eq!(S.available(), 3);
    assert!(S.try_acquire() && S.try_acquire() && S.try_acquire());
    assert!(!S.try_acquire(), "try_acquire with no permit left");
    assert_eq!(S.available(), 0);
    // a thread blocked in acquire sleeps until a goroutine releases
    let (waited, cpu) = thread_within(Duration::from_secs(10), || {
        gort::go(|| {
            gort::time::sleep(Duration::from_millis(100));
            S.release();
        });
        let cpu0 = thread_cpu_time();
        let t = Instant::now();
        S.acquire();
        (t.elapsed(), thread_cpu_time() - cpu0)
    });
    assert!(
        waited >= Duration::from_millis(50),
        "acquire did not wait: {waited:?}"
    );
    assert!(
        cpu < waited / 2,
        "acquiring thread spun: {cpu:?} in {waited:?}"
    );
    for _ in 0..3 {
        S.release();
    }
}
