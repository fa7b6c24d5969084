//! `GORT_DEBUG=schedtrace=MS[,scheddetail=1]`: Go's scheduler trace on stderr (child
//! processes, since the settings are read at start-up).

mod common;

use common::{is_child, run_child};
use std::time::Duration;

/// Checks one summary line against Go's format:
/// `SCHED <ms>ms: gomaxprocs=2 idleprocs=N threads=N spinningthreads=N idlethreads=N
/// runqueue=N [N N]` (detailed: `nmidlelocked=N sysmonwait=N` for the list), then gort's
/// `unstarted=N` / `reliefprocs=N` if any; returns its milliseconds.
fn parse_summary(line: &str, detailed: bool) -> u64 {
    let rest = line
        .strip_prefix("SCHED ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let (ms, rest) = rest
        .split_once("ms: ")
        .unwrap_or_else(|| panic!("{line:?}"));
    let ms: u64 = ms.parse().unwrap_or_else(|_| panic!("ms in {line:?}"));
    let mut words = rest.split(' ');
    for key in [
        "gomaxprocs",
        "idleprocs",
        "threads",
        "spinningthreads",
        "idlethreads",
        "runqueue",
    ] {
        let w = words
            .next()
            .unwrap_or_else(|| panic!("{key} missing in {line:?}"));
        let (k, v) = w
            .split_once('=')
            .unwrap_or_else(|| panic!("{w:?} in {line:?}"));
        assert_eq!(k, key, "{line:?}");
        let v: u64 = v.parse().unwrap_or_else(|_| panic!("{w:?} in {line:?}"));
        if key == "gomaxprocs" {
            assert_eq!(v, 2, "{line:?}");
        }
    }
    // gort's own fields come last, after Go's
    let rest: Vec<&str> = words
        .filter(|w| !w.starts_with("unstarted=") && !w.starts_with("reliefprocs="))
        .collect();
    if detailed {
        assert!(
            rest.len() == 2
                && rest[0].starts_with("nmidlelocked=")
                && rest[1].starts_with("sysmonwait="),
            "{line:?}"
        );
    } else {
        let list = rest.join(" ");
        let inner = list
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .unwrap_or_else(|| panic!("per-P list in {line:?}"));
        let lens: Vec<u64> = inner.split(' ').map(|n| n.parse().unwrap()).collect();
        assert_eq!(lens.len(), 2, "one queue length per P: {line:?}");
    }
    ms
}

/// The program the children run: goroutines that sleep, wait on a channel and compute,
/// for about 150 ms.
fn workload() {
    gort::run(|| {
        let (tx, rx) = gort::chan::bounded::<u32>(0);
        let waiter = gort::go(move || rx.recv().ok());
        let sleepers: Vec<_> = (0..4)
            .map(|_| gort::go(|| gort::time::sleep(Duration::from_millis(150))))
            .collect();
        gort::time::sleep(Duration::from_millis(150));
        drop(tx);
        waiter.join().unwrap();
        for s in sleepers {
            s.join().unwrap();
        }
    });
}

/// Runs test `name` as a child doing `workload` with `GORT_DEBUG=debug` at GOMAXPROCS
/// 2, checks that it succeeded, and returns what it printed to stderr.
fn traced_workload(name: &str, debug: &str) -> String {
    let out = run_child(name, &[("GORT_DEBUG", debug), ("GORT_MAXPROCS", "2")]);
    common::assert_child_ok(name, &out);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every 20 ms, one summary line in Go's format, with times that grow.
#[test]
fn schedtrace_prints_go_summary_lines() {
    if is_child() {
        return workload();
    }
    let err = traced_workload("schedtrace_prints_go_summary_lines", "schedtrace=20");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(
        lines.len() >= 4,
        "expected a line every 20 ms over 150 ms:\n{err}"
    );
    let ms: Vec<u64> = lines.iter().map(|l| parse_summary(l, false)).collect();
    assert_eq!(ms[0], 0, "the first trace is at 0ms:\n{err}");
    assert!(ms.windows(2).all(|w| w[0] < w[1]), "times grow: {ms:?}");
}

/// `scheddetail=1`: after each summary, a line per P, per M and per goroutine; the
/// goroutine waiting on the channel shows its wait reason.
#[test]
fn scheddetail_lists_ps_ms_and_goroutines() {
    if is_child() {
        return workload();
    }
    let err = traced_workload(
        "scheddetail_lists_ps_ms_and_goroutines",
        "schedtrace=40,scheddetail=1",
    );
    let summaries: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(summaries.len() >= 2, "{err}");
    for s in &summaries {
        parse_summary(s, true);
    }
    for p in ["  P0: status=", "  P1: status="] {
        assert!(err.contains(p), "no {p:?} line:\n{err}");
    }
    assert!(
        err.lines()
            .any(|l| l.starts_with("  M") && l.contains(": p=") && l.contains(" lockedg=")),
        "no M line:\n{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("  G") && l.contains(": status=4(chan receive) m=-1")),
        "the waiting goroutine's line:\n{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("  G") && l.contains(": status=4(sleep)")),
        "the sleepers' lines:\n{err}"
    );
}

/// With `scheddetail=1`, a goroutine's fatal panic starts with the detailed trace (Go's
/// `startpanic_m`), then Go's panic report, and exit status 2.
#[test]
fn fatal_panic_starts_with_a_detailed_trace() {
    if is_child() {
        gort::run(|| {
            let _ = gort::go(|| panic!("boom")).join();
        });
        return;
    }
    let out = run_child(
        "fatal_panic_starts_with_a_detailed_trace",
        &[("GORT_DEBUG", "scheddetail=1"), ("GORT_MAXPROCS", "2")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let report = err.find("panic: boom").unwrap_or_else(|| panic!("{err}"));
    let trace = err
        .find("SCHED ")
        .unwrap_or_else(|| panic!("no trace:\n{err}"));
    assert!(trace < report, "the trace comes first:\n{err}");
    assert!(err[trace..report].contains("  P0: status="), "{err}");
}
