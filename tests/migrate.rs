//! The thread-local policy: a goroutine that parks on one M and resumes on another sees
//! the new M through the runtime's accessor every time (10,000 iterations), both with
//! natural migration and with `GORT_DEBUG=migrate=1`, which forces every resume onto a
//! different M.

mod common;

use common::{init, is_child, run_child};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const ITERS: u64 = 10_000;

fn tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i64 }
}

/// Waits `ITERS` times for a plain OS thread to release it (so, when it really parked,
/// it goes to the global queue and any M may run it). Returns how often it resumed on
/// another thread, and how often it really parked (the thread can win the race, and then
/// `wait` returns without parking).
fn park_resume_loop() -> (u64, u64) {
    gort::run(|| {
        let moves = Arc::new(AtomicU64::new(0));
        let m2 = moves.clone();
        let parked = Arc::new(AtomicU64::new(0));
        let p2 = parked.clone();
        let h = gort::go(move || {
            for i in 0..ITERS {
                let parks_before = gort::stats().parks;
                let before = tid();
                assert_eq!(
                    gort::debug::m_tid(),
                    before,
                    "accessor before park, iter {i}"
                );
                let wg = Arc::new(gort::sync::WaitGroup::new());
                wg.add(1);
                let w2 = wg.clone();
                std::thread::spawn(move || w2.done());
                wg.wait();
                let after = tid();
                assert_eq!(
                    gort::debug::m_tid(),
                    after,
                    "accessor after resume, iter {i}"
                );
                if after != before {
                    m2.fetch_add(1, Ordering::Relaxed);
                }
                if gort::stats().parks != parks_before {
                    p2.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        h.join().unwrap();
        (
            moves.load(Ordering::Relaxed),
            parked.load(Ordering::Relaxed),
        )
    })
}

#[test]
fn migration_keeps_the_accessor_right() {
    init(2);
    let (moved, parked) = park_resume_loop();
    println!("parked {parked} of {ITERS} times, resumed on another thread {moved} times");
}

#[test]
fn forced_migration_moves_every_resume() {
    if !is_child() {
        let out = run_child(
            "forced_migration_moves_every_resume",
            &[("GORT_DEBUG", "migrate=1"), ("GORT_MAXPROCS", "2")],
        );
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let (moved, parked) = park_resume_loop();
    assert!(
        parked > ITERS / 2,
        "the loop must really park ({parked} parks)"
    );
    assert!(
        moved >= parked,
        "migrate=1 must move every resume ({moved} moves, {parked} parks)"
    );
}
