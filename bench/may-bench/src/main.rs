//! The anchor workloads of `shared/bench/WORKLOADS.md` on may 0.3 (stackful coroutines).
//!
//! `may-bench <workload> [n]`, env `WORKERS`; prints one result line (see `bench-common`).
//! Per-system choices, as WORKLOADS.md fixes them: coroutines spawned as `go!` spawns them
//! (default 32 KiB stack), `may::sync::mpsc` unbounded channels everywhere (may has no
//! bounded or rendezvous channel; pingpong and ring keep at most one message in flight),
//! `may::coroutine::{yield_now, sleep}`, `may::sync::Mutex`, `std::thread::sleep` as the
//! blocking call, `may::net` for echo, and an `AtomicUsize` + `may::sync::SyncFlag` latch.
//!
//! Known limit: each coroutine stack is its own `mmap` plus a guard page, so with Linux's
//! default `vm.max_map_count` (65530) spawn, skynet, sleep and idle_mem fail with
//! `failed to alloc sys stack`; that failure is the measured result, not a harness bug.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bench_common::{
    Args, BLOCK, BLOCKERS, ECHO_CONNS, GOROUTINES, IDLE_SETTLE, Lateness, MSG_BYTES,
    RING_GOROUTINES, Report, SKYNET_FANOUT, SLEEP, check_failed, check_skynet_n, echo_byte,
    exit_on_panic, idle_mem_fields, ms, per_goroutine, skynet_expected, unsupported, vm_rss_bytes,
};
use may::coroutine::{JoinHandle, yield_now};
use may::net::{TcpListener, TcpStream};
use may::sync::{Mutex, SyncFlag, mpsc};

fn main() {
    exit_on_panic();
    let args = Args::parse();
    may::config().set_workers(args.workers);
    // The root goroutine: the workload body runs in a coroutine, so spawns come from a
    // worker as in Go.
    let root_args = args.clone();
    let report = go(move || run(&root_args)).join().expect("root coroutine");
    report.print();
}

/// Runs one workload by name and returns its result line.
fn run(args: &Args) -> Report {
    let (n, w) = (args.n, args.workers);
    match args.workload.as_str() {
        "spawn" => spawn(n, w),
        "skynet" => skynet(n, w),
        "pingpong" => pingpong(n, w),
        "yield" => yield_(n, w),
        "ring" => ring(n, w),
        "sleep" => sleep(n, w),
        "idle_mem" => idle_mem(n, w),
        "mutex" => mutex(n, w),
        "syscall_handoff" => syscall_handoff(n, w),
        "echo" => echo(n, w),
        other => unsupported(other),
    }
}

/// Spawns a coroutine, exactly as may's `go!` macro does (`go!` is this call in an
/// `unsafe` block); spelled out so the unsafe contract is stated where it is relied on.
fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: may's contract is (1) no thread-local storage in the coroutine, since it may
    // migrate between worker threads, and (2) no stack overflow. The closures spawned here
    // use only atomics, `Instant`, may's own primitives and sockets (no TLS; a failed check
    // or a panic does touch TLS to print, but then ends the process at once) and keep small
    // frames (at most two 64-byte buffers), far inside the default 32 KiB stack.
    unsafe { may::coroutine::spawn(f) }
}

/// Moves `value` to the heap for the rest of the process: shared state reached through a
/// `'static` reference, like a pointer captured by a Go closure (no refcount per spawn).
fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// The WaitGroup-like countdown latch: one atomic decrement per goroutine and a single
/// wake-up when the count reaches zero.
struct Latch {
    /// Goroutines still to finish; atomic protocol (the last decrement fires `flag`).
    remaining: AtomicUsize,
    /// Fired once, by the decrement that reaches zero.
    flag: SyncFlag,
}

impl Latch {
    fn leak(count: usize) -> &'static Latch {
        leak(Latch {
            remaining: AtomicUsize::new(count),
            flag: SyncFlag::new(),
        })
    }

    /// Counts one goroutine down; returns true for the last one.
    fn done(&self) -> bool {
        // AcqRel: release publishes this goroutine's writes; the last decrement acquires
        // everyone's and hands them to the waiter through `fire`/`wait`.
        let last = self.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            self.flag.fire();
        }
        last
    }

    fn wait(&self) {
        self.flag.wait();
    }
}

