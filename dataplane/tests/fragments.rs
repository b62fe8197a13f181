//! Fragments through `Worker<Vec<u8>>`: UDP datagrams of 8 KB and 60 KB,
//! fragmented by this file (headers written with `etherparse`), arrive out of
//! order, are reassembled by the gateway, take their session's mode and
//! leave as fragments of the output MTU, which `etherparse`'s own
//! defragmenter puts back together; both directions where the mode sees
//! replies. Also: DF and the output MTU, TUN's fragmented outer packet,
//! the hand-off of a reassembled datagram to its owner, and a fragment flood.

mod common;

use common::*;
use etherparse::defrag::IpDefragPool;
use etherparse::{Ipv4Header, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::{Drop, Event};
use gw_core::wire::ethernet::MacAddr;
use gw_proto::{ForwardMode, Scheduler};

/// An Ethernet + IPv4 + UDP frame (DF as given, IP ID `id`).
fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: MacAddr,
    s: Endpoint,
    d: Endpoint,
    payload: &[u8],
    df: bool,
    id: u16,
) -> Vec<u8> {
    let mut out = vec![];
    let mut ip = Ipv4Header::new(0, 64, etherparse::IpNumber::UDP, s.0, d.0).unwrap();
    ip.dont_fragment = df;
    ip.identification = id;
    PacketBuilder::ethernet2(src_mac, dst_mac.0)
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .udp(s.1, d.1)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// `frame` as IPv4 fragments of at most `mtu` bytes of IP, headers written
/// by etherparse (not by the gateway's code), last fragment first.
fn fragment(frame: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let (h, rest) = Ipv4Header::from_slice(&frame[14..]).unwrap();
    let payload = &rest[..h.total_len as usize - h.header_len()];
    let per = (mtu - h.header_len()) & !7;
    let mut out = vec![];
    for (k, chunk) in payload.chunks(per).enumerate() {
        let mut fh = h.clone();
        fh.fragment_offset = etherparse::IpFragOffset::try_new((k * per / 8) as u16).unwrap();
        fh.more_fragments = (k + 1) * per < payload.len();
        fh.set_payload_len(chunk.len()).unwrap();
        fh.header_checksum = fh.calc_header_checksum();
        let mut f = frame[..14].to_vec();
        fh.write(&mut f).unwrap();
        f.extend_from_slice(chunk);
        out.push(f);
    }
    out.reverse();
    out
}

/// What the gateway sent out `port`, put back together by etherparse's
/// defragmenter: (IPv4 header of the first fragment, whole payload). Every
/// fragment fits `mtu` and has a good header checksum.
fn defrag(sent: &[(u16, Vec<u8>)], port: u16, mtu: usize) -> (Ipv4Header, Vec<u8>) {
    let mut pool = IpDefragPool::<u32, ()>::new();
    let mut first = None;
    let mut whole = None;
    assert!(!sent.is_empty(), "nothing sent");
    for (p, f) in sent {
        assert_eq!(*p, port, "every fragment leaves the same port");
        assert!(f.len() - 14 <= mtu, "a fragment of {} bytes over MTU {mtu}", f.len() - 14);
        let s = SlicedPacket::from_ethernet(f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &s.net else { panic!("not IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        if h.fragment_offset.value() == 0 {
            first = Some(h.clone());
        }
        if !h.is_fragmenting_payload() {
            return (h, ip.payload().payload.to_vec());
        }
        if let Some(p) = pool.process_sliced_packet(&s, 0, ()).unwrap() {
            whole = Some(p.payload);
        }
    }
    (first.expect("first fragment"), whole.expect("complete"))
}

/// Checks `udp` (UDP header + payload) carries `payload` between `s` and
/// `d` with a valid checksum.
fn check_udp(udp: &[u8], s: Endpoint, d: Endpoint, payload: &[u8]) {
    let (u, rest) = etherparse::UdpHeader::from_slice(udp).unwrap();
    assert_eq!((u.source_port, u.destination_port), (s.1, d.1));
    assert_eq!(rest.len(), payload.len());
    assert!(rest == payload, "payload differs");
    assert_eq!(u.checksum, u.calc_checksum_ipv4_raw(s.0, d.0, rest).unwrap(), "UDP checksum");
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

/// Feeds `frags` on `port`; everything sent after the last one.
fn feed(lab: &mut Lab, port: u16, frags: Vec<Vec<u8>>) -> Vec<(u16, Vec<u8>)> {
    let mut out = vec![];
    let n = frags.len();
    for (i, f) in frags.into_iter().enumerate() {
        let sent = lab.rx(port, f);
        if i + 1 < n {
            assert!(sent.is_empty(), "nothing leaves before the datagram is complete");
        }
        out = sent;
    }
    out
}

const SIZES: [usize; 2] = [8_000, 60_000];

#[test]
fn fullnat_reassembles_both_directions_and_fragments_to_the_mtu() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    for (i, len) in SIZES.into_iter().enumerate() {
        let data = payload(len, i as u8);
        let client = (CLIENT, 5000 + i as u16);
        let req = udp_frame(CLIENT_MAC, GW_OUT, client, (VIP, VPORT), &data, false, 100 + i as u16);
        let out = feed(&mut lab, 0, fragment(&req, 1500));
        let (h, udp) = defrag(&out, 1, 1500);
        assert_eq!(h.source, LIP);
        let rs = h.destination;
        let (u, _) = etherparse::UdpHeader::from_slice(&udp).unwrap();
        let lport = u.source_port;
        check_udp(&udp, (LIP, lport), (rs, 8080), &data);
        let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs).unwrap()];
        // The echo back through the session.
        let back = udp_frame(rs_mac, GW_IN, (rs, 8080), (LIP, lport), &data, false, 7);
        let out = feed(&mut lab, 1, fragment(&back, 1500));
        let (h, udp) = defrag(&out, 0, 1500);
        assert_eq!((h.source, h.destination), (VIP, CLIENT));
        check_udp(&udp, (VIP, VPORT), client, &data);
    }
    assert_eq!(lab.counters.event_count(Event::FragReassembled), 4);
    assert!(lab.counters.event_count(Event::FragSent) >= 2 * (6 + 41));
    assert_eq!(lab.counters.event_count(Event::FragDatagrams), 0);
}

#[test]
fn nat_reassembles_both_directions() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Masq, 8080);
    lab.learn_neighbours();
    for (i, len) in SIZES.into_iter().enumerate() {
        let data = payload(len, 9);
        let client = (CLIENT, 6000 + i as u16);
        let req = udp_frame(CLIENT_MAC, GW_OUT, client, (VIP, VPORT), &data, false, 200 + i as u16);
        let (h, udp) = defrag(&feed(&mut lab, 0, fragment(&req, 1500)), 1, 1500);
        assert_eq!(h.source, CLIENT, "NAT: the real server sees the client");
        let rs = h.destination;
        check_udp(&udp, client, (rs, 8080), &data);
        let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs).unwrap()];
        let back = udp_frame(rs_mac, GW_IN, (rs, 8080), client, &data, false, 9);
        let (h, udp) = defrag(&feed(&mut lab, 1, fragment(&back, 1500)), 0, 1500);
        assert_eq!((h.source, h.destination), (VIP, CLIENT));
        check_udp(&udp, (VIP, VPORT), client, &data);
    }
}

