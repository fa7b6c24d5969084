//! The anchor workloads of `shared/bench/WORKLOADS.md` on gort.
//!
//! `gort-bench <workload> [n]`, env `WORKERS` (→ `Config::maxprocs`); prints one result
//! line (see `bench-common`). The workload body runs in the main goroutine
//! (`gort::run`), spawns with `gort::go` (the `JoinHandle` dropped, which detaches), and
//! waits for all with a leaked `&'static gort::sync::WaitGroup` (the rules' WaitGroup-like
//! countdown latch, Go semantics).
//!
//! gort implements `spawn`, `skynet`, `pingpong`, `locked_pingpong`, `yield`, `ring`,
//! `sleep`, `idle_mem`, `mutex`, `syscall_handoff` and `syscall_cost` so far
//! (`syscall_handoff` wraps the blocking libc sleep in `gort::blocking`, gort's
//! `entersyscall`/`exitsyscall`; Go wraps its syscalls itself; `syscall_cost` measures that
//! wrapper around a bare `getppid`; `locked_pingpong` pins one side with
//! `gort::lock_os_thread`).
//! Every other workload prints `unsupported workload <name>` on stderr and exits with
//! status 3, which the runner shows as "—". To add one: write
//! `fn name(n: usize, workers: usize) -> Report` below and list it in [`workload`].
//!
//! Channels are `gort::chan::bounded(0)`, Go's unbuffered channel, everywhere Go uses an
//! unbuffered one. Sleeping is `gort::time::sleep`; the mutex is `gort::sync::Mutex`
//! (Go's `sync.Mutex` algorithm: barging, so compare it with Go's).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bench_common::{
    Args, BLOCK, BLOCKERS, GOROUTINES, Getppid, IDLE_SETTLE, Lateness, RING_GOROUTINES, Report,
    SKYNET_FANOUT, SLEEP, SyscallCost, check_failed, check_skynet_n, exit_on_panic,
    idle_mem_fields, locked_pingpong_report, ms, per_goroutine, share, skynet_expected,
    syscall_cost_report, syscall_cost_steps, unsupported, vm_rss_bytes,
};
use gort::chan::{self, Receiver, Sender};
use gort::sync::WaitGroup;
use std::sync::atomic::AtomicI64;

/// A workload: `(n, workers)` to its result line.
type Workload = fn(usize, usize) -> Report;

fn main() {
    exit_on_panic();
    let args = Args::parse();
    let Some(body) = workload(&args.workload) else {
        unsupported(&args.workload);
    };
    gort::Config::new()
        .maxprocs(args.workers)
        .init()
        .expect("config");
    let (n, workers) = (args.n, args.workers);
    let report = gort::run(move || body(n, workers));
    report.print();
}

/// The implementation of a workload by name, or `None` where gort cannot run it yet.
fn workload(name: &str) -> Option<Workload> {
    match name {
        "spawn" => Some(spawn),
        "skynet" => Some(skynet),
        "pingpong" => Some(pingpong),
        "locked_pingpong" => Some(locked_pingpong),
        "yield" => Some(yield_),
        "ring" => Some(ring),
        "idle_mem" => Some(idle_mem),
        "sleep" => Some(sleep),
        "mutex" => Some(mutex),
        "syscall_handoff" => Some(syscall_handoff),
        "syscall_cost" => Some(syscall_cost),
        // Not yet: echo (netpoller).
        _ => None,
    }
}

/// Spawns a detached goroutine: dropping the `JoinHandle` detaches it, as `go f()` does.
fn go(f: impl FnOnce() + Send + 'static) {
    drop(gort::go(f));
}

/// Moves `value` to the heap for the rest of the process: shared state reached through a
/// `'static` reference, like a pointer captured by a Go closure (no refcount per spawn).
fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// A leaked `WaitGroup` already counting `n` goroutines.
fn latch(n: usize) -> &'static WaitGroup {
    let wg = leak(WaitGroup::new());
    wg.add(n as isize);
    wg
}

