//! sysmon's hog hand-off and preemption, ported from Go's proc_test.go where Go has the
//! test, as child processes (each needs its own GOMAXPROCS and a quiet runtime).

mod common;

use common::{assert_child_ok, is_child, stress_factor};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `common::run_child_within`, one child at a time: these children spin hogs on every
/// CPU or measure timer lateness, so two running at once would measure each other.
fn run_child_within(name: &str, env: &[(&str, &str)], limit: Duration) -> std::process::Output {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::run_child_within(name, env, limit)
}

/// Fails the child if it runs longer than `limit` (a hang must be a failure, not a CI
/// timeout). The parent kills the child later still.
fn watchdog(limit: Duration, what: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("{what}: still running after {limit:?}");
        std::process::exit(3);
    });
}

/// Waits (at most 5 s) until sysmon has withdrawn every relief P.
fn wait_relief_withdrawn() {
    let t = Instant::now();
    while gort::stats().relief_procs != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "relief P never withdrawn"
        );
        gort::time::sleep(Duration::from_millis(1));
    }
}

/// Go: TestPreemption. Two goroutines busy-wait on an atomic turn variable without ever
/// calling gort, at GOMAXPROCS 1: each hand-off needs the other goroutine to run while
/// the first still spins, which only sysmon's hog hand-off (a relief P) makes possible.
#[test]
fn test_preemption() {
    if !is_child() {
        let out = run_child_within(
            "test_preemption",
            &[("GORT_MAXPROCS", "1")],
            Duration::from_secs(60),
        );
        assert_child_ok("test_preemption", &out);
        return;
    }
    watchdog(Duration::from_secs(30), "TestPreemption");
    gort::run(|| {
        const N: u32 = 5;
        let x = Arc::new(AtomicU32::new(0));
        let (tx, rx) = gort::chan::bounded::<bool>(0);
        for g in 0..2u32 {
            let x = x.clone();
            let tx = tx.clone();
            gort::go(move || {
                for _ in 0..N {
                    while x.load(Ordering::SeqCst) != g {
                        std::hint::spin_loop(); // no gort call: Go's preempt() is a plain call
                    }
                    x.store(1 - g, Ordering::SeqCst);
                }
                tx.send(true).unwrap();
            });
        }
        rx.recv().unwrap();
        rx.recv().unwrap();
        let s = gort::stats();
        assert!(s.hogs >= 1, "the hand-offs needed the hog hand-off: {s:?}");
        assert_eq!(gort::gomaxprocs(0), 1, "relief Ps do not change GOMAXPROCS");
    });
}

/// After the hogs give way the relief Ps are withdrawn: the active P count returns to
/// GOMAXPROCS (stats show no relief, and goroutines again share the one P).
#[test]
fn relief_procs_are_withdrawn() {
    if !is_child() {
        let out = run_child_within(
            "relief_procs_are_withdrawn",
            &[("GORT_MAXPROCS", "1")],
            Duration::from_secs(60),
        );
        assert_child_ok("relief_procs_are_withdrawn", &out);
        return;
    }
    watchdog(Duration::from_secs(30), "relief_procs_are_withdrawn");
    gort::run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let hog = gort::go(move || {
            while !s2.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        // the main goroutine itself is queued behind the hog on the only P: it runs
        // again only on a relief P
        gort::gosched();
        let lent = gort::stats();
        assert!(lent.relief_procs >= 1, "a relief P is lent: {lent:?}");
        stop.store(true, Ordering::Relaxed);
        hog.join().unwrap();
        wait_relief_withdrawn();
        assert_eq!(gort::gomaxprocs(0), 1);
    });
}

/// The sysmon issue's timers-under-hogs check (Go weakness #38860): 1000 goroutines sleep
/// 1 ms in a loop while two goroutines spin without calling gort, at GOMAXPROCS 2. Go
/// reaches a p99 lateness of 43.7 ms here; ours must stay under 5 ms.
///
/// An unoptimised build runs the runtime several times slower, so 1000 sleepers would
/// measure the debug build's CPU cost rather than the hand-off: debug builds use 250
/// sleepers; `.ci/run` also runs this file with `--release` for the full check.
#[test]
fn timers_run_while_goroutines_hog_every_p() {
    if !is_child() {
        let out = run_child_within(
            "timers_run_while_goroutines_hog_every_p",
            &[("GORT_MAXPROCS", "2")],
            Duration::from_secs(60),
        );
        assert_child_ok("timers_run_while_goroutines_hog_every_p", &out);
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        return;
    }
    watchdog(Duration::from_secs(30), "timers under hogs");
    gort::run(|| {
        let secs = stress_factor();
        let stop = Arc::new(AtomicBool::new(false));
        let mut hogs = Vec::new();
        for _ in 0..2 {
            let stop = stop.clone();
            hogs.push(gort::go(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_add(1);
                    std::hint::spin_loop();
                }
                n
            }));
        }
        let mut sleepers = Vec::new();
        let end = Instant::now() + Duration::from_secs(secs);
        let n = if cfg!(debug_assertions) { 250 } else { 1000 };
        for _ in 0..n {
            sleepers.push(gort::go(move || {
                let mut late = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    gort::time::sleep(Duration::from_millis(1));
                    late.push(t.elapsed().saturating_sub(Duration::from_millis(1)));
                }
                late
            }));
        }
        let mut late: Vec<Duration> = Vec::new();
        for s in sleepers {
            late.extend(s.join().unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        for h in hogs {
            assert!(h.join().unwrap() > 0);
        }
        late.sort();
        let q = |f: f64| late[((late.len() - 1) as f64 * f) as usize];
        let (p50, p99) = (q(0.5), q(0.99));
        println!(
            "timers under 2 hogs at 2 Ps, {n} sleepers: {} sleeps, p50 {:?}, p99 {:?}, max {:?}",
            late.len(),
            p50,
            p99,
            late[late.len() - 1]
        );
        assert!(
            late.len() > 100 * n * secs as usize,
            "sleepers made progress"
        );
        assert!(p99 <= Duration::from_millis(5), "p99 lateness {p99:?}");
    });
}

