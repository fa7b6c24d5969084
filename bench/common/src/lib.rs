//! What every Rust bench binary shares: the command-line contract, the report line, the
//! fixed workload parameters and a few measurement helpers.
//!
//! The workloads themselves are defined in `shared/bench/WORKLOADS.md`; each binary
//! (`gort-bench`, `may-bench`, `tokio-bench`) implements them on its own runtime and uses
//! this crate so that they parse their arguments and print their results identically
//! (and identically to `bench/go/main.go`).
//!
//! The contract: `<binary> <workload> [n]`, environment `WORKERS` (default 2; the
//! `syscall_handoff*` workloads always use 2). One run prints one line on stdout:
//!
//! ```text
//! workload=<name> n=<N> ns_per_op=<x> total_ms=<y> workers=<w> [extra key=value ...]
//! ```
//!
//! A failed check exits with [`EXIT_CHECK_FAILED`], a workload a binary does not implement
//! exits with [`EXIT_UNSUPPORTED`], and a panic in any thread or goroutine exits with
//! [`EXIT_PANIC`] at once (see [`exit_on_panic`]).

#![warn(missing_docs)]

use std::fmt::Display;
use std::process;
use std::time::Duration;

/// Exit status of a run whose result check failed (wrong counter, sum or echoed bytes).
pub const EXIT_CHECK_FAILED: i32 = 1;
/// Exit status of a bad command line (unknown workload, malformed `n` or `WORKERS`).
pub const EXIT_USAGE: i32 = 2;
/// Exit status for a workload this binary does not implement; the runner shows "—".
pub const EXIT_UNSUPPORTED: i32 = 3;
/// Exit status after a panic in any thread or goroutine (Rust's own panic status).
pub const EXIT_PANIC: i32 = 101;

/// Goroutines in `yield`, `mutex` and the yielders of `syscall_handoff` (each does n/1000 ops).
pub const GOROUTINES: usize = 1000;
/// Fan-out of the skynet tree.
pub const SKYNET_FANOUT: usize = 10;
/// Goroutines in the ring.
pub const RING_GOROUTINES: usize = 10_000;
/// How long each goroutine of `sleep` sleeps.
pub const SLEEP: Duration = Duration::from_millis(10);
/// How long `idle_mem` waits (runtime-aware sleep) after the last goroutine has signalled
/// that it is about to receive, before reading the parked RSS.
pub const IDLE_SETTLE: Duration = Duration::from_millis(50);
/// Goroutines of `syscall_handoff` that block in the OS.
pub const BLOCKERS: usize = 2;
/// How long each blocker of `syscall_handoff` blocks in the OS.
pub const BLOCK: Duration = Duration::from_millis(200);
/// Workers of `syscall_handoff*`, whatever `WORKERS` says.
pub const SYSCALL_HANDOFF_WORKERS: usize = 2;
/// Client connections of `echo`.
pub const ECHO_CONNS: usize = 100;
/// Size of one `echo` message.
pub const MSG_BYTES: usize = 64;
/// `syscall_cost`: the raw and the wrapped loop alternate in this many timed rounds each
/// (raw, wrapped, raw, ...), so that slow drift of the machine hits both alike.
pub const SYSCALL_COST_ROUNDS: usize = 10;
/// `syscall_cost`: untimed warm-up calls of each kind before the timed rounds (fewer if
/// `n` is smaller).
pub const SYSCALL_COST_WARMUP: usize = 100_000;

/// The default `n` of a workload (the tokio `syscall_handoff_*` variants share
/// `syscall_handoff`'s), or `None` for an unknown name.
pub fn default_n(workload: &str) -> Option<usize> {
    let base = workload
        .strip_prefix("syscall_handoff_")
        .map_or(workload, |_| "syscall_handoff");
    match base {
        "spawn" | "skynet" | "pingpong" | "yield" | "ring" | "mutex" | "syscall_handoff"
        | "echo" => Some(1_000_000),
        "sleep" | "idle_mem" | "locked_pingpong" => Some(100_000),
        "syscall_cost" => Some(2_000_000),
        _ => None,
    }
}

