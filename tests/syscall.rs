//! Blocking calls (`gort::blocking`, Go's `entersyscall`/`exitsyscall`) and the threads
//! they need, as child processes (each needs its own GOMAXPROCS, and the thread-creation
//! test ends its process with a fatal error).

mod common;

use common::{assert_child_ok, is_child, run_child_within};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Go: TestPreemptionAfterSyscall. At GOMAXPROCS 2, 8 goroutines loop on a short system
/// call (`getpid` inside `gort::blocking`; Go's `syscall.Syscall(SYS_GETPID)`) until main
/// sets a stop flag. Main must still get a P to see the 8 starts, set the flag and
/// collect the 8 ends: each of the 10 rounds must end within Go's `maxDuration` (5 s).
#[test]
fn test_preemption_after_syscall() {
    const NAME: &str = "test_preemption_after_syscall";
    if !is_child() {
        let out = run_child_within(NAME, &[("GORT_MAXPROCS", "2")], Duration::from_secs(120));
        assert_child_ok(NAME, &out);
        return;
    }
    const ITERATIONS: u64 = 10;
    const MAX_DURATION: Duration = Duration::from_secs(5);
    const NROUTINES: usize = 8;
    // A round that never ends is a failure of this child (exit 3), not a CI timeout.
    let rounds = Arc::new(AtomicU64::new(0));
    let seen = rounds.clone();
    std::thread::spawn(move || {
        let mut last = (0, Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let done = seen.load(Ordering::SeqCst);
            if done != last.0 {
                last = (done, Instant::now());
            } else if last.1.elapsed() > 2 * MAX_DURATION {
                eprintln!(
                    "TestPreemptionAfterSyscall: round {done} still running after {:?}",
                    2 * MAX_DURATION
                );
                // (after the line above: these take runtime locks)
                eprintln!("{}\n{:?}", gort::stack(true), gort::stats());
                std::process::exit(3);
            }
        }
    });
    gort::run(move || {
        assert_eq!(gort::gomaxprocs(0), 2, "GORT_MAXPROCS=2");
        for i in 0..ITERATIONS {
            let (tx, rx) = gort::chan::bounded::<bool>(NROUTINES);
            let stop = Arc::new(AtomicU32::new(0));

            let start = Instant::now();
            for _ in 0..NROUTINES {
                let (tx, stop) = (tx.clone(), stop.clone());
                gort::go(move || {
                    tx.send(true).unwrap();
                    while stop.load(Ordering::SeqCst) == 0 {
                        // SAFETY: getpid has no preconditions.
                        gort::blocking(|| unsafe { libc::getpid() });
                    }
                    tx.send(true).unwrap();
                });
            }
            // wait until all goroutines have started.
            for _ in 0..NROUTINES {
                rx.recv().unwrap();
            }
            stop.store(1, Ordering::SeqCst);
            // wait until all goroutines have finished.
            for _ in 0..NROUTINES {
                rx.recv().unwrap();
            }
            let duration = start.elapsed();
            eprintln!("round {i}: {duration:?}");
            assert!(
                duration <= MAX_DURATION,
                "round {i}: timeout exceeded: {duration:?} ({MAX_DURATION:?})"
            );
            rounds.fetch_add(1, Ordering::SeqCst);
        }
        eprintln!("{:?}", gort::stats());
    });
}

