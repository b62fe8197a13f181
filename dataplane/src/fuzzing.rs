//! Entry points for the fuzz targets (`fuzz/`) and their regression replay
//! (`dataplane/tests/fuzz_regressions.rs`): the same code runs under
//! libFuzzer and under `cargo test`.
//!
//! [`packet_path`] feeds arbitrary frames into a worker that has services of
//! every forwarding mode, persistence and live sessions, with a driven
//! clock, and checks that whatever it sends is well-formed. [`control`]
//! feeds arbitrary bytes to the control-socket decoder and whatever decodes
//! to the control plane.

use std::net::Ipv4Addr;
use std::sync::Arc;

use gw_proto::{read_frame, DestSpec, ForwardMode, Protocol, Request, ServiceKey, ServiceSpec};

use crate::control::Control;
use gw_core::counters::WorkerCounters;
use gw_core::engine::{Engine, EngineConfig};
use gw_core::neigh::NeighConfig;
use gw_core::route::{Iface, Route, Routes};
use gw_core::service::{Publisher, Snapshot};
use gw_core::wire::ethernet::{self, EtherType, MacAddr};
use gw_core::wire::ipv4;
use gw_core::worker::{Io, Worker};

struct SinkIo {
    sent: Vec<(u16, Vec<u8>)>,
}

impl Io<Vec<u8>> for SinkIo {
    fn alloc(&mut self) -> Option<Vec<u8>> {
        Some(Vec::new())
    }
    fn send(&mut self, port: u16, pkt: Vec<u8>) {
        self.sent.push((port, pkt));
    }
}

const OUT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const IN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);

fn setup() -> (Worker<Vec<u8>>, Control, Arc<Publisher>) {
    let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 32))));
    let counters = Arc::new(WorkerCounters::new(0, 1, 16, 32));
    let control = Control::new(publisher.clone(), vec![counters.clone()], 256, 16, 32);
    let vip = Ipv4Addr::new(198, 18, 0, 100);
    let rs = [Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 2, 3)];
    let modes = [
        (Protocol::Tcp, 80, ForwardMode::FullNat, None),
        (Protocol::Udp, 80, ForwardMode::Masq, None),
        (Protocol::Tcp, 81, ForwardMode::Route, None),
        (Protocol::Udp, 82, ForwardMode::Tunnel, None),
        (Protocol::Tcp, 83, ForwardMode::FullNat, Some(60)),
    ];
    for (proto, port, mode, persistent) in modes {
        let key = ServiceKey { proto, addr: vip, port };
        let mut spec = ServiceSpec::new(key, gw_proto::Scheduler::Wrr);
        spec.persistent = persistent;
        spec.one_packet = port == 82;
        control.handle(Request::AddService { spec });
        for (i, r) in rs.iter().enumerate() {
            let mut d =
                DestSpec::new(*r, if mode == ForwardMode::Masq { 8080 } else { port }, mode, i as u32 + 1);
            d.upper = 3;
            control.handle(Request::AddDest { service: key, dest: d });
        }
        control.handle(Request::AddLaddr { service: key, addr: Ipv4Addr::new(198, 18, 1, 10) });
    }
    let ifaces = vec![
        Iface { port: 0, addr: Ipv4Addr::new(198, 18, 0, 1), prefix: 24, mac: OUT_MAC, mtu: 1500 },
        Iface { port: 1, addr: Ipv4Addr::new(198, 18, 1, 1), prefix: 24, mac: IN_MAC, mtu: 600 },
    ];
    let via =
        Route { net: u32::from(Ipv4Addr::new(198, 18, 2, 0)), prefix: 24, via: Some(0xc612_01fe), port: 1 };
    let cfg = EngineConfig {
        worker: 0,
        workers: 2,
        routes: Routes::new(&ifaces, &[via]),
        ifaces,
        sessions: 64,
        lport_range: (5000, 5040),
        seed: 1,
        expire_budget: 64,
        max_services: 16,
        half_open_max: 16,
    };
    let engine = Engine::new(cfg, publisher.current(), counters, 0);
    let neigh = NeighConfig { capacity: 8, reachable_ms: 5_000, retry_ms: 100, max_probes: 2 };
    (Worker::new(engine, neigh), control, publisher)
}

/// Checks a frame the gateway sent: Ethernet, and for IPv4 a valid header.
fn check_sent(frame: &[u8]) {
    let eth = ethernet::Frame::new_checked(frame).expect("sent a frame shorter than Ethernet");
    if eth.ethertype() == EtherType::Ipv4 {
        let ip = ipv4::Packet::new_checked(eth.payload()).expect("sent a malformed IPv4 header");
        assert!(ip.verify_checksum(), "sent a bad IPv4 checksum");
    }
}

/// Runs frames from `data` through a worker. Format: repeated
/// `[port+flags byte][clock step byte][len u16 BE][frame bytes]`; the last
/// frame takes what is left. Panics on any misbehaviour.
pub fn packet_path(data: &[u8]) {
    let (mut worker, control, publisher) = setup();
    let mut io = SinkIo { sent: vec![] };
    let mut now = 1_000u64;
    let mut rest = data;
    while rest.len() >= 4 {
        let (ctl, step, len) = (rest[0], rest[1], u16::from_be_bytes([rest[2], rest[3]]) as usize);
        rest = &rest[4..];
        let take = len.min(rest.len());
        let frame = rest[..take].to_vec();
        rest = &rest[take..];
        now += step as u64 * 97;
        if ctl & 0x80 != 0 {
            // Now and then, change the configuration under the traffic.
            let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100), port: 80 };
            let d = DestSpec::new(Ipv4Addr::new(198, 18, 1, 2), 80, ForwardMode::FullNat, (ctl & 3) as u32);
            control.handle(Request::EditDest { service: key, dest: d });
            worker.engine.set_snapshot(publisher.current());
        }
        worker.handle(now, (ctl & 1) as u16, frame, &mut io);
        worker.tick(now, &mut io);
        for (port, f) in io.sent.drain(..) {
            assert!(port <= 1, "sent on a port that does not exist");
            check_sent(&f);
        }
    }
}

/// Decodes `data` as control frames and applies what decodes.
pub fn control(data: &[u8]) {
    let (_, control, _) = setup();
    let mut rest = data;
    while !rest.is_empty() {
        match read_frame::<_, Request>(&mut rest) {
            Ok(req) => {
                let _ = control.query(req);
            }
            Err(_) => {
                // Skip a byte and try again, as a new frame boundary.
                if rest.is_empty() {
                    break;
                }
                rest = &rest[1..];
            }
        }
    }
}
