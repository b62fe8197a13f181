//! The service table as workers see it: an immutable snapshot.
//!
//! The control plane builds a new [`Snapshot`] for every change and publishes
//! it through a [`Publisher`]; each worker checks one atomic generation
//! number between bursts and picks the new snapshot up when it changed. A
//! worker never writes to a snapshot, so reading it costs no shared-line
//! writes. Old snapshots are released by the control plane once every worker
//! has moved past them (see the control plane), so a worker never frees one.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gw_proto::{ClientAddr, ForwardMode, Scheduler, ServiceKey};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::sched::Prepared;
use crate::tcp_state::Timeouts;

/// A real server of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    /// Stable slot for per-worker statistics.
    pub slot: u32,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub mode: ForwardMode,
    pub weight: u32,
    /// `-x`/`-y` connection thresholds for the whole gateway (0 = none).
    pub upper: u32,
    pub lower: u32,
}

/// A virtual service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Stable slot for per-worker statistics and scheduler state.
    pub slot: u32,
    /// Changes whenever the service or its server list changes, so workers
    /// reset their scheduler cursor.
    pub version: u64,
    pub key: ServiceKey,
    pub scheduler: Scheduler,
    pub dests: Vec<Dest>,
    /// The scheduler's precomputed tables (`sched::Prepared`).
    pub prep: Prepared,
    /// FULLNAT local addresses, host order.
    pub laddrs: Vec<u32>,
    /// `-p`: persistence timeout in milliseconds.
    pub persistent_ms: Option<u64>,
    /// `-M`: persistence netmask, host order.
    pub netmask: u32,
    /// `-o`: one-packet scheduling.
    pub one_packet: bool,
    /// `-b`: scheduler flags.
    pub sched_flags: u8,
    /// `--toa`, `--proxy-protocol`: how FULLNAT TCP connections tell the
    /// real server the client's address ([`crate::client_addr`]).
    pub client_addr: ClientAddr,
}

/// Which part of a connection names the worker that owns it
/// (see [`crate::steer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    /// The client's address and port.
    Client,
    /// The client's address under the persistence netmask: a client's
    /// connections and its template share a worker.
    ClientNet(u32),
    /// The service's destination address (lblc, lblcr: their per-destination
    /// state then lives on one worker, as the kernel's single table).
    Destination(u32),
}

impl Service {
    /// How this service's connections are steered to a worker.
    pub fn steer(&self) -> Steer {
        match (self.scheduler, self.persistent_ms) {
            (Scheduler::Lblc | Scheduler::Lblcr, _) => Steer::Destination(u32::from(self.key.addr)),
            (_, Some(_)) => Steer::ClientNet(self.netmask),
            (_, None) => Steer::Client,
        }
    }
}

/// Lookup key of a service: (protocol number, VIP host order, port).
pub type SvcLookup = (u8, u32, u16);

/// Everything a worker needs to know about services, immutable.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub generation: u64,
    /// Session timeouts per state (`[timeouts]`, `gwctl --set`).
    pub timeouts: Timeouts,
    services: Vec<Arc<Service>>,
    by_key: FxHashMap<SvcLookup, u32>,
    /// VIPs and local addresses: the gateway answers ARP and ping for them.
    owned: FxHashSet<u32>,
    /// Local addresses only.
    lips: FxHashSet<u32>,
    /// Real-server slots that exist in this configuration, with their
    /// thresholds (`None`: no such server).
    live_dests: Vec<Option<(u32, u32)>>,
    /// (protocol, address, port) of NAT real servers, to name their
    /// replies that match no session and to steer their replies, with the
    /// persistence netmask of their service (if persistent).
    masq_dests: FxHashMap<SvcLookup, Steer>,
}

impl Snapshot {
    /// Builds a snapshot from services in listing order.
    pub fn new(generation: u64, services: Vec<Arc<Service>>, max_dests: usize) -> Snapshot {
        let mut s = Snapshot {
            generation,
            timeouts: Timeouts::default(),
            live_dests: vec![None; max_dests],
            ..Default::default()
        };
        for (i, svc) in services.iter().enumerate() {
            let k = svc.key;
            s.by_key.insert((k.proto.number(), u32::from(k.addr), k.port), i as u32);
            s.owned.insert(u32::from(k.addr));
            for l in &svc.laddrs {
                s.owned.insert(*l);
                s.lips.insert(*l);
            }
            for d in &svc.dests {
                if let Some(x) = s.live_dests.get_mut(d.slot as usize) {
                    *x = Some((d.upper, d.lower));
                }
                if crate::modes::replies_to_client(d.mode) {
                    s.masq_dests.insert((k.proto.number(), u32::from(d.addr), d.port), svc.steer());
                }
            }
        }
        s.services = services;
        s
    }

    /// The same snapshot with session timeouts `t`.
    pub fn with_timeouts(mut self, t: Timeouts) -> Snapshot {
        self.timeouts = t;
        self
    }

    /// The service for `addr:port`, else a port-0 ("all ports", always
    /// persistent) service on `addr`, as IPVS looks them up.
    #[inline]
    pub fn service(&self, proto: u8, addr: u32, port: u16) -> Option<&Service> {
        let i = self.by_key.get(&(proto, addr, port)).or_else(|| self.by_key.get(&(proto, addr, 0)))?;
        Some(&*self.services[*i as usize])
    }
    /// A VIP or local address of any service.
    #[inline]
    pub fn owns(&self, addr: u32) -> bool {
        self.owned.contains(&addr)
    }
    #[inline]
    pub fn is_laddr(&self, addr: u32) -> bool {
        self.lips.contains(&addr)
    }
    /// Whether `addr:port` is a NAT real server of a `proto` service.
    #[inline]
    pub fn is_masq_dest(&self, proto: u8, addr: u32, port: u16) -> bool {
        self.masq_dest(proto, addr, port).is_some()
    }
    /// A NAT real server: how its service's packets are steered.
    #[inline]
    pub fn masq_dest(&self, proto: u8, addr: u32, port: u16) -> Option<Steer> {
        if self.masq_dests.is_empty() {
            return None;
        }
        self.masq_dests.get(&(proto, addr, port)).copied()
    }
    #[inline]
    pub fn dest_live(&self, slot: u32) -> bool {
        self.dest_thresholds(slot).is_some()
    }
    /// (upper, lower) connection thresholds of a live real server.
    #[inline]
    pub fn dest_thresholds(&self, slot: u32) -> Option<(u32, u32)> {
        self.live_dests.get(slot as usize).copied().flatten()
    }
    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }
}

/// Hands snapshots from the control plane to the workers.
pub struct Publisher {
    generation: AtomicU64,
    current: Mutex<Arc<Snapshot>>,
}

impl Publisher {
    pub fn new(first: Arc<Snapshot>) -> Publisher {
        Publisher { generation: AtomicU64::new(first.generation), current: Mutex::new(first) }
    }
    /// Makes `s` the current snapshot; returns the one it replaces.
    pub fn publish(&self, s: Arc<Snapshot>) -> Arc<Snapshot> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let gen = s.generation;
        let old = std::mem::replace(&mut *cur, s);
        self.generation.store(gen, Ordering::Release);
        old
    }
    /// The current snapshot if its generation differs from `have`. One atomic
    /// load when nothing changed; the lock is taken only after a change.
    #[inline]
    pub fn newer_than(&self, have: u64) -> Option<Arc<Snapshot>> {
        if self.generation.load(Ordering::Acquire) == have {
            return None;
        }
        Some(self.current.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
