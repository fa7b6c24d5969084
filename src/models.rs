//! Loom models of the protocols in the channel `select` wake-up and the semaphore
//! hand-off. Those protocols live in code that parks goroutines, which loom cannot run,
//! so each model re-enacts the exact sequence of atomic and locked steps of the real code
//! (named in each step's comment) on loom's primitives; a change to the protocol must
//! change its model.

use loom::sync::atomic::{fence, AtomicU32, AtomicUsize};
use loom::sync::{Arc, Condvar, Mutex};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release, SeqCst};

/// The park/wake handshake of a blocked goroutine: the waker sets the flag and wakes;
/// the sleeper waits until the flag is set (gopark + goready, or a thread's futex).
struct Parker {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    fn new() -> Parker {
        Parker {
            woken: Mutex::new(false),
            cv: Condvar::new(),
        }
    }
    fn park(&self) {
        let mut w = self.woken.lock().unwrap();
        while !*w {
            w = self.cv.wait(w).unwrap();
        }
        *w = false;
    }
    fn unpark(&self) {
        *self.woken.lock().unwrap() = true;
        self.cv.notify_one();
    }
}

/// `select` over two channels, each with a sender arriving concurrently
/// (chan/select.rs `select_impl`, chan/waitq.rs `WaitQ::dequeue`, chan/hchan.rs
/// `try_send_locked`): exactly one sender's value is taken by the select, the other
/// sender keeps its value (it would buffer or block), and after pass 3 no sudog of the
/// select is left in any queue.
#[test]
fn select_wakeup_race() {
    loom::model(|| {
        // each channel: its queue of (select waiter id, case) sudogs
        let chans: Arc<[Mutex<Vec<usize>>; 2]> = Arc::new([Mutex::new(vec![]), Mutex::new(vec![])]);
        let done = Arc::new(AtomicUsize::new(0)); // Waiter::done
        let woken = Arc::new(Parker::new()); // the park/wake handshake

        // pass 2: enqueue one sudog per case, in lock order
        for (case, c) in chans.iter().enumerate() {
            c.lock().unwrap().push(case);
        }
        let senders: Vec<_> = (0..2)
            .map(|case| {
                let (chans, done, woken) = (chans.clone(), done.clone(), woken.clone());
                loom::thread::spawn(move || {
                    let mut q = chans[case].lock().unwrap();
                    // WaitQ::dequeue: unlink the first sudog, claim its select by CAS
                    while let Some(c) = q.pop() {
                        // acq_rel; the winner's release pairs with the select's acquire
                        // load of `done` after the park
                        if done.compare_exchange(0, c + 1, AcqRel, Acquire).is_ok() {
                            drop(q);
                            woken.unpark(); // WakeToken::wake
                            return true; // value handed over
                        }
                    }
                    false // no receiver: the value stays with the sender
                })
            })
            .collect();
        // park until woken
        woken.park();
        let won = done.load(Acquire); // acquire; pairs with the winning sender's CAS
        assert!(won == 1 || won == 2);
        // pass 3: relock every channel, unlink the other sudogs
        for c in chans.iter() {
            c.lock().unwrap().clear();
        }
        let delivered: Vec<bool> = senders.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            delivered.iter().filter(|&&d| d).count(),
            1,
            "exactly one case wins"
        );
        assert!(
            delivered[won - 1],
            "the winner is the sender whose value was taken"
        );
        for c in chans.iter() {
            assert!(c.lock().unwrap().is_empty(), "no stale sudog left");
        }
    });
}

