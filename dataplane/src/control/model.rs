//! The service model: services, their real servers and local addresses,
//! the statistics slots they own, and how one change request alters them.
//!
//! Invariants:
//! - The model is only touched behind [`Control`]'s mutex; workers never see
//!   it, only the immutable [`Snapshot`] that [`Control::publish`] builds from
//!   it after a change.
//! - [`Control::apply`] validates before it changes anything: a refused
//!   request leaves the model as it was (a `Restore` keeps what its earlier
//!   requests did, as `ipvsadm -R` does).
//! - Each service and real server owns a slot in the per-worker counter
//!   arrays. A deleted one goes to the trash ([`super::trash`]) with its
//!   slot; re-adding the same one takes it back with its slot, so its
//!   sessions and counters continue. A slot is handed to another service or
//!   server only once no session references it; a fresh slot's counters are
//!   read relative to a base taken when it was handed out.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use gw_proto::{DestSpec, ErrorKind, Request, Response, Scheduler, ServiceKey, ServiceSpec, Stats};

use gw_core::sched::{DestConf, Prepared};
use gw_core::service::{Dest, Service, Snapshot};
use gw_core::tcp_state::Timeouts;

use super::neighbours::NeighPort;
use super::stats::RateEst;
use super::trash::TrashBin;
use super::{err, no_service, Control};

#[derive(Clone, Debug)]
pub(super) struct DestEntry {
    pub(super) spec: DestSpec,
    pub(super) slot: u32,
    /// The last non-zero weight (IPVS's `last_weight`): Maglev builds its
    /// table from it, so quiescing a server (weight 0) moves no one else.
    pub(super) last_weight: u32,
}

#[derive(Clone, Debug)]
pub(super) struct SvcEntry {
    pub(super) slot: u32,
    pub(super) version: u64,
    pub(super) spec: ServiceSpec,
    pub(super) dests: Vec<DestEntry>,
    /// Local addresses of either family (IPv6 toward IPv6 servers, IPv4
    /// toward IPv4 ones: FULLNAT, and NAT64 on an IPv6 service).
    pub(super) laddrs: Vec<IpAddr>,
}

/// A slot allocator. Only slots no session references are released to it
/// (the trash holds the others, [`super::trash`]).
#[derive(Clone, Debug)]
pub(super) struct Slots {
    next: u32,
    pub(super) max: u32,
    free: Vec<u32>,
}

impl Slots {
    pub(super) fn new(max: usize) -> Slots {
        Slots { next: 0, max: max as u32, free: vec![] }
    }
    pub(super) fn alloc(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        (self.next < self.max).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
    pub(super) fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }
}

/// Local addresses one service takes at most ([`gw_proto::MAX_LADDRS`]):
/// without a bound one restore of ~600 k could hold the model's lock for
/// minutes.
pub(super) const MAX_LADDRS: usize = gw_proto::MAX_LADDRS;

/// The configuration as gwctl changes it, behind [`Control`]'s one mutex.
#[derive(Clone)]
pub(super) struct Model {
    pub(super) services: BTreeMap<ServiceKey, SvcEntry>,
    pub(super) svc_slots: Slots,
    pub(super) dest_slots: Slots,
    /// Deleted services and real servers sessions may still reference.
    pub(super) trash: TrashBin,
    pub(super) generation: u64,
    pub(super) version: u64,
    pub(super) timeouts: Timeouts,
    pub(super) retired: Vec<Arc<Snapshot>>,
    /// Counter values at the last `-Z` (or slot reuse), subtracted on read.
    pub(super) svc_base: HashMap<u32, Stats>,
    pub(super) dest_base: HashMap<u32, Stats>,
    /// Counter values when the slot was taken (never moved by `-Z`): the
    /// metrics' counters start there and only grow, as Prometheus counters
    /// must.
    pub(super) svc_origin: HashMap<u32, Stats>,
    pub(super) dest_origin: HashMap<u32, Stats>,
    /// Rate estimators by (is a real server, slot).
    pub(super) rates: HashMap<(bool, u32), RateEst>,
    pub(super) last_estimate: Option<Instant>,
}

impl Control {
    /// Builds and publishes a snapshot of the model.
    pub(super) fn publish(&self, m: &mut Model) {
        m.generation += 1;
        let services = m
            .services
            .values()
            .map(|s| {
                let confs: Vec<DestConf> = s
                    .dests
                    .iter()
                    .map(|d| DestConf {
                        weight: d.spec.weight,
                        last_weight: d.last_weight,
                        addr: gw_core::service::sched_addr(d.spec.addr),
                        port: d.spec.port,
                        id: d.slot,
                    })
                    .collect();
                let dests: Vec<Dest> = s
                    .dests
                    .iter()
                    .map(|d| Dest {
                        slot: d.slot,
                        addr: d.spec.addr,
                        port: d.spec.port,
                        mode: d.spec.mode,
                        weight: d.spec.weight,
                        upper: d.spec.upper,
                        lower: d.spec.lower,
                    })
                    .collect();
                Arc::new(Service {
                    slot: s.slot,
                    version: s.version,
                    key: s.spec.key,
                    scheduler: s.spec.scheduler,
                    prep: Prepared::build(s.spec.scheduler, s.spec.sched_flags, &confs),
                    dests,
                    laddrs: laddrs4(&s.laddrs),
                    laddrs6: laddrs6(&s.laddrs),
                    persistent_ms: s.spec.persistent.map(|p| p as u64 * 1000),
                    netmask: u32::from(s.spec.netmask),
                    netmask6: gw_core::service::mask6(s.spec.prefix6),
                    one_packet: s.spec.one_packet,
                    sched_flags: s.spec.sched_flags,
                    client_addr: s.spec.client_addr,
                    synproxy: s.spec.synproxy,
                })
            })
            .collect();
        // Tunnel types by slot: trashed servers first, the live ones win.
        let tunnels =
            m.trash.dests.values().map(|t| &t.entry).chain(m.services.values().flat_map(|s| &s.dests));
        let snap = Snapshot::new(m.generation, services, self.max_dests)
            .with_trash(&Self::snapshot_trash(m))
            .with_tunnels(tunnels.map(|d| (d.slot, d.spec.tunnel)).collect::<Vec<_>>())
            .with_timeouts(m.timeouts);
        let snap = Arc::new(snap);
        let old = self.publisher.publish(snap);
        m.retired.push(old);
        self.notify_laddrs(m);
    }

