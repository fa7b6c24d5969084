//! Start-up (Go: proc.go `schedinit`, the `procresize` of the first start): fixes the
//! settings, creates the Ps, registers the fatal hooks and starts sysmon.

use super::p::P;
use super::schedt::SCHED;
use crate::config::settings;
use std::sync::atomic::Ordering;
use std::sync::Once;

static INIT: Once = Once::new();

/// Starts the runtime if it is not running (Go: `schedinit` + `procresize`): fixes the
/// settings, creates the Ps (all idle; Ms start on demand), installs the fault handler
/// and the panic hook.
pub(crate) fn ensure_init() {
    if SCHED.started.load(Ordering::Acquire) {
        // acquire; pairs with the release below: the Ps and sysmon are visible
        return;
    }
    INIT.call_once(|| {
        // first, so that anything below that throws gets the full report
        crate::throw::set_fatal_hook(crate::debug::on_throw);
        let s = settings();
        let mut l = SCHED.lock();
        for i in 0..s.maxprocs {
            let p: &'static P = Box::leak(Box::new(P::new(i as u32)));
            SCHED.allp[i].store(p as *const P as *mut P, Ordering::Release); // release; pairs with the acquire in Sched::p
        }
        // GOMAXPROCS first: pidleput retires Ps at or above it.
        SCHED.gomaxprocs.store(s.maxprocs as u32, Ordering::Release);
        // Idle list in reverse so that P0 is handed out first.
        for i in (0..s.maxprocs).rev() {
            let Some(p) = SCHED.p(i) else {
                crate::throw!("schedinit: P {i} missing right after its creation");
            };
            l.pidleput(p);
        }
        drop(l);
        crate::os::signal::install(crate::debug::report_overflow);
        crate::debug::install_panic_hook();
        crate::sched::sysmon::start();
        SCHED.started.store(true, Ordering::Release); // release; pairs with the acquire above
    });
}