/// spawn: n coroutines each doing one atomic add.
fn spawn(n: usize, workers: usize) -> Report {
    let counter = leak(AtomicUsize::new(0));
    let latch = Latch::leak(n);
    let start = Instant::now();
    for _ in 0..n {
        go(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            latch.done();
        });
    }
    latch.wait();
    let total = start.elapsed();
    let got = counter.load(Ordering::Relaxed);
    if got != n {
        check_failed(format!("spawn: counter {got}, want {n}"));
    }
    Report::new("spawn", n, total, workers)
}

/// skynet: a 10-ary tree of coroutines over n leaves; each node sums its children.
fn skynet(n: usize, workers: usize) -> Report {
    check_skynet_n(n);
    let (tx, rx) = mpsc::channel();
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

fn skynet_node(parent: mpsc::Sender<u64>, num: u64, size: u64) {
    if size == 1 {
        parent.send(num).expect("skynet: send leaf");
        return;
    }
    let (tx, rx) = mpsc::channel();
    let child = size / SKYNET_FANOUT as u64;
    for i in 0..SKYNET_FANOUT as u64 {
        let tx = tx.clone();
        go(move || skynet_node(tx, num + i * child, child));
    }
    let sum: u64 = (0..SKYNET_FANOUT)
        .map(|_| rx.recv().expect("skynet: recv"))
        .sum();
    parent.send(sum).expect("skynet: send sum");
}

/// pingpong: two coroutines bounce a value n times over two channels.
fn pingpong(n: usize, workers: usize) -> Report {
    let (ping_tx, ping_rx) = mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = mpsc::channel::<u64>();
    let latch = Latch::leak(2);
    let start = Instant::now();
    go(move || {
        for _ in 0..n {
            let v = ping_rx.recv().expect("pingpong: recv ping");
            pong_tx.send(v).expect("pingpong: send pong");
        }
        latch.done();
    });
    go(move || {
        for i in 0..n as u64 {
            ping_tx.send(i).expect("pingpong: send ping");
            let v = pong_rx.recv().expect("pingpong: recv pong");
            if v != i {
                check_failed(format!("pingpong: got {v} back, want {i}"));
            }
        }
        latch.done();
    });
    latch.wait();
    Report::new("pingpong", n, start.elapsed(), workers).field("chan_capacity", "unbounded")
}

/// yield: 1000 coroutines each yield n/1000 times.
fn yield_(n: usize, workers: usize) -> Report {
    let per = per_goroutine("yield", n, GOROUTINES);
    let latch = Latch::leak(GOROUTINES);
    let start = Instant::now();
    for _ in 0..GOROUTINES {
        go(move || {
            for _ in 0..per {
                yield_now();
            }
            latch.done();
        });
    }
    latch.wait();
    Report::new("yield", n, start.elapsed(), workers)
}

/// ring: 10,000 coroutines forward a token around a ring n/10,000 times. Coroutine i
/// receives on channel i and sends on channel i+1 (mod 10,000); the last hop of the last
/// round goes back to the root instead. Each hop adds one to the token.
fn ring(n: usize, workers: usize) -> Report {
    let rounds = per_goroutine("ring", n, RING_GOROUTINES);
    let (done_tx, done_rx) = mpsc::channel::<u64>();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..RING_GOROUTINES).map(|_| mpsc::channel()).unzip();
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

/// sleep: n coroutines each sleep 10 ms; lateness per coroutine.
fn sleep(n: usize, workers: usize) -> Report {
    let late_ns: &'static [AtomicI64] = Box::leak((0..n).map(|_| AtomicI64::new(0)).collect());
    let latch = Latch::leak(n);
    let start = Instant::now();
    for slot in late_ns {
        go(move || {
            let t0 = Instant::now();
            may::coroutine::sleep(SLEEP);
            let late = t0.elapsed().as_nanos() as i64 - SLEEP.as_nanos() as i64;
            slot.store(late, Ordering::Relaxed);
            latch.done();
        });
    }
    latch.wait();
    let total = start.elapsed();
    let late = late_ns.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    Lateness::from_ns(late).fields(Report::new("sleep", n, total, workers))
}

/// idle_mem: n coroutines each blocked receiving on its own channel; RSS per parked one.
fn idle_mem(n: usize, workers: usize) -> Report {
    let rss_before = vm_rss_bytes();
    let (txs, mut rxs): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<u64>();
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
        go(move || {
            started.done();
            rx.recv().expect("idle_mem: recv");
            finished.done();
        });
    }
    started.wait();
    let ramp = start.elapsed();
    may::coroutine::sleep(IDLE_SETTLE);
    let rss_parked = vm_rss_bytes();
    for tx in &txs {
        tx.send(1).expect("idle_mem: release");
    }
    finished.wait();
    drop(rxs);
    let report = Report::new("idle_mem", n, ramp, workers);
    idle_mem_fields(report, rss_before, rss_after_channels, rss_parked, n)
}

