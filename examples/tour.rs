//! A tour of gort: a million goroutines alive at once, a work-stealing fan-out,
//! yielding goroutines, a channel pipeline with `select!`, 100,000 sleepers, goroutines
//! that hog every CPU without ever calling gort, and blocking calls and a goroutine
//! locked to its thread: each with what it cost.
//!
//! Run it with `cargo run --release --example tour`.

use gort::sync::WaitGroup;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn million_parked(n: usize) {
    let started: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    let gate: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    let finished: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    let rss0 = rss_mib();
    let t = Instant::now();
    gate.add(1);
    started.add(n as isize);
    finished.add(n as isize);
    for _ in 0..n {
        gort::go(move || {
            started.done();
            gate.wait(); // parked until main opens the gate
            finished.done();
        });
    }
    started.wait();
    let up = t.elapsed();
    let live = gort::num_goroutine();
    let rss1 = rss_mib();
    let t2 = Instant::now();
    gate.done();
    finished.wait();
    let down = t2.elapsed();
    println!(
        "1. {n} goroutines alive at once: started in {:.0} ms ({:.0} ns each), \
         {live} live, RSS +{:.0} MiB ({:.0} B per parked goroutine); all released and \
         finished in {:.0} ms",
        up.as_secs_f64() * 1e3,
        up.as_nanos() as f64 / n as f64,
        rss1 - rss0,
        (rss1 - rss0) * 1048576.0 / n as f64,
        down.as_secs_f64() * 1e3
    );
}

fn fan_out(tasks: u64) {
    fn work(seed: u64) -> u64 {
        // ~20 µs of arithmetic
        let mut x = seed | 1;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        x
    }
    let before = gort::stats();
    let t = Instant::now();
    let total: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let wg: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    wg.add(tasks as isize);
    for i in 0..tasks {
        gort::go(move || {
            total.fetch_add(work(i) & 1, Ordering::Relaxed);
            wg.done();
        });
    }
    wg.wait();
    let el = t.elapsed();
    let serial = Instant::now();
    let mut s = 0;
    for i in 0..tasks / 10 {
        s += work(i) & 1;
    }
    std::hint::black_box(s);
    let serial = serial.elapsed() * 10;
    let after = gort::stats();
    println!(
        "2. fan-out of {tasks} CPU tasks from one goroutine over {} Ps: {:.0} ms \
         (serial estimate {:.0} ms, speed-up {:.2}x), {} steals",
        after.procs,
        el.as_secs_f64() * 1e3,
        serial.as_secs_f64() * 1e3,
        serial.as_secs_f64() / el.as_secs_f64(),
        after.steals - before.steals
    );
}

fn yields(goroutines: u64, each: u64) {
    let t = Instant::now();
    let wg: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    wg.add(goroutines as isize);
    for _ in 0..goroutines {
        gort::go(move || {
            for _ in 0..each {
                gort::gosched();
            }
            wg.done();
        });
    }
    wg.wait();
    let el = t.elapsed();
    println!(
        "3. {goroutines} goroutines x {each} yields: {:.0} ms, {:.1} ns per yield",
        el.as_secs_f64() * 1e3,
        el.as_nanos() as f64 / (goroutines * each) as f64
    );
}

fn pipeline(items: u64) {
    use gort::chan;
    // generator -> 4 squarers -> summer, over unbuffered channels, with a deadline
    let t = Instant::now();
    let (src_tx, src_rx) = chan::bounded::<u64>(0);
    let (sq_tx, sq_rx) = chan::bounded::<u64>(0);
    gort::go(move || {
        for i in 0..items {
            src_tx.send(i).unwrap();
        }
    });
    for _ in 0..4 {
        let (rx, tx) = (src_rx.clone(), sq_tx.clone());
        gort::go(move || {
            for v in rx.iter() {
                tx.send(v * v).unwrap();
            }
        });
    }
    drop((src_rx, sq_tx));
    let deadline = chan::after(std::time::Duration::from_secs(30));
    let mut sum = 0u64;
    let mut n = 0u64;
    loop {
        gort::select! {
            recv(sq_rx) -> v => match v {
                Ok(v) => { sum += v; n += 1; }
                Err(_) => break,
            },
            recv(deadline) -> _ => { println!("   (deadline hit)"); break; }
        }
    }
    let el = t.elapsed();
    println!(
        "4. channel pipeline (generator -> 4 workers -> select with a deadline): {n} items, \
         sum of squares {sum}, {:.0} ms ({:.0} ns per item)",
        el.as_secs_f64() * 1e3,
        el.as_nanos() as f64 / n.max(1) as f64
    );
}

