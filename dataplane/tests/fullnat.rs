//! The FULLNAT packet path end to end through `Worker<Vec<u8>>`: frames built
//! and checked with the independent `etherparse` crate, a driven clock, and
//! the same control-plane code gatewayd runs.

use std::net::Ipv4Addr;
use std::sync::Arc;

use dataplane::control::Control;
use dataplane::counters::{Drop, Event, WorkerCounters};
use dataplane::engine::{Engine, EngineConfig};
use dataplane::neigh::NeighConfig;
use dataplane::route::{Iface, Routes};
use dataplane::service::{Publisher, Snapshot};
use dataplane::tcp_state::Timeouts;
use dataplane::wire::ethernet::MacAddr;
use dataplane::worker::{Io, Worker};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Response, Scheduler, ServiceKey, ServiceSpec};

const GW_OUT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const GW_IN: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x01]);
const CLIENT_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x02];
const RS_MAC: [[u8; 6]; 2] = [[0x02, 0xaa, 0, 0, 0, 0x02], [0x02, 0xaa, 0, 0, 0, 0x03]];
const CLIENT: [u8; 4] = [198, 18, 0, 2];
const VIP: [u8; 4] = [198, 18, 0, 100];
const LIP: [u8; 4] = [198, 18, 1, 10];
const RS: [[u8; 4]; 2] = [[198, 18, 1, 2], [198, 18, 1, 3]];

#[derive(Default)]
struct TestIo {
    sent: Vec<(u16, Vec<u8>)>,
    no_buffers: bool,
}

impl Io<Vec<u8>> for TestIo {
    fn alloc(&mut self) -> Option<Vec<u8>> {
        (!self.no_buffers).then(Vec::new)
    }
    fn send(&mut self, port: u16, pkt: Vec<u8>) {
        self.sent.push((port, pkt));
    }
}

struct Lab {
    worker: Worker<Vec<u8>>,
    control: Control,
    publisher: Arc<Publisher>,
    counters: Arc<WorkerCounters>,
    io: TestIo,
    now: u64,
}

fn key(proto: Protocol) -> ServiceKey {
    ServiceKey { proto, addr: Ipv4Addr::from(VIP), port: 80 }
}

impl Lab {
    fn new(sessions: usize, lports: (u16, u16)) -> Lab {
        let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 64))));
        let counters = Arc::new(WorkerCounters::new(0, 1, 16, 64));
        let control = Control::new(publisher.clone(), vec![counters.clone()], sessions as u64, 16, 64);
        let ifaces = vec![
            Iface { port: 0, addr: Ipv4Addr::new(198, 18, 0, 1), prefix: 24, mac: GW_OUT },
            Iface { port: 1, addr: Ipv4Addr::new(198, 18, 1, 1), prefix: 24, mac: GW_IN },
        ];
        let cfg = EngineConfig {
            worker: 0,
            workers: 1,
            routes: Routes::new(&ifaces, &[]),
            ifaces,
            timeouts: Timeouts::default(),
            sessions,
            lport_range: lports,
            seed: 7,
            expire_budget: 10_000,
            max_services: 16,
        };
        let engine = Engine::new(cfg, publisher.current(), counters.clone(), 0);
        let worker = Worker::new(engine, NeighConfig::default());
        Lab { worker, control, publisher, counters, io: TestIo::default(), now: 1000 }
    }

    fn ok(&mut self, req: Request) {
        assert_eq!(self.control.handle(req), Response::Ok);
        let snap = self.publisher.current();
        self.worker.engine.set_snapshot(snap);
    }

    /// A TCP and a UDP service on VIP:80 with two FULLNAT real servers.
    fn with_services(mut self, scheduler: Scheduler) -> Lab {
        for proto in [Protocol::Tcp, Protocol::Udp] {
            self.ok(Request::AddService { spec: ServiceSpec { key: key(proto), scheduler } });
            for rs in RS {
                let dest =
                    DestSpec { addr: Ipv4Addr::from(rs), port: 8080, mode: ForwardMode::FullNat, weight: 1 };
                self.ok(Request::AddDest { service: key(proto), dest });
            }
            self.ok(Request::AddLaddr { service: key(proto), addr: Ipv4Addr::from(LIP) });
        }
        self
    }

    fn rx(&mut self, port: u16, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        self.worker.handle(self.now, port, frame, &mut self.io);
        std::mem::take(&mut self.io.sent)
    }

    /// Teaches the gateway the MACs of the client and both real servers, as
    /// their own ARP requests would.
    fn learn_neighbours(&mut self) {
        let out = self.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
        assert_eq!(out.len(), 1);
        for (i, rs) in RS.iter().enumerate() {
            let out = self.rx(1, arp_request(RS_MAC[i], *rs, LIP));
            assert_eq!(out.len(), 1, "gateway answers ARP for its local address");
        }
    }
}

fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip);
    f[38..42].copy_from_slice(&target);
    f
}

fn arp_reply(mac: [u8; 6], ip: [u8; 4], to_mac: MacAddr, to_ip: [u8; 4]) -> Vec<u8> {
    let mut f = arp_request(mac, ip, to_ip);
    f[0..6].copy_from_slice(&to_mac.0);
    f[21] = 2;
    f[32..38].copy_from_slice(&to_mac.0);
    f
}

fn tcp(
    src_mac: [u8; 6],
    dst_mac: MacAddr,
    s: ([u8; 4], u16),
    d: ([u8; 4], u16),
    syn: bool,
    ack: bool,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac.0).ipv4(s.0, d.0, 64).tcp(s.1, d.1, 1000, 64000);
    let b = if syn { b.syn() } else { b };
    let b = if ack { b.ack(1) } else { b };
    let mut out = vec![];
    b.write(&mut out, if syn { &[] } else { b"data" }).unwrap();
    out
}

fn udp(src_mac: [u8; 6], dst_mac: MacAddr, s: ([u8; 4], u16), d: ([u8; 4], u16)) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(src_mac, dst_mac.0)
        .ipv4(s.0, d.0, 64)
        .udp(s.1, d.1)
        .write(&mut out, b"ping")
        .unwrap();
    out
}

/// (src mac, dst mac, src, dst, ttl) after checking both checksums.
#[allow(clippy::type_complexity)]
fn inspect(frame: &[u8]) -> ([u8; 6], [u8; 6], ([u8; 4], u16), ([u8; 4], u16), u8) {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let eth = p.link.unwrap().to_header().unwrap();
    let eth = match eth {
        etherparse::LinkHeader::Ethernet2(e) => e,
        _ => panic!(),
    };
    let Some(NetSlice::Ipv4(ip)) = p.net else { panic!("not ipv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    let (sp, dp) = match p.transport.unwrap() {
        TransportSlice::Tcp(t) => {
            let want = t.to_header().calc_checksum_ipv4_raw(h.source, h.destination, t.payload()).unwrap();
            assert_eq!(t.checksum(), want, "TCP checksum");
            (t.source_port(), t.destination_port())
        }
        TransportSlice::Udp(u) => {
            let want = u.to_header().calc_checksum_ipv4_raw(h.source, h.destination, u.payload()).unwrap();
            assert_eq!(u.checksum(), want, "UDP checksum");
            (u.source_port(), u.destination_port())
        }
        _ => panic!("no transport"),
    };
    (eth.source, eth.destination, (h.source, sp), (h.destination, dp), h.time_to_live)
}

#[test]
fn arp_for_a_vip_is_answered_with_the_port_mac() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    let out = lab.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
    let (port, f) = &out[0];
    assert_eq!(*port, 0);
    // ARP fields by their RFC 826 offsets (etherparse 0.16 has no ARP).
    let a = &f[14..];
    assert_eq!(&a[6..8], &[0, 2], "reply");
    assert_eq!(&a[8..14], &GW_OUT.0);
    assert_eq!(&a[14..18], &VIP);
    assert_eq!(&a[18..24], &CLIENT_MAC);
    assert_eq!(&a[24..28], &CLIENT);
    assert_eq!(&f[0..6], &CLIENT_MAC);
    // An address that is not ours gets no answer.
    assert!(lab.rx(0, arp_request(CLIENT_MAC, CLIENT, [198, 18, 0, 99])).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::ArpNotForUs), 1);
}

