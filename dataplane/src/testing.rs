//! The test fixture shared by the integration tests (`dataplane/tests/`),
//! the fuzz targets ([`crate::fuzzing`], `fuzz/`) and the benchmarks
//! (`benches/`): a worker with two ports driven through `Worker<Vec<u8>>`
//! and a driven clock, configured through the same control-plane code
//! gatewayd runs ([`Control`]), and an independent checker of what it emits
//! (the `etherparse` crate plus checksums computed here, never our own
//! `wire` views). Built only with the `testing` feature, as s2n-quic-core
//! keeps its fixtures.
//!
//! The lab: port 0 ([`GW_OUT`], 198.18.0.1/24) faces the clients, port 1
//! ([`GW_IN`], 198.18.1.1/24) the real servers [`RS`]; services live on
//! [`VIP`]:[`VPORT`]; FULLNAT uses the local address [`LIP`].

use std::net::Ipv4Addr;
use std::sync::Arc;

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use gw_core::counters::WorkerCounters;
use gw_core::engine::{ConnReuse, Engine, EngineConfig, NoDest, RejectConfig};
use gw_core::neigh::NeighConfig;
use gw_core::route::{Iface, Route, Route6, Routes, RpFilter};
use gw_core::service::{Publisher, Snapshot};
use gw_core::tcp_state::Timeouts;
use gw_core::wire::ethernet::MacAddr;
use gw_core::worker::{Io, Worker};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Response, Scheduler, ServiceKey, ServiceSpec};

use crate::control::Control;

/// MAC of the gateway's client-facing port 0.
pub const GW_OUT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
/// MAC of the gateway's server-facing port 1.
pub const GW_IN: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x01]);
/// Address of port 0.
pub const GW_OUT_ADDR: [u8; 4] = [198, 18, 0, 1];
/// Address of port 1.
pub const GW_IN_ADDR: [u8; 4] = [198, 18, 1, 1];
/// MAC of a client on port 0's subnet.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x02];
/// A client on port 0's subnet.
pub const CLIENT: [u8; 4] = [198, 18, 0, 2];
/// MAC of an upstream router on port 0's subnet.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0xfe];
/// Address of the upstream router.
pub const ROUTER: [u8; 4] = [198, 18, 0, 254];
/// IPv6 address of the upstream router (on port 0's IPv6 prefix).
pub const ROUTER6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
/// MACs of the two real servers.
pub const RS_MAC: [[u8; 6]; 2] = [[0x02, 0xaa, 0, 0, 0, 0x02], [0x02, 0xaa, 0, 0, 0, 0x03]];
/// The two real servers, on port 1's subnet.
pub const RS: [[u8; 4]; 2] = [[198, 18, 1, 2], [198, 18, 1, 3]];
/// The virtual IP.
pub const VIP: [u8; 4] = [198, 18, 0, 100];
/// The service port.
pub const VPORT: u16 = 80;
/// The FULLNAT local address.
pub const LIP: [u8; 4] = [198, 18, 1, 10];

/// An IPv4 address (network byte order) and a port.
pub type Endpoint = ([u8; 4], u16);

/// An [`Io`] that keeps what the worker sends, and can run out of buffers.
#[derive(Debug, Default)]
pub struct SinkIo {
    /// (port, frame) in the order sent.
    pub sent: Vec<(u16, Vec<u8>)>,
    /// When set, `alloc` fails (no mbuf).
    pub no_buffers: bool,
    /// (worker, port, frame) handed to other workers, in order.
    pub handed: Vec<(u32, u16, Vec<u8>)>,
    /// (port, frame) handed to the port's kernel interface, in order.
    pub kernel: Vec<(u16, Vec<u8>)>,
    /// When set, the ring toward the kernel interfaces is full.
    pub kernel_full: bool,
}

