//! Spoofed packets from the wrong segment (issue 10): with the strict
//! reverse-path check, a host on the client segment cannot speak for a
//! real server (kill a session with a RST, inject a datagram), and a host
//! on the server segment cannot speak for a client. Frames are built and
//! checked with `etherparse`.

mod common;

use common::*;
use gw_core::counters::{Drop, Event};
use gw_core::neigh::NeighConfig;
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

/// A packet of an established session takes its reverse-path check from
/// the route its session remembers (issue 14): the client's own flow
/// spoofed from the server segment is dropped whether the session has
/// learnt the route back to the client yet (the second packet) or not,
/// counted, and the session still carries the client's next packet.
#[test]
fn an_established_clients_flow_from_the_server_side_is_dropped() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let client = (CLIENT, 5353);
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, client, (VIP, 80)));
    assert_eq!(out.len(), 1);
    // Before and after a client packet has taken the route back.
    assert!(lab.rx(1, udp(RS_MAC[0], GW_IN, client, (VIP, 80))).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::ReversePath), 1);
    assert_eq!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, client, (VIP, 80))).len(), 1);
    assert!(lab.rx(1, udp(RS_MAC[0], GW_IN, client, (VIP, 80))).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::ReversePath), 2);
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 1);
    let again = lab.rx(0, udp(CLIENT_MAC, GW_OUT, client, (VIP, 80)));
    assert_eq!(again.len(), 1);
    assert_eq!(inspect(&again[0].1), inspect(&out[0].1), "the same session, rewritten the same way");
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

/// Whether `frame` is an ARP request (by its EtherType and opcode).
fn is_arp_request(frame: &[u8]) -> bool {
    frame[12..14] == [0x08, 0x06] && frame[20..22] == [0, 1]
}

#[test]
fn arp_from_senders_outside_the_ports_subnet_is_neither_answered_nor_learnt() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    for i in 0..1100u32 {
        let sender = (0x0a00_0000 + i).to_be_bytes(); // 10.0.x.y, on no port's subnet
        assert!(lab.rx(0, arp_request(CLIENT_MAC, sender, GW_OUT_ADDR)).is_empty());
    }
    assert_eq!(lab.counters.drop_count(Drop::ArpOffSubnet), 1100);
    // A real server's address on the client side is off that port's subnet too.
    assert!(lab.rx(0, arp_request(RS_MAC[0], RS[0], GW_OUT_ADDR)).is_empty());
    // A client never seen before is answered and served at once.
    lab.learn_neighbours();
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(out.len(), 1);
    assert!(!is_arp_request(&out[0].1));
}

#[test]
fn unsolicited_and_gratuitous_arp_make_no_entry_but_refresh_one() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP));
    // Unsolicited replies and gratuitous ARP from both real servers.
    for (i, rs) in RS.iter().enumerate() {
        assert!(lab.rx(1, arp_reply(RS_MAC[i], *rs, GW_IN, GW_IN_ADDR)).is_empty());
        assert!(lab.rx(1, arp_request(RS_MAC[i], *rs, *rs)).is_empty());
    }
    assert_eq!(lab.counters.event_count(Event::ArpRepliesLearned), 0);
    // So the SYN waits for the gateway's own probe.
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(out.len(), 1);
    assert!(is_arp_request(&out[0].1), "probe for the real server");
    let target: [u8; 4] = out[0].1[38..42].try_into().unwrap();
    let idx = RS.iter().position(|r| *r == target).unwrap();
    // The answer to the probe releases it.
    let out = lab.rx(1, arp_reply(RS_MAC[idx], target, GW_IN, GW_IN_ADDR));
    assert_eq!(out.len(), 1);
    assert_eq!(inspect(&out[0].1).3 .0, target);
    // Now a gratuitous ARP with a new MAC refreshes that entry.
    let new_mac = [0x02, 0xaa, 0, 0, 0, 0x77];
    assert!(lab.rx(1, arp_request(new_mac, target, target)).is_empty());
    // (The client's SYN again: the server has not answered it yet.)
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(inspect(&out[0].1).1, new_mac);
}