#[test]
fn dr_forwards_the_reassembled_datagram_as_fragments() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Route, 80);
    lab.learn_neighbours();
    for (i, len) in SIZES.into_iter().enumerate() {
        let data = payload(len, 3);
        let client = (CLIENT, 7000 + i as u16);
        let req = udp_frame(CLIENT_MAC, GW_OUT, client, (VIP, VPORT), &data, false, 300 + i as u16);
        let out = feed(&mut lab, 0, fragment(&req, 1500));
        assert!(out.iter().all(|(_, f)| RS_MAC.contains(&f[0..6].try_into().unwrap())));
        let (h, udp) = defrag(&out, 1, 1500);
        assert_eq!((h.source, h.destination), (CLIENT, VIP), "DR: the packet is the client's");
        check_udp(&udp, client, (VIP, VPORT), &data);
    }
}

#[test]
fn tun_sends_the_reassembled_datagram_as_fragments_of_the_outer_packet() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Tunnel, 80);
    lab.learn_neighbours();
    for (i, len) in SIZES.into_iter().enumerate() {
        let data = payload(len, 5);
        let client = (CLIENT, 8000 + i as u16);
        let req = udp_frame(CLIENT_MAC, GW_OUT, client, (VIP, VPORT), &data, false, 400 + i as u16);
        let (outer, inner) = defrag(&feed(&mut lab, 0, fragment(&req, 1500)), 1, 1500);
        assert_eq!(outer.protocol, etherparse::IpNumber(4));
        assert_eq!(outer.source, GW_IN_ADDR);
        let (ih, udp) = Ipv4Header::from_slice(&inner).unwrap();
        assert_eq!((ih.source, ih.destination), (CLIENT, VIP));
        assert!(!ih.is_fragmenting_payload(), "the inner packet is whole");
        assert_eq!(ih.total_len as usize, inner.len());
        check_udp(udp, client, (VIP, VPORT), &data);
    }
}

