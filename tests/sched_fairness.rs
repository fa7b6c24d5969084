//! Scheduler fairness, ported by name from Go's `runtime/proc_test.go`: the run-next
//! slot must not let a ping-ponging pair hog a P, and timers must fire while goroutines
//! keep each other busy. GOMAXPROCS is 2 in this binary; GOMAXPROCS 1 variants run as
//! child processes. (The LockOSThread tests are in `lockosthread.rs`.)

mod common;

use common::{assert_child_ok, init, is_child, run_child_within};
use gort::chan::{self, RecvTimeoutError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Go: TestPingPongHog, with GOMAXPROCS 1 (child process). Two pairs of goroutines
/// ping-pong over unbuffered channels for ~100 ms: the "hog" pair does 1e6 units of work
/// per hand-off, the "light" pair 1e3. A woken partner goes into `runnext` and inherits
/// the time slice, so each pair keeps the P while it ping-pongs; Go's sysmon preempts a
/// time slice after 10 ms, so both pairs get turns and their counters end within a
/// factor of 20 (Go: "if the scheduler isn't working right, the gap should be ~1000X").
///
/// In gort, sysmon asks a goroutine whose time slice passed 10 ms to give way, and
/// every channel operation checks that request (`preempt_point`), which plays the part
/// of Go's preemption here.
#[test]
fn test_ping_pong_hog() {
    if !is_child() {
        let env = [("GORT_MAXPROCS", "1")];
        let out = run_child_within("test_ping_pong_hog", &env, Duration::from_secs(30));
        assert_child_ok("test_ping_pong_hog", &out);
        return;
    }
    let (hog, light) = gort::run(|| {
        let (done_tx, done_rx) = chan::bounded::<()>(0);
        let (hog_tx, hog_rx) = chan::bounded::<bool>(0);
        let (light_tx, light_rx) = chan::bounded::<bool>(0);
        let hog_count = Arc::new(AtomicU64::new(0));
        let light_count = Arc::new(AtomicU64::new(0));
        let run = |limit: u64,
                   counter: Arc<AtomicU64>,
                   wake_tx: chan::Sender<bool>,
                   wake_rx: chan::Receiver<bool>| {
            let done_rx = done_rx.clone();
            move || loop {
                gort::select! {
                    recv(done_rx) -> _ => return,
                    recv(wake_rx) -> _ => {
                        let mut n = 0u64;
                        for _ in 0..limit {
                            n = std::hint::black_box(n + 1);
                        }
                        counter.fetch_add(n, Ordering::Relaxed);
                        let _ = wake_tx.send(true);
                    }
                }
            }
        };
        // two co-scheduled hog goroutines, then two light ones
        for _ in 0..2 {
            gort::go(run(
                1_000_000,
                hog_count.clone(),
                hog_tx.clone(),
                hog_rx.clone(),
            ));
        }
        for _ in 0..2 {
            gort::go(run(
                1_000,
                light_count.clone(),
                light_tx.clone(),
                light_rx.clone(),
            ));
        }
        // start the pairs and wait for a few preemption rounds
        hog_tx.send(true).unwrap();
        light_tx.send(true).unwrap();
        gort::time::sleep(Duration::from_millis(100));
        done_tx.close();
        let _ = hog_rx.recv();
        let _ = light_rx.recv();
        (
            hog_count.load(Ordering::Relaxed),
            light_count.load(Ordering::Relaxed),
        )
    });
    println!("hog {hog}, light {light}");
    const FACTOR: u64 = 20;
    assert!(
        hog / FACTOR <= light && light / FACTOR <= hog,
        "want hog/light in [1/{FACTOR}, {FACTOR}]; got {hog}/{light} = {}",
        hog as f64 / light.max(1) as f64
    );
}

/// Go: TestTimerFairness's body: two goroutines keep sending on an unbuffered channel
/// that main receives from in a select that also waits on `after(20 ms)`; the timer
/// must win eventually (within 5 s here) although the channel is always ready.
/// Returns how long it took.
fn timer_fairness() -> Result<Duration, String> {
    let (done_tx, done_rx) = chan::bounded::<()>(0);
    let (c_tx, c_rx) = chan::bounded::<bool>(0);
    let spammers: Vec<_> = (0..2)
        .map(|_| {
            let (done_rx, c_tx) = (done_rx.clone(), c_tx.clone());
            gort::go(move || loop {
                gort::select! {
                    send(c_tx, true) -> _ => {}
                    recv(done_rx) -> _ => return,
                }
            })
        })
        .collect();
    let t = Instant::now();
    let timer = chan::after(Duration::from_millis(20));
    let mut received = 0u64;
    let r = loop {
        let fired = gort::select! {
            recv(c_rx) -> _ => false,
            recv(timer) -> _ => true,
        };
        if fired {
            break Ok(t.elapsed());
        }
        received += 1;
        if t.elapsed() > Duration::from_secs(5) {
            break Err(format!(
                "timer not seen after {:?} ({received} receives)",
                t.elapsed()
            ));
        }
    };
    done_tx.close();
    for s in spammers {
        s.join().unwrap();
    }
    r
}

/// Go: TestTimerFairness (GOMAXPROCS 2, this binary's setting).
#[test]
fn test_timer_fairness() {
    init(2);
    let r = gort::run(timer_fairness);
    let took = r.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        took >= Duration::from_millis(20),
        "timer fired early: {took:?}"
    );
}