#[test]
fn a_neighbour_flood_on_the_client_segment_leaves_room_for_new_clients_and_servers() {
    let neigh = NeighConfig { capacity: 16, per_port_max: 12, ..NeighConfig::default() };
    let mut lab = LabConfig { neigh, ..LabConfig::default() }.build().with_services(Scheduler::Rr);
    lab.learn_neighbours();
    // Made-up senders inside the client subnet, all asking for the gateway.
    for round in 0..3 {
        for host in 10..250u8 {
            let mac = [0x02, 0xbb, 0, 0, round, host];
            assert_eq!(lab.rx(0, arp_request(mac, [198, 18, 0, host], GW_OUT_ADDR)).len(), 1);
        }
        lab.now += 1000;
    }
    assert!(lab.counters.event_count(Event::NeighEvicted) > 0);
    // A new client (its first SYN-ACK must reach it) and both real servers.
    let newcomer = [198, 18, 0, 251];
    let newcomer_mac = [0x02, 0xc0, 0, 0, 0, 0x51];
    let out = lab.rx(0, tcp(newcomer_mac, GW_OUT, (newcomer, 40000), (VIP, 80), true, false));
    assert_eq!(out.len(), 1, "no ARP needed toward the real server: port 1 kept its entries");
    assert!(!is_arp_request(&out[0].1));
    let (_, _, lip, rip, _) = inspect(&out[0].1);
    let idx = RS.iter().position(|r| *r == rip.0).unwrap();
    let out = lab.rx(1, tcp(RS_MAC[idx], GW_IN, rip, lip, true, true));
    assert_eq!(out.len(), 1);
    assert!(is_arp_request(&out[0].1), "the newcomer is resolved");
    let out = lab.rx(0, arp_reply(newcomer_mac, newcomer, GW_OUT, GW_OUT_ADDR));
    assert_eq!(out.len(), 1);
    assert_eq!(inspect(&out[0].1).3, (newcomer, 40000));
}

/// The local ports of SYNs from CLIENT:40000.. through a lab of `workers`
/// workers (this is worker 0) with session-hash seed `seed`.
fn lports(workers: u32, seed: u64, n: u16) -> Vec<u16> {
    let mut lab = LabConfig { workers, seed, sessions: 256, ..LabConfig::default() }
        .build()
        .with_services(Scheduler::Rr);
    lab.learn_neighbours();
    (0..n)
        .map(|i| {
            let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000 + i), (VIP, 80), true, false));
            let (_, _, lip, _, _) = inspect(&out[0].1);
            assert_eq!(lip.0, LIP);
            lip.1
        })
        .collect()
}

#[test]
fn local_ports_are_not_handed_out_in_sequence_and_stay_in_the_workers_share() {
    let p = lports(2, 7, 32);
    let steps = p.windows(2).filter(|w| w[1].abs_diff(w[0]) <= 2).count();
    assert!(steps < 4, "consecutive local ports: {p:?}");
    assert!(p.iter().all(|l| *l >= 1024 && l % 2 == 0), "worker 0 of 2 owns even ports: {p:?}");
    let mut sorted = p.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), p.len());
    // The same secret gives the same ports, another secret others.
    assert_eq!(lports(2, 7, 32), p);
    assert_ne!(lports(2, 8, 32), p);
}

/// Live sessions after the CLOSE timeout (10 s) has passed.
fn live_after_close_timeout(lab: &mut Lab) -> usize {
    lab.now += 11_000;
    lab.worker.tick(lab.now, &mut lab.io);
    lab.worker.engine.sessions().len()
}

/// A lab of `mode` after the client's SYN from CLIENT:40000: the real
/// server's side of it ((RIP, rport), its destination, RS index).
fn syn_sent(mode: ForwardMode) -> (Lab, Endpoint, Endpoint, usize) {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, mode, 8080);
    lab.learn_neighbours();
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    let (_, _, src, rip, _) = inspect(&out[0].1);
    let idx = RS.iter().position(|r| *r == rip.0).unwrap();
    (lab, rip, src, idx)
}

#[test]
fn a_rst_from_the_right_side_is_accepted_only_in_the_senders_window() {
    for mode in [ForwardMode::FullNat, ForwardMode::Masq] {
        let (mut lab, rip, src, idx) = syn_sent(mode);
        lab.rx(1, tcp(RS_MAC[idx], GW_IN, rip, src, true, true)); // SYN-ACK, seq 1000
        lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true));
        let live = lab.worker.engine.sessions().len();
        // Blind RSTs from the server's side, far from seq 1000.
        for seq in [0x4000_0000, 0x8000_0000, 0x0003_0000] {
            assert!(lab.rx(1, tcp_flags(RS_MAC[idx], GW_IN.0, rip, src, seq, true)).is_empty(), "{mode:?}");
        }
        assert_eq!(lab.counters.drop_count(Drop::TcpRstOutOfWindow), 3, "{mode:?}");
        // A FIN far away moves nothing either.
        let mut fin = tcp(RS_MAC[idx], GW_IN, rip, src, false, true);
        fin[14 + 20 + 13] |= 0x01;
        fin[14 + 20 + 4..14 + 20 + 8].copy_from_slice(&0x9000_0000u32.to_be_bytes());
        fix_checksums(&mut fin);
        assert!(lab.rx(1, fin).is_empty());
        assert_eq!(lab.counters.drop_count(Drop::TcpOutOfWindow), 1, "{mode:?}");
        assert_eq!(live_after_close_timeout(&mut lab), live, "{mode:?}: the session survived");
        // Data still flows both ways.
        assert_eq!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), false, true)).len(), 1);
        assert_eq!(lab.rx(1, tcp(RS_MAC[idx], GW_IN, rip, src, false, true)).len(), 1);
        // The server's real RST (its own sequence number) goes through and closes.
        let rst = lab.rx(1, tcp_flags(RS_MAC[idx], GW_IN.0, rip, src, 1005, true));
        assert_eq!(rst.len(), 1, "{mode:?}");
        assert_eq!(live_after_close_timeout(&mut lab), live - 1, "{mode:?}: closed by the real RST");
    }
}

