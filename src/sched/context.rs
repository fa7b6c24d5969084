//! Saving one stack's registers and resuming another's (Go: `gobuf`, and `gogo`/`mcall`
//! in asm_amd64.s).
//!
//! A suspended stack is described by one word, its saved stack pointer: the switch that
//! suspends it pushes the callee-saved registers and the address to resume at on the
//! stack it leaves and stores the stack pointer; resuming loads that pointer and pops
//! them. Everything else the suspended code needs is on its own stack, so a switch costs
//! a dozen instructions and touches two or three cache lines. Unlike an asymmetric
//! coroutine (resume/suspend), any goroutine can switch to any other: a goroutine that
//! parks hands the CPU straight to the next one ([`switch_direct`], used by
//! `park::gopark`) instead of going through the scheduler's stack (g0) and back
//! ([`resume`], [`suspend_to_g0`]).
//!
//! Caller-saved registers are not saved (each switch is, for the compiler, a call that
//! clobbers them). The floating-point control state (x86-64: MXCSR and the x87 control
//! word; aarch64: FPCR) is not switched either: it belongs to the thread, as in Go.
//!
//! # Protocol
//!
//! Each switch passes one word: the switch that resumes a stack returns, on that stack,
//! the `arg` of the switch that resumed it. A fresh stack made by [`init`] starts in
//! `entry(data, arg)`: `data` is a pointer chosen at [`init`] time, `arg` the value of the
//! switch that started it. When `entry` returns, it returns the saved pointer of a g0
//! suspended in [`resume`], and that `resume` returns [`EXIT`]: the stack is finished
//! (the return to g0 is done by the stack's bottom frame, so that the `call` by which g0
//! entered it and the `ret` that leaves it pair up for the return predictor). The fresh stack's bottom frame tells unwinders that the stack ends there
//! (`.cfi_undefined` on the return address), so a backtrace taken inside a goroutine
//! stops at its entry, as Go's tracebacks stop at `goexit`.

/// The entry function of a fresh stack: `(data, arg)`; returns the saved pointer of the
/// g0 to finish on (see the module docs).
pub(crate) type Entry = unsafe extern "C" fn(data: usize, arg: usize) -> usize;

/// What [`resume`] returns when the stack it resumed finished (its entry returned).
pub(crate) const EXIT: usize = 1;

// x86-64. A suspended stack's saved pointer `sp` holds, from `sp` up: the address to
// resume at, then the saved rbx and rbp (the other callee-saved registers are declared
// clobbered, so the compiler saves the ones it needs in its own frame). Whoever resumes
// it jumps to `[sp]` with rdx = `sp` and rdi = the argument. The three switches differ in
// how they transfer control, for the CPU's return-address predictor: g0 enters a
// goroutine with a `call`, and the goroutine's switch back to g0 is the matching `ret`
// (predicted, and the goroutine's calls and returns in between stay balanced); a direct
// switch between goroutines is a plain indirect `jmp`, which leaves the predictor's stack
// as it is (when two goroutines park at the same call site, as in a ping-pong, the
// returns after the switch are predicted too).

/// Resumes the suspended stack `to` from g0, saving g0's context into `*save`; returns
/// the argument of the switch that comes back to g0 ([`suspend_to_g0`]).
///
/// # Safety
/// `to` is the saved pointer of a suspended stack that nothing else resumes now; only
/// [`suspend_to_g0`] (with `*save`) may come back.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn resume(save: *mut usize, to: usize) -> usize {
    let ret: usize;
    // SAFETY: the caller's contract; the block saves and restores rbx/rbp itself and
    // declares every other register it may lose clobbered.
    unsafe {
        core::arch::asm!(
            "push rbp",
            "push rbx",
            // our stack pointer once the call below has pushed its return address
            "lea rax, [rsp - 8]",
            "mov [rcx], rax",
            "call [rdx]",
            // back from suspend_to_g0's `ret`
            "pop rbx",
            "pop rbp",
            inlateout("rcx") save => _,
            inlateout("rdx") to => _,
            inlateout("rdi") 0usize => ret,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        );
    }
    ret
}

