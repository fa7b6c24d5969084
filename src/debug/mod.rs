//! Fatal errors, panics and goroutine dumps (Go: panic.go `throw`/`fatal`,
//! traceback.go, `runtime.Stack`).

use crate::config::{settings, Traceback};
use crate::sched::g::{status_string, Switch, G, G_DEAD, G_WAITING};
use crate::sched::m::getg;
use crate::sched::schedt::SCHED;
use std::any::Any;
use std::backtrace::Backtrace;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::Ordering;

pub(crate) mod schedtrace;

/// The fatal hook of `throw!` (registered by `sched::init`): after the throw's message,
/// the scheduler trace and the goroutines, then exit with status 2 (Go: `fatalthrow`).
pub(crate) fn on_throw() -> ! {
    fatal_exit("", true)
}

/// Prints `text` and, if `dump`, every goroutine; then exits with status 2 (or aborts
/// with `GORT_TRACEBACK=crash`).
fn fatal_exit(text: &str, dump: bool) -> ! {
    fatal_exit_walking(text, dump, false)
}

/// `fatal_exit`; with `walk`, the world is stopped (no goroutine can run: the deadlock
/// report), so the dump shows every parked goroutine's frames, as Go's does.
fn fatal_exit_walking(text: &str, dump: bool, walk: bool) -> ! {
    if let Some(trace) = schedtrace::on_fatal() {
        let _ = std::io::stderr().write_all(trace.as_bytes());
    }
    let mut out = String::from(text);
    if walk {
        // a walk that faults (a stack corrupted by unsafe code) must not take the
        // message with it: print as we go, as Go does
        let _ = std::io::stderr().write_all(out.as_bytes());
        out.clear();
    }
    if dump && settings().traceback != Traceback::None {
        out.push('\n');
        dump_goroutines(&mut out, None, walk);
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
    if settings().traceback == Traceback::Crash {
        std::process::abort();
    }
    std::process::exit(2)
}

/// Go: `fatal(msg)`: `fatal error: msg`, the goroutines, exit 2.
pub(crate) fn fatal(msg: &str) -> ! {
    fatal_exit(&format!("fatal error: {msg}\n"), true)
}

/// `fatal` from `checkdead`, which holds `sched.lock` with every M idle: no goroutine can
/// run or be resumed while the dump walks the parked goroutines' stacks.
pub(crate) fn fatal_deadlock(msg: &str) -> ! {
    fatal_exit_walking(&format!("fatal error: {msg}\n"), true, true)
}

/// Go: `fatal("thread exhaustion")` after `checkmcount`.
pub(crate) fn fatal_thread_exhaustion(max: i64) -> ! {
    fatal_exit(
        &format!("runtime: program exceeds {max}-thread limit\nfatal error: thread exhaustion\n"),
        true,
    )
}

/// Go: `newosproc` failure. `have` counts the Ms including the one being created, as
/// Go's `mcount()` does at that point; on `EAGAIN` Go's hint about `ulimit -u` follows.
pub(crate) fn fatal_os_thread(have: i64, e: &std::io::Error) -> ! {
    let errno = e.raw_os_error().unwrap_or(0);
    let hint = if errno == libc::EAGAIN {
        "runtime: may need to increase max user processes (ulimit -u)\n"
    } else {
        ""
    };
    fatal_exit(
        &format!(
            "runtime: failed to create new OS thread (have {have} already; errno={errno})\n{hint}fatal error: newosproc\n"
        ),
        true,
    )
}

/// The goroutine lines of the stack-overflow report, called by the fault handler
/// (`os::signal`) on its alternate stack: async-signal-safe writes only, no allocation.
pub(crate) fn report_overflow() {
    use crate::os::signal::{fmt_u64, write_raw};
    let mut buf = [0u8; 20];
    if let Some(g) = crate::sched::m::getm().and_then(|m| m.curg()) {
        write_raw(b"goroutine ");
        write_raw(fmt_u64(g.goid.load(Ordering::Relaxed), &mut buf));
        write_raw(b" [running]:\n\t(stack overflowed; raise it with Builder::stack_size or Config::stack_size)\n");
        let loc = g.gopc();
        write_raw(b"created by ");
        if let Some(f) = creator_name(g.creator()) {
            // a static string: no allocation, safe here
            write_raw(f.as_bytes());
            write_raw(b"\n\t");
        }
        write_raw(loc.file().as_bytes());
        write_raw(b":");
        write_raw(fmt_u64(loc.line() as u64, &mut buf));
        write_raw(b"\n");
    }
}

/// An unrecovered panic, carried from the goroutine's stack to g0 for printing.
pub(crate) struct FatalReport {
    msg: String,
    location: Option<String>,
    backtrace: Option<Backtrace>,
}

/// Text of a panic payload (`&str`, `String`, or a placeholder with the type).
pub(crate) fn payload_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Installs the panic hook: an unrecovered panic in a goroutine that does not isolate
/// panics prints Go's report and ends the process with status 2. Other panics (plain
/// threads, isolated goroutines) go to the previous hook.
pub(crate) fn install_panic_hook() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(g) = getg() {
            if !(settings().panic_isolation || g.isolates_panics()) {
                let report = FatalReport {
                    msg: payload_text(info.payload()),
                    location: info.location().map(|l| l.to_string()),
                    backtrace: (settings().traceback != Traceback::None)
                        .then(Backtrace::force_capture),
                };
                // Print on g0's larger stack; g0 exits the process.
                g.switch_to_g0(Switch::Fatal(Box::new(report)));
            }
        }
        prev(info)
    }));
}