/// A blind attacker who guessed a connection's four-tuple sweeps the
/// client's sequence space with empty ACKs (one every 2^24): none of them
/// moves what the client's segments are checked against (the server's
/// acknowledgements), so the real client's data still passes, a RST far
/// from it is dropped, and the session is not closed for a SYN to reuse.
/// (When accepted client segments advanced the client's own mark, 129 of
/// these walked it away: the real data was dropped, the RST at the swept
/// place accepted and the session rescheduled.)
#[test]
fn a_sweep_of_spoofed_client_acks_never_shuts_the_real_client_out() {
    for mode in [ForwardMode::FullNat, ForwardMode::Masq] {
        let (mut lab, rip, src, idx) = syn_sent(mode);
        let from_server = |seq: u32, ack: u32, data: &'static [u8]| {
            segment(RS_MAC[idx], GW_IN.0, rip, src, Seg { seq, ack: Some(ack), data, ..Seg::default() })
        };
        let from_client = |seq: u32, ack: u32, rst: bool, data: &'static [u8]| {
            let s = Seg { seq, ack: (!rst).then_some(ack), rst, data, ..Seg::default() };
            segment(CLIENT_MAC, GW_OUT.0, (CLIENT, 40000), (VIP, 80), s)
        };
        let syn_ack = Seg { seq: 5000, ack: Some(1001), syn: true, ..Seg::default() };
        assert_eq!(lab.rx(1, segment(RS_MAC[idx], GW_IN.0, rip, src, syn_ack)).len(), 1);
        assert_eq!(lab.rx(0, from_client(1001, 5001, false, b"GET")).len(), 1);
        assert_eq!(lab.rx(1, from_server(5001, 1004, b"200")).len(), 1);
        let forwarded: usize =
            (0..=128u32).map(|k| lab.rx(0, from_client(k << 24, 5004, false, b"")).len()).sum();
        assert!(forwarded <= 2, "{mode:?}: only segments near the real place pass ({forwarded})");
        assert_eq!(lab.rx(0, from_client(1004, 5004, false, b"more")).len(), 1, "{mode:?}: real data");
        assert!(lab.rx(0, from_client(0x8000_0000, 0, true, b"")).is_empty(), "{mode:?}");
        let reused = lab.counters.event_count(Event::SessionsReused);
        let syn = Seg { seq: 77, syn: true, ..Seg::default() };
        lab.rx(0, segment(CLIENT_MAC, GW_OUT.0, (CLIENT, 40000), (VIP, 80), syn));
        assert_eq!(lab.counters.event_count(Event::SessionsReused), reused, "{mode:?}: not rescheduled");
        assert_eq!(lab.rx(1, from_server(5004, 1008, b"ok")).len(), 1, "{mode:?}: the server's side too");
        // The real client's RST, at what the server acknowledged, closes.
        assert_eq!(lab.rx(0, from_client(1008, 0, true, b"")).len(), 1, "{mode:?}");
    }
}