    /// Room for `spec` (added, or replacing the service of its key) among
    /// the lblc/lblcr services each worker can hold a cache for.
    fn check_locality(&self, m: &Model, spec: &ServiceSpec) -> Result<(), Response> {
        let locality = |s: Scheduler| matches!(s, Scheduler::Lblc | Scheduler::Lblcr);
        if !locality(spec.scheduler) {
            return Ok(());
        }
        let others =
            m.services.values().filter(|s| s.spec.key != spec.key && locality(s.spec.scheduler)).count();
        if others >= self.max_locality {
            let why = format!(
                "{others} lblc/lblcr services already: a worker may hold a cache of {} KiB for each, \
                 and the machine's memory allows {}",
                gw_core::sched::locality_cache_bytes() >> 10,
                self.max_locality
            );
            return Err(err(ErrorKind::Full, why));
        }
        Ok(())
    }

    /// Applies a request to the model; `Ok(true)` if it changed.
    pub(super) fn apply(&self, m: &mut Model, req: Request) -> Result<bool, Response> {
        check_families(&req)?;
        match &req {
            Request::AddDest { dest, .. } | Request::EditDest { dest, .. } => {
                if let Some(why) = on_a_port(&self.port_addrs, dest.addr, true) {
                    let msg = format!("bad real server {}:{}: {why}", dest.addr, dest.port);
                    return Err(err(ErrorKind::Invalid, msg));
                }
            }
            Request::AddService { spec } => {
                if let Some(why) = on_a_port(&self.port_addrs, spec.key.addr, false) {
                    let msg = format!("{} cannot be a virtual service address: {why}", spec.key.addr);
                    return Err(err(ErrorKind::Invalid, msg));
                }
            }
            Request::AddLaddr { addr, .. } => {
                if let Some(why) = on_a_port(&self.port_addrs, *addr, false) {
                    return Err(err(ErrorKind::Invalid, format!("{addr} cannot be a local address: {why}")));
                }
            }
            _ => {}
        }
        m.version += 1;
        let version = m.version;
        match req {
            Request::AddService { spec } => {
                validate_spec(&spec)?;
                if m.services.contains_key(&spec.key) {
                    return Err(err(ErrorKind::ServiceExists, format!("{}", spec.key)));
                }
                self.check_locality(m, &spec)?;
                // The same service deleted earlier comes back with its slot
                // (statistics continue); its servers come back as they are added.
                let slot = match Self::untrash_service(m, spec.key) {
                    Some(old) => old.slot,
                    None => {
                        let slot = match m.svc_slots.alloc() {
                            Some(s) => Some(s),
                            None => self.reclaim_svc_slot(m),
                        }
                        .ok_or_else(|| {
                            err(ErrorKind::Full, "service table is full (workers.max_services)")
                        })?;
                        let base = self.svc_stats(slot);
                        m.svc_base.insert(slot, base);
                        m.svc_origin.insert(slot, base);
                        m.rates.remove(&(false, slot));
                        slot
                    }
                };
                m.services.insert(spec.key, SvcEntry { slot, version, spec, dests: vec![], laddrs: vec![] });
                Ok(true)
            }
            Request::EditService { spec } => {
                validate_spec(&spec)?;
                if !m.services.contains_key(&spec.key) {
                    return Err(no_service(&spec.key));
                }
                self.check_locality(m, &spec)?;
                let s = m.services.get_mut(&spec.key).ok_or_else(|| no_service(&spec.key))?;
                s.spec = spec;
                s.version = version;
                Ok(true)
            }
            Request::DelService { key } => {
                let s = m.services.remove(&key).ok_or_else(|| no_service(&key))?;
                Self::trash_service(m, s);
                Ok(true)
            }
            Request::Clear => {
                let all = std::mem::take(&mut m.services);
                for s in all.into_values() {
                    Self::trash_service(m, s);
                }
                Ok(true)
            }
            Request::AddDest { service, dest } => {
                validate_dest(&dest)?;
                let s = m.services.get(&service).ok_or_else(|| no_service(&service))?;
                if s.dests.iter().any(|d| d.spec.addr == dest.addr && d.spec.port == dest.port) {
                    return Err(err(ErrorKind::DestExists, format!("{}:{}", dest.addr, dest.port)));
                }
                // The same server deleted earlier comes back with its slot:
                // its sessions resume, its statistics continue.
                // An add sets `last_weight` even to 0 (`__ip_vs_update_dest`:
                // `if (add || udest->weight != 0)`): a server back from the
                // trash with -w 0 takes no Maglev slots.
                let entry = match Self::untrash_dest(m, service, dest.addr, dest.port) {
                    Some(old) => DestEntry { spec: dest, slot: old.slot, last_weight: dest.weight },
                    None => {
                        let slot = match m.dest_slots.alloc() {
                            Some(s) => Some(s),
                            None => self.reclaim_dest_slot(m),
                        }
                        .ok_or_else(|| {
                            err(
                                ErrorKind::Full,
                                format!(
                                    "real-server table is full (workers.max_dests = {})",
                                    m.dest_slots.max
                                ),
                            )
                        })?;
                        let base = self.dest_stats(slot).0;
                        m.dest_base.insert(slot, base);
                        m.dest_origin.insert(slot, base);
                        m.rates.remove(&(true, slot));
                        DestEntry { spec: dest, slot, last_weight: dest.weight }
                    }
                };
                let s = m.services.get_mut(&service).expect("checked above");
                s.dests.insert(0, entry);
                s.version = version;
                Ok(true)
            }
            Request::EditDest { service, dest } => {
                validate_dest(&dest)?;
                let s = m.services.get_mut(&service).ok_or_else(|| no_service(&service))?;
                let d = s
                    .dests
                    .iter_mut()
                    .find(|d| d.spec.addr == dest.addr && d.spec.port == dest.port)
                    .ok_or_else(|| err(ErrorKind::NoDest, format!("{}:{}", dest.addr, dest.port)))?;
                d.spec = dest;
                if dest.weight != 0 {
                    d.last_weight = dest.weight;
                }
                s.version = version;
                Ok(true)
            }
            Request::DelDest { service, addr, port } => {
                let s = m.services.get_mut(&service).ok_or_else(|| no_service(&service))?;
                let pos = s
                    .dests
                    .iter()
                    .position(|d| d.spec.addr == addr && d.spec.port == port)
                    .ok_or_else(|| err(ErrorKind::NoDest, format!("{addr}:{port}")))?;
                let d = s.dests.remove(pos);
                s.version = version;
                let (spec, laddrs) = (s.spec.clone(), s.laddrs.clone());
                Self::trash_dest(m, &spec, &laddrs, d);
                Ok(true)
            }
            Request::AddLaddr { service, addr } => {
                if let Some(why) = not_a_host(addr).or(link_local(addr)) {
                    return Err(err(ErrorKind::Invalid, format!("{addr} cannot be a local address: {why}")));
                }
                let s = m.services.get_mut(&service).ok_or_else(|| no_service(&service))?;
                if s.laddrs.contains(&addr) {
                    return Err(err(ErrorKind::LaddrExists, addr.to_string()));
                }
                if s.laddrs.len() >= MAX_LADDRS {
                    let m = format!("service {service} has {MAX_LADDRS} local addresses, the most it takes");
                    return Err(err(ErrorKind::Full, m));
                }
                s.laddrs.push(addr);
                Ok(true)
            }
            Request::DelLaddr { service, addr } => {
                let s = m.services.get_mut(&service).ok_or_else(|| no_service(&service))?;
                let pos = s
                    .laddrs
                    .iter()
                    .position(|a| *a == addr)
                    .ok_or_else(|| err(ErrorKind::NoLaddr, addr.to_string()))?;
                s.laddrs.remove(pos);
                Ok(true)
            }
            Request::Zero { service } => {
                let keys: Vec<ServiceKey> = match service {
                    Some(k) if !m.services.contains_key(&k) => return Err(no_service(&k)),
                    Some(k) => vec![k],
                    None => m.services.keys().copied().collect(),
                };
                for k in keys {
                    let s = m.services[&k].clone();
                    m.svc_base.insert(s.slot, self.svc_stats(s.slot));
                    for d in &s.dests {
                        m.dest_base.insert(d.slot, self.dest_stats(d.slot).0);
                    }
                }
                Ok(false)
            }
            Request::Restore { requests } => {
                let mut changed = false;
                for (i, r) in requests.into_iter().enumerate() {
                    if matches!(r, Request::Restore { .. }) {
                        return Err(err(ErrorKind::BadRequest, format!("rule {}: nested restore", i + 1)));
                    }
                    match self.apply(m, r) {
                        Ok(c) => changed |= c,
                        Err(Response::Error { kind, message }) => {
                            // What came before stays applied, as with ipvsadm -R.
                            if changed {
                                self.publish(m);
                            }
                            return Err(err(kind, format!("rule {}: {message}", i + 1)));
                        }
                        Err(other) => return Err(other),
                    }
                }
                Ok(changed)
            }
            Request::SetTimeouts { timeouts } => {
                // As the kernel (EINVAL), before anything changes: 0 leaves a
                // value as it is, anything else must be a timeout the session
                // wheel can hold (crate::limits).
                for (name, s) in [("tcp", timeouts.tcp), ("tcpfin", timeouts.tcpfin), ("udp", timeouts.udp)] {
                    if s != 0 && !crate::limits::timeout_in_range(s) {
                        let max = crate::limits::MAX_TIMEOUT_S;
                        return Err(err(
                            ErrorKind::Invalid,
                            format!("{name} timeout {s} is not within 1..={max} seconds"),
                        ));
                    }
                }
                let t = &mut m.timeouts;
                if timeouts.tcp != 0 {
                    t.established = timeouts.tcp;
                }
                if timeouts.tcpfin != 0 {
                    t.fin_wait = timeouts.tcpfin;
                }
                if timeouts.udp != 0 {
                    t.udp = timeouts.udp;
                }
                Ok(true)
            }
            Request::List { .. }
            | Request::GetLaddr { .. }
            | Request::Counters
            | Request::GetTimeouts
            | Request::ListConns { .. }
            | Request::Neighbour(_) => Err(err(ErrorKind::BadRequest, "not a change")),
        }
    }
}