/// The suspending half shared by [`suspend_to_g0`] and [`switch_direct`]: pushes rbp, rbx
/// and the resume address (label `2`), stores the stack pointer into `*$save`, then
/// transfers control with the given instructions (rdx = `$to`, rdi = `$arg`); the code at
/// `2` is where this stack resumes (rdx = its saved pointer, rdi = the argument).
#[cfg(target_arch = "x86_64")]
macro_rules! suspend_then {
    ($save:expr, $to:expr, $arg:expr, $($transfer:literal),+) => {{
        let ret: usize;
        // SAFETY: the callers' contracts; the block saves and restores rbx/rbp itself and
        // declares every other register it may lose clobbered.
        unsafe {
            core::arch::asm!(
                "push rbp",
                "push rbx",
                "lea rax, [rip + 2f]",
                "push rax",
                "mov [rcx], rsp",
                $($transfer,)+
                "2:",
                "lea rsp, [rdx + 8]",
                "pop rbx",
                "pop rbp",
                inlateout("rcx") $save => _,
                inlateout("rdx") $to => _,
                inlateout("rdi") $arg => ret,
                lateout("r12") _,
                lateout("r13") _,
                lateout("r14") _,
                lateout("r15") _,
                clobber_abi("C"),
            );
        }
        ret
    }};
}

/// Suspends the running stack into `*save` and returns to g0 (suspended in [`resume`]
/// with `g0`), which gets `arg`. Returns the argument of whatever resumes this stack.
///
/// # Safety
/// `g0` is the pointer [`resume`] saved for the g0 that (directly or through direct
/// switches) resumed the running stack; after the call `*save` may be resumed once.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn suspend_to_g0(save: *mut usize, g0: usize, arg: usize) -> usize {
    // `ret` pops the return address of g0's `call` in `resume`
    suspend_then!(save, g0, arg, "mov rsp, rdx", "ret")
}

/// Suspends the running stack into `*save` and resumes the suspended stack `to`, which
/// gets `arg`. Returns the argument of whatever resumes this stack.
///
/// # Safety
/// `to` is the saved pointer of a suspended stack that nothing else resumes now; after
/// the call `*save` may be resumed once.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn switch_direct(save: *mut usize, to: usize, arg: usize) -> usize {
    suspend_then!(save, to, arg, "jmp [rdx]")
}

/// The resume address of a fresh x86-64 stack: `[sp]` = this, `[sp+8]` = entry,
/// `[sp+16]` = data; calls `entry(data, arg)` (arg in rdi) with a 16-byte aligned
/// stack and no frame above, then returns to the g0 whose saved pointer `entry` returned,
/// as [`suspend_to_g0`] would, passing [`EXIT`].
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    core::arch::naked_asm!(
        ".cfi_startproc",
        // nothing above this frame: unwinders stop here
        ".cfi_undefined rip",
        "mov rax, [rdx + 8]",
        "mov rsi, rdi",
        "mov rdi, [rdx + 16]",
        "lea rsp, [rdx + 32]",
        "xor ebp, ebp",
        "call rax",
        "mov rsp, rax",
        "mov edi, {exit}",
        // pops the return address of g0's `call` in `resume`
        "ret",
        ".cfi_endproc",
        exit = const EXIT,
    )
}

/// The code at a suspended x86-64 stack's resume address (label `2` of `suspend_then!`):
/// `lea rsp, [rdx + 8]; pop rbx; pop rbp`. Past it, the suspended function goes on as
/// after the asm block, where its unwind tables describe the frame.
#[cfg(target_arch = "x86_64")]
const RESUME_CODE: [u8; 6] = [0x48, 0x8d, 0x62, 0x08, 0x5b, 0x5d];

/// Free stack a [`call_on_suspended`] needs below the suspended frames (the unwinder's
/// own frames and `f`'s: a first `Backtrace::force_capture` takes about 5.5 KiB, later
/// ones about 2 KiB).
#[cfg(target_arch = "x86_64")]
const WALK_ROOM: usize = 12 * 1024;