/// A panic reached the goroutine's root without the hook ending the process (a user
/// hook replaced ours): report it as fatal from g0.
pub(crate) fn panic_escaped(payload: &(dyn Any + Send)) {
    if let Some(g) = getg() {
        let report = FatalReport {
            msg: payload_text(payload),
            location: None,
            backtrace: None,
        };
        g.switch_to_g0(Switch::Fatal(Box::new(report)));
    }
}

/// Prints an unrecovered panic of `gp` as Go does and exits with status 2. Runs on g0.
pub(crate) fn fatal_panic(gp: &'static G, r: &FatalReport) -> ! {
    if let Some(trace) = schedtrace::on_fatal() {
        let _ = std::io::stderr().write_all(trace.as_bytes());
    }
    let mut out = format!("panic: {}\n\n", r.msg);
    let _ = writeln!(
        out,
        "goroutine {} [running]:",
        gp.goid.load(Ordering::Relaxed)
    );
    if let Some(loc) = &r.location {
        let _ = writeln!(out, "panicked at {loc}");
    }
    if let Some(bt) = &r.backtrace {
        out.push_str(&go_frames(&bt.to_string(), show_runtime_frames()));
    }
    if !gp.is_main.get() {
        write_created(&mut out, gp.creator(), gp.gopc());
    }
    if matches!(
        settings().traceback,
        Traceback::All | Traceback::System | Traceback::Crash
    ) {
        out.push('\n');
        dump_goroutines(&mut out, Some(gp), false);
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
    if settings().traceback == Traceback::Crash {
        std::process::abort();
    }
    std::process::exit(2)
}

/// Appends a header (and creation site) for every live goroutine except `skip`, in the
/// order of their ids: those that have run, and those queued that have not
/// (spawn records). With `walk` (only while the world is stopped: see `fatal_deadlock`)
/// a parked goroutine's frames are shown too.
fn dump_goroutines(out: &mut String, skip: Option<&G>, walk: bool) {
    let gs: Vec<&'static G> = match SCHED.allgs.try_lock() {
        Ok(v) => v.clone(),
        Err(_) => {
            out.push_str("(goroutine list unavailable: allgs is locked)\n");
            return;
        }
    };
    enum Entry {
        Ran(&'static G),
        NotStarted(&'static crate::sched::spawn::Spawn),
    }
    let mut all: Vec<(u64, Entry)> = gs
        .into_iter()
        .filter(|&g| !skip.is_some_and(|s| std::ptr::eq(s, g)) && g.status() != G_DEAD)
        .map(|g| (g.goid.load(Ordering::Relaxed), Entry::Ran(g)))
        .collect();
    match crate::sched::spawn::unstarted() {
        Some(v) => all.extend(v.into_iter().map(|s| (s.goid(), Entry::NotStarted(s)))),
        None => out.push_str("(goroutines not started yet are not listed: their list is locked)\n"),
    }
    all.sort_by_key(|e| e.0);
    for (goid, e) in all {
        match e {
            Entry::Ran(g) => {
                write_header(out, g);
                match walk.then(|| parked_frames(g)) {
                    Some(Ok(frames)) => out.push_str(&frames),
                    Some(Err(why)) => {
                        let _ = writeln!(out, "\t(stack not walked: {why})");
                    }
                    None => out.push_str("\t(stack not walked: goroutine is not running)\n"),
                }
                write_created_by(out, g);
            }
            Entry::NotStarted(s) => {
                let _ = write!(out, "goroutine {goid} [runnable");
                if let Some(n) = s.name() {
                    let _ = write!(out, ", {n:?}");
                }
                out.push_str("]:\n\t(not started yet)\n");
                if let Some(loc) = s.gopc() {
                    write_created(out, s.creator(), loc);
                }
            }
        }
        out.push('\n');
        if walk {
            let _ = std::io::stderr().write_all(out.as_bytes());
            out.clear();
        }
    }
}

/// The frames of parked goroutine `g`, in Go's format, or why its stack was not walked.
/// The world must be stopped (nothing may resume `g` meanwhile).
fn parked_frames(g: &G) -> Result<String, &'static str> {
    if g.status() != G_WAITING {
        return Err("goroutine is not running");
    }
    let mut bt = None;
    let mut capture = || bt = Some(Backtrace::force_capture());
    // SAFETY: `g` is parked (`_Gwaiting`: suspended in a switch), its stack stays mapped
    // for ever, and the caller guarantees that nothing resumes it while we borrow it
    // (the world is stopped).
    unsafe {
        crate::sched::context::call_on_suspended(
            g.saved_sp(),
            g.stack_lo.load(Ordering::Relaxed) as usize,
            &mut capture,
        )?
    };
    // symbolise here, on this thread's stack
    let frames = parse_frames(&bt.ok_or("no backtrace")?.to_string());
    if !frames.iter().any(|(s, _)| is_walk_entry(s)) {
        // no symbols (a stripped binary): nothing useful to show
        return Err("no symbols");
    }
    let text = format_frames(&frames, show_runtime_frames());
    if text.is_empty() {
        return Err("no frames outside the runtime");
    }
    Ok(text)
}

/// Whether tracebacks show the runtime's and the standard library's frames
/// (`GORT_TRACEBACK=system` or `crash`, as Go's level 2).
fn show_runtime_frames() -> bool {
    matches!(settings().traceback, Traceback::System | Traceback::Crash)
}

/// Whether a frame belongs to the runtime, the standard library or the panic machinery
/// (hidden at traceback level 1, as Go hides `runtime.*`).
fn is_runtime_frame(sym: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "std::",
        "core::",
        "alloc::",
        "gort::",
        "__rust",
        "<alloc::",
        "<core::",
        "<std::",
        "rust_begin_unwind",
    ];
    PREFIXES.iter().any(|p| sym.starts_with(p)) || sym.starts_with("<gort::")
}

