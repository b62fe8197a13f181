//! [`Mbuf`]: one owned packet buffer.
//!
//! Invariants of the mbuf behind an `Mbuf`: it is direct (owns its data
//! buffer) and unshared (refcnt 1), as DPDK hands them out from
//! `rte_pktmbuf_alloc` and rx bursts; `buf_addr` points to `buf_len` bytes
//! and `data_off + data_len <= buf_len`. Every method here keeps that, so
//! the first segment's data is always a valid, exclusively owned slice.
//! Bytes that appear through [`Mbuf::prepend`], [`Mbuf::append`] or
//! [`Mbuf::set_len`] are zeroed, so an old packet never leaks into a new one.
//!
//! Prepend, adj, and append and trim of a single-segment mbuf (gatewayd's
//! pools make no others) are DPDK's inline functions written out on the
//! mbuf's fields (`data_off`, `data_len`, `pkt_len`), with the same
//! checks: NAT64 grows or cuts every packet it translates, and a call
//! into the C shim per packet is what the compiler cannot inline. A
//! chained mbuf's append and trim (its last segment) go to the shim. The
//! tests hold both to the shim's results.

use std::ptr::{self, NonNull};

use dpdk_sys as sys;

/// An owned mbuf. Data access ([`AsRef`], [`AsMut`], [`Mbuf::len`]) covers
/// the first segment only; gatewayd's pools make single-segment mbufs.
pub struct Mbuf {
    ptr: NonNull<sys::rte_mbuf>,
}

// SAFETY: an Mbuf owns its mbuf exclusively (unshared, see module docs);
// rte_pktmbuf_free may run on any thread (mempool put is thread-safe).
unsafe impl Send for Mbuf {}
// SAFETY: &Mbuf only reads fields of the mbuf it owns.
unsafe impl Sync for Mbuf {}

impl Mbuf {
    /// Takes ownership of `m`.
    ///
    /// # Safety
    /// `m` is a valid mbuf from a packet mempool that nothing else owns or
    /// frees, direct and with refcnt 1, and its pool outlives it.
    pub(crate) unsafe fn from_nonnull(m: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf { ptr: m }
    }

    /// Takes ownership of a raw mbuf, for example one from [`Mbuf::into_raw`].
    ///
    /// # Safety
    /// `p` is non-null and points to a valid mbuf from a packet mempool
    /// created through [`Mempool`](super::Mempool); nothing else owns or will
    /// free it; it is direct (not attached to another mbuf's data) and its
    /// refcnt is 1.
    pub unsafe fn from_raw(p: *mut sys::rte_mbuf) -> Mbuf {
        let ptr = NonNull::new(p).expect("Mbuf::from_raw: null mbuf");
        Mbuf { ptr }
    }