/// One parsed command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// The workload name, as given.
    pub workload: String,
    /// The number of operations `ns_per_op` is divided by.
    pub n: usize,
    /// Worker threads (`WORKERS`, default 2; always 2 for `syscall_handoff*`).
    pub workers: usize,
}

impl Args {
    /// Parses `<binary> <workload> [n]` and `WORKERS`; exits with [`EXIT_USAGE`] on a bad
    /// command line. A workload name unknown to the contract is a usage error; whether this
    /// binary implements a known one is the caller's business.
    pub fn parse() -> Args {
        let argv: Vec<String> = std::env::args().collect();
        let prog = argv.first().map_or("bench", String::as_str);
        if !(2..=3).contains(&argv.len()) {
            usage(prog, "expected <workload> [n]");
        }
        let workload = argv[1].clone();
        let Some(default) = default_n(&workload) else {
            usage(prog, &format!("unknown workload {workload}"));
        };
        let n = match argv.get(2) {
            None => default,
            Some(s) => match s.replace('_', "").parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => usage(prog, &format!("bad n {s:?}: want a positive integer")),
            },
        };
        let workers = if workload.starts_with("syscall_handoff") {
            SYSCALL_HANDOFF_WORKERS
        } else {
            match std::env::var("WORKERS") {
                Err(_) => 2,
                Ok(s) => match s.parse::<usize>() {
                    Ok(w) if w > 0 => w,
                    _ => usage(prog, &format!("bad WORKERS {s:?}: want a positive integer")),
                },
            }
        };
        Args {
            workload,
            n,
            workers,
        }
    }
}

fn usage(prog: &str, what: &str) -> ! {
    eprintln!("{prog}: {what}");
    eprintln!("usage: {prog} <workload> [n]   (env WORKERS, default 2)");
    eprintln!(
        "workloads: spawn skynet pingpong locked_pingpong yield ring sleep idle_mem mutex \
         syscall_handoff syscall_cost echo"
    );
    process::exit(EXIT_USAGE);
}

/// Prints `unsupported workload <name>` on stderr and exits with [`EXIT_UNSUPPORTED`].
pub fn unsupported(workload: &str) -> ! {
    eprintln!("unsupported workload {workload}");
    process::exit(EXIT_UNSUPPORTED);
}

/// Reports a failed result check on stderr and exits with [`EXIT_CHECK_FAILED`] at once.
pub fn check_failed(what: impl Display) -> ! {
    eprintln!("check failed: {what}");
    process::exit(EXIT_CHECK_FAILED);
}

/// Makes any panic, in any thread or goroutine, end the process with [`EXIT_PANIC`] at once,
/// after the default hook has printed it. Runtimes catch panics in their tasks (tokio hands
/// them to the `JoinHandle`, may to the coroutine's `JoinHandle`); the rules want a panic
/// anywhere to fail the run, as an unrecovered panic does in Go.
pub fn exit_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        process::exit(EXIT_PANIC);
    }));
}

/// Splits `n` operations evenly over `goroutines`; exits with [`EXIT_USAGE`] unless `n` is a
/// positive multiple of `goroutines`, so that `n` stays the exact number of operations.
pub fn per_goroutine(workload: &str, n: usize, goroutines: usize) -> usize {
    if n == 0 || !n.is_multiple_of(goroutines) {
        eprintln!("{workload}: n={n} must be a positive multiple of {goroutines}");
        process::exit(EXIT_USAGE);
    }
    n / goroutines
}