/// spawn: n goroutines each doing one atomic add.
fn spawn(n: usize, workers: usize) -> Report {
    let counter = leak(AtomicUsize::new(0));
    let wg = latch(n);
    let start = Instant::now();
    for _ in 0..n {
        go(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            wg.done();
        });
    }
    wg.wait();
    let total = start.elapsed();
    let got = counter.load(Ordering::Relaxed);
    if got != n {
        check_failed(format!("spawn: counter {got}, want {n}"));
    }
    Report::new("spawn", n, total, workers)
}

/// yield: 1000 goroutines each call `gosched` n/1000 times.
fn yield_(n: usize, workers: usize) -> Report {
    let per = per_goroutine("yield", n, GOROUTINES);
    let wg = latch(GOROUTINES);
    let start = Instant::now();
    for _ in 0..GOROUTINES {
        go(move || {
            for _ in 0..per {
                gort::gosched();
            }
            wg.done();
        });
    }
    wg.wait();
    Report::new("yield", n, start.elapsed(), workers)
}

/// skynet: a 10-ary tree of goroutines with n leaves; each sends its sum to its parent
/// over an unbuffered channel.
fn skynet(n: usize, workers: usize) -> Report {
    check_skynet_n(n);
    let (tx, rx) = chan::bounded(0);
    let start = Instant::now();
    go(move || skynet_node(tx, 0, n as u64));
    let result = rx.recv().expect("skynet: root result");
    let total = start.elapsed();
    let want = skynet_expected(n);
    if result != want {
        check_failed(format!("skynet: result {result}, want {want}"));
    }
    Report::new("skynet", n, total, workers).field("result", result)
}

fn skynet_node(parent: Sender<u64>, num: u64, size: u64) {
    if size == 1 {
        parent.send(num).expect("skynet: send leaf");
        return;
    }
    let (tx, rx) = chan::bounded(0);
    let child = size / SKYNET_FANOUT as u64;
    for i in 0..SKYNET_FANOUT as u64 {
        let tx = tx.clone();
        go(move || skynet_node(tx, num + i * child, child));
    }
    let mut sum = 0;
    for _ in 0..SKYNET_FANOUT {
        sum += rx.recv().expect("skynet: recv");
    }
    parent.send(sum).expect("skynet: send sum");
}

/// pingpong: two goroutines bounce a value n times over two unbuffered channels.
fn pingpong(n: usize, workers: usize) -> Report {
    let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
    let wg = latch(2);
    let start = Instant::now();
    go(move || {
        for _ in 0..n {
            let v = ping_rx.recv().expect("pingpong: recv ping");
            pong_tx.send(v).expect("pingpong: send pong");
        }
        wg.done();
    });
    go(move || {
        for i in 0..n as u64 {
            ping_tx.send(i).expect("pingpong: send ping");
            let v = pong_rx.recv().expect("pingpong: recv pong");
            if v != i {
                check_failed(format!("pingpong: got {v} back, want {i}"));
            }
        }
        wg.done();
    });
    wg.wait();
    Report::new("pingpong", n, start.elapsed(), workers).field("chan_capacity", 0)
}

/// locked_pingpong: pingpong where the echoing goroutine is locked to its OS thread
/// (`gort::lock_os_thread`, Go's `runtime.LockOSThread`) and the driving one is not: every
/// hand-off to the locked goroutine must wake its own thread. Checks every returned value
/// and that the locked goroutine never runs on another thread.
fn locked_pingpong(n: usize, workers: usize) -> Report {
    let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
    let wg = latch(2);
    let start = Instant::now();
    go(move || {
        gort::lock_os_thread();
        // SAFETY: pthread_self has no preconditions; it reads the calling thread's id.
        let thread = unsafe { libc::pthread_self() };
        for _ in 0..n {
            let v = ping_rx.recv().expect("locked_pingpong: recv ping");
            // SAFETY: as above.
            if unsafe { libc::pthread_self() } != thread {
                check_failed("locked_pingpong: the locked goroutine moved to another thread");
            }
            pong_tx.send(v).expect("locked_pingpong: send pong");
        }
        gort::unlock_os_thread();
        wg.done();
    });
    go(move || {
        for i in 0..n as u64 {
            ping_tx.send(i).expect("locked_pingpong: send ping");
            let v = pong_rx.recv().expect("locked_pingpong: recv pong");
            if v != i {
                check_failed(format!("locked_pingpong: got {v} back, want {i}"));
            }
        }
        wg.done();
    });
    wg.wait();
    locked_pingpong_report(n, start.elapsed(), workers)
}