/// What any client may send as a service (gwctl and the rules files check
/// as ipvsadm; this is for the others, e.g. a raw request on the socket):
/// a VIP packets can carry, a persistence timeout the session wheel can
/// hold (as `--set`'s timeouts), an IPv6 persistence prefix of 1..=128
/// (ipvsadm's `-M` for IPv6: `-S` writes it and `-R` must read it back),
/// and, as IPVS, persistence for a port-0 ("all ports") service.
fn validate_spec(spec: &ServiceSpec) -> Result<(), Response> {
    let vip = spec.key.addr;
    if let Some(why) = not_a_host(vip) {
        return Err(err(ErrorKind::Invalid, format!("{vip} cannot be a virtual service address: {why}")));
    }
    if let Some(p) = spec.persistent.filter(|p| !crate::limits::timeout_in_range(*p)) {
        let max = crate::limits::MAX_TIMEOUT_S;
        return Err(err(
            ErrorKind::Invalid,
            format!("persistence timeout {p} is not within 1..={max} seconds"),
        ));
    }
    let known = gw_proto::sched_flags::FLAG1 | gw_proto::sched_flags::FLAG2 | gw_proto::sched_flags::FLAG3;
    if spec.sched_flags & !known != 0 {
        return Err(err(
            ErrorKind::Invalid,
            format!("unknown scheduler flags {:#x}", spec.sched_flags & !known),
        ));
    }
    if !(1..=128).contains(&spec.prefix6) {
        return Err(err(
            ErrorKind::Invalid,
            format!("IPv6 persistence prefix {} is not within 1..=128", spec.prefix6),
        ));
    }
    if spec.key.port == 0 && spec.persistent.is_none() {
        return Err(err(ErrorKind::Invalid, "a port 0 service must be persistent"));
    }
    Ok(())
}