impl Io<Vec<u8>> for SinkIo {
    fn alloc(&mut self) -> Option<Vec<u8>> {
        (!self.no_buffers).then(Vec::new)
    }
    fn send(&mut self, port: u16, pkt: Vec<u8>) {
        self.sent.push((port, pkt));
    }
    fn hand_off(&mut self, to: u32, port: u16, pkt: Vec<u8>) -> Result<(), Vec<u8>> {
        self.handed.push((to, port, pkt));
        Ok(())
    }
    fn punt(&mut self, port: u16, pkt: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.kernel_full {
            return Err(pkt);
        }
        self.kernel.push((port, pkt));
        Ok(())
    }
}

/// The client-side port's IPv6 address.
pub const GW_OUT_ADDR6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// The two ports; port 1 has IP MTU `inside_mtu`.
pub fn ifaces(inside_mtu: u16) -> Vec<Iface> {
    vec![
        Iface {
            port: 0,
            addr: Ipv4Addr::from(GW_OUT_ADDR),
            prefix: 24,
            // Dual stack on the client side, so that tests and the fuzz
            // target reach the engine's IPv6 path (NS and echo answered).
            addr6: Some((GW_OUT_ADDR6, 64)),
            mac: GW_OUT,
            mtu: 1500,
            rp_filter: RpFilter::Strict,
        },
        Iface {
            port: 1,
            addr: Ipv4Addr::from(GW_IN_ADDR),
            prefix: 24,
            addr6: None,
            mac: GW_IN,
            mtu: inside_mtu,
            rp_filter: RpFilter::Strict,
        },
    ]
}

/// The MAC of `port`, as [`ifaces`] sets it.
pub fn port_mac(port: u16) -> MacAddr {
    if port == 0 {
        GW_OUT
    } else {
        GW_IN
    }
}

/// The service on [`VIP`]:[`VPORT`] for `proto`.
pub fn key(proto: Protocol) -> ServiceKey {
    ServiceKey { proto, addr: Ipv4Addr::from(VIP).into(), port: VPORT }
}

/// Every knob of a [`Lab`]; `Default` is what the integration tests use.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// Session capacity (also the control plane's reported table size).
    pub sessions: usize,
    /// FULLNAT local-port range.
    pub lports: (u16, u16),
    /// IP MTU of port 1.
    pub inside_mtu: u16,
    /// Cap on half-open TCP sessions (each family's).
    pub half_open_max: usize,
    /// What a SYN on a closing session does (IPVS's `conn_reuse_mode`).
    pub conn_reuse: ConnReuse,
    /// `[ipvs] nodest_conn`.
    pub nodest: NoDest,
    /// Routes beyond the two connected subnets (default: everything else
    /// via [`ROUTER`], so clients may come from anywhere on port 0 and pass
    /// the strict reverse-path check).
    pub routes: Vec<Route>,
    /// IPv6 routes beyond port 0's prefix (default: everything else via
    /// [`ROUTER6`] on port 0).
    pub routes6: Vec<Route6>,
    /// How many workers share the traffic (this lab is worker 0).
    pub workers: u32,
    /// Session-table hash seed.
    pub seed: u64,
    /// Sessions expired per tick at most.
    pub expire_budget: usize,
    /// Real-server slots.
    pub max_dests: usize,
    /// Timeouts of the first configuration.
    pub timeouts: Timeouts,
    /// The neighbour table's settings.
    pub neigh: NeighConfig,
    /// The engine's clock at creation (ms).
    pub start_ms: u64,
    /// The lab's clock ([`Lab::now`]) to begin with (ms).
    pub now: u64,
    /// Replies to packets with no service or session (gatewayd's defaults).
    pub reject: RejectConfig,
    /// Ports with a kernel interface (the exception path; none by default).
    pub kernel: Vec<u16>,
}

/// 0.0.0.0/0 via [`ROUTER`] on port 0.
pub fn default_route() -> Route {
    Route { net: 0, prefix: 0, via: Some(u32::from_be_bytes(ROUTER)), port: 0 }
}