/// Checks that skynet's `n` is a power of 10 (at least 10); exits with [`EXIT_USAGE`] if not.
pub fn check_skynet_n(n: usize) {
    let mut m = n;
    while m > 1 && m.is_multiple_of(SKYNET_FANOUT) {
        m /= SKYNET_FANOUT;
    }
    if m != 1 || n < SKYNET_FANOUT {
        eprintln!("skynet: n={n} must be a power of {SKYNET_FANOUT}");
        process::exit(EXIT_USAGE);
    }
}

/// Skynet's expected result for `n` leaves numbered `0..n`: `n(n-1)/2`.
pub fn skynet_expected(n: usize) -> u64 {
    let n = n as u64;
    n * (n - 1) / 2
}

/// One result line under construction; [`Report::print`] writes it to stdout.
#[derive(Debug)]
pub struct Report {
    line: String,
}

impl Report {
    /// Starts the line: `ns_per_op = total / n`, `total_ms` from the same window.
    pub fn new(workload: &str, n: usize, total: Duration, workers: usize) -> Report {
        let ns = total.as_nanos() as f64;
        let line = format!(
            "workload={workload} n={n} ns_per_op={:.1} total_ms={:.3} workers={workers}",
            ns / n as f64,
            ns / 1e6,
        );
        Report { line }
    }

    /// Appends ` key=value`.
    pub fn field(mut self, key: &str, value: impl Display) -> Report {
        self.line.push_str(&format!(" {key}={value}"));
        self
    }

    /// Prints the line on stdout.
    pub fn print(self) {
        println!("{}", self.line);
    }
}

/// Milliseconds with three decimals, for the `*_ms` extra fields.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_nanos() as f64 / 1e6)
}

/// The resident set size of this process, `VmRSS` from `/proc/self/status`, in bytes.
pub fn vm_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value in kB");
    kib * 1024
}

/// The `idle_mem` extra fields from its three RSS readings (bytes) and `n`.
pub fn idle_mem_fields(
    report: Report,
    rss_before: u64,
    rss_after_channels: u64,
    rss_parked: u64,
    n: usize,
) -> Report {
    let per = |from: u64| (rss_parked as i64 - from as i64) / n as i64;
    report
        .field("rss_before", rss_before)
        .field("rss_after_channels", rss_after_channels)
        .field("rss_parked", rss_parked)
        .field("bytes_per_goroutine", per(rss_before))
        .field("bytes_per_goroutine_excl_chan", per(rss_after_channels))
}

/// Sleep lateness summary: p50, p99 and max of per-goroutine lateness, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lateness {
    /// The ⌈0.5·n⌉-th smallest lateness.
    pub p50_us: f64,
    /// The ⌈0.99·n⌉-th smallest lateness.
    pub p99_us: f64,
    /// The largest lateness.
    pub max_us: f64,
}

impl Lateness {
    /// Summarises lateness values in nanoseconds (actual sleep − requested; may be negative
    /// in principle, never in practice). `late_ns` must not be empty.
    pub fn from_ns(mut late_ns: Vec<i64>) -> Lateness {
        assert!(!late_ns.is_empty(), "Lateness::from_ns: no samples");
        late_ns.sort_unstable();
        let us = |v: i64| v as f64 / 1e3;
        Lateness {
            p50_us: us(late_ns[rank(late_ns.len(), 50) - 1]),
            p99_us: us(late_ns[rank(late_ns.len(), 99) - 1]),
            max_us: us(late_ns[late_ns.len() - 1]),
        }
    }

    /// Appends `p50_late_us`, `p99_late_us` and `max_late_us`.
    pub fn fields(&self, report: Report) -> Report {
        report
            .field("p50_late_us", format!("{:.1}", self.p50_us))
            .field("p99_late_us", format!("{:.1}", self.p99_us))
            .field("max_late_us", format!("{:.1}", self.max_us))
    }
}

/// The 1-based rank of the `pct`-th percentile of `len` sorted values: ⌈pct/100 · len⌉
/// (at least 1), computed in integers.
fn rank(len: usize, pct: usize) -> usize {
    (len * pct).div_ceil(100).max(1)
}