/// Why `a` cannot be a virtual service's, a real server's or a local
/// address: it is no unicast host's address on the wire. Both families
/// refuse the unspecified address and multicast; IPv4 also the rest of
/// `0.0.0.0/8` ("this network", RFC 1122 §3.2.1.3), loopback (`127/8`), the
/// reserved `240/4` (RFC 1112 §4) and the limited broadcast; IPv6 the rest
/// of `::/64` ([`gw_core::wire::ipv6::never_on_the_wire`]: loopback, the
/// IPv4-mapped and -compatible addresses; the engine reads a mapped one as
/// NAT64's IPv4 server). An IPv4 server behind an IPv6 VIP is given as
/// IPv4. The kernel's IPVS takes a loopback server as a local one;
/// gatewayd has no local delivery on that path, so it refuses it as it
/// refuses `::1`.
fn not_a_host(a: IpAddr) -> Option<&'static str> {
    let why = match a {
        IpAddr::V4(a) if a.is_unspecified() => "it is the unspecified address",
        IpAddr::V4(a) if a.octets()[0] == 0 => "it is in 0.0.0.0/8 (this network)",
        IpAddr::V4(a) if a.is_loopback() => "it is loopback (127.0.0.0/8)",
        IpAddr::V4(a) if a.is_multicast() => "it is multicast (224.0.0.0/4)",
        IpAddr::V4(a) if a.is_broadcast() => "it is the broadcast address",
        IpAddr::V4(a) if a.octets()[0] >= 240 => "it is reserved (240.0.0.0/4)",
        IpAddr::V6(a) if a.is_unspecified() => "it is the unspecified address",
        IpAddr::V6(a) if a.is_multicast() => "it is multicast (ff00::/8)",
        IpAddr::V6(a) if gw_core::wire::ipv6::never_on_the_wire(u128::from(a)) => {
            "it is in ::/64 (loopback, IPv4-mapped or -compatible)"
        }
        _ => return None,
    };
    Some(why)
}

/// Why `a` cannot be a real server's or a local address when it is IPv6
/// link-local (`fe80::/10`): the kernel's `ip_vs_new_dest` refuses a
/// link-local server (EINVAL) unless it is the director's own, and
/// gatewayd's sessions and routes carry no link (scope) to reach one.
fn link_local(a: IpAddr) -> Option<&'static str> {
    match a {
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => Some("it is link-local (fe80::/10)"),
        _ => None,
    }
}

/// Why `a` cannot be a real server's (`server`), a virtual service's or a
/// local address beside `ports`: below /31 (RFC 3021), the network or
/// broadcast address of a port's IPv4 subnet, which no host has; for a
/// real server also a port's own address (the gateway would send the
/// connections to itself). A port's own address may be a VIP or a local
/// address, as a director's interface address may in LVS and DPVS.
pub(super) fn on_a_port(ports: &[NeighPort], a: IpAddr, server: bool) -> Option<String> {
    ports.iter().find_map(|p| {
        let own = match a {
            IpAddr::V4(a) => a == p.addr,
            IpAddr::V6(a) => p.addr6.is_some_and(|(own, _)| own == a),
        };
        if own && server {
            return Some(format!("it is port {:?}'s own address", p.name));
        }
        let (a, own) = (u32::from(gw_proto::v4(a)?), u32::from(p.addr));
        let what = crate::config::subnet_edge(a, own, p.prefix)?;
        let net = std::net::Ipv4Addr::from(own & <u32 as gw_core::route::RouteAddr>::mask(p.prefix));
        Some(format!("it is the {what} address of port {:?}'s subnet {net}/{}", p.name, p.prefix))
    })
}