/// ::/0 via [`ROUTER6`] on port 0.
pub fn default_route6() -> Route6 {
    Route6 { net: 0, prefix: 0, via: Some(u128::from(ROUTER6)), port: 0 }
}

/// Service slots of every lab.
pub const MAX_SERVICES: usize = 16;

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            sessions: 64,
            lports: (1024, 65535),
            inside_mtu: 1500,
            half_open_max: usize::MAX,
            conn_reuse: ConnReuse::default(),
            nodest: NoDest::default(),
            routes: vec![default_route()],
            routes6: vec![default_route6()],
            workers: 1,
            seed: 7,
            expire_budget: 10_000,
            max_dests: 64,
            timeouts: Timeouts::default(),
            neigh: NeighConfig::default(),
            start_ms: 0,
            now: 1000,
            reject: RejectConfig::default(),
            kernel: vec![],
        }
    }
}

impl LabConfig {
    /// The engine configuration of worker 0.
    pub fn engine_config(&self) -> EngineConfig {
        let ifaces = ifaces(self.inside_mtu);
        EngineConfig {
            worker: 0,
            workers: self.workers,
            routes: Routes::dual(&ifaces, &self.routes, &self.routes6),
            ifaces,
            sessions: self.sessions,
            sessions6: gw_core::engine::sessions6_of(self.sessions),
            lport_range: self.lports,
            seed: self.seed,
            expire_budget: self.expire_budget,
            max_services: MAX_SERVICES,
            half_open_max: self.half_open_max,
            half_open_max6: self.half_open_max,
            conn_reuse: self.conn_reuse,
            nodest: self.nodest,
            reject: self.reject,
            frag: gw_core::frag::FragConfig { datagrams: 8, timeout_ms: 30_000 },
            kernel: self.kernel.clone(),
            synproxy_secret: self.seed ^ 0x5359_4e50_524f_5859,
        }
    }

    /// A lab with no services.
    pub fn build(self) -> Lab {
        let first = Snapshot::new(0, vec![], self.max_dests).with_timeouts(self.timeouts);
        let publisher = Arc::new(Publisher::new(Arc::new(first)));
        let counters = Arc::new(WorkerCounters::new(0, 1, MAX_SERVICES, self.max_dests));
        let control = Control::new(
            publisher.clone(),
            vec![counters.clone()],
            self.sessions as u64,
            MAX_SERVICES,
            self.max_dests,
        );
        #[cfg_attr(not(feature = "dpdk"), allow(unused_mut))]
        let mut engine =
            Engine::new(self.engine_config(), publisher.current(), counters.clone(), self.start_ms);
        // As gatewayd's workers (a hint: the tests see the same results).
        #[cfg(feature = "dpdk")]
        engine.set_prefetch(gw_core::session::Prefetch(gw_dpdk::prefetch_addr));
        let worker = Worker::new(engine, self.neigh);
        Lab { worker, control, publisher, counters, io: SinkIo::default(), now: self.now }
    }
}

/// A worker, its control plane and a driven clock.
pub struct Lab {
    pub worker: Worker<Vec<u8>>,
    pub control: Control,
    pub publisher: Arc<Publisher>,
    pub counters: Arc<WorkerCounters>,
    pub io: SinkIo,
    /// The clock [`Lab::rx`] passes to the worker (ms).
    pub now: u64,
}

impl Lab {
    /// A lab with `sessions` capacity and local ports `lports`.
    pub fn new(sessions: usize, lports: (u16, u16)) -> Lab {
        LabConfig { sessions, lports, ..LabConfig::default() }.build()
    }

    /// A lab whose inside port (1) has IP MTU `mtu`.
    pub fn with_mtu(sessions: usize, lports: (u16, u16), mtu: u16) -> Lab {
        LabConfig { sessions, lports, inside_mtu: mtu, ..LabConfig::default() }.build()
    }

