//! Helpers shared by the behaviour tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Configures the runtime for this test binary (first caller wins; later calls see
/// `AlreadyStarted`, which is fine: every test in a binary uses the same settings).
pub fn init(maxprocs: usize) {
    let _ = gort::Config::new().maxprocs(maxprocs).init();
}

/// Re-runs the current test binary for test `name` with `GORT_TEST_CHILD=1` and the
/// given environment, returning its output. The test checks `is_child()` and behaves as
/// the child there.
pub fn run_child(name: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("GORT_TEST_CHILD", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn child test process")
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
