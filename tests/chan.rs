//! Channels and `select!`, with tests ported from Go's `runtime/chan_test.go` (named
//! after them) plus gort's own semantics (closing, dropped ends, plain threads).
//! GOMAXPROCS is 4 in this binary.
//!
//! Where Go's tests sleep to let a goroutine block, these wait until `gort::stack(true)`
//! shows the goroutine parked with the expected wait reason ([`wait_parked`]), which is
//! both faster and a stronger check. Every test runs under a watchdog that dumps the
//! goroutines and aborts if it deadlocks.

mod common;

use common::init;
use gort::chan::{self, RecvError, SendError, TryRecvError, TrySendError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a test may run before the watchdog declares a deadlock.
const WATCHDOG: Duration = Duration::from_secs(120);

/// Aborts the process with a goroutine dump if dropped later than `WATCHDOG` after
/// creation (a deadlocked test would otherwise hang the suite).
struct Watchdog(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

fn watchdog(name: &'static str) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
            eprintln!(
                "{name}: still running after {WATCHDOG:?} (deadlock?); goroutines:\n{}",
                gort::stack(true)
            );
            std::process::abort();
        }
    });
    Watchdog(tx)
}

/// Runs `f` as a main goroutine (GOMAXPROCS 4) under a watchdog.
fn run<T: Send>(name: &'static str, f: impl FnOnce() -> T + Send) -> T {
    init(4);
    let _wd = watchdog(name);
    gort::run(f)
}

/// Waits until goroutine `id` is parked with wait reason `reason` (as the goroutine dump
/// of `gort::stack(true)` shows it). Fails if `finished()` becomes true first (the
/// operation did not block) or after 30 s. Works from goroutines and plain threads.
fn wait_parked(id: u64, reason: &str, finished: impl Fn() -> bool) {
    let header = format!("goroutine {id} [{reason}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // from a plain thread, the dump does not walk (and symbolise) our own stack
        let dump = std::thread::spawn(|| gort::stack(true)).join().unwrap();
        let parked = dump.lines().any(|l| {
            l.strip_prefix(header.as_str())
                .is_some_and(|rest| rest.starts_with(']') || rest.starts_with(", "))
        });
        if parked {
            return;
        }
        assert!(
            !finished(),
            "goroutine {id} finished instead of blocking in {reason:?}"
        );
        assert!(
            Instant::now() < deadline,
            "goroutine {id} never parked in {reason:?}; dump:\n{dump}"
        );
        gort::gosched();
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Waits (up to 30 s) for a goroutine that should finish promptly; fails instead of
/// hanging until the watchdog if it does not.
fn wait_finished<T>(h: &gort::JoinHandle<T>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !h.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{what}: goroutine never finished"
        );
        gort::gosched();
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Go: TestChan. For every capacity 0..199 (Go's full range; GOMAXPROCS 4 as in Go):
/// a receive from an empty channel blocks (the receiver is seen parked in "chan receive"
/// instead of Go's 1 ms sleep) and so does a blocking `select!` receive; `try_recv` and
/// a `select!` with `default` do not block; a send to a full channel blocks, `try_send`
/// returns `Full` with the value and a `select!` send with `default` takes `default`;
/// the blocked sender's value goes to the tail of the buffer; a closed channel yields its
/// buffered values in order and then `Err` (Go: the zero value with ok == false), to
/// `recv`, `try_recv` and `select!`; close unblocks a parked receiver; 100 values arrive
/// in FIFO order through `recv` and through `select!` (Go: recv and recv2); 4 producers ×
/// 4 consumers (1000 values each) deliver the exact multiset; `len`/`capacity`. Go's
/// full sizes.
#[test]
fn test_chan() {
    run("test_chan", || {
        for cap in 0..200usize {
            chan_blocking_recv(cap);
            chan_blocking_send(cap);
            chan_closed(cap);
            chan_close_unblocks(cap);
            chan_fifo_and_multiset(cap);
            chan_len_cap(cap);
        }
    });
}

/// TestChan, part 1: receiving from an empty channel blocks.
fn chan_blocking_recv(cap: usize) {
    let (tx, rx) = chan::bounded::<usize>(cap);
    let recv1 = Arc::new(AtomicBool::new(false));
    let recv2 = Arc::new(AtomicBool::new(false));
    let (r, f) = (rx.clone(), recv1.clone());
    let h1 = gort::go(move || {
        let v = r.recv();
        f.store(true, Ordering::SeqCst);
        v
    });
    let (r, f) = (rx.clone(), recv2.clone());
    let h2 = gort::go(move || {
        let v = gort::select! { recv(r) -> v => v };
        f.store(true, Ordering::SeqCst);
        v
    });
    wait_parked(h1.id(), "chan receive", || recv1.load(Ordering::SeqCst));
    wait_parked(h2.id(), "select", || recv2.load(Ordering::SeqCst));
    assert!(
        !recv1.load(Ordering::SeqCst) && !recv2.load(Ordering::SeqCst),
        "chan[{cap}]: receive from empty chan"
    );
    // non-blocking receives do not block
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "chan[{cap}]");
    let took_default = gort::select! {
        recv(rx) -> v => panic!("chan[{cap}]: receive from empty chan: {v:?}"),
        default => true,
    };
    assert!(took_default);
    assert!(
        !recv1.load(Ordering::SeqCst) && !recv2.load(Ordering::SeqCst),
        "chan[{cap}]: receive from empty chan"
    );
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let mut got = [h1.join().unwrap().unwrap(), h2.join().unwrap().unwrap()];
    got.sort_unstable();
    assert_eq!(got, [1, 2], "chan[{cap}]: parked receivers got the values");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "chan[{cap}]");
}

/// TestChan, part 2: sending to a full channel blocks.
fn chan_blocking_send(cap: usize) {
    const BLOCKED: usize = 1_000_000;
    let (tx, rx) = chan::bounded::<usize>(cap);
    for i in 0..cap {
        tx.send(i).unwrap();
    }
    let sent = Arc::new(AtomicBool::new(false));
    let (t, s) = (tx.clone(), sent.clone());
    let h = gort::go(move || {
        let r = t.send(BLOCKED);
        s.store(true, Ordering::SeqCst);
        r
    });
    wait_parked(h.id(), "chan send", || sent.load(Ordering::SeqCst));
    assert!(
        !sent.load(Ordering::SeqCst),
        "chan[{cap}]: send to full chan"
    );
    // non-blocking sends do not block, and give the value back
    assert_eq!(tx.try_send(7).map_err(|e| e.into_inner()), Err(7));
    assert!(matches!(tx.try_send(7), Err(TrySendError::Full(7))));
    let took_default = gort::select! {
        send(tx, 8) -> r => panic!("chan[{cap}]: send to full chan: {r:?}"),
        default => true,
    };
    assert!(took_default);
    assert!(
        !sent.load(Ordering::SeqCst),
        "chan[{cap}]: send to full chan"
    );
    assert_eq!(tx.len(), cap, "chan[{cap}]: len of a full chan");
    // one receive makes room: the head comes out, the blocked value goes to the tail
    let first = rx.recv().unwrap();
    assert_eq!(first, if cap == 0 { BLOCKED } else { 0 }, "chan[{cap}]");
    h.join().unwrap().unwrap();
    let rest: Vec<usize> = rx.try_iter().collect();
    let want: Vec<usize> = if cap == 0 {
        vec![]
    } else {
        (1..cap).chain([BLOCKED]).collect()
    };
    assert_eq!(rest, want, "chan[{cap}]: buffer order after a blocked send");
}

/// TestChan, part 3: a closed channel yields its buffered values, then `Err`.
fn chan_closed(cap: usize) {
    let (tx, rx) = chan::bounded::<usize>(cap);
    for i in 0..cap {
        tx.send(i).unwrap();
    }
    assert!(tx.close());
    for i in 0..cap {
        assert_eq!(rx.recv(), Ok(i), "chan[{cap}]: buffered value after close");
    }
    assert_eq!(rx.recv(), Err(RecvError), "chan[{cap}]: recv after drain");
    assert_eq!(rx.recv(), Err(RecvError), "chan[{cap}]: recv after drain");
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Disconnected),
        "chan[{cap}]"
    );
    let r = gort::select! {
        recv(rx) -> v => v,
        default => panic!("chan[{cap}]: select on a closed chan took default"),
    };
    assert_eq!(r, Err(RecvError), "chan[{cap}]: select recv after drain");
    assert_eq!(rx.iter().count(), 0);
}