/// `AUDIT_ARCH_*` of this target (linux/audit.h), checked by the seccomp filter so that
/// the system call numbers it compares are this architecture's.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Makes every later `clone`/`clone3` of this process (all its threads) fail with
/// `EAGAIN`, the error `pthread_create` reports when `ulimit -u` is reached. Unlike
/// `RLIMIT_NPROC` this also holds for root, and unlike an address-space limit it fails
/// nothing but thread (and process) creation.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn forbid_thread_creation() -> std::io::Result<()> {
    use libc::{sock_filter, sock_fprog, BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| sock_filter {
        code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
        jt,
        jf,
        k,
    };
    // struct seccomp_data { int nr; __u32 arch; ... }
    let (nr_offset, arch_offset) = (0, 4);
    let mut filter = [
        stmt(BPF_LD | BPF_W | BPF_ABS, arch_offset),
        jeq(AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(BPF_LD | BPF_W | BPF_ABS, nr_offset),
        jeq(libc::SYS_clone as u32, 2, 0),
        jeq(libc::SYS_clone3 as u32, 1, 0),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(
            BPF_RET | BPF_K,
            libc::SECCOMP_RET_ERRNO | (libc::EAGAIN as u32 & libc::SECCOMP_RET_DATA),
        ),
    ];
    let prog = sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: plain system calls; `prog` points to a valid filter that outlives the call
    // (the kernel copies it). No-new-privs lets an unprivileged process install a filter.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // TSYNC: the filter applies to every thread of the process (sysmon and the Ms
        // start new Ms), not just the caller.
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const sock_fprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Marker the child prints once thread creation fails, before it needs a new thread.
const THREADS_FORBIDDEN: &str = "gort-test: thread creation now fails";
/// Marker of a child whose kernel does not let it install the filter.
const NO_SECCOMP: &str = "gort-test: cannot install a seccomp filter";

/// Bad input from the OS: thread creation failing (as with `ulimit -u`) ends the program
/// with Go's `runtime: failed to create new OS thread` message, `fatal error: newosproc`
/// and exit status 2, not with a panic inside std.
///
/// The child makes `clone`/`clone3` fail with `EAGAIN` (a seccomp filter; `RLIMIT_NPROC`
/// does not bind root), then puts 16 goroutines in 5-second blocking calls: sysmon hands
/// their Ps to other Ms until every existing M is stuck in a call and a new one is needed.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn thread_creation_failure_is_gos_fatal_error() {
    const NAME: &str = "thread_creation_failure_is_gos_fatal_error";
    if !is_child() {
        let t = Instant::now();
        let out = run_child_within(NAME, &[("GORT_MAXPROCS", "2")], Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let show = || {
            format!(
                "status {}\nstdout:\n{}\nstderr:\n{stderr}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            )
        };
        if stderr.contains(NO_SECCOMP) && out.status.success() {
            eprintln!("skipped: {}", show());
            return;
        }
        let at = stderr
            .find(THREADS_FORBIDDEN)
            .unwrap_or_else(|| panic!("the child did not get to forbid threads\n{}", show()));
        let after = &stderr[at..];
        assert!(
            !stderr.contains("panicked at"),
            "a panic instead of Go's fatal error\n{}",
            show()
        );
        let line = after
            .lines()
            .find(|l| l.starts_with("runtime: failed to create new OS thread (have "))
            .unwrap_or_else(|| panic!("no `failed to create new OS thread` line\n{}", show()));
        assert!(
            line.ends_with(&format!(" already; errno={})", libc::EAGAIN)),
            "errno is EAGAIN: {line}\n{}",
            show()
        );
        let have: i64 = line["runtime: failed to create new OS thread (have ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("thread count in {line:?}\n{}", show()));
        assert!(have >= 2, "at least 2 Ms ran before: {line}");
        // Go (Linux) adds a hint for EAGAIN between the two lines.
        let next = after
            .lines()
            .skip_while(|l| *l != line)
            .skip(1)
            .find(|l| *l != "runtime: may need to increase max user processes (ulimit -u)");
        assert_eq!(
            next,
            Some("fatal error: newosproc"),
            "Go's `fatal error` line follows\n{}",
            show()
        );
        assert_eq!(out.status.code(), Some(2), "exit status 2\n{}", show());
        eprintln!("child took {:?}: {line}", t.elapsed());
        return;
    }

    // Started before thread creation is forbidden: fails the child if nothing happens.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(20));
        eprintln!("{NAME}: still running after 20 s");
        std::process::exit(3);
    });
    gort::run(|| {
        // Warm up: let the runtime start its Ms while threads can still be created.
        let hs: Vec<_> = (0..4)
            .map(|_| gort::go(|| gort::blocking(|| std::thread::sleep(Duration::from_millis(30)))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        if let Err(e) = forbid_thread_creation() {
            eprintln!("{NO_SECCOMP}: {e}");
            std::process::exit(0);
        }
        // The mechanism really works: a plain thread cannot be started either.
        let e = std::thread::Builder::new()
            .spawn(|| {})
            .expect_err("thread creation still works");
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "{e}");
        eprintln!("{THREADS_FORBIDDEN}");
        let hs: Vec<_> = (0..16)
            .map(|_| gort::go(|| gort::blocking(|| std::thread::sleep(Duration::from_secs(5)))))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        eprintln!("{NAME}: the runtime never needed a new thread");
        std::process::exit(4);
    });
}
