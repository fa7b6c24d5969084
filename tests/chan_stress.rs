//! Stress: value conservation through channels under chaos. Goroutines (and a few plain
//! threads) run random scripts of `send`, `try_send`, `recv`, `try_recv`, `select!`
//! (send and receive arms, duplicate channels, with and without `default`), clones,
//! drops and closes, over channels of mixed capacities. Every value is a token that
//! records its fate; at the end:
//!
//! - every token was dropped exactly once (the channel neither leaks nor double-drops);
//! - every send attempt has exactly one outcome: sent, handed back in `Err` (the error
//!   carries exactly the value that was offered), or not sent (`Full`, a `select!` arm
//!   that was not chosen, `default`);
//! - a token is received at most once, only if it was sent, and on the channel it was
//!   sent to; values one sender sent on one channel reach any one receiver in order;
//! - on the channels the controller drains at the end, the multiset received equals the
//!   multiset sent (elsewhere, values may legitimately go down with the channel once
//!   every receiver is gone);
//! - a failed `recv` (channel closed and drained) and a failed send stay failed;
//! - `close` returns `true` at most once per channel.
//!
//! Termination: plain blocking `send`/`recv` are only used on channels the controller
//! can close, and every blocking `select!` also waits on a `stop` channel; when all
//! actors are done or no operation completes for a while (a cycle of waits, which is
//! legitimate), the controller closes `stop` and its channels. Fixed seeds; runs in a
//! few seconds in a debug build; `GORT_STRESS=N` runs N times as many rounds. GOMAXPROCS
//! is 4 in this binary.

mod common;

use common::{init, stress_factor};
use gort::chan::{self, Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A send attempt's outcome (`Slot::fate`).
const SENT: u8 = 1;
const RETURNED: u8 = 2;
const NOT_SENT: u8 = 3;

struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// What happened to one token.
#[derive(Default)]
struct Slot {
    /// The channel the token was offered to.
    ch: AtomicUsize,
    fate: AtomicU8,
    fates: AtomicU8,
    received: AtomicU8,
    drops: AtomicU8,
}

/// Every token of a round.
struct Ledger {
    slots: Vec<Slot>,
    next: AtomicUsize,
    /// Operations completed (the controller's progress measure).
    ops: AtomicUsize,
    /// Actors finished.
    finished: AtomicUsize,
    /// Per channel: how many `close` calls returned true.
    closes: Vec<AtomicUsize>,
}

impl Ledger {
    /// A new token for channel `ch`, or `None` when the round's ids are used up.
    fn token(self: &Arc<Self>, ch: usize, actor: usize) -> Option<Tok> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = self.slots.get(id)?;
        slot.ch.store(ch, Ordering::Relaxed);
        Some(Tok {
            id,
            ch,
            actor,
            led: self.clone(),
        })
    }

    fn set_fate(&self, id: usize, fate: u8) {
        self.slots[id].fate.store(fate, Ordering::Relaxed);
        self.slots[id].fates.fetch_add(1, Ordering::Relaxed);
    }
}

/// A value in flight: knows its id, the channel it was offered to, and its sender.
struct Tok {
    id: usize,
    ch: usize,
    actor: usize,
    led: Arc<Ledger>,
}