/// ring: 10,000 goroutines forward a token around a ring n/10,000 times over unbuffered
/// channels; the last hop of the last round goes back to the root.
fn ring(n: usize, workers: usize) -> Report {
    let rounds = per_goroutine("ring", n, RING_GOROUTINES);
    let (done_tx, done_rx) = chan::bounded::<u64>(0);
    let (txs, rxs): (Vec<Sender<u64>>, Vec<Receiver<u64>>) =
        (0..RING_GOROUTINES).map(|_| chan::bounded(0)).unzip();
    for (i, rx) in rxs.into_iter().enumerate() {
        let next = txs[(i + 1) % RING_GOROUTINES].clone();
        let done = (i == RING_GOROUTINES - 1).then(|| done_tx.clone());
        go(move || {
            for round in 1..=rounds {
                let token = rx.recv().expect("ring: recv") + 1;
                match &done {
                    Some(done) if round == rounds => done.send(token),
                    _ => next.send(token),
                }
                .expect("ring: send");
            }
        });
    }
    let start = Instant::now();
    txs[0].send(0).expect("ring: inject");
    let hops = done_rx.recv().expect("ring: token back");
    let total = start.elapsed();
    if hops != n as u64 {
        check_failed(format!("ring: {hops} hops, want {n}"));
    }
    Report::new("ring", n, total, workers)
        .field("goroutines", RING_GOROUTINES)
        .field("rounds", rounds)
}

/// idle_mem: n goroutines each blocked receiving on its own unbuffered channel; RSS per
/// parked goroutine.
fn idle_mem(n: usize, workers: usize) -> Report {
    let rss_before = vm_rss_bytes();
    let (txs, mut rxs): (Vec<Sender<u64>>, Vec<Option<Receiver<u64>>>) = (0..n)
        .map(|_| {
            let (tx, rx) = chan::bounded(0);
            (tx, Some(rx))
        })
        .unzip();
    let rss_after_channels = vm_rss_bytes();
    let started = latch(n);
    let finished = latch(n);
    let start = Instant::now();
    // `rxs` keeps its buffer until the end, so that freeing it does not lower rss_parked.
    for slot in &mut rxs {
        let rx = slot.take().expect("idle_mem: receiver");
        go(move || {
            started.done();
            rx.recv().expect("idle_mem: recv");
            finished.done();
        });
    }
    started.wait();
    let ramp = start.elapsed();
    gort::time::sleep(IDLE_SETTLE);
    let rss_parked = vm_rss_bytes();
    for tx in &txs {
        tx.send(1).expect("idle_mem: release");
    }
    finished.wait();
    drop(rxs);
    let report = Report::new("idle_mem", n, ramp, workers);
    idle_mem_fields(report, rss_before, rss_after_channels, rss_parked, n)
}

/// sleep: n goroutines each sleep 10 ms; lateness per goroutine.
fn sleep(n: usize, workers: usize) -> Report {
    let late_ns: &'static [AtomicI64] = Box::leak((0..n).map(|_| AtomicI64::new(0)).collect());
    let wg = latch(n);
    let start = Instant::now();
    for slot in late_ns {
        go(move || {
            let t0 = Instant::now();
            gort::time::sleep(SLEEP);
            let late = t0.elapsed().as_nanos() as i64 - SLEEP.as_nanos() as i64;
            slot.store(late, Ordering::Relaxed);
            wg.done();
        });
    }
    wg.wait();
    let total = start.elapsed();
    let late = late_ns.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    Lateness::from_ns(late).fields(Report::new("sleep", n, total, workers))
}