/// The address families a request may combine, checked before anything
/// changes (ipvsadm's and DPVS's rules):
/// - NAT, DR and TUN real servers are of the VIP's family. The kernel
///   allows an IPv4 server behind an IPv6 TUN service and the reverse
///   (IPv4-in-IPv6); gatewayd does not tunnel across families and refuses
///   it ([`ErrorKind::Unsupported`]).
/// - FULLNAT real servers are of the VIP's family, or IPv4 behind an IPv6
///   VIP: that is NAT64 (DPVS's `-A -t [v6]:p`, `-a -r v4:p -b`), whose
///   IPv4 local addresses the service also takes. An IPv4 VIP with IPv6
///   servers (NAT46) is refused, as DPVS does not do it.
/// - Local addresses of either family on an IPv6 service (IPv6 ones toward
///   IPv6 servers, IPv4 ones for NAT64), IPv4 only on an IPv4 service.
fn check_families(req: &Request) -> Result<(), Response> {
    match req {
        Request::AddDest { service, dest } | Request::EditDest { service, dest } => {
            check_tunnel(dest)?;
            if service.addr.is_ipv6() == dest.addr.is_ipv6() {
                return Ok(());
            }
            let kind = match (dest.mode, service.addr.is_ipv6()) {
                (gw_proto::ForwardMode::FullNat, true) => return Ok(()),
                (gw_proto::ForwardMode::Tunnel, _) => ErrorKind::Unsupported,
                _ => ErrorKind::Invalid,
            };
            let msg = format!(
                "real server {} is not of the family of service {service} ({} mode)",
                dest.addr,
                dest.mode.label()
            );
            Err(err(kind, msg))
        }
        Request::AddLaddr { service, addr } if service.addr.is_ipv4() && addr.is_ipv6() => {
            Err(err(ErrorKind::Invalid, format!("IPv6 local address {addr} on IPv4 service {service}")))
        }
        _ => Ok(()),
    }
}

/// A tunnel type only on a tunnelling server, with the options ipvsadm
/// 1.31 allows it (gwctl checks as ipvsadm; this is for other clients).
fn check_tunnel(dest: &gw_proto::DestSpec) -> Result<(), Response> {
    use gw_proto::{TunnelCsum, TunnelEncap};
    let why = match dest.tunnel {
        TunnelEncap::Ipip => return Ok(()),
        t if dest.mode != gw_proto::ForwardMode::Tunnel => {
            format!("tunnel type {} is for tunnelling servers, not {} mode", t.name(), dest.mode.label())
        }
        TunnelEncap::Gue { port: 0, .. } => "a gue tunnel needs a port (1-65535)".to_owned(),
        TunnelEncap::Gre { csum: TunnelCsum::RemCsum } => {
            "remote checksum offload is a gue option".to_owned()
        }
        _ => return Ok(()),
    };
    Err(err(ErrorKind::Invalid, format!("real server {}: {why}", dest.addr)))
}

/// The IPv4 local addresses among `a`, host order.
pub(super) fn laddrs4(a: &[IpAddr]) -> Vec<u32> {
    a.iter().filter_map(|a| gw_proto::v4(*a)).map(u32::from).collect()
}

/// The IPv6 local addresses among `a`, host order.
pub(super) fn laddrs6(a: &[IpAddr]) -> Vec<u128> {
    a.iter()
        .filter_map(|a| match a {
            IpAddr::V6(a) => Some(u128::from(*a)),
            IpAddr::V4(_) => None,
        })
        .collect()
}