    /// A lab with a cap on half-open sessions too.
    pub fn build(sessions: usize, lports: (u16, u16), mtu: u16, half_open_max: usize) -> Lab {
        LabConfig { sessions, lports, inside_mtu: mtu, half_open_max, ..LabConfig::default() }.build()
    }

    /// Applies `req`, panics (with the response) unless it is accepted, and
    /// hands the new configuration to the worker.
    pub fn ok(&mut self, req: Request) {
        let resp = self.control.handle(req.clone());
        assert_eq!(resp, Response::Ok, "the control plane refused {req:?}");
        self.worker.engine.set_snapshot(self.publisher.current());
    }

    /// A TCP and a UDP service on VIP:80 with two FULLNAT real servers on port 8080.
    pub fn with_services(self, scheduler: Scheduler) -> Lab {
        self.with_mode(scheduler, ForwardMode::FullNat, 8080)
    }

    /// A TCP and a UDP service on VIP:80 with the two real servers [`RS`] of
    /// `mode` on `rport`, weight 1, and (FULLNAT) the local address [`LIP`].
    /// The list reads `RS[0]`, `RS[1]` (each server added goes first, as
    /// IPVS's: they are added last to first).
    pub fn with_mode(mut self, scheduler: Scheduler, mode: ForwardMode, rport: u16) -> Lab {
        for proto in [Protocol::Tcp, Protocol::Udp] {
            self.ok(Request::AddService { spec: ServiceSpec::new(key(proto), scheduler) });
            for rs in RS.into_iter().rev() {
                let dest = DestSpec::new(Ipv4Addr::from(rs), rport, mode, 1);
                self.ok(Request::AddDest { service: key(proto), dest });
            }
            if mode == ForwardMode::FullNat {
                self.ok(Request::AddLaddr { service: key(proto), addr: Ipv4Addr::from(LIP).into() });
            }
        }
        self
    }

    /// Feeds `frame` to the worker on `port` at [`Lab::now`] as the poll
    /// loop does with a burst's frames (parsed once by
    /// [`gw_core::steer::classify`], staged by
    /// [`gw_core::engine::Engine::stage_hinted`], then [`Worker::handle_staged`]:
    /// an established FULLNAT or NAT packet takes the engine's established
    /// step, an IPv6 TCP/UDP packet its session step straight away,
    /// anything else the full one); returns what it sent.
    pub fn rx(&mut self, port: u16, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        let engine = &self.worker.engine;
        let p =
            gw_core::steer::classify(engine.snapshot(), 1, 0, &frame).l4.map(|l4| engine.stage_hinted(l4));
        let rx = engine.iface(port).copied();
        self.worker.handle_staged(self.now, port, rx.as_ref(), frame, p.as_ref(), &mut self.io);
        std::mem::take(&mut self.io.sent)
    }

    /// Teaches the gateway the MACs of the client and both real servers, as
    /// their own ARP requests would.
    pub fn learn_neighbours(&mut self) {
        let out = self.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
        assert_eq!(out.len(), 1);
        for (i, rs) in RS.iter().enumerate() {
            let out = self.rx(1, arp_request(RS_MAC[i], *rs, GW_IN_ADDR));
            assert_eq!(out.len(), 1, "gateway answers ARP for its inside address");
        }
    }

    /// The engine alone (benchmarks drive `Engine::process` directly).
    pub fn into_engine(self) -> Engine {
        self.worker.engine
    }
}

/// An ARP request from `mac`/`ip` for `target` (RFC 826 layout), 42 bytes:
/// no Ethernet padding.
pub fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; ETH_LEN + 28];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip);
    f[38..42].copy_from_slice(&target);
    f
}