/// What [`call_on_suspended`] hands to [`walk_entry`].
#[cfg(target_arch = "x86_64")]
struct Walk<'a> {
    f: &'a mut dyn FnMut(),
    /// The caller's stack pointer to return to.
    back: usize,
}

/// Runs `f` on the suspended stack `sp` as if it were called at the point where that
/// stack was suspended, so that an unwinder started in `f` (`Backtrace::force_capture`)
/// walks the suspended goroutine's frames; then puts back the three words of the saved
/// context it borrowed. Returns why not, without running `f`, when that cannot be done
/// safely: `sp` is not suspended in a switch (a fresh stack), is misaligned, or has less
/// than [`WALK_ROOM`] free below it (`lo`: the stack's lowest usable address).
///
/// # Safety
/// `sp` is the saved pointer of a suspended stack whose memory from `lo` up is mapped,
/// and that nothing resumes, reads or writes while this runs (the world is stopped).
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn call_on_suspended(
    sp: usize,
    lo: usize,
    f: &mut dyn FnMut(),
) -> Result<(), &'static str> {
    let ctx = sp as *mut [usize; 3];
    // SAFETY: a suspended stack's saved pointer addresses its three saved words
    // (contract).
    let saved = unsafe { ctx.read() };
    let [resume_at, rbx, rbp] = saved;
    if resume_at == trampoline as *const () as usize {
        return Err("not started"); // a fresh stack: no frames to walk
    }
    // an `asm!` block without `nostack` starts at a call-aligned rsp, so a switch's three
    // pushes leave sp = 8 mod 16: anything else is not a switch's saved pointer
    debug_assert_eq!(sp % 16, 8, "call_on_suspended: not a saved stack pointer");
    if sp % 16 != 8 {
        return Err("unaligned saved stack pointer");
    }
    if sp < lo + WALK_ROOM {
        return Err("too little free stack below its frames");
    }
    // SAFETY: `resume_at` is the address of code (label 2 of a switch, contract), mapped
    // and readable; six bytes from there are still inside that asm block.
    let code = unsafe { (resume_at as *const [u8; 6]).read_unaligned() };
    if code != RESUME_CODE {
        return Err("not suspended in a switch");
    }
    let after = resume_at + RESUME_CODE.len();
    // The borrowed frame: [sp + 8] = where `resume`'s `call` goes (`walk_trampoline`,
    // rdx = sp + 8), [sp + 16] = `after`, which `walk_entry` sees as its return address:
    // so its caller is the suspended function, right after its switch, with the stack
    // pointer it has there (sp + 24).
    // SAFETY: the three words are the suspended stack's own (contract); they are put back
    // below before anything can resume it.
    unsafe { ctx.write([resume_at, walk_trampoline as *const () as usize, after]) };
    let mut w = Walk { f, back: 0 };
    let wp: *mut Walk<'_> = &mut w;
    // Below `sp`, in the stack's free part (WALK_ROOM checked above), what the trampoline
    // loads before it moves onto the stack: the `Walk`, and the suspended rbp and rbx
    // (the unwinder restores the suspended frames' registers from them).
    // SAFETY: the 24 bytes below `sp` belong to the suspended stack's unused part.
    unsafe { ((sp - 24) as *mut [usize; 3]).write([wp as usize, rbp, rbx]) };
    // `resume` saves our context (its stack pointer after its `call`, into `w.back`) and
    // calls the trampoline; `walk_entry` comes back with `mov rsp, back; ret`, as a
    // goroutine's switch to g0 would.
    // SAFETY: the borrowed frame is a resumable context for `walk_trampoline`, which
    // nothing else resumes; only `walk_entry` comes back, through `w.back`.
    unsafe { resume(std::ptr::addr_of_mut!((*wp).back), sp + 8) };
    // SAFETY: as above: the suspended stack gets its saved context back.
    unsafe { ctx.write(saved) };
    Ok(())
}