    /// Gives up ownership: the caller must free the mbuf or rebuild an
    /// `Mbuf` with [`Mbuf::from_raw`].
    #[inline]
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        std::mem::ManuallyDrop::new(self).ptr.as_ptr()
    }

    #[inline]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: ptr is valid for as long as self lives, and only we
        // access the mbuf (exclusive ownership).
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: as in raw(); &mut self makes the access exclusive.
        unsafe { self.ptr.as_mut() }
    }

    /// Length of the first segment's data (`data_len`).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    /// True when the first segment holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw().data_len == 0
    }

    /// Total packet length over all segments (`pkt_len`).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Number of segments.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Free bytes in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    /// Free bytes after the data of the first segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        usize::from(m.buf_len) - usize::from(m.data_off) - usize::from(m.data_len)
    }

    /// Port the mbuf was received on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The NIC's RSS hash, if it set one.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & u64::from(sys::RTE_MBUF_F_RX_RSS_HASH) == 0 {
            return None;
        }
        // SAFETY: the RSS flag says the PMD wrote the `rss` member of the
        // hash union; any u32 bit pattern is valid anyway.
        Some(unsafe { m.__bindgen_anon_2.hash.rss })
    }

    /// Offload flags (`ol_flags`, `RTE_MBUF_F_*`).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// Grows the data by `n` bytes at the front (zeroed); false, unchanged,
    /// if the headroom is short.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        let Some(p) = self.prepend_raw(n) else { return false };
        // SAFETY: p is the new data start, followed by at least n bytes of
        // this mbuf's buffer, which we own.
        unsafe { zero(p, n) };
        true
    }

    /// `rte_pktmbuf_prepend` (without the zeroing): the new data start, or
    /// `None`, unchanged, if the headroom is short. Written out on the
    /// mbuf's fields as DPDK's inline function does (it touches the first
    /// segment and `pkt_len` only, whatever the segments), so that the
    /// NAT64 translation's per-packet grow is not a call into the C shim.
    #[inline]
    fn prepend_raw(&mut self, n: usize) -> Option<*mut u8> {
        let n = u16::try_from(n).ok()?;
        let m = self.raw_mut();
        if n > m.data_off {
            return None;
        }
        // data_off + data_len <= buf_len (a u16), so data_len + n fits.
        m.data_off -= n;
        m.data_len += n;
        m.pkt_len += u32::from(n);
        // SAFETY: data_off <= buf_len: the new data start is inside the
        // buffer of buf_len bytes at buf_addr.
        Some(unsafe { m.buf_addr.cast::<u8>().add(usize::from(m.data_off)) })
    }

    /// Strips `n` bytes from the front; false, unchanged, if the first
    /// segment holds fewer. `rte_pktmbuf_adj` on the mbuf's fields, as
    /// [`Mbuf::prepend`] is written.
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n) = u16::try_from(n) else { return false };
        let m = self.raw_mut();
        if n > m.data_len {
            return false;
        }
        m.data_len -= n;
        m.data_off += n;
        m.pkt_len -= u32::from(n);
        true
    }

    /// Grows the data by `n` bytes at the end of the last segment (zeroed);
    /// false, unchanged, if its tailroom is short.
    #[inline]
    pub fn append(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        let p = if self.nb_segs() == 1 {
            // The last segment is the first: `rte_pktmbuf_append` on its
            // fields.
            let m = self.raw_mut();
            if usize::from(n16) > usize::from(m.buf_len) - usize::from(m.data_off) - usize::from(m.data_len) {
                return false;
            }
            let tail = usize::from(m.data_off) + usize::from(m.data_len);
            m.data_len += n16;
            m.pkt_len += u32::from(n16);
            // SAFETY: tail + n <= buf_len: inside the mbuf's buffer.
            unsafe { m.buf_addr.cast::<u8>().add(tail) }
        } else {
            // SAFETY: we own the mbuf; append checks the tailroom and
            // returns NULL, changing nothing, if it is short.
            let p = unsafe { sys::gw_rte_pktmbuf_append(self.ptr.as_ptr(), n16) };
            if p.is_null() {
                return false;
            }
            p.cast::<u8>()
        };
        // SAFETY: p is the start of the n bytes just added to the last
        // segment, inside its buffer, which we own.
        unsafe { zero(p, n) };
        true
    }

    /// Strips `n` bytes from the end of the last segment; false, unchanged,
    /// if it holds fewer.
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        if self.nb_segs() == 1 {
            // The last segment is the first: `rte_pktmbuf_trim` on its
            // fields.
            let m = self.raw_mut();
            if n16 > m.data_len {
                return false;
            }
            m.data_len -= n16;
            m.pkt_len -= u32::from(n16);
            return true;
        }
        // SAFETY: we own the mbuf; trim checks n against the last
        // segment's data_len and returns -1, changing nothing, if larger.
        unsafe { sys::gw_rte_pktmbuf_trim(self.ptr.as_ptr(), n16) == 0 }
    }

    /// The C shim's (DPDK's own) prepend, adj, append and trim, for the
    /// tests that hold the Rust versions above to them: `op` 0..=3 in that
    /// order; the C function's result as the Rust version's (`true` =
    /// done).
    #[cfg(test)]
    pub(crate) fn shim_op(&mut self, op: u8, n: u16) -> bool {
        let m = self.ptr.as_ptr();
        // SAFETY: we own the mbuf; each function checks its length and
        // changes nothing when it refuses.
        unsafe {
            match op {
                0 => !sys::gw_rte_pktmbuf_prepend(m, n).is_null(),
                1 => !sys::gw_rte_pktmbuf_adj(m, n).is_null(),
                2 => !sys::gw_rte_pktmbuf_append(m, n).is_null(),
                _ => sys::gw_rte_pktmbuf_trim(m, n) == 0,
            }
        }
    }

    /// Chains `tail` after this single-segment mbuf, as
    /// `rte_pktmbuf_chain` does, for the tests of chained mbufs.
    #[cfg(test)]
    pub(crate) fn chain(&mut self, tail: Mbuf) {
        assert_eq!(self.nb_segs(), 1);
        let tail = tail.into_raw();
        let m = self.raw_mut();
        // SAFETY: tail is a valid mbuf we owned (into_raw): it is now this
        // chain's, freed with it by rte_pktmbuf_free.
        let (len, segs) = unsafe { ((*tail).pkt_len, (*tail).nb_segs) };
        m.next = tail;
        m.nb_segs += segs;
        m.pkt_len += len;
    }

    /// (data_off, data_len, pkt_len, nb_segs), for the tests.
    #[cfg(test)]
    pub(crate) fn fields(&self) -> (u16, u16, u32, u16) {
        let m = self.raw();
        (m.data_off, m.data_len, m.pkt_len, m.nb_segs)
    }

    /// Sets the data length of a single-segment mbuf, zeroing any bytes it
    /// grows by; false, unchanged, if it has several segments or `len`
    /// does not fit in the buffer.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if self.nb_segs() != 1 {
            return false;
        }
        let cur = self.len();
        if len >= cur {
            self.append(len - cur)
        } else {
            self.trim(cur - len)
        }
    }
}

