//! The anchor workloads of `shared/bench/WORKLOADS.md` on tokio's multi-thread runtime.
//!
//! `tokio-bench <workload> [n]`, env `WORKERS`; prints one result line (see `bench-common`).
//! Per-system choices, as WORKLOADS.md fixes them: `tokio::spawn` with the `JoinHandle`
//! dropped, `mpsc::channel(10)` for skynet (node futures boxed: a self-spawning async fn
//! has a cyclic type), `mpsc::channel(1)` for pingpong and ring (capacity 0 panics),
//! `oneshot` for idle_mem, `task::yield_now`, `time::sleep`, `sync::Mutex`,
//! `std::thread::sleep` as the blocking call (plus the idiomatic variants
//! `syscall_handoff_spawn_blocking` and `syscall_handoff_block_in_place`),
//! `block_in_place(getppid)` as the wrapped call of `syscall_cost`, `tokio::net` for echo,
//! and an `AtomicUsize` + `tokio::sync::Notify` latch. `locked_pingpong` is unsupported:
//! tokio has no way to pin a task to a thread of the multi-thread runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bench_common::{
    Args, BLOCK, BLOCKERS, CostFigures, ECHO_CONNS, GOROUTINES, Getppid, IDLE_SETTLE, Lateness,
    MSG_BYTES, RING_GOROUTINES, Report, SKYNET_FANOUT, SLEEP, SyscallCost, check_failed,
    check_skynet_n, echo_byte, exit_on_panic, idle_mem_fields, ms, per_goroutine, share,
    skynet_expected, syscall_cost_report, syscall_cost_steps, unsupported, vm_rss_bytes,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

fn main() {
    exit_on_panic();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // The root goroutine: a task spawned from `block_on` (not the `block_on` future
    // itself), so spawns come from a worker as in Go.
    let report = runtime.block_on(async move {
        tokio::spawn(async move { run(&args).await })
            .await
            .expect("root task")
    });
    report.print();
}

/// Runs one workload by name and returns its result line.
async fn run(args: &Args) -> Report {
    let (n, w) = (args.n, args.workers);
    match args.workload.as_str() {
        "spawn" => spawn(n, w).await,
        "skynet" => skynet(n, w).await,
        "pingpong" => pingpong(n, w).await,
        "yield" => yield_(n, w).await,
        "ring" => ring(n, w).await,
        "sleep" => sleep(n, w).await,
        "idle_mem" => idle_mem(n, w).await,
        "mutex" => mutex(n, w).await,
        "syscall_handoff" => syscall_handoff(n, w, BlockVia::ThreadSleep).await,
        "syscall_handoff_spawn_blocking" => syscall_handoff(n, w, BlockVia::SpawnBlocking).await,
        "syscall_handoff_block_in_place" => syscall_handoff(n, w, BlockVia::BlockInPlace).await,
        "syscall_cost" => syscall_cost(n, w).await,
        "echo" => echo(n, w).await,
        // locked_pingpong: no LockOSThread counterpart.
        other => unsupported(other),
    }
}

/// Moves `value` to the heap for the rest of the process: shared state reached through a
/// `'static` reference, like a pointer captured by a Go closure (no refcount per spawn).
fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// The WaitGroup-like countdown latch: one atomic decrement per task and a single
/// wake-up when the count reaches zero.
struct Latch {
    /// Tasks still to finish; atomic protocol (the last decrement notifies).
    remaining: AtomicUsize,
    /// Notified once, by the decrement that reaches zero; `notify_one` stores a permit if
    /// the waiter is not waiting yet, so the wake-up cannot be lost.
    notify: Notify,
}

impl Latch {
    fn leak(count: usize) -> &'static Latch {
        leak(Latch {
            remaining: AtomicUsize::new(count),
            notify: Notify::new(),
        })
    }

    /// Counts one task down; returns true for the last one.
    fn done(&self) -> bool {
        // AcqRel: release publishes this task's writes; the last decrement acquires
        // everyone's and hands them to the waiter through the notify permit.
        let last = self.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            self.notify.notify_one();
        }
        last
    }

    async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// spawn: n tasks each doing one atomic add.