/// (source MAC, destination MAC, source, destination, TTL) of an
/// Ethernet/IPv4/TCP-or-UDP frame, after checking its IPv4 and L4 checksums
/// with etherparse. Panics on anything else.
#[allow(clippy::type_complexity)]
pub fn inspect(frame: &[u8]) -> ([u8; 6], [u8; 6], Endpoint, Endpoint, u8) {
    let p = SlicedPacket::from_ethernet(frame).expect("frame parses");
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet II") };
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    let (sp, dp) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let want = t.to_header().calc_checksum_ipv4_raw(h.source, h.destination, t.payload()).unwrap();
            assert_eq!(t.checksum(), want, "TCP checksum");
            (t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Udp(u)) => {
            let want = u.to_header().calc_checksum_ipv4_raw(h.source, h.destination, u.payload()).unwrap();
            assert_eq!(u.checksum(), want, "UDP checksum");
            (u.source_port(), u.destination_port())
        }
        _ => panic!("no TCP/UDP"),
    };
    (eth.source(), eth.destination(), (h.source, sp), (h.destination, dp), h.time_to_live)
}

/// The RFC 1071 ones'-complement sum of `data` (odd length padded with a zero
/// byte), folded to 16 bits, starting from `sum`.
pub fn ones_sum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The IPv4 pseudo-header sum (RFC 793 §3.1, RFC 768) for `proto` and `len`.
fn pseudo_sum(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
    u32::from(ones_sum(&[src, dst].concat(), 0)) + u32::from(proto) + len as u32
}

/// Whether `data` (a header or message with its checksum field in place)
/// sums to 0xffff: a valid Internet checksum.
fn sums_ok(data: &[u8], start: u32) -> bool {
    ones_sum(data, start) == 0xffff
}

/// Writes a correct Internet checksum at `at` into `data`.
fn fill_checksum(data: &mut [u8], at: usize, start: u32) {
    data[at..at + 2].copy_from_slice(&[0, 0]);
    let c = !ones_sum(data, start);
    data[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

const ETH_LEN: usize = 14;
/// The UDP port of the GUE tunnels of the fuzz lab ([`check_sent`] reads a
/// UDP datagram to it from the gateway as GUE).
pub const GUE_PORT: u16 = 6080;
const ICMP_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];

/// Rewrites every checksum in `frame` an independent computation can place
/// (IPv4 header, TCP, UDP unless zero, ICMP, and the IPv4 header an ICMP
/// error quotes) so that the frame gets past the checksum checks and the
/// fuzzer explores what lies behind them. Leaves what it cannot parse alone.
pub fn fix_checksums(frame: &mut [u8]) {
    if frame.len() < ETH_LEN + 20 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    fix_ipv4(&mut frame[ETH_LEN..], 2);
}

fn fix_ipv4(ip: &mut [u8], depth: u8) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip.len() < 20 || ip[0] >> 4 != 4 || ihl < 20 || ihl > ip.len() {
        return;
    }
    let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let (src, dst, proto) = ([ip[12], ip[13], ip[14], ip[15]], [ip[16], ip[17], ip[18], ip[19]], ip[9]);
    if !frag && total >= ihl && total <= ip.len() && depth > 0 {
        let l4 = &mut ip[ihl..total];
        match proto {
            6 if l4.len() >= 20 => fill_checksum(l4, 16, pseudo_sum(src, dst, 6, l4.len())),
            17 if l4.len() >= 8 && l4[6..8] != [0, 0] => {
                let len = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
                if (8..=l4.len()).contains(&len) {
                    fill_checksum(&mut l4[..len], 6, pseudo_sum(src, dst, 17, len));
                }
            }
            1 if l4.len() >= 8 => {
                if ICMP_ERRORS.contains(&l4[0]) && l4.len() >= 28 {
                    // Only the quoted header: its L4 part is cut short.
                    let inner = &mut l4[8..];
                    let ihl = usize::from(inner[0] & 0x0f) * 4;
                    if inner[0] >> 4 == 4 && (20..=inner.len()).contains(&ihl) {
                        fill_checksum(&mut inner[..ihl], 10, 0);
                    }
                }
                fill_checksum(l4, 2, 0);
            }
            4 => fix_ipv4(l4, depth - 1),
            _ => {}
        }
    }
    fill_checksum(&mut ip[..ihl], 10, 0);
}