/// mutex: 1000 coroutines each lock a shared mutex and increment n/1000 times.
fn mutex(n: usize, workers: usize) -> Report {
    let per = per_goroutine("mutex", n, GOROUTINES);
    let counter = leak(Mutex::new(0usize));
    let latch = Latch::leak(GOROUTINES);
    let start = Instant::now();
    for _ in 0..GOROUTINES {
        go(move || {
            for _ in 0..per {
                *counter.lock().expect("mutex: lock") += 1;
            }
            latch.done();
        });
    }
    latch.wait();
    let total = start.elapsed();
    let got = *counter.lock().expect("mutex: lock");
    if got != n {
        check_failed(format!("mutex: counter {got}, want {n}"));
    }
    Report::new("mutex", n, total, workers)
}

/// syscall_handoff: 2 coroutines block in the OS (`std::thread::sleep`, 200 ms) while
/// 1000 coroutines each yield n/1000 times.
fn syscall_handoff(n: usize, workers: usize) -> Report {
    let per = per_goroutine("syscall_handoff", n, GOROUTINES);
    let blockers = Latch::leak(BLOCKERS);
    let yielders = Latch::leak(GOROUTINES);
    let yielders_done_ns = leak(AtomicU64::new(0));
    let start = Instant::now();
    for _ in 0..BLOCKERS {
        go(move || {
            std::thread::sleep(BLOCK);
            blockers.done();
        });
    }
    for _ in 0..GOROUTINES {
        go(move || {
            for _ in 0..per {
                yield_now();
            }
            if yielders.done() {
                yielders_done_ns.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        });
    }
    yielders.wait();
    blockers.wait();
    let total = start.elapsed();
    let yielders_done = std::time::Duration::from_nanos(yielders_done_ns.load(Ordering::Relaxed));
    Report::new("syscall_handoff", n, total, workers)
        .field("yielders_done_ms", ms(yielders_done))
        .field("blocking", "thread_sleep")
}

/// echo: a coroutine-per-connection TCP echo server on 127.0.0.1 and 100 client
/// coroutines in the same process, each doing n/100 round trips of 64 bytes.
fn echo(n: usize, workers: usize) -> Report {
    let per = per_goroutine("echo", n, ECHO_CONNS);
    let listener = TcpListener::bind("127.0.0.1:0").expect("echo: bind");
    let addr = listener.local_addr().expect("echo: local_addr");
    go(move || {
        for stream in listener.incoming() {
            let stream = stream.expect("echo: accept");
            go(move || echo_serve(stream));
        }
    });
    let latch = Latch::leak(ECHO_CONNS);
    let start = Instant::now();
    for conn in 0..ECHO_CONNS {
        go(move || {
            let mut stream = TcpStream::connect(addr).expect("echo: connect");
            stream.set_nodelay(true).expect("echo: nodelay");
            let (mut out, mut back) = ([0u8; MSG_BYTES], [0u8; MSG_BYTES]);
            for i in 0..per {
                out.fill(echo_byte(conn, i));
                stream.write_all(&out).expect("echo: client write");
                stream.read_exact(&mut back).expect("echo: client read");
                if back != out {
                    check_failed(format!("echo: connection {conn} got wrong bytes at {i}"));
                }
            }
            latch.done();
        });
    }
    latch.wait();
    let total = start.elapsed();
    Report::new("echo", n, total, workers)
        .field("rps", format!("{:.0}", n as f64 / total.as_secs_f64()))
        .field("conns", ECHO_CONNS)
        .field("msg_bytes", MSG_BYTES)
}

/// The server side of one echo connection: read up to 64 bytes, write back what was read,
/// until the client closes.
fn echo_serve(mut stream: TcpStream) {
    stream.set_nodelay(true).expect("echo: nodelay");
    let mut buf = [0u8; MSG_BYTES];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(k) => {
                if stream.write_all(&buf[..k]).is_err() {
                    return;
                }
            }
        }
    }
}
