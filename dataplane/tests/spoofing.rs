//! Spoofed packets from the wrong segment (issue 10): with the strict
//! reverse-path check, a host on the client segment cannot speak for a
//! real server (kill a session with a RST, inject a datagram), and a host
//! on the server segment cannot speak for a client. Frames are built and
//! checked with `etherparse`.

mod common;

use common::*;
use gw_core::counters::{Drop, Event};
use gw_core::route::Route;
use gw_proto::{ForwardMode, Scheduler};

/// A TCP frame with exactly the flags `rst`/`fin` (plus ACK), sequence `seq`.
fn tcp_flags(
    src_mac: [u8; 6],
    dst_mac: MacAddrBytes,
    s: Endpoint,
    d: Endpoint,
    seq: u32,
    rst: bool,
) -> Vec<u8> {
    let b =
        etherparse::PacketBuilder::ethernet2(src_mac, dst_mac).ipv4(s.0, d.0, 64).tcp(s.1, d.1, seq, 64000);
    let b = if rst { b.rst() } else { b.ack(1) };
    let mut out = vec![];
    b.write(&mut out, &[]).unwrap();
    out
}

type MacAddrBytes = [u8; 6];

/// An established FULLNAT connection from CLIENT:40000: returns the real
/// server's side of it ((RIP, rport), (LIP, lport)).
fn established(lab: &mut Lab) -> (Endpoint, Endpoint) {
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    let (_, _, lip, rip, _) = inspect(&out[0].1);
    lab.rx(1, tcp(RS_MAC[0], GW_IN, rip, lip, true, true));
    assert_eq!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true)).len(), 1);
    assert_eq!(lab.counters.event_count(Event::HalfOpen), 0);
    (rip, lip)
}

#[test]
fn a_rst_for_a_real_server_from_the_client_side_is_dropped_and_the_session_lives() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let (rip, lip) = established(&mut lab);
    // The attacker on the client segment, with the right ports, any sequence.
    for seq in [0, 1, 0x8000_0000] {
        let rst = tcp_flags(CLIENT_MAC, GW_OUT.0, rip, lip, seq, true);
        assert!(lab.rx(0, rst).is_empty());
    }
    assert_eq!(lab.counters.drop_count(Drop::ReversePath), 3);
    // The session is still there and still established both ways.
    assert_eq!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true)).len(), 1);
    let back = lab.rx(1, tcp(RS_MAC[0], GW_IN, rip, lip, false, true));
    assert_eq!(back.len(), 1);
    let (_, _, src, dst, _) = inspect(&back[0].1);
    assert_eq!((src, dst), ((VIP, 80), (CLIENT, 40000)));
    let live = lab.worker.engine.sessions().len();
    lab.now += 20_000; // past the CLOSE timeout a RST would have set
    lab.worker.tick(lab.now, &mut lab.io);
    assert_eq!(lab.worker.engine.sessions().len(), live);
}

#[test]
fn a_datagram_for_a_real_server_from_the_client_side_never_reaches_the_client() {
    for mode in [ForwardMode::FullNat, ForwardMode::Masq] {
        let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, mode, 8080);
        lab.learn_neighbours();
        let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
        let (_, _, src, rip, _) = inspect(&out[0].1);
        // FULLNAT: src is LIP:lport; NAT: the client's own address.
        let inject = udp(CLIENT_MAC, GW_OUT, rip, src);
        assert!(lab.rx(0, inject).is_empty(), "{mode:?}");
        assert_eq!(lab.counters.drop_count(Drop::ReversePath), 1, "{mode:?}");
        // The real server's own reply still goes through.
        let idx = RS.iter().position(|r| *r == rip.0).unwrap();
        let back = lab.rx(1, udp(RS_MAC[idx], GW_IN, rip, src));
        assert_eq!(back.len(), 1, "{mode:?}");
        assert_eq!(inspect(&back[0].1).2, (VIP, 80));
    }
}

#[test]
fn a_client_address_from_the_server_side_is_dropped() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    assert!(lab.rx(1, tcp(RS_MAC[0], GW_IN, (CLIENT, 40000), (VIP, 80), true, false)).is_empty());
    assert!(lab.rx(1, tcp(RS_MAC[0], GW_IN, ([203, 0, 113, 9], 40000), (VIP, 80), true, false)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::ReversePath), 2);
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 0);
}

#[test]
fn with_no_route_back_a_source_is_dropped_on_every_port() {
    let mut lab = LabConfig { routes: Vec::<Route>::new(), ..LabConfig::default() }
        .build()
        .with_services(Scheduler::Rr);
    lab.learn_neighbours();
    assert!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, ([203, 0, 113, 9], 1), (VIP, 80), true, false)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::ReversePath), 1);
    assert_eq!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 1), (VIP, 80), true, false)).len(), 1);
}
