//! Go's fatal behaviours, each checked in a child process: the message, the goroutine
//! report and exit status 2.

mod common;

use common::{init, is_child, run_child};

fn child_stderr(name: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = run_child(name, env);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[inline(never)]
fn deep_in_user_code() -> u32 {
    panic!("boom")
}

/// Go: an unrecovered panic prints `panic: <msg>`, a blank line and the goroutine's
/// stack, and exits with status 2. The backtrace walks through the goroutine's own
/// stack (the unwinder stops at the goroutine's bottom frame), so user frames appear in it.
#[test]
fn unrecovered_panic_is_fatal() {
    if !is_child() {
        let (code, err) = child_stderr("unrecovered_panic_is_fatal", &[]);
        assert_eq!(code, Some(2), "stderr:\n{err}");
        assert!(
            err.starts_with("panic: boom\n\ngoroutine "),
            "stderr:\n{err}"
        );
        assert!(err.contains("[running]:"), "stderr:\n{err}");
        assert!(
            err.contains("deep_in_user_code"),
            "backtrace through the goroutine stack:\n{err}"
        );
        assert!(err.contains("created by "), "stderr:\n{err}");
        return;
    }
    init(2);
    gort::run(|| {
        let _ = gort::go(deep_in_user_code).join();
    });
}

/// GORT_TRACEBACK=none prints only the message.
#[test]
fn traceback_none_prints_only_the_message() {
    if !is_child() {
        let (code, err) = child_stderr(
            "traceback_none_prints_only_the_message",
            &[("GORT_TRACEBACK", "none")],
        );
        assert_eq!(code, Some(2), "stderr:\n{err}");
        assert!(err.starts_with("panic: boom\n"), "stderr:\n{err}");
        assert!(!err.contains("deep_in_user_code"), "stderr:\n{err}");
        return;
    }
    gort::run(|| {
        let _ = gort::go(deep_in_user_code).join();
    });
}

/// Go: TestThreadExhaustion. Needing more Ms than `max_threads` is
/// `fatal error: thread exhaustion`, status 2.
#[test]
fn test_thread_exhaustion() {
    if !is_child() {
        let (code, err) = child_stderr("test_thread_exhaustion", &[]);
        assert_eq!(code, Some(2), "stderr:\n{err}");
        assert!(
            err.contains("runtime: program exceeds 2-thread limit\nfatal error: thread exhaustion"),
            "stderr:\n{err}"
        );
        return;
    }
    gort::Config::new()
        .maxprocs(4)
        .max_threads(2)
        .init()
        .unwrap();
    gort::run(|| {
        // four busy goroutines want four Ms
        let hs: Vec<_> = (0..4)
            .map(|_| {
                gort::go(|| {
                    let t = std::time::Instant::now();
                    while t.elapsed() < std::time::Duration::from_secs(2) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    unreachable!("needing a third thread must be fatal");
}

/// A GORT_* value that does not parse: a Go-style note on stderr, and the default.
#[test]
fn bad_env_values_fall_back_with_a_note() {
    if !is_child() {
        let out = run_child(
            "bad_env_values_fall_back_with_a_note",
            &[
                ("GORT_MAXPROCS", "lots"),
                ("GORT_TRACEBACK", "loud"),
                ("GORT_DEBUG", "migrate=maybe"),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "stderr:\n{err}");
        assert!(
            err.contains("GORT_MAXPROCS=\"lots\" is not a positive integer"),
            "stderr:\n{err}"
        );
        assert!(err.contains("GORT_TRACEBACK=\"loud\""), "stderr:\n{err}");
        assert!(err.contains("GORT_DEBUG"), "stderr:\n{err}");
        return;
    }
    let procs = gort::run(|| gort::stats().procs);
    assert_eq!(procs, gort::num_cpu().min(gort::MAX_PROCS));
}

/// `gort::stack` walks the calling goroutine's stack (CFI through the switch).
#[test]
fn stack_dump_shows_the_callers_frames() {
    init(2);
    #[inline(never)]
    fn marker_function_for_dump() -> String {
        // not a tail call, so this frame exists in release builds too
        let s = gort::stack(false);
        std::hint::black_box(&s);
        s
    }
    let dump = gort::run(|| gort::go(marker_function_for_dump).join().unwrap());
    assert!(dump.starts_with("goroutine "), "{dump}");
    assert!(dump.contains("marker_function_for_dump"), "{dump}");
}
