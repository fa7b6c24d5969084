//! Go's channel micro-benchmarks (Go 1.19 `src/runtime/chan_test.go`), ported by name to
//! gort; `go/chan_bench_test.go` restates the Go originals.
//!
//! `chanbench [NAME[=N] ...]` (no argument: every benchmark at its default N), env
//! `WORKERS` (gort's maxprocs, Go's GOMAXPROCS; default 2). For each benchmark, one line
//! on stdout:
//!
//! ```text
//! bench=<GoName> n=<N> ns_per_op=<x>
//! ```
//!
//! `ns_per_op` is the wall time of the benchmark body run with `b.N = N`, divided by N,
//! with an op defined as in Go (see each function); everything the Go body does,
//! including spawning its goroutines, is inside the timed region. Before it, as Go's
//! `testing` ramps up to its final `b.N` (by default `-benchtime=1s`), the body runs
//! untimed with `b.N = 1` and then with `b.N = N/100` (if ≥ 1); that last run's
//! duration sets the `RunParallel` grain (iterations per ~100 µs, clamped to 1..=10,000),
//! as Go's `previousN`/`previousDuration` do. (With `-benchtime=<N>x` Go derives the
//! grain from the single `b.N = 1` run instead: a cold iteration of several µs gives a
//! grain of a few dozen, and the shared counter of `pb.Next` then dominates the cheap
//! RunParallel benchmarks, e.g. 40-75 ns/op instead of 26 for SelectUncontended. Hence
//! `run.py` runs Go with a time-based `-benchtime`.)
//!
//! Exit status: 0 ok; 2 bad command line; 101 a panic anywhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gort::chan::{self, Receiver, Sender};
use gort::sync::WaitGroup;

/// A benchmark body: `b` plays Go's `*testing.B`.
type Bench = fn(&B);

/// The benchmarks, by Go name, with the default N (0.2-1 s on each side on a 2-vCPU VM;
/// `run.py` passes its own, equal, table).
const BENCHMARKS: &[(&str, Bench, usize)] = &[
    ("BenchmarkChanSync", chan_sync, 4_000_000),
    ("BenchmarkChanProdCons0", chan_prod_cons_0, 2_500_000),
    ("BenchmarkChanProdCons10", chan_prod_cons_10, 5_000_000),
    ("BenchmarkChanProdCons100", chan_prod_cons_100, 8_000_000),
    ("BenchmarkSelectUncontended", select_uncontended, 15_000_000),
    (
        "BenchmarkSelectSyncContended",
        select_sync_contended,
        700_000,
    ),
    ("BenchmarkChanPopular", chan_popular, 1_500),
    ("BenchmarkChanUncontended", chan_uncontended, 350_000),
    ("BenchmarkChanContended", chan_contended, 150_000),
];

fn main() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101); // gort would otherwise catch a goroutine's panic
    }));
    let procs = match std::env::var("WORKERS") {
        Ok(w) => w
            .parse()
            .ok()
            .filter(|&w| w > 0)
            .unwrap_or_else(|| usage(&w)),
        Err(_) => 2,
    };
    let selected = parse_args();
    gort::Config::new().maxprocs(procs).init().expect("config");
    gort::run(move || {
        for (name, body, n) in selected {
            let ns = run_benchmark(body, n, procs);
            println!("bench={name} n={n} ns_per_op={ns:.2}");
        }
    });
}

/// The benchmarks named on the command line (`NAME` or `NAME=N`), or all of them.
fn parse_args() -> Vec<(&'static str, Bench, usize)> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return BENCHMARKS.to_vec();
    }
    args.iter()
        .map(|arg| {
            let (name, n) = match arg.split_once('=') {
                Some((name, n)) => (name, Some(n)),
                None => (arg.as_str(), None),
            };
            let &(name, body, default_n) = BENCHMARKS
                .iter()
                .find(|(b, _, _)| *b == name)
                .unwrap_or_else(|| usage(arg));
            let n = match n {
                Some(n) => n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage(arg)),
                None => default_n,
            };
            (name, body, n)
        })
        .collect()
}

