//! `lock_os_thread` / `unlock_os_thread`, ported from Go's proc_test.go and
//! runtime_linux_test/testprog where Go has the test.

mod common;

use common::{assert_child_ok, init, is_child, run_child_within};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

fn tid() -> ThreadId {
    std::thread::current().id()
}

/// The kernel id of the calling thread (from /proc/thread-self).
fn os_tid() -> u64 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("task id")
}

/// Go: TestYieldLocked. A locked goroutine yields and sleeps; it always resumes on its
/// own thread.
#[test]
fn test_yield_locked() {
    init(2);
    gort::run(|| {
        const N: usize = 10;
        let (tx, rx) = gort::chan::bounded::<bool>(0);
        gort::go(move || {
            gort::lock_os_thread();
            let me = tid();
            for _ in 0..N {
                gort::gosched();
                assert_eq!(tid(), me, "yield moved a locked goroutine");
                gort::time::sleep(Duration::from_millis(1));
                assert_eq!(tid(), me, "sleep moved a locked goroutine");
            }
            tx.send(true).unwrap();
            // gort::unlock_os_thread() is deliberately omitted
        });
        rx.recv().unwrap();
    });
}

/// Go: TestYieldLockedProgress (testYieldProgress(locked=true)). A locked goroutine that
/// keeps yielding must not keep the sender from making progress.
#[test]
fn test_yield_locked_progress() {
    init(2);
    gort::run(|| {
        let (c_tx, c_rx) = gort::chan::bounded::<bool>(0);
        let (ack_tx, ack_rx) = gort::chan::bounded::<bool>(0);
        gort::go(move || {
            gort::lock_os_thread();
            loop {
                gort::select! {
                    recv(c_rx) -> _ => {
                        ack_tx.send(true).unwrap();
                        return;
                    }
                    default => gort::gosched(),
                }
            }
        });
        gort::time::sleep(Duration::from_millis(10));
        c_tx.send(true).unwrap();
        ack_rx.recv().unwrap();
    });
}

/// Go: TestBlockLocked. A locked goroutine blocks on a channel send N times.
#[test]
fn test_block_locked() {
    init(2);
    gort::run(|| {
        const N: usize = 10;
        let (tx, rx) = gort::chan::bounded::<bool>(0);
        gort::go(move || {
            gort::lock_os_thread();
            let me = tid();
            for _ in 0..N {
                tx.send(true).unwrap();
                assert_eq!(tid(), me);
            }
            gort::unlock_os_thread();
        });
        for _ in 0..N {
            rx.recv().unwrap();
        }
    });
}

/// Go: TestLockOSThreadNesting.
#[test]
fn test_lock_os_thread_nesting() {
    init(2);
    gort::run(|| {
        gort::go(|| {
            assert_eq!(gort::lock_os_counts(), (0, 0));
            gort::lock_os_thread();
            gort::lock_os_thread();
            gort::unlock_os_thread();
            assert_eq!(gort::lock_os_counts(), (1, 0));
            gort::unlock_os_thread();
            assert_eq!(gort::lock_os_counts(), (0, 0));
        })
        .join()
        .unwrap();
    });
}

/// Go: UnlockOSThread without a lock is a no-op; so is locking on a plain thread.
#[test]
fn unlock_without_lock_is_a_noop() {
    init(2);
    gort::unlock_os_thread();
    gort::lock_os_thread();
    assert_eq!(gort::lock_os_counts(), (0, 0));
    gort::run(|| {
        gort::go(|| {
            gort::unlock_os_thread();
            gort::unlock_os_thread();
            assert_eq!(gort::lock_os_counts(), (0, 0));
            gort::lock_os_thread();
            assert_eq!(gort::lock_os_counts(), (1, 0));
            gort::unlock_os_thread();
        })
        .join()
        .unwrap();
    });
}