#[test]
fn tun_df_clear_1500_byte_packet_goes_out_as_two_outer_fragments() {
    let mut lab = Lab::new(64, (1024, 65535)).with_mode(Scheduler::Rr, ForwardMode::Tunnel, 80);
    lab.learn_neighbours();
    let data = payload(1472, 1);
    let req = udp_frame(CLIENT_MAC, GW_OUT, (CLIENT, 9000), (VIP, VPORT), &data, false, 1);
    assert_eq!(req.len(), 14 + 1500);
    let out = lab.rx(0, req.clone());
    assert_eq!(out.len(), 2);
    let (outer, inner) = defrag(&out, 1, 1500);
    assert_eq!(outer.protocol, etherparse::IpNumber(4));
    assert_eq!(inner, req[14..], "the inner packet byte for byte");
    assert_eq!(lab.counters.drop_count(Drop::TunnelTooBig), 0);
    assert_eq!(lab.counters.event_count(Event::FragSent), 2);
}

#[test]
fn over_the_output_mtu_df_clear_is_fragmented_and_df_set_gets_frag_needed() {
    for mode in [ForwardMode::FullNat, ForwardMode::Masq, ForwardMode::Route] {
        let mut lab = Lab::with_mtu(64, (1024, 65535), 1400).with_mode(Scheduler::Rr, mode, 80);
        lab.learn_neighbours();
        let data = payload(1472, 2);
        let req = udp_frame(CLIENT_MAC, GW_OUT, (CLIENT, 9100), (VIP, VPORT), &data, false, 1);
        let out = lab.rx(0, req);
        assert_eq!(out.len(), 2, "{mode:?}");
        let (_, udp) = defrag(&out, 1, 1400);
        assert_eq!(&udp[8..], &data[..]);
        let req = udp_frame(CLIENT_MAC, GW_OUT, (CLIENT, 9101), (VIP, VPORT), &data, true, 2);
        let out = lab.rx(0, req);
        assert_eq!(out.len(), 1, "{mode:?}");
        let (port, f) = &out[0];
        assert_eq!(*port, 0, "back to the client");
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
        assert_eq!((ip.header().source(), ip.header().destination()), (GW_OUT_ADDR, CLIENT));
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else { panic!() };
        assert!(matches!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 }
            )
        ));
        assert_eq!(lab.counters.event_count(Event::IcmpFragNeededSent), 1);
    }
}

