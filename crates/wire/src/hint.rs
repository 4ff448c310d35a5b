//! A software prefetch hint, for the places that know where a memory access will go before they
//! need it: the next record of a capture read in place (the engine), the state of the hosts of
//! the next few flow records (the attack detector).
#![allow(unsafe_code)]

/// Asks the CPU to start loading the cache line at `addr` (a hint: it never faults and changes
/// nothing observable). A no-op off x86-64.
#[inline(always)]
pub fn prefetch(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 does not access memory architecturally; any address is allowed.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}