/// Where [`call_on_suspended`]'s `resume` lands (rdx = the borrowed frame at `sp + 8`):
/// loads the `Walk` and the suspended rbp and rbx from below `sp`, moves onto the
/// suspended stack and jumps to [`walk_entry`], whose return address is then the
/// suspended function's.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
unsafe extern "C" fn walk_trampoline() {
    core::arch::naked_asm!(
        "mov rdi, [rdx - 32]",
        "mov rbp, [rdx - 24]",
        "mov rbx, [rdx - 16]",
        "lea rsp, [rdx + 8]",
        "jmp {entry}",
        entry = sym walk_entry,
    )
}

/// Runs the walker's function on the suspended stack, then returns to
/// [`call_on_suspended`] on its own stack (never to its apparent caller).
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn walk_entry(w: *mut Walk<'_>) -> ! {
    // SAFETY: `call_on_suspended` passes its live `Walk`, which outlives this call.
    let w = unsafe { &mut *w };
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (w.f)())).is_err() {
        // unwinding must not run into the suspended frames above us; the walker's
        // function only captures a backtrace, so this is not expected
        crate::throw!("goroutine walk: the walker panicked");
    }
    let back = w.back;
    // SAFETY: `back` is the stack pointer of `call_on_suspended`'s thread stack right
    // after its `call` pushed the return address: `ret` there resumes it.
    unsafe { core::arch::asm!("mov rsp, {b}", "ret", b = in(reg) back, options(noreturn)) }
}

/// aarch64: walking a suspended stack is not implemented (dumps print headers only).
///
/// # Safety
/// None needed; nothing is done.
#[cfg(target_arch = "aarch64")]
pub(crate) unsafe fn call_on_suspended(
    _sp: usize,
    _lo: usize,
    _f: &mut dyn FnMut(),
) -> Result<(), &'static str> {
    Err("not implemented on this architecture")
}

/// Bytes [`init`] writes below the start address.
#[cfg(target_arch = "x86_64")]
const INIT_FRAME: usize = 32;

/// Lays out a fresh stack below `start` so that resuming the returned pointer calls
/// `entry(data, arg)` on it.
///
/// # Safety
/// `start` is 16-byte aligned and the `INIT_FRAME` bytes below it belong to a stack
/// nobody runs on.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn init(start: usize, entry: Entry, data: usize) -> usize {
    debug_assert_eq!(start % 16, 0, "context::init: unaligned stack start");
    let sp = start - INIT_FRAME;
    let words: [usize; 4] = [trampoline as *const () as usize, entry as usize, data, 0];
    // SAFETY: the caller gave us INIT_FRAME (= 4 words) writable bytes below start.
    unsafe { (sp as *mut [usize; 4]).write(words) };
    sp
}

// aarch64: one symmetric switch (all callee-saved registers and the return address on
// the stack) serves the three kinds of switch; it is correct, if not tuned for the
// return predictor as the x86-64 code is.

/// The aarch64 frame [`switch`] pops (the callee-saved registers at `sp`, 160 bytes), as
/// one assembly string for both places that resume a stack saved by it.
#[cfg(target_arch = "aarch64")]
macro_rules! aarch64_restore {
    () => {
        concat!(
            "ldp x19, x20, [sp, #0]\n",
            "ldp x21, x22, [sp, #16]\n",
            "ldp x23, x24, [sp, #32]\n",
            "ldp x25, x26, [sp, #48]\n",
            "ldp x27, x28, [sp, #64]\n",
            "ldp x29, x30, [sp, #80]\n",
            "ldp d8, d9, [sp, #96]\n",
            "ldp d10, d11, [sp, #112]\n",
            "ldp d12, d13, [sp, #128]\n",
            "ldp d14, d15, [sp, #144]\n",
            "add sp, sp, #160",
        )
    };
}

