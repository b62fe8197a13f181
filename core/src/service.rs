//! The service table as workers see it: an immutable snapshot.
//!
//! The control plane builds a new [`Snapshot`] for every change and publishes
//! it through a [`Publisher`]; each worker checks one atomic generation
//! number between bursts and picks the new snapshot up when it changed. A
//! worker never writes to a snapshot, so reading it costs no shared-line
//! writes. Old snapshots are released by the control plane once every worker
//! has moved past them (see the control plane), so a worker never frees one.
//!
//! Deleted services and real servers whose sessions still live (the control
//! plane's trash, IPVS's `dest_trash`) stay in a snapshot in part
//! ([`Trash`]): their sessions keep forwarding and their replies keep being
//! steered, but no new connection is scheduled to them: they are not in any
//! service's `dests` and a trashed service is not found by
//! [`Snapshot::service`].
//!
//! IPv6 services (issue 17) live beside the IPv4 ones in maps of their own
//! keyed by `u128` addresses ([`Snapshot::service6`], [`Snapshot::owns6`],
//! [`Snapshot::is_laddr6`], [`Snapshot::masq_dest6`]), so the IPv4 lookups
//! stay as they were. A real server's address is an [`IpAddr`]: an IPv6
//! service's servers are IPv6 (FULLNAT66, NAT66, DR, TUN) or, for FULLNAT,
//! IPv4 (NAT64, with the service's IPv4 local addresses `laddrs`); its
//! IPv6 local addresses are `laddrs6`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gw_proto::{ClientAddr, ForwardMode, Scheduler, ServiceKey, TunnelEncap};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::sched::Prepared;
use crate::tcp_state::Timeouts;
use crate::wire::ipv4::Protocol;

/// A real server of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    /// Stable slot for per-worker statistics.
    pub slot: u32,
    /// IPv4 for an IPv4 service; IPv6, or IPv4 for FULLNAT (NAT64), for an
    /// IPv6 service.
    pub addr: IpAddr,
    pub port: u16,
    pub mode: ForwardMode,
    pub weight: u32,
    /// `-x`/`-y` connection thresholds for the whole gateway (0 = none).
    pub upper: u32,
    pub lower: u32,
}

impl Dest {
    /// The address as IPv4, host order (0 for an IPv6 server, which an
    /// IPv4 service never has).
    #[inline]
    pub fn addr4(&self) -> u32 {
        match self.addr {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(_) => 0,
        }
    }
    /// The address as IPv6, host order (`None` for an IPv4 server).
    #[inline]
    pub fn addr6(&self) -> Option<u128> {
        match self.addr {
            IpAddr::V6(a) => Some(u128::from(a)),
            IpAddr::V4(_) => None,
        }
    }
}

/// An address as the schedulers' 32-bit key ([`crate::sched::DestConf`]):
/// IPv4 as it is, IPv6 folded (the schedulers only hash and compare it).
pub fn sched_addr(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => fold32(u128::from(a)),
    }
}

/// 128 bits xor-folded to 32.
#[inline]
pub fn fold32(a: u128) -> u32 {
    let h = (a >> 64) as u64 ^ a as u64;
    (h >> 32) as u32 ^ h as u32
}

/// The mask of an IPv6 prefix length (`-M` of an IPv6 service), host order.
pub fn mask6(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
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
    /// FULLNAT local addresses toward IPv4 real servers, host order.
    pub laddrs: Vec<u32>,
    /// FULLNAT local addresses toward IPv6 real servers, host order.
    pub laddrs6: Vec<u128>,
    /// `-p`: persistence timeout in milliseconds.
    pub persistent_ms: Option<u64>,
    /// `-M`: persistence netmask of an IPv4 service, host order.
    pub netmask: u32,
    /// `-M`: persistence prefix of an IPv6 service as a mask, host order
    /// ([`mask6`]).
    pub netmask6: u128,
    /// `-o`: one-packet scheduling.
    pub one_packet: bool,
    /// `-b`: scheduler flags.
    pub sched_flags: u8,
    /// `--toa`, `--proxy-protocol`: how FULLNAT TCP connections tell the
    /// real server the client's address ([`crate::client_addr`]).
    pub client_addr: ClientAddr,
    /// `-j enable`: SYNPROXY for FULLNAT/NAT TCP ([`crate::synproxy`]).
    pub synproxy: bool,
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

/// [`Steer`] for IPv6 services: the same choices over `u128` addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer6 {
    Client,
    /// The client's address under the persistence prefix (a mask).
    ClientNet(u128),
    /// The VIP (lblc, lblcr).
    Destination(u128),
}

