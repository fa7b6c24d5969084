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

/// Resident set size of this process, bytes (Linux `VmRSS`).
fn vm_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

/// A goroutine that is queued but has not run yet costs a spawn record, not a stack page
/// (spawn.rs): one P spawning 100,000 goroutines leaves about half of them unstarted in
/// the global queue, and the memory grows by about a page per started goroutine only.
#[test]
fn unstarted_goroutines_cost_no_stack() {
    if !common::in_child(
        "unstarted_goroutines_cost_no_stack",
        &[("GORT_MAXPROCS", "1")],
    ) {
        return;
    }
    let n = 100_000u64;
    gort::run(move || {
        if gort::stats().stack_guard_mode == gort::GuardMode::Mprotect {
            // kernels before 6.13: goroutines get their stacks at spawn (spawn.rs), and
            // the map count limits live stacks to ~32k
            eprintln!("skipped: mprotect guard pages");
            return;
        }
        let gate: &'static gort::sync::WaitGroup =
            Box::leak(Box::new(gort::sync::WaitGroup::new()));
        let finished: &'static gort::sync::WaitGroup =
            Box::leak(Box::new(gort::sync::WaitGroup::new()));
        gate.add(1);
        finished.add(n as isize);
        let before = vm_rss();
        for _ in 0..n {
            gort::go(move || {
                gate.wait();
                finished.done();
            });
        }
        let grown = vm_rss().saturating_sub(before);
        let s = gort::stats();
        let unstarted = s.unstarted_goroutines as u64;
        let started = n - unstarted;
        assert!(
            unstarted >= n / 4,
            "expected many goroutines still queued, got {unstarted} of {n}"
        );
        // a started, parked goroutine: one stack page and its page-table share; an
        // unstarted one: its 192-byte record; plus slack for the queues themselves
        let bound = started * 4608 + unstarted * 512 + (16 << 20);
        assert!(
            grown <= bound,
            "RSS grew {grown} B with {started} started and {unstarted} unstarted goroutines \
             (bound {bound} B)"
        );
        gate.done();
        finished.wait();
        assert_eq!(gort::stats().unstarted_goroutines, 0);
    });
    gort::run(|| assert_eq!(gort::num_goroutine(), 1));
}

/// Goroutine dumps list goroutines that have not started yet, as Go lists runnable ones:
/// header with the name, and the creation site.
#[test]
fn dumps_list_unstarted_goroutines() {
    if !common::in_child("dumps_list_unstarted_goroutines", &[("GORT_MAXPROCS", "1")]) {
        return;
    }
    gort::run(|| {
        if gort::stats().stack_guard_mode == gort::GuardMode::Mprotect {
            eprintln!("skipped: mprotect guard pages (every goroutine starts at spawn)");
            return;
        }
        let line = line!() + 1;
        let h = gort::Builder::new().name("lazy").spawn(|| 7).unwrap();
        let dump = gort::stack(true);
        let header = format!("goroutine {} [runnable, \"lazy\"]:", h.id());
        let at = dump
            .find(&header)
            .unwrap_or_else(|| panic!("no {header:?} in the dump:\n{dump}"));
        let entry = &dump[at..];
        assert!(entry.contains("(not started yet)"), "dump:\n{dump}");
        // Go's two lines: the spawning function, then the site
        assert!(
            entry.contains(&format!(
                "created by stack::dumps_list_unstarted_goroutines::{{{{closure}}}}\n\t{}:{line}",
                file!()
            )),
            "dump:\n{dump}"
        );
        assert!(!h.is_finished());
        assert_eq!(h.join().unwrap(), 7);
        assert!(!gort::stack(true).contains("\"lazy\""), "gone once joined");
    });
}

/// Under an address-space limit (`RLIMIT_AS`) a stack can fail for lack of room, so
/// goroutines get their stacks at spawn, where `Builder::spawn` can report the failure:
/// none waits unstarted, and a spawn beyond the limit is an `Err`, not a fatal error.
#[cfg(target_os = "linux")]
#[test]
fn address_space_limit_makes_spawns_bind_at_once() {
    if !common::in_child("address_space_limit_makes_spawns_bind_at_once", &[]) {
        return;
    }
    // 8 GiB of address space: room for the runtime and some stacks, not for 1 GiB each
    let lim = libc::rlimit {
        rlim_cur: 8 << 30,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    gort::run(|| {
        if gort::stats().stack_guard_mode == gort::GuardMode::Mprotect {
            return; // binds at spawn anyway
        }
        let gate: &'static gort::sync::WaitGroup =
            Box::leak(Box::new(gort::sync::WaitGroup::new()));
        gate.add(1);
        let hs: Vec<_> = (0..1000).map(|_| gort::go(move || gate.wait())).collect();
        assert_eq!(
            gort::stats().unstarted_goroutines,
            0,
            "spawns bind at once under RLIMIT_AS"
        );
        // a stack that cannot be had is the spawner's error
        let big = (0..16)
            .map(|_| {
                gort::Builder::new()
                    .stack_size(1 << 30)
                    .spawn(move || gate.wait())
            })
            .find_map(|r| r.err());
        assert!(big.is_some(), "sixteen 1 GiB stacks fit in 8 GiB?");
        gate.done();
        for h in hs {
            h.join().unwrap();
        }
    });
}