/// Saves the current stack's context into `*save` and resumes the stack whose saved
/// pointer is `to`, returning `arg` there.
///
/// # Safety
/// `to` is the saved pointer of a suspended stack that nothing else resumes now.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
unsafe extern "C" fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
    // x0 = save, x1 = to, x2 = arg; callee-saved: x19-x28, fp, lr, d8-d15
    core::arch::naked_asm!(
        "sub sp, sp, #160",
        "stp x19, x20, [sp, #0]",
        "stp x21, x22, [sp, #16]",
        "stp x23, x24, [sp, #32]",
        "stp x25, x26, [sp, #48]",
        "stp x27, x28, [sp, #64]",
        "stp x29, x30, [sp, #80]",
        "stp d8, d9, [sp, #96]",
        "stp d10, d11, [sp, #112]",
        "stp d12, d13, [sp, #128]",
        "stp d14, d15, [sp, #144]",
        "mov x9, sp",
        "str x9, [x0]",
        "mov sp, x1",
        aarch64_restore!(),
        "mov x0, x2",
        "ret",
    )
}

/// See the x86-64 version.
///
/// # Safety
/// As for the x86-64 version.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(crate) unsafe fn resume(save: *mut usize, to: usize) -> usize {
    // SAFETY: the caller's contract.
    unsafe { switch(save, to, 0) }
}

/// See the x86-64 version.
///
/// # Safety
/// As for the x86-64 version.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(crate) unsafe fn suspend_to_g0(save: *mut usize, g0: usize, arg: usize) -> usize {
    // SAFETY: the caller's contract.
    unsafe { switch(save, g0, arg) }
}

/// See the x86-64 version.
///
/// # Safety
/// As for the x86-64 version.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub(crate) unsafe fn switch_direct(save: *mut usize, to: usize, arg: usize) -> usize {
    // SAFETY: the caller's contract.
    unsafe { switch(save, to, arg) }
}

/// The first code a fresh aarch64 stack runs (`ret` of [`switch`] lands here): calls
/// `entry(data, arg)` with entry in x19, data in x20 and arg in x0, then resumes the g0
/// whose saved pointer `entry` returned (as [`switch`] would), passing [`EXIT`].
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    core::arch::naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined x30",
        "mov x1, x0",
        "mov x0, x20",
        "mov x29, xzr",
        "blr x19",
        "mov sp, x0",
        aarch64_restore!(),
        "mov x0, #{exit}",
        "ret",
        ".cfi_endproc",
        exit = const EXIT,
    )
}

/// Bytes [`init`] writes below the start address.
#[cfg(target_arch = "aarch64")]
const INIT_FRAME: usize = 160;