/// Zeroes the `n` bytes at `p`. What a worker prepends is short (NAT64's
/// 20 bytes, a tunnel's outer header, a TOA option): up to 64 bytes are
/// two or four overlapping stores inside `p..p + n` rather than a call to
/// `memset` (which `write_bytes` of a length not known at compile time
/// is).
///
/// # Safety
/// `p..p + n` is memory of this mbuf that we may write.
#[inline(always)]
unsafe fn zero(p: *mut u8, n: usize) {
    const Z8: [u8; 8] = [0; 8];
    const Z16: [u8; 16] = [0; 16];
    // SAFETY: every store of every arm lies inside p..p + n (the
    // caller's promise): it starts at p or ends at p + n.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                p.write(0);
                p.add(n / 2).write(0);
                p.add(n - 1).write(0);
            }
            4..=7 => {
                p.cast::<[u8; 4]>().write_unaligned([0; 4]);
                p.add(n - 4).cast::<[u8; 4]>().write_unaligned([0; 4]);
            }
            8..=16 => {
                p.cast::<[u8; 8]>().write_unaligned(Z8);
                p.add(n - 8).cast::<[u8; 8]>().write_unaligned(Z8);
            }
            17..=32 => {
                p.cast::<[u8; 16]>().write_unaligned(Z16);
                p.add(n - 16).cast::<[u8; 16]>().write_unaligned(Z16);
            }
            33..=64 => {
                p.cast::<[u8; 16]>().write_unaligned(Z16);
                p.add(16).cast::<[u8; 16]>().write_unaligned(Z16);
                p.add(n - 32).cast::<[u8; 16]>().write_unaligned(Z16);
                p.add(n - 16).cast::<[u8; 16]>().write_unaligned(Z16);
            }
            _ => ptr::write_bytes(p, 0, n),
        }
    }
}

impl AsRef<[u8]> for Mbuf {
    /// The first segment's data: `buf_addr[data_off .. data_off + data_len]`.
    #[inline]
    fn as_ref(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: module invariant: data_off + data_len <= buf_len and
        // buf_addr points to buf_len bytes of initialised memory (mempool
        // memory comes zeroed from mmap) owned by this mbuf; the borrow of
        // self keeps it alive and unchanged.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }
}

impl AsMut<[u8]> for Mbuf {
    /// The first segment's data, writable.
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in as_ref; &mut self makes the access exclusive, and
        // the mbuf is unshared (refcnt 1), so no other mbuf sees the bytes.
        unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (and its chain) and give it back exactly
        // once; its pool is alive or retired, never freed while it is out.
        unsafe { sys::gw_rte_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("pkt_len", &self.pkt_len())
            .field("nb_segs", &self.nb_segs())
            .field("port", &self.port())
            .finish()
    }
}

/// The packet core's worker runs on mbufs as it runs on `Vec<u8>` in tests.
/// Inline: the worker, in another crate, calls these per NAT64 packet
/// (without `#[inline]` each was a call the worker's crate could not
/// inline, around the field updates above).
impl gw_core::worker::PacketBuf for Mbuf {
    #[inline]
    fn set_len(&mut self, len: usize) -> bool {
        Mbuf::set_len(self, len)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n)
    }
    #[inline]
    fn truncate(&mut self, len: usize) {
        let cur = self.len();
        if len < cur {
            self.trim(cur - len);
        }
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
}
