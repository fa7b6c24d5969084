//! Scheduler behaviour, with tests ported from Go's `runtime/proc_test.go` (named after
//! them) plus gort's own. GOMAXPROCS is 2 in this binary.

mod common;

use common::{init, is_child, run_child};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Go: TestGoroutineParallelism. 2 goroutines pass a token by busy-waiting on an atomic:
/// this only finishes if both really run at the same time on the 2 Ps.
#[test]
fn test_goroutine_parallelism() {
    init(2);
    gort::run(|| {
        const P: u64 = 2;
        const N: u64 = 1000;
        for _try in 0..10 {
            let x = Arc::new(AtomicU64::new(0));
            let wg = Arc::new(gort::sync::WaitGroup::new());
            wg.add(P as isize);
            for p in 0..P {
                let (x, wg) = (x.clone(), wg.clone());
                gort::go(move || {
                    for i in 0..N {
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while x.load(Ordering::SeqCst) != P * i + p {
                            assert!(Instant::now() < deadline, "no parallelism: token stuck");
                            std::hint::spin_loop();
                        }
                        x.store(P * i + p + 1, Ordering::SeqCst);
                    }
                    wg.done();
                });
            }
            wg.wait();
        }
    });
}

/// Go: TestYieldProgress. A goroutine that only yields must still see main's signal.
#[test]
fn test_yield_progress() {
    init(2);
    gort::run(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f2 = flag.clone();
        let h = gort::go(move || {
            let mut n = 0u64;
            while !f2.load(Ordering::Acquire) {
                gort::gosched();
                n += 1;
            }
            n
        });
        // main keeps its P busy for 10 ms; the yielder runs on the other P
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(10) {
            gort::gosched();
        }
        flag.store(true, Ordering::Release);
        assert!(h.join().unwrap() > 0);
    });
}

