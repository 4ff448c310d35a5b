//! A software prefetch hint, for the places that know where a memory access will go before they
//! need it: the bytes ahead of a capture read in place and the flow table's lines (the engine),
//! the state of the hosts of the next few flow records (the attack detector), the compiled
//! ruleset's tables (batched and pipelined lookups).
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

/// [`prefetch`] of the cache line where `value` begins.
#[inline(always)]
pub fn prefetch_value<T>(value: &T) {
    prefetch((value as *const T).cast());
}
