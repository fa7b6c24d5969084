//! Helpers shared by the behaviour tests.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Configures the runtime for this test binary (first caller wins; later calls see
/// `AlreadyStarted`, which is fine: every test in a binary uses the same settings).
pub fn init(maxprocs: usize) {
    let _ = gort::Config::new().maxprocs(maxprocs).init();
}

/// Re-runs the current test binary for test `name` with `GORT_TEST_CHILD=1` and the
/// given environment, returning its output. The test checks `is_child()` and behaves as
/// the child there. The child is killed (and this panics) after 120 s.
pub fn run_child(name: &str, env: &[(&str, &str)]) -> Output {
    run_child_within(name, env, Duration::from_secs(120))
}

/// `run_child`, killing the child if it has not finished within `limit`.
pub fn run_child_within(name: &str, env: &[(&str, &str)], limit: Duration) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ])
    .env("GORT_TEST_CHILD", "1")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn child test process");
    let t = Instant::now();
    while child.try_wait().expect("wait for child").is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("child output");
            panic!(
                "child {name} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("child output")
}

/// Asserts a child run by `run_child*` succeeded, showing its output otherwise.
pub fn assert_child_ok(name: &str, out: &Output) {
    assert!(
        out.status.success(),
        "child {name} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// For a test that runs as a child process (`run_child`) with `env`: in the parent, runs
/// the child, asserts that it succeeded, passes on what it printed to stderr, and returns
/// false; in the child returns true (the test then does its work).
pub fn in_child(name: &str, env: &[(&str, &str)]) -> bool {
    if is_child() {
        return true;
    }
    let out = run_child(name, env);
    assert_child_ok(name, &out);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    false
}

/// Whether this process is a child started by `run_child`.
pub fn is_child() -> bool {
    std::env::var_os("GORT_TEST_CHILD").is_some()
}

/// Scale for stress tests: `GORT_STRESS=N` multiplies the default work.
pub fn stress_factor() -> u64 {
    std::env::var("GORT_STRESS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}