fn usage(bad: &str) -> ! {
    let names: Vec<&str> = BENCHMARKS.iter().map(|b| b.0).collect();
    eprintln!(
        "chanbench: bad argument {bad:?}\nusage: [WORKERS=w] chanbench [NAME[=N] ...]\nNAME: {}",
        names.join(" ")
    );
    std::process::exit(2);
}

/// Runs `body` with N = 1, then N/100 (if ≥ 1; it sets the grain), then N, timed;
/// returns the last run's ns per op.
fn run_benchmark(body: Bench, n: usize, procs: usize) -> f64 {
    let probe = time(body, 1, 1, procs);
    if n == 1 {
        return probe.as_nanos() as f64;
    }
    let mut grain = grain_for(1, probe);
    let pilot_n = n / 100;
    if pilot_n >= 1 {
        grain = grain_for(pilot_n, time(body, pilot_n, grain, procs));
    }
    time(body, n, grain, procs).as_nanos() as f64 / n as f64
}

fn time(body: Bench, n: usize, grain: u64, procs: usize) -> Duration {
    let b = B { n, grain, procs };
    let start = Instant::now();
    body(&b);
    start.elapsed()
}

/// Go's `RunParallel` grain: the iterations that took ~100 µs in the previous run,
/// clamped to 1..=10,000.
fn grain_for(previous_n: usize, previous: Duration) -> u64 {
    let ns = previous.as_nanos() as u64;
    if ns == 0 {
        return 1;
    }
    (100_000 * previous_n as u64 / ns).clamp(1, 10_000)
}

/// Go's `*testing.B`, the parts these benchmarks use.
struct B {
    /// `b.N`.
    n: usize,
    /// `RunParallel`'s batch size.
    grain: u64,
    /// `runtime.GOMAXPROCS(0)`.
    procs: usize,
}

impl B {
    /// Go's `b.RunParallel`: `procs` goroutines each run `body` with its own [`Pb`];
    /// they split `b.N` iterations by claiming `grain` at a time from a shared counter;
    /// returns when all are done.
    fn run_parallel(&self, body: impl Fn(&mut Pb) + Send + Sync + 'static) {
        let body = Arc::new(body);
        let claimed = Arc::new(AtomicU64::new(0));
        let wg = Arc::new(WaitGroup::new());
        wg.add(self.procs as isize);
        for _ in 0..self.procs {
            let (body, wg) = (body.clone(), wg.clone());
            let mut pb = Pb {
                claimed: claimed.clone(),
                grain: self.grain,
                n: self.n as u64,
                cache: 0,
            };
            go(move || {
                body(&mut pb);
                wg.done();
            });
        }
        wg.wait();
    }
}

/// Go's `*testing.PB`.
struct Pb {
    claimed: Arc<AtomicU64>,
    grain: u64,
    n: u64,
    cache: u64,
}

impl Pb {
    /// Go's `pb.Next`: whether to run one more iteration.
    fn next(&mut self) -> bool {
        if self.cache == 0 {
            let claimed = self.claimed.fetch_add(self.grain, Ordering::Relaxed) + self.grain;
            if claimed <= self.n {
                self.cache = self.grain;
            } else if claimed < self.n + self.grain {
                self.cache = self.n + self.grain - claimed;
            } else {
                return false;
            }
        }
        self.cache -= 1;
        true
    }
}

/// `go f()`: spawns a goroutine and detaches it.
fn go(f: impl FnOnce() + Send + 'static) {
    drop(gort::go(f));
}

/// Go's `CallsPerSched`: channel operations per claim from the shared counter in
/// ChanSync and ChanProdCons*.
const CHUNK: usize = 1000;

