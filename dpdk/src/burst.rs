//! The data path: [`RxBurst`] and [`TxBuffer`], fixed arrays of mbuf
//! pointers that own what they hold.
//!
//! No allocation, lock or system call: a burst makes sure its thread
//! holds the queue (`queues.rs`), calls the PMD through the C shim, and
//! frees leftovers with one `rte_pktmbuf_free_bulk`. Nothing is ever
//! leaked: whatever an [`RxBurst`] did not hand out and whatever a
//! [`TxBuffer`] could not send is freed and, for tx, counted in the return
//! value.
//!
//! Two ways to name the queue: [`Port::rx_burst`] and [`TxBuffer::flush`]
//! take a port and a queue id and claim the queue for that one burst (an
//! atomic swap, a locked instruction, each time); a [`QueuePair`] (from
//! [`Port::queue_pair`]) keeps its rx and tx queue from burst to burst, at
//! the cost of one relaxed load per burst, and gives them back when the
//! control path wants the port and when dropped. A poll loop (the
//! workers) uses the second; tools, the exception path and tests the
//! first. Either does nothing (receives 0, frees what it would send) on a
//! queue another thread holds.

use std::ptr::{self, NonNull};

use dpdk_sys as sys;

use super::mbuf::Mbuf;
use super::port::Port;
use super::queues::{claim, Dir, HeldPair};

/// Packets per burst.
pub const BURST: usize = 32;

/// Frees `pkts`: each is an owned mbuf no one else will touch.
#[inline]
fn free_all(pkts: &mut [*mut sys::rte_mbuf]) {
    if pkts.is_empty() {
        return;
    }
    // SAFETY: callers pass only owned, valid mbuf pointers, and forget
    // them right after (their len/pos is reset); free_bulk accepts any
    // count up to u32::MAX (ours is at most a burst).
    unsafe { sys::rte_pktmbuf_free_bulk(pkts.as_mut_ptr(), pkts.len() as u32) };
}

/// Up to [`BURST`] received mbufs. Owns `pkts[pos..len]`.
pub struct RxBurst {
    pkts: [*mut sys::rte_mbuf; BURST],
    len: usize,
    pos: usize,
}

// SAFETY: RxBurst owns its mbufs exclusively; mbufs may be used and freed
// on any thread (see Mbuf).
unsafe impl Send for RxBurst {}

impl RxBurst {
    /// An empty burst.
    pub fn new() -> Self {
        RxBurst { pkts: [ptr::null_mut(); BURST], len: 0, pos: 0 }
    }

    /// Fills this (cleared) burst from rx `queue` of `port` with one
    /// `rte_eth_rx_burst`; returns how many arrived. Both ways of naming a
    /// queue ([`Port::rx_burst`], [`QueuePair::rx_burst`]) end here.
    ///
    /// # Safety
    /// The calling thread holds rx `queue` of `port` (a claim or a held
    /// slot), and the queue is below the port's configured rx count (or
    /// the port is stopped and DPDK's dummy burst runs).
    #[inline]
    unsafe fn receive(&mut self, port: u16, queue: u16) -> usize {
        debug_assert_eq!((self.pos, self.len), (0, 0), "cleared first");
        // SAFETY: the caller's promise; pkts has room for BURST pointers.
        let n = unsafe { sys::gw_rte_eth_rx_burst(port, queue, self.pkts.as_mut_ptr(), BURST as u16) };
        self.len = usize::from(n);
        self.len
    }

    /// Mbufs received and not yet drained.
    #[inline]
    pub fn len(&self) -> usize {
        self.len - self.pos
    }

    /// True when nothing is left to drain.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == self.pos
    }

    /// Hands out the received mbufs in order. Those not taken when the
    /// iterator is dropped are freed.
    #[inline]
    pub fn drain(&mut self) -> Drain<'_> {
        Drain { burst: self }
    }

    /// Frees whatever is left.
    #[inline]
    pub fn clear(&mut self) {
        free_all(&mut self.pkts[self.pos..self.len]);
        self.pos = 0;
        self.len = 0;
    }
}

impl Default for RxBurst {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RxBurst {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Iterator from [`RxBurst::drain`]: moves each mbuf out.
pub struct Drain<'a> {
    burst: &'a mut RxBurst,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        let b = &mut *self.burst;
        if b.pos == b.len {
            return None;
        }
        let p = b.pkts[b.pos];
        b.pos += 1;
        // SAFETY: pkts[..len] came from rte_eth_rx_burst, which returns
        // owned, non-NULL, direct mbufs with refcnt 1; advancing pos first
        // moves ownership out so it is never freed twice.
        Some(unsafe { Mbuf::from_nonnull(NonNull::new_unchecked(p)) })
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.burst.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Drain<'_> {}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        self.burst.clear();
    }
}

impl Port {
    /// Receives up to [`BURST`] mbufs from rx `queue` into `burst`, first
    /// freeing anything `burst` still held. Returns how many arrived: 0
    /// also when the queue is not configured, another thread is polling it
    /// at the same moment or holds it (a [`QueuePair`]), or the control
    /// path wants the port.
    #[inline]
    pub fn rx_burst(&self, queue: u16, burst: &mut RxBurst) -> usize {
        burst.clear();
        let Some(_claim) = claim(self.id(), queue, Dir::Rx) else {
            return 0;
        };
        // SAFETY: the claim makes this thread the only user of `queue`,
        // which it found below the port's configured rx count.
        unsafe { burst.receive(self.id(), queue) }
    }

    /// Rx and tx `queue`, to be held by one thread across bursts
    /// ([`QueuePair`]). Claims nothing yet.
    pub fn queue_pair(&self, queue: u16) -> QueuePair {
        QueuePair { port: *self, queue, held: HeldPair::new(self.id(), queue) }
    }
}

