//! The control plane: the service model, snapshot publishing, and the unix
//! socket server that `gwctl` talks to.
//!
//! The model lives only here, behind one mutex that workers never take. Each
//! change builds a new immutable [`Snapshot`] and publishes it; the previous
//! snapshots are kept in `retired` until every worker reports (through its
//! counters block) that it runs a newer generation, so the last reference to
//! a snapshot is always dropped here and never on a worker's core.
//!
//! Statistics slots: each service and real server gets a slot that indexes
//! the per-worker counter arrays. A deleted real server's slot is reused only
//! when no session references it any more (its ActiveConn + InActConn summed
//! over workers is 0) and every worker has seen the deletion, which is IPVS's
//! "trash" rule for destinations.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gw_proto::{
    read_frame, write_frame, ConnInfo, DestInfo, DestSpec, ErrorKind, FrameError, Protocol, Rates, Request,
    Response, ServiceInfo, ServiceKey, ServiceSpec, Stats, TimeoutSet, WorkerCounters as WireCounters,
};

use gw_core::counters::WorkerCounters;
use gw_core::mailbox::{ConnFilter, ControlMailbox};
use gw_core::sched::{DestConf, Prepared};
use gw_core::service::{Dest, Publisher, Service, Snapshot};
use gw_core::session::Session;
use gw_core::tcp_state::Timeouts;

#[derive(Clone, Debug)]
struct DestEntry {
    spec: DestSpec,
    slot: u32,
    /// The last non-zero weight (IPVS's `last_weight`): Maglev builds its
    /// table from it, so quiescing a server (weight 0) moves no one else.
    last_weight: u32,
}

#[derive(Clone, Debug)]
struct SvcEntry {
    slot: u32,
    version: u64,
    spec: ServiceSpec,
    dests: Vec<DestEntry>,
    laddrs: Vec<Ipv4Addr>,
}

/// A slot allocator whose freed slots wait until `reusable` says so.
#[derive(Debug)]
struct Slots {
    next: u32,
    max: u32,
    /// (slot, generation at which it was freed)
    free: Vec<(u32, u64)>,
}