/// TestChan, part 4: close unblocks a parked receiver.
fn chan_close_unblocks(cap: usize) {
    let (tx, rx) = chan::bounded::<usize>(cap);
    let (done_tx, done_rx) = chan::bounded::<Result<usize, RecvError>>(0);
    let h = gort::go(move || done_tx.send(rx.recv()).unwrap());
    wait_parked(h.id(), "chan receive", || h.is_finished());
    assert!(tx.close());
    assert_eq!(
        done_rx.recv().unwrap(),
        Err(RecvError),
        "chan[{cap}]: received a value from a closed chan"
    );
    h.join().unwrap();
}

/// TestChan, part 5: FIFO order, and an exact multiset through 4 producers × 4 consumers.
fn chan_fifo_and_multiset(cap: usize) {
    let (tx, rx) = chan::bounded::<usize>(cap);
    let t = tx.clone();
    let h = gort::go(move || {
        for i in 0..100 {
            t.send(i).unwrap();
        }
    });
    for i in 0..100 {
        assert_eq!(rx.recv(), Ok(i), "chan[{cap}]: FIFO");
    }
    h.join().unwrap();
    // Same, receiving through select! (Go: recv2, `v, ok := <-c`).
    let t = tx.clone();
    let h = gort::go(move || {
        for i in 0..100 {
            t.send(i).unwrap();
        }
    });
    for i in 0..100 {
        let v = gort::select! { recv(rx) -> v => v };
        assert_eq!(v, Ok(i), "chan[{cap}]: FIFO through select");
    }
    h.join().unwrap();

    const P: usize = 4;
    const L: usize = 1000;
    let producers: Vec<_> = (0..P)
        .map(|_| {
            let t = tx.clone();
            gort::go(move || {
                for i in 0..L {
                    t.send(i).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..P)
        .map(|_| {
            let r = rx.clone();
            gort::go(move || {
                let mut recv = HashMap::<usize, usize>::new();
                for _ in 0..L {
                    *recv.entry(r.recv().unwrap()).or_default() += 1;
                }
                recv
            })
        })
        .collect();
    let mut recv = HashMap::<usize, usize>::new();
    for c in consumers {
        for (k, v) in c.join().unwrap() {
            *recv.entry(k).or_default() += v;
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(recv.len(), L, "chan[{cap}]: distinct values received");
    for (k, v) in recv {
        assert!(k < L, "chan[{cap}]: received {k}, never sent");
        assert_eq!(v, P, "chan[{cap}]: value {k} received {v} times");
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "chan[{cap}]");
}

/// TestChan, part 6: len and capacity.
fn chan_len_cap(cap: usize) {
    let (tx, rx) = chan::bounded::<usize>(cap);
    assert_eq!((tx.len(), tx.capacity()), (0, Some(cap)), "chan[{cap}]");
    assert_eq!((rx.len(), rx.capacity()), (0, Some(cap)), "chan[{cap}]");
    assert!(tx.is_empty() && rx.is_empty());
    for i in 0..cap {
        tx.send(i).unwrap();
        assert_eq!(rx.len(), i + 1, "chan[{cap}]");
    }
    assert_eq!((tx.len(), tx.capacity()), (cap, Some(cap)), "chan[{cap}]");
    assert_eq!((rx.len(), rx.capacity()), (cap, Some(cap)), "chan[{cap}]");
    assert_eq!(tx.is_empty(), cap == 0);
}

/// Go: TestNonblockRecvRace. A channel holding one value is closed while a goroutine
/// does a non-blocking receive on it: at every moment the channel is ready (a value, or
/// closed), so that `select!` must never take `default`. 10000 iterations as in Go.
/// Also checks that exactly one of the goroutine and main got the value.
#[test]
fn test_nonblock_recv_race() {
    let (defaults, bad) = run("test_nonblock_recv_race", || {
        let n = 10_000;
        let mut hs = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = chan::bounded::<i32>(1);
            tx.send(1).unwrap();
            let r = rx.clone();
            let h = gort::go(move || {
                gort::select! {
                    recv(r) -> v => Some(v),
                    default => None,
                }
            });
            assert!(tx.close());
            hs.push((h, rx.recv()));
        }
        let (mut defaults, mut bad) = (0, 0);
        for (h, mine) in hs {
            match (h.join().unwrap(), mine) {
                (None, _) => defaults += 1,
                (Some(Ok(1)), Err(RecvError)) | (Some(Err(RecvError)), Ok(1)) => {}
                _ => bad += 1,
            }
        }
        (defaults, bad)
    });
    assert_eq!(defaults, 0, "chan is not ready: select took default");
    assert_eq!(bad, 0, "the value was not received exactly once");
}

/// Go: TestNonblockSelectRace and TestNonblockSelectRace2: a goroutine's non-blocking
/// select over c1 and c2 runs while main makes c2 ready (`ready_c2`) and then takes
/// c1's value if it can: from the goroutine's start at least one of them is always
/// ready, so the select must act on one moment's state and never take `default`.
fn nonblock_select_race(
    name: &'static str,
    n: usize,
    c2_cap: usize,
    ready_c2: fn(&chan::Sender<i32>),
) {
    let failed_at = run(name, || {
        let (done_tx, done_rx) = chan::bounded::<bool>(1);
        for i in 0..n {
            let (c1_tx, c1_rx) = chan::bounded::<i32>(1);
            let (c2_tx, c2_rx) = chan::bounded::<i32>(c2_cap);
            c1_tx.send(1).unwrap();
            let (r1, r2, done) = (c1_rx.clone(), c2_rx.clone(), done_tx.clone());
            gort::go(move || {
                let ok = gort::select! {
                    recv(r1) -> _ => true,
                    recv(r2) -> _ => true,
                    default => false,
                };
                done.send(ok).unwrap();
            });
            ready_c2(&c2_tx);
            gort::select! {
                recv(c1_rx) -> _ => (),
                default => (),
            }
            if !done_rx.recv().unwrap() {
                return Some(i);
            }
        }
        None
    });
    assert_eq!(failed_at, None, "no chan is ready: select took default");
}

/// Go: TestNonblockSelectRace (c2 is buffered and gets a value). 100000 iterations as
/// in Go.
#[test]
fn test_nonblock_select_race() {
    nonblock_select_race("test_nonblock_select_race", 100_000, 1, |c2| {
        c2.send(1).unwrap()
    });
}

/// Go: TestNonblockSelectRace2 (c2 is unbuffered and gets closed). 100000 iterations as
/// in Go.
#[test]
fn test_nonblock_select_race2() {
    nonblock_select_race("test_nonblock_select_race2", 100_000, 0, |c2| {
        assert!(c2.close())
    });
}

/// Go: TestSelfSelect. Two goroutines each run 1000 selects with a send and a receive
/// arm on the same channel (cap 0 and 10): no crash, no deadlock, and on the unbuffered
/// channel no goroutine ever receives its own value. Added: on the unbuffered channel
/// every send of one goroutine pairs with a receive of the other; on the buffered one,
/// values sent minus values received equals what is left in the buffer.
#[test]
fn test_self_select() {
    run("test_self_select", || {
        for cap in [0usize, 10] {
            let (tx, rx) = chan::bounded::<usize>(cap);
            let hs: Vec<_> = (0..2usize)
                .map(|p| {
                    let (tx, rx) = (tx.clone(), rx.clone());
                    gort::go(move || {
                        // [sent, received from the other, received own value]
                        let mut n = [0usize; 3];
                        let mut got = |v: Result<usize, RecvError>| match v.unwrap() {
                            v if v == p => n[2] += 1,
                            v if v == 1 - p => n[1] += 1,
                            v => panic!("received {v}, never sent"),
                        };
                        let mut sent = 0;
                        for i in 0..1000 {
                            if p == 0 || i % 2 == 0 {
                                gort::select! {
                                    send(tx, p) -> r => { r.unwrap(); sent += 1 }
                                    recv(rx) -> v => got(v),
                                }
                            } else {
                                gort::select! {
                                    recv(rx) -> v => got(v),
                                    send(tx, p) -> r => { r.unwrap(); sent += 1 }
                                }
                            }
                        }
                        n[0] = sent;
                        n
                    })
                })
                .collect();
            let n: Vec<[usize; 3]> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            for (p, n) in n.iter().enumerate() {
                assert_eq!(n[0] + n[1] + n[2], 1000, "cap {cap}: selects run by {p}");
            }
            if cap == 0 {
                assert_eq!(n[0][2] + n[1][2], 0, "self receive on an unbuffered chan");
                assert_eq!(n[0][0], n[1][1], "sends of 0 = receives of 0 by 1");
                assert_eq!(n[1][0], n[0][1], "sends of 1 = receives of 1 by 0");
            } else {
                let sent = n[0][0] + n[1][0];
                let recvd = n[0][1] + n[0][2] + n[1][1] + n[1][2];
                assert_eq!(
                    sent,
                    recvd + rx.len(),
                    "cap {cap}: sent = received + left in the buffer"
                );
            }
        }
    });
}

/// Go: TestSelectStress. Four channels (two unbuffered, caps 2 and 3); per channel one
/// goroutine sends N values and one receives N, plus one goroutine sends N values to
/// each channel through a single 4-arm select and one receives N from each through a
/// 4-arm select; no deadlock. Go disables a select arm by setting its channel to nil;
/// here the arm's channel is swapped for one that is never ready. Added: the sum of
/// the values received on each channel equals the sum sent. N = 1e5 as in Go; deviation:
/// GOMAXPROCS is 4 (Go: 10).
#[test]
fn test_select_stress() {
    const N: u64 = 100_000;
    run("test_select_stress", || {
        let c: Vec<_> = [0, 0, 2, 3].map(chan::bounded::<u64>).into();
        // stand-ins for Go's nil channel: never ready, as their other ends stay alive but
        // unused (two channels, or the stand-ins would pair with each other)
        let (nil_tx, nil_tx_peer) = chan::bounded::<u64>(0);
        let (nil_rx_peer, nil_rx) = chan::bounded::<u64>(0);
        let (mut senders, mut receivers) = (Vec::new(), Vec::new());
        for (tx, rx) in &c {
            let tx = tx.clone();
            senders.push(gort::go(move || {
                for i in 0..N {
                    tx.send(i).unwrap();
                }
            }));
            let rx = rx.clone();
            receivers.push(gort::go(move || {
                (0..N).map(|_| rx.recv().unwrap()).sum::<u64>()
            }));
        }
        let mut tx: Vec<_> = c.iter().map(|(t, _)| t.clone()).collect();
        let nil = nil_tx.clone();
        let sel_send = gort::go(move || {
            let mut n = [0u64; 4];
            for _ in 0..4 * N {
                let k = gort::select! {
                    send(tx[3], n[3]) -> r => { r.unwrap(); 3 }
                    send(tx[2], n[2]) -> r => { r.unwrap(); 2 }
                    send(tx[0], n[0]) -> r => { r.unwrap(); 0 }
                    send(tx[1], n[1]) -> r => { r.unwrap(); 1 }
                };
                n[k] += 1;
                if n[k] == N {
                    tx[k] = nil.clone();
                }
            }
            n
        });
        let mut rx: Vec<_> = c.iter().map(|(_, r)| r.clone()).collect();
        let nil = nil_rx.clone();
        let sel_recv = gort::go(move || {
            let (mut n, mut sum) = ([0u64; 4], [0u64; 4]);
            for _ in 0..4 * N {
                let (k, v) = gort::select! {
                    recv(rx[0]) -> v => (0, v),
                    recv(rx[1]) -> v => (1, v),
                    recv(rx[2]) -> v => (2, v),
                    recv(rx[3]) -> v => (3, v),
                };
                sum[k] += v.unwrap();
                n[k] += 1;
                if n[k] == N {
                    rx[k] = nil.clone();
                }
            }
            (n, sum)
        });
        for h in senders {
            h.join().unwrap();
        }
        let sums: Vec<u64> = receivers.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(sel_send.join().unwrap(), [N; 4]);
        let (n, sum) = sel_recv.join().unwrap();
        assert_eq!(n, [N; 4]);
        for k in 0..4 {
            assert_eq!(
                sum[k] + sums[k],
                N * (N - 1),
                "chan {k}: values lost or duplicated"
            );
            assert_eq!(c[k].1.try_recv(), Err(TryRecvError::Empty));
        }
        drop((nil_tx, nil_tx_peer, nil_rx_peer, nil_rx));
    });
}

/// Go: TestSelectFairness. A 4-arm select over two never-ready unbuffered channels and
/// two always-ready buffered ones (values 1 and 2), 10000 trials: the share of 1s must
/// be within Go's bound 4.891676 / (2·√10000) of 0.5 (six nines of confidence).
#[test]
fn test_select_fairness() {
    const TRIALS: usize = 10_000;
    let (cnt1, cnt2) = run("test_select_fairness", || {
        let (c1_tx, c1) = chan::bounded::<u8>(TRIALS + 1);
        let (c2_tx, c2) = chan::bounded::<u8>(TRIALS + 1);
        for _ in 0..TRIALS + 1 {
            c1_tx.send(1).unwrap();
            c2_tx.send(2).unwrap();
        }
        let (c3_tx, c3) = chan::bounded::<u8>(0);
        let (c4_tx, c4) = chan::bounded::<u8>(0);
        let (out_tx, out) = chan::bounded::<u8>(0);
        let (done_tx, done) = chan::bounded::<()>(0);
        let h = gort::go(move || loop {
            let b = gort::select! {
                recv(c3) -> b => b,
                recv(c4) -> b => b,
                recv(c1) -> b => b,
                recv(c2) -> b => b,
            };
            let b = b.unwrap();
            gort::select! {
                send(out_tx, b) -> r => r.unwrap(),
                recv(done) -> _ => return,
            }
        });
        let (mut cnt1, mut cnt2) = (0usize, 0usize);
        for _ in 0..TRIALS {
            match out.recv().unwrap() {
                1 => cnt1 += 1,
                2 => cnt2 += 1,
                b => panic!("unexpected value {b} on channel"),
            }
        }
        assert!(done_tx.close());
        h.join().unwrap();
        drop((c1_tx, c2_tx, c3_tx, c4_tx));
        (cnt1, cnt2)
    });
    let r = cnt1 as f64 / TRIALS as f64;
    let e = (r - 0.5).abs();
    assert!(
        e <= 4.891676 / (2.0 * (TRIALS as f64).sqrt()),
        "unfair select: in {TRIALS} trials, results were {cnt1}, {cnt2}"
    );
}

/// Go: TestPseudoRandomSend. `select { case c <- 1: case c <- 0: }` 100 times (cap 0
/// and 100) while a goroutine receives (yielding before each receive): each value must
/// be picked more than 10% of the time.
#[test]

fn test_pseudo_random_send() {
    run("test_pseudo_random_send", || {
        let n = 100;
        for cap in [0, n] {
            let (tx, rx) = chan::bounded::<usize>(cap);
            let h = gort::go(move || {
                (0..n)
                    .map(|_| {
                        gort::gosched();
                        rx.recv().unwrap()
                    })
                    .collect::<Vec<_>>()
            });
            for _ in 0..n {
                gort::select! {
                    send(tx, 1) -> r => r.unwrap(),
                    send(tx, 0) -> r => r.unwrap(),
                }
            }
            let l = h.join().unwrap();
            let n1: usize = l.iter().sum();
            let n0 = l.len() - n1;
            assert!(
                n0 > n / 10 && n1 > n / 10,
                "want pseudorandom, got {n0} zeros and {n1} ones (chan cap {cap})"
            );
        }
    });
}

/// Go: TestMultiConsumer. 23 workers move 271828 items from one channel (cap 69) to
/// another, some yielding to disturb the FIFO-ish order; a feeder closes the first
/// channel, waits for the workers and closes the second; the count and the sum of what
/// comes out equal what went in.
#[test]
fn test_multi_consumer() {
    const NWORK: usize = 23;
    const NITER: usize = 271_828;
    const PN: [usize; 10] = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
    run("test_multi_consumer", || {
        let (q_tx, q) = chan::bounded::<usize>(NWORK * 3);
        let (r_tx, r) = chan::bounded::<usize>(NWORK * 3);
        let wg = Arc::new(gort::sync::WaitGroup::new());
        for w in 0..NWORK {
            wg.add(1);
            let (q, r_tx, wg) = (q.clone(), r_tx.clone(), wg.clone());
            gort::go(move || {
                for v in q.iter() {
                    // mess with the fifo-ish nature of range
                    if PN[w % PN.len()] == v {
                        gort::gosched();
                    }
                    r_tx.send(v).unwrap();
                }
                wg.done();
            });
        }
        drop(q);
        // feeder & closer
        let feeder = gort::go(move || {
            let mut expect = 0;
            for i in 0..NITER {
                let v = PN[i % PN.len()];
                expect += v;
                q_tx.send(v).unwrap();
            }
            assert!(q_tx.close()); // no more work
            wg.wait(); // workers done
            r_tx.close(); // ... so there can be no more results
            expect
        });
        // consume & check
        let (mut n, mut s) = (0, 0);
        for v in r.iter() {
            n += 1;
            s += v;
        }
        let expect = feeder.join().unwrap();
        assert_eq!(
            (n, s),
            (NITER, expect),
            "expected sum {expect} (got {s}) from {NITER} iter (saw {n})"
        );
    });
}

/// Go: TestSelectDuplicateChannel. Goroutine A selects with two arms on channel c and
/// one on d; B then blocks receiving on c. Waking A through d must unlink both of A's
/// entries from c, so that the next send on c wakes B (not A's stale entry). Go orders
/// the steps with 1 ms sleeps; here each goroutine is seen parked before the next step.
#[test]
fn test_select_duplicate_channel() {
    run("test_select_duplicate_channel", || {
        let (c_tx, c) = chan::bounded::<i32>(0);
        let (d_tx, d) = chan::bounded::<i32>(0);
        let (e_tx, e) = chan::bounded::<i32>(0);
        let ca = c.clone();
        let a = gort::go(move || {
            let got = gort::select! {
                recv(ca) -> v => ("c", v),
                recv(ca) -> v => ("c again", v),
                recv(d) -> v => ("d", v),
            };
            e_tx.send(9).unwrap();
            got
        });
        wait_parked(a.id(), "select", || a.is_finished()); // A is queued first on c
        let b = gort::go(move || c.recv());
        wait_parked(b.id(), "chan receive", || b.is_finished()); // then B
        d_tx.send(7).unwrap(); // wakes A, which unlinks itself from c
        assert_eq!(e.recv(), Ok(9)); // A is done
        c_tx.send(8).unwrap(); // must wake B
        wait_finished(&b, "B after the send on c");
        assert_eq!(b.join().unwrap(), Ok(8));
        assert_eq!(a.join().unwrap(), ("d", Ok(7)));
    });
}

// ---- gort's own semantics: where Go panics or has no equivalent ----

/// Sending on a closed channel (a panic in Go) returns `Err` carrying the value, from
/// `send`, `try_send` (`Disconnected`) and a `select!` send arm, for buffered, unbuffered
/// and unbounded channels; values buffered before the close are still received. A
/// sender parked on a full channel when it is closed gets its value back.
#[test]
fn send_on_closed_channel_returns_the_value() {
    run("send_on_closed_channel_returns_the_value", || {
        for (tx, rx) in [
            chan::bounded::<String>(0),
            chan::bounded(3),
            chan::unbounded(),
        ] {
            if tx.capacity() != Some(0) {
                tx.send("before".to_string()).unwrap();
            }
            assert!(tx.close());
            assert_eq!(tx.send("a".into()), Err(SendError("a".to_string())));
            match tx.try_send("b".into()) {
                Err(TrySendError::Disconnected(v)) => assert_eq!(v, "b"),
                r => panic!("try_send on a closed chan: {r:?}"),
            }
            let r = gort::select! {
                send(tx, "c".to_string()) -> r => r,
                default => panic!("select send on a closed chan took default"),
            };
            assert_eq!(r, Err(SendError("c".to_string())));
            if tx.capacity() != Some(0) {
                assert_eq!(rx.recv().as_deref(), Ok("before"));
            }
            assert_eq!(rx.recv(), Err(RecvError));
        }

        // a parked sender gets its value back
        let (tx, rx) = chan::bounded::<Box<u32>>(1);
        tx.send(Box::new(1)).unwrap();
        let t = tx.clone();
        let h = gort::go(move || t.send(Box::new(2)));
        wait_parked(h.id(), "chan send", || h.is_finished());
        assert!(tx.close());
        assert_eq!(h.join().unwrap(), Err(SendError(Box::new(2))));
        assert_eq!(rx.recv(), Ok(Box::new(1)));
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

/// Closing twice (a panic in Go) returns `false` the second time, from any clone of
/// the sender; the close is seen through every clone, and dropping the last sender of
/// an already closed channel is harmless.
#[test]
fn close_twice_returns_false() {
    run("close_twice_returns_false", || {
        let (tx, rx) = chan::bounded::<i32>(1);
        let tx2 = tx.clone();
        tx.send(5).unwrap();
        assert!(tx2.close(), "first close");
        assert!(!tx2.close(), "second close");
        assert!(!tx.close(), "close through another clone");
        assert_eq!(tx.send(6), Err(SendError(6)));
        drop((tx, tx2));
        assert_eq!(rx.recv(), Ok(5));
        assert_eq!(rx.recv(), Err(RecvError));
        // dropping the last sender of a channel closed through another clone is
        // harmless, and a close after that still reports false
        let (tx, rx) = chan::bounded::<i32>(0);
        let keep = tx.clone();
        assert!(keep.close());
        drop(tx);
        assert!(!keep.close());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

/// When every `Receiver` is gone, a sender parked in `send` (unbuffered, and on a full
/// buffer) and a `select!` parked on a send arm wake up with `Err` carrying their value;
/// dropping only some of the receivers wakes nobody. Later sends fail at once (even with
/// room in the buffer), and `try_send` reports `Disconnected`.
#[test]
fn dropping_every_receiver_fails_blocked_senders() {
    run("dropping_every_receiver_fails_blocked_senders", || {
        for cap in [0usize, 2] {
            let (tx, rx) = chan::bounded::<String>(cap);
            for i in 0..cap {
                tx.send(format!("buffered {i}")).unwrap();
            }
            let rx2 = rx.clone();
            let t = tx.clone();
            let plain = gort::go(move || t.send("plain".to_string()));
            let t = tx.clone();
            let sel = gort::go(move || {
                gort::select! { send(t, "select".to_string()) -> r => r }
            });
            wait_parked(plain.id(), "chan send", || plain.is_finished());
            wait_parked(sel.id(), "select", || sel.is_finished());
            drop(rx);
            // rx2 is still there: both stay parked
            for _ in 0..20 {
                gort::gosched();
                std::thread::sleep(Duration::from_micros(250));
            }
            assert!(
                !plain.is_finished() && !sel.is_finished(),
                "cap {cap}: a sender woke up while a receiver was left"
            );
            wait_parked(plain.id(), "chan send", || plain.is_finished());
            wait_parked(sel.id(), "select", || sel.is_finished());
            drop(rx2);
            assert_eq!(plain.join().unwrap(), Err(SendError("plain".to_string())));
            assert_eq!(sel.join().unwrap(), Err(SendError("select".to_string())));
            assert_eq!(tx.send("late".into()), Err(SendError("late".to_string())));
            match tx.try_send("try".into()) {
                Err(TrySendError::Disconnected(v)) => assert_eq!(v, "try"),
                r => panic!("cap {cap}: try_send without receivers: {r:?}"),
            }
        }
        // room in the buffer does not matter once the receivers are gone
        let (tx, rx) = chan::unbounded::<i32>();
        drop(rx);
        assert_eq!(tx.send(1), Err(SendError(1)));
    });
}

/// Dropping every `Sender` closes the channel: `iter()` (and `into_iter()`) end after
/// every sent value was received, not before, and a parked receiver wakes with `Err`.
#[test]
fn dropping_every_sender_ends_iter() {
    run("dropping_every_sender_ends_iter", || {
        let (tx, rx) = chan::bounded::<u32>(4);
        let rx2 = rx.clone();
        let collector = gort::go(move || rx.iter().collect::<Vec<u32>>());
        let collector2 = gort::go(move || rx2.into_iter().collect::<Vec<u32>>());
        let senders: Vec<_> = (0..3u32)
            .map(|s| {
                let tx = tx.clone();
                gort::go(move || {
                    for i in 0..100 {
                        tx.send(s * 1000 + i).unwrap();
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        // main still holds a sender: the collectors must still be waiting
        wait_parked(collector.id(), "chan receive", || collector.is_finished());
        wait_parked(collector2.id(), "chan receive", || collector2.is_finished());
        drop(tx);
        let mut all = collector.join().unwrap();
        all.extend(collector2.join().unwrap());
        all.sort_unstable();
        let want: Vec<u32> = (0..3)
            .flat_map(|s| (0..100).map(move |i| s * 1000 + i))
            .collect();
        assert_eq!(all, want);

        // a receiver parked on an unbuffered channel
        let (tx, rx) = chan::bounded::<u32>(0);
        let h = gort::go(move || rx.recv());
        wait_parked(h.id(), "chan receive", || h.is_finished());
        drop(tx);
        assert_eq!(h.join().unwrap(), Err(RecvError));
    });
}

/// A `select!` with only `default` takes it; one with arms that are not ready and a
/// `default` takes `default` without blocking.
#[test]
fn select_with_only_default() {
    run("select_with_only_default", || {
        let v = gort::select! { default => 7 };
        assert_eq!(v, 7);
        let (tx, rx) = chan::bounded::<i32>(0);
        let v = gort::select! {
            recv(rx) -> _ => 1,
            send(tx, 5) -> _ => 2,
            default => 3,
        };
        assert_eq!(v, 3);
    });
}

/// `select!` arms whose bodies are blocks may be followed by commas, as in
/// crossbeam-channel (this did not compile before 76948e6).
#[test]
fn select_block_arms_with_commas() {
    run("select_block_arms_with_commas", || {
        let (tx, rx) = chan::bounded::<i32>(1);
        tx.send(1).unwrap();
        let v = gort::select! {
            recv(rx) -> v => { v.unwrap() + 10 },
            send(tx, 3) -> r => { r.unwrap(); 20 },
            default => { 30 },
        };
        assert_eq!(v, 11, "only the receive is ready");
        let v = gort::select! {
            recv(rx) -> v => { v.unwrap() + 10 },
            default => { 30 },
        };
        assert_eq!(v, 30, "nothing is ready");
    });
}

/// A blocking `select!` whose only channel is closed returns at once with `Err` (recv
/// arm: `RecvError`; send arm: `SendError` with the value), and a `select!` parked on a
/// channel that gets closed wakes with `Err`. (`select! {}` blocks forever, as Go's
/// `select {}`; not tested.)
#[test]
fn select_on_closed_channel_returns() {
    run("select_on_closed_channel_returns", || {
        let (tx, rx) = chan::bounded::<i32>(0);
        assert!(tx.close());
        assert_eq!(gort::select! { recv(rx) -> v => v }, Err(RecvError));
        assert_eq!(gort::select! { send(tx, 4) -> r => r }, Err(SendError(4)));
        for _ in 0..20 {
            let which = gort::select! {
                recv(rx) -> v => format!("recv {v:?}"),
                send(tx, 5) -> r => format!("send {:?}", r.map_err(|SendError(v)| v)),
            };
            assert!(
                which == "recv Err(RecvError)" || which == "send Err(5)",
                "{which}"
            );
        }

        // parked, then closed: a select over a receive and a send
        let (tx, rx) = chan::bounded::<i32>(0);
        let (tx2, rx2) = chan::bounded::<i32>(0);
        let h = gort::go(move || {
            gort::select! {
                recv(rx) -> v => format!("recv {v:?}"),
                send(tx2, 9) -> r => format!("send {r:?}"),
            }
        });
        wait_parked(h.id(), "select", || h.is_finished());
        assert!(tx.close());
        assert_eq!(h.join().unwrap(), "recv Err(RecvError)");
        drop(rx2);
    });
}

/// A `select!` send to a channel whose receivers are all gone returns
/// `Err(SendError(v))` with the value: at once if they were gone before, and by waking
/// up if they go while the select is parked.
#[test]
fn select_send_without_receivers_returns_the_value() {
    run("select_send_without_receivers_returns_the_value", || {
        let (tx, rx) = chan::bounded::<Vec<u8>>(0);
        drop(rx);
        let r = gort::select! { send(tx, vec![1, 2]) -> r => r };
        assert_eq!(r, Err(SendError(vec![1, 2])));

        let (tx, rx) = chan::bounded::<Vec<u8>>(1);
        tx.send(vec![0]).unwrap(); // full
        let (_other_tx, other_rx) = chan::bounded::<Vec<u8>>(0);
        let h = gort::go(move || {
            gort::select! {
                send(tx, vec![3, 4]) -> r => r.map(|_| "sent"),
                recv(other_rx) -> _ => Ok("other"),
            }
        });
        wait_parked(h.id(), "select", || h.is_finished());
        drop(rx);
        assert_eq!(h.join().unwrap(), Err(SendError(vec![3, 4])));
    });
}

/// Values still buffered when a channel goes away are dropped exactly once, and values
/// handed back in `Err` are not dropped by the channel.
#[test]
fn buffered_values_are_dropped_with_the_channel() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    run("buffered_values_are_dropped_with_the_channel", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::bounded::<Counted>(5);
        for _ in 0..3 {
            tx.send(Counted(drops.clone())).unwrap();
        }
        drop(rx);
        let back = match tx.send(Counted(drops.clone())) {
            Err(SendError(v)) => v,
            Ok(()) => panic!("send without receivers succeeded"),
        };
        assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while still owned");
        drop(back);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(tx);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            4,
            "buffered values not dropped once"
        );
    });
}

// ---- plain threads (outside the runtime) ----

/// A plain thread (not a goroutine) blocked in `recv` really blocks, and a goroutine's
/// send wakes it; a goroutine parked in `recv` is woken by a plain thread's send.
#[test]
fn plain_thread_and_goroutine_recv_send() {
    init(4);
    let _wd = watchdog("plain_thread_and_goroutine_recv_send");
    // thread receives, goroutine sends
    let (tx, rx) = chan::bounded::<u32>(0);
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let th = std::thread::spawn(move || {
        let v = rx.recv();
        d.store(true, Ordering::SeqCst);
        v
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !done.load(Ordering::SeqCst),
        "recv on an empty chan did not block the thread"
    );
    let g = gort::go(move || tx.send(42));
    assert_eq!(th.join().unwrap(), Ok(42));
    assert_eq!(g.join().unwrap(), Ok(()));

    // goroutine receives, thread sends
    let (tx, rx) = chan::bounded::<u32>(0);
    let g = gort::go(move || rx.recv());
    wait_parked(g.id(), "chan receive", || g.is_finished());
    let th = std::thread::spawn(move || tx.send(7));
    assert_eq!(th.join().unwrap(), Ok(()));
    assert_eq!(g.join().unwrap(), Ok(7));
}

/// A plain thread blocked sending on a full channel is woken by a goroutine's receive,
/// by a close (getting its value back), and by the last receiver going away.
#[test]
fn plain_thread_blocked_send() {
    init(4);
    let _wd = watchdog("plain_thread_blocked_send");
    for how in ["recv", "close", "drop receivers"] {
        let (tx, rx) = chan::bounded::<String>(1);
        tx.send("first".into()).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let (t, d) = (tx.clone(), done.clone());
        let th = std::thread::spawn(move || {
            let r = t.send("second".into());
            d.store(true, Ordering::SeqCst);
            r
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !done.load(Ordering::SeqCst),
            "{how}: send to a full chan did not block"
        );
        match how {
            "recv" => {
                let g = gort::go(move || (rx.recv(), rx.recv()));
                assert_eq!(th.join().unwrap(), Ok(()));
                let (a, b) = g.join().unwrap();
                assert_eq!((a.as_deref(), b.as_deref()), (Ok("first"), Ok("second")));
            }
            "close" => {
                let g = gort::go(move || tx.close());
                assert!(g.join().unwrap());
                assert_eq!(th.join().unwrap(), Err(SendError("second".to_string())));
                assert_eq!(rx.recv().as_deref(), Ok("first"));
                assert_eq!(rx.recv(), Err(RecvError));
            }
            _ => {
                gort::go(move || drop(rx)).join().unwrap();
                assert_eq!(th.join().unwrap(), Err(SendError("second".to_string())));
            }
        }
    }
}

/// A plain thread's `select!` blocks until a goroutine makes one arm ready, and runs
/// that arm.
#[test]
fn plain_thread_select() {
    init(4);
    let _wd = watchdog("plain_thread_select");
    let (a_tx, a_rx) = chan::bounded::<u32>(0);
    let (b_tx, b_rx) = chan::bounded::<u32>(0);
    let (c_tx, c_rx) = chan::bounded::<u32>(0);
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let th = std::thread::spawn(move || {
        let r = gort::select! {
            recv(a_rx) -> v => format!("a {v:?}"),
            recv(b_rx) -> v => format!("b {v:?}"),
            send(c_tx, 1) -> r => format!("c {r:?}"),
        };
        d.store(true, Ordering::SeqCst);
        (r, a_rx, c_tx) // keep these ends alive for the checks below
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !done.load(Ordering::SeqCst),
        "select with nothing ready did not block"
    );
    gort::go(move || b_tx.send(5).unwrap()).join().unwrap();
    let (r, _a_rx, _c_tx) = th.join().unwrap();
    assert_eq!(r, "b Ok(5)");
    // the thread's entries on the other channels are gone: no waiting partner there
    assert!(matches!(a_tx.try_send(1), Err(TrySendError::Full(1))));
    assert_eq!(c_rx.try_recv(), Err(TryRecvError::Empty));
}

/// Ping-pong between a plain thread and a goroutine over unbuffered channels, and
/// between two plain threads with no goroutine involved: every value arrives in order.
#[test]
fn plain_thread_ping_pong() {
    init(4);
    let _wd = watchdog("plain_thread_ping_pong");
    const ROUNDS: u32 = 2000;
    let echo = |ping: chan::Receiver<u32>, pong: chan::Sender<u32>| {
        for v in ping.iter() {
            pong.send(v + 1).unwrap();
        }
    };
    // thread <-> goroutine
    let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
    let g = gort::go(move || echo(ping_rx, pong_tx));
    for i in 0..ROUNDS {
        ping_tx.send(2 * i).unwrap();
        assert_eq!(pong_rx.recv(), Ok(2 * i + 1));
    }
    drop(ping_tx);
    g.join().unwrap();
    assert_eq!(pong_rx.recv(), Err(RecvError));
    // thread <-> thread
    let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
    let th = std::thread::spawn(move || echo(ping_rx, pong_tx));
    for i in 0..ROUNDS {
        ping_tx.send(2 * i).unwrap();
        assert_eq!(pong_rx.recv(), Ok(2 * i + 1));
    }
    drop(ping_tx);
    th.join().unwrap();
    assert_eq!(pong_rx.recv(), Err(RecvError));
}

/// A parked `select!` with several arms on the same channel must not touch its own
/// frame after the park's unlock function released that channel: the goroutine may
/// already run again on another M, return from the select and free that memory (a
/// use-after-free fixed in af62920; this test crashed the code before the fix in about
/// one run in four). Four goroutines run selects with two send and two receive arms on
/// one unbuffered channel: at least 100000 each, then they go on (so nobody is left
/// without a partner) until main closes the channel. Every successful send pairs with a
/// successful receive.
#[test]
fn select_same_channel_twice_parks_safely() {
    run("select_same_channel_twice_parks_safely", || {
        const G: usize = 4;
        const N: usize = 100_000;
        let (tx, rx) = chan::bounded::<u8>(0);
        let wg = Arc::new(gort::sync::WaitGroup::new());
        wg.add(G as isize);
        let hs: Vec<_> = (0..G)
            .map(|_| {
                let (tx, rx, wg) = (tx.clone(), rx.clone(), wg.clone());
                gort::go(move || {
                    let (mut sent, mut received) = (0usize, 0usize);
                    for i in 0.. {
                        if i == N {
                            wg.done();
                        }
                        let ok = gort::select! {
                            send(tx, 1) -> r => { sent += r.is_ok() as usize; r.is_ok() }
                            recv(rx) -> v => { received += v.is_ok() as usize; v.is_ok() }
                            send(tx, 2) -> r => { sent += r.is_ok() as usize; r.is_ok() }
                            recv(rx) -> v => { received += v.is_ok() as usize; v.is_ok() }
                        };
                        if !ok {
                            assert!(i >= N, "the channel closed early");
                            return (sent, received);
                        }
                    }
                    unreachable!()
                })
            })
            .collect();
        wg.wait();
        assert!(tx.close());
        let (mut sent, mut received) = (0, 0);
        for h in hs {
            let (s, r) = h.join().unwrap();
            (sent, received) = (sent + s, received + r);
        }
        assert_eq!(sent, received, "every send pairs with a receive");
    });
}