/// The rx and the tx queue of one id on a port, kept by their owner (a
/// worker) from burst to burst: each claimed at its first burst, both given
/// back at the first burst (rx or tx) that sees the control path want the
/// port (the bursts meanwhile do nothing) and claimed again after, both
/// given back on drop. So the owner calls [`QueuePair::rx_burst`] every
/// poll (or drops the pair), and a thread must not stop, configure or
/// close a port one of whose pairs it holds (it would wait for itself).
/// Not `Clone`: one holder per queue.
pub struct QueuePair {
    port: Port,
    queue: u16,
    held: HeldPair,
}

impl QueuePair {
    /// Receives up to [`BURST`] mbufs into `burst`, first freeing anything
    /// `burst` still held, as [`Port::rx_burst`] does. Returns how many
    /// arrived: 0 also when the queue is not configured, another thread
    /// holds it, or the control path wants the port.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut RxBurst) -> usize {
        burst.clear();
        if !self.held.ready(Dir::Rx) {
            return 0;
        }
        // SAFETY: holding the slot makes this thread the queue's only user,
        // and the queue is below the configured rx count (checked when the
        // slot was claimed; the count changes only with every slot taken
        // back).
        unsafe { burst.receive(self.port.id(), self.queue) }
    }

    /// Sends everything in `buf` with one `rte_eth_tx_burst`, frees what
    /// the device did not take, and returns `(sent, freed)`, as
    /// [`TxBuffer::flush`] does. The buffer is empty afterwards. If the
    /// queue is not configured, another thread holds it or the control
    /// path wants the port, everything is freed.
    #[inline]
    pub fn flush<const N: usize>(&mut self, buf: &mut TxBuffer<N>) -> (usize, usize) {
        if buf.is_empty() {
            return (0, 0);
        }
        let held = self.held.ready(Dir::Tx);
        // SAFETY: if `held`, as in rx_burst, for the tx count.
        unsafe { buf.send(self.port.id(), self.queue, held) }
    }

    /// The port.
    #[inline]
    pub fn port(&self) -> Port {
        self.port
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Whether this holds the rx queue now (since its last burst).
    pub fn holds_rx(&self) -> bool {
        self.held.is_held(Dir::Rx)
    }

    /// Whether this holds the tx queue now (since its last non-empty
    /// flush, or until a burst gave it back).
    pub fn holds_tx(&self) -> bool {
        self.held.is_held(Dir::Tx)
    }
}

/// Mbufs gathered for one tx burst: up to `N` (default [`BURST`]). Owns
/// `pkts[..len]`.
pub struct TxBuffer<const N: usize = BURST> {
    pkts: [*mut sys::rte_mbuf; N],
    len: usize,
}

// SAFETY: as for RxBurst.
unsafe impl<const N: usize> Send for TxBuffer<N> {}

impl TxBuffer {
    /// An empty buffer of [`BURST`] mbufs.
    pub fn new() -> Self {
        Self::with_capacity()
    }
}

impl<const N: usize> TxBuffer<N> {
    /// An empty buffer of `N` mbufs (`N` at most `u16::MAX`).
    pub fn with_capacity() -> Self {
        const { assert!(N > 0 && N <= u16::MAX as usize) };
        TxBuffer { pkts: [ptr::null_mut(); N], len: 0 }
    }

    /// Adds `m`; gives it back if the buffer is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.pkts[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Mbufs waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when [`TxBuffer::push`] would fail.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Sends everything on tx `queue` of `port` with one
    /// `rte_eth_tx_burst`, frees what the device did not take, and returns
    /// `(sent, freed)`. The buffer is empty afterwards. If the queue is not
    /// configured, another thread is using or holding it, or the control
    /// path wants the port, everything is freed.
    #[inline]
    pub fn flush(&mut self, port: Port, queue: u16) -> (usize, usize) {
        if self.is_empty() {
            return (0, 0);
        }
        let claim = claim(port.id(), queue, Dir::Tx);
        // SAFETY: with the claim (alive until the end of this function),
        // this thread is the only user of `queue`, which it found below
        // the port's configured tx count.
        unsafe { self.send(port.id(), queue, claim.is_some()) }
    }

    /// Empties the buffer: everything sent on tx `queue` of `port` with one
    /// `rte_eth_tx_burst` if `held`, then what the device did not take
    /// freed; returns `(sent, freed)`. Both ways of naming a queue
    /// ([`TxBuffer::flush`], [`QueuePair::flush`]) end here.
    ///
    /// # Safety
    /// If `held`, the calling thread holds tx `queue` of `port` (a claim
    /// or a held slot), and the queue is below the port's configured tx
    /// count (or the port is stopped and DPDK's dummy burst runs).
    #[inline]
    unsafe fn send(&mut self, port: u16, queue: u16, held: bool) -> (usize, usize) {
        let len = std::mem::take(&mut self.len);
        let sent = if held {
            // SAFETY: the caller's promise; pkts[..len] are owned mbufs.
            // The device takes ownership of the first `sent`, the rest
            // stay ours.
            usize::from(unsafe { sys::gw_rte_eth_tx_burst(port, queue, self.pkts.as_mut_ptr(), len as u16) })
        } else {
            0
        };
        free_all(&mut self.pkts[sent..len]);
        (sent, len - sent)
    }

    /// Frees everything waiting; returns how many.
    pub fn clear(&mut self) -> usize {
        let len = std::mem::take(&mut self.len);
        free_all(&mut self.pkts[..len]);
        len
    }
}

impl Default for TxBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for TxBuffer<N> {
    fn drop(&mut self) {
        self.clear();
    }
}