impl Slots {
    fn new(max: usize) -> Slots {
        Slots { next: 0, max: max as u32, free: vec![] }
    }
    fn alloc(&mut self, reusable: impl Fn(u32, u64) -> bool) -> Option<u32> {
        if let Some(pos) = self.free.iter().position(|(s, g)| reusable(*s, *g)) {
            return Some(self.free.swap_remove(pos).0);
        }
        (self.next < self.max).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
    fn release(&mut self, slot: u32, generation: u64) {
        self.free.push((slot, generation));
    }
}

/// The service configuration and everything needed to answer `gwctl`.
pub struct Control {
    model: Mutex<Model>,
    publisher: Arc<Publisher>,
    workers: Vec<Arc<WorkerCounters>>,
    /// One per worker, in worker order (connection listing).
    mailboxes: Vec<ControlMailbox>,
    /// Called with every local address after each published change (the
    /// daemon keeps NIC flow rules in step with it).
    laddr_hook: Option<LaddrHook>,
    conn_table_size: u64,
    max_services: usize,
    max_dests: usize,
}

/// See [`Control::with_laddr_hook`].
type LaddrHook = Box<dyn Fn(&[Ipv4Addr]) + Send + Sync>;

/// IPVS's rate estimator for one service or server: every [`RATE_PERIOD`]
/// the rate over the period is folded into a moving average with weight
/// 1/4 (`avg += (rate - avg) / 4`, as `ip_vs_estimator.c`).
#[derive(Clone, Copy, Debug, Default)]
struct RateEst {
    last: Stats,
    avg: [f64; 5],
}

/// How often rates are estimated (IPVS: 2 s).
pub const RATE_PERIOD: Duration = Duration::from_secs(2);

impl RateEst {
    fn update(&mut self, now: Stats, secs: f64) {
        let d = sub(now, self.last);
        let rates = [d.conns, d.inpkts, d.outpkts, d.inbytes * 8, d.outbytes * 8];
        for (avg, r) in self.avg.iter_mut().zip(rates) {
            *avg += (r as f64 / secs - *avg) / 4.0;
        }
        self.last = now;
    }
    fn rates(&self) -> Rates {
        let r = |i: usize| self.avg[i].round().max(0.0) as u64;
        Rates { cps: r(0), inpps: r(1), outpps: r(2), inbps: r(3), outbps: r(4) }
    }
}

/// A session as `gwctl -L -c` shows it.
fn conn_info(worker: u32, s: &Session, now_ms: u64) -> ConnInfo {
    let a = |ip: u32, port: u16| (Ipv4Addr::from(ip), port);
    let template = s.is_template();
    ConnInfo {
        worker,
        proto: if s.protocol() == gw_core::wire::ipv4::Protocol::Udp { Protocol::Udp } else { Protocol::Tcp },
        state: if template { "NONE".into() } else { s.state.name().into() },
        expires_ms: s.expires_in_ms(now_ms),
        client: a(s.cip, s.cport),
        vip: a(s.vip, s.vport),
        local: a(s.lip, s.lport),
        dest: a(s.rip, s.rport),
        mode: s.mode,
        template,
    }
}

struct Model {
    services: BTreeMap<ServiceKey, SvcEntry>,
    svc_slots: Slots,
    dest_slots: Slots,
    generation: u64,
    version: u64,
    timeouts: Timeouts,
    retired: Vec<Arc<Snapshot>>,
    /// Counter values at the last `-Z` (or slot reuse), subtracted on read.
    svc_base: HashMap<u32, Stats>,
    dest_base: HashMap<u32, Stats>,
    /// Rate estimators by (is a real server, slot).
    rates: HashMap<(bool, u32), RateEst>,
    last_estimate: Option<Instant>,
}

fn err(kind: ErrorKind, msg: impl Into<String>) -> Response {
    Response::error(kind, msg)
}

fn sub(a: Stats, b: Stats) -> Stats {
    Stats {
        conns: a.conns.wrapping_sub(b.conns),
        inpkts: a.inpkts.wrapping_sub(b.inpkts),
        outpkts: a.outpkts.wrapping_sub(b.outpkts),
        inbytes: a.inbytes.wrapping_sub(b.inbytes),
        outbytes: a.outbytes.wrapping_sub(b.outbytes),
    }
}

impl Control {
    /// A control plane publishing to `publisher`, reading `workers`' counters.
    pub fn new(
        publisher: Arc<Publisher>,
        workers: Vec<Arc<WorkerCounters>>,
        conn_table_size: u64,
        max_services: usize,
        max_dests: usize,
    ) -> Control {
        let first = publisher.current();
        let (generation, timeouts) = (first.generation, first.timeouts);
        Control {
            model: Mutex::new(Model {
                services: BTreeMap::new(),
                svc_slots: Slots::new(max_services),
                dest_slots: Slots::new(max_dests),
                generation,
                version: 0,
                timeouts,
                retired: vec![],
                svc_base: HashMap::new(),
                dest_base: HashMap::new(),
                rates: HashMap::new(),
                last_estimate: None,
            }),
            publisher,
            workers,
            mailboxes: vec![],
            laddr_hook: None,
            conn_table_size,
            max_services,
            max_dests,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dest_stats(&self, slot: u32) -> (Stats, u64, u64) {
        let mut st = Stats::default();
        let (mut act, mut inact) = (0u64, 0u64);
        for w in &self.workers {
            let c = &w.dests[slot as usize];
            st += c.read();
            act = act.wrapping_add(c.active.get());
            inact = inact.wrapping_add(c.inactive.get());
        }
        (st, act, inact)
    }

    /// Persistence templates pointing at a real server, over workers.
    fn dest_persist(&self, slot: u32) -> u64 {
        self.workers.iter().map(|w| w.dests[slot as usize].persist.get()).fold(0, u64::wrapping_add)
    }

    fn svc_stats(&self, slot: u32) -> Stats {
        let mut st = Stats::default();
        for w in &self.workers {
            st += w.services[slot as usize].read();
        }
        st
    }

    /// Lowest generation any worker runs.
    fn min_worker_generation(&self) -> u64 {
        self.workers.iter().map(|w| w.generation.get()).min().unwrap_or(u64::MAX)
    }

    /// Calls `hook` with all local addresses now and after every change.
    pub fn with_laddr_hook(mut self, hook: impl Fn(&[Ipv4Addr]) + Send + Sync + 'static) -> Control {
        self.laddr_hook = Some(Box::new(hook));
        self.notify_laddrs(&self.lock());
        self
    }

    fn notify_laddrs(&self, m: &Model) {
        if let Some(hook) = &self.laddr_hook {
            let mut all: Vec<Ipv4Addr> = m.services.values().flat_map(|s| s.laddrs.iter().copied()).collect();
            all.sort();
            all.dedup();
            hook(&all);
        }
    }

    /// Connects the workers' mailboxes (in worker order) for `-L -c`.
    pub fn with_mailboxes(mut self, mailboxes: Vec<ControlMailbox>) -> Control {
        self.mailboxes = mailboxes;
        self
    }

    /// Housekeeping, called every 100 ms or so: releases retired snapshots
    /// no worker uses any more, and every [`RATE_PERIOD`] updates the rates.
    pub fn tick(&self, now: Instant) {
        let mut m = self.lock();
        self.release_retired(&mut m);
        let secs = match m.last_estimate {
            None => {
                m.last_estimate = Some(now);
                return;
            }
            Some(t) if now.duration_since(t) < RATE_PERIOD => return,
            Some(t) => now.duration_since(t).as_secs_f64(),
        };
        m.last_estimate = Some(now);
        let slots: Vec<(bool, u32)> = m
            .services
            .values()
            .flat_map(|s| std::iter::once((false, s.slot)).chain(s.dests.iter().map(|d| (true, d.slot))))
            .collect();
        for (is_dest, slot) in slots {
            let cur = if is_dest { self.dest_stats(slot).0 } else { self.svc_stats(slot) };
            m.rates
                .entry((is_dest, slot))
                .or_insert_with(|| RateEst { last: cur, avg: [0.0; 5] })
                .update(cur, secs);
        }
    }

    /// Drops the retired snapshots every worker has moved past.
    fn release_retired(&self, m: &mut Model) {
        let min = self.min_worker_generation();
        m.retired.retain(|s| s.generation >= min);
    }

    fn rates_of(m: &Model, is_dest: bool, slot: u32) -> Rates {
        m.rates.get(&(is_dest, slot)).map(RateEst::rates).unwrap_or_default()
    }

    /// Carries out one request.
    pub fn handle(&self, req: Request) -> Response {
        let mut m = self.lock();
        let r = self.apply(&mut m, req);
        if let Ok(true) = r {
            self.publish(&mut m);
        }
        self.release_retired(&mut m);
        match r {
            Ok(_) => Response::Ok,
            Err(resp) => resp,
        }
    }

    /// Builds and publishes a snapshot of the model.
    fn publish(&self, m: &mut Model) {
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
                        addr: u32::from(d.spec.addr),
                        port: d.spec.port,
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
                    laddrs: s.laddrs.iter().map(|a| u32::from(*a)).collect(),
                    persistent_ms: s.spec.persistent.map(|p| p as u64 * 1000),
                    netmask: u32::from(s.spec.netmask),
                    one_packet: s.spec.one_packet,
                    sched_flags: s.spec.sched_flags,
                })
            })
            .collect();
        let snap = Arc::new(Snapshot::new(m.generation, services, self.max_dests).with_timeouts(m.timeouts));
        let old = self.publisher.publish(snap);
        m.retired.push(old);
        self.notify_laddrs(m);
    }

    /// Applies a request to the model; `Ok(true)` if it changed.
    fn apply(&self, m: &mut Model, req: Request) -> Result<bool, Response> {
        m.version += 1;
        let version = m.version;
        match req {
            Request::AddService { spec } => {
                // IPVS: a port-0 ("all ports") service must be persistent.
                if spec.key.port == 0 && spec.persistent.is_none() {
                    return Err(err(ErrorKind::Invalid, "a port 0 service must be persistent"));
                }
                if m.services.contains_key(&spec.key) {
                    return Err(err(ErrorKind::ServiceExists, format!("{}", spec.key)));
                }
                let slot = m
                    .svc_slots
                    .alloc(|_, _| true)
                    .ok_or_else(|| err(ErrorKind::Full, "service table is full (workers.max_services)"))?;
                let base = self.svc_stats(slot);
                m.svc_base.insert(slot, base);
                m.rates.remove(&(false, slot));
                m.services.insert(spec.key, SvcEntry { slot, version, spec, dests: vec![], laddrs: vec![] });
                Ok(true)
            }
            Request::EditService { spec } => {
                let s = m.services.get_mut(&spec.key).ok_or_else(|| no_service(&spec.key))?;
                s.spec = spec;
                s.version = version;
                Ok(true)
            }
            Request::DelService { key } => {
                let s = m.services.remove(&key).ok_or_else(|| no_service(&key))?;
                let gen = m.generation + 1;
                for d in s.dests {
                    m.dest_slots.release(d.slot, gen);
                }
                m.svc_slots.release(s.slot, gen);
                Ok(true)
            }
            Request::Clear => {
                let gen = m.generation + 1;
                let all = std::mem::take(&mut m.services);
                for s in all.into_values() {
                    for d in s.dests {
                        m.dest_slots.release(d.slot, gen);
                    }
                    m.svc_slots.release(s.slot, gen);
                }
                Ok(true)
            }
            Request::AddDest { service, dest } => {
                validate_dest(&dest)?;
                let s = m.services.get(&service).ok_or_else(|| no_service(&service))?;
                if s.dests.iter().any(|d| d.spec.addr == dest.addr && d.spec.port == dest.port) {
                    return Err(err(ErrorKind::DestExists, format!("{}:{}", dest.addr, dest.port)));
                }
                let min_gen = self.min_worker_generation();
                let slot = m
                    .dest_slots
                    .alloc(|slot, freed| {
                        let (_, a, i) = self.dest_stats(slot);
                        min_gen >= freed && a == 0 && i == 0
                    })
                    .ok_or_else(|| {
                        err(
                            ErrorKind::Full,
                            format!("real-server table is full (workers.max_dests = {})", m.dest_slots.max),
                        )
                    })?;
                let base = self.dest_stats(slot).0;
                m.dest_base.insert(slot, base);
                m.rates.remove(&(true, slot));
                let s = m.services.get_mut(&service).expect("checked above");
                s.dests.push(DestEntry { spec: dest, slot, last_weight: dest.weight });
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
                let gen = m.generation + 1;
                let s = m.services.get_mut(&service).ok_or_else(|| no_service(&service))?;
                let pos = s
                    .dests
                    .iter()
                    .position(|d| d.spec.addr == addr && d.spec.port == port)
                    .ok_or_else(|| err(ErrorKind::NoDest, format!("{addr}:{port}")))?;
                let d = s.dests.remove(pos);
                s.version = version;
                m.dest_slots.release(d.slot, gen);
                Ok(true)
            }
            Request::AddLaddr { service, addr } => {
                if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() || addr.is_loopback() {
                    return Err(err(ErrorKind::Invalid, format!("{addr} cannot be a local address")));
                }
                let s = m.services.get_mut(&service).ok_or_else(|| no_service(&service))?;
                if s.laddrs.contains(&addr) {
                    return Err(err(ErrorKind::LaddrExists, addr.to_string()));
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
            | Request::ListConns { .. } => Err(err(ErrorKind::BadRequest, "not a change")),
        }
    }

    /// Makes the configuration equal to what `desired` (a rules file's
    /// requests) describes, for a reload. `desired` is first applied to an
    /// empty scratch model: if any request fails, nothing changes and the
    /// error says which. Otherwise only the differences are applied, as one
    /// change: services, servers and local addresses that stay keep their
    /// slots, statistics and sessions.
    pub fn sync(&self, desired: Vec<Request>) -> Response {
        let empty = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], self.max_dests))));
        let scratch = Control::new(empty, vec![], 0, self.max_services, self.max_dests);
        if let e @ Response::Error { .. } = scratch.handle(Request::Restore { requests: desired }) {
            return e;
        }
        let want = std::mem::take(&mut scratch.lock().services);
        let ops = {
            let m = self.lock();
            let mut ops = vec![];
            for k in m.services.keys().filter(|k| !want.contains_key(k)) {
                ops.push(Request::DelService { key: *k });
            }
            for (k, w) in &want {
                let same_dest = |a: &DestSpec, b: &DestSpec| (a.addr, a.port) == (b.addr, b.port);
                let Some(cur) = m.services.get(k) else {
                    ops.push(Request::AddService { spec: w.spec.clone() });
                    ops.extend(w.dests.iter().map(|d| Request::AddDest { service: *k, dest: d.spec }));
                    ops.extend(w.laddrs.iter().map(|a| Request::AddLaddr { service: *k, addr: *a }));
                    continue;
                };
                if cur.spec != w.spec {
                    ops.push(Request::EditService { spec: w.spec.clone() });
                }
                for d in cur.dests.iter().filter(|d| !w.dests.iter().any(|x| same_dest(&x.spec, &d.spec))) {
                    ops.push(Request::DelDest { service: *k, addr: d.spec.addr, port: d.spec.port });
                }
                for d in &w.dests {
                    match cur.dests.iter().find(|x| same_dest(&x.spec, &d.spec)) {
                        None => ops.push(Request::AddDest { service: *k, dest: d.spec }),
                        Some(x) if x.spec != d.spec => {
                            ops.push(Request::EditDest { service: *k, dest: d.spec })
                        }
                        Some(_) => {}
                    }
                }
                for a in cur.laddrs.iter().filter(|a| !w.laddrs.contains(a)) {
                    ops.push(Request::DelLaddr { service: *k, addr: *a });
                }
                for a in w.laddrs.iter().filter(|a| !cur.laddrs.contains(a)) {
                    ops.push(Request::AddLaddr { service: *k, addr: *a });
                }
            }
            ops
        };
        if ops.is_empty() {
            return Response::Ok;
        }
        self.handle(Request::Restore { requests: ops })
    }

    /// Answers read-only requests; everything else goes to [`handle`](Self::handle).
    pub fn query(&self, req: Request) -> Response {
        match req {
            Request::List { service } => {
                let m = self.lock();
                if let Some(k) = service {
                    if !m.services.contains_key(&k) {
                        return no_service(&k);
                    }
                }
                let services = m
                    .services
                    .values()
                    .filter(|s| service.is_none_or(|k| k == s.spec.key))
                    .map(|s| ServiceInfo {
                        spec: s.spec.clone(),
                        dests: s
                            .dests
                            .iter()
                            .map(|d| {
                                let (st, active, inactive) = self.dest_stats(d.slot);
                                let base = m.dest_base.get(&d.slot).copied().unwrap_or_default();
                                DestInfo {
                                    spec: d.spec,
                                    active_conns: active,
                                    inactive_conns: inactive,
                                    persist_conns: self.dest_persist(d.slot),
                                    stats: sub(st, base),
                                    rates: Self::rates_of(&m, true, d.slot),
                                }
                            })
                            .collect(),
                        laddrs: s.laddrs.clone(),
                        stats: sub(
                            self.svc_stats(s.slot),
                            m.svc_base.get(&s.slot).copied().unwrap_or_default(),
                        ),
                        rates: Self::rates_of(&m, false, s.slot),
                    })
                    .collect();
                Response::Services { conn_table_size: self.conn_table_size, services }
            }
            Request::GetLaddr { service } => {
                let m = self.lock();
                if let Some(k) = service {
                    if !m.services.contains_key(&k) {
                        return no_service(&k);
                    }
                }
                let entries = m
                    .services
                    .values()
                    .filter(|s| service.is_none_or(|k| k == s.spec.key))
                    .map(|s| (s.spec.key, s.laddrs.clone()))
                    .collect();
                Response::Laddrs { entries }
            }
            Request::ListConns { service } => {
                if let Some(k) = service {
                    if !self.lock().services.contains_key(&k) {
                        return no_service(&k);
                    }
                }
                let filter = service.map(|k| ConnFilter {
                    proto: k.proto.number(),
                    vip: u32::from(k.addr),
                    vport: k.port,
                });
                let mut conns = vec![];
                for (w, mb) in self.mailboxes.iter().enumerate() {
                    let (sessions, now, complete) = mb.list(filter, 8192, Duration::from_secs(2));
                    if !complete {
                        return err(
                            ErrorKind::Invalid,
                            format!("worker {w} did not answer the connection listing"),
                        );
                    }
                    conns.extend(sessions.iter().map(|s| conn_info(w as u32, s, now)));
                }
                Response::Conns { conns }
            }
            Request::GetTimeouts => {
                let t = self.lock().timeouts;
                Response::Timeouts {
                    timeouts: TimeoutSet { tcp: t.established, tcpfin: t.fin_wait, udp: t.udp },
                }
            }
            Request::Counters => Response::Counters {
                workers: self
                    .workers
                    .iter()
                    .map(|w| WireCounters { worker: w.worker, lcore: w.lcore, counters: w.snapshot() })
                    .collect(),
            },
            other => self.handle(other),
        }
    }
}