fn validate_dest(d: &DestSpec) -> Result<(), Response> {
    if d.weight > gw_proto::MAX_WEIGHT {
        return Err(err(ErrorKind::Invalid, format!("weight must be 0..={}", gw_proto::MAX_WEIGHT)));
    }
    if let Some(why) = not_a_host(d.addr).or(link_local(d.addr)) {
        return Err(err(ErrorKind::Invalid, format!("bad real server {}:{}: {why}", d.addr, d.port)));
    }
    // As the kernel's ip_vs_add_dest/ip_vs_edit_dest (ERANGE): a lower
    // threshold above the upper one, also when the upper one is 0 (none).
    if d.lower > d.upper {
        return Err(err(ErrorKind::OutOfRange, "lower threshold above the upper threshold"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_util::{add, control, dest, key};
    use gw_proto::{Scheduler, TimeoutSet};

    /// A weight up to the kernel's `INT_MAX` (keepalived's limit) is taken
    /// on add and edit and listed back; one above is refused, nothing
    /// published.
    #[test]
    fn weights_go_up_to_int_max() {
        let (c, p) = control(1);
        add(&c);
        let mut d = dest(3);
        d.weight = 70_000;
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: d }), Response::Ok);
        d.weight = gw_proto::MAX_WEIGHT;
        assert_eq!(c.handle(Request::EditDest { service: key(80), dest: d }), Response::Ok);
        let generation = p.current().generation;
        d.weight = gw_proto::MAX_WEIGHT + 1;
        for r in
            [Request::EditDest { service: key(80), dest: d }, Request::AddDest { service: key(80), dest: d }]
        {
            match c.handle(r) {
                Response::Error { kind: ErrorKind::Invalid, message } => {
                    assert_eq!(message, "weight must be 0..=2147483647")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(p.current().generation, generation);
        let snap = p.current();
        let svc = snap.service(gw_core::wire::ipv4::Protocol::Tcp, 0xc612_0064, 80).expect("the service");
        // The server added last goes first, as in IPVS's list.
        assert_eq!(svc.dests.iter().map(|d| d.weight).collect::<Vec<_>>(), [gw_proto::MAX_WEIGHT, 1]);
    }

    /// Addresses no host has on the wire, and, beside the ports, a port's
    /// own address as a real server and a subnet's network or broadcast
    /// address: refused as invalid with the reason, nothing published.
    /// The same addresses one off are taken.
    #[test]
    fn addresses_no_host_has_are_refused_as_vip_server_or_local_address() {
        use std::net::Ipv4Addr;
        let port = |name: &str, addr: [u8; 4], prefix, addr6: Option<&str>| NeighPort {
            name: name.into(),
            id: 0,
            addr: Ipv4Addr::from(addr),
            prefix,
            addr6: addr6.map(|a| (a.parse().unwrap(), 64)),
        };
        let ports = vec![
            port("outside", [198, 18, 0, 1], 24, Some("2001:db8::1")),
            port("inside", [198, 18, 1, 1], 24, None),
            port("p2p", [198, 18, 2, 0], 31, None),
        ];
        let (c, p) = control(1);
        let c = c.with_port_addrs(ports);
        add(&c);
        let v6key = ServiceKey { addr: "2001:db8::100".parse().unwrap(), ..key(80) };
        let spec6 = ServiceSpec::new(v6key, Scheduler::Rr);
        assert_eq!(c.handle(Request::AddService { spec: spec6 }), Response::Ok);
        let generation = p.current().generation;
        let refused = |r: Request, want: &str| match c.handle(r.clone()) {
            Response::Error { kind: ErrorKind::Invalid, message } => {
                assert!(message.ends_with(want), "{r:?}: {message}")
            }
            other => panic!("{r:?}: {other:?}"),
        };
        let vip = |a: &str| Request::AddService {
            spec: ServiceSpec::new(ServiceKey { addr: a.parse().unwrap(), ..key(81) }, Scheduler::Rr),
        };
        let rs = |a: &str| Request::AddDest {
            service: if a.contains(':') { v6key } else { key(80) },
            dest: DestSpec::new(a.parse::<IpAddr>().unwrap(), 80, gw_proto::ForwardMode::Masq, 1),
        };
        let lip = |a: &str| Request::AddLaddr { service: key(80), addr: a.parse().unwrap() };
        let nowhere = [
            ("0.0.0.0", "it is the unspecified address"),
            ("0.1.2.3", "it is in 0.0.0.0/8 (this network)"),
            ("127.0.0.1", "it is loopback (127.0.0.0/8)"),
            ("127.255.0.9", "it is loopback (127.0.0.0/8)"),
            ("224.0.0.1", "it is multicast (224.0.0.0/4)"),
            ("239.255.255.255", "it is multicast (224.0.0.0/4)"),
            ("240.0.0.1", "it is reserved (240.0.0.0/4)"),
            ("255.255.255.255", "it is the broadcast address"),
        ];
        for (a, why) in nowhere {
            refused(vip(a), why);
            refused(rs(a), why);
            refused(lip(a), why);
        }
        for (a, why) in [
            ("::1", "it is in ::/64 (loopback, IPv4-mapped or -compatible)"),
            ("ff02::1", "it is multicast (ff00::/8)"),
        ] {
            refused(vip(a), why);
            refused(rs(a), why);
        }
        refused(rs("fe80::2"), "it is link-local (fe80::/10)");
        refused(rs("febf::2"), "it is link-local (fe80::/10)");
        let lip6 = |a: &str| Request::AddLaddr { service: v6key, addr: a.parse().unwrap() };
        refused(lip6("fe80::10"), "it is link-local (fe80::/10)");
        let subnet = [
            ("198.18.1.0", "it is the network address of port \"inside\"'s subnet 198.18.1.0/24"),
            ("198.18.1.255", "it is the broadcast address of port \"inside\"'s subnet 198.18.1.0/24"),
            ("198.18.0.255", "it is the broadcast address of port \"outside\"'s subnet 198.18.0.0/24"),
        ];
        for (a, why) in subnet {
            refused(rs(a), why);
            refused(lip(a), why);
        }
        refused(rs("198.18.1.1"), "it is port \"inside\"'s own address");
        refused(rs("2001:db8::1"), "it is port \"outside\"'s own address");
        let edit = DestSpec::new(Ipv4Addr::new(198, 18, 1, 1), 80, gw_proto::ForwardMode::FullNat, 1);
        refused(Request::EditDest { service: key(80), dest: edit }, "it is port \"inside\"'s own address");
        assert_eq!(p.current().generation, generation, "nothing was published");
        // One off each is a host; a /31's two addresses both are (RFC
        // 3021); a port's own address may be a local address.
        for a in ["198.18.1.254", "198.18.0.2", "198.18.2.1", "1.0.0.1", "126.255.255.255", "223.255.255.254"]
        {
            assert_eq!(c.handle(rs(a)), Response::Ok, "{a}");
        }
        for a in ["198.18.1.1", "198.18.1.253", "198.18.2.0"] {
            assert_eq!(c.handle(lip(a)), Response::Ok, "{a}");
        }
        for (a, why) in &subnet[..2] {
            refused(vip(a), why);
        }
        assert_eq!(c.handle(vip("198.18.0.1")), Response::Ok, "a port's own address may be a VIP");
        assert_eq!(c.handle(rs("2001:db8::2")), Response::Ok);
        assert_eq!(c.handle(rs("fec0::2")), Response::Ok, "fec0::/10 is not link-local");
    }

    #[test]
    fn lblc_and_lblcr_services_beyond_what_memory_allows_are_refused_as_enomem() {
        let (c, p) = control(1);
        let c = c.with_locality_services(2);
        let add = |port, sched| c.handle(Request::AddService { spec: ServiceSpec::new(key(port), sched) });
        let edit = |port, sched| c.handle(Request::EditService { spec: ServiceSpec::new(key(port), sched) });
        let full = |r: Response| match r {
            Response::Error { kind: ErrorKind::Full, message } => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(add(80, Scheduler::Lblc), Response::Ok);
        assert_eq!(add(81, Scheduler::Lblcr), Response::Ok);
        let generation = p.current().generation;
        let why = full(add(82, Scheduler::Lblc));
        assert!(why.starts_with("2 lblc/lblcr services already"), "{why}");
        assert_eq!(p.current().generation, generation, "nothing published");
        // Other schedulers are not counted; editing one into lblc is.
        assert_eq!(add(82, Scheduler::Wlc), Response::Ok);
        full(edit(82, Scheduler::Lblcr));
        // A locality service changing between lblc and lblcr keeps its room.
        assert_eq!(edit(80, Scheduler::Lblcr), Response::Ok);
        // Room again once one goes.
        assert_eq!(c.handle(Request::DelService { key: key(81) }), Response::Ok);
        assert_eq!(edit(82, Scheduler::Lblc), Response::Ok);
        full(add(83, Scheduler::Lblc));
        // A reload wanting three is refused whole.
        let desired = (90..93)
            .map(|port| Request::AddService { spec: ServiceSpec::new(key(port), Scheduler::Lblc) })
            .collect();
        full(c.sync(desired));
        assert_eq!(p.current().services().len(), 2);
    }

    #[test]
    fn changes_publish_snapshots_and_errors_do_not() {
        let (c, p) = control(1);
        add(&c);
        let snap = p.current();
        assert_eq!(snap.generation, 2);
        let svc = snap
            .service(
                gw_core::wire::ipv4::Protocol::Tcp,
                u32::from(std::net::Ipv4Addr::new(198, 18, 0, 100)),
                80,
            )
            .unwrap();
        assert_eq!(svc.dests.len(), 1);
        let spec = ServiceSpec::new(key(80), Scheduler::Rr);
        assert!(matches!(
            c.handle(Request::AddService { spec }),
            Response::Error { kind: ErrorKind::ServiceExists, .. }
        ));
        assert!(matches!(
            c.handle(Request::AddDest { service: key(80), dest: dest(2) }),
            Response::Error { kind: ErrorKind::DestExists, .. }
        ));
        assert!(matches!(
            c.handle(Request::DelDest { service: key(81), addr: dest(2).addr, port: 80 }),
            Response::Error { kind: ErrorKind::NoService, .. }
        ));
        assert_eq!(p.current().generation, 2);
    }

    /// A server's `--tun-type` reaches the snapshot by its slot, `-e`
    /// changes it, deletion keeps it for the trashed server's sessions,
    /// and what ipvsadm would refuse is refused.
    #[test]
    fn tunnel_types_reach_the_snapshot_by_slot() {
        use gw_proto::{ForwardMode, TunnelCsum, TunnelEncap};
        let (c, p) = control(1);
        add(&c);
        let gue = TunnelEncap::Gue { port: 6080, csum: TunnelCsum::Csum };
        let tun = DestSpec {
            tunnel: gue,
            ..DestSpec::new(std::net::Ipv4Addr::new(198, 18, 1, 3), 80, ForwardMode::Tunnel, 1)
        };
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: tun }), Response::Ok);
        let slot_of = |last: u8| {
            let snap = p.current();
            let svc = snap.service(gw_core::wire::ipv4::Protocol::Tcp, 0xc612_0064, 80).unwrap();
            svc.dests.iter().find(|d| d.addr4() == 0xc612_0100 + u32::from(last)).unwrap().slot
        };
        let (fnat, gue_slot) = (slot_of(2), slot_of(3));
        assert_eq!(p.current().dest_tunnel(gue_slot), gue);
        assert_eq!(p.current().dest_tunnel(fnat), TunnelEncap::Ipip);
        let gre = TunnelEncap::Gre { csum: TunnelCsum::NoCsum };
        assert_eq!(
            c.handle(Request::EditDest { service: key(80), dest: DestSpec { tunnel: gre, ..tun } }),
            Response::Ok
        );
        assert_eq!(p.current().dest_tunnel(gue_slot), gre, "-e changes it");
        assert_eq!(c.handle(Request::DelDest { service: key(80), addr: tun.addr, port: 80 }), Response::Ok);
        assert_eq!(p.current().dest_tunnel(gue_slot), gre, "its trashed sessions keep tunnelling so");
        for bad in [
            DestSpec { tunnel: gue, ..dest(4) },
            DestSpec { tunnel: TunnelEncap::Gue { port: 0, csum: TunnelCsum::NoCsum }, ..tun },
            DestSpec { tunnel: TunnelEncap::Gre { csum: TunnelCsum::RemCsum }, ..tun },
        ] {
            assert!(
                matches!(
                    c.handle(Request::AddDest { service: key(80), dest: bad }),
                    Response::Error { kind: ErrorKind::Invalid, .. }
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lower_threshold_above_upper_is_erange_as_in_the_kernel() {
        // ip_vs_ctl.c ip_vs_add_dest/ip_vs_edit_dest: l_threshold > u_threshold
        // is -ERANGE, also with no upper threshold (-y 20 without -x).
        let (c, _) = control(1);
        add(&c);
        for (upper, lower) in [(0, 20), (10, 20)] {
            let d = DestSpec { upper, lower, ..dest(3) };
            assert!(matches!(
                c.handle(Request::AddDest { service: key(80), dest: d }),
                Response::Error { kind: ErrorKind::OutOfRange, .. }
            ));
            let d = DestSpec { upper, lower, ..dest(2) };
            assert!(matches!(
                c.handle(Request::EditDest { service: key(80), dest: d }),
                Response::Error { kind: ErrorKind::OutOfRange, .. }
            ));
        }
        let d = DestSpec { upper: 20, lower: 10, ..dest(3) };
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: d }), Response::Ok);
    }

    #[test]
    fn restore_applies_in_order_as_one_change_and_stops_at_the_first_error() {
        let (c, p) = control(1);
        let spec = ServiceSpec::new(key(80), Scheduler::Rr);
        let good = vec![
            Request::AddService { spec: spec.clone() },
            Request::AddDest { service: key(80), dest: dest(2) },
            Request::AddDest { service: key(80), dest: dest(3) },
        ];
        assert_eq!(c.handle(Request::Restore { requests: good }), Response::Ok);
        assert_eq!(p.current().generation, 1, "one snapshot for the whole batch");
        let bad = vec![
            Request::AddService { spec: ServiceSpec::new(key(81), Scheduler::Rr) },
            Request::AddService { spec },
            Request::AddService { spec: ServiceSpec::new(key(82), Scheduler::Rr) },
        ];
        let Response::Error { kind, message } = c.handle(Request::Restore { requests: bad }) else {
            panic!()
        };
        assert_eq!(kind, ErrorKind::ServiceExists);
        assert!(message.starts_with("rule 2:"), "{message}");
        let snap = p.current();
        assert!(
            snap.service(gw_core::wire::ipv4::Protocol::Tcp, gw_core::service::vip4(&key(81)).unwrap(), 81)
                .is_some(),
            "rule 1 stays applied"
        );
        assert!(
            snap.service(gw_core::wire::ipv4::Protocol::Tcp, gw_core::service::vip4(&key(82)).unwrap(), 82)
                .is_none(),
            "rule 3 never ran"
        );
    }

    #[test]
    fn set_timeouts_changes_only_what_is_not_zero_and_reaches_the_snapshot() {
        let (c, p) = control(1);
        let t = TimeoutSet { tcp: 300, tcpfin: 0, udp: 30 };
        assert_eq!(c.handle(Request::SetTimeouts { timeouts: t }), Response::Ok);
        let Response::Timeouts { timeouts } = c.query(Request::GetTimeouts) else { panic!() };
        assert_eq!(timeouts, TimeoutSet { tcp: 300, tcpfin: 120, udp: 30 });
        assert_eq!(p.current().timeouts.established, 300);
        assert_eq!(p.current().timeouts.udp, 30);
    }

    #[test]
    fn set_timeouts_beyond_the_horizon_are_refused_and_change_nothing() {
        let (c, p) = control(1);
        let over = crate::limits::MAX_TIMEOUT_S + 1;
        let t = TimeoutSet { tcp: 300, tcpfin: over, udp: 30 };
        let Response::Error { kind, message } = c.handle(Request::SetTimeouts { timeouts: t }) else {
            panic!()
        };
        assert_eq!(kind, ErrorKind::Invalid);
        assert_eq!(message, "tcpfin timeout 2678401 is not within 1..=2678400 seconds");
        let t = TimeoutSet { tcp: u32::MAX, tcpfin: 0, udp: 0 };
        assert!(matches!(c.handle(Request::SetTimeouts { timeouts: t }), Response::Error { .. }));
        assert_eq!(p.current().timeouts.established, 900, "nothing changed");
        let t = TimeoutSet { tcp: crate::limits::MAX_TIMEOUT_S, tcpfin: 0, udp: 0 };
        assert_eq!(c.handle(Request::SetTimeouts { timeouts: t }), Response::Ok);
    }

    #[test]
    fn a_persistence_timeout_beyond_the_horizon_is_refused() {
        let (c, _) = control(1);
        let mut spec = ServiceSpec::new(key(80), Scheduler::Rr);
        spec.persistent = Some(u32::MAX);
        let r = c.handle(Request::AddService { spec: spec.clone() });
        assert!(matches!(r, Response::Error { kind: ErrorKind::Invalid, .. }), "{r:?}");
        spec.persistent = Some(crate::limits::MAX_TIMEOUT_S);
        assert_eq!(c.handle(Request::AddService { spec: spec.clone() }), Response::Ok);
        spec.persistent = Some(0);
        let r = c.handle(Request::EditService { spec });
        assert!(matches!(r, Response::Error { kind: ErrorKind::Invalid, .. }), "{r:?}");
    }
}