/// Go: TestLockOSThreadExit (testprog LockOSThreadAlt). A goroutine that exits while
/// locked takes its thread with it: the thread disappears from /proc/self/task.
#[test]
fn test_lock_os_thread_exit() {
    if !is_child() {
        let out = run_child_within("test_lock_os_thread_exit", &[], Duration::from_secs(60));
        assert_child_ok("test_lock_os_thread_exit", &out);
        let so = String::from_utf8_lossy(&out.stdout);
        assert!(so.contains("OK"), "{so}");
        return;
    }
    gort::run(|| {
        let (tx, rx) = gort::chan::bounded::<u64>(0);
        gort::go(move || {
            // this goroutine must be running on a worker thread
            gort::lock_os_thread();
            tx.send(os_tid()).unwrap();
            // exit with the thread locked
        });
        let sub = rx.recv().unwrap();
        for _ in 0..100 {
            gort::time::sleep(Duration::from_millis(1));
            if !std::path::Path::new(&format!("/proc/self/task/{sub}")).exists() {
                println!("OK");
                return;
            }
        }
        panic!("sub thread {sub} still running");
    });
}

/// The main goroutine of a process's first `run` starts on the caller's thread (Go's main
/// goroutine on m0) and may lock it: it parks and resumes on that thread, and `run` still
/// returns. (A child process: a later `run` in a busy process may find no free P, and
/// its main goroutine then starts wherever one frees up.)
#[test]
fn main_goroutine_locks_the_callers_thread() {
    if !is_child() {
        let name = "main_goroutine_locks_the_callers_thread";
        let out = run_child_within(name, &[("GORT_MAXPROCS", "2")], Duration::from_secs(60));
        assert_child_ok(name, &out);
        return;
    }
    let caller = tid();
    let v = gort::run(|| {
        gort::lock_os_thread();
        let me = tid();
        assert_eq!(
            me, caller,
            "the main goroutine starts on the caller's thread"
        );
        let (tx, rx) = gort::chan::bounded::<u32>(0);
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let tx = tx.clone();
                gort::go(move || tx.send(i).unwrap())
            })
            .collect();
        let mut sum = 0;
        for _ in 0..4 {
            sum += rx.recv().unwrap();
            assert_eq!(tid(), me);
        }
        for h in hs {
            h.join().unwrap();
            assert_eq!(tid(), me);
        }
        gort::time::sleep(Duration::from_millis(2));
        assert_eq!(tid(), me);
        sum
    });
    assert_eq!(v, 6);
}

/// Another goroutine that locks while it happens to run on the `run` caller's thread is
/// moved to a runtime thread first, so `run` can still return while it stays locked.
#[test]
fn goroutine_locking_on_run_thread_moves_off() {
    if !is_child() {
        let name = "goroutine_locking_on_run_thread_moves_off";
        let out = run_child_within(name, &[("GORT_MAXPROCS", "1")], Duration::from_secs(60));
        assert_child_ok(name, &out);
        return;
    }
    let caller = tid();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    gort::run(move || {
        // at GOMAXPROCS 1 the main goroutine's thread runs this goroutine when main parks
        let h = gort::go(move || {
            let before = tid();
            gort::lock_os_thread();
            tx.send((before, tid())).unwrap();
            while !s2.load(Ordering::Acquire) {
                gort::time::sleep(Duration::from_millis(1));
            }
        });
        gort::gosched();
        drop(h);
    });
    let (before, locked_on) = rx.recv().unwrap();
    assert_eq!(
        before, caller,
        "at GOMAXPROCS 1 it first ran on the caller's thread"
    );
    assert_ne!(
        locked_on, caller,
        "locked to a runtime thread, not the caller's"
    );
    stop.store(true, Ordering::Release);
}

/// A locked goroutine in a long blocking call: its P is retaken, and on return it
/// resumes on its own thread.
#[test]
fn locked_goroutine_survives_blocking_call_handoff() {
    init(2);
    gort::run(|| {
        gort::go(|| {
            gort::lock_os_thread();
            let me = tid();
            for _ in 0..3 {
                gort::blocking(|| std::thread::sleep(Duration::from_millis(30)));
                assert_eq!(tid(), me);
                gort::time::sleep(Duration::from_millis(1));
                assert_eq!(tid(), me);
            }
        })
        .join()
        .unwrap();
    });
}