#[test]
fn a_reassembled_datagram_owned_by_another_worker_is_handed_on_as_fragments() {
    let mut lab = LabConfig { workers: 2, ..LabConfig::default() }.build().with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let data = payload(5000, 4);
    let mut handed = 0;
    for port in 5000..5020u16 {
        let req = udp_frame(CLIENT_MAC, GW_OUT, (CLIENT, port), (VIP, VPORT), &data, false, port);
        let frags = fragment(&req, 1500);
        let out = feed(&mut lab, 0, frags);
        let to_other = std::mem::take(&mut lab.io.handed);
        if to_other.is_empty() {
            // This worker owns the session: forwarded here.
            assert!(!out.is_empty());
            continue;
        }
        handed += 1;
        assert!(out.is_empty());
        assert!(to_other.iter().all(|(w, p, _)| (*w, *p) == (1, 0)));
        let sent: Vec<(u16, Vec<u8>)> = to_other.into_iter().map(|(_, p, f)| (p, f)).collect();
        let (h, udp) = defrag(&sent, 0, 1500);
        assert_eq!((h.source, h.destination), (CLIENT, VIP), "handed on untranslated");
        check_udp(&udp, (CLIENT, port), (VIP, VPORT), &data);
    }
    assert!(handed > 0 && handed < 20, "{handed} of 20 handed on");
}

#[test]
fn a_fragment_flood_is_counted_bounded_and_real_datagrams_still_pass() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let cap = lab.counters.event_count(Event::FragCapacity);
    assert_eq!(cap, 8, "the lab's table");
    let junk = payload(3000, 0);
    let mut x = 0x1234_5678u32;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let f = udp_frame(CLIENT_MAC, GW_OUT, (CLIENT, 1), (VIP, VPORT), &junk, false, x as u16);
        let frags = fragment(&f, 1500);
        assert!(lab.rx(0, frags[0].clone()).is_empty(), "a lone last fragment waits");
        assert!(lab.counters.event_count(Event::FragDatagrams) <= cap);
        // A real request in between completes.
        if x.is_multiple_of(50) {
            let data = payload(4000, 1);
            let req = udp_frame(CLIENT_MAC, GW_OUT, (CLIENT, 999), (VIP, VPORT), &data, false, 1);
            let (_, udp) = defrag(&feed(&mut lab, 0, fragment(&req, 1500)), 1, 1500);
            assert_eq!(&udp[8..], &data[..]);
        }
    }
    assert!(lab.counters.drop_count(Drop::FragEvicted) >= 900);
    assert!(lab.counters.event_count(Event::FragPeak) <= cap);
    // After ipfrag_time the table is empty again.
    lab.now += 31_000;
    lab.worker.tick(lab.now, &mut lab.io);
    assert_eq!(lab.counters.event_count(Event::FragDatagrams), 0);
    assert_eq!(lab.counters.drop_count(Drop::FragTimeout), cap);
}

#[test]
fn overlapping_duplicate_and_stray_fragments_are_counted() {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let req = udp_frame(CLIENT_MAC, GW_OUT, (CLIENT, 1), (VIP, VPORT), &payload(4000, 0), false, 77);
    let frags = fragment(&req, 1500);
    assert!(lab.rx(0, frags[0].clone()).is_empty());
    assert!(lab.rx(0, frags[0].clone()).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::FragDuplicate), 1);
    // The middle fragment moved 8 bytes back overlaps the first.
    let mut bad = frags[1].clone();
    let (mut h, _) = Ipv4Header::from_slice(&bad[14..]).unwrap();
    h.fragment_offset = etherparse::IpFragOffset::try_new(h.fragment_offset.value() + 1).unwrap();
    h.header_checksum = h.calc_header_checksum();
    let mut hb = vec![];
    h.write(&mut hb).unwrap();
    bad[14..34].copy_from_slice(&hb);
    assert!(lab.rx(0, frags[2].clone()).is_empty());
    assert!(lab.rx(0, bad).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::FragOverlap), 1);
    // A fragment for nobody of ours.
    let stray =
        udp_frame(CLIENT_MAC, GW_OUT, (CLIENT, 1), ([198, 18, 0, 77], 80), &payload(3000, 0), false, 1);
    assert!(lab.rx(0, fragment(&stray, 1500)[0].clone()).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::Fragment), 1);
}