/// `syscall_cost`: which of the two `getppid` loops a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Getppid {
    /// The bare system call (Go `syscall.RawSyscall`, Rust `libc::getppid()`).
    Raw,
    /// The same call inside the runtime's wrapper (Go `syscall.Syscall`, i.e.
    /// entersyscall/exitsyscall; gort `gort::blocking`; tokio `block_in_place`).
    Wrapped,
}

/// One step of a `syscall_cost` measurement: `calls` calls of one kind, timed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Which loop.
    pub kind: Getppid,
    /// How many calls (in all, whatever the number of goroutines making them).
    pub calls: usize,
    /// False for the warm-up.
    pub timed: bool,
}

/// The steps of a `syscall_cost` measurement of `n` calls of each kind: a warm-up of
/// `min(n, SYSCALL_COST_WARMUP)` raw then wrapped calls, then [`SYSCALL_COST_ROUNDS`]
/// rounds of (raw, wrapped), whose timed calls add up to exactly `n` of each kind.
pub fn syscall_cost_steps(n: usize) -> Vec<Step> {
    let warm = n.min(SYSCALL_COST_WARMUP);
    let mut steps = Vec::new();
    for kind in [Getppid::Raw, Getppid::Wrapped] {
        steps.push(Step {
            kind,
            calls: warm,
            timed: false,
        });
    }
    for r in 0..SYSCALL_COST_ROUNDS {
        let calls = n * (r + 1) / SYSCALL_COST_ROUNDS - n * r / SYSCALL_COST_ROUNDS;
        for kind in [Getppid::Raw, Getppid::Wrapped] {
            steps.push(Step {
                kind,
                calls,
                timed: true,
            });
        }
    }
    steps
}

/// Splits `calls` over `goroutines` as evenly as possible: the share of goroutine `i`.
pub fn share(calls: usize, goroutines: usize, i: usize) -> usize {
    calls / goroutines + usize::from(i < calls % goroutines)
}

/// The timed rounds of one `syscall_cost` measurement (single goroutine or parallel).
/// The figures are medians over the rounds, so that one round hit by a stall of the
/// machine (a few ms of steal time on a VM) does not move them.
#[derive(Debug, Clone, Default)]
pub struct SyscallCost {
    /// ns per call of each timed raw round.
    raw: Vec<f64>,
    /// ns per call of each timed wrapped round.
    wrapped: Vec<f64>,
    /// The timed wrapped rounds' total wall time.
    wrapped_total: Duration,
}

impl SyscallCost {
    /// Adds a step's wall time (ignored for the warm-up and for empty steps).
    pub fn record(&mut self, step: Step, took: Duration) {
        if !step.timed || step.calls == 0 {
            return;
        }
        let ns = took.as_nanos() as f64 / step.calls as f64;
        match step.kind {
            Getppid::Raw => self.raw.push(ns),
            Getppid::Wrapped => {
                self.wrapped.push(ns);
                self.wrapped_total += took;
            }
        }
    }

    /// Wall ns per raw call, the median over the rounds (for the parallel case: wall
    /// time / all calls of a round, as Go's `RunParallel` reports ns/op).
    pub fn raw_ns(&self) -> f64 {
        median(&self.raw)
    }

    /// Wall ns per wrapped call, the median over the rounds.
    pub fn wrapped_ns(&self) -> f64 {
        median(&self.wrapped)
    }

    /// The wrapper's cost: wrapped minus raw, ns per call.
    pub fn overhead_ns(&self) -> f64 {
        self.wrapped_ns() - self.raw_ns()
    }

    /// The timed wrapped calls' total wall time.
    pub fn wrapped_total(&self) -> Duration {
        self.wrapped_total
    }