/// TestTimerFairness with GOMAXPROCS 1 (child process; gort's own variant): main and
/// both senders share one P, which only checks timers between goroutine switches.
#[test]
fn timer_fairness_one_p() {
    if !is_child() {
        let env = [("GORT_MAXPROCS", "1")];
        let out = run_child_within("timer_fairness_one_p", &env, Duration::from_secs(30));
        assert_child_ok("timer_fairness_one_p", &out);
        return;
    }
    let r = gort::run(|| {
        assert_eq!(gort::stats().procs, 1);
        timer_fairness()
    });
    let took = r.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        took >= Duration::from_millis(20),
        "timer fired early: {took:?}"
    );
}

/// Go: TestTimerFairness2's body: two goroutines each make a zero-length `read(0)`
/// system call and then select on sending to, or receiving from, a shared unbuffered
/// channel, or their own `after(20 ms)`; each must see its own timer (within 5 s here).
/// gort has no system-call hand-off yet, so the read is just a short system call on the
/// goroutine's thread, as in Go when it does not block.
fn timer_fairness2() -> Result<(), String> {
    let (done_tx, done_rx) = chan::bounded::<Duration>(0);
    let (c_tx, c_rx) = chan::bounded::<bool>(0);
    for _ in 0..2 {
        let (done_tx, c_tx, c_rx) = (done_tx.clone(), c_tx.clone(), c_rx.clone());
        gort::go(move || {
            let t = Instant::now();
            let timer = chan::after(Duration::from_millis(20));
            let mut buf = [0u8; 1];
            loop {
                // SAFETY: a zero-length read into a valid buffer; the result is ignored.
                unsafe { libc::read(0, buf.as_mut_ptr().cast(), 0) };
                let fired = gort::select! {
                    send(c_tx, true) -> _ => false,
                    recv(c_rx) -> _ => false,
                    recv(timer) -> _ => true,
                };
                if fired || t.elapsed() > Duration::from_secs(5) {
                    let _ = done_tx.send(t.elapsed());
                    return;
                }
            }
        });
    }
    for _ in 0..2 {
        let took = done_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e: RecvTimeoutError| format!("goroutine hung: {e:?}"))?;
        if took > Duration::from_secs(5) {
            return Err(format!("a goroutine did not see its timer in {took:?}"));
        }
    }
    Ok(())
}

/// Go: TestTimerFairness2 (GOMAXPROCS 2, this binary's setting).
#[test]
fn test_timer_fairness2() {
    init(2);
    gort::run(timer_fairness2).unwrap_or_else(|e| panic!("{e}"));
}