/// Lays out a fresh stack below `start` so that resuming the returned pointer calls
/// `entry(data, arg)` on it.
///
/// # Safety
/// `start` is 16-byte aligned and the `INIT_FRAME` bytes below it belong to a stack
/// nobody runs on.
#[cfg(target_arch = "aarch64")]
pub(crate) unsafe fn init(start: usize, entry: Entry, data: usize) -> usize {
    debug_assert_eq!(start % 16, 0, "context::init: unaligned stack start");
    let sp = start - INIT_FRAME;
    let w = sp as *mut usize;
    for i in 0..INIT_FRAME / 8 {
        // SAFETY: the caller gave us INIT_FRAME writable bytes below start.
        unsafe { w.add(i).write(0) };
    }
    // SAFETY: as above; slots 0 (x19), 1 (x20) and 11 (x30) of the frame.
    unsafe {
        w.add(0).write(entry as usize);
        w.add(1).write(data);
        w.add(11).write(trampoline as *const () as usize);
    }
    sp
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("gort switches goroutine stacks on x86-64 and aarch64 only");

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack for the tests (plain heap memory: these run nothing deep).
    fn test_stack() -> (Vec<u128>, usize) {
        let v = vec![0u128; 4096]; // 64 KiB, 16-byte aligned
        let top = v.as_ptr() as usize + v.len() * 16;
        (v, top)
    }

    struct Pair {
        main_sp: usize,
        co_sp: usize,
        log: Vec<usize>,
    }

    unsafe extern "C" fn co_entry(data: usize, arg: usize) -> usize {
        // SAFETY: data is the &mut Pair the test passed; the test's stack is suspended
        // while this one runs, so the access is exclusive.
        let pair = unsafe { &mut *(data as *mut Pair) };
        pair.log.push(arg);
        let mut v = arg;
        loop {
            // values live across the switch sit in callee-saved registers or the frame
            let a = std::hint::black_box(v * 3);
            let b = std::hint::black_box(v + 7);
            // SAFETY: main_sp was saved by the test's resume, which is suspended.
            let next = unsafe { suspend_to_g0(&mut pair.co_sp, pair.main_sp, v + 1) };
            pair.log.push(a + b - 4 * v); // 7 if a and b survived
            v = next;
        }
    }

    /// A suspended stack's frames can be walked from outside (`call_on_suspended`): the
    /// backtrace taken on it names the function that suspended, the walk refuses a fresh
    /// stack, and the stack resumes afterwards as if nothing happened.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn walking_a_suspended_stack() {
        let (mem, top) = test_stack();
        let lo = mem.as_ptr() as usize;
        let mut pair = Pair {
            main_sp: 0,
            co_sp: 0,
            log: Vec::new(),
        };
        // SAFETY: the stack is ours and unused.
        pair.co_sp = unsafe { init(top, co_entry, &mut pair as *mut Pair as usize) };
        let mut ran = false;
        // SAFETY: the stack is suspended (fresh) and nothing else touches it.
        let fresh = unsafe { call_on_suspended(pair.co_sp, lo, &mut || ran = true) };
        assert!(
            fresh.is_err() && !ran,
            "a fresh stack has no frames to walk"
        );
        // SAFETY: co_sp is suspended.
        assert_eq!(unsafe { resume(&mut pair.main_sp, pair.co_sp) }, 1);
        let mut bt = None;
        // SAFETY: co_entry is suspended in suspend_to_g0 and nothing resumes it meanwhile.
        let walked = unsafe {
            call_on_suspended(pair.co_sp, lo, &mut || {
                bt = Some(std::backtrace::Backtrace::force_capture())
            })
        };
        assert_eq!(walked, Ok(()));
        let text = bt.expect("captured").to_string();
        assert!(
            text.contains("co_entry"),
            "the walk reaches the suspended function:\n{text}"
        );
        // the borrowed words are back: the stack resumes where it was, values intact
        for _ in 0..3 {
            // SAFETY: co_sp is suspended.
            assert_eq!(unsafe { resume(&mut pair.main_sp, pair.co_sp) }, 1);
        }
        assert_eq!(pair.log, vec![0, 7, 7, 7]);
    }

    /// Values pass both ways; a fresh stack gets its data and first argument (0 from
    /// `resume`); values live across switches keep them on both sides.
    #[test]
    fn resume_and_suspend_pass_values() {
        let (_mem, top) = test_stack();
        let mut pair = Pair {
            main_sp: 0,
            co_sp: 0,
            log: Vec::new(),
        };
        // SAFETY: the stack is ours and unused.
        pair.co_sp = unsafe { init(top, co_entry, &mut pair as *mut Pair as usize) };
        let mut got = Vec::new();
        for _ in 0..5 {
            let keep = std::hint::black_box(got.len() * 5);
            // SAFETY: co_sp is suspended (fresh, or by its own switch).
            let r = unsafe { resume(&mut pair.main_sp, pair.co_sp) };
            assert_eq!(keep, got.len() * 5);
            got.push(r);
        }
        // resume passes 0: the co side returns v + 1 = 1 each time
        assert_eq!(got, vec![1, 1, 1, 1, 1]);
        assert_eq!(pair.log, vec![0, 7, 7, 7, 7]);
    }

    /// Two fresh stacks and a driver: g0 resumes A, A switches directly to B (passing a
    /// value), B switches directly back to A, A returns to g0; the values arrive.
    struct Trio {
        g0: usize,
        a: usize,
        b: usize,
        seen: Vec<(char, usize)>,
    }

    unsafe extern "C" fn trio_a(data: usize, arg: usize) -> usize {
        // SAFETY: the Trio is only touched by the stack that runs.
        let t = unsafe { &mut *(data as *mut Trio) };
        t.seen.push(('a', arg));
        // SAFETY: b is fresh (suspended); a is saved before b runs.
        let back = unsafe { switch_direct(&mut t.a, t.b, 41) };
        t.seen.push(('a', back));
        // SAFETY: g0 is suspended in resume.
        unsafe { suspend_to_g0(&mut t.a, t.g0, back + 100) };
        unreachable!("a is never resumed again");
    }

    unsafe extern "C" fn trio_b(data: usize, arg: usize) -> usize {
        // SAFETY: as above.
        let t = unsafe { &mut *(data as *mut Trio) };
        t.seen.push(('b', arg));
        // SAFETY: a is suspended in its switch_direct.
        unsafe { switch_direct(&mut t.b, t.a, arg + 1) };
        unreachable!("b is never resumed again");
    }

    #[test]
    fn direct_switches_between_stacks() {
        let (_ma, top_a) = test_stack();
        let (_mb, top_b) = test_stack();
        let mut t = Trio {
            g0: 0,
            a: 0,
            b: 0,
            seen: Vec::new(),
        };
        let tp = &mut t as *mut Trio as usize;
        // SAFETY: the stacks are ours and unused.
        unsafe {
            t.a = init(top_a, trio_a, tp);
            t.b = init(top_b, trio_b, tp);
        }
        // SAFETY: a is fresh; it comes back through suspend_to_g0.
        let r = unsafe { resume(std::ptr::addr_of_mut!(t.g0), t.a) };
        assert_eq!(r, 142);
        assert_eq!(t.seen, vec![('a', 0), ('b', 41), ('a', 42)]);
    }

    unsafe extern "C" fn returning_entry(data: usize, arg: usize) -> usize {
        // SAFETY: data is the test's (g0 sp, arg seen) pair, exclusively ours now.
        let out = unsafe { &mut *(data as *mut (usize, usize)) };
        out.1 = arg + 5;
        out.0
    }

    /// An entry that returns finishes its stack: the g0 it names gets EXIT.
    #[test]
    fn returning_entry_ends_on_g0() {
        let (_mem, top) = test_stack();
        let mut out = (0usize, 0usize);
        let outp: *mut (usize, usize) = &mut out;
        for _ in 0..3 {
            // SAFETY: the stack is ours and unused (the previous run finished).
            let sp = unsafe { init(top, returning_entry, outp as usize) };
            // SAFETY: sp is fresh; the entry returns the pointer resume saves.
            let r = unsafe { resume(std::ptr::addr_of_mut!((*outp).0), sp) };
            assert_eq!(r, EXIT);
            assert_eq!(out.1, 5);
        }
    }

    unsafe extern "C" fn align_entry(data: usize, _arg: usize) -> usize {
        let here = 0u128; // a 16-byte aligned local: the compiler relies on the alignment
                          // SAFETY: data is the test's (address seen, g0 sp) pair, exclusively ours now.
        let out = unsafe { &mut *(data as *mut (usize, usize)) };
        out.0 = std::hint::black_box(&here) as *const u128 as usize;
        let mut dummy = 0usize;
        // SAFETY: the test's stack is suspended in resume.
        unsafe { suspend_to_g0(&mut dummy, out.1, 0) };
        unreachable!("never resumed");
    }

    /// The entry runs with the ABI's stack alignment, near the start address.
    #[test]
    fn fresh_stack_is_aligned() {
        let (_mem, top) = test_stack();
        let mut out = (0usize, 0usize);
        let outp: *mut (usize, usize) = &mut out;
        // SAFETY: the stack is ours and unused.
        let sp = unsafe { init(top, align_entry, outp as usize) };
        // SAFETY: sp is a fresh stack; the entry comes back through suspend_to_g0.
        unsafe { resume(std::ptr::addr_of_mut!((*outp).1), sp) };
        assert_ne!(out.0, 0);
        assert_eq!(out.0 % 16, 0);
        assert!(out.0 < top && out.0 > top - 4096);
    }
}