async fn spawn(n: usize, workers: usize) -> Report {
    let counter = leak(AtomicUsize::new(0));
    let latch = Latch::leak(n);
    let start = Instant::now();
    for _ in 0..n {
        tokio::spawn(async move {
            counter.fetch_add(1, Ordering::Relaxed);
            latch.done();
        });
    }
    latch.wait().await;
    let total = start.elapsed();
    let got = counter.load(Ordering::Relaxed);
    if got != n {
        check_failed(format!("spawn: counter {got}, want {n}"));
    }
    Report::new("spawn", n, total, workers)
}

/// skynet: a 10-ary tree of tasks over n leaves; each node sums its children.
async fn skynet(n: usize, workers: usize) -> Report {
    check_skynet_n(n);
    let (tx, mut rx) = mpsc::channel(SKYNET_FANOUT);
    let start = Instant::now();
    tokio::spawn(skynet_node(tx, 0, n as u64));
    let result = rx.recv().await.expect("skynet: root result");
    let total = start.elapsed();
    let want = skynet_expected(n);
    if result != want {
        check_failed(format!("skynet: result {result}, want {want}"));
    }
    Report::new("skynet", n, total, workers).field("result", result)
}

/// One skynet node, boxed: a future that spawns itself would otherwise have a cyclic type.
fn skynet_node(
    parent: mpsc::Sender<u64>,
    num: u64,
    size: u64,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if size == 1 {
            parent.send(num).await.expect("skynet: send leaf");
            return;
        }
        let (tx, mut rx) = mpsc::channel(SKYNET_FANOUT);
        let child = size / SKYNET_FANOUT as u64;
        for i in 0..SKYNET_FANOUT as u64 {
            tokio::spawn(skynet_node(tx.clone(), num + i * child, child));
        }
        let mut sum = 0;
        for _ in 0..SKYNET_FANOUT {
            sum += rx.recv().await.expect("skynet: recv");
        }
        parent.send(sum).await.expect("skynet: send sum");
    })
}

/// pingpong: two tasks bounce a value n times over two capacity-1 channels.
async fn pingpong(n: usize, workers: usize) -> Report {
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let latch = Latch::leak(2);
    let start = Instant::now();
    tokio::spawn(async move {
        for _ in 0..n {
            let v = ping_rx.recv().await.expect("pingpong: recv ping");
            pong_tx.send(v).await.expect("pingpong: send pong");
        }
        latch.done();
    });
    tokio::spawn(async move {
        for i in 0..n as u64 {
            ping_tx.send(i).await.expect("pingpong: send ping");
            let v = pong_rx.recv().await.expect("pingpong: recv pong");
            if v != i {
                check_failed(format!("pingpong: got {v} back, want {i}"));
            }
        }
        latch.done();
    });
    latch.wait().await;
    Report::new("pingpong", n, start.elapsed(), workers).field("chan_capacity", 1)
}

/// yield: 1000 tasks each yield n/1000 times.
async fn yield_(n: usize, workers: usize) -> Report {
    let per = per_goroutine("yield", n, GOROUTINES);
    let latch = Latch::leak(GOROUTINES);
    let start = Instant::now();
    for _ in 0..GOROUTINES {
        tokio::spawn(async move {
            for _ in 0..per {
                tokio::task::yield_now().await;
            }
            latch.done();
        });
    }
    latch.wait().await;
    Report::new("yield", n, start.elapsed(), workers)
}

/// ring: 10,000 tasks forward a token around a ring n/10,000 times. Task i receives on
/// channel i and sends on channel i+1 (mod 10,000); the last hop of the last round goes
/// back to the root instead. Each hop adds one to the token.
async fn ring(n: usize, workers: usize) -> Report {
    let rounds = per_goroutine("ring", n, RING_GOROUTINES);
    let (done_tx, mut done_rx) = mpsc::channel::<u64>(1);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..RING_GOROUTINES).map(|_| mpsc::channel(1)).unzip();
    for (i, mut rx) in rxs.into_iter().enumerate() {
        let next = txs[(i + 1) % RING_GOROUTINES].clone();
        let done = (i == RING_GOROUTINES - 1).then(|| done_tx.clone());
        tokio::spawn(async move {
            for round in 1..=rounds {
                let token = rx.recv().await.expect("ring: recv") + 1;
                match &done {
                    Some(done) if round == rounds => done.send(token).await,
                    _ => next.send(token).await,
                }
                .expect("ring: send");
            }
        });
    }
    let start = Instant::now();
    txs[0].send(0).await.expect("ring: inject");
    let hops = done_rx.recv().await.expect("ring: token back");
    let total = start.elapsed();
    if hops != n as u64 {
        check_failed(format!("ring: {hops} hops, want {n}"));
    }
    Report::new("ring", n, total, workers)
        .field("goroutines", RING_GOROUTINES)
        .field("rounds", rounds)
}