/// `GORT_DEBUG=hogreport=1` names the hog and where it was created, and reports when it
/// gives way.
#[test]
fn hogreport_names_the_goroutine() {
    if !is_child() {
        let out = run_child_within(
            "hogreport_names_the_goroutine",
            &[("GORT_MAXPROCS", "1"), ("GORT_DEBUG", "hogreport=1")],
            Duration::from_secs(60),
        );
        assert_child_ok("hogreport_names_the_goroutine", &out);
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find(|l| l.contains("without a preemption check"))
            .unwrap_or_else(|| panic!("no hog report in:\n{err}"));
        assert!(line.starts_with("gort: hogreport: goroutine "), "{line}");
        assert!(err.contains("created at tests/sysmon.rs:"), "{err}");
        assert!(err.contains("gave way after"), "{err}");
        return;
    }
    watchdog(Duration::from_secs(30), "hogreport");
    gort::run(|| {
        let t = Instant::now();
        let hog = gort::go(move || {
            while t.elapsed() < Duration::from_millis(100) {
                std::hint::spin_loop();
            }
        });
        hog.join().unwrap();
        // let sysmon see the slice end
        gort::time::sleep(Duration::from_millis(30));
    });
}

/// Stress: hogs come and go (busy loops of 0-40 ms without a gort call) while other
/// goroutines exchange messages, loop on blocking calls, and GOMAXPROCS changes. Nothing
/// may hang or be lost, and once the hogs are done the relief Ps are withdrawn.
/// `GORT_STRESS=N` runs N times longer.
#[test]
fn hogs_blocking_calls_and_resizes() {
    if !is_child() {
        let name = "hogs_blocking_calls_and_resizes";
        let out = run_child_within(name, &[("GORT_MAXPROCS", "2")], Duration::from_secs(120));
        assert_child_ok(name, &out);
        return;
    }
    watchdog(Duration::from_secs(60 * stress_factor()), "hog stress");
    gort::run(|| {
        let rounds = 20 * stress_factor();
        let hogs: Vec<_> = (0..3u64)
            .map(|h| {
                gort::go(move || {
                    for r in 0..rounds {
                        let t = Instant::now();
                        let spin = Duration::from_millis((h * 7 + r * 13) % 41);
                        while t.elapsed() < spin {
                            std::hint::spin_loop();
                        }
                        gort::time::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        let (tx, rx) = gort::chan::bounded::<u64>(0);
        let senders: Vec<_> = (0..4u64)
            .map(|s| {
                let tx = tx.clone();
                gort::go(move || {
                    for i in 0..rounds * 50 {
                        if i % 10 == 0 {
                            gort::blocking(|| std::thread::sleep(Duration::from_micros(100)));
                        }
                        tx.send(s * 1_000_000 + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let resizer = gort::go(move || {
            for i in 0..rounds {
                gort::gomaxprocs(1 + (i as usize % 3));
                gort::time::sleep(Duration::from_millis(5));
            }
            gort::gomaxprocs(2);
        });
        let mut n = 0u64;
        let mut seen = std::collections::HashSet::new();
        for v in rx {
            assert!(seen.insert(v));
            n += 1;
        }
        assert_eq!(n, 4 * rounds * 50);
        for h in hogs.into_iter().chain(senders) {
            h.join().unwrap();
        }
        resizer.join().unwrap();
        wait_relief_withdrawn();
        assert_eq!(gort::gomaxprocs(0), 2);
    });
}

/// Goroutines queued behind a hog on a P that GOMAXPROCS no longer counts: nobody steals
/// from such a P, and it retires only when the hog yields, so sysmon moves its queue to
/// the global queue. Here each hog waits (without a gort call) for the goroutines it
/// queued itself, and GOMAXPROCS drops from 3 to 1 under them: without the rescue the
/// hogs on the dropped Ps wait forever.
#[test]
fn queues_behind_hogs_on_removed_ps_are_rescued() {
    if !is_child() {
        let name = "queues_behind_hogs_on_removed_ps_are_rescued";
        let out = run_child_within(name, &[("GORT_MAXPROCS", "3")], Duration::from_secs(60));
        assert_child_ok(name, &out);
        return;
    }
    watchdog(Duration::from_secs(20), "rescue of queues on removed Ps");
    for round in 0..5 {
        gort::gomaxprocs(3);
        let started = Arc::new(AtomicU32::new(0));
        let hogs: Vec<_> = (0..3)
            .map(|_| {
                let started = started.clone();
                gort::go(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let done = Arc::new(AtomicU32::new(0));
                    for _ in 0..3 {
                        let done = done.clone();
                        gort::go(move || {
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    // no gort call from here on: our children sit in our P's queue
                    while done.load(Ordering::SeqCst) != 3 {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) != 3 {
            std::thread::yield_now();
        }
        gort::gomaxprocs(1);
        for h in hogs {
            h.join().unwrap();
        }
        eprintln!("round {round} ok");
    }
}
