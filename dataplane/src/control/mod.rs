//! The control plane: the service model behind `gwctl`'s socket, published
//! to the workers as snapshots.
//!
//! One job per file: [`model`] holds the services and real servers and
//! applies one change; [`reload`] turns a desired configuration into the
//! differences to apply (SIGHUP); [`stats`] sums the workers' counters and
//! estimates rates; [`query`] answers the read-only requests; [`server`] is the
//! unix socket. This file has the [`Control`] type and the request dispatch.
//!
//! The model lives only here, behind one mutex that workers never take. Each
//! change builds a new immutable [`Snapshot`](gw_core::service::Snapshot) and publishes it; the previous
//! snapshots are kept in `retired` until every worker reports (through its
//! counters block) that it runs a newer generation, so the last reference to
//! a snapshot is always dropped here and never on a worker's core.
//!
//! Statistics slots: each service and real server gets a slot that indexes
//! the per-worker counter arrays. A deleted one goes to the trash
//! ([`trash`], IPVS's `dest_trash`) with its slot while sessions may
//! reference it: its sessions keep forwarding, and re-adding it takes it
//! back with its slot, its sessions and its counters.

mod metrics;
mod model;
mod neighbours;
mod query;
mod reload;
mod server;
mod stats;
mod trash;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gw_proto::{ErrorKind, Request, Response, ServiceKey};

use gw_core::counters::WorkerCounters;
use gw_core::mailbox::ControlMailbox;
use gw_core::service::Publisher;

use self::model::{Model, Slots};

pub use self::metrics::BackendLabels;
pub use self::neighbours::{check as check_neighbour, NeighPort, MAX_STATIC_NEIGHBOURS};
pub use self::server::{
    clear_socket_path, group_id, remove_socket, serve, serve_conn, serve_with_group, MAX_CLIENTS,
    REPLY_DEADLINE, REQUEST_DEADLINE,
};
pub use self::stats::{PortReader, PORT_STATS_PERIOD, RATE_PERIOD};
pub use self::trash::TRASH_GRACE;

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
    /// Most lblc/lblcr services at once ([`Control::with_locality_services`]).
    max_locality: usize,
    /// Most connections a listing collects ([`query::MAX_LISTED`]; lower in
    /// tests).
    max_listed: usize,
    /// The DPDK ports' statistics (none without a reader).
    ports: stats::PortStats,
    /// Static neighbours (none without ports).
    statics: Option<neighbours::Statics>,
    /// The ports' addresses and subnets, which a real server or a local
    /// address must not be (none without ports; [`model::on_a_port`]).
    port_addrs: Arc<[NeighPort]>,
    /// The labels `node_ipvs_backend_*` keep (`[metrics] backend_labels`).
    backend_labels: BackendLabels,
    /// The health checkers' view of their real servers, per service, as
    /// [`crate::health`] last published it (listings only).
    health: Mutex<BTreeMap<ServiceKey, Vec<gw_proto::RsHealth>>>,
}

/// See [`Control::with_laddr_hook`].
type LaddrHook = Box<dyn Fn(&[Ipv4Addr]) + Send + Sync>;