impl Drop for Tok {
    fn drop(&mut self) {
        self.led.slots[self.id]
            .drops
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// What a `select!` did, collected after the macro so the arms borrow nothing mutable.
enum Out {
    /// A send arm completed: (token id offered, result).
    Send(usize, Result<(), SendError<Tok>>),
    /// A receive arm completed on channel `.0`.
    Recv(usize, Result<Tok, RecvError>),
    Stop,
    Default,
}

/// Checks what a receiver sees in order, per (channel, sender).
#[derive(Default)]
struct Order(HashMap<(usize, usize), usize>);

impl Order {
    fn received(&mut self, led: &Ledger, ch: usize, t: Tok) {
        assert_eq!(
            t.ch, ch,
            "token {} sent on chan {} came out of chan {ch}",
            t.id, t.ch
        );
        let prev = led.slots[t.id].received.fetch_add(1, Ordering::Relaxed);
        assert_eq!(prev, 0, "token {} received twice", t.id);
        if let Some(last) = self.0.insert((ch, t.actor), t.id) {
            assert!(
                last < t.id,
                "chan {ch}: sender {} sent {last} before {}, received after",
                t.actor,
                t.id
            );
        }
    }
}

struct Actor {
    id: usize,
    rng: Rng,
    led: Arc<Ledger>,
    txs: Vec<(usize, Sender<Tok>)>,
    rxs: Vec<(usize, Receiver<Tok>)>,
    stop: Receiver<()>,
    /// Per channel: whether plain blocking operations are allowed (the controller
    /// closes it at the end).
    closable: Arc<Vec<bool>>,
    order: Order,
}

impl Actor {
    fn run(mut self, steps: usize) {
        for _ in 0..steps {
            if self.stop.try_recv() == Err(TryRecvError::Disconnected) {
                break;
            }
            self.step();
            self.led.ops.fetch_add(1, Ordering::Relaxed);
        }
        self.led.finished.fetch_add(1, Ordering::SeqCst);
    }

    fn pick_tx(&mut self, closable_only: bool) -> Option<usize> {
        let ok: Vec<usize> = (0..self.txs.len())
            .filter(|&i| !closable_only || self.closable[self.txs[i].0])
            .collect();
        (!ok.is_empty()).then(|| ok[self.rng.below(ok.len())])
    }

    fn pick_rx(&mut self, closable_only: bool) -> Option<usize> {
        let ok: Vec<usize> = (0..self.rxs.len())
            .filter(|&i| !closable_only || self.closable[self.rxs[i].0])
            .collect();
        (!ok.is_empty()).then(|| ok[self.rng.below(ok.len())])
    }

    fn token(&self, ch: usize) -> Option<Tok> {
        self.led.token(ch, self.id)
    }

    /// A send of token `id` on channel `ch` finished with `r`.
    fn sent(&mut self, ch: usize, id: usize, r: Result<(), SendError<Tok>>) {
        match r {
            Ok(()) => self.led.set_fate(id, SENT),
            Err(SendError(t)) => {
                assert_eq!(t.id, id, "send on chan {ch}: Err carries another value");
                self.led.set_fate(id, RETURNED);
                drop(t);
                self.check_send_stays_failed(ch);
            }
        }
    }

    /// A receive on channel `ch` finished with `r`.
    fn received(&mut self, ch: usize, r: Result<Tok, RecvError>) {
        match r {
            Ok(t) => self.order.received(&self.led, ch, t),
            Err(RecvError) => {
                // closed and drained: stays so (sends on a closed channel fail)
                if let Some(i) = self.rxs.iter().position(|(c, _)| *c == ch) {
                    let r = self.rxs[i].1.try_recv().map(|t| t.id);
                    assert_eq!(r, Err(TryRecvError::Disconnected), "chan {ch} reopened");
                }
            }
        }
    }

    /// After a failed send on `ch` (closed, or no receivers left), sends keep failing.
    fn check_send_stays_failed(&mut self, ch: usize) {
        let Some(i) = self.txs.iter().position(|(c, _)| *c == ch) else {
            return;
        };
        let Some(t) = self.token(ch) else { return };
        let id = t.id;
        match self.txs[i].1.try_send(t) {
            Err(TrySendError::Disconnected(t)) => {
                assert_eq!(t.id, id);
                self.led.set_fate(id, RETURNED);
            }
            r => panic!(
                "chan {ch}: a send failed, then try_send gave {:?}",
                r.map_err(|e| e.into_inner().id)
            ),
        }
    }

    fn step(&mut self) {
        match self.rng.below(1000) {
            0..=179 => self.op_send(),
            180..=279 => self.op_try_send(),
            280..=459 => self.op_recv(),
            460..=559 => self.op_try_recv(),
            560..=909 => self.op_select(),
            910..=914 => self.op_drop(),
            915..=919 => self.op_clone(),
            920 => self.op_close(),
            _ => gort::gosched(),
        }
    }

    fn op_send(&mut self) {
        let Some(i) = self.pick_tx(true) else { return };
        let ch = self.txs[i].0;
        let Some(t) = self.token(ch) else { return };
        let id = t.id;
        let r = self.txs[i].1.send(t);
        self.sent(ch, id, r);
    }

    fn op_try_send(&mut self) {
        let Some(i) = self.pick_tx(false) else { return };
        let ch = self.txs[i].0;
        let Some(t) = self.token(ch) else { return };
        let id = t.id;
        match self.txs[i].1.try_send(t) {
            Ok(()) => self.led.set_fate(id, SENT),
            Err(TrySendError::Full(t)) => {
                assert_eq!(t.id, id, "try_send Full carries another value");
                self.led.set_fate(id, NOT_SENT);
            }
            Err(TrySendError::Disconnected(t)) => {
                assert_eq!(t.id, id, "try_send Disconnected carries another value");
                self.led.set_fate(id, RETURNED);
                drop(t);
                self.check_send_stays_failed(ch);
            }
        }
    }

    fn op_recv(&mut self) {
        let Some(i) = self.pick_rx(true) else { return };
        let ch = self.rxs[i].0;
        let r = self.rxs[i].1.recv();
        self.received(ch, r);
    }

    fn op_try_recv(&mut self) {
        let Some(i) = self.pick_rx(false) else { return };
        let ch = self.rxs[i].0;
        match self.rxs[i].1.try_recv() {
            Ok(t) => self.order.received(&self.led, ch, t),
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => self.received(ch, Err(RecvError)),
        }
    }

    fn op_drop(&mut self) {
        if self.rng.chance(50) && !self.txs.is_empty() {
            let i = self.rng.below(self.txs.len());
            self.txs.swap_remove(i);
        } else if !self.rxs.is_empty() {
            let i = self.rng.below(self.rxs.len());
            self.rxs.swap_remove(i);
        }
    }

    fn op_clone(&mut self) {
        if self.rng.chance(50) && !self.txs.is_empty() {
            let i = self.rng.below(self.txs.len());
            let c = (self.txs[i].0, self.txs[i].1.clone());
            self.txs.push(c);
        } else if !self.rxs.is_empty() {
            let i = self.rng.below(self.rxs.len());
            let c = (self.rxs[i].0, self.rxs[i].1.clone());
            self.rxs.push(c);
        }
    }

    fn op_close(&mut self) {
        let Some(i) = self.pick_tx(false) else { return };
        if self.txs[i].1.close() {
            self.led.closes[self.txs[i].0].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One of several `select!` shapes; tokens offered by arms that do not complete
    /// are recorded as not sent.
    fn op_select(&mut self) {
        let shape = self.rng.below(6);
        let (Some(a), Some(b)) = (self.pick_tx(false), self.pick_tx(false)) else {
            return;
        };
        let (Some(x), Some(y)) = (self.pick_rx(false), self.pick_rx(false)) else {
            return;
        };
        // shape 4 offers both tokens on the same channel
        let b = if shape == 4 { a } else { b };
        let (ca, cb) = (self.txs[a].0, self.txs[b].0);
        let (cx, cy) = (self.rxs[x].0, self.rxs[y].0);
        let (t1, t2) = match (self.token(ca), self.token(cb)) {
            (Some(t1), Some(t2)) => (t1, t2),
            (t1, t2) => {
                for t in [t1, t2].into_iter().flatten() {
                    self.led.set_fate(t.id, NOT_SENT);
                }
                return;
            }
        };
        let offered = [(ca, t1.id), (cb, t2.id)];
        let (ta, tb) = (&self.txs[a].1, &self.txs[b].1);
        let (rx, ry) = (&self.rxs[x].1, &self.rxs[y].1);
        let stop = &self.stop;
        let out = match shape {
            // blocking: one send, one receive, stop
            0 => gort::select! {
                send(ta, t1) -> r => Out::Send(0, r),
                recv(rx) -> v => Out::Recv(cx, v),
                recv(stop) -> _ => Out::Stop,
            },
            // blocking: two receives, two sends, stop
            1 => gort::select! {
                recv(rx) -> v => Out::Recv(cx, v),
                send(ta, t1) -> r => Out::Send(0, r),
                recv(ry) -> v => Out::Recv(cy, v),
                send(tb, t2) -> r => Out::Send(1, r),
                recv(stop) -> _ => Out::Stop,
            },
            // non-blocking: two sends
            2 => gort::select! {
                send(ta, t1) -> r => Out::Send(0, r),
                send(tb, t2) -> r => Out::Send(1, r),
                default => Out::Default,
            },
            // non-blocking: a receive and a send
            3 => gort::select! {
                recv(rx) -> v => Out::Recv(cx, v),
                send(ta, t1) -> r => Out::Send(0, r),
                default => Out::Default,
            },
            // blocking, duplicate channels: the same receiver twice, the same sender twice
            4 => gort::select! {
                recv(rx) -> v => Out::Recv(cx, v),
                send(ta, t1) -> r => Out::Send(0, r),
                recv(rx) -> v => Out::Recv(cx, v),
                send(tb, t2) -> r => Out::Send(1, r),
                recv(stop) -> _ => Out::Stop,
            },
            // blocking: receives only
            _ => gort::select! {
                recv(rx) -> v => Out::Recv(cx, v),
                recv(ry) -> v => Out::Recv(cy, v),
                recv(stop) -> _ => Out::Stop,
            },
        };
        let chosen = match out {
            Out::Send(k, r) => {
                let (ch, id) = offered[k];
                self.sent(ch, id, r);
                Some(k)
            }
            Out::Recv(ch, r) => {
                self.received(ch, r);
                None
            }
            Out::Stop | Out::Default => None,
        };
        for (k, &(_, id)) in offered.iter().enumerate() {
            if chosen != Some(k) {
                self.led.set_fate(id, NOT_SENT);
            }
        }
    }
}

/// One round with its own seed: channels, actors, the controller, then the checks.
/// Returns (tokens, sent, received, lost with their channel, stalls, operations).
fn round(seed: u64, actors: usize, steps: usize) -> [usize; 6] {
    let mut rng = Rng::new(seed);
    let nch = 6;
    let caps: Vec<usize> = (0..nch)
        .map(|_| [0, 0, 1, 2, 5, usize::MAX][rng.below(6)])
        .collect();
    let chans: Vec<(Sender<Tok>, Receiver<Tok>)> = caps
        .iter()
        .map(|&c| {
            if c == usize::MAX {
                chan::unbounded()
            } else {
                chan::bounded(c)
            }
        })
        .collect();
    let closable: Arc<Vec<bool>> = Arc::new((0..nch).map(|_| rng.chance(65)).collect());
    let drained: Vec<bool> = (0..nch).map(|_| rng.chance(50)).collect();
    let led = Arc::new(Ledger {
        slots: (0..actors * steps * 3).map(|_| Slot::default()).collect(),
        next: AtomicUsize::new(0),
        ops: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        closes: (0..nch).map(|_| AtomicUsize::new(0)).collect(),
    });
    let (stop_tx, stop_rx) = chan::bounded::<()>(0);

    let mut goroutines = Vec::new();
    let mut threads = Vec::new();
    for id in 0..actors {
        let mut txs = Vec::new();
        let mut rxs = Vec::new();
        for (ch, (tx, rx)) in chans.iter().enumerate() {
            if rng.chance(45) {
                txs.push((ch, tx.clone()));
            }
            if rng.chance(45) {
                rxs.push((ch, rx.clone()));
            }
        }
        let actor = Actor {
            id,
            rng: Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)),
            led: led.clone(),
            txs,
            rxs,
            stop: stop_rx.clone(),
            closable: closable.clone(),
            order: Order::default(),
        };
        if rng.chance(15) {
            threads.push(std::thread::spawn(move || actor.run(steps)));
        } else {
            goroutines.push(gort::go(move || actor.run(steps)));
        }
    }
    drop(stop_rx);
    // the controller keeps a sender of closable channels and a receiver of drained ones
    let mut masters = Vec::new();
    let mut drains = Vec::new();
    for (ch, (tx, rx)) in chans.into_iter().enumerate() {
        if closable[ch] {
            masters.push((ch, tx));
        }
        if drained[ch] {
            drains.push((ch, rx));
        }
    }

    // Wait for the actors. A stall (a cycle of waits) is broken by the controller acting
    // as one more sender on closable channels and receiver on drained ones; if the
    // actors still make no progress, by closing one more closable channel; when none is
    // left, by `stop`.
    let mut order = Order::default(); // what the controller receives
    let mut stalls = 0;
    let (mut last, mut since) = (led.ops.load(Ordering::Relaxed), Instant::now());
    let mut to_close: Vec<usize> = (0..masters.len()).collect();
    let mut unstuck = false; // tried the controller's sends and receives in this stall
    while led.finished.load(Ordering::SeqCst) < actors {
        std::thread::sleep(Duration::from_micros(200));
        let now = led.ops.load(Ordering::Relaxed);
        if now != last {
            (last, since, unstuck) = (now, Instant::now(), false);
        } else if since.elapsed() > Duration::from_millis(1) {
            stalls += 1;
            let mut moved = false;
            for (ch, tx) in &masters {
                let Some(t) = led.token(*ch, actors) else {
                    break;
                };
                let id = t.id;
                match tx.try_send(t) {
                    Ok(()) => {
                        led.set_fate(id, SENT);
                        moved = true;
                    }
                    Err(TrySendError::Full(_)) => led.set_fate(id, NOT_SENT),
                    Err(TrySendError::Disconnected(_)) => led.set_fate(id, RETURNED),
                }
            }
            for (ch, rx) in &drains {
                if let Ok(t) = rx.try_recv() {
                    order.received(&led, *ch, t);
                    moved = true;
                }
            }
            if moved && !unstuck {
                (since, unstuck) = (Instant::now(), true);
                continue;
            }
            if to_close.is_empty() {
                break;
            }
            let (ch, tx) = &masters[to_close.swap_remove(rng.below(to_close.len()))];
            if tx.close() {
                led.closes[*ch].fetch_add(1, Ordering::Relaxed);
            }
            since = Instant::now();
        }
    }
    assert!(stop_tx.close());
    for (ch, tx) in &masters {
        if tx.close() {
            led.closes[*ch].fetch_add(1, Ordering::Relaxed);
        }
    }
    for g in goroutines {
        g.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    drop(masters);
    // every sender is gone now: the drained channels are closed
    for (ch, rx) in &drains {
        for t in rx.iter() {
            order.received(&led, *ch, t);
        }
        assert_eq!(rx.try_recv().map(|t| t.id), Err(TryRecvError::Disconnected));
        assert_eq!(rx.len(), 0);
    }
    drop(drains);

    // the checks
    let n = led.next.load(Ordering::Relaxed).min(led.slots.len());
    let (mut sent, mut received, mut lost) = (0, 0, 0);
    for (id, s) in led.slots[..n].iter().enumerate() {
        let fate = s.fate.load(Ordering::Relaxed);
        let fates = s.fates.load(Ordering::Relaxed);
        let rcv = s.received.load(Ordering::Relaxed);
        let drops = s.drops.load(Ordering::Relaxed);
        assert_eq!(
            fates, 1,
            "seed {seed}: token {id} has {fates} send outcomes"
        );
        assert_eq!(drops, 1, "seed {seed}: token {id} dropped {drops} times");
        assert!(rcv <= 1, "seed {seed}: token {id} received {rcv} times");
        let ch = s.ch.load(Ordering::Relaxed);
        match fate {
            SENT => {
                assert!(
                    rcv == 1 || !drained[ch],
                    "seed {seed}: token {id} sent on drained chan {ch} never came out"
                );
                sent += 1;
                received += rcv as usize;
                lost += 1 - rcv as usize;
            }
            RETURNED | NOT_SENT => {
                assert_eq!(
                    rcv, 0,
                    "seed {seed}: token {id} received but not sent ({fate})"
                )
            }
            f => panic!("seed {seed}: token {id}: bad fate {f}"),
        }
    }
    for ch in 0..nch {
        let c = led.closes[ch].load(Ordering::Relaxed);
        assert!(
            c <= 1,
            "seed {seed}: chan {ch}: close returned true {c} times"
        );
    }
    [
        n,
        sent,
        received,
        lost,
        stalls,
        led.ops.load(Ordering::Relaxed),
    ]
}

/// Value conservation (see the module doc).
#[test]
fn chan_value_conservation() {
    init(4);
    let rounds = 40 * stress_factor();
    let start = Instant::now();
    let mut totals = [0usize; 6];
    for seed in 1..=rounds {
        let r = round(seed, 16, 250);
        for (t, v) in totals.iter_mut().zip(r) {
            *t += v;
        }
    }
    let [tokens, sent, received, lost, stalls, ops] = totals;
    eprintln!(
        "chan_value_conservation: {rounds} rounds in {:?}: {ops} operations, {tokens} \
         tokens, {sent} sent, {received} received, {lost} lost with undrained channels, \
         {stalls} stalls broken",
        start.elapsed()
    );
    assert!(
        sent > 0 && received > 0,
        "the stress did not move any value"
    );
}
