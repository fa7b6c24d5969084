//! Deadlock detection, as Go's crash tests check it (TestSimpleDeadlock,
//! TestGoexitDeadlock's message, and a sleeping program that is NOT a deadlock). The
//! report shows where each goroutine is blocked, as Go's does: lines marked `// at: X`
//! below must appear in it as `deadlock.rs:LINE:` (x86-64, where gort walks parked
//! stacks).
//!
//! This is a `harness = false` test: each scenario runs as this same binary in a child
//! process with `GORT_SCENARIO` set, because the detector stays silent while threads it
//! does not know (like libtest's) exist. Output ends with a libtest-style summary.

use std::process::Command;
use std::time::Duration;

fn scenario(name: &str) {
    match name {
        // Go: TestSimpleDeadlock: main blocks on a channel nobody will send to.
        "simple" => gort::run(|| {
            let (_tx, rx) = gort::chan::bounded::<u8>(0);
            let _ = rx.recv(); // at: simple
        }),
        // Go: TestLockedDeadlock-like: main waits on a goroutine that waits forever.
        "two_goroutines" => gort::run(|| {
            let (tx, rx) = gort::chan::bounded::<u8>(0);
            let h = gort::go(move || {
                let _ = rx.recv(); // at: child recv
                drop(tx);
            });
            let _ = h.join(); // at: main join
        }),
        // Not a deadlock: everything sleeps, then finishes.
        "sleeping" => gort::run(|| {
            let h = gort::go(|| gort::time::sleep(Duration::from_millis(30)));
            gort::time::sleep(Duration::from_millis(20));
            h.join().unwrap();
            println!("OK");
        }),
        // Not a deadlock: a goroutine waits for a timer channel.
        "timer_channel" => gort::run(|| {
            let rx = gort::chan::after(Duration::from_millis(20));
            rx.recv().unwrap();
            println!("OK");
        }),
        // GOMAXPROCS 1: main sleeps; its run M leaves the scheduler, and another M must
        // wait for the timer (a hang here means no M serviced it).
        "sleep_one_proc" => {
            gort::Config::new().maxprocs(1).init().unwrap();
            gort::run(|| {
                gort::time::sleep(Duration::from_millis(10));
                let h = gort::go(|| gort::time::sleep(Duration::from_millis(5)));
                h.join().unwrap();
                println!("OK");
            })
        }
        // Go: `select {}` blocks forever: with nothing else alive, that is a deadlock.
        "empty_select" => gort::run(|| {
            gort::select! {} // at: empty select
        }),
        // A goroutine that exits while locked ends its thread; the detector must not take
        // the exiting thread for a foreign one (it once stayed silent and the program hung).
        "locked_exit" => gort::run(|| {
            let (_tx, rx) = gort::chan::bounded::<u8>(0);
            gort::go(|| {
                gort::lock_os_thread();
                gort::time::sleep(Duration::from_millis(5));
            });
            let _ = rx.recv();
        }),
        // Goroutines blocked in a goroutine-aware lock, a WaitGroup and a select with
        // cases: the report shows each one's blocking line.
        "sync" => gort::run(|| {
            let m = std::sync::Arc::new(gort::sync::Mutex::new(0u32));
            let wg = std::sync::Arc::new(gort::sync::WaitGroup::new());
            wg.add(1);
            let _held = m.lock();
            let m2 = m.clone();
            gort::go(move || {
                let _g = m2.lock(); // at: mutex lock
            });
            let wg2 = wg.clone();
            gort::go(move || wg2.wait()); // at: waitgroup wait
            let (_tx, rx) = gort::chan::bounded::<u8>(0);
            let (tx2, _rx2) = gort::chan::bounded::<u8>(0);
            gort::select! { // at: select
                recv(rx) -> _ => {},
                send(tx2, 1) -> _ => {},
            }
        }),
        other => panic!("unknown scenario {other}"),
    }
}

struct Case {
    name: &'static str,
    want_code: i32,
    want_stderr_start: &'static str,
    want_stdout: &'static str,
    /// Markers (`// at: X` comments) of the lines the report must show.
    want_at: &'static [&'static str],
}

/// `deadlock.rs:LINE:` for the line of this file carrying `// at: marker`.
fn location_of(marker: &str) -> String {
    let tag = format!("// at: {marker}");
    let line = include_str!("deadlock.rs")
        .lines()
        .position(|l| l.trim_end().ends_with(&tag))
        .unwrap_or_else(|| panic!("no line marked {tag:?}"));
    format!("deadlock.rs:{}:", line + 1)
}

const CASES: &[Case] = &[
    Case {
        name: "simple",
        want_code: 2,
        want_stderr_start: "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine ",
        want_stdout: "",
        want_at: &["simple"],
    },
    Case {
        name: "two_goroutines",
        want_code: 2,
        want_stderr_start: "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine ",
        want_stdout: "",
        want_at: &["main join", "child recv"],
    },
    Case {
        name: "empty_select",
        want_code: 2,
        want_stderr_start: "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine ",
        want_stdout: "",
        want_at: &["empty select"],
    },
    Case {
        name: "locked_exit",
        want_code: 2,
        want_stderr_start: "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine ",
        want_stdout: "",
        want_at: &[],
    },
    Case {
        name: "sync",
        want_code: 2,
        want_stderr_start: "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine ",
        want_stdout: "",
        want_at: &["mutex lock", "waitgroup wait", "select"],
    },
    Case {
        name: "sleeping",
        want_code: 0,
        want_stderr_start: "",
        want_stdout: "OK\n",
        want_at: &[],
    },
    Case {
        name: "sleep_one_proc",
        want_code: 0,
        want_stderr_start: "",
        want_stdout: "OK\n",
        want_at: &[],
    },
    Case {
        name: "timer_channel",
        want_code: 0,
        want_stderr_start: "",
        want_stdout: "OK\n",
        want_at: &[],
    },
];

fn main() {
    if let Ok(name) = std::env::var("GORT_SCENARIO") {
        scenario(&name);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for c in CASES {
        if !filter.is_empty() && !filter.iter().any(|f| c.name.contains(f.as_str())) {
            continue;
        }
        let mut child = Command::new(&exe)
            .env("GORT_SCENARIO", c.name)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run scenario");
        // a hang is a failure of its own, not a stuck test run
        let t = std::time::Instant::now();
        while child.try_wait().expect("wait").is_none() && t.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("scenario output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let missing: Vec<String> = if cfg!(target_arch = "x86_64") {
            c.want_at
                .iter()
                .map(|m| location_of(m))
                .filter(|loc| !stderr.contains(loc.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        let ok = out.status.code() == Some(c.want_code)
            && stderr.starts_with(c.want_stderr_start)
            && stdout == c.want_stdout
            && missing.is_empty();
        if ok {
            passed += 1;
            println!("test deadlock::{} ... ok", c.name);
        } else {
            failed += 1;
            println!(
                "test deadlock::{} ... FAILED\n  status {:?} (want {}), stdout {:?}, \
                 locations missing {:?}, stderr:\n{}",
                c.name,
                out.status.code(),
                c.want_code,
                stdout,
                missing,
                stderr
            );
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    if failed > 0 {
        std::process::exit(101);
    }
}