    /// Raw, wrapped and overhead ns per call, as measured.
    pub fn figures(&self) -> CostFigures {
        CostFigures {
            raw_ns: self.raw_ns(),
            wrapped_ns: self.wrapped_ns(),
            overhead_ns: self.overhead_ns(),
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count); NaN if empty.
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The three figures of one `syscall_cost` case, ns per call.
#[derive(Debug, Clone, Copy)]
pub struct CostFigures {
    /// A bare `getppid`.
    pub raw_ns: f64,
    /// The same call in the runtime's wrapper.
    pub wrapped_ns: f64,
    /// What the wrapper adds: `wrapped_ns - raw_ns`.
    pub overhead_ns: f64,
}

/// The `syscall_cost` result line: `ns_per_op`/`total_ms` from `wrapped_total`, the single
/// goroutine's plain loop of n wrapped calls; the extra fields give raw, wrapped and
/// overhead ns per call for the single goroutine and for `workers` goroutines in
/// parallel, and the wrapper's name.
pub fn syscall_cost_report(
    n: usize,
    workers: usize,
    wrapped_total: Duration,
    single: CostFigures,
    parallel: CostFigures,
    wrapper: &str,
) -> Report {
    let f = |v: f64| format!("{v:.1}");
    Report::new("syscall_cost", n, wrapped_total, workers)
        .field("raw_ns", f(single.raw_ns))
        .field("wrapped_ns", f(single.wrapped_ns))
        .field("overhead_ns", f(single.overhead_ns))
        .field("par_goroutines", workers)
        .field("par_raw_ns", f(parallel.raw_ns))
        .field("par_wrapped_ns", f(parallel.wrapped_ns))
        .field("par_overhead_ns", f(parallel.overhead_ns))
        .field("wrapper", wrapper)
}

/// The `locked_pingpong` result line: ns per round trip as `ns_per_op`, plus µs per round
/// trip, the channel capacity and which goroutine was locked to its thread.
pub fn locked_pingpong_report(n: usize, total: Duration, workers: usize) -> Report {
    let us = total.as_nanos() as f64 / 1e3 / n as f64;
    Report::new("locked_pingpong", n, total, workers)
        .field("us_per_round_trip", format!("{us:.2}"))
        .field("chan_capacity", 0)
        .field("locked", "echoer")
}

/// The byte `echo` client `conn` puts in message `i`, so that a mixed-up echo is caught.
pub fn echo_byte(conn: usize, i: usize) -> u8 {
    (conn.wrapping_mul(31).wrapping_add(i) % 251) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_ranks_are_ceilings() {
        assert_eq!(rank(100_000, 99), 99_000);
        assert_eq!(rank(101, 99), 100);
        assert_eq!(rank(1, 50), 1);
        assert_eq!(rank(3, 50), 2);
    }

    #[test]
    fn lateness_summary() {
        let late: Vec<i64> = (1..=100).map(|v| v * 1000).collect();
        let l = Lateness::from_ns(late);
        assert_eq!(
            l,
            Lateness {
                p50_us: 50.0,
                p99_us: 99.0,
                max_us: 100.0
            }
        );
    }

    #[test]
    fn defaults_and_skynet() {
        assert_eq!(default_n("syscall_handoff_block_in_place"), Some(1_000_000));
        assert_eq!(default_n("idle_mem"), Some(100_000));
        assert_eq!(default_n("nope"), None);
        assert_eq!(skynet_expected(1_000_000), 499_999_500_000);
        assert_eq!(default_n("syscall_cost"), Some(2_000_000));
    }

    #[test]
    fn syscall_cost_steps_add_up() {
        for n in [1, 7, 1000, 2_000_001] {
            let steps = syscall_cost_steps(n);
            for kind in [Getppid::Raw, Getppid::Wrapped] {
                let timed: usize = steps
                    .iter()
                    .filter(|s| s.timed && s.kind == kind)
                    .map(|s| s.calls)
                    .sum();
                assert_eq!(timed, n);
            }
            assert!(!steps[0].timed && !steps[1].timed);
        }
        assert_eq!(
            (0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
    }
}
