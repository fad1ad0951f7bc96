//! What every fuzz binary shares: making libFuzzer's crash handler survive a stack overflow.
//!
//! libFuzzer catches SIGSEGV to save the input that crashed, but installs its handler to run on
//! the faulting thread's stack. After a stack overflow that stack is gone, so the handler itself
//! faults, the process dies silently and the input is lost (exactly the bug this harness exists
//! to find: unbounded recursion in a parser). [`survive_stack_overflow`] gives the thread an
//! alternate signal stack and re-installs libFuzzer's handler to run on it. AddressSanitizer builds
//! (`cargo fuzz run -s address`) do not need it: ASan reports stack overflows itself.

use std::sync::Once;

/// Call at the start of every input; the work is done once.
pub fn survive_stack_overflow() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        const ALT_STACK: usize = 1 << 20;
        // Leaked: the alternate stack must outlive the process's last signal.
        let stack = Box::leak(vec![0u8; ALT_STACK].into_boxed_slice());
        // SAFETY: `stack` is valid for the life of the process; `sigaltstack` and `sigaction`
        // only read and write the structs passed to them.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: stack.as_mut_ptr().cast(),
                ss_flags: 0,
                ss_size: ALT_STACK,
            };
            libc::sigaltstack(&ss, std::ptr::null_mut());
            for sig in [libc::SIGSEGV, libc::SIGBUS] {
                let mut act: libc::sigaction = std::mem::zeroed();
                libc::sigaction(sig, std::ptr::null(), &mut act);
                act.sa_flags |= libc::SA_ONSTACK;
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
    });
}