fn err(kind: ErrorKind, msg: impl Into<String>) -> Response {
    Response::error(kind, msg)
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
                trash: Default::default(),
                generation,
                version: 0,
                timeouts,
                retired: vec![],
                svc_base: HashMap::new(),
                dest_base: HashMap::new(),
                svc_origin: HashMap::new(),
                dest_origin: HashMap::new(),
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
            max_locality: max_services,
            max_listed: query::MAX_LISTED,
            ports: Default::default(),
            statics: None,
            port_addrs: Arc::new([]),
            backend_labels: BackendLabels::default(),
            health: Mutex::new(BTreeMap::new()),
        }
    }

    /// Replaces the health state shown in listings (by [`crate::health`]).
    pub fn set_health(&self, health: BTreeMap<ServiceKey, Vec<gw_proto::RsHealth>>) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = health;
    }

    fn health_of(&self, key: &ServiceKey) -> Vec<gw_proto::RsHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `hook` with all local addresses now and after every change.
    pub fn with_laddr_hook(mut self, hook: impl Fn(&[Ipv4Addr]) + Send + Sync + 'static) -> Control {
        self.laddr_hook = Some(Box::new(hook));
        self.notify_laddrs(&self.lock());
        self
    }

    fn notify_laddrs(&self, m: &Model) {
        if let Some(hook) = &self.laddr_hook {
            // Trashed servers' sessions still use theirs (see `trash`).
            // IPv4 ones only: the hook's users (the kernel port's ARP) are IPv4.
            let trashed = m.trash.dests.values().flat_map(|d| d.laddrs.iter().copied());
            let mut all: Vec<Ipv4Addr> = m
                .services
                .values()
                .flat_map(|s| s.laddrs.iter().copied())
                .chain(trashed)
                .filter_map(gw_proto::v4)
                .collect();
            all.sort();
            all.dedup();
            hook(&all);
        }
    }

    /// Reads the ports' statistics with `reader` every [`PORT_STATS_PERIOD`]
    /// (on [`tick`](Self::tick)), for `--counters`.
    pub fn with_port_stats(
        mut self,
        reader: impl Fn() -> Vec<gw_proto::PortCounters> + Send + Sync + 'static,
    ) -> Control {
        self.ports.reader = Some(Box::new(reader));
        self
    }

    /// Accepts at most `n` lblc/lblcr services at once (each worker allocates
    /// a cache for each: [`crate::config::Config::locality_services`]); one
    /// more is refused as the kernel refuses what it cannot allocate
    /// ([`ErrorKind::Full`]: ipvsadm's "Memory allocation problem").
    /// Without this call: `max_services`.
    pub fn with_locality_services(mut self, n: usize) -> Control {
        self.max_locality = n;
        self
    }

    /// The labels `node_ipvs_backend_*` keep ([`BackendLabels`]; without
    /// this call all six, one series per real server).
    pub fn with_backend_labels(mut self, labels: BackendLabels) -> Control {
        self.backend_labels = labels;
        self
    }

    /// Connects the workers' mailboxes (in worker order) for `-L -c`.
    pub fn with_mailboxes(mut self, mailboxes: Vec<ControlMailbox>) -> Control {
        self.mailboxes = mailboxes;
        self
    }

    /// Housekeeping, called every 100 ms or so: releases retired snapshots
    /// no worker uses any more, empties the trash of what no session
    /// references any more ([`TRASH_GRACE`]), every [`RATE_PERIOD`] updates
    /// the rates, and every [`PORT_STATS_PERIOD`] reads the ports' statistics.
    pub fn tick(&self, now: Instant) {
        {
            let mut m = self.lock();
            if self.sweep_trash(&mut m, now) {
                self.publish(&mut m);
            }
            self.release_retired(&mut m);
            self.estimate(&mut m, now);
        }
        self.read_ports(now);
    }

    /// Drops the retired snapshots every worker has moved past.
    fn release_retired(&self, m: &mut Model) {
        let min = self.min_worker_generation();
        m.retired.retain(|s| s.generation >= min);
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

    /// Answers read-only requests; everything else goes to [`handle`](Self::handle).
    pub fn query(&self, req: Request) -> Response {
        match req {
            Request::List { service } => self.list(service),
            Request::GetLaddr { service } => self.laddrs(service),
            Request::ListConns { service } => self.conns(service),
            Request::GetTimeouts => self.timeouts(),
            Request::Counters => self.counters(),
            Request::Neighbour(r) => self.neighbour(r),
            other => self.handle(other),
        }
    }
}

fn no_service(k: &ServiceKey) -> Response {
    err(ErrorKind::NoService, format!("{k}"))
}

