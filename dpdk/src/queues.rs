//! Which rx/tx queues of each port exist, and who is using one right now.
//!
//! DPDK's burst functions do not check the queue id (an id past the
//! configured ones reads out of bounds or a NULL queue) and are not
//! thread-safe per queue; and a port must not be stopped, reconfigured or
//! closed while a burst runs on it. `Port` is a `Copy` id usable from any
//! thread, so this table enforces both in safe code:
//! * a burst *claims* its queue with one atomic swap (no waiting: if the
//!   queue is busy the burst does nothing) and checks the id against the
//!   configured count;
//! * the control path claims every queue of the port, waiting for bursts in
//!   progress, before it changes the port.
//!
//! Each flag sits on its own cache line so lcores polling neighbouring
//! queues do not share one. The cost on the hot path is one uncontended
//! swap and one store per burst.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use dpdk_sys as sys;

/// Queues per direction per port that gatewayd supports.
pub const MAX_QUEUES: u16 = 64;
const MAX_PORTS: usize = sys::RTE_MAX_ETHPORTS as usize;

#[repr(align(64))]
struct Slot(AtomicBool);

struct PortQueues {
    rx: [Slot; MAX_QUEUES as usize],
    tx: [Slot; MAX_QUEUES as usize],
    /// Configured queue counts; written only with all slots claimed.
    nb_rx: AtomicU16,
    nb_tx: AtomicU16,
}

static TABLE: [PortQueues; MAX_PORTS] = [const {
    PortQueues {
        rx: [const { Slot(AtomicBool::new(false)) }; MAX_QUEUES as usize],
        tx: [const { Slot(AtomicBool::new(false)) }; MAX_QUEUES as usize],
        nb_rx: AtomicU16::new(0),
        nb_tx: AtomicU16::new(0),
    }
}; MAX_PORTS];

#[derive(Clone, Copy)]
pub(crate) enum Dir {
    Rx,
    Tx,
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
    let pq = TABLE.get(usize::from(port))?;
    let (slots, nb) = match dir {
        Dir::Rx => (&pq.rx, &pq.nb_rx),
        Dir::Tx => (&pq.tx, &pq.nb_tx),
    };
    let slot = &slots.get(usize::from(q))?.0;
    if slot.swap(true, Acquire) {
        return None;
    }
    let claim = QueueClaim(slot);
    // Read under the claim: the control path changes it only holding all.
    (q < nb.load(Relaxed)).then_some(claim)
}

/// Every queue of a port, claimed by the control path.
pub(crate) struct PortLock(&'static PortQueues);

/// Claims all queues of `port`, waiting for bursts in progress to end.
pub(crate) fn lock_port(port: u16) -> PortLock {
    let pq = &TABLE[usize::from(port)];
    for slot in pq.rx.iter().chain(pq.tx.iter()) {
        while slot.0.swap(true, Acquire) {
            std::thread::yield_now();
        }
    }
    PortLock(pq)
}

impl PortLock {
    /// Records the configured queue counts (0, 0 when closed).
    pub(crate) fn set_counts(&self, rx: u16, tx: u16) {
        self.0.nb_rx.store(rx, Relaxed);
        self.0.nb_tx.store(tx, Relaxed);
    }
}

impl Drop for PortLock {
    fn drop(&mut self) {
        for slot in self.0.rx.iter().chain(self.0.tx.iter()) {
            slot.0.store(false, Release);
        }
    }
}
