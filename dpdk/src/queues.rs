//! Which rx/tx queues of each port exist, and who is using one right now.
//!
//! DPDK's burst functions do not check the queue id (an id past the
//! configured ones reads out of bounds or a NULL queue) and are not
//! thread-safe per queue; and a port must not be stopped, reconfigured or
//! closed while a burst runs on it. `Port` is a `Copy` id usable from any
//! thread, so this table enforces both in safe code. Each queue has a
//! *slot*, a flag that one thread at a time holds; each port a count of
//! control calls that *want* it. Two ways to hold a slot:
//! * **per burst** ([`claim`], `Port::rx_burst`, `TxBuffer::flush`): one
//!   atomic swap takes the slot for one burst (no waiting: if the queue is
//!   busy the burst does nothing), a store gives it back. Simple, and what
//!   the tools, the exception path and the tests use; but the swap is a
//!   locked instruction, a full barrier that waits for the store buffer to
//!   drain (the packets' bytes and the ring's descriptors the other CPU
//!   reads), per burst, idle ones included.
//! * **held across bursts** ([`HeldPair`], `QueuePair`: the workers): a
//!   queue id's rx and tx slots are taken once and kept. Per burst the
//!   holder makes one relaxed load of the port's `wanted` count (a line
//!   only the control path writes, so it stays in every poller's cache)
//!   and nothing else: no locked instruction, no store to a shared line.
//!
//! The control path ([`lock_port`]) raises `wanted`, then takes every slot
//! of the port, waiting. A holder that sees `wanted` raised at its next
//! burst (rx or tx) gives both its slots back and bursts no more while it
//! stays raised; once the control call is done (slots released, then
//! `wanted` lowered) it takes each slot again at its next burst in that
//! direction, and reads the configured queue count anew. (One pair for rx
//! and tx, so that a holder that polls rx every loop but has nothing to
//! send on this port still gives its tx slot back.) A per-burst claim
//! also defers to a raised `wanted`, so that a tight polling loop cannot
//! starve the control path.
//!
//! Why it is safe, and what ordering each step needs:
//! * Exclusion rests on the slots alone: a burst runs only while its thread
//!   holds the slot (taken by a swap that returned `false`), and the
//!   control path changes the port only holding them all. `wanted` is a
//!   request, not a lock: reading it stale is harmless, it only delays a
//!   hand-back by a burst (the control path waits) or a re-claim by a burst
//!   (the holder does nothing meanwhile). So `wanted` is `Relaxed`
//!   everywhere; its only need is to become visible, which coherence
//!   guarantees.
//! * Taking a slot is an `Acquire` swap and giving it back a `Release`
//!   store, so everything done under a slot (the PMD's ring state, the
//!   configured counts written under all of them) happens before whatever
//!   the next holder does.
//! * `wanted` is a count, not a flag: two control calls on one port may
//!   overlap, and the second's wait must not see the first's lowering (the
//!   holders would claim their slots again and keep them: the second call
//!   would wait for ever). A call counts
//!   itself before it waits and uncounts itself after it released its
//!   slots, so the count is not 0 while any call waits. (A holder that
//!   reads 0 before the last call's slots are free fails its swap and
//!   tries again at its next burst.)
//! * A held slot is given back when its holder is dropped (a worker that
//!   returns), and a holder that stops polling delays the control path
//!   until it polls again or is dropped: the workers poll, or sleep a
//!   bounded time when idle. So a thread must not change a port one of
//!   whose queues it holds (it would wait for itself): drop the holder
//!   first. A wait of over a second is logged.
//!
//! Each slot sits on its own cache line so lcores polling neighbouring
//! queues do not share one.

use std::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use dpdk_sys as sys;

/// Queues per direction per port that gatewayd supports.
pub const MAX_QUEUES: u16 = 64;
const MAX_PORTS: usize = sys::RTE_MAX_ETHPORTS as usize;

#[repr(align(64))]
struct Slot(AtomicBool);

/// What only the control path writes: one line per port, read by pollers.
#[repr(align(64))]
struct Control {
    /// Control calls that want (or hold) every slot of the port.
    wanted: AtomicU32,
    /// Configured queue counts; written only with all slots claimed.
    nb_rx: AtomicU16,
    nb_tx: AtomicU16,
}

struct PortQueues {
    rx: [Slot; MAX_QUEUES as usize],
    tx: [Slot; MAX_QUEUES as usize],
    ctl: Control,
}

static TABLE: [PortQueues; MAX_PORTS] = [const {
    PortQueues {
        rx: [const { Slot(AtomicBool::new(false)) }; MAX_QUEUES as usize],
        tx: [const { Slot(AtomicBool::new(false)) }; MAX_QUEUES as usize],
        ctl: Control { wanted: AtomicU32::new(0), nb_rx: AtomicU16::new(0), nb_tx: AtomicU16::new(0) },
    }
}; MAX_PORTS];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Rx = 0,
    Tx = 1,
}

/// The slot of queue `q` of `port` and the port's control line; `None`
/// past the table.
#[inline]
fn slot(port: u16, q: u16, dir: Dir) -> Option<(&'static AtomicBool, &'static Control)> {
    let pq = TABLE.get(usize::from(port))?;
    let slots = match dir {
        Dir::Rx => &pq.rx,
        Dir::Tx => &pq.tx,
    };
    Some((&slots.get(usize::from(q))?.0, &pq.ctl))
}

