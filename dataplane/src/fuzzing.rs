//! Entry points for the fuzz targets (`fuzz/`) and their regression replay
//! (`dataplane/tests/fuzz_regressions.rs`): the same code runs under
//! libFuzzer and under `cargo test`.
//!
//! [`packet_path`] feeds arbitrary frames into a worker that has services of
//! every forwarding mode, persistence and live sessions (with their TCP
//! sequence marks), with a driven clock, and checks that whatever it sends
//! is well-formed; replies to packets without a service or session are on,
//! with a small token bucket, so the fuzzer drives both the replies and the
//! limiter: each reply is checked against the packet it answers
//! ([`check_reply`]) and the count of replies against the bucket. [`control`]
//! feeds arbitrary bytes to the control-socket decoder and whatever decodes
//! to the control plane.

use std::net::Ipv4Addr;

use etherparse::{Icmpv4Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use gw_core::counters::Event;
use gw_core::engine::RejectConfig;
use gw_proto::{read_frame, DestSpec, ForwardMode, Protocol, Request, ServiceKey, ServiceSpec};

use crate::testing::{self, Lab, LabConfig, LIP, VIP};

/// The fuzz lab's reply bucket: small, so that random traffic empties it.
const REPLY_RATE: u64 = 20;
const REPLY_BURST: u64 = 4;
use gw_core::neigh::NeighConfig;
use gw_core::route::Route;

/// A lab with services of every forwarding mode (and one persistent, one
/// with a PROXY header, one with TOA), a kernel interface on the inside
/// port, two
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
        reject: RejectConfig {
            rate: REPLY_RATE as u32,
            burst: REPLY_BURST as u32,
            ..RejectConfig::default()
        },
        // The inside port has a kernel interface (the exception path); the
        // outside port keeps the fail-fast replies.
        kernel: vec![1],
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
        // The client address: PROXY v1 (sequence shifting) and TOA.
        (Protocol::Tcp, 86, ForwardMode::FullNat, None),
        (Protocol::Tcp, 87, ForwardMode::FullNat, None),
        // SYNPROXY (cookies, the splice): alone, with PROXY v2, over NAT.
        (Protocol::Tcp, 88, ForwardMode::FullNat, None),
        (Protocol::Tcp, 89, ForwardMode::FullNat, None),
        (Protocol::Tcp, 90, ForwardMode::Masq, None),
        // TUN by GUE (UDP to 6080, checksum) and by GRE (checksum).
        (Protocol::Udp, 84, ForwardMode::Tunnel, None),
        (Protocol::Tcp, 85, ForwardMode::Tunnel, None),
    ];
    for (proto, port, mode, persistent) in modes {
        let key = ServiceKey { proto, addr: Ipv4Addr::from(VIP).into(), port };
        let mut spec = ServiceSpec::new(key, gw_proto::Scheduler::Wrr);
        spec.persistent = persistent;
        spec.one_packet = port == 82;
        spec.client_addr = match port {
            86 => gw_proto::ClientAddr::ProxyV1,
            87 => gw_proto::ClientAddr::Toa,
            89 => gw_proto::ClientAddr::ProxyV2,
            _ => gw_proto::ClientAddr::None,
        };
        spec.synproxy = (88..=90).contains(&port);
        lab.ok(Request::AddService { spec });
        for (i, r) in rs.iter().enumerate() {
            let mut d =
                DestSpec::new(*r, if mode == ForwardMode::Masq { 8080 } else { port }, mode, i as u32 + 1);
            d.upper = 3;
            d.tunnel = match port {
                84 => {
                    gw_proto::TunnelEncap::Gue { port: testing::GUE_PORT, csum: gw_proto::TunnelCsum::Csum }
                }
                85 => gw_proto::TunnelEncap::Gre { csum: gw_proto::TunnelCsum::Csum },
                _ => gw_proto::TunnelEncap::Ipip,
            };
            lab.ok(Request::AddDest { service: key, dest: d });
        }
        lab.ok(Request::AddLaddr { service: key, addr: Ipv4Addr::from(LIP).into() });
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
/// wrong checksums went in. Bit 5 of a client frame answers the gateway's
/// last SYNPROXY cookie: its TCP sequence and acknowledgement numbers are
/// set to the client's ISN+1 and the cookie+1 first (a fuzzer cannot guess
/// a cookie), so that the splice is reached. Panics on any misbehaviour.
pub fn packet_path(data: &[u8]) {
    let mut lab = setup();
    let mut now = 1_000u64;
    let mut cookie: Option<(u32, u32)> = None;
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
            let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::from(VIP).into(), port: 80 };
            let d = DestSpec::new(Ipv4Addr::new(198, 18, 1, 2), 80, ForwardMode::FullNat, (ctl & 3) as u32);
            lab.ok(Request::EditDest { service: key, dest: d });
        }
        if let (true, Some((seq, ack))) = (ctl & 0x21 == 0x20, cookie) {
            answer_cookie(&mut frame, seq, ack);
        }
        let mut fixed = frame.clone();
        testing::fix_checksums(&mut fixed);
        if ctl & 0x40 == 0 {
            frame = fixed;
        } else if fixed != frame {
            // A wrong L4 checksum goes out as wrong as it came in.
            l4_sums = false;
        }
        let (rx, input) = ((ctl & 1) as u16, frame.clone());
        lab.worker.handle(now, rx, frame, &mut lab.io);
        lab.worker.tick(now, &mut lab.io);
        for (port, f) in lab.io.sent.drain(..) {
            assert!(port <= 1, "sent on a port that does not exist");
            if let Some(c) = syn_ack_numbers(port, &f) {
                cookie = Some(c);
            }
            testing::check_sent(port, &f, l4_sums);
            check_reply(rx, &input, port, &f);
        }
        // The kernel gets only the frame that came in, untouched, from the
        // port that has a kernel interface.
        for (port, f) in lab.io.kernel.drain(..) {
            assert_eq!(port, 1, "handed to a kernel interface that does not exist");
            assert_eq!(rx, 1, "a frame of the outside port went to the kernel");
            assert!(f == input, "the kernel got a changed frame");
        }
        // Never more replies than the bucket holds plus its refill (the
        // engine's clock started at 0 ms).
        let c = &lab.counters;
        let replies = c.event_count(Event::TcpRstSent) + c.event_count(Event::IcmpPortUnreachSent);
        assert!(
            replies * 1000 <= REPLY_BURST * 1000 + REPLY_RATE * now,
            "{replies} replies by {now} ms: the token bucket leaks"
        );
    }
}