/// Reformats `std::backtrace::Backtrace`'s text as Go prints frames:
/// `function(...)` then a tab and `file:line`. Frames before the panic machinery's
/// last frame (the hook and the unwinder) are dropped, and runtime frames are hidden
/// unless `show_runtime`.
pub(crate) fn go_frames(bt: &str, show_runtime: bool) -> String {
    format_frames(&parse_frames(bt), show_runtime)
}

/// A backtrace's frames as (symbol, location) pairs.
type Frames = Vec<(String, Option<String>)>;

/// The (symbol, location) pairs of `std::backtrace::Backtrace`'s text, from its lines
/// "  N: symbol" and "      at file:line:col".
fn parse_frames(bt: &str) -> Frames {
    let mut frames: Frames = Vec::new();
    for line in bt.lines() {
        let t = line.trim_start();
        if let Some(loc) = t.strip_prefix("at ") {
            if let Some(f) = frames.last_mut() {
                f.1.get_or_insert_with(|| loc.to_string());
            }
        } else if let Some((num, sym)) = t.split_once(": ") {
            if num.chars().all(|c| c.is_ascii_digit()) {
                frames.push((sym.to_string(), None));
            }
        }
    }
    frames
}

/// `go_frames` for parsed frames.
fn format_frames(frames: &Frames, show_runtime: bool) -> String {
    // A parked goroutine's frames start above the walker (`parked_frames`; the frames
    // below it, its own, may contain panic machinery, e.g. a panic hook that blocks);
    // other backtraces start after the last frame of the panic/backtrace machinery.
    let start = match frames.iter().rposition(|(s, _)| is_walk_entry(s)) {
        Some(i) => i + 1,
        None => frames
            .iter()
            .rposition(|(s, _)| {
                s.contains("panicking::panic_fmt")
                    || s.contains("rust_begin_unwind")
                    || s.starts_with("std::backtrace::Backtrace")
            })
            .map_or(0, |i| i + 1),
    };
    let mut out = String::new();
    for (sym, loc) in &frames[start..] {
        // a goroutine's stack ends at its entry (Go's traceback likewise ends at goexit)
        if sym.contains("sched::g::gentry") {
            break;
        }
        if !show_runtime && is_runtime_frame(sym) {
            continue;
        }
        let _ = writeln!(out, "{sym}(...)");
        if let Some(loc) = loc {
            let _ = writeln!(out, "\t{loc}");
        }
    }
    out
}