impl Steer6 {
    /// The steering of an IPv6 service (see [`Steer::of`]).
    pub fn of(scheduler: Scheduler, persistent: bool, mask: u128, vip: u128) -> Steer6 {
        match (scheduler, persistent) {
            (Scheduler::Lblc | Scheduler::Lblcr, _) => Steer6::Destination(vip),
            (_, true) => Steer6::ClientNet(mask),
            (_, false) => Steer6::Client,
        }
    }
}

impl Service {
    /// How this service's connections are steered to a worker.
    pub fn steer(&self) -> Steer {
        Steer::of(self.scheduler, self.persistent_ms.is_some(), self.netmask, vip4(&self.key).unwrap_or(0))
    }
    /// How this IPv6 service's connections are steered to a worker.
    pub fn steer6(&self) -> Steer6 {
        Steer6::of(self.scheduler, self.persistent_ms.is_some(), self.netmask6, vip6(&self.key).unwrap_or(0))
    }
}

/// The VIP of `key`, host order, if it is IPv4.
#[inline]
pub fn vip4(key: &ServiceKey) -> Option<u32> {
    key.v4().map(u32::from)
}

/// The VIP of `key`, host order, if it is IPv6.
#[inline]
pub fn vip6(key: &ServiceKey) -> Option<u128> {
    match key.addr {
        IpAddr::V6(a) => Some(u128::from(a)),
        IpAddr::V4(_) => None,
    }
}

impl Steer {
    /// The steering of a service with `scheduler`, persistent or not (with
    /// `netmask`), on VIP `vip` (host order).
    pub fn of(scheduler: Scheduler, persistent: bool, netmask: u32, vip: u32) -> Steer {
        match (scheduler, persistent) {
            (Scheduler::Lblc | Scheduler::Lblcr, _) => Steer::Destination(vip),
            (_, true) => Steer::ClientNet(netmask),
            (_, false) => Steer::Client,
        }
    }
}

/// Lookup key of a service: (protocol number, VIP host order, port).
pub type SvcLookup = (u8, u32, u16);
/// Lookup key of an IPv6 service: (protocol number, VIP host order, port).
pub type SvcLookup6 = (u8, u128, u16);

/// What a real-server slot is in a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum DestSlot {
    /// No such server: its sessions' packets are dropped (`DestUnavailable`).
    #[default]
    Gone,
    /// A configured server with its (upper, lower) thresholds.
    Live(u32, u32),
    /// A deleted server whose sessions still live (the trash): they keep
    /// forwarding, nothing new is scheduled to it.
    Trashed,
}

/// A deleted real server that sessions still reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashedDest {
    pub slot: u32,
    /// Protocol number of its service.
    pub proto: u8,
    pub addr: IpAddr,
    pub port: u16,
    pub mode: ForwardMode,
    /// How its service's connections were steered (NAT replies follow it),
    /// for an IPv4 service ...
    pub steer: Steer,
    /// ... and for an IPv6 one.
    pub steer6: Steer6,
    /// The local addresses its FULLNAT sessions may use, host order.
    pub laddrs: Vec<u32>,
    pub laddrs6: Vec<u128>,
}

/// A deleted service that sessions still reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashedService {
    pub key: ServiceKey,
    pub steer: Steer,
    pub steer6: Steer6,
}

/// The part of the control plane's trash that established sessions need:
/// their servers keep forwarding, their VIPs and local addresses stay the
/// gateway's, their client packets and NAT replies stay steered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trash {
    pub dests: Vec<TrashedDest>,
    pub services: Vec<TrashedService>,
}