/// Fixtures shared by the control plane's unit tests.
#[cfg(test)]
mod test_util {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use gw_core::counters::WorkerCounters;
    use gw_core::service::{Publisher, Snapshot};
    use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Response, Scheduler, ServiceKey, ServiceSpec};

    use super::Control;

    pub(super) fn key(port: u16) -> ServiceKey {
        ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port }
    }
    pub(super) fn dest(last: u8) -> DestSpec {
        DestSpec::new(Ipv4Addr::new(198, 18, 1, last), 80, ForwardMode::FullNat, 1)
    }
    pub(super) fn control(workers: usize) -> (Control, Arc<Publisher>) {
        let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 16))));
        let w = (0..workers).map(|i| Arc::new(WorkerCounters::new(i as u32, i as u32, 8, 16))).collect();
        (Control::new(publisher.clone(), w, 1000, 8, 16), publisher)
    }
    pub(super) fn add(c: &Control) {
        let spec = ServiceSpec::new(key(80), Scheduler::Rr);
        assert_eq!(c.handle(Request::AddService { spec }), Response::Ok);
        assert_eq!(c.handle(Request::AddDest { service: key(80), dest: dest(2) }), Response::Ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::test_util::{add, control, key};

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
        c.handle(Request::AddLaddr { service: key(80), addr: lip.into() });
        c.handle(Request::DelLaddr { service: key(80), addr: lip.into() });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.first(), Some(&vec![]));
        assert!(seen.contains(&vec![lip]));
        assert_eq!(seen.last(), Some(&vec![]));
    }

    /// A service takes at most `MAX_LADDRS` local addresses: one more is
    /// refused (`Full`), and a restore that brings more stops there.
    #[test]
    fn a_service_takes_a_bounded_number_of_local_addresses() {
        let (c, _) = control(1);
        add(&c);
        let lip = |i: usize| std::net::IpAddr::from(Ipv4Addr::from(0xc612_0000 + i as u32));
        let max = model::MAX_LADDRS;
        let requests = (0..max).map(|i| Request::AddLaddr { service: key(80), addr: lip(i) }).collect();
        assert_eq!(c.handle(Request::Restore { requests }), Response::Ok);
        let r = c.handle(Request::AddLaddr { service: key(80), addr: lip(max) });
        assert!(matches!(r, Response::Error { kind: gw_proto::ErrorKind::Full, .. }), "{r:?}");
        assert_eq!(c.lock().services[&key(80)].laddrs.len(), max);
    }

    /// IPv6 services, servers and local addresses reach the snapshot under
    /// ipvsadm's and DPVS's family rules; what breaks them is refused by
    /// name and changes nothing.
    #[test]
    fn ipv6_services_follow_the_family_rules() {
        use gw_core::wire::ipv4::Protocol as P;
        use gw_proto::{DestSpec, ErrorKind, ForwardMode, Scheduler, ServiceSpec};
        let (c, p) = control(1);
        add(&c);
        let v6 = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
        let key6 = gw_proto::ServiceKey { addr: v6("2001:db8::1"), ..key(80) };
        let mut spec = ServiceSpec::new(key6, Scheduler::Rr);
        spec.persistent = Some(60);
        spec.prefix6 = 64;
        let ok = [
            Request::AddService { spec },
            Request::AddDest {
                service: key6,
                dest: DestSpec::new(v6("2001:db8:1::2"), 80, ForwardMode::FullNat, 1),
            },
            Request::AddDest {
                service: key6,
                dest: DestSpec::new(v6("2001:db8:1::3"), 80, ForwardMode::Masq, 1),
            },
            // NAT64: an IPv4 FULLNAT server behind the IPv6 VIP, with an IPv4 local address.
            Request::AddDest {
                service: key6,
                dest: DestSpec::new(Ipv4Addr::new(198, 18, 1, 4), 80, ForwardMode::FullNat, 1),
            },
            Request::AddLaddr { service: key6, addr: v6("2001:db8:1::10") },
            Request::AddLaddr { service: key6, addr: Ipv4Addr::new(198, 18, 1, 10).into() },
        ];
        for r in ok {
            assert_eq!(c.handle(r.clone()), Response::Ok, "{r:?}");
        }
        let snap = p.current();
        let vip = u128::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | 1));
        let svc = snap.service6(P::Tcp, vip, 80).expect("the IPv6 service");
        assert_eq!(svc.dests.len(), 3);
        assert_eq!(svc.laddrs6, vec![0x2001_0db8_0001_u128 << 80 | 0x10]);
        assert_eq!(svc.laddrs, vec![u32::from(Ipv4Addr::new(198, 18, 1, 10))]);
        assert_eq!(svc.netmask6, u128::MAX << 64);
        assert!(snap.owns6(vip) && !snap.is_laddr6(vip));
        assert!(snap.is_laddr6(0x2001_0db8_0001_u128 << 80 | 0x10));
        assert!(snap.masq_dest6(P::Tcp, 0x2001_0db8_0001_u128 << 80 | 3, 80).is_some());
        assert!(snap.masq_dest6(P::Tcp, 0x2001_0db8_0001_u128 << 80 | 2, 80).is_none(), "FULLNAT");
        assert!(snap.service(P::Tcp, gw_core::service::vip4(&key(80)).unwrap(), 80).is_some(), "IPv4 stays");
        // The listing gives back what was added, both families of local address.
        let Response::Laddrs { entries } = c.query(Request::GetLaddr { service: Some(key6) }) else {
            panic!()
        };
        assert_eq!(entries[0].1, vec![v6("2001:db8:1::10"), Ipv4Addr::new(198, 18, 1, 10).into()]);

        let generation = p.current().generation;
        let refused = [
            // NAT, DR and TUN servers of the other family; NAT46.
            (key6, DestSpec::new(Ipv4Addr::new(198, 18, 1, 5), 80, ForwardMode::Masq, 1), ErrorKind::Invalid),
            (
                key6,
                DestSpec::new(Ipv4Addr::new(198, 18, 1, 5), 80, ForwardMode::Route, 1),
                ErrorKind::Invalid,
            ),
            (
                key6,
                DestSpec::new(Ipv4Addr::new(198, 18, 1, 5), 80, ForwardMode::Tunnel, 1),
                ErrorKind::Unsupported,
            ),
            (key(80), DestSpec::new(v6("2001:db8:1::5"), 80, ForwardMode::Tunnel, 1), ErrorKind::Unsupported),
            (key(80), DestSpec::new(v6("2001:db8:1::5"), 80, ForwardMode::FullNat, 1), ErrorKind::Invalid),
        ];
        for (service, dest, want) in refused {
            match c.handle(Request::AddDest { service, dest }) {
                Response::Error { kind, message } => {
                    assert_eq!(kind, want, "{message}");
                    assert!(message.contains("is not of the family of service"), "{message}");
                }
                other => panic!("{dest:?}: {other:?}"),
            }
        }
        let r = c.handle(Request::AddLaddr { service: key(80), addr: v6("2001:db8:1::10") });
        assert!(matches!(r, Response::Error { kind: ErrorKind::Invalid, .. }), "{r:?}");
        assert_eq!(p.current().generation, generation, "nothing was published");
        // Addresses no packet carries (::/64: IPv4-mapped, -compatible,
        // loopback; the engine would read a mapped server as NAT64's), and
        // an IPv6 persistence prefix outside 1..=128, from a raw client.
        let mut bad = vec![];
        for a in ["::ffff:198.18.1.5", "::198.18.1.5", "::1"] {
            let dest = DestSpec::new(v6(a), 80, ForwardMode::Masq, 1);
            bad.push(Request::AddDest { service: key6, dest });
            bad.push(Request::AddLaddr { service: key6, addr: v6(a) });
            let k = gw_proto::ServiceKey { addr: v6(a), ..key(80) };
            bad.push(Request::AddService { spec: ServiceSpec::new(k, Scheduler::Rr) });
        }
        let mut flags =
            ServiceSpec::new(gw_proto::ServiceKey { addr: v6("2001:db8::9"), ..key(80) }, Scheduler::Sh);
        flags.sched_flags = 8;
        bad.push(Request::AddService { spec: flags });
        for prefix6 in [0, 129] {
            let k = gw_proto::ServiceKey { addr: v6("2001:db8::9"), ..key(80) };
            let mut spec = ServiceSpec::new(k, Scheduler::Rr);
            (spec.persistent, spec.prefix6) = (Some(60), prefix6);
            bad.push(Request::AddService { spec });
        }
        // A port-0 service made non-persistent by an edit.
        let k0 = gw_proto::ServiceKey { addr: v6("2001:db8::9"), ..key(0) };
        let mut spec = ServiceSpec::new(k0, Scheduler::Rr);
        spec.persistent = Some(60);
        assert_eq!(c.handle(Request::AddService { spec: spec.clone() }), Response::Ok);
        let generation = p.current().generation;
        spec.persistent = None;
        bad.push(Request::EditService { spec });
        for r in bad {
            let got = c.handle(r.clone());
            assert!(matches!(got, Response::Error { kind: ErrorKind::Invalid, .. }), "{r:?}: {got:?}");
        }
        assert_eq!(p.current().generation, generation, "nothing was published");
        // Deleted, it leaves the snapshot.
        assert_eq!(c.handle(Request::DelService { key: key6 }), Response::Ok);
        assert!(p.current().service6(P::Tcp, vip, 80).is_none());
    }
}
