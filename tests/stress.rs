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
