//! Stress: goroutines spawning goroutines from everywhere, with random yields, parks
//! and wake-ups (from goroutines and from plain threads). Every goroutine must run
//! exactly once: none lost, none run twice. Fixed seeds; `GORT_STRESS=N` runs N times
//! as many seeds.

mod common;

use common::{init, stress_factor};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

struct Ctx {
    ran: Vec<AtomicU8>,
    next: AtomicUsize,
    wg: gort::sync::WaitGroup,
}

impl Ctx {
    fn alloc(&self) -> Option<usize> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        (id < self.ran.len()).then_some(id)
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn spawn_node(ctx: &Arc<Ctx>, id: usize, seed: u64) {
    ctx.wg.add(1);
    let c = ctx.clone();
    gort::go(move || node(c, id, seed));
}

fn node(ctx: Arc<Ctx>, id: usize, seed: u64) {
    ctx.ran[id].fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng(seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for _ in 0..(rng.next() % 6) {
        match rng.next() % 5 {
            0 => gort::gosched(),
            1 | 2 => {
                if let Some(cid) = ctx.alloc() {
                    spawn_node(&ctx, cid, seed);
                }
            }
            3 => {
                // park until a helper goroutine (itself a node) releases us
                if let Some(cid) = ctx.alloc() {
                    let gate = Arc::new(gort::sync::WaitGroup::new());
                    gate.add(1);
                    let (g2, c2) = (gate.clone(), ctx.clone());
                    ctx.wg.add(1);
                    let yields = rng.next() % 3;
                    gort::go(move || {
                        for _ in 0..yields {
                            gort::gosched();
                        }
                        g2.done();
                        node(c2, cid, seed);
                    });
                    gate.wait();
                }
            }
            _ => {
                // park until a plain OS thread releases us (1 in 8 of these)
                if rng.next().is_multiple_of(8) {
                    let gate = Arc::new(gort::sync::WaitGroup::new());
                    gate.add(1);
                    let g2 = gate.clone();
                    std::thread::spawn(move || g2.done());
                    gate.wait();
                }
            }
        }
    }
    ctx.wg.done();
}

fn run_seed(seed: u64, budget: usize) {
    let ctx = Arc::new(Ctx {
        ran: (0..budget).map(|_| AtomicU8::new(0)).collect(),
        next: AtomicUsize::new(0),
        wg: gort::sync::WaitGroup::new(),
    });
    let c = ctx.clone();
    gort::run(move || {
        // roots spawned from main, the rest from goroutines everywhere
        for _ in 0..8 {
            if let Some(id) = c.alloc() {
                spawn_node(&c, id, seed);
            }
        }
        c.wg.wait();
    });
    let used = ctx.next.load(Ordering::Relaxed).min(budget);
    assert!(
        used > budget / 2,
        "seed {seed}: only {used} goroutines ran; the test lost its load"
    );
    for (i, r) in ctx.ran.iter().enumerate() {
        let want = u8::from(i < used);
        assert_eq!(
            r.load(Ordering::Relaxed),
            want,
            "seed {seed}: goroutine {i} ran {} times",
            r.load(Ordering::Relaxed)
        );
    }
}

#[test]
fn every_goroutine_runs_exactly_once() {
    init(2);
    let seeds = 16 * stress_factor();
    for seed in 1..=seeds {
        run_seed(seed, 4000);
    }
}

#[test]
fn concurrent_runs_from_many_threads() {
    init(2);
    let hs: Vec<_> = (0..4u64)
        .map(|t| std::thread::spawn(move || run_seed(1000 + t, 2000)))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

/// Join handles under churn (spawn records, `sched/spawn.rs`): goroutines spawned in
/// bursts (so many wait unstarted), their handles dropped at once, dropped later, joined
/// by the spawner, by another goroutine or by a plain thread, while another thread
/// changes GOMAXPROCS and some goroutines yield or lock their thread. Every joined
/// result arrives exactly once with the right value, and every goroutine runs.
#[test]
fn join_handles_under_churn() {
    init(2);
    let rounds = 40 * stress_factor();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let resizer = std::thread::spawn(move || {
        let mut i = 0usize;
        while !s.load(Ordering::Relaxed) {
            gort::gomaxprocs(1 + i % 3);
            i += 1;
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        gort::gomaxprocs(2);
    });
    for round in 0..rounds {
        let ran = Arc::new((0..3000).map(|_| AtomicU8::new(0)).collect::<Vec<_>>());
        // this round's goroutines that finished (the process-wide count would include
        // other tests' goroutines, and is summed from counters read one after another)
        let done = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let d = done.clone();
        let (want, got) = gort::run(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (round + 1));
            let mut kept = Vec::new();
            let mut late_drop = Vec::new();
            let mut want = 0u64;
            for i in 0..r.len() {
                let r2 = r.clone();
                let d2 = d.clone();
                let h = gort::go(move || {
                    if i % 11 == 0 {
                        gort::gosched();
                    }
                    if i % 401 == 0 {
                        gort::lock_os_thread();
                        gort::gosched();
                        gort::unlock_os_thread();
                    }
                    r2[i].fetch_add(1, Ordering::Relaxed);
                    d2.fetch_add(1, Ordering::Release);
                    (i as u64) * 3 + 1
                });
                match rng.next() % 4 {
                    0 => drop(h),
                    1 => late_drop.push(h),
                    _ => {
                        want += (i as u64) * 3 + 1;
                        kept.push(h);
                    }
                }
                if i % 500 == 499 {
                    late_drop.clear(); // dropped while some are unstarted, some done
                }
            }
            drop(late_drop);
            // a third joined here, a third by another goroutine, a third by a thread
            let third = kept.len() / 3;
            let by_thread: Vec<_> = kept.drain(..third).collect();
            let by_goroutine: Vec<_> = kept.drain(..third).collect();
            let t = std::thread::spawn(move || {
                by_thread
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .sum::<u64>()
            });
            let g = gort::go(move || {
                by_goroutine
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .sum::<u64>()
            });
            let here: u64 = kept.into_iter().map(|h| h.join().unwrap()).sum();
            let got = here + g.join().unwrap() + t.join().unwrap();
            // the detached ones finish too
            while d.load(Ordering::Acquire) < r.len() {
                gort::time::sleep(std::time::Duration::from_micros(200));
            }
            (want, got)
        });
        assert_eq!(got, want, "round {round}: joined results");
        for (i, n) in ran.iter().enumerate() {
            assert_eq!(
                n.load(Ordering::Relaxed),
                1,
                "round {round}: goroutine {i} ran"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    resizer.join().unwrap();
}