/// Whether `q` is below the configured count; read under a slot.
#[inline]
fn configured(ctl: &Control, q: u16, dir: Dir) -> bool {
    // Read under the claim: the control path changes it only holding all.
    let nb = match dir {
        Dir::Rx => &ctl.nb_rx,
        Dir::Tx => &ctl.nb_tx,
    };
    q < nb.load(Relaxed)
}

/// A queue claimed for one burst; released on drop.
pub(crate) struct QueueClaim(&'static AtomicBool);

impl Drop for QueueClaim {
    #[inline]
    fn drop(&mut self) {
        self.0.store(false, Release);
    }
}

/// Claims queue `q` of `port` for one burst: `None` if the queue is not
/// configured or another thread is using it (or the port is changing).
#[inline]
pub(crate) fn claim(port: u16, q: u16, dir: Dir) -> Option<QueueClaim> {
    let (slot, ctl) = slot(port, q, dir)?;
    if ctl.wanted.load(Relaxed) != 0 || slot.swap(true, Acquire) {
        return None;
    }
    let claim = QueueClaim(slot);
    configured(ctl, q, dir).then_some(claim)
}

/// The rx and the tx slot of one queue id of a port, held by one thread
/// across bursts (see the module docs): each claimed at its direction's
/// first burst, both given back at the first burst of either direction
/// that sees the control path want the port, and on drop.
pub(crate) struct HeldPair {
    /// The rx and tx slots and the port's control line; `None` past the
    /// table.
    at: Option<([&'static AtomicBool; 2], &'static Control)>,
    q: u16,
    /// Per direction (`Dir as usize`): whether this holds the slot, and
    /// then whether the queue is configured (the count cannot change while
    /// the slot is held).
    held: [bool; 2],
    usable: [bool; 2],
}

impl HeldPair {
    /// Queue `q` of `port`, not claimed yet: [`HeldPair::ready`] claims.
    pub(crate) fn new(port: u16, q: u16) -> HeldPair {
        let at = match (slot(port, q, Dir::Rx), slot(port, q, Dir::Tx)) {
            (Some((rx, ctl)), Some((tx, _))) => Some(([rx, tx], ctl)),
            _ => None,
        };
        HeldPair { at, q, held: [false; 2], usable: [false; 2] }
    }

    /// Called before each burst in direction `dir`: whether it may run.
    /// Gives both slots back if the control path wants the port (and then
    /// says no), claims `dir`'s if not held (no waiting: no if another
    /// thread holds it), and says no if the queue is not configured
    /// (keeping the slot: nothing can configure it without taking it back
    /// first).
    #[inline]
    pub(crate) fn ready(&mut self, dir: Dir) -> bool {
        let Some((slots, ctl)) = self.at else { return false };
        if ctl.wanted.load(Relaxed) != 0 {
            self.give_back();
            return false;
        }
        let d = dir as usize;
        if !self.held[d] {
            if slots[d].swap(true, Acquire) {
                return false;
            }
            self.held[d] = true;
            self.usable[d] = configured(ctl, self.q, dir);
        }
        self.usable[d]
    }

    /// Whether this holds `dir`'s slot now.
    pub(crate) fn is_held(&self, dir: Dir) -> bool {
        self.held[dir as usize]
    }

    /// Gives back the slots held.
    #[cold]
    fn give_back(&mut self) {
        let Some((slots, _)) = self.at else { return };
        for (held, slot) in self.held.iter_mut().zip(slots) {
            if std::mem::take(held) {
                slot.store(false, Release);
            }
        }
    }
}

impl Drop for HeldPair {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Every queue of a port, claimed by the control path.
pub(crate) struct PortLock(&'static PortQueues);

/// Claims all queues of `port`, waiting for bursts in progress to end and
/// for the holders across bursts to give theirs back (at their next burst).
pub(crate) fn lock_port(port: u16) -> PortLock {
    let pq = &TABLE[usize::from(port)];
    pq.ctl.wanted.fetch_add(1, Relaxed);
    let start = std::time::Instant::now();
    let mut warned = false;
    for (i, slot) in pq.rx.iter().chain(pq.tx.iter()).enumerate() {
        while slot.0.swap(true, Acquire) {
            if !warned && start.elapsed() > std::time::Duration::from_secs(1) {
                warned = true;
                let (dir, q) = if i < pq.rx.len() { ("rx", i) } else { ("tx", i - pq.rx.len()) };
                tracing::warn!(
                    port,
                    queue = q,
                    dir,
                    "waiting over a second for a queue's holder to give it back"
                );
            }
            std::thread::yield_now();
        }
    }
    PortLock(pq)
}

impl PortLock {
    /// Records the configured queue counts (0, 0 when closed).
    pub(crate) fn set_counts(&self, rx: u16, tx: u16) {
        self.0.ctl.nb_rx.store(rx, Relaxed);
        self.0.ctl.nb_tx.store(tx, Relaxed);
    }
}

impl Drop for PortLock {
    fn drop(&mut self) {
        for slot in self.0.rx.iter().chain(self.0.tx.iter()) {
            slot.0.store(false, Release);
        }
        // After the slots: a holder claims again only once no control call
        // waits (see the module docs).
        self.0.ctl.wanted.fetch_sub(1, Relaxed);
    }
}