/// A SYN flood cannot pass the half-open limit by following each SYN with
/// a forged FIN or ACK (which would move the session to TIME_WAIT or
/// ESTABLISHED, out of the half-open count): before the real server has
/// answered, a client's ACK or FIN is dropped, in FULLNAT and NAT.
#[test]
fn a_syn_flood_cannot_leave_the_half_open_count_with_a_forged_second_segment() {
    for mode in [ForwardMode::FullNat, ForwardMode::Masq] {
        let mut lab = LabConfig { half_open_max: 4, ..LabConfig::default() }.build();
        lab.ok(gw_proto::Request::AddService {
            spec: gw_proto::ServiceSpec::new(key(gw_proto::Protocol::Tcp), Scheduler::Rr),
        });
        let dest = gw_proto::DestSpec::new(std::net::Ipv4Addr::from(RS[0]), 8080, mode, 1);
        lab.ok(gw_proto::Request::AddDest { service: key(gw_proto::Protocol::Tcp), dest });
        lab.ok(gw_proto::Request::AddLaddr {
            service: key(gw_proto::Protocol::Tcp),
            addr: std::net::Ipv4Addr::from(LIP).into(),
        });
        lab.learn_neighbours();
        for port in 30000..30010u16 {
            let from = (CLIENT, port);
            lab.rx(
                0,
                segment(CLIENT_MAC, GW_OUT.0, from, (VIP, 80), Seg { seq: 7, syn: true, ..Seg::default() }),
            );
            let second = if port % 2 == 0 {
                Seg { seq: 8, fin: true, ..Seg::default() }
            } else {
                Seg { seq: 8, ack: Some(1), ..Seg::default() }
            };
            let out = lab.rx(0, segment(CLIENT_MAC, GW_OUT.0, from, (VIP, 80), second));
            // The first four have a session (it drops the segment); the
            // others' SYNs were refused, and a segment without a session
            // is answered with a RST (fail-fast).
            assert_eq!(out.is_empty(), port < 30004, "{mode:?} {port}");
        }
        let c = &lab.counters;
        assert_eq!(c.event_count(Event::SessionsCreated), 4, "{mode:?}");
        assert_eq!(c.drop_count(Drop::HalfOpenLimit), 6, "{mode:?}");
        assert_eq!(c.event_count(Event::HalfOpen), 4, "{mode:?}: still half-open");
        assert_eq!(c.drop_count(Drop::TcpBeforeServer), 4, "{mode:?}");
    }
}

/// A UDP flood from made-up client ports fills at most the share of the
/// table `half_open_percent` gives to flows no real server has answered
/// (`drop_udp_unreplied_limit`), as a SYN flood fills half-open TCP's: new
/// TCP connections still open, a flow its server answered leaves the
/// count (and makes room for another), and an ended flow leaves it too.
/// DR's flows, whose answers bypass the gateway, are never counted.
#[test]
fn a_udp_flood_fills_at_most_its_share_and_an_answered_flow_leaves_it() {
    for mode in [ForwardMode::FullNat, ForwardMode::Masq, ForwardMode::Route] {
        let dr = mode == ForwardMode::Route;
        let rport = if dr { 80 } else { 8080 };
        let mut lab = Lab::build(64, (1024, 65535), 1500, 4).with_mode(Scheduler::Rr, mode, rport);
        lab.learn_neighbours();
        // The server answers this one at once.
        let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 5353), (VIP, 80)));
        assert_eq!(out.len(), 1, "{mode:?}");
        let answer = |lab: &mut Lab, out: &[(u16, Vec<u8>)]| {
            let (_, _, src, rip, _) = inspect(&out[0].1);
            let idx = RS.iter().position(|r| *r == rip.0).unwrap();
            assert_eq!(lab.rx(1, udp(RS_MAC[idx], GW_IN, rip, src)).len(), 1);
        };
        if !dr {
            answer(&mut lab, &out);
        }
        let mut first = None;
        for port in 20000..20010u16 {
            let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, port), (VIP, 80)));
            first = first.or((!out.is_empty()).then_some(out));
        }
        let c = &lab.counters;
        let (admitted, refused) = if dr { (10, 0) } else { (4, 6) };
        assert_eq!(c.event_count(Event::SessionsCreated), 1 + admitted, "{mode:?}");
        assert_eq!(c.drop_count(Drop::UdpUnrepliedLimit), refused, "{mode:?}");
        assert_eq!(c.event_count(Event::UdpUnreplied), if dr { 0 } else { 4 }, "{mode:?}");
        // TCP is not held back by the UDP flood.
        let syn = segment(
            CLIENT_MAC,
            GW_OUT.0,
            (CLIENT, 30000),
            (VIP, 80),
            Seg { seq: 7, syn: true, ..Seg::default() },
        );
        assert_eq!(lab.rx(0, syn).len(), 1, "{mode:?}");
        if !dr {
            // One of the flood's flows answered: room for one more.
            answer(&mut lab, &first.unwrap());
            assert_eq!(lab.counters.event_count(Event::UdpUnreplied), 3, "{mode:?}");
            assert_eq!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 21000), (VIP, 80))).len(), 1, "{mode:?}");
            assert!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 21001), (VIP, 80))).is_empty(), "{mode:?}");
        }
        // Ended flows leave the count: past the UDP timeout (300 s).
        for _ in 0..31 {
            lab.now += 10_000;
            lab.worker.tick(lab.now, &mut lab.io);
        }
        assert_eq!(lab.worker.engine.sessions().len(), 0, "{mode:?}");
        assert_eq!(lab.counters.event_count(Event::UdpUnreplied), 0, "{mode:?}");
        // (The ticks' ARP refreshes meanwhile: answered, and not counted below.)
        lab.io.sent.clear();
        lab.learn_neighbours();
        assert_eq!(lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 22000), (VIP, 80))).len(), 1, "{mode:?}");
        assert_eq!(lab.counters.event_count(Event::UdpUnreplied), u64::from(!dr), "{mode:?}");
    }
}