/// mutex: 1000 goroutines each lock a shared `gort::sync::Mutex` and increment n/1000
/// times.
fn mutex(n: usize, workers: usize) -> Report {
    let per = per_goroutine("mutex", n, GOROUTINES);
    let counter = leak(gort::sync::Mutex::new(0usize));
    let wg = latch(GOROUTINES);
    let start = Instant::now();
    for _ in 0..GOROUTINES {
        go(move || {
            for _ in 0..per {
                *counter.lock() += 1;
            }
            wg.done();
        });
    }
    wg.wait();
    let total = start.elapsed();
    let got = *counter.lock();
    if got != n {
        check_failed(format!("mutex: counter {got}, want {n}"));
    }
    Report::new("mutex", n, total, workers)
}

/// syscall_handoff: 2 goroutines block in the OS for 200 ms (a real blocking sleep inside
/// `gort::blocking`) while 1000 goroutines each yield n/1000 times.
fn syscall_handoff(n: usize, workers: usize) -> Report {
    let per = per_goroutine("syscall_handoff", n, GOROUTINES);
    let blockers = latch(BLOCKERS);
    let yielders = latch(GOROUTINES);
    let left = leak(AtomicUsize::new(GOROUTINES));
    let yielders_done_ns = leak(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    for _ in 0..BLOCKERS {
        go(move || {
            gort::blocking(|| std::thread::sleep(BLOCK));
            blockers.done();
        });
    }
    for _ in 0..GOROUTINES {
        go(move || {
            for _ in 0..per {
                gort::gosched();
            }
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                yielders_done_ns.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            yielders.done();
        });
    }
    yielders.wait();
    blockers.wait();
    let total = start.elapsed();
    let yielders_done = std::time::Duration::from_nanos(yielders_done_ns.load(Ordering::Relaxed));
    Report::new("syscall_handoff", n, total, workers)
        .field("yielders_done_ms", ms(yielders_done))
        .field("blocking", "gort_blocking")
}

/// `calls` calls of `getppid`, bare or inside `gort::blocking` (gort's
/// entersyscall/exitsyscall); every result is checked against `want`.
fn getppid_loop(kind: Getppid, calls: usize, want: libc::pid_t) {
    let mut bad = 0usize;
    match kind {
        Getppid::Raw => {
            for _ in 0..calls {
                // SAFETY: getppid has no preconditions and cannot fail.
                bad += usize::from(unsafe { libc::getppid() } != want);
            }
        }
        Getppid::Wrapped => {
            for _ in 0..calls {
                // SAFETY: as above.
                bad += usize::from(gort::blocking(|| unsafe { libc::getppid() }) != want);
            }
        }
    }
    if bad != 0 {
        check_failed(format!(
            "syscall_cost: {bad} getppid calls did not return {want}"
        ));
    }
}

/// syscall_cost: ns per bare `getppid` and per `gort::blocking(getppid)`, n calls each,
/// first from this goroutine, then from `workers` goroutines in parallel (Go's
/// `RunParallel`: wall time / all calls). Raw and wrapped alternate in rounds after a
/// warm-up (`bench_common::syscall_cost_steps`).
fn syscall_cost(n: usize, workers: usize) -> Report {
    // SAFETY: getppid has no preconditions and cannot fail.
    let want = unsafe { libc::getppid() };
    let steps = syscall_cost_steps(n);
    let mut single = SyscallCost::default();
    for &step in &steps {
        let t0 = Instant::now();
        getppid_loop(step.kind, step.calls, want);
        single.record(step, t0.elapsed());
    }
    let mut parallel = SyscallCost::default();
    for &step in &steps {
        let wg = latch(workers);
        let t0 = Instant::now();
        for i in 0..workers {
            let calls = share(step.calls, workers, i);
            go(move || {
                getppid_loop(step.kind, calls, want);
                wg.done();
            });
        }
        wg.wait();
        parallel.record(step, t0.elapsed());
    }
    let (total, single, parallel) = (single.wrapped_total(), single.figures(), parallel.figures());
    syscall_cost_report(n, workers, total, single, parallel, "gort_blocking")
}