/// Ping-pong between a locked goroutine and an unlocked one (the sysmon issue's
/// locked ping-pong; `gort-bench locked_pingpong` measures it): many round trips, each
/// resuming the locked goroutine on its thread.
#[test]
fn locked_ping_pong() {
    init(2);
    gort::run(|| {
        let n = 2000 * common::stress_factor();
        let (ping_tx, ping_rx) = gort::chan::bounded::<u64>(0);
        let (pong_tx, pong_rx) = gort::chan::bounded::<u64>(0);
        let locked = gort::go(move || {
            gort::lock_os_thread();
            let me = tid();
            for i in 0..n {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), i + 1);
                assert_eq!(tid(), me);
            }
        });
        let t = Instant::now();
        gort::go(move || {
            while let Ok(i) = ping_rx.recv() {
                pong_tx.send(i + 1).unwrap();
            }
        });
        locked.join().unwrap();
        eprintln!(
            "locked ping-pong: {:?} per round trip",
            t.elapsed() / n as u32
        );
    });
}

/// The goroutine dump marks locked goroutines as Go does.
#[test]
fn dump_says_locked_to_thread() {
    init(2);
    gort::run(|| {
        gort::lock_os_thread();
        let d = gort::stack(false);
        assert!(d.contains("locked to thread"), "{d}");
        gort::unlock_os_thread();
    });
}

/// Stress: goroutines lock and unlock their threads at random points while they talk
/// over channels, sleep, yield and block in the OS, and GOMAXPROCS changes under them.
/// Every locked stretch must stay on one thread; every message arrives exactly once; and
/// nothing hangs (child process with a deadline). `GORT_STRESS=N` runs N times longer.
#[test]
fn lock_os_thread_stress() {
    if !is_child() {
        for debug in ["", "migrate=1"] {
            let name = "lock_os_thread_stress";
            let out = run_child_within(
                name,
                &[("GORT_MAXPROCS", "3"), ("GORT_DEBUG", debug)],
                Duration::from_secs(120),
            );
            assert_child_ok(name, &out);
        }
        return;
    }
    let rounds = 2000 * common::stress_factor();
    gort::run(move || {
        const WORKERS: u64 = 16;
        let (tx, rx) = gort::chan::bounded::<u64>(4);
        let mut hs = Vec::new();
        for w in 0..WORKERS {
            let tx = tx.clone();
            hs.push(gort::go(move || {
                let mut seed = w.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut rnd = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                };
                let mut locked_on: Option<ThreadId> = None;
                for i in 0..rounds {
                    match rnd() % 8 {
                        0 if locked_on.is_none() => {
                            gort::lock_os_thread();
                            locked_on = Some(tid());
                        }
                        1 if locked_on.is_some() => {
                            gort::unlock_os_thread();
                            locked_on = None;
                        }
                        2 => gort::gosched(),
                        3 => gort::time::sleep(Duration::from_micros(rnd() % 200)),
                        4 => gort::blocking(|| std::thread::sleep(Duration::from_micros(50))),
                        _ => tx.send(w * 1_000_000 + i).unwrap(),
                    }
                    if let Some(t) = locked_on {
                        assert_eq!(tid(), t, "a locked goroutine moved");
                    }
                }
                if locked_on.is_some() && w % 2 == 0 {
                    gort::unlock_os_thread(); // odd workers exit locked: their threads end
                }
            }));
        }
        drop(tx);
        let resizer = gort::go(|| {
            for n in [1, 2, 3, 1, 3, 2, 3] {
                gort::gomaxprocs(n);
                gort::time::sleep(Duration::from_millis(3));
            }
        });
        let mut seen = std::collections::HashSet::new();
        for v in rx {
            assert!(seen.insert(v), "message {v} arrived twice");
        }
        for h in hs {
            h.join().unwrap();
        }
        resizer.join().unwrap();
        assert!(!seen.is_empty());
    });
}