fn sleepers(n: usize) {
    let t = Instant::now();
    let wg: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    let worst: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    wg.add(n as isize);
    for _ in 0..n {
        gort::go(move || {
            let d = std::time::Duration::from_millis(10);
            let t0 = Instant::now();
            gort::time::sleep(d);
            worst.fetch_max((t0.elapsed() - d).as_micros() as u64, Ordering::Relaxed);
            wg.done();
        });
    }
    wg.wait();
    println!(
        "5. {n} goroutines each sleeping 10 ms: all done in {:.0} ms, worst lateness {} us",
        t.elapsed().as_secs_f64() * 1e3,
        worst.load(Ordering::Relaxed)
    );
}

/// Goroutines that spin without any gort call on every P: sysmon lends their queues
/// relief Ps (the hog hand-off), so sleepers and a ping-pong keep going meanwhile.
fn hogs(ms: u64) {
    let procs = gort::gomaxprocs(0);
    let stop: &'static std::sync::atomic::AtomicBool =
        Box::leak(Box::new(std::sync::atomic::AtomicBool::new(false)));
    let hogs: Vec<_> = (0..procs)
        .map(|_| {
            gort::go(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_add(1); // no gort call: no preemption point
                }
                n
            })
        })
        .collect();
    let t = Instant::now();
    let mut late: Vec<std::time::Duration> = Vec::new();
    while t.elapsed() < std::time::Duration::from_millis(ms) {
        let t0 = Instant::now();
        gort::time::sleep(std::time::Duration::from_millis(1));
        late.push(t0.elapsed() - std::time::Duration::from_millis(1));
    }
    let naps = late.len();
    let first = late[0];
    let mut rest = late.split_off(1);
    rest.sort();
    let median = rest.get(rest.len() / 2).copied().unwrap_or_default();
    let worst = rest.last().copied().unwrap_or_default();
    let relief = gort::stats().relief_procs;
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    println!(
        "6. {procs} goroutines spinning with no gort call on all {procs} Ps for {ms} ms: \
         meanwhile main slept 1 ms {naps} times (the first {} us late, before sysmon saw \
         the hogs; after it median {} us, worst {} us late; {relief} relief Ps lent by the \
         hog hand-off, {} hogs seen)",
        first.as_micros(),
        median.as_micros(),
        worst.as_micros(),
        gort::stats().hogs
    );
}

/// Goroutines in blocking calls hand their P on; a goroutine locked to its thread
/// ping-pongs with an unlocked one.
fn blocking_and_locked(rounds: u64) {
    let t = Instant::now();
    let blockers: Vec<_> = (0..8)
        .map(|_| {
            gort::go(|| {
                gort::blocking(|| std::thread::sleep(std::time::Duration::from_millis(100)))
            })
        })
        .collect();
    let yields = gort::go(|| {
        let mut n = 0u64;
        let t = Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(50) {
            gort::gosched();
            n += 1;
        }
        n
    });
    let n = yields.join().unwrap();
    for b in blockers {
        b.join().unwrap();
    }
    let blocked = t.elapsed();
    let (ping_tx, ping_rx) = gort::chan::bounded::<u64>(0);
    let (pong_tx, pong_rx) = gort::chan::bounded::<u64>(0);
    let echo = gort::go(move || {
        gort::lock_os_thread();
        let me = std::thread::current().id();
        for v in ping_rx {
            assert_eq!(std::thread::current().id(), me, "a locked goroutine moved");
            pong_tx.send(v).unwrap();
        }
    });
    let t = Instant::now();
    for i in 0..rounds {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i);
    }
    let rt = t.elapsed();
    drop(ping_tx);
    echo.join().unwrap();
    println!(
        "7. 8 goroutines blocked 100 ms in the OS while another yielded {n} times in 50 ms \
         (all done in {:.0} ms); a goroutine locked to its thread answered {rounds} pings \
         at {:.1} us per round trip",
        blocked.as_secs_f64() * 1e3,
        rt.as_secs_f64() * 1e6 / rounds as f64
    );
}

#[gort::main]
fn main() {
    println!(
        "gort tour: {} Ps on {} CPUs, goroutine {} is main",
        gort::stats().procs,
        gort::num_cpu(),
        gort::goid()
    );
    million_parked(1_000_000);
    fan_out(20_000);
    yields(1000, 1000);
    pipeline(200_000);
    sleepers(100_000);
    hogs(200);
    blocking_and_locked(20_000);
    let s = gort::stats();
    println!(
        "runtime: {} threads, {} goroutines created, {} stacks carved (guard pages by {:?}), \
         {} MiB of stack address space reserved",
        s.threads,
        s.spawns,
        s.stacks_carved,
        s.stack_guard_mode,
        s.stack_reserved_bytes >> 20
    );
}
