//! Stacks: overflow is Go's fatal error (child process), and many goroutines can be
//! alive at once on a default `vm.max_map_count`.

mod common;

use common::{init, is_child, run_child, stress_factor};
use std::sync::atomic::{AtomicU64, Ordering};

/// Recursion the optimiser cannot remove; `limit` is never reached in practice.
#[inline(never)]
fn recurse(n: u64, limit: u64) -> u64 {
    let buf = [n as u8; 512];
    std::hint::black_box(&buf);
    if n == limit {
        return 0;
    }
    recurse(n + 1, limit) + buf[7] as u64
}

/// Go: TestStackOverflow. Unbounded recursion ends the process with
/// `fatal error: stack overflow` and status 2, never a silent segfault.
#[test]
fn test_stack_overflow() {
    if !is_child() {
        let out = run_child("test_stack_overflow", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "exit status; stderr:\n{err}");
        assert!(
            err.contains("runtime: goroutine stack exceeds 65536-byte limit"),
            "stderr:\n{err}"
        );
        assert!(
            err.contains("fatal error: stack overflow"),
            "stderr:\n{err}"
        );
        assert!(
            err.contains("goroutine "),
            "names the goroutine; stderr:\n{err}"
        );
        return;
    }
    init(2);
    gort::run(|| {
        gort::go(|| recurse(0, u64::MAX)).join().unwrap();
    });
    unreachable!("the overflow must end the process");
}

/// A fault that is not a goroutine stack overflow is not reported as one.
#[test]
fn other_faults_are_not_stack_overflow() {
    if !is_child() {
        let out = run_child("other_faults_are_not_stack_overflow", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(!err.contains("stack overflow"), "stderr:\n{err}");
        return;
    }
    init(2);
    gort::run(|| {
        gort::go(|| {
            // SAFETY: deliberately faults (the test checks how the process dies).
            unsafe { std::ptr::write_volatile(16usize as *mut u64, 1) };
        })
        .join()
        .unwrap();
    });
}

/// Many goroutines alive at once (each parked on a latch), then all finished. 100,000
/// by default (1,000,000 with GORT_STRESS=10; the tour and the bench run 1,000,000).
#[test]
fn many_goroutines_alive_at_once() {
    init(2);
    let n = 100_000 * stress_factor();
    gort::run(move || {
        let started: &'static gort::sync::WaitGroup =
            Box::leak(Box::new(gort::sync::WaitGroup::new()));
        let gate: &'static gort::sync::WaitGroup =
            Box::leak(Box::new(gort::sync::WaitGroup::new()));
        let sum: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        gate.add(1);
        started.add(n as isize);
        let hs: Vec<_> = (0..n)
            .map(|i| {
                gort::go(move || {
                    started.done();
                    gate.wait();
                    sum.fetch_add(i, Ordering::Relaxed);
                })
            })
            .collect();
        started.wait();
        assert!(gort::num_goroutine() as u64 > n, "all alive at once");
        gate.done();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(sum.load(Ordering::Relaxed), n * (n - 1) / 2);
        assert_eq!(gort::num_goroutine(), 1);
    });
}
