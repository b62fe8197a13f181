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

use gw_proto::{read_frame, DestSpec, ForwardMode, Protocol, Request, ServiceKey, ServiceSpec};

use crate::testing::{self, Lab, LabConfig, LIP, VIP};
use gw_core::neigh::NeighConfig;
use gw_core::route::Route;

/// A lab with services of every forwarding mode (and one persistent), two
/// real servers each (one behind a router), a small session table, a
/// narrow local-port range, a 600-byte inside MTU (tunnels overflow it) and
/// a quick neighbour table. Every configuration request must be accepted.
fn setup() -> Lab {
    let via =
        Route { net: u32::from(Ipv4Addr::new(198, 18, 2, 0)), prefix: 24, via: Some(0xc612_01fe), port: 1 };
    let mut lab = LabConfig {
        sessions: 64,
        lports: (5000, 5040),
        inside_mtu: 600,
        half_open_max: 16,
        routes: vec![via, testing::default_route()],
        workers: 2,
        seed: 1,
        expire_budget: 64,
        max_dests: 32,
        neigh: NeighConfig {
            capacity: 8,
            per_port_max: 6,
            reachable_ms: 5_000,
            retry_ms: 100,
            max_probes: 2,
        },
        ..LabConfig::default()
    }
    .build();
    let rs = [Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 2, 3)];
    let modes = [
        (Protocol::Tcp, 80, ForwardMode::FullNat, None),
        (Protocol::Udp, 80, ForwardMode::Masq, None),
        (Protocol::Tcp, 81, ForwardMode::Route, None),
        (Protocol::Udp, 82, ForwardMode::Tunnel, None),
        (Protocol::Tcp, 83, ForwardMode::FullNat, Some(60)),
    ];
    for (proto, port, mode, persistent) in modes {
        let key = ServiceKey { proto, addr: Ipv4Addr::from(VIP), port };
        let mut spec = ServiceSpec::new(key, gw_proto::Scheduler::Wrr);
        spec.persistent = persistent;
        spec.one_packet = port == 82;
        lab.ok(Request::AddService { spec });
        for (i, r) in rs.iter().enumerate() {
            let mut d =
                DestSpec::new(*r, if mode == ForwardMode::Masq { 8080 } else { port }, mode, i as u32 + 1);
            d.upper = 3;
            lab.ok(Request::AddDest { service: key, dest: d });
        }
        lab.ok(Request::AddLaddr { service: key, addr: Ipv4Addr::from(LIP) });
    }
    lab
}

/// Runs frames from `data` through a worker. Format: repeated
/// `[control byte][clock step byte][len u16 BE][frame bytes]`; the last
/// frame takes what is left. Control byte: bit 0 the port; bit 7 edits a
/// real server's weight (bits 0-1) first; bit 6 feeds the frame as it is,
/// else its checksums are made right first ([`testing::fix_checksums`]) so
/// that mutations get past the checksum checks. Every frame sent is checked
/// ([`testing::check_sent`]), its L4 checksums too until a raw frame with
/// wrong checksums went in. Panics on any misbehaviour.
pub fn packet_path(data: &[u8]) {
    let mut lab = setup();
    let mut now = 1_000u64;
    let mut l4_sums = true;
    let mut rest = data;
    while rest.len() >= 4 {
        let (ctl, step, len) = (rest[0], rest[1], u16::from_be_bytes([rest[2], rest[3]]) as usize);
        rest = &rest[4..];
        let take = len.min(rest.len());
        let mut frame = rest[..take].to_vec();
        rest = &rest[take..];
        now += step as u64 * 97;
        if ctl & 0x80 != 0 {
            // Now and then, change the configuration under the traffic.
            let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(VIP), port: 80 };
            let d = DestSpec::new(Ipv4Addr::new(198, 18, 1, 2), 80, ForwardMode::FullNat, (ctl & 3) as u32);
            lab.ok(Request::EditDest { service: key, dest: d });
        }
        let mut fixed = frame.clone();
        testing::fix_checksums(&mut fixed);
        if ctl & 0x40 == 0 {
            frame = fixed;
        } else if fixed != frame {
            // A wrong L4 checksum goes out as wrong as it came in.
            l4_sums = false;
        }
        lab.worker.handle(now, (ctl & 1) as u16, frame, &mut lab.io);
        lab.worker.tick(now, &mut lab.io);
        for (port, f) in lab.io.sent.drain(..) {
            assert!(port <= 1, "sent on a port that does not exist");
            testing::check_sent(port, &f, l4_sums);
        }
    }
}

/// Decodes `data` as control frames and applies what decodes.
pub fn control(data: &[u8]) {
    let lab = setup();
    let control = lab.control;
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