/// BenchmarkChanSync: two goroutines (2 whatever `WORKERS` is, as in Go) take turns on
/// one unbuffered channel, claiming rounds of `CHUNK` exchanges; an even round receives
/// then sends, an odd one sends then receives. N/CHUNK rounds (rounded down to even) of
/// `CHUNK` exchanges each move N values: an op is one hand-off.
fn chan_sync(b: &B) {
    const PROCS: usize = 2;
    let rounds = Arc::new(AtomicI32::new((b.n / CHUNK / PROCS * PROCS) as i32));
    let (finished_tx, finished_rx) = chan::bounded::<bool>(PROCS);
    let (tx, rx) = chan::bounded::<i64>(0);
    for _ in 0..PROCS {
        let (rounds, finished_tx, tx, rx) =
            (rounds.clone(), finished_tx.clone(), tx.clone(), rx.clone());
        go(move || {
            loop {
                let r = rounds.fetch_sub(1, Ordering::Relaxed) - 1;
                if r < 0 {
                    break;
                }
                for _ in 0..CHUNK {
                    if r % 2 == 0 {
                        rx.recv().expect("recv");
                        tx.send(0).expect("send");
                    } else {
                        tx.send(0).expect("send");
                        rx.recv().expect("recv");
                    }
                }
            }
            finished_tx.send(true).expect("finished");
        });
    }
    for _ in 0..PROCS {
        finished_rx.recv().expect("finished");
    }
}

/// BenchmarkChanProdCons{0,10,100}: `procs` producers and `procs` consumers share one
/// channel of capacity `size`; producers claim chunks of `CHUNK` sends until N/CHUNK
/// are gone, then each sends a 0; a consumer receives until it gets a 0. An op is one
/// value sent and received.
///
/// (Added check, outside Go: each consumer counts its values and adds the count to a
/// shared total once at the end, compared with N/CHUNK × CHUNK.)
fn chan_prod_cons(b: &B, size: usize) {
    let chunks = Arc::new(AtomicI32::new((b.n / CHUNK) as i32));
    let received = Arc::new(AtomicU64::new(0));
    let (finished_tx, finished_rx) = chan::bounded::<bool>(2 * b.procs);
    let (tx, rx) = chan::bounded::<i64>(size);
    for _ in 0..b.procs {
        let (chunks, finished, tx) = (chunks.clone(), finished_tx.clone(), tx.clone());
        go(move || {
            let sink = 0;
            // Go: `atomic.AddInt32(&chunks, -1) >= 0` (the new value), i.e. old value > 0
            while chunks.fetch_sub(1, Ordering::Relaxed) > 0 {
                for _ in 0..CHUNK {
                    tx.send(1).expect("send");
                }
            }
            tx.send(0).expect("send");
            finished.send(sink == 42).expect("finished");
        });
        let (finished, rx, received) = (finished_tx.clone(), rx.clone(), received.clone());
        go(move || {
            let sink = 0;
            let mut count = 0;
            while rx.recv().expect("recv") != 0 {
                count += 1;
            }
            received.fetch_add(count, Ordering::Relaxed);
            finished.send(sink == 42).expect("finished");
        });
    }
    for _ in 0..b.procs {
        finished_rx.recv().expect("finished");
        finished_rx.recv().expect("finished");
    }
    let (got, want) = (
        received.load(Ordering::Relaxed),
        (b.n / CHUNK * CHUNK) as u64,
    );
    assert_eq!(got, want, "ChanProdCons: values received");
}

fn chan_prod_cons_0(b: &B) {
    chan_prod_cons(b, 0);
}

fn chan_prod_cons_10(b: &B) {
    chan_prod_cons(b, 10);
}

fn chan_prod_cons_100(b: &B) {
    chan_prod_cons(b, 100);
}

/// BenchmarkSelectUncontended: each RunParallel goroutine owns two channels of
/// capacity 1 and one token; an op is a 2-case select taking the token from whichever
/// holds it, then a send putting it into the other.
fn select_uncontended(b: &B) {
    b.run_parallel(|pb| {
        let (a_tx, a_rx) = chan::bounded::<i64>(1);
        let (z_tx, z_rx) = chan::bounded::<i64>(1);
        a_tx.send(0).expect("send");
        while pb.next() {
            // (block arms without a trailing comma: gort's select! rejects `{ .. },`)
            gort::select! {
                recv(a_rx) -> v => { v.expect("recv"); z_tx.send(0).expect("send") }
                recv(z_rx) -> v => { v.expect("recv"); a_tx.send(0).expect("send") }
            }
        }
    });
}