/// Go: TestNumGoroutine: the count equals the goroutines listed by `stack(true)`.
#[test]
fn test_num_goroutine() {
    if !is_child() {
        let out = run_child("test_num_goroutine", &[]);
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    init(2);
    gort::run(|| {
        assert_eq!(gort::num_goroutine(), 1, "only main at start");
        let gate = Arc::new(gort::sync::WaitGroup::new());
        gate.add(1);
        let hs: Vec<_> = (0..10)
            .map(|_| {
                let g = gate.clone();
                gort::go(move || g.wait())
            })
            .collect();
        let mut ok = false;
        for _ in 0..10 {
            let n = gort::num_goroutine();
            let dump = gort::stack(true);
            let headers = dump.lines().filter(|l| l.starts_with("goroutine ")).count();
            if n == headers && n == 11 {
                ok = true;
                break;
            }
            gort::gosched();
        }
        assert!(ok, "num_goroutine disagrees with stack(true)");
        gate.done();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(gort::num_goroutine(), 1, "joined goroutines are gone");
    });
}

/// Go: TestBigGOMAXPROCS: the runtime starts with 1024 Ps.
#[test]
fn test_big_gomaxprocs() {
    if !is_child() {
        let out = run_child("test_big_gomaxprocs", &[("GORT_MAXPROCS", "1024")]);
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let v = gort::run(|| {
        assert_eq!(gort::stats().procs, 1024);
        let hs: Vec<_> = (0..100u64).map(|i| gort::go(move || i)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(v, 4950);
}

/// Spawning from a plain thread (outside `run`) works, and so does joining there.
#[test]
fn spawn_and_join_from_plain_threads() {
    init(2);
    let hs: Vec<_> = (0..8u64)
        .map(|t| std::thread::spawn(move || gort::go(move || t * 10).join().unwrap()))
        .collect();
    let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(s, 280);
}

/// `goexit` runs destructors and `join` reports it.
#[test]
fn goexit_drops_and_reports() {
    init(2);
    struct D(Arc<AtomicUsize>);
    impl Drop for D {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    gort::run(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let d2 = drops.clone();
        let h = gort::go(move || {
            let _d = D(d2);
            gort::goexit();
        });
        let err = h.join().unwrap_err();
        assert!(err.is::<gort::Goexit>());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// Isolated panics come back from `join`, like std::thread.
#[test]
fn isolated_panic_is_returned_by_join() {
    init(2);
    gort::run(|| {
        let h = gort::Builder::new()
            .isolate_panics(true)
            .spawn(|| -> u32 { panic!("boom") })
            .unwrap();
        let e = h.join().unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"boom"));
        // the runtime is fine afterwards
        assert_eq!(gort::go(|| 7).join().unwrap(), 7);
    });
}

/// Bad spawn input is an error, not a crash.
#[test]
fn builder_rejects_bad_stack_sizes() {
    init(2);
    let e = gort::Builder::new()
        .stack_size(10)
        .spawn(|| ())
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = gort::Builder::new()
        .stack_size(usize::MAX / 2)
        .spawn(|| ())
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    // a big but valid stack works
    let h = gort::Builder::new()
        .name("big")
        .stack_size(8 << 20)
        .spawn(|| {
            let buf = [7u8; 4 << 20];
            std::hint::black_box(&buf)[123] as u32
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), 7);
}

/// `Config::init` after start is an error, not a panic.
#[test]
fn config_after_start_is_an_error() {
    init(2);
    gort::run(|| ());
    assert_eq!(
        gort::Config::new().maxprocs(3).init(),
        Err(gort::ConfigError::AlreadyStarted)
    );
}

/// Nested `run` inside a goroutine just calls the function; `run` borrows from its
/// caller.
#[test]
fn run_borrows_and_nests() {
    init(2);
    let data = String::from("borrowed");
    let s = gort::run(|| {
        let inner = gort::run(|| data.len());
        inner * 2
    });
    assert_eq!(s, 16);
}

/// Goroutine-local values follow the goroutine across threads.
#[test]
fn goroutine_locals_follow_the_goroutine() {
    init(2);
    gort::local! {
        static ID: std::cell::Cell<u64> = std::cell::Cell::new(0);
    }
    gort::run(|| {
        let hs: Vec<_> = (1..=50u64)
            .map(|i| {
                gort::go(move || {
                    ID.with(|v| v.set(i));
                    for _ in 0..100 {
                        gort::gosched();
                        assert_eq!(ID.with(|v| v.get()), i);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}

/// A local's initialiser may use other locals (no aliasing of the locals table).
#[test]
fn local_initialisers_may_use_other_locals() {
    init(2);
    gort::local! {
        static BASE: u64 = 40;
        static DERIVED: u64 = BASE.with(|b| b + 2);
    }
    let v = gort::run(|| gort::go(|| DERIVED.with(|d| *d)).join().unwrap());
    assert_eq!(v, 42);
    assert_eq!(DERIVED.with(|d| *d), 42); // on a plain thread too
}

/// sysmon asks a goroutine that has held its P for 10 ms to give way; a loop calling
/// `preempt_point` then lets the other goroutines run, even with GOMAXPROCS 1 (the
/// cooperative half of Go's TestPreemption).
#[test]
fn preempt_point_yields_after_a_time_slice() {
    if !is_child() {
        let out = run_child(
            "preempt_point_yields_after_a_time_slice",
            &[("GORT_MAXPROCS", "1")],
        );
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    gort::run(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f2 = flag.clone();
        let t = Instant::now();
        let hog = gort::go(move || {
            // the setter is queued behind us on the only P: it runs only if we yield
            let f3 = f2.clone();
            let setter = gort::go(move || f3.store(true, Ordering::Release));
            while !f2.load(Ordering::Acquire) {
                gort::preempt_point();
                assert!(t.elapsed() < Duration::from_secs(10), "never preempted");
            }
            setter.join().unwrap();
        });
        hog.join().unwrap();
        assert!(
            gort::stats().preemptions >= 1,
            "sysmon asked the hog to yield"
        );
    });
}

/// Blocking calls hand off their P (tests/syscall.rs has the TestPreemptionAfterSyscall
/// port; the 1 s variant with thread reclaim is below): 4
/// goroutines block in the OS for 300 ms at GOMAXPROCS 2 while another keeps making
/// progress; sysmon hands their Ps to other threads.
#[test]
fn blocking_calls_hand_off_the_processor() {
    init(2);
    gort::run(|| {
        let before = gort::stats().handoffs;
        let t = Instant::now();
        let blockers: Vec<_> = (0..4)
            .map(|_| gort::go(|| gort::blocking(|| std::thread::sleep(Duration::from_millis(300)))))
            .collect();
        let progress = gort::go(move || {
            let mut n = 0u64;
            while t.elapsed() < Duration::from_millis(200) {
                gort::gosched();
                n += 1;
            }
            n
        });
        let n = progress.join().unwrap();
        assert!(n > 1000, "only {n} yields while others blocked");
        assert!(
            t.elapsed() < Duration::from_millis(290),
            "progress waited for the blockers"
        );
        for b in blockers {
            b.join().unwrap();
        }
        assert!(
            gort::stats().handoffs > before,
            "sysmon retook Ps from blocked Ms"
        );
    });
}

/// A quick blocking call takes its P straight back; values and panics pass through.
#[test]
fn blocking_returns_values_and_panics() {
    init(2);
    gort::run(|| {
        assert_eq!(gort::blocking(|| 41 + 1), 42);
        let h = gort::Builder::new()
            .isolate_panics(true)
            .spawn(|| gort::blocking(|| -> u8 { panic!("in the call") }))
            .unwrap();
        assert!(h.join().is_err());
        assert_eq!(
            gort::blocking(gort::goid),
            0,
            "inside, gort sees a plain thread"
        );
    });
    assert_eq!(
        gort::blocking(|| 7),
        7,
        "outside the runtime it just calls f"
    );
}

/// The sysmon issue's blocking-call check: 4 goroutines block in the OS for 1 s at
/// GOMAXPROCS 2 while another keeps making progress; afterwards the extra threads the
/// hand-offs created exit once idle for the reclaim period (here `mreclaim=200` ms).
#[test]
fn idle_threads_are_reclaimed_after_blocking_burst() {
    if !is_child() {
        let out = common::run_child(
            "idle_threads_are_reclaimed_after_blocking_burst",
            &[("GORT_MAXPROCS", "2"), ("GORT_DEBUG", "mreclaim=200")],
        );
        common::assert_child_ok("idle_threads_are_reclaimed_after_blocking_burst", &out);
        return;
    }
    gort::run(|| {
        let t = Instant::now();
        let blockers: Vec<_> = (0..4)
            .map(|_| gort::go(|| gort::blocking(|| std::thread::sleep(Duration::from_secs(1)))))
            .collect();
        let progress = gort::go(move || {
            let (mut n, mut peak) = (0u64, 0usize);
            while t.elapsed() < Duration::from_millis(800) {
                gort::gosched();
                n += 1;
                if n % 64 == 0 {
                    peak = peak.max(gort::stats().threads);
                }
            }
            (n, peak)
        });
        let (n, peak) = progress.join().unwrap();
        assert!(n > 1000, "progress stalled behind blockers");
        for b in blockers {
            b.join().unwrap();
        }
        assert!(peak >= 4, "hand-offs needed extra threads (peak {peak})");
        gort::time::sleep(Duration::from_millis(800));
        let s = gort::stats();
        assert!(s.reclaimed_threads > 0, "no idle thread was reclaimed");
        assert!(
            s.threads < peak,
            "threads {} did not fall from the burst's peak {peak}",
            s.threads
        );
    });
}

/// Go: TestStopTheWorldDeadlock, adapted: GOMAXPROCS changes back and forth under load
/// (a self-respawning goroutine chain, yielders and channel traffic) must neither hang
/// nor lose a goroutine. Runs with GOMAXPROCS 3 in a child process.
#[test]
fn test_stop_the_world_deadlock() {
    if !is_child() {
        let out = common::run_child_within(
            "test_stop_the_world_deadlock",
            &[("GORT_MAXPROCS", "3")],
            Duration::from_secs(60),
        );
        common::assert_child_ok("test_stop_the_world_deadlock", &out);
        return;
    }
    gort::run(|| {
        assert_eq!(gort::gomaxprocs(0), 3);
        let stop = Arc::new(AtomicBool::new(false));
        // a chain of goroutines each spawning the next
        fn chain(stop: Arc<AtomicBool>, hops: Arc<AtomicU64>) {
            if stop.load(Ordering::Acquire) {
                return;
            }
            hops.fetch_add(1, Ordering::Relaxed);
            gort::go(move || chain(stop, hops));
        }
        let hops = Arc::new(AtomicU64::new(0));
        chain(stop.clone(), hops.clone());
        // yielders and channel traffic
        let (tx, rx) = gort::chan::bounded::<u64>(8);
        let producers: Vec<_> = (0..4u64)
            .map(|k| {
                let tx = tx.clone();
                gort::go(move || {
                    for i in 0..20_000u64 {
                        tx.send(k * 1_000_000 + i).unwrap();
                        if i % 7 == 0 {
                            gort::gosched();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let consumer = gort::go(move || rx.iter().count());
        // resize while all that runs (Go's test calls GOMAXPROCS 1000 times with the
        // same value; here it really changes, 1..=4, which at 1 P waits for the chain's
        // 10 ms slices, so fewer rounds keep the test to seconds)
        for i in 0..300usize {
            gort::gomaxprocs(1 + i % 4);
            if i % 10 == 0 {
                gort::gosched();
            }
        }
        gort::gomaxprocs(3);
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(consumer.join().unwrap(), 80_000, "lost a value");
        stop.store(true, Ordering::Release);
        assert!(
            hops.load(Ordering::Relaxed) > 100,
            "the chain made progress"
        );
        assert_eq!(gort::stats().procs, 3);
    });
}

/// gomaxprocs: 0 reads, a change returns the old value, a huge value is clamped, and
/// goroutines keep running across shrinking to 1 and growing back.
#[test]
fn gomaxprocs_reads_sets_and_clamps() {
    if !is_child() {
        let out = common::run_child(
            "gomaxprocs_reads_sets_and_clamps",
            &[("GORT_MAXPROCS", "2")],
        );
        common::assert_child_ok("gomaxprocs_reads_sets_and_clamps", &out);
        assert!(String::from_utf8_lossy(&out.stderr).contains("above the maximum"));
        return;
    }
    gort::run(|| {
        assert_eq!(gort::gomaxprocs(0), 2);
        assert_eq!(gort::gomaxprocs(1), 2);
        assert_eq!(gort::stats().procs, 1);
        let hs: Vec<_> = (0..1000u64).map(|i| gort::go(move || i)).collect();
        assert_eq!(
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>(),
            499_500
        );
        assert_eq!(gort::gomaxprocs(usize::MAX), 1);
        assert_eq!(gort::gomaxprocs(0), gort::MAX_PROCS);
        assert_eq!(gort::gomaxprocs(2), gort::MAX_PROCS);
        let hs: Vec<_> = (0..1000u64).map(|i| gort::go(move || i)).collect();
        assert_eq!(
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>(),
            499_500
        );
    });
}

/// CPU time consumed so far by the thread whose CPU clock is `clk`.
fn thread_cpu(clk: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    let r = unsafe { libc::clock_gettime(clk, &mut ts) };
    assert_eq!(r, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `run` returns promptly when its main goroutine finishes on another thread while the
/// caller's thread runs a ping-pong chain (two goroutines handing the CPU to each other
/// by direct switches, which never pass through the scheduler loop where `run` checks
/// its main goroutine). The caller's M stops switching directly once its main goroutine
/// is done; without that, `run` waited for sysmon to preempt the chain (10 ms into its
/// time slice). Measured as CPU time of the caller's thread after the main goroutine
/// finished, which other load on the machine does not stretch: ~30 us with the check
/// (also with two busy loops competing for the CPUs); medians of 3 ms without it
/// (0.02-2 ms when other load breaks the chain up by itself).
#[cfg(target_os = "linux")]
#[test]
fn run_returns_while_its_thread_runs_a_chain() {
    if !common::in_child(
        "run_returns_while_its_thread_runs_a_chain",
        &[("GORT_MAXPROCS", "2")],
    ) {
        return;
    }
    let mut clk: libc::clockid_t = 0;
    // SAFETY: our own thread's id; the call writes `clk`.
    let r = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clk) };
    assert_eq!(r, 0, "pthread_getcpuclockid");
    let mut lags: Vec<Duration> = (0..7)
        .map(|_| {
            let stop = Arc::new(AtomicBool::new(false));
            // this thread's CPU time when the main goroutine finished
            let finished_at = Arc::new(std::sync::Mutex::new(None::<Duration>));
            let fin = finished_at.clone();
            let s = stop.clone();
            gort::run(move || {
                // the chain: one goroutine that starts the other and then ping-pongs
                // with it; each readies the other into this P's empty runnext (no idle P
                // is woken for that) and parks, switching to it directly
                let s1 = s.clone();
                gort::go(move || {
                    let (a_tx, a_rx) = gort::chan::bounded::<u64>(0);
                    let (b_tx, b_rx) = gort::chan::bounded::<u64>(0);
                    gort::go(move || {
                        while let Ok(v) = a_rx.recv() {
                            if b_tx.send(v).is_err() {
                                break;
                            }
                        }
                    });
                    while !s1.load(Ordering::Relaxed) {
                        if a_tx.send(1).is_err() || b_rx.recv().is_err() {
                            break;
                        }
                    }
                });
                // main parks; a plain thread readies it 2 ms later, into the global
                // queue, where the other P's M finds it and runs it to its end
                let (done_tx, done_rx) = gort::chan::bounded::<()>(1);
                let waker = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(2));
                    done_tx.send(()).unwrap();
                });
                done_rx.recv().unwrap();
                waker.join().unwrap();
                // keep that M busy after we are gone (it would otherwise steal the
                // chain's runnext, and the chain would end by itself)
                let s2 = s.clone();
                gort::go(move || {
                    while !s2.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                });
                *fin.lock().unwrap() = Some(thread_cpu(clk));
            });
            let lag =
                thread_cpu(clk).saturating_sub(finished_at.lock().unwrap().expect("main finished"));
            stop.store(true, Ordering::Relaxed);
            // let this round's goroutines end, so that the next `run` gets a P
            while gort::num_goroutine() > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            lag
        })
        .collect();
    eprintln!("caller's CPU time from its main goroutine's end to run's return: {lags:?}");
    lags.sort();
    assert!(
        lags[3] < Duration::from_millis(1),
        "run returned after {:?} (median) of the caller's CPU time past its main goroutine",
        lags[3]
    );
}