#[test]
fn fullnat_tcp_both_directions_with_arp_resolution_on_the_way() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
    // The SYN waits for the real server's MAC; an ARP request goes out.
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(out.len(), 1);
    let (port, req) = &out[0];
    assert_eq!(*port, 1);
    let a = &req[14..];
    assert_eq!(&req[0..6], &[0xff; 6]);
    assert_eq!(&a[0..8], &[0, 1, 8, 0, 6, 4, 0, 1], "Ethernet/IPv4 request");
    assert_eq!(&a[8..14], &GW_IN.0);
    assert_eq!(&a[14..18], &[198, 18, 1, 1]);
    assert_eq!(&a[24..28], &RS[0]);
    assert_eq!(lab.counters.event_count(Event::NeighHeld), 1);
    // The reply releases it, rewritten LIP:lport -> RIP:rport.
    let out = lab.rx(1, arp_reply(RS_MAC[0], RS[0], GW_IN, [198, 18, 1, 1]));
    assert_eq!(out.len(), 1);
    let (port, syn) = &out[0];
    assert_eq!(*port, 1);
    let (smac, dmac, src, dst, ttl) = inspect(syn);
    assert_eq!((smac, dmac), (GW_IN.0, RS_MAC[0]));
    assert_eq!(src.0, LIP);
    assert_eq!(dst, (RS[0], 8080));
    assert_eq!(ttl, 63);
    let lport = src.1;
    // The real server answers LIP:lport; the client gets VIP:80.
    let out = lab.rx(1, tcp(RS_MAC[0], GW_IN, (RS[0], 8080), (LIP, lport), true, true));
    let (port, synack) = &out[0];
    assert_eq!(*port, 0);
    let (smac, dmac, src, dst, _) = inspect(synack);
    assert_eq!((smac, dmac), (GW_OUT.0, CLIENT_MAC));
    assert_eq!(src, (VIP, 80));
    assert_eq!(dst, (CLIENT, 40000));
    // The client's ACK and data go through the same session.
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true));
    let (_, _, src, dst, _) = inspect(&out[0].1);
    assert_eq!((src, dst), ((LIP, lport), (RS[0], 8080)));
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 1);
    assert_eq!(lab.counters.event_count(Event::FwdIn), 2);
    assert_eq!(lab.counters.event_count(Event::FwdOut), 1);
    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!()
    };
    let tcp_svc = services.iter().find(|s| s.spec.key.proto == Protocol::Tcp).unwrap();
    assert_eq!(tcp_svc.dests[0].active_conns, 1, "ESTABLISHED after the ACK");
    assert_eq!(tcp_svc.stats.conns, 1);
    assert_eq!(tcp_svc.stats.inpkts, 2);
    assert_eq!(tcp_svc.stats.outpkts, 1);
}

#[test]
fn fullnat_udp_both_directions() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Wrr);
    lab.learn_neighbours();
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
    let (_, dmac, src, dst, _) = inspect(&out[0].1);
    assert_eq!(dmac, RS_MAC[0]);
    assert_eq!(src.0, LIP);
    assert_eq!(dst, (RS[0], 8080));
    let out = lab.rx(1, udp(RS_MAC[0], GW_IN, (RS[0], 8080), src));
    let (_, dmac, src, dst, _) = inspect(&out[0].1);
    assert_eq!(dmac, CLIENT_MAC);
    assert_eq!((src, dst), ((VIP, 80), (CLIENT, 5353)));
}

#[test]
fn new_connections_alternate_and_a_deleted_server_gets_no_new_ones() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let mut seen = vec![];
    for cport in 40000..40004 {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), true, false));
        seen.push(inspect(&out[0].1).3 .0);
    }
    assert_eq!(seen, vec![RS[0], RS[1], RS[0], RS[1]]);
    lab.ok(Request::DelDest { service: key(Protocol::Tcp), addr: Ipv4Addr::from(RS[0]), port: 8080 });
    for cport in 41000..41004 {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), true, false));
        assert_eq!(inspect(&out[0].1).3 .0, RS[1]);
    }
    // Packets of a session on the deleted server are dropped, as in IPVS.
    assert!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::DestUnavailable), 1);
}

#[test]
fn local_ports_are_never_reused_toward_the_same_server_while_live() {
    // Three local ports only.
    let mut lab = Lab::new(64, (5000, 5002)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    lab.ok(Request::DelDest { service: key(Protocol::Tcp), addr: Ipv4Addr::from(RS[1]), port: 8080 });
    let mut ports = vec![];
    for cport in 40000..40003 {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80), true, false));
        ports.push(inspect(&out[0].1).2 .1);
    }
    ports.sort();
    assert_eq!(ports, vec![5000, 5001, 5002]);
    assert!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40003), (VIP, 80), true, false)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::LaddrExhausted), 1);
    // Once sessions expire (SYN_RECV: 60 s), the ports come back.
    lab.now += 61_000;
    lab.worker.tick(lab.now, &mut lab.io);
    assert_eq!(lab.counters.event_count(Event::SessionsExpired), 3);
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40003), (VIP, 80), true, false));
    assert_eq!(out.len(), 1);
}

#[test]
fn a_full_table_drops_new_flows_and_keeps_existing_ones() {
    let mut lab = Lab::new(2, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    for cport in [1000, 1001] {
        assert_eq!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, cport), (VIP, 80))).len(), 1);
    }
    assert!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 1002), (VIP, 80))).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::TableFull), 1);
    assert_eq!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 1000), (VIP, 80))).len(), 1);
}