fn no_service(k: &ServiceKey) -> Response {
    err(ErrorKind::NoService, format!("{k}"))
}

fn validate_dest(d: &DestSpec) -> Result<(), Response> {
    if d.weight > 65535 {
        return Err(err(ErrorKind::Invalid, "weight must be 0..=65535"));
    }
    if d.addr.is_unspecified() || d.addr.is_multicast() || d.addr.is_broadcast() {
        return Err(err(ErrorKind::Invalid, format!("bad real server {}:{}", d.addr, d.port)));
    }
    // As the kernel (ERANGE): a lower threshold above the upper one.
    if d.upper != 0 && d.lower > d.upper {
        return Err(err(ErrorKind::Invalid, "lower threshold above the upper threshold"));
    }
    Ok(())
}

/// Most control connections served at once; more are refused.
const MAX_CLIENTS: usize = 64;

/// The numeric id of group `name`, from `/etc/group`.
pub fn group_id(name: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string("/etc/group")?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let (n, _, gid) = (f.next()?, f.next()?, f.next()?);
            (n == name).then(|| gid.parse().ok()).flatten()
        })
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no group {name:?} in /etc/group")))
}

/// Serves `control` on a unix socket at `path` until the process ends. Only
/// root may connect (mode 0600), or also the members of `group` (mode 0660,
/// group-owned): the kernel checks the socket file's permissions on
/// connect. Returns once the socket is listening; connections are served on
/// their own threads.
pub fn serve_with_group(control: Arc<Control>, path: &Path, group: Option<u32>) -> io::Result<PathBuf> {
    let p = serve(control, path)?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(&p, None, Some(gid))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o660))?;
    }
    Ok(p)
}

