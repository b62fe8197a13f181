//! A worker with two ports, driven through `Worker<Vec<u8>>` with frames
//! built and checked by the independent `etherparse` crate, a driven clock,
//! and the same control-plane code gatewayd runs.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::sync::Arc;

use dataplane::control::Control;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::WorkerCounters;
use gw_core::engine::{Engine, EngineConfig};
use gw_core::neigh::NeighConfig;
use gw_core::route::{Iface, Routes};
use gw_core::service::{Publisher, Snapshot};
use gw_core::wire::ethernet::MacAddr;
use gw_core::worker::{Io, Worker};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Response, Scheduler, ServiceKey, ServiceSpec};

pub const GW_OUT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub const GW_IN: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x01]);
pub const CLIENT_MAC: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x02];
pub const RS_MAC: [[u8; 6]; 2] = [[0x02, 0xaa, 0, 0, 0, 0x02], [0x02, 0xaa, 0, 0, 0, 0x03]];
pub const CLIENT: [u8; 4] = [198, 18, 0, 2];
pub const VIP: [u8; 4] = [198, 18, 0, 100];
pub const LIP: [u8; 4] = [198, 18, 1, 10];
pub const RS: [[u8; 4]; 2] = [[198, 18, 1, 2], [198, 18, 1, 3]];

#[derive(Default)]
pub struct TestIo {
    pub sent: Vec<(u16, Vec<u8>)>,
    pub no_buffers: bool,
}

impl Io<Vec<u8>> for TestIo {
    fn alloc(&mut self) -> Option<Vec<u8>> {
        (!self.no_buffers).then(Vec::new)
    }
    fn send(&mut self, port: u16, pkt: Vec<u8>) {
        self.sent.push((port, pkt));
    }
}

pub struct Lab {
    pub worker: Worker<Vec<u8>>,
    pub control: Control,
    pub publisher: Arc<Publisher>,
    pub counters: Arc<WorkerCounters>,
    pub io: TestIo,
    pub now: u64,
}

pub fn key(proto: Protocol) -> ServiceKey {
    ServiceKey { proto, addr: Ipv4Addr::from(VIP), port: 80 }
}

impl Lab {
    pub fn new(sessions: usize, lports: (u16, u16)) -> Lab {
        Lab::with_mtu(sessions, lports, 1500)
    }

    /// A lab whose inside port (1) has IP MTU `mtu`.
    pub fn with_mtu(sessions: usize, lports: (u16, u16), mtu: u16) -> Lab {
        Lab::build(sessions, lports, mtu, usize::MAX)
    }

    /// A lab with every engine knob the tests turn.
    pub fn build(sessions: usize, lports: (u16, u16), mtu: u16, half_open_max: usize) -> Lab {
        let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 64))));
        let counters = Arc::new(WorkerCounters::new(0, 1, 16, 64));
        let control = Control::new(publisher.clone(), vec![counters.clone()], sessions as u64, 16, 64);
        let ifaces = vec![
            Iface { port: 0, addr: Ipv4Addr::new(198, 18, 0, 1), prefix: 24, mac: GW_OUT, mtu: 1500 },
            Iface { port: 1, addr: Ipv4Addr::new(198, 18, 1, 1), prefix: 24, mac: GW_IN, mtu },
        ];
        let cfg = EngineConfig {
            worker: 0,
            workers: 1,
            routes: Routes::new(&ifaces, &[]),
            ifaces,
            sessions,
            lport_range: lports,
            seed: 7,
            expire_budget: 10_000,
            max_services: 16,
            half_open_max,
        };
        let engine = Engine::new(cfg, publisher.current(), counters.clone(), 0);
        let worker = Worker::new(engine, NeighConfig::default());
        Lab { worker, control, publisher, counters, io: TestIo::default(), now: 1000 }
    }

    pub fn ok(&mut self, req: Request) {
        assert_eq!(self.control.handle(req), Response::Ok);
        let snap = self.publisher.current();
        self.worker.engine.set_snapshot(snap);
    }

    /// A TCP and a UDP service on VIP:80 with two FULLNAT real servers on port 8080.
    pub fn with_services(self, scheduler: Scheduler) -> Lab {
        self.with_mode(scheduler, ForwardMode::FullNat, 8080)
    }

    /// A TCP and a UDP service on VIP:80 with two real servers of `mode` on
    /// `rport`, and (FULLNAT) the local address.
    pub fn with_mode(mut self, scheduler: Scheduler, mode: ForwardMode, rport: u16) -> Lab {
        for proto in [Protocol::Tcp, Protocol::Udp] {
            self.ok(Request::AddService { spec: ServiceSpec::new(key(proto), scheduler) });
            for rs in RS {
                let dest = DestSpec::new(Ipv4Addr::from(rs), rport, mode, 1);
                self.ok(Request::AddDest { service: key(proto), dest });
            }
            if mode == ForwardMode::FullNat {
                self.ok(Request::AddLaddr { service: key(proto), addr: Ipv4Addr::from(LIP) });
            }
        }
        self
    }

    pub fn rx(&mut self, port: u16, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        self.worker.handle(self.now, port, frame, &mut self.io);
        std::mem::take(&mut self.io.sent)
    }

    /// Teaches the gateway the MACs of the client and both real servers, as
    /// their own ARP requests would.
    pub fn learn_neighbours(&mut self) {
        let out = self.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
        assert_eq!(out.len(), 1);
        for (i, rs) in RS.iter().enumerate() {
            let out = self.rx(1, arp_request(RS_MAC[i], *rs, [198, 18, 1, 1]));
            assert_eq!(out.len(), 1, "gateway answers ARP for its inside address");
        }
    }
}

pub fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
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

pub fn arp_reply(mac: [u8; 6], ip: [u8; 4], to_mac: MacAddr, to_ip: [u8; 4]) -> Vec<u8> {
    let mut f = arp_request(mac, ip, to_ip);
    f[0..6].copy_from_slice(&to_mac.0);
    f[21] = 2;
    f[32..38].copy_from_slice(&to_mac.0);
    f
}

pub fn tcp(
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

pub fn udp(src_mac: [u8; 6], dst_mac: MacAddr, s: ([u8; 4], u16), d: ([u8; 4], u16)) -> Vec<u8> {
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
pub fn inspect(frame: &[u8]) -> ([u8; 6], [u8; 6], ([u8; 4], u16), ([u8; 4], u16), u8) {
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
