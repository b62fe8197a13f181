//! A cache-line prefetch hint (the one piece of the burst pipeline that
//! needs `unsafe`: `_mm_prefetch` takes a raw pointer, so it is an unsafe
//! intrinsic even though it cannot fault). gw-core forbids unsafe code, so
//! it hands out the lines to prefetch (`SessionTable::bucket_line`,
//! `SessionTable::session_line`) and the poll loop calls this.

/// Asks the CPU to bring the cache line holding `*r` into L1, without
/// waiting for it. A no-op on targets without a prefetch instruction.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults and never changes
    // memory or architectural state, whatever the address; `r` is moreover
    // a live reference. SSE, which has the instruction, is part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(r as *const T as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// [`prefetch`] of the line at `p`, as a plain function the core's
/// session table can hold (`gw_core::session::Prefetch`): the core has no
/// unsafe code, so it is lent this one.
#[inline(always)]
pub fn prefetch_addr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults and never changes
    // memory or architectural state, whatever the address (the core passes
    // addresses inside its live tables anyway).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