/// A SYN-ACK the gateway sent toward the client (port 0): the client's
/// next sequence number and its acknowledgement of the cookie.
fn syn_ack_numbers(port: u16, f: &[u8]) -> Option<(u32, u32)> {
    let p = SlicedPacket::from_ethernet(f).ok()?;
    let Some(TransportSlice::Tcp(t)) = &p.transport else { return None };
    (port == 0 && t.syn() && t.ack())
        .then(|| (t.acknowledgment_number(), t.sequence_number().wrapping_add(1)))
}

/// Sets the TCP sequence and acknowledgement numbers of an IPv4 frame (if
/// it is one).
fn answer_cookie(frame: &mut [u8], seq: u32, ack: u32) {
    let Some(&vihl) = frame.get(14) else { return };
    let t = 14 + usize::from(vihl & 0xf) * 4;
    if vihl >> 4 != 4 || frame.get(23) != Some(&6) || frame.len() < t + 12 {
        return;
    }
    frame[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
    frame[t + 8..t + 12].copy_from_slice(&ack.to_be_bytes());
}

/// If `out` (sent on `port`) is the gateway's reply to `input` (received on
/// `rx`): a RST from where the segment went to where it came from, or a
/// port unreachable quoting it, checks RFC 793's numbers, that it went back
/// out `rx`, and that `input` was one that may be answered (unicast, not a
/// RST, not a fragment). Every port unreachable, replies and translated
/// errors alike, quotes a packet from its own destination to its source.
fn check_reply(rx: u16, input: &[u8], port: u16, out: &[u8]) {
    let Ok(o) = SlicedPacket::from_ethernet(out) else { return };
    let Some(NetSlice::Ipv4(oip)) = &o.net else { return };
    let (osrc, odst) = (oip.header().source_addr(), oip.header().destination_addr());
    let i = SlicedPacket::from_ethernet(input).ok();
    let i_ip = i.as_ref().and_then(|i| match (&i.link, &i.net) {
        (Some(LinkSlice::Ethernet2(e)), Some(NetSlice::Ipv4(ip))) => Some((e.destination(), e.source(), ip)),
        _ => None,
    });
    let answered = |what: &str| {
        let (edst, esrc, ip) = i_ip.as_ref().expect("a reply to a frame that is not IPv4");
        assert_eq!(port, rx, "{what} left by another port than its packet came in on");
        assert_eq!(*edst, testing::port_mac(rx).0, "{what} to a frame not unicast to us");
        assert_eq!(esrc[0] & 1, 0, "{what} to a multicast MAC");
        let h = ip.header();
        assert!(!h.is_fragmenting_payload(), "{what} to a fragment");
        assert_eq!((osrc, odst), (h.destination_addr(), h.source_addr()), "{what} addresses");
        let subnet_broadcasts = [Ipv4Addr::new(198, 18, 0, 255), Ipv4Addr::new(198, 18, 1, 255)];
        assert!(
            !odst.is_broadcast() && !odst.is_multicast() && !subnet_broadcasts.contains(&odst),
            "{what} to {odst}"
        );
        assert_eq!(oip.header().ttl(), 64, "{what} TTL");
    };
    match &o.transport {
        Some(TransportSlice::Icmpv4(icmp)) => {
            let Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port) =
                icmp.icmp_type()
            else {
                return;
            };
            let q = icmp.payload();
            assert!(q.len() >= 28, "a port unreachable quotes a header and 8 bytes");
            assert_eq!(
                (&q[12..16], &q[16..20]),
                (&odst.octets()[..], &osrc.octets()[..]),
                "quoted addresses"
            );
            let Some(inp) = input.get(14..) else { return };
            if inp.len() >= q.len() && inp[..q.len()] == *q && oip.header().ttl() == 64 {
                answered("a port unreachable");
                let ihl = usize::from(q[0] & 0x0f) * 4;
                assert_eq!(q.len(), ihl + 8, "the IP header and 8 bytes (RFC 792)");
                match q[9] {
                    6 => assert_eq!(
                        inp.get(ihl + 13).map(|f| f & 0x17),
                        Some(0x02),
                        "only a plain SYN gets a port unreachable"
                    ),
                    17 => {}
                    p => panic!("a port unreachable for protocol {p}"),
                }
            }
        }
        Some(TransportSlice::Tcp(t)) if t.rst() => {
            let Some(Some(TransportSlice::Tcp(it))) = i.as_ref().map(|i| &i.transport) else { return };
            let (_, _, iip) = i_ip.as_ref().unwrap();
            let swapped = (osrc, t.source_port(), odst, t.destination_port())
                == (
                    iip.header().destination_addr(),
                    it.destination_port(),
                    iip.header().source_addr(),
                    it.source_port(),
                );
            if !swapped {
                return;
            }
            answered("a RST");
            assert!(!it.rst(), "a RST answered with a RST");
            assert!(t.payload().is_empty() && !t.syn() && !t.fin());
            if it.ack() {
                assert_eq!(
                    (t.sequence_number(), t.ack()),
                    (it.acknowledgment_number(), false),
                    "RFC 793, ACK in"
                );
            } else {
                let len = it.payload().len() as u32 + u32::from(it.syn()) + u32::from(it.fin());
                assert_eq!(t.sequence_number(), 0, "RFC 793, no ACK in");
                assert!(t.ack(), "RFC 793: the RST acknowledges");
                assert_eq!(t.acknowledgment_number(), it.sequence_number().wrapping_add(len));
            }
        }
        _ => {}
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