/// The semaphore's acquire/release handshake with hand-off (sync/sema.rs
/// `semacquire`/`semrelease`): the acquirer counts itself in `nwait` before re-checking
/// the count, the releaser adds to the count before reading `nwait`, so the releaser
/// either sees the waiter or the waiter sees the unit. The acquirer always finishes
/// (no lost wake-up) and units are conserved. (Loom models SeqCst accesses as AcqRel, so
/// the Dekker pattern needs the explicit SeqCst fences the real code also has; without
/// them this model deadlocks.)
#[test]
fn sema_handoff_no_lost_wakeup() {
    loom::model(|| {
        let count = Arc::new(AtomicU32::new(0));
        let nwait = Arc::new(AtomicU32::new(0));
        // root lock + queue of waiters (their wake flags and tickets)
        let root: Arc<Mutex<Vec<Arc<(Parker, AtomicU32)>>>> = Arc::new(Mutex::new(vec![]));
        // sync/sema.rs `cansemacquire`: the load half of each side's Dekker pair (SeqCst
        // as in the real code; loom checks it as AcqRel, the fences carry the pair)
        let cansemacquire = |c: &AtomicU32| {
            let mut v = c.load(SeqCst);
            loop {
                if v == 0 {
                    return false;
                }
                match c.compare_exchange(v, v - 1, SeqCst, SeqCst) {
                    Ok(_) => return true,
                    Err(cur) => v = cur,
                }
            }
        };
        let acquirer = {
            let (count, nwait, root) = (count.clone(), nwait.clone(), root.clone());
            loom::thread::spawn(move || {
                if cansemacquire(&count) {
                    return;
                }
                let me = Arc::new((Parker::new(), AtomicU32::new(0))); // (parker, ticket)
                loop {
                    let mut q = root.lock().unwrap();
                    // semacquire: count ourselves, fence, re-check (the acquirer's half
                    // of the Dekker pair; pairs with the releaser's add + fence below)
                    nwait.fetch_add(1, SeqCst);
                    fence(SeqCst);
                    if cansemacquire(&count) {
                        nwait.fetch_sub(1, SeqCst); // under the root lock, as in semacquire
                        return;
                    }
                    q.push(me.clone());
                    drop(q); // gopark's unlock function
                    me.0.park();
                    // acquire; pairs with the releaser's ticket store
                    if me.1.load(Acquire) != 0 || cansemacquire(&count) {
                        return;
                    }
                }
            })
        };
        // releaser, with hand-off (semrelease): add, fence, read nwait (the releaser's
        // half of the Dekker pair; pairs with the acquirer's nwait add + fence above)
        count.fetch_add(1, SeqCst);
        fence(SeqCst);
        if nwait.load(SeqCst) != 0 {
            let mut q = root.lock().unwrap();
            if nwait.load(SeqCst) != 0 {
                // re-read under the root lock, as semrelease does
                if let Some(w) = q.pop() {
                    nwait.fetch_sub(1, SeqCst); // under the root lock
                    drop(q);
                    if cansemacquire(&count) {
                        w.1.store(1, Release); // the ticket; pairs with the waiter's acquire
                    }
                    w.0.unpark();
                }
            }
        }
        acquirer.join().unwrap();
        // after the join: any ordering would do; SeqCst as the code's other count reads
        assert_eq!(count.load(SeqCst), 0, "one release, one acquire");
    });
}

/// sysmon's retake against `exitsyscall`'s fast path (sched/syscall.rs `retake` and
/// `exitsyscall`): both CAS the P's status out of `_Psyscall`; exactly one wins. If the
/// retake wins, the P goes to the idle list (`handoff_p` with no work), and the returning
/// M may then take it from there (`pidleget` + `acquirep`). The P ends up owned by at most
/// one M, and never both running and idle.
#[test]
fn retake_vs_exitsyscall() {
    const IDLE: u32 = 0;
    const RUNNING: u32 = 1;
    const SYSCALL: u32 = 2;
    loom::model(|| {
        // Every status CAS is AcqRel/Acquire as in sched/syscall.rs: the two CASes out of
        // SYSCALL pair with each other (one modification order: exactly one succeeds),
        // and the winner's release pairs with the acquire of whoever next takes the P.
        let status = Arc::new(AtomicU32::new(SYSCALL));
        let pidle = Arc::new(Mutex::new(Vec::<u32>::new())); // idle list of P ids
        let sysmon = {
            let (status, pidle) = (status.clone(), pidle.clone());
            loom::thread::spawn(move || {
                if status
                    .compare_exchange(SYSCALL, IDLE, AcqRel, Acquire)
                    .is_ok()
                {
                    pidle.lock().unwrap().push(0); // handoff_p -> pidleput
                    true
                } else {
                    false
                }
            })
        };
        // exitsyscall on the blocked M
        let got = if status
            .compare_exchange(SYSCALL, RUNNING, AcqRel, Acquire)
            .is_ok()
        {
            true // fast path: our P back
        } else {
            // pidleget + acquirep (IDLE -> RUNNING), or none: queue the G, stop the M
            let p = pidle.lock().unwrap().pop();
            if p.is_some() {
                assert!(status
                    .compare_exchange(IDLE, RUNNING, AcqRel, Acquire)
                    .is_ok());
            }
            p.is_some()
        };
        let retaken = sysmon.join().unwrap();
        let idle_now = pidle.lock().unwrap().len();
        match (got, retaken) {
            (true, false) => assert_eq!(status.load(Acquire), RUNNING),
            (true, true) => {
                assert_eq!(status.load(Acquire), RUNNING);
                assert_eq!(idle_now, 0, "taken back from the idle list");
            }
            (false, true) => {
                assert_eq!(status.load(Acquire), IDLE);
                assert_eq!(idle_now, 1);
            }
            (false, false) => panic!("neither side owns the P"),
        }
    });
}