/// BenchmarkSelectSyncContended: three shared unbuffered channels; every RunParallel
/// goroutine starts a helper offering a value on all three at once (a 4-case select
/// that also watches `done`), then receives with a 3-case select over them; an op is
/// one such receive. `done` is closed after the run to stop the helpers.
fn select_sync_contended(b: &B) {
    let (c1_tx, c1_rx) = chan::bounded::<i64>(0);
    let (c2_tx, c2_rx) = chan::bounded::<i64>(0);
    let (c3_tx, c3_rx) = chan::bounded::<i64>(0);
    let (done_tx, done_rx) = chan::bounded::<i64>(0);
    let senders = (c1_tx, c2_tx, c3_tx, done_rx);
    b.run_parallel(move |pb| {
        let (c1, c2, c3, done) = senders.clone();
        go(move || {
            loop {
                // A failed send means every receiver is gone (the benchmark returned):
                // stop as on `done` (Go has no such case; its channels just go away).
                let stop = gort::select! {
                    send(c1, 0) -> r => r.is_err(),
                    send(c2, 0) -> r => r.is_err(),
                    send(c3, 0) -> r => r.is_err(),
                    recv(done) -> _ => true,
                };
                if stop {
                    return;
                }
            }
        });
        while pb.next() {
            gort::select! {
                recv(c1_rx) -> v => v.expect("recv"),
                recv(c2_rx) -> v => v.expect("recv"),
                recv(c3_rx) -> v => v.expect("recv"),
            };
        }
    });
    done_tx.close();
}

/// BenchmarkChanPopular: 1000 goroutines each loop N times over a select on one shared
/// channel that never receives anything and one channel of its own; the benchmark
/// goroutine sends N times on each of the 1000 own channels. Every parked select also
/// waits on the shared channel, whose wait queue thus holds up to 1000 entries. An op
/// is one send to each of the 1000 goroutines (1000 hand-offs).
fn chan_popular(b: &B) {
    const GOROUTINES: usize = 1000;
    // `_popular_tx` stays alive (and the channel open) until the end, as in Go.
    let (_popular_tx, popular_rx) = chan::bounded::<bool>(0);
    let mut own: Vec<Sender<bool>> = Vec::with_capacity(GOROUTINES);
    let wg = Arc::new(WaitGroup::new());
    wg.add(GOROUTINES as isize);
    for _ in 0..GOROUTINES {
        let (d_tx, d_rx): (Sender<bool>, Receiver<bool>) = chan::bounded(0);
        own.push(d_tx);
        let (popular, wg, n) = (popular_rx.clone(), wg.clone(), b.n);
        go(move || {
            for _ in 0..n {
                gort::select! {
                    recv(popular) -> v => v.expect("recv popular"),
                    recv(d_rx) -> v => v.expect("recv own"),
                };
            }
            wg.done();
        });
    }
    for _ in 0..b.n {
        for d in &own {
            d.send(true).expect("send");
        }
    }
    wg.wait();
}

/// Go's `C`: sends (then receives) per op in ChanUncontended and ChanContended.
const PER_OP: usize = 100;

/// BenchmarkChanUncontended: each RunParallel goroutine owns a channel of capacity
/// 100; an op is 100 sends filling it, then 100 receives emptying it (never blocks).
fn chan_uncontended(b: &B) {
    b.run_parallel(|pb| {
        let (tx, rx) = chan::bounded::<i64>(PER_OP);
        while pb.next() {
            for _ in 0..PER_OP {
                tx.send(0).expect("send");
            }
            for _ in 0..PER_OP {
                rx.recv().expect("recv");
            }
        }
    });
}

/// BenchmarkChanContended: as ChanUncontended, but the RunParallel goroutines share
/// one channel of capacity 100 × procs (so sends never block either).
fn chan_contended(b: &B) {
    let (tx, rx) = chan::bounded::<i64>(PER_OP * b.procs);
    b.run_parallel(move |pb| {
        while pb.next() {
            for _ in 0..PER_OP {
                tx.send(0).expect("send");
            }
            for _ in 0..PER_OP {
                rx.recv().expect("recv");
            }
        }
    });
}