/// Checks everything about a frame the gateway sent on `port`, with
/// etherparse and checksums computed here: Ethernet (our source MAC, a known
/// EtherType); ARP (RFC 826 fields, our MAC as sender); IPv4 (version, IHL,
/// total length within the frame, header checksum, TTL); TCP, UDP and ICMP
/// (lengths, checksums; a zero UDP checksum is allowed, RFC 768); for IPIP
/// both headers. `l4_sums` says whether L4 checksums must hold: they can
/// only if every frame fed to the gateway had valid ones (it updates them
/// incrementally, RFC 1624, so a wrong one stays wrong). Panics with what is
/// wrong.
pub fn check_sent(port: u16, frame: &[u8], l4_sums: bool) {
    let p = SlicedPacket::from_ethernet(frame)
        .unwrap_or_else(|e| panic!("sent a frame etherparse refuses ({e}): {frame:02x?}"));
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else { panic!("sent a frame without Ethernet II") };
    assert_eq!(eth.source(), port_mac(port).0, "source MAC is not port {port}'s");
    assert!(p.vlan.is_none(), "sent a VLAN tag");
    match eth.ether_type().0 {
        0x0806 => check_arp(port, frame),
        0x0800 => {
            let Some(NetSlice::Ipv4(_)) = &p.net else { panic!("IPv4 EtherType without IPv4") };
            check_ipv4(&frame[ETH_LEN..], l4_sums, true);
        }
        other => panic!("sent EtherType {other:#06x}"),
    }
}

fn check_arp(port: u16, frame: &[u8]) {
    assert!(frame.len() >= ETH_LEN + 28, "ARP frame of {} bytes", frame.len());
    let a = &frame[ETH_LEN..ETH_LEN + 28];
    assert_eq!(a[0..6], [0, 1, 8, 0, 6, 4], "ARP is not Ethernet/IPv4");
    let mac = port_mac(port).0;
    assert_eq!(a[8..14], mac, "ARP sender MAC is not port {port}'s");
    match a[7] {
        1 => assert_eq!(frame[0..6], [0xff; 6], "ARP request not broadcast"),
        2 => assert_eq!(frame[0..6], a[18..24], "ARP reply not sent to its target"),
        op => panic!("ARP operation {op}"),
    }
}

