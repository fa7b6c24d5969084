//! Runtime configuration: [`Config`] and the `GORT_*` environment variables
//! (Go: runtime1.go `parsedebugvars`, `GOMAXPROCS`, `GOTRACEBACK`).

use crate::stack;
use std::fmt;
use std::sync::OnceLock;

/// Upper bound on GOMAXPROCS (Go 1.19's `_MaxGomaxprocs` = 1024).
pub const MAX_PROCS: usize = 1024;

/// How much a fatal error or unrecovered panic prints (`GORT_TRACEBACK`, Go's
/// `GOTRACEBACK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Traceback {
    /// `none` / `0`: only the message.
    None,
    /// `single` / `1` (default): the failing goroutine's stack.
    #[default]
    Single,
    /// `all` / `2`: every goroutine.
    All,
    /// `system`: every goroutine, runtime frames included.
    System,
    /// `crash`: like `system`, then abort (SIGABRT, core dump).
    Crash,
}

impl Traceback {
    fn parse(s: &str) -> Option<Traceback> {
        Some(match s {
            "none" | "0" => Traceback::None,
            "single" | "1" | "" => Traceback::Single,
            "all" | "2" => Traceback::All,
            "system" => Traceback::System,
            "crash" => Traceback::Crash,
            _ => return None,
        })
    }
}

/// `GORT_DEBUG` settings (Go's `GODEBUG`).
#[derive(Clone, Debug)]
pub(crate) struct DebugVars {
    /// `migrate=1`: every resumed goroutine is moved to a different M (to shake out
    /// thread-affinity bugs).
    pub(crate) migrate: bool,
    /// `mreclaim=MS`: an idle M (thread) that has slept this long exits, as long as
    /// more than [`KEEP_IDLE_MS`](crate::sched::idle::KEEP_IDLE_MS) idle ones remain;
    /// 0 keeps every thread (Go's behaviour). Default 10000 (10 s).
    pub(crate) mreclaim_ms: u64,
    /// `hogreport=1`: sysmon prints each goroutine that kept its processor 10 ms past a
    /// preempt request without reaching a check (it is then handed off, see
    /// `docs/design/sysmon.md`), with its creation site, and again when it gives way.
    pub(crate) hogreport: bool,
    /// `schedtrace=MS`: sysmon prints a one-line summary of the scheduler to stderr every
    /// MS milliseconds (Go's format, `SCHED 0ms: gomaxprocs=...`); 0 (default) is off.
    pub(crate) schedtrace_ms: u64,
    /// `scheddetail=1`: schedtrace prints every P, M and goroutine as well.
    pub(crate) scheddetail: bool,
}

impl Default for DebugVars {
    fn default() -> Self {
        DebugVars {
            migrate: false,
            mreclaim_ms: 10_000,
            hogreport: false,
            schedtrace_ms: 0,
            scheddetail: false,
        }
    }
}

impl DebugVars {
    /// Parses a comma list of `key=value`. Unknown keys are ignored, as Go does with
    /// GODEBUG; a bad value for a known key is an error.
    fn parse(s: &str) -> Result<DebugVars, String> {
        let mut d = DebugVars::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            match k {
                "migrate" | "hogreport" | "scheddetail" => {
                    let on = match v {
                        "0" => false,
                        "1" => true,
                        _ => return Err(format!("value {v:?} for {k:?} is not 0 or 1")),
                    };
                    match k {
                        "migrate" => d.migrate = on,
                        "hogreport" => d.hogreport = on,
                        _ => d.scheddetail = on,
                    }
                }
                "mreclaim" | "schedtrace" => {
                    let ms = v.parse().map_err(|_| {
                        format!("value {v:?} for {k:?} is not a number of milliseconds")
                    })?;
                    if k == "mreclaim" {
                        d.mreclaim_ms = ms;
                    } else {
                        d.schedtrace_ms = ms;
                    }
                }
                _ => {}
            }
        }
        Ok(d)
    }
}

/// The settings the runtime runs with, fixed at start-up.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) maxprocs: usize,
    pub(crate) max_threads: usize,
    pub(crate) stack_size: usize,
    pub(crate) traceback: Traceback,
    pub(crate) debug: DebugVars,
    pub(crate) panic_isolation: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The runtime's settings (from [`Config::init`], else the environment and defaults).