/// sleep: n tasks each sleep 10 ms; lateness per task.
async fn sleep(n: usize, workers: usize) -> Report {
    let late_ns: &'static [AtomicI64] = Box::leak((0..n).map(|_| AtomicI64::new(0)).collect());
    let latch = Latch::leak(n);
    let start = Instant::now();
    for slot in late_ns {
        tokio::spawn(async move {
            let t0 = Instant::now();
            tokio::time::sleep(SLEEP).await;
            let late = t0.elapsed().as_nanos() as i64 - SLEEP.as_nanos() as i64;
            slot.store(late, Ordering::Relaxed);
            latch.done();
        });
    }
    latch.wait().await;
    let total = start.elapsed();
    let late = late_ns.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    Lateness::from_ns(late).fields(Report::new("sleep", n, total, workers))
}

/// idle_mem: n tasks each blocked receiving on its own oneshot; RSS per parked one.
async fn idle_mem(n: usize, workers: usize) -> Report {
    let rss_before = vm_rss_bytes();
    let (txs, mut rxs): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| {
            let (tx, rx) = oneshot::channel::<u64>();
            (tx, Some(rx))
        })
        .unzip();
    let rss_after_channels = vm_rss_bytes();
    let started = Latch::leak(n);
    let finished = Latch::leak(n);
    let start = Instant::now();
    // `rxs` keeps its buffer until the end, so that freeing it does not lower rss_parked.
    for slot in &mut rxs {
        let rx = slot.take().expect("idle_mem: receiver");
        tokio::spawn(async move {
            started.done();
            rx.await.expect("idle_mem: recv");
            finished.done();
        });
    }
    started.wait().await;
    let ramp = start.elapsed();
    tokio::time::sleep(IDLE_SETTLE).await;
    let rss_parked = vm_rss_bytes();
    for tx in txs {
        tx.send(1).expect("idle_mem: release");
    }
    finished.wait().await;
    drop(rxs);
    let report = Report::new("idle_mem", n, ramp, workers);
    idle_mem_fields(report, rss_before, rss_after_channels, rss_parked, n)
}

/// mutex: 1000 tasks each lock a shared `tokio::sync::Mutex` and increment n/1000 times.
async fn mutex(n: usize, workers: usize) -> Report {
    let per = per_goroutine("mutex", n, GOROUTINES);
    let counter = leak(Mutex::new(0usize));
    let latch = Latch::leak(GOROUTINES);
    let start = Instant::now();
    for _ in 0..GOROUTINES {
        tokio::spawn(async move {
            for _ in 0..per {
                *counter.lock().await += 1;
            }
            latch.done();
        });
    }
    latch.wait().await;
    let total = start.elapsed();
    let got = *counter.lock().await;
    if got != n {
        check_failed(format!("mutex: counter {got}, want {n}"));
    }
    Report::new("mutex", n, total, workers)
}

/// How a syscall_handoff blocker blocks in the OS for 200 ms.
#[derive(Clone, Copy)]
enum BlockVia {
    /// `std::thread::sleep` right in the task (blocks its worker).
    ThreadSleep,
    /// `spawn_blocking(std::thread::sleep).await` (moves the call to the blocking pool).
    SpawnBlocking,
    /// `block_in_place(std::thread::sleep)` (hands the worker's core to another thread).
    BlockInPlace,
}