/// A spawn record's life (sched/spawn.rs `adopt`, sched/join.rs, api.rs `run_body` and
/// `JoinHandle::drop`, proc.rs `goexit0`): the M that starts the goroutine keeps the
/// record only if a handle exists; the goroutine stores its result and marks itself dead;
/// the handle is dropped concurrently at any point. Exactly one party recycles the record,
/// nobody touches it after that, and the result is dropped exactly once. (A handle that
/// took the result after clearing `HANDLE`, as gort's did before, fails here: the
/// goroutine's exit may recycle the record under it.)
#[test]
fn spawn_record_recycled_once() {
    const HANDLE: usize = 1;
    const RESULT: usize = 2;
    const DEAD: usize = 4;
    loom::model(|| {
        // the record's join state (reset at spawn: HANDLE), whether it was recycled, and
        // how many times the result was dropped. Every RMW on `state` is AcqRel as in
        // sched/join.rs: each pairs with the others (the goroutine's fetch_or with the
        // handle's fetch_and/CAS), so whoever acts second sees the first one's writes.
        let state = Arc::new(AtomicUsize::new(HANDLE));
        let recycled = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        // (an RMW, not a load: loom orders it against the recycling RMW)
        let touch =
            |r: &AtomicUsize| assert_eq!(r.fetch_add(0, AcqRel), 0, "record used after recycling");

        let (s, rc, d) = (state.clone(), recycled.clone(), dropped.clone());
        let goroutine = loom::thread::spawn(move || {
            // adopt: `keep = join.has_handle()`
            touch(&rc);
            let keep = s.load(Acquire) & HANDLE != 0;
            if !keep {
                rc.fetch_add(1, AcqRel); // spawn::free
                d.fetch_add(1, AcqRel); // run_body: no record, drops its result
                return;
            }
            // run_body: Join::put
            touch(&rc);
            let old = s.fetch_or(RESULT, AcqRel);
            if old & HANDLE == 0 {
                d.fetch_add(1, AcqRel); // rule 1: the goroutine drops it
            }
            // goexit0: Join::mark_dead
            touch(&rc);
            let old = s.fetch_or(DEAD, AcqRel);
            if old & HANDLE == 0 {
                rc.fetch_add(1, AcqRel); // rule 2
            }
        });
        // JoinHandle::drop: Join::release_handle
        let mut cur = state.load(Acquire);
        loop {
            if cur & RESULT != 0 {
                // take the result while HANDLE is still set
                touch(&recycled);
                dropped.fetch_add(1, AcqRel); // rule 1: the handle drops it
                let old = state.fetch_and(!HANDLE, AcqRel);
                if old & DEAD != 0 {
                    recycled.fetch_add(1, AcqRel); // rule 2
                }
                break;
            }
            match state.compare_exchange(cur, cur & !HANDLE, AcqRel, Acquire) {
                Ok(_) => break, // no result yet: the goroutine drops it and recycles
                Err(now) => cur = now,
            }
        }
        goroutine.join().unwrap();
        assert_eq!(recycled.load(Acquire), 1, "recycled exactly once");
        assert_eq!(dropped.load(Acquire), 1, "result dropped exactly once");
    });
}