pub(crate) fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| match Config::new().resolve() {
        Ok(s) => s,
        Err(e) => crate::throw!("settings: the defaults are invalid: {e}"),
    })
}

/// Whether the settings are fixed already (the runtime started or `init` ran).
pub(crate) fn is_fixed() -> bool {
    SETTINGS.get().is_some()
}

/// Default maximum number of threads (Go: `sched.maxmcount`).
pub const DEFAULT_MAX_THREADS: usize = 10_000;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The runtime already started (or `init` already ran): settings are fixed.
    AlreadyStarted,
    /// `maxprocs` was 0 or above [`MAX_PROCS`].
    Maxprocs(usize),
    /// `max_threads` was too small to run `maxprocs` Ps plus the runtime's own threads.
    MaxThreads(usize),
    /// The stack size is out of range.
    StackSize(String),
    /// A `debug` setting did not parse.
    Debug(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::AlreadyStarted => {
                write!(
                    f,
                    "gort: the runtime is already started; configure it before first use"
                )
            }
            ConfigError::Maxprocs(n) => {
                write!(f, "gort: maxprocs {n} is out of range (1..={MAX_PROCS})")
            }
            ConfigError::MaxThreads(n) => write!(f, "gort: max_threads {n} is too small"),
            ConfigError::StackSize(s) => write!(f, "gort: {s}"),
            ConfigError::Debug(s) => write!(f, "gort: debug setting: {s}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Configures the runtime before its first use.
///
/// Values not set here come from the environment (`GORT_MAXPROCS`, `GORT_TRACEBACK`,
/// `GORT_DEBUG`), then from defaults. A bad environment value prints a Go-style note on
/// stderr and the default is used; a bad explicit value is a [`ConfigError`].
///
/// ```
/// gort::Config::new().maxprocs(2).init().expect("first configuration");
/// let v = gort::run(|| gort::go(|| 6 * 7).join().unwrap());
/// assert_eq!(v, 42);
/// // Too late now: the runtime is running.
/// assert!(gort::Config::new().maxprocs(4).init().is_err());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Config {
    maxprocs: Option<usize>,
    max_threads: Option<usize>,
    stack_size: Option<usize>,
    traceback: Option<Traceback>,
    debug: Option<String>,
    panic_isolation: Option<bool>,
}

impl Config {
    /// A configuration with nothing set.
    pub fn new() -> Config {
        Config::default()
    }

    /// Number of Ps, i.e. goroutines running at once (Go's `GOMAXPROCS`). Default: the
    /// usable CPUs (`std::thread::available_parallelism`, which honours cgroup quotas).
    pub fn maxprocs(mut self, n: usize) -> Config {
        self.maxprocs = Some(n);
        self
    }

    /// Most OS threads the runtime may create (Go's `debug.SetMaxThreads`, default
    /// 10000). Exceeding it is fatal: `fatal error: thread exhaustion`.
    pub fn max_threads(mut self, n: usize) -> Config {
        self.max_threads = Some(n);
        self
    }

    /// Default usable stack size of goroutines, in bytes (rounded up to pages; between
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE) and
    /// [`MAX_STACK_SIZE`](crate::MAX_STACK_SIZE); default
    /// [`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE)).
    pub fn stack_size(mut self, bytes: usize) -> Config {
        self.stack_size = Some(bytes);
        self
    }

    /// Traceback level for fatal errors and panics (`GORT_TRACEBACK`).
    pub fn traceback(mut self, t: Traceback) -> Config {
        self.traceback = Some(t);
        self
    }

    /// Debug settings, as `GORT_DEBUG` (comma list of `key=value`: `migrate=1`,
    /// `mreclaim=MS`, `hogreport=1`, `schedtrace=MS`, `scheddetail=1`).
    pub fn debug(mut self, s: &str) -> Config {
        self.debug = Some(s.to_string());
        self
    }

    /// With `true`, a panic ends only its goroutine and `join` returns it as `Err`
    /// (like `std::thread`); default `false`: Go's semantics, the process exits.
    pub fn panic_isolation(mut self, on: bool) -> Config {
        self.panic_isolation = Some(on);
        self
    }

    /// Fixes the configuration. Fails if the runtime already started or a value is bad.
    pub fn init(self) -> Result<(), ConfigError> {
        if is_fixed() {
            return Err(ConfigError::AlreadyStarted);
        }
        let s = self.resolve()?;
        SETTINGS.set(s).map_err(|_| ConfigError::AlreadyStarted)
    }

    /// Explicit values, then environment, then defaults.
    fn resolve(self) -> Result<Settings, ConfigError> {
        let ncpu = crate::os::num_cpu();
        let maxprocs = match self.maxprocs {
            Some(n) if n == 0 || n > MAX_PROCS => return Err(ConfigError::Maxprocs(n)),
            Some(n) => n,
            None => env_maxprocs(ncpu),
        };
        let max_threads = match self.max_threads {
            Some(n) if n < 2 => return Err(ConfigError::MaxThreads(n)),
            Some(n) => n,
            None => DEFAULT_MAX_THREADS,
        };
        let stack_size = match self.stack_size {
            Some(b) => stack::round_size(b).map_err(ConfigError::StackSize)?,
            None => stack::DEFAULT_STACK_SIZE,
        };
        let traceback = match self.traceback {
            Some(t) => t,
            None => env_traceback(),
        };
        let debug = match self.debug {
            Some(d) => DebugVars::parse(&d).map_err(ConfigError::Debug)?,
            None => env_debug(),
        };
        Ok(Settings {
            maxprocs,
            max_threads,
            stack_size,
            traceback,
            debug,
            panic_isolation: self.panic_isolation.unwrap_or(false),
        })
    }
}