impl BlockVia {
    fn workload(self) -> &'static str {
        match self {
            BlockVia::ThreadSleep => "syscall_handoff",
            BlockVia::SpawnBlocking => "syscall_handoff_spawn_blocking",
            BlockVia::BlockInPlace => "syscall_handoff_block_in_place",
        }
    }

    fn label(self) -> &'static str {
        match self {
            BlockVia::ThreadSleep => "thread_sleep",
            BlockVia::SpawnBlocking => "spawn_blocking",
            BlockVia::BlockInPlace => "block_in_place",
        }
    }

    async fn block(self, d: Duration) {
        match self {
            BlockVia::ThreadSleep => std::thread::sleep(d),
            BlockVia::SpawnBlocking => tokio::task::spawn_blocking(move || std::thread::sleep(d))
                .await
                .expect("spawn_blocking"),
            BlockVia::BlockInPlace => tokio::task::block_in_place(|| std::thread::sleep(d)),
        }
    }
}

/// syscall_handoff: 2 tasks block in the OS for 200 ms while 1000 tasks each yield n/1000
/// times.
async fn syscall_handoff(n: usize, workers: usize, blocking: BlockVia) -> Report {
    let per = per_goroutine(blocking.workload(), n, GOROUTINES);
    let blockers = Latch::leak(BLOCKERS);
    let yielders = Latch::leak(GOROUTINES);
    let yielders_done_ns = leak(AtomicU64::new(0));
    let start = Instant::now();
    for _ in 0..BLOCKERS {
        tokio::spawn(async move {
            blocking.block(BLOCK).await;
            blockers.done();
        });
    }
    for _ in 0..GOROUTINES {
        tokio::spawn(async move {
            for _ in 0..per {
                tokio::task::yield_now().await;
            }
            if yielders.done() {
                yielders_done_ns.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        });
    }
    yielders.wait().await;
    blockers.wait().await;
    let total = start.elapsed();
    let yielders_done = Duration::from_nanos(yielders_done_ns.load(Ordering::Relaxed));
    Report::new(blocking.workload(), n, total, workers)
        .field("yielders_done_ms", ms(yielders_done))
        .field("blocking", blocking.label())
}

/// `calls` calls of `getppid`, bare or inside `block_in_place` (tokio's way to run a
/// blocking call on a worker); every result is checked against `want`. With `yielding`,
/// a `yield_now` follows every call, so that each call starts in a fresh poll.
async fn getppid_calls(kind: Getppid, calls: usize, want: libc::pid_t, yielding: bool) {
    let mut bad = 0usize;
    for _ in 0..if yielding { calls } else { 1 } {
        let calls = if yielding { 1 } else { calls };
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
                    let p = tokio::task::block_in_place(|| unsafe { libc::getppid() });
                    bad += usize::from(p != want);
                }
            }
        }
        if yielding {
            tokio::task::yield_now().await;
        }
    }
    if bad != 0 {
        check_failed(format!(
            "syscall_cost: {bad} getppid calls did not return {want}"
        ));
    }
}

/// One `syscall_cost` measurement (n calls of each kind, `bench_common::syscall_cost_steps`)
/// from this task alone (`workers` = None) or from `workers` tasks in parallel (wall time
/// / all calls).
async fn getppid_cost(
    n: usize,
    want: libc::pid_t,
    yielding: bool,
    workers: Option<usize>,
) -> SyscallCost {
    let mut cost = SyscallCost::default();
    for step in syscall_cost_steps(n) {
        let t0 = Instant::now();
        match workers {
            None => getppid_calls(step.kind, step.calls, want, yielding).await,
            Some(workers) => {
                let latch = Latch::leak(workers);
                for i in 0..workers {
                    let calls = share(step.calls, workers, i);
                    tokio::spawn(async move {
                        getppid_calls(step.kind, calls, want, yielding).await;
                        latch.done();
                    });
                }
                latch.wait().await;
            }
        }
        cost.record(step, t0.elapsed());
    }
    cost
}