/// Checks an IPv4 packet (`outer`: the frame's own, which may carry
/// Ethernet padding after it; else exactly `ip`).
fn check_ipv4(ip: &[u8], l4_sums: bool, outer: bool) {
    let net =
        etherparse::Ipv4Slice::from_slice(ip).unwrap_or_else(|e| panic!("IPv4 that etherparse refuses: {e}"));
    let h = net.header();
    assert_eq!(h.version(), 4);
    let (ihl, total) = (usize::from(h.ihl()) * 4, usize::from(h.total_len()));
    assert!(ihl >= 20 && total >= ihl, "IHL {ihl}, total length {total}");
    if outer {
        // Bytes after the packet (Ethernet padding, or a trailer that came in
        // with it: the gateway forwards them, receivers go by total length).
        assert!(total <= ip.len(), "total length {total} beyond the frame's {}", ip.len());
    } else {
        assert_eq!(total, ip.len(), "inner total length and the outer payload differ");
    }
    assert!(sums_ok(&ip[..ihl], 0), "IPv4 header checksum wrong");
    let pl = net.payload();
    // DR and TUN hand the client's packet on with its TTL untouched (as IPVS
    // does; a tunnel's outer TTL is the inner one), so a client's TTL 0
    // goes out as 0 there (RFC 1122 §3.2.1.7 says a host must not send
    // that). Everything the gateway routes or builds must have TTL > 0.
    let passed_on =
        h.destination() == VIP || (pl.ip_number.0 == 4 && pl.payload.len() > 8 && pl.payload[8] == h.ttl());
    assert!(h.ttl() > 0 || passed_on, "sent with TTL 0");
    if pl.fragmented {
        return;
    }
    let (src, dst, l4) = (h.source(), h.destination(), pl.payload);
    let slice = SlicedPacket::from_ip(&ip[..total]).expect("IPv4 packet parses");
    match pl.ip_number.0 {
        6 => {
            let Some(TransportSlice::Tcp(t)) = &slice.transport else {
                panic!("TCP that etherparse refuses")
            };
            assert!(usize::from(t.data_offset()) * 4 <= l4.len());
            if l4_sums {
                assert!(sums_ok(l4, pseudo_sum(src, dst, 6, l4.len())), "TCP checksum wrong");
                // etherparse's header has no reserved bits, so its sum is
                // only comparable when they are clear.
                if l4[12] & 0x0e == 0 {
                    let want = t.to_header().calc_checksum_ipv4_raw(src, dst, t.payload()).unwrap();
                    assert_eq!(t.checksum(), want, "TCP checksum (etherparse)");
                }
            }
        }
        17 => {
            let Some(TransportSlice::Udp(u)) = &slice.transport else {
                panic!("UDP that etherparse refuses")
            };
            // RFC 768: the UDP length may be less than the IP payload (the
            // rest is not UDP's), never more.
            let len = usize::from(u.length());
            assert!((8..=l4.len()).contains(&len), "UDP length {len}, IPv4 payload {}", l4.len());
            if l4_sums && u.checksum() != 0 {
                assert!(sums_ok(&l4[..len], pseudo_sum(src, dst, 17, len)), "UDP checksum wrong");
            }
            if outer && u.destination_port() == GUE_PORT && dst != VIP {
                // TUN by GUE (draft-ietf-intarea-gue §3.1): version 0, no
                // options, an IPv4 packet (4), flags 0; the UDP checksum
                // present (the lab's servers ask for it).
                let g = &l4[8..len];
                assert!(g.len() >= 4 && g[..4] == [0, 4, 0, 0], "GUE header {:02x?}", &g[..g.len().min(4)]);
                assert!(u.checksum() != 0, "GUE without the UDP checksum asked for");
                check_ipv4(&g[4..], l4_sums, false);
            }
        }
        47 => {
            // TUN by GRE (RFC 2784) with the checksum: C bit, version 0,
            // protocol 0x0800, the checksum over GRE header and packet.
            assert!(outer, "GRE inside a tunnel");
            assert!(
                l4.len() >= 8 && l4[..4] == [0x80, 0, 0x08, 0],
                "GRE header {:02x?}",
                &l4[..l4.len().min(4)]
            );
            assert!(sums_ok(l4, 0), "GRE checksum wrong");
            check_ipv4(&l4[8..], l4_sums, false);
        }
        1 => {
            let Some(TransportSlice::Icmpv4(_)) = &slice.transport else {
                panic!("ICMP that etherparse refuses")
            };
            assert!(l4.len() >= 8, "ICMP shorter than its header");
            if l4_sums {
                assert!(sums_ok(l4, 0), "ICMP checksum wrong");
            }
            if ICMP_ERRORS.contains(&l4[0]) {
                // The quoted header: an IPv4 header, whole (RFC 792).
                let q = &l4[8..];
                assert!(q.len() >= 20 && q[0] >> 4 == 4, "ICMP error quotes no IPv4 header");
                let qihl = usize::from(q[0] & 0x0f) * 4;
                assert!(qihl >= 20 && qihl <= q.len(), "quoted IHL {qihl}");
                if l4_sums {
                    assert!(sums_ok(&q[..qihl], 0), "quoted IPv4 header checksum wrong");
                }
            }
        }
        4 => {
            assert!(outer, "IPIP in IPIP");
            check_ipv4(l4, l4_sums, false);
        }
        other => panic!("sent IP protocol {other}"),
    }
}