#[test]
fn ping_to_the_vip_is_answered() {
    let mut lab = Lab::new(8, (1024, 65535)).with_services(Scheduler::Rr);
    let mut f = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut f, b"abcdefgh")
        .unwrap();
    let out = lab.rx(0, f);
    let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
    let Some(NetSlice::Ipv4(ip)) = p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!((h.source, h.destination), (VIP, CLIENT));
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    match p.transport.unwrap() {
        TransportSlice::Icmpv4(i) => {
            assert!(matches!(i.icmp_type(), etherparse::Icmpv4Type::EchoReply(_)));
            let want = i.icmp_type().calc_checksum(i.payload());
            assert_eq!(i.checksum(), want);
        }
        _ => panic!(),
    }
}

#[test]
fn bad_frames_are_counted_by_reason_and_traffic_keeps_flowing() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let good = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false);
    let cases: Vec<(Vec<u8>, Drop)> = vec![
        (good[..10].to_vec(), Drop::EthTruncated),
        (good[..30].to_vec(), Drop::Ipv4Malformed),
        (
            {
                let mut f = good.clone();
                f[14] = 0x44;
                f
            },
            Drop::Ipv4Malformed,
        ), // IHL 4
        (
            {
                let mut f = good.clone();
                f[14] = 0x65;
                f
            },
            Drop::Ipv4Malformed,
        ), // version 6
        (
            {
                let mut f = good.clone();
                f[16] = 0x10;
                f
            },
            Drop::Ipv4Malformed,
        ), // total length beyond frame
        (
            {
                let mut f = good.clone();
                f[24] ^= 0xff;
                f
            },
            Drop::Ipv4BadChecksum,
        ),
        (
            {
                let mut f = good.clone();
                f[5] = 0x77;
                f
            },
            Drop::NotOurMac,
        ),
        (
            {
                let mut f = good.clone();
                f[12] = 0x86;
                f[13] = 0xdd;
                f
            },
            Drop::UnsupportedEthertype,
        ),
        (tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 81), true, false), Drop::NoService),
        (tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), ([198, 18, 0, 50], 80), true, false), Drop::NotForUs),
        (tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true), Drop::NoSessionNotSyn),
        (tcp(CLIENT_MAC, GW_OUT, ([224, 0, 0, 1], 40000), (VIP, 80), true, false), Drop::BadSourceAddr),
        (tcp(RS_MAC[0], GW_OUT, (RS[0], 8080), (LIP, 7777), true, true), Drop::UnknownReply),
        (udp(CLIENT_MAC, GW_OUT, (CLIENT, 0), (VIP, 80)), Drop::L4Malformed),
    ];
    for (frame, why) in cases {
        let before = lab.counters.drop_count(why);
        assert!(lab.rx(0, frame).is_empty(), "{why:?}");
        assert_eq!(lab.counters.drop_count(why), before + 1, "{why:?}");
    }
    // Truncated TCP header inside a valid IPv4 packet.
    let mut f = good.clone();
    f.truncate(14 + 20 + 10);
    f[16] = 0;
    f[17] = 30;
    f[24] = 0;
    f[25] = 0;
    let c = etherparse::Ipv4HeaderSlice::from_slice(&f[14..34]).unwrap().to_header().calc_header_checksum();
    f[24..26].copy_from_slice(&c.to_be_bytes());
    assert!(lab.rx(0, f).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::L4Malformed), 2);
    // A fragment never creates a session.
    let mut f = good.clone();
    f[20] = 0x20; // MF
    let c = {
        f[24] = 0;
        f[25] = 0;
        etherparse::Ipv4HeaderSlice::from_slice(&f[14..34]).unwrap().to_header().calc_header_checksum()
    };
    f[24..26].copy_from_slice(&c.to_be_bytes());
    assert!(lab.rx(0, f).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::Fragment), 1);
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 0);
    // And good traffic still flows.
    assert_eq!(lab.rx(0, good).len(), 1);
}

#[test]
fn unanswered_arp_drops_the_held_packets_with_a_reason() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(out.len(), 1); // the ARP request
    let mut requests = 1;
    for _ in 0..50 {
        lab.now += 100;
        lab.worker.tick(lab.now, &mut lab.io);
        requests += std::mem::take(&mut lab.io.sent).len();
    }
    assert_eq!(requests, 3);
    assert_eq!(lab.counters.drop_count(Drop::NeighUnresolved), 1);
}