/// Whether a backtrace frame is the stack walker's entry (not its closure).
fn is_walk_entry(sym: &str) -> bool {
    sym.ends_with("sched::context::walk_entry")
}

fn write_header(out: &mut String, g: &G) {
    let st = g.status();
    let what = if st == G_WAITING {
        g.waitreason().as_str()
    } else {
        status_string(st)
    };
    let _ = write!(
        out,
        "goroutine {} [{}",
        g.goid.load(Ordering::Relaxed),
        what
    );
    if let Some(n) = g.name() {
        let _ = write!(out, ", {n:?}");
    }
    if !g.lockedm.load(Ordering::Relaxed).is_null() {
        out.push_str(", locked to thread");
    }
    out.push_str("]:\n");
}

fn write_created_by(out: &mut String, g: &G) {
    if g.goid.load(Ordering::Relaxed) != 1 {
        write_created(out, g.creator(), g.gopc());
    }
}

/// The function that spawned a goroutine, when known: a goroutine running a closure has
/// it in the closure's type name (`mycrate::serve::{{closure}}`: spawned in
/// `mycrate::serve`); a named function tells nothing about its spawner.
pub(crate) fn creator_name(creator: crate::sched::proc::Creator) -> Option<&'static str> {
    creator().strip_suffix("::{{closure}}")
}

/// Go's `created by` lines: the spawning function and, indented, the site (or the site
/// alone when the function is not known).
fn write_created(
    out: &mut String,
    creator: crate::sched::proc::Creator,
    loc: &std::panic::Location<'_>,
) {
    match creator_name(creator) {
        Some(f) => {
            let _ = writeln!(out, "created by {f}\n\t{loc}");
        }
        None => {
            let _ = writeln!(out, "created by {loc}");
        }
    }
}

/// A goroutine dump, as Go's `runtime.Stack`: the calling goroutine's header and stack,
/// then with `all` a header and creation site for every other live goroutine.
///
/// ```
/// gort::run(|| {
///     let dump = gort::stack(false);
///     assert!(dump.starts_with(&format!("goroutine {} [running", gort::goid())));
/// });
/// ```
pub fn stack(all: bool) -> String {
    let mut out = String::new();
    let me = getg();
    if let Some(g) = me {
        write_header(&mut out, g);
        let bt = Backtrace::force_capture();
        // Resolve symbols on g0's stack: symbolisation is deep and goroutine stacks are
        // small.
        let mut text = String::new();
        crate::sched::park::systemstack(&mut || {
            text = go_frames(&bt.to_string(), show_runtime_frames())
        });
        out.push_str(&text);
        write_created_by(&mut out, g);
    }
    if all {
        if me.is_some() {
            out.push('\n');
        }
        dump_goroutines(&mut out, me, false);
        while out.ends_with("\n\n") {
            out.pop();
        }
    }
    out
}

/// Kernel thread id of the M the caller runs on, as the runtime's own thread-local
/// accessor sees it (0 outside the runtime). For tests of the thread-local policy:
/// after any switch it must equal the thread's real id.
#[doc(hidden)]
pub fn m_tid() -> i64 {
    crate::sched::m::getm().map_or(0, |m| m.tid.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::go_frames;

    const BT: &str = "   0: std::backtrace::Backtrace::force_capture
             at /rustc/library/std/src/backtrace.rs:1:1
   1: core::panicking::panic_fmt
             at /rustc/library/core/src/panicking.rs:80:14
   2: app::handler
             at ./src/main.rs:18:5
   3: gort::api::run_body
             at ./src/api.rs:40:13
   4: app::main::{{closure}}
             at ./src/main.rs:9:9
";

    #[test]
    fn frames_in_go_format_runtime_hidden() {
        let s = go_frames(BT, false);
        assert_eq!(
            s,
            "app::handler(...)\n\t./src/main.rs:18:5\napp::main::{{closure}}(...)\n\t./src/main.rs:9:9\n"
        );
        let all = go_frames(BT, true);
        assert!(all.contains("gort::api::run_body(...)\n\t./src/api.rs:40:13\n"));
        assert!(
            !all.contains("panic_fmt"),
            "machinery before the panic is dropped"
        );
    }
}