/// Serves `control` on a unix socket at `path` (mode 0600) until the process
/// ends. Returns once the socket is listening; connections are served on
/// their own threads.
pub fn serve(control: Arc<Control>, path: &Path) -> io::Result<PathBuf> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use: is another gatewayd running?", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name("gw-control".into()).spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            if active.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                active.fetch_sub(1, Ordering::AcqRel);
                let _ = write_frame(&mut conn, &err(ErrorKind::Full, "too many control connections"));
                continue;
            }
            let (control, active) = (control.clone(), active.clone());
            let spawned = std::thread::Builder::new().name("gw-ctl-conn".into()).spawn(move || {
                serve_conn(&control, &mut conn);
                active.fetch_sub(1, Ordering::AcqRel);
            });
            if spawned.is_err() {
                tracing::warn!("cannot start a control connection thread");
            }
        }
    })?;
    Ok(path.to_path_buf())
}

/// Serves requests on one connection until it closes or misbehaves.
pub fn serve_conn(control: &Control, conn: &mut UnixStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    loop {
        let reply = match read_frame::<_, Request>(conn) {
            Ok(req) => control.query(req),
            Err(FrameError::Closed) => return,
            // The body was read whole, so the stream is still in step.
            Err(FrameError::Decode(e)) => err(ErrorKind::BadRequest, format!("malformed request: {e}")),
            Err(e) => {
                let _ = write_frame(conn, &err(ErrorKind::BadRequest, e.to_string()));
                return;
            }
        };
        if write_frame(conn, &reply).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw_proto::{ForwardMode, Protocol, Scheduler};
    use std::os::unix::fs::PermissionsExt;

    fn key(port: u16) -> ServiceKey {
        ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100), port }
    }
    fn dest(last: u8) -> DestSpec {
        DestSpec::new(Ipv4Addr::new(198, 18, 1, last), 80, ForwardMode::FullNat, 1)
    }
    fn control(workers: usize) -> (Control, Arc<Publisher>) {
        let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 16))));
        let w = (0..workers).map(|i| Arc::new(WorkerCounters::new(i as u32, i as u32, 8, 16))).collect();
        (Control::new(publisher.clone(), w, 1000, 8, 16), publisher)
    }
    fn add(c: &Control) {
        let spec = ServiceSpec::new(key(80), Scheduler::Rr);
        assert_eq!(c.handle(Request::AddService { spec }), Response::Ok);
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: dest(2) }), Response::Ok);
    }

    #[test]
    fn changes_publish_snapshots_and_errors_do_not() {
        let (c, p) = control(1);
        add(&c);
        let snap = p.current();
        assert_eq!(snap.generation, 2);
        let svc = snap.service(6, u32::from(Ipv4Addr::new(198, 18, 0, 100)), 80).unwrap();
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

    #[test]
    fn listing_sums_workers_and_zero_resets() {
        let (c, _) = control(2);
        add(&c);
        c.workers[0].dests[0].inpkts.add(3);
        c.workers[1].dests[0].inpkts.add(4);
        c.workers[1].dests[0].active.add(2);
        let Response::Services { services, conn_table_size } = c.query(Request::List { service: None })
        else {
            panic!()
        };
        assert_eq!(conn_table_size, 1000);
        assert_eq!(services[0].dests[0].stats.inpkts, 7);
        assert_eq!(services[0].dests[0].active_conns, 2);
        assert_eq!(c.query(Request::Zero { service: None }), Response::Ok);
        let Response::Services { services, .. } = c.query(Request::List { service: None }) else { panic!() };
        assert_eq!(services[0].dests[0].stats.inpkts, 0);
        assert_eq!(services[0].dests[0].active_conns, 2);
    }

    #[test]
    fn a_deleted_dest_slot_is_not_reused_while_sessions_hold_it() {
        let (c, _) = control(1);
        add(&c);
        c.workers[0].dests[0].inactive.add(1); // a live session on slot 0
        c.workers[0].generation.set(u64::MAX);
        c.handle(Request::DelDest { service: key(80), addr: dest(2).addr, port: 80 });
        c.handle(Request::AddDest { service: key(80), dest: dest(3) });
        assert_eq!(c.lock().services[&key(80)].dests[0].slot, 1);
        c.workers[0].dests[0].inactive.sub(1);
        c.handle(Request::AddDest { service: key(80), dest: dest(4) });
        assert_eq!(c.lock().services[&key(80)].dests[1].slot, 0);
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
        assert!(snap.service(6, u32::from(key(81).addr), 81).is_some(), "rule 1 stays applied");
        assert!(snap.service(6, u32::from(key(82).addr), 82).is_none(), "rule 3 never ran");
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
    fn the_socket_survives_hostile_clients_and_keeps_the_rules() {
        use std::io::{Read, Write};
        let (c, _) = control(1);
        add(&c);
        let c = Arc::new(c);
        let path = std::env::temp_dir().join(format!("gw-ctl-test-{}.sock", std::process::id()));
        serve(c.clone(), &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut junk = 0x2545_f491_4f6c_dd1du64;
        let mut threads = vec![];
        for t in 0..32u64 {
            let path = path.clone();
            junk = junk.wrapping_mul(6364136223846793005).wrapping_add(t);
            let seed = junk;
            threads.push(std::thread::spawn(move || {
                let mut conn = UnixStream::connect(&path).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                match t % 4 {
                    // Arbitrary bytes.
                    0 => {
                        let bytes: Vec<u8> =
                            (0..4096u64).map(|i| (seed.rotate_left(i as u32 % 64) ^ i) as u8).collect();
                        let _ = conn.write_all(&bytes);
                    }
                    // A truncated frame, then hang up.
                    1 => {
                        let _ = conn.write_all(&100u32.to_be_bytes());
                        let _ = conn.write_all(b"{\"op\":\"cle");
                    }
                    // A huge length: refused without reading it.
                    2 => {
                        let _ = conn.write_all(&u32::MAX.to_be_bytes());
                        let mut buf = vec![];
                        let _ = conn.read_to_end(&mut buf);
                    }
                    // A well-behaved client.
                    _ => {
                        write_frame(&mut conn, &Request::List { service: None }).unwrap();
                        let r: Response = read_frame(&mut conn).unwrap();
                        assert!(matches!(r, Response::Services { .. }));
                    }
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        // The daemon still answers and nothing was lost.
        let mut conn = UnixStream::connect(&path).unwrap();
        write_frame(&mut conn, &Request::List { service: None }).unwrap();
        let Response::Services { services, .. } = read_frame(&mut conn).unwrap() else { panic!() };
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].dests.len(), 1);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_reload_applies_only_the_differences_and_a_bad_one_changes_nothing() {
        let (c, p) = control(1);
        add(&c);
        let slot_of = |c: &Control, last: u8| {
            c.lock().services[&key(80)].dests.iter().find(|d| d.spec.addr.octets()[3] == last).map(|d| d.slot)
        };
        let kept = slot_of(&c, 2).unwrap();
        let spec = ServiceSpec::new(key(80), Scheduler::Rr);
        let mut heavier = dest(3);
        heavier.weight = 5;
        let desired = vec![
            Request::AddService { spec: spec.clone() },
            Request::AddDest { service: key(80), dest: dest(2) },
            Request::AddDest { service: key(80), dest: heavier },
            Request::AddService { spec: ServiceSpec::new(key(81), Scheduler::Wlc) },
        ];
        assert_eq!(c.sync(desired.clone()), Response::Ok);
        assert_eq!(slot_of(&c, 2), Some(kept), "an unchanged server keeps its slot (and sessions)");
        assert_eq!(
            c.lock().services[&key(80)].dests.iter().find(|d| d.spec.weight == 5).map(|d| d.spec.addr),
            Some(heavier.addr)
        );
        assert!(c.lock().services.contains_key(&key(81)));
        let generation = p.current().generation;
        assert_eq!(c.sync(desired), Response::Ok);
        assert_eq!(p.current().generation, generation, "nothing to do: no new snapshot");
        // A bad reload keeps everything as it was.
        let bad = vec![Request::AddService { spec: spec.clone() }, Request::AddService { spec }];
        assert!(matches!(c.sync(bad), Response::Error { kind: ErrorKind::ServiceExists, .. }));
        assert_eq!(p.current().generation, generation);
        assert!(c.lock().services.contains_key(&key(81)));
        // Dropping a service from the file deletes it.
        assert_eq!(
            c.sync(vec![Request::AddService { spec: ServiceSpec::new(key(81), Scheduler::Wlc) }]),
            Response::Ok
        );
        assert!(!c.lock().services.contains_key(&key(80)));
    }

    #[test]
    fn the_laddr_hook_follows_every_change() {
        let seen = Arc::new(Mutex::new(vec![]));
        let (c, _) = control(1);
        let c = c.with_laddr_hook({
            let seen = seen.clone();
            move |l| seen.lock().unwrap().push(l.to_vec())
        });
        add(&c);
        let lip = Ipv4Addr::new(198, 18, 1, 10);
        c.handle(Request::AddLaddr { service: key(80), addr: lip });
        c.handle(Request::DelLaddr { service: key(80), addr: lip });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.first(), Some(&vec![]));
        assert!(seen.contains(&vec![lip]));
        assert_eq!(seen.last(), Some(&vec![]));
    }

    #[test]
    fn a_configured_group_may_use_the_socket() {
        use std::os::unix::fs::MetadataExt;
        let (c, _) = control(1);
        let path = std::env::temp_dir().join(format!("gw-ctl-group-{}.sock", std::process::id()));
        let gid = group_id("root").unwrap();
        serve_with_group(Arc::new(c), &path, Some(gid)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), gid);
        assert!(group_id("no-such-group-here").is_err());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn garbage_on_the_socket_gets_an_error_and_the_connection_survives() {
        let (c, _) = control(1);
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || serve_conn(&c, &mut b));
        use std::io::Write;
        a.write_all(&5u32.to_be_bytes()).unwrap();
        a.write_all(b"hello").unwrap();
        let r: Response = read_frame(&mut a).unwrap();
        assert!(matches!(r, Response::Error { kind: ErrorKind::BadRequest, .. }));
        write_frame(&mut a, &Request::List { service: None }).unwrap();
        let r: Response = read_frame(&mut a).unwrap();
        assert!(matches!(r, Response::Services { .. }));
        // A huge length closes the connection after an error reply.
        a.write_all(&u32::MAX.to_be_bytes()).unwrap();
        let r: Response = read_frame(&mut a).unwrap();
        assert!(matches!(r, Response::Error { kind: ErrorKind::BadRequest, .. }));
        t.join().unwrap();
    }
}
