//! [`Mempool`]: a pool of packet mbufs (`rte_pktmbuf_pool_create`).
//!
//! A pool lives while any handle does: the [`Mempool`] and its clones, and
//! every port configured with it (ports keep a clone until closed, because
//! their rx queues allocate from it). Then it is *retired*, not freed: the
//! [`Eal`](super::Eal) drop frees retired pools once all lcores have stopped
//! and no mbuf is out, so an mbuf never points into freed memory.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::{retire_pool, Hold};
use super::error::DpdkError;
use super::mbuf::Mbuf;

/// A pool of packet buffers. Cheap to clone (a shared handle); `Send` and
/// `Sync`: allocation and free are safe from any thread.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

pub(crate) struct PoolInner {
    ptr: NonNull<sys::rte_mempool>,
    /// Keeps EAL memory mapped while the pool exists.
    hold: Option<Hold>,
}

// SAFETY: the pool is created with DPDK's default ops ("ring_mp_mc"), whose
// get and put are safe from any number of threads at once; the per-lcore
// cache is indexed by the calling thread's lcore id and bypassed on threads
// without one. The pool is only freed by the EAL after the last handle.
unsafe impl Send for PoolInner {}
// SAFETY: as for Send; every operation through &PoolInner is thread-safe.
unsafe impl Sync for PoolInner {}

impl Mempool {
    /// Creates a pool of `n` mbufs with a per-lcore cache of `cache` and
    /// `data_room` bytes of buffer each (headroom included; see
    /// [`DEFAULT_DATA_ROOM`](super::DEFAULT_DATA_ROOM)), on NUMA `socket`.
    /// `n` is best a power of two minus one. Names are unique per process
    /// and at most 25 bytes.
    pub fn new(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool, DpdkError> {
        const OP: &str = "rte_pktmbuf_pool_create";
        let cname = CString::new(name)
            .map_err(|_| DpdkError::InvalidArgument { op: OP, reason: "name contains a NUL byte" })?;
        let hold = Hold::acquire(OP)?;
        // SAFETY: EAL is running (hold); cname is NUL-terminated and DPDK
        // copies it. Returns NULL on failure with rte_errno set.
        let ptr = unsafe { sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::last(OP))?;
        Ok(Mempool { inner: Arc::new(PoolInner { ptr, hold: Some(hold) }) })
    }

    /// Takes an mbuf from the pool; `None` if the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is alive (self holds it); alloc is thread-safe.
        let m = unsafe { sys::gw_rte_pktmbuf_alloc(self.inner.ptr.as_ptr()) };
        // SAFETY: a non-NULL result is a fresh, direct, unshared mbuf that
        // we now own.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_nonnull(m) })
    }

    /// Mbufs free in the pool (including those in per-lcore caches).
    pub fn available(&self) -> u32 {
        self.inner.available()
    }

    /// Mbufs handed out and not yet returned (held by the application,
    /// in rx/tx rings, or in flight).
    pub fn in_use(&self) -> u32 {
        self.inner.in_use()
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.ptr.as_ptr()
    }

    /// A handle for a port that allocates from this pool.
    pub(crate) fn share(&self) -> Arc<PoolInner> {
        Arc::clone(&self.inner)
    }

    pub(crate) fn same_pool(a: &Arc<PoolInner>, b: &Mempool) -> bool {
        Arc::ptr_eq(a, &b.inner)
    }
}

impl PoolInner {
    fn available(&self) -> u32 {
        // SAFETY: the pool is alive; the count only reads pool state.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    fn in_use(&self) -> u32 {
        // SAFETY: as in available().
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("available", &self.available())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // Not freed here: an mbuf from it may still be out, or be returning
        // to it on another lcore right now. The EAL frees retired pools at
        // its drop, after all lcores have stopped. Retire before the hold
        // goes, so that the EAL's drop sees one or the other.
        retire_pool(self.ptr);
        drop(self.hold.take());
    }
}