fn env_maxprocs(ncpu: usize) -> usize {
    let Ok(v) = std::env::var("GORT_MAXPROCS") else {
        return ncpu.min(MAX_PROCS);
    };
    match v.trim().parse::<usize>() {
        Ok(n) if n > MAX_PROCS => {
            eprintln!("runtime: GORT_MAXPROCS={v} is above the maximum; using {MAX_PROCS}");
            MAX_PROCS
        }
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("runtime: GORT_MAXPROCS={v:?} is not a positive integer; using {ncpu}");
            ncpu.min(MAX_PROCS)
        }
    }
}

fn env_traceback() -> Traceback {
    let Ok(v) = std::env::var("GORT_TRACEBACK") else {
        return Traceback::Single;
    };
    Traceback::parse(v.trim()).unwrap_or_else(|| {
        eprintln!(
            "runtime: GORT_TRACEBACK={v:?} is not none, single, all, system or crash; using single"
        );
        Traceback::Single
    })
}

fn env_debug() -> DebugVars {
    let Ok(v) = std::env::var("GORT_DEBUG") else {
        return DebugVars::default();
    };
    DebugVars::parse(&v).unwrap_or_else(|e| {
        eprintln!("runtime: GORT_DEBUG: {e}; setting ignored");
        DebugVars::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_values_are_checked() {
        assert_eq!(
            Config::new().maxprocs(0).resolve().unwrap_err(),
            ConfigError::Maxprocs(0)
        );
        assert_eq!(
            Config::new().maxprocs(MAX_PROCS + 1).resolve().unwrap_err(),
            ConfigError::Maxprocs(MAX_PROCS + 1)
        );
        assert!(matches!(
            Config::new().stack_size(100).resolve(),
            Err(ConfigError::StackSize(_))
        ));
        assert!(matches!(
            Config::new().stack_size(usize::MAX).resolve(),
            Err(ConfigError::StackSize(_))
        ));
        assert!(matches!(
            Config::new().debug("migrate=yes").resolve(),
            Err(ConfigError::Debug(_))
        ));
        let s = Config::new()
            .debug("migrate=1,unknown=3")
            .resolve()
            .unwrap();
        assert!(s.debug.migrate);
        let s = Config::new()
            .debug("schedtrace=250, scheddetail=1")
            .resolve()
            .unwrap();
        assert_eq!(s.debug.schedtrace_ms, 250);
        assert!(s.debug.scheddetail);
        assert!(matches!(
            Config::new().debug("schedtrace=soon").resolve(),
            Err(ConfigError::Debug(_))
        ));
        assert!(matches!(
            Config::new().debug("scheddetail=2").resolve(),
            Err(ConfigError::Debug(_))
        ));
    }

    #[test]
    fn traceback_names() {
        assert_eq!(Traceback::parse("all"), Some(Traceback::All));
        assert_eq!(Traceback::parse("2"), Some(Traceback::All));
        assert_eq!(Traceback::parse("crash"), Some(Traceback::Crash));
        assert_eq!(Traceback::parse("bogus"), None);
    }
}