/// TestTimerFairness2 with GOMAXPROCS 1 (child process; gort's own variant).
#[test]
fn timer_fairness2_one_p() {
    if !is_child() {
        let env = [("GORT_MAXPROCS", "1")];
        let out = run_child_within("timer_fairness2_one_p", &env, Duration::from_secs(30));
        assert_child_ok("timer_fairness2_one_p", &out);
        return;
    }
    let r = gort::run(|| {
        assert_eq!(gort::stats().procs, 1);
        timer_fairness2()
    });
    r.unwrap_or_else(|e| panic!("{e}"));
}

/// How long a goroutine readied into its waker's `runnext` waits to run, while the waker
/// goes on running (on its thread) and calls `between` in its loop: the median of 5
/// rounds, and in how many it ran on another thread (taken by the idle P, not run after
/// the waker's slice). Run in a child with GOMAXPROCS 2 (one P stays idle, so Go
/// would hand the goroutine to it at once). A round gives up after 2 s.
fn readied_latency(between: fn()) -> (Duration, usize) {
    gort::run(move || {
        let mut elsewhere = 0;
        let mut lat: Vec<Duration> = (0..5)
            .map(|_| {
                let (tx, rx) = chan::bounded::<Instant>(0);
                let ran_after_us = Arc::new(AtomicU64::new(u64::MAX));
                let r2 = ran_after_us.clone();
                let h = gort::go(move || {
                    let sent = rx.recv().unwrap();
                    r2.store(sent.elapsed().as_micros() as u64, Ordering::SeqCst);
                    std::thread::current().id()
                });
                gort::time::sleep(Duration::from_millis(5)); // it is parked in recv by now
                let me = std::thread::current().id();
                tx.send(Instant::now()).unwrap(); // into our runnext
                let start = Instant::now();
                while ran_after_us.load(Ordering::SeqCst) == u64::MAX
                    && start.elapsed() < Duration::from_secs(2)
                {
                    between();
                }
                elsewhere += usize::from(h.join().unwrap() != me);
                Duration::from_micros(ran_after_us.load(Ordering::SeqCst))
            })
            .collect();
        eprintln!("rounds: {lat:?}");
        lat.sort();
        (lat[2], elsewhere)
    })
}

/// Runs test `name` as a child with GOMAXPROCS 2 and prints what it printed.
fn latency_child(name: &str) {
    let out = run_child_within(name, &[("GORT_MAXPROCS", "2")], Duration::from_secs(30));
    assert_child_ok(name, &out);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

/// gort defers the wake-up of an idle P for a goroutine readied into `runnext` (the
/// readier usually parks next, and its own P runs it). A readier that keeps running
/// makes the wake-up happen at its second gort call after the ready: the idle P takes
/// the goroutine, on another thread, well before the readier's 10 ms time slice ends.
/// (The woken thread is usually running within 100 us; sometimes the kernel first puts
/// it on the busy CPU, behind the readier's thread, for a few milliseconds, and now and
/// then for longer than the slice: hence the median of 5 rounds.)
#[test]
fn readied_goroutine_runs_while_readier_makes_gort_calls() {
    if !is_child() {
        return latency_child("readied_goroutine_runs_while_readier_makes_gort_calls");
    }
    let (lat, elsewhere) = readied_latency(gort::preempt_point);
    eprintln!("readied goroutine ran after {lat:?} (median; readier calling preempt_point)");
    assert!(
        elsewhere >= 3,
        "the readied goroutine waited for the readier's P"
    );
    assert!(lat < Duration::from_millis(8), "ran after {lat:?}");
}

/// As above with a readier that makes no gort call at all: the ready ended sysmon's
/// sleep (`sysmon::nudge`), and sysmon sees the goroutine still waiting in `runnext` at
/// two looks 500 us apart and wakes an idle P for it (about 1 ms; it was 7 ms before the
/// nudge, and up to 20 ms with sysmon backed off).
#[test]
fn readied_goroutine_runs_while_readier_computes() {
    if !is_child() {
        return latency_child("readied_goroutine_runs_while_readier_computes");
    }
    let (lat, elsewhere) = readied_latency(std::hint::spin_loop);
    eprintln!("readied goroutine ran after {lat:?} (median; readier computing)");
    assert!(
        elsewhere >= 3,
        "the readied goroutine waited for the readier's P"
    );
    assert!(lat < Duration::from_millis(5), "ran after {lat:?}");
}
