//! A global allocator that puts large allocations on hugepages.
//!
//! The session table (a slab of 64-byte sessions and two cuckoo indexes) is
//! hundreds of MiB at 10 M sessions and is read at random: on 4 KiB pages
//! nearly every lookup also misses the TLB. gw-core allocates it with plain
//! `Vec`s (it has no unsafe code and knows no allocator), so gatewayd
//! installs [`HugeAlloc`] as its global allocator and every allocation of
//! at least [`HUGE_MIN`] bytes is mapped on its own:
//!
//! 1. `mmap(MAP_HUGETLB)`: reserved 2 MiB hugepages, when the machine has
//!    free ones;
//! 2. else (none reserved, or all taken, as under `--no-huge` labs) an
//!    ordinary anonymous mapping, 2 MiB aligned, with
//!    `madvise(MADV_HUGEPAGE)` so the kernel backs it with transparent
//!    hugepages when it can, and 4 KiB pages when not. The fallback is
//!    counted ([`fallbacks`]); gatewayd logs it after start-up (an
//!    allocator must not log: logging allocates).
//!
//! Smaller allocations go to the system allocator unchanged. The worker's
//! tables are allocated by the thread that builds its engine; on a
//! multi-socket machine first touch then decides the NUMA node (the engine
//! fills its tables when it builds them).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Allocations at least this large are mapped on hugepages.
pub const HUGE_MIN: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

static HUGETLB: AtomicU64 = AtomicU64::new(0);
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// The global allocator of gatewayd (see the module docs).
pub struct HugeAlloc;

/// Large allocations that got reserved hugepages (`MAP_HUGETLB`).
pub fn hugetlb_allocations() -> u64 {
    HUGETLB.load(Relaxed)
}

/// Large allocations that fell back to ordinary pages (with a transparent
/// hugepage hint).
pub fn fallbacks() -> u64 {
    FALLBACKS.load(Relaxed)
}

fn rounded(size: usize) -> usize {
    size.div_ceil(HUGE_PAGE) * HUGE_PAGE
}

// SAFETY: `alloc` returns null or a mapping of at least `layout.size()`
// bytes aligned to 2 MiB (hence to any `layout.align()` up to that; larger
// alignments go to `System`), used by nothing else; `dealloc` unmaps
// exactly what `alloc` mapped for the same layout (its size, rounded the
// same way).
unsafe impl GlobalAlloc for HugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < HUGE_MIN || layout.align() > HUGE_PAGE {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc(layout) };
        }
        let len = rounded(layout.size());
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags | libc::MAP_HUGETLB, -1, 0) };
        if p != libc::MAP_FAILED {
            HUGETLB.fetch_add(1, Relaxed);
            return p.cast();
        }
        FALLBACKS.fetch_add(1, Relaxed);
        // Over-map by one hugepage and trim both ends to a 2 MiB boundary,
        // so transparent hugepages can back the whole range.
        // SAFETY: as above.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len + HUGE_PAGE, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        let start = p as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        let head = aligned - start;
        let tail = HUGE_PAGE - head;
        // SAFETY: both ranges lie inside the mapping just made, which nobody
        // else knows of; unmapping them leaves `aligned..aligned + len`.
        unsafe {
            if head > 0 {
                libc::munmap(p, head);
            }
            if tail > 0 {
                libc::munmap((aligned + len) as *mut libc::c_void, tail);
            }
            // A hint: failure (THP disabled) only leaves 4 KiB pages.
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
        aligned as *mut u8
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < HUGE_MIN || layout.align() > HUGE_PAGE {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: as `alloc`; fresh anonymous mappings are zero-filled.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() < HUGE_MIN || layout.align() > HUGE_PAGE {
            // SAFETY: `ptr` came from `System` with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        // SAFETY: `ptr..ptr + rounded(size)` is the mapping `alloc` made for
        // this layout (both paths map exactly that range in the end).
        unsafe {
            libc::munmap(ptr.cast(), rounded(layout.size()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_allocations_are_mapped_aligned_zeroed_and_usable() {
        let a = HugeAlloc;
        for size in [HUGE_MIN, HUGE_MIN + 1, 3 * HUGE_MIN + 12345] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: a valid non-zero layout; the memory is used within
            // its size and freed with the same layout.
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % HUGE_PAGE, 0);
                let s = std::slice::from_raw_parts_mut(p, size);
                assert!(s.iter().all(|&b| b == 0));
                s.fill(0xa5);
                assert_eq!(s[size - 1], 0xa5);
                a.dealloc(p, layout);
            }
        }
        assert!(hugetlb_allocations() + fallbacks() >= 3);
        // Small ones go to the system allocator.
        let small = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: as above.
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null());
            a.dealloc(p, small);
        }
    }
}