/// An address family's local addresses, as the packet path asks about
/// them ([`Snapshot::is_laddr`]: every packet's destination). Each address
/// has one of 64 bits ([`LipAddr::bit`]); a bit that one address holds
/// keeps that address beside it, so the answer is one load and one compare
/// (a client's packet to a VIP: the bit is clear; a FULLNAT reply: the
/// address at its bit). Only a bit that several addresses share asks the
/// set (a gateway with dozens of local addresses).
#[derive(Debug)]
struct Lips<A> {
    /// The bits some address holds, and those more than one does.
    held: u64,
    shared: u64,
    /// The address of each bit that exactly one holds.
    at: [A; 64],
    /// Every local address.
    set: FxHashSet<A>,
}

/// An address [`Lips`] keeps: its bit, the top 6 bits of a multiplicative
/// hash, so that addresses next to each other land on different bits.
trait LipAddr: Copy + Eq + std::hash::Hash + Default {
    fn bit(self) -> usize;
}

impl LipAddr for u32 {
    /// Knuth's 2^32/phi.
    #[inline(always)]
    fn bit(self) -> usize {
        (self.wrapping_mul(0x9e37_79b1) >> 26) as usize
    }
}

impl LipAddr for u128 {
    /// The two halves folded, then 2^64/phi.
    #[inline(always)]
    fn bit(self) -> usize {
        ((self as u64 ^ (self >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize
    }
}

impl<A: LipAddr> Default for Lips<A> {
    fn default() -> Self {
        Lips { held: 0, shared: 0, at: [A::default(); 64], set: FxHashSet::default() }
    }
}

impl<A: LipAddr> Lips<A> {
    #[inline(always)]
    fn contains(&self, addr: A) -> bool {
        let b = addr.bit();
        let m = 1u64 << b;
        if self.held & m == 0 {
            return false;
        }
        if self.shared & m == 0 {
            return self.at[b] == addr;
        }
        self.set.contains(&addr)
    }

    fn insert(&mut self, addr: A) {
        if !self.set.insert(addr) {
            return;
        }
        let b = addr.bit();
        let m = 1u64 << b;
        if self.held & m != 0 {
            self.shared |= m;
        }
        self.held |= m;
        self.at[b] = addr;
    }
}

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
    lips: Lips<u32>,
    /// IPv4 local addresses that NAT64 sessions (an IPv6 service's, with
    /// IPv4 real servers) may hold, so that an IPv4 FULLNAT bind checks the
    /// IPv6 table too for them ([`Snapshot::nat64_laddr`]); a trashed IPv4
    /// server's are counted in whatever its service's family.
    nat64_lips: FxHashSet<u32>,
    /// Real-server slots: live (with thresholds), trashed or gone.
    dest_slots: Vec<DestSlot>,
    /// Tunnel types of real-server slots (`--tun-type`), live or trashed;
    /// empty, or shorter than the slots, when all are ipip.
    dest_tunnels: Vec<TunnelEncap>,
    /// Trashed services by key: only steering asks (see [`Self::trashed_steer`]).
    trashed_services: FxHashMap<SvcLookup, Steer>,
    /// (protocol, address, port) of NAT real servers, to name their
    /// replies that match no session and to steer their replies, with the
    /// persistence netmask of their service (if persistent).
    masq_dests: FxHashMap<SvcLookup, Steer>,
    /// Addresses of NAT real servers (their fragments are reassembled).
    masq_addrs: FxHashSet<u32>,
    /// The same for IPv6 services.
    by_key6: FxHashMap<SvcLookup6, u32>,
    owned6: FxHashSet<u128>,
    lips6: Lips<u128>,
    trashed_services6: FxHashMap<SvcLookup6, Steer6>,
    masq_dests6: FxHashMap<SvcLookup6, Steer6>,
    masq_addrs6: FxHashSet<u128>,
}

impl Snapshot {
    /// Builds a snapshot from services in listing order.
    pub fn new(generation: u64, services: Vec<Arc<Service>>, max_dests: usize) -> Snapshot {
        let mut s = Snapshot {
            generation,
            timeouts: Timeouts::default(),
            dest_slots: vec![DestSlot::Gone; max_dests],
            ..Default::default()
        };
        for (i, svc) in services.iter().enumerate() {
            let k = svc.key;
            for l in &svc.laddrs {
                s.owned.insert(*l);
                s.insert_lip(*l);
            }
            for l in &svc.laddrs6 {
                s.owned6.insert(*l);
                s.insert_lip6(*l);
            }
            if k.addr.is_ipv6() {
                s.nat64_lips.extend(&svc.laddrs);
            }
            for d in &svc.dests {
                if let Some(x) = s.dest_slots.get_mut(d.slot as usize) {
                    *x = DestSlot::Live(d.upper, d.lower);
                }
            }
            match k.addr {
                IpAddr::V4(vip) => {
                    let vip = u32::from(vip);
                    s.by_key.insert((k.proto.number(), vip, k.port), i as u32);
                    s.owned.insert(vip);
                    for d in svc.dests.iter().filter(|d| crate::modes::replies_to_client(d.mode)) {
                        s.masq_dests.insert((k.proto.number(), d.addr4(), d.port), svc.steer());
                        s.masq_addrs.insert(d.addr4());
                    }
                }
                IpAddr::V6(vip) => {
                    let vip = u128::from(vip);
                    s.by_key6.insert((k.proto.number(), vip, k.port), i as u32);
                    s.owned6.insert(vip);
                    for d in svc.dests.iter().filter(|d| crate::modes::replies_to_client(d.mode)) {
                        if let Some(a) = d.addr6() {
                            s.masq_dests6.insert((k.proto.number(), a, d.port), svc.steer6());
                            s.masq_addrs6.insert(a);
                        }
                    }
                }
            }
        }
        s.services = services;
        s
    }

    /// The same snapshot keeping what the sessions of `trash` need: their
    /// servers forward, their addresses stay owned, their packets steered.
    /// A live service or server of the same key or slot wins.
    pub fn with_trash(mut self, trash: &Trash) -> Snapshot {
        for d in &trash.dests {
            if let Some(x @ DestSlot::Gone) = self.dest_slots.get_mut(d.slot as usize) {
                *x = DestSlot::Trashed;
            }
            if crate::modes::replies_to_client(d.mode) {
                match d.addr {
                    IpAddr::V4(a) => {
                        self.masq_dests.entry((d.proto, u32::from(a), d.port)).or_insert(d.steer);
                    }
                    IpAddr::V6(a) => {
                        self.masq_dests6.entry((d.proto, u128::from(a), d.port)).or_insert(d.steer6);
                    }
                }
            }
            for l in &d.laddrs {
                self.owned.insert(*l);
                self.insert_lip(*l);
            }
            if d.addr.is_ipv4() {
                // Maybe a NAT64 server: the trash does not say.
                self.nat64_lips.extend(&d.laddrs);
            }
            for l in &d.laddrs6 {
                self.owned6.insert(*l);
                self.insert_lip6(*l);
            }
        }
        for t in &trash.services {
            match t.key.addr {
                IpAddr::V4(vip) => {
                    let k = (t.key.proto.number(), u32::from(vip), t.key.port);
                    self.owned.insert(k.1);
                    if !self.by_key.contains_key(&k) {
                        self.trashed_services.insert(k, t.steer);
                    }
                }
                IpAddr::V6(vip) => {
                    let k = (t.key.proto.number(), u128::from(vip), t.key.port);
                    self.owned6.insert(k.1);
                    if !self.by_key6.contains_key(&k) {
                        self.trashed_services6.insert(k, t.steer6);
                    }
                }
            }
        }
        self
    }

    /// The same snapshot with the tunnel types of real-server slots
    /// (`(slot, type)`, trashed servers then live ones: a later entry for
    /// a slot wins; a slot never named is ipip).
    pub fn with_tunnels(mut self, tunnels: impl IntoIterator<Item = (u32, TunnelEncap)>) -> Snapshot {
        for (slot, t) in tunnels {
            let slot = slot as usize;
            if slot >= self.dest_slots.len() || (t.is_ipip() && slot >= self.dest_tunnels.len()) {
                continue;
            }
            if self.dest_tunnels.len() <= slot {
                self.dest_tunnels.resize(slot + 1, TunnelEncap::Ipip);
            }
            self.dest_tunnels[slot] = t;
        }
        self
    }

    /// The same snapshot with session timeouts `t`.
    pub fn with_timeouts(mut self, t: Timeouts) -> Snapshot {
        self.timeouts = t;
        self
    }

    /// The service for `addr:port`, else a port-0 ("all ports", always
    /// persistent) service on `addr`, as IPVS looks them up.
    #[inline]
    pub fn service(&self, proto: Protocol, addr: u32, port: u16) -> Option<&Service> {
        self.service_slot(proto, addr, port).map(|i| self.service_at(i))
    }
    /// [`Snapshot::service`] in two steps: where the service is in this
    /// snapshot, which a caller that needs it twice (a new connection:
    /// SYNPROXY or not, then its session) looks up once.
    #[inline]
    pub fn service_slot(&self, proto: Protocol, addr: u32, port: u16) -> Option<u32> {
        let proto = u8::from(proto);
        self.by_key.get(&(proto, addr, port)).or_else(|| self.by_key.get(&(proto, addr, 0))).copied()
    }
    /// The service of exactly `key`, either family (no port-0 fallback):
    /// the same service in another snapshot.
    pub fn find(&self, key: &ServiceKey) -> Option<&Service> {
        let p = key.proto.number();
        let i = match key.addr {
            IpAddr::V4(a) => self.by_key.get(&(p, u32::from(a), key.port)),
            IpAddr::V6(a) => self.by_key6.get(&(p, u128::from(a), key.port)),
        }?;
        Some(&*self.services[*i as usize])
    }
    /// The service [`Snapshot::service_slot`] found.
    #[inline]
    pub fn service_at(&self, slot: u32) -> &Service {
        &self.services[slot as usize]
    }
    /// A VIP or local address of any service.
    #[inline]
    pub fn owns(&self, addr: u32) -> bool {
        self.owned.contains(&addr)
    }
    #[inline]
    pub fn is_laddr(&self, addr: u32) -> bool {
        self.lips.contains(addr)
    }
    /// Whether NAT64 sessions may hold ports of IPv4 local address `lip`
    /// (see `nat64_lips`).
    #[inline]
    pub fn nat64_laddr(&self, lip: u32) -> bool {
        !self.nat64_lips.is_empty() && self.nat64_lips.contains(&lip)
    }
    /// Adds local address `l` (the set and its filter).
    fn insert_lip(&mut self, l: u32) {
        self.lips.insert(l);
    }
    /// Whether `addr:port` is a NAT real server of a `proto` service.
    #[inline]
    pub fn is_masq_dest(&self, proto: Protocol, addr: u32, port: u16) -> bool {
        self.masq_dest(proto, addr, port).is_some()
    }
    /// A NAT real server: how its service's packets are steered.
    #[inline]
    pub fn masq_dest(&self, proto: Protocol, addr: u32, port: u16) -> Option<Steer> {
        if self.masq_dests.is_empty() {
            return None;
        }
        let proto = u8::from(proto);
        self.masq_dests.get(&(proto, addr, port)).copied()
    }
    /// Whether `addr` is the address of a NAT real server.
    #[inline]
    pub fn is_masq_addr(&self, addr: u32) -> bool {
        !self.masq_addrs.is_empty() && self.masq_addrs.contains(&addr)
    }
    /// The tunnel type of real server `slot` (ipip unless set with
    /// [`Self::with_tunnels`]).
    #[inline]
    pub fn dest_tunnel(&self, slot: u32) -> TunnelEncap {
        self.dest_tunnels.get(slot as usize).copied().unwrap_or_default()
    }
    /// Whether real server `slot` is configured (not deleted, not trashed).
    #[inline]
    pub fn dest_live(&self, slot: u32) -> bool {
        self.dest_thresholds(slot).is_some()
    }
    /// Whether sessions of real server `slot` forward: it is configured, or
    /// deleted but in the trash (as IPVS takes a trashed server back with
    /// its connections; see the crate docs of the control plane).
    #[inline]
    pub fn dest_forwards(&self, slot: u32) -> bool {
        matches!(self.dest_slots.get(slot as usize), Some(DestSlot::Live(..) | DestSlot::Trashed))
    }
    /// (upper, lower) connection thresholds of a live real server.
    #[inline]
    pub fn dest_thresholds(&self, slot: u32) -> Option<(u32, u32)> {
        match self.dest_slots.get(slot as usize) {
            Some(DestSlot::Live(u, l)) => Some((*u, *l)),
            _ => None,
        }
    }
    /// How the connections of a trashed (deleted, sessions still live)
    /// service `addr:port` (or port 0 on `addr`) are steered. Never asked
    /// on the packet path unless no live service matched.
    #[inline]
    pub fn trashed_steer(&self, proto: Protocol, addr: u32, port: u16) -> Option<Steer> {
        if self.trashed_services.is_empty() {
            return None;
        }
        let proto = u8::from(proto);
        let t = &self.trashed_services;
        t.get(&(proto, addr, port)).or_else(|| t.get(&(proto, addr, 0))).copied()
    }
    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// The IPv6 service for `addr:port`, else a port-0 service on `addr`
    /// (as [`Self::service`]).
    #[inline]
    pub fn service6(&self, proto: Protocol, addr: u128, port: u16) -> Option<&Service> {
        if self.by_key6.is_empty() {
            return None;
        }
        let proto = u8::from(proto);
        let i = self.by_key6.get(&(proto, addr, port)).or_else(|| self.by_key6.get(&(proto, addr, 0)))?;
        Some(&*self.services[*i as usize])
    }
    /// An IPv6 VIP or IPv6 local address of any service.
    #[inline]
    pub fn owns6(&self, addr: u128) -> bool {
        !self.owned6.is_empty() && self.owned6.contains(&addr)
    }
    /// An IPv6 local address of any service.
    #[inline]
    pub fn is_laddr6(&self, addr: u128) -> bool {
        self.lips6.contains(addr)
    }
    /// Adds IPv6 local address `l` (the set and its filter).
    fn insert_lip6(&mut self, l: u128) {
        self.lips6.insert(l);
    }
    /// An IPv6 NAT real server: how its service's packets are steered.
    #[inline]
    pub fn masq_dest6(&self, proto: Protocol, addr: u128, port: u16) -> Option<Steer6> {
        if self.masq_dests6.is_empty() {
            return None;
        }
        self.masq_dests6.get(&(u8::from(proto), addr, port)).copied()
    }
    /// Whether `addr` is the address of an IPv6 NAT real server.
    #[inline]
    pub fn is_masq_addr6(&self, addr: u128) -> bool {
        !self.masq_addrs6.is_empty() && self.masq_addrs6.contains(&addr)
    }
    /// How the connections of a trashed IPv6 service are steered (see
    /// [`Self::trashed_steer`]).
    #[inline]
    pub fn trashed_steer6(&self, proto: Protocol, addr: u128, port: u16) -> Option<Steer6> {
        if self.trashed_services6.is_empty() {
            return None;
        }
        let proto = u8::from(proto);
        let t = &self.trashed_services6;
        t.get(&(proto, addr, port)).or_else(|| t.get(&(proto, addr, 0))).copied()
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

#[cfg(test)]
mod tests {
    use gw_proto::Protocol;

    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::sched::DestConf;

    fn service(slot: u32, port: u16, dests: &[(u32, u8)]) -> Service {
        let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port };
        let dests: Vec<Dest> = dests
            .iter()
            .map(|&(slot, last)| Dest {
                slot,
                addr: Ipv4Addr::new(198, 18, 1, last).into(),
                port: 80,
                mode: ForwardMode::Masq,
                weight: 1,
                upper: 0,
                lower: 0,
            })
            .collect();
        let confs: Vec<DestConf> = dests
            .iter()
            .map(|d| DestConf { weight: 1, last_weight: 1, addr: d.addr4(), port: d.port, id: d.slot })
            .collect();
        Service {
            slot,
            version: 1,
            key,
            scheduler: Scheduler::Rr,
            prep: Prepared::build(Scheduler::Rr, 0, &confs),
            dests,
            laddrs: vec![],
            laddrs6: vec![],
            persistent_ms: None,
            netmask: u32::MAX,
            netmask6: u128::MAX,
            one_packet: false,
            sched_flags: 0,
            client_addr: ClientAddr::None,
            synproxy: false,
        }
    }

    #[test]
    fn trashed_servers_forward_but_are_neither_live_nor_scheduled_and_a_live_slot_wins() {
        let vip = u32::from(Ipv4Addr::new(198, 18, 0, 100));
        let lip = u32::from(Ipv4Addr::new(198, 18, 1, 10));
        let trash = Trash {
            dests: vec![
                TrashedDest {
                    slot: 3,
                    proto: 6,
                    addr: Ipv4Addr::new(198, 18, 1, 3).into(),
                    port: 80,
                    mode: ForwardMode::Masq,
                    steer: Steer::ClientNet(0xffff_ff00),
                    laddrs: vec![lip],
                    laddrs6: vec![],
                    steer6: Steer6::Client,
                },
                // Slot 0 is live again (re-added): the live entry wins.
                TrashedDest {
                    slot: 0,
                    proto: 6,
                    addr: Ipv4Addr::new(198, 18, 1, 2).into(),
                    port: 80,
                    mode: ForwardMode::Masq,
                    steer: Steer::ClientNet(0),
                    laddrs: vec![],
                    laddrs6: vec![],
                    steer6: Steer6::Client,
                },
            ],
            services: vec![TrashedService {
                key: ServiceKey {
                    proto: Protocol::Tcp,
                    addr: Ipv4Addr::new(198, 18, 0, 100).into(),
                    port: 81,
                },
                steer: Steer::Client,
                steer6: Steer6::Client,
            }],
        };
        let live = Arc::new(service(0, 80, &[(0, 2)]));
        let snap = Snapshot::new(1, vec![live], 8).with_trash(&trash);
        // Slot 3: deleted, sessions still live.
        assert!(snap.dest_forwards(3));
        assert!(!snap.dest_live(3));
        assert_eq!(snap.dest_thresholds(3), None);
        // Slot 0: live; slot 5: nothing.
        assert!(snap.dest_live(0) && snap.dest_forwards(0));
        assert!(!snap.dest_forwards(5) && !snap.dest_forwards(100));
        // Only the live service schedules; the trashed one only steers.
        assert_eq!(snap.service(crate::wire::ipv4::Protocol::Tcp, vip, 80).map(|s| s.dests.len()), Some(1));
        assert!(snap.service(crate::wire::ipv4::Protocol::Tcp, vip, 81).is_none());
        assert_eq!(snap.trashed_steer(crate::wire::ipv4::Protocol::Tcp, vip, 81), Some(Steer::Client));
        assert_eq!(snap.trashed_steer(crate::wire::ipv4::Protocol::Tcp, vip, 80), None);
        // Its NAT replies keep their steering; the live server's stays as it is.
        assert_eq!(
            snap.masq_dest(crate::wire::ipv4::Protocol::Tcp, u32::from(Ipv4Addr::new(198, 18, 1, 3)), 80),
            Some(Steer::ClientNet(0xffff_ff00))
        );
        assert_eq!(
            snap.masq_dest(crate::wire::ipv4::Protocol::Tcp, u32::from(Ipv4Addr::new(198, 18, 1, 2)), 80),
            Some(Steer::Client)
        );
        // Its local address stays the gateway's.
        assert!(snap.owns(lip) && snap.is_laddr(lip));
        let plain = Snapshot::new(1, vec![], 8);
        assert!(
            !plain.dest_forwards(3)
                && plain.trashed_steer(crate::wire::ipv4::Protocol::Tcp, vip, 81).is_none()
        );
    }

    /// The local addresses' bits never hide a local address, nor take
    /// another for one: with 100 local addresses (more than the 64 bits)
    /// many bits are shared, and across the /22 scanned the set decides
    /// for the addresses of shared bits, the compare with the bit's one
    /// address for the others.
    #[test]
    fn is_laddr_is_exact_with_its_bits() {
        let base = u32::from(Ipv4Addr::new(198, 18, 4, 0));
        let lips: Vec<u32> = (0..100).map(|k| base + 7 * k + 1).collect();
        let mut svc = service(0, 80, &[(0, 2)]);
        svc.laddrs = lips[..50].to_vec();
        let trash = Trash {
            dests: vec![TrashedDest {
                slot: 3,
                proto: 6,
                addr: Ipv4Addr::new(198, 18, 1, 3).into(),
                port: 80,
                mode: ForwardMode::FullNat,
                steer: Steer::Client,
                laddrs: lips[50..].to_vec(),
                laddrs6: vec![],
                steer6: Steer6::Client,
            }],
            services: vec![],
        };
        let snap = Snapshot::new(1, vec![Arc::new(svc)], 8).with_trash(&trash);
        let (mut by_set, mut by_compare) = (0, 0);
        for a in base - 512..base + 1024 {
            assert_eq!(snap.is_laddr(a), lips.contains(&a), "{}", Ipv4Addr::from(a));
            let m = 1u64 << a.bit();
            by_set += usize::from(snap.lips.shared & m != 0);
            by_compare += usize::from(snap.lips.held & !snap.lips.shared & m != 0 && !lips.contains(&a));
        }
        assert!(by_set > 40 && by_compare > 40, "both ways exercised ({by_set}, {by_compare})");
        let none = Snapshot::new(1, vec![], 8);
        assert!((base..base + 300).all(|a| !none.is_laddr(a)) && none.lips.held == 0);
    }

    /// As [`is_laddr_is_exact_with_its_bits`] for IPv6: local addresses
    /// of a service and of a trashed server, scanned across their /64 and
    /// a second prefix with the same interface identifiers.
    #[test]
    fn is_laddr6_is_exact_with_its_bits() {
        let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 4, 0, 0, 0, 0));
        let other = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 5, 0, 0, 0, 0));
        let lips: Vec<u128> = (0..100).map(|k| base + 7 * k + 1).collect();
        let mut svc = service(0, 80, &[(0, 2)]);
        svc.laddrs6 = lips[..50].to_vec();
        let trash = Trash {
            dests: vec![TrashedDest {
                slot: 3,
                proto: 6,
                addr: Ipv4Addr::new(198, 18, 1, 3).into(),
                port: 80,
                mode: ForwardMode::FullNat,
                steer: Steer::Client,
                laddrs: vec![],
                laddrs6: lips[50..].to_vec(),
                steer6: Steer6::Client,
            }],
            services: vec![],
        };
        let snap = Snapshot::new(1, vec![Arc::new(svc)], 8).with_trash(&trash);
        let (mut by_set, mut by_compare) = (0, 0);
        for a in (base..base + 1024).chain(other..other + 512) {
            assert_eq!(snap.is_laddr6(a), lips.contains(&a), "{}", Ipv6Addr::from(a));
            let m = 1u64 << a.bit();
            by_set += usize::from(snap.lips6.shared & m != 0);
            by_compare += usize::from(snap.lips6.held & !snap.lips6.shared & m != 0 && !lips.contains(&a));
        }
        assert!(by_set > 40 && by_compare > 40, "both ways exercised ({by_set}, {by_compare})");
        let none = Snapshot::new(1, vec![], 8);
        assert!((base..base + 300).all(|a| !none.is_laddr6(a)) && none.lips6.held == 0);
    }
}
