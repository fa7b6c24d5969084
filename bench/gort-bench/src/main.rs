//! The anchor workloads of `shared/bench/WORKLOADS.md` on gort.
//!
//! `gort-bench <workload> [n]`, env `WORKERS` (→ `Config::maxprocs`); prints one result
//! line (see `bench-common`). The workload body runs in the main goroutine
//! (`gort::run`), spawns with `gort::go` (the `JoinHandle` dropped, which detaches), and
//! waits for all with a leaked `&'static gort::sync::WaitGroup` (the rules' WaitGroup-like
//! countdown latch, Go semantics).
//!
//! gort implements `spawn`, `yield` and `idle_mem` so far. Every other workload prints
//! `unsupported workload <name>` on stderr and exits with status 3, which the runner shows
//! as "—". To add one: write `fn name(n: usize, workers: usize) -> Report` below and list
//! it in [`workload`].
//!
//! idle_mem: gort has no channels yet, so each goroutine parks in `wait()` on its own
//! `WaitGroup` (count 1) instead of receiving on its own channel, and the line says
//! `park=waitgroup`. gort has no timer yet either, so the 50 ms settle before reading the
//! parked RSS is `std::thread::sleep` in the main goroutine; nothing needs to run then,
//! since every other goroutine is parked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bench_common::{
    Args, GOROUTINES, IDLE_SETTLE, Report, check_failed, exit_on_panic, idle_mem_fields,
    per_goroutine, unsupported, vm_rss_bytes,
};
use gort::sync::WaitGroup;

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
        "yield" => Some(yield_),
        "idle_mem" => Some(idle_mem),
        // Not yet: skynet, pingpong, ring (channels), sleep (timers), mutex
        // (sync::Mutex), syscall_handoff (syscall handoff), echo (netpoller).
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

/// idle_mem: n goroutines each parked in `wait()` on its own `WaitGroup` (gort has no
/// channels yet); RSS per parked goroutine.
fn idle_mem(n: usize, workers: usize) -> Report {
    let rss_before = vm_rss_bytes();
    // The stand-in for the n channels: one WaitGroup at count 1 per goroutine.
    let parks: &'static [WaitGroup] = Box::leak(
        (0..n)
            .map(|_| {
                let wg = WaitGroup::new();
                wg.add(1);
                wg
            })
            .collect(),
    );
    let rss_after_channels = vm_rss_bytes();
    let started = latch(n);
    let finished = latch(n);
    let start = Instant::now();
    for park in parks {
        go(move || {
            started.done();
            park.wait();
            finished.done();
        });
    }
    started.wait();
    let ramp = start.elapsed();
    // No runtime timer yet: block this thread instead (every other goroutine is parked).
    std::thread::sleep(IDLE_SETTLE);
    let rss_parked = vm_rss_bytes();
    for park in parks {
        park.done();
    }
    finished.wait();
    let report = Report::new("idle_mem", n, ramp, workers);
    idle_mem_fields(report, rss_before, rss_after_channels, rss_parked, n)
        .field("park", "waitgroup")
}