/// syscall_cost: ns per bare `getppid` and per `block_in_place(getppid)`, n calls each,
/// from this task and from `workers` tasks in parallel.
///
/// `block_in_place` hands the worker's core to another thread only if the calling thread
/// still holds it, and the core comes back only when the poll ends: in a plain loop only
/// the first call of a poll pays, the rest run on a thread that already gave its core
/// away. The overhead is therefore measured per poll, as Go's `Syscall` and
/// `gort::blocking` pay it on every call: two loops of n/10 calls (`yield_n`) with a
/// `yield_now` after every call, one bare and one wrapped, whose difference is
/// `overhead_ns`; `raw_ns` is the plain bare
/// loop and `wrapped_ns = raw_ns + overhead_ns`. The plain loop's figures are the `loop_*`
/// fields (and `ns_per_op`), the yielding loops' the `yield_*` fields.
async fn syscall_cost(n: usize, workers: usize) -> Report {
    // SAFETY: getppid has no preconditions and cannot fail.
    let want = unsafe { libc::getppid() };
    // The yielding loops cost µs per wrapped call: a tenth of the calls is plenty.
    let yield_n = n.div_ceil(10);
    let loop_single = getppid_cost(n, want, false, None).await;
    let loop_par = getppid_cost(n, want, false, Some(workers)).await;
    let yield_single = getppid_cost(yield_n, want, true, None).await;
    let yield_par = getppid_cost(yield_n, want, true, Some(workers)).await;
    let per_poll = |plain: &SyscallCost, yielding: &SyscallCost| CostFigures {
        raw_ns: plain.raw_ns(),
        wrapped_ns: plain.raw_ns() + yielding.overhead_ns(),
        overhead_ns: yielding.overhead_ns(),
    };
    let f = |v: f64| format!("{v:.1}");
    syscall_cost_report(
        n,
        workers,
        loop_single.wrapped_total(),
        per_poll(&loop_single, &yield_single),
        per_poll(&loop_par, &yield_par),
        "block_in_place",
    )
    .field("per_call", "yield_now")
    .field("yield_n", yield_n)
    .field("loop_wrapped_ns", f(loop_single.wrapped_ns()))
    .field("loop_overhead_ns", f(loop_single.overhead_ns()))
    .field("yield_raw_ns", f(yield_single.raw_ns()))
    .field("yield_wrapped_ns", f(yield_single.wrapped_ns()))
    .field("par_loop_overhead_ns", f(loop_par.overhead_ns()))
    .field("par_yield_raw_ns", f(yield_par.raw_ns()))
    .field("par_yield_wrapped_ns", f(yield_par.wrapped_ns()))
}

/// echo: a task-per-connection TCP echo server on 127.0.0.1 and 100 client tasks in the
/// same process, each doing n/100 round trips of 64 bytes.
async fn echo(n: usize, workers: usize) -> Report {
    let per = per_goroutine("echo", n, ECHO_CONNS);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("echo: bind");
    let addr = listener.local_addr().expect("echo: local_addr");
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("echo: accept");
            tokio::spawn(echo_serve(stream));
        }
    });
    let latch = Latch::leak(ECHO_CONNS);
    let start = Instant::now();
    for conn in 0..ECHO_CONNS {
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("echo: connect");
            stream.set_nodelay(true).expect("echo: nodelay");
            let (mut out, mut back) = ([0u8; MSG_BYTES], [0u8; MSG_BYTES]);
            for i in 0..per {
                out.fill(echo_byte(conn, i));
                stream.write_all(&out).await.expect("echo: client write");
                stream
                    .read_exact(&mut back)
                    .await
                    .expect("echo: client read");
                if back != out {
                    check_failed(format!("echo: connection {conn} got wrong bytes at {i}"));
                }
            }
            latch.done();
        });
    }
    latch.wait().await;
    let total = start.elapsed();
    Report::new("echo", n, total, workers)
        .field("rps", format!("{:.0}", n as f64 / total.as_secs_f64()))
        .field("conns", ECHO_CONNS)
        .field("msg_bytes", MSG_BYTES)
}

/// The server side of one echo connection: read up to 64 bytes, write back what was read,
/// until the client closes.
async fn echo_serve(mut stream: TcpStream) {
    stream.set_nodelay(true).expect("echo: nodelay");
    let mut buf = [0u8; MSG_BYTES];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(k) => {
                if stream.write_all(&buf[..k]).await.is_err() {
                    return;
                }
            }
        }
    }
}
