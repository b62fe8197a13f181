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

// IPv6 (RFC 8200 §4.5): the same table, the fragment header taken out and
// put back by the worker, never larger than the largest fragment received.

mod v6 {
    use super::{payload, Event};
    use crate::common::v6::*;
    use crate::common::*;
    use etherparse::{
        IcmpEchoHeader, Icmpv6Header, Icmpv6Type, IpNumber, Ipv6Header, NetSlice, PacketBuilder,
        SlicedPacket, UdpHeader,
    };
    use gw_core::counters::Drop;

    use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceSpec};
    use std::net::{Ipv4Addr, Ipv6Addr};

    type End = (Ipv6Addr, u16);

    fn udp6(mac: [u8; 6], s: End, d: End, data: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        PacketBuilder::ethernet2(mac, GW_OUT.0)
            .ipv6(s.0.octets(), d.0.octets(), 64)
            .udp(s.1, d.1)
            .write(&mut out, data)
            .unwrap();
        out
    }

    /// An IPv6 fragment header by RFC 8200 §4.5's layout: offset (13 bits,
    /// 8-byte units), 2 reserved bits, M. Written here, not with
    /// etherparse 0.16, whose `Ipv6FragmentHeader` puts M in bit 7 of the
    /// fourth byte and the offset's low bits under it (Linux and tshark
    /// read that as another offset).
    fn frag_header(next: IpNumber, offset: usize, more: bool, id: u32) -> [u8; 8] {
        let off_m = (offset as u16 & 0xfff8) | u16::from(more);
        let mut h = [next.0, 0, 0, 0, 0, 0, 0, 0];
        h[2..4].copy_from_slice(&off_m.to_be_bytes());
        h[4..].copy_from_slice(&id.to_be_bytes());
        h
    }

    /// `frame` (no extension headers) as IPv6 fragments of at most `mtu`
    /// bytes of IP with identification `id`, the fixed header written by
    /// etherparse, in order.
    fn fragment6(frame: &[u8], mtu: usize, id: u32) -> Vec<Vec<u8>> {
        let (h, rest) = Ipv6Header::from_slice(&frame[14..]).unwrap();
        let payload = &rest[..usize::from(h.payload_length)];
        let per = (mtu - 48) & !7;
        let mut out = vec![];
        for (k, chunk) in payload.chunks(per).enumerate() {
            let more = (k + 1) * per < payload.len();
            let mut ih = h.clone();
            ih.next_header = IpNumber::IPV6_FRAGMENTATION_HEADER;
            ih.payload_length = (8 + chunk.len()) as u16;
            let mut f = frame[..14].to_vec();
            ih.write(&mut f).unwrap();
            f.extend_from_slice(&frag_header(h.next_header, k * per, more, id));
            f.extend_from_slice(chunk);
            out.push(f);
        }
        out
    }

    /// What left `port`, put back together here (fixed headers read by
    /// etherparse, fragment headers by RFC 8200's layout): (IPv6 header of
    /// the first fragment, its upper-layer protocol, the whole payload).
    /// Every fragment is at most `size` bytes of IP, all but the last
    /// carry a multiple of 8 bytes, all one identification, no gap, no
    /// overlap.
    fn defrag6(sent: &[(u16, Vec<u8>)], port: u16, size: usize) -> (Ipv6Header, IpNumber, Vec<u8>) {
        assert!(!sent.is_empty(), "nothing sent");
        let mut parts = vec![];
        let mut first = None;
        for (p, f) in sent {
            assert_eq!(*p, port, "every fragment leaves the same port");
            assert!(f.len() - 14 <= size, "a fragment of {} bytes over {size}", f.len() - 14);
            let s = SlicedPacket::from_ethernet(f).unwrap();
            let Some(NetSlice::Ipv6(ip)) = &s.net else { panic!("not IPv6") };
            let h = ip.header().to_header();
            let body = &f[14 + 40..14 + 40 + usize::from(h.payload_length)];
            if h.next_header != IpNumber::IPV6_FRAGMENTATION_HEADER {
                assert_eq!(sent.len(), 1, "one frame when not fragmented");
                return (h.clone(), h.next_header, body.to_vec());
            }
            let off_m = u16::from_be_bytes([body[2], body[3]]);
            let id = u32::from_be_bytes(body[4..8].try_into().unwrap());
            let (off, more) = (usize::from(off_m & 0xfff8), off_m & 1 == 1);
            if off == 0 {
                first = Some(h.clone());
            }
            parts.push((off, more, id, IpNumber(body[0]), body[8..].to_vec()));
        }
        parts.sort_by_key(|p| p.0);
        let (mut whole, id, proto) = (vec![], parts[0].2, parts[0].3);
        for (i, (off, more, pid, next, data)) in parts.iter().enumerate() {
            assert_eq!((*off, *pid, *next), (whole.len(), id, proto), "contiguous, one datagram");
            assert_eq!(*more, i + 1 < parts.len(), "M on all but the last");
            assert!(!more || data.len() % 8 == 0);
            whole.extend_from_slice(data);
        }
        (first.expect("first fragment"), proto, whole)
    }

    /// `udp` carries `data` from `s` to `d`, checksum checked by etherparse.
    fn check_udp6(udp: &[u8], s: End, d: End, data: &[u8]) {
        let (u, rest) = UdpHeader::from_slice(udp).unwrap();
        assert_eq!((u.source_port, u.destination_port), (s.1, d.1));
        assert!(rest == data, "payload differs");
        assert_eq!(u.checksum, u.calc_checksum_ipv6_raw(s.0.octets(), d.0.octets(), rest).unwrap());
    }

    fn addrs(h: &Ipv6Header) -> (Ipv6Addr, Ipv6Addr) {
        (h.source.into(), h.destination.into())
    }

    /// Feeds `frags`; nothing may leave before the last; what left then.
    fn feed(lab: &mut Lab, frags: Vec<Vec<u8>>) -> Vec<(u16, Vec<u8>)> {
        super::feed(lab, 0, frags)
    }

    #[test]
    fn fullnat66_reassembles_in_and_out_of_order_both_ways_and_keeps_the_largest_fragment_size() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        for (i, (len, size)) in [(4_000, 1280), (60_000, 1500), (3_000, 1000)].into_iter().enumerate() {
            let data = payload(len, i as u8);
            let client = (CLIENT6, 5000 + i as u16);
            let mut frags = fragment6(&udp6(ROUTER_MAC, client, (VIP6, VPORT), &data), size, 100 + i as u32);
            if i % 2 == 1 {
                frags.reverse();
            }
            let out = feed(&mut lab, frags);
            let (h, proto, udp) = defrag6(&out, 0, size);
            assert_eq!(proto, IpNumber::UDP);
            assert_eq!(addrs(&h), (LIP6, RS6));
            assert!(out.iter().all(|(_, f)| f[0..6] == RS_MAC[0]));
            let lport = UdpHeader::from_slice(&udp).unwrap().0.source_port;
            check_udp6(&udp, (LIP6, lport), (RS6, 8080), &data);
            // The echo back, fragmented at 1500.
            let mut back = udp6(RS_MAC[0], (RS6, 8080), (LIP6, lport), &data);
            back[6..12].copy_from_slice(&RS_MAC[0]);
            let out = feed(&mut lab, fragment6(&back, 1500, 7 + i as u32));
            let (h, _, udp) = defrag6(&out, 0, 1500);
            assert_eq!(addrs(&h), (VIP6, CLIENT6));
            check_udp6(&udp, (VIP6, VPORT), client, &data);
        }
        assert_eq!(lab.counters.event_count(Event::FragReassembled), 6);
        assert_eq!(lab.counters.event_count(Event::FragDatagrams), 0);
        assert_eq!(lab.counters.event_count(Event::SessionsLive), 3);
    }

    #[test]
    fn nat66_dr6_and_tun6_forward_the_reassembled_datagram_as_fragments() {
        let data = payload(9_000, 3);
        let client = (CLIENT6, 7000);
        let req = udp6(ROUTER_MAC, client, (VIP6, VPORT), &data);
        for mode in [ForwardMode::Masq, ForwardMode::Route, ForwardMode::Tunnel] {
            let mut lab = lab6(mode, 1);
            let out = feed(&mut lab, fragment6(&req, 1400, 9));
            // TUN6 fragments the outer packet at the port's MTU (RFC 2473
            // §7), the others the datagram at the largest fragment's size.
            let size = if mode == ForwardMode::Tunnel { 1500 } else { 1400 };
            let (h, proto, body) = defrag6(&out, 0, size);
            match mode {
                ForwardMode::Tunnel => {
                    assert_eq!((addrs(&h), proto), ((GW_OUT_ADDR6, RS6), IpNumber::IPV6));
                    let (ih, udp) = Ipv6Header::from_slice(&body).unwrap();
                    assert_eq!((addrs(&ih), ih.next_header), ((CLIENT6, VIP6), IpNumber::UDP));
                    assert_eq!(usize::from(ih.payload_length), udp.len(), "the inner packet is whole");
                    check_udp6(udp, client, (VIP6, VPORT), &data);
                }
                ForwardMode::Masq => {
                    assert_eq!(addrs(&h), (CLIENT6, RS6));
                    check_udp6(&body, client, (RS6, 8080), &data);
                    // The real server's reply, fragmented, back to the client.
                    let back = udp6(RS_MAC[0], (RS6, 8080), client, &data);
                    let out = feed(&mut lab, fragment6(&back, 1500, 10));
                    let (h, _, udp) = defrag6(&out, 0, 1500);
                    assert_eq!(addrs(&h), (VIP6, CLIENT6));
                    check_udp6(&udp, (VIP6, VPORT), client, &data);
                }
                _ => {
                    assert_eq!(addrs(&h), (CLIENT6, VIP6), "DR: the client's packet");
                    check_udp6(&body, client, (VIP6, VPORT), &data);
                }
            }
            assert!(out.iter().all(|(_, f)| f[0..6] == RS_MAC[0]), "{mode:?}");
        }
    }

    /// NAT64: the reassembled IPv6 datagram is translated whole. (One
    /// that would exceed the IPv4 port's MTU is `drop_nat64_too_big`: the
    /// NAT64 path checks the MTU before the worker could fragment.)
    #[test]
    fn nat64_translates_the_reassembled_datagram() {
        let mut lab = LabConfig::default().build();
        assert_eq!(lab.rx(1, arp_request(RS_MAC[0], RS[0], GW_IN_ADDR)).len(), 1);
        lab.ok(Request::AddService { spec: ServiceSpec::new(key6(Protocol::Udp), Scheduler::Rr) });
        let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
        lab.ok(Request::AddDest { service: key6(Protocol::Udp), dest });
        lab.ok(Request::AddLaddr { service: key6(Protocol::Udp), addr: Ipv4Addr::from(LIP).into() });
        let data = payload(1_400, 8);
        let req = udp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), &data);
        let out = feed(&mut lab, fragment6(&req, 1280, 11));
        let (h, udp) = super::defrag(&out, 1, 1500);
        assert_eq!((h.source, h.destination), (LIP, RS[0]));
        let lport = UdpHeader::from_slice(&udp).unwrap().0.source_port;
        super::check_udp(&udp, (LIP, lport), (RS[0], 8080), &data);
        assert_eq!(lab.counters.event_count(Event::FragReassembled), 1);
        // A datagram over the IPv4 port's MTU goes as IPv4 fragments, DF
        // clear (RFC 7915 §5.1.1), not back as Packet Too Big.
        let data = payload(4_000, 9);
        let req = udp6(ROUTER_MAC, (CLIENT6, 40000), (VIP6, VPORT), &data);
        let out = feed(&mut lab, fragment6(&req, 1280, 12));
        assert!(out.len() >= 3, "IPv4 fragments: {}", out.len());
        let (h, udp) = super::defrag(&out, 1, 1500);
        assert!(!h.dont_fragment && h.more_fragments);
        super::check_udp(&udp, (LIP, lport), (RS[0], 8080), &data);
        assert_eq!(lab.counters.event_count(Event::Icmpv6TooBigSent), 0);
    }

    #[test]
    fn an_atomic_fragment_is_forwarded_at_once_without_its_fragment_header() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        let data = payload(100, 1);
        let frame = udp6(ROUTER_MAC, (CLIENT6, 9000), (VIP6, VPORT), &data);
        let atomic = fragment6(&frame, 1500, 5).remove(0);
        assert_eq!(atomic.len(), frame.len() + 8, "one fragment: offset 0, M clear");
        // A held fragment of the same identification is not touched.
        let big = fragment6(&udp6(ROUTER_MAC, (CLIENT6, 9001), (VIP6, VPORT), &payload(3000, 2)), 1280, 5);
        assert!(lab.rx(0, big[1].clone()).is_empty());
        let out = lab.rx(0, atomic);
        let (h, proto, udp) = defrag6(&out, 0, 1500);
        assert_eq!((addrs(&h), proto), ((LIP6, RS6), IpNumber::UDP));
        assert_eq!(h.next_header, IpNumber::UDP, "no fragment header left");
        let lport = UdpHeader::from_slice(&udp).unwrap().0.source_port;
        check_udp6(&udp, (LIP6, lport), (RS6, 8080), &data);
        assert_eq!(lab.counters.event_count(Event::FragDatagrams), 1, "the other datagram still waits");
        let mut rest = big;
        rest.remove(1);
        assert!(!feed(&mut lab, rest).is_empty(), "and completes");
    }

    #[test]
    fn an_overlap_drops_the_whole_datagram_and_a_duplicate_only_itself() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        let req = udp6(ROUTER_MAC, (CLIENT6, 1), (VIP6, VPORT), &payload(4000, 0));
        let frags = fragment6(&req, 1280, 77);
        assert!(lab.rx(0, frags[0].clone()).is_empty());
        assert!(lab.rx(0, frags[0].clone()).is_empty());
        assert_eq!(lab.counters.drop_count(Drop::FragDuplicate), 1);
        // The second fragment moved 8 bytes back overlaps the first.
        let mut bad = frags[1].clone();
        bad[14 + 40..14 + 48].copy_from_slice(&frag_header(IpNumber::UDP, 1232 - 8, true, 77));
        assert!(lab.rx(0, bad).is_empty());
        assert_eq!(lab.counters.drop_count(Drop::FragOverlap), 1);
        assert_eq!(lab.counters.event_count(Event::FragDatagrams), 0, "the datagram is gone");
        // What is left of it never completes.
        let out = feed(&mut lab, frags[1..].to_vec());
        assert!(out.is_empty());
    }

    #[test]
    fn a_first_fragment_without_the_whole_header_chain_drops_the_datagram() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        let mut syn = vec![];
        PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
            .ipv6(CLIENT6.octets(), VIP6.octets(), 64)
            .tcp(40000, VPORT, 1, 1000)
            .syn()
            .write(&mut syn, &payload(200, 0))
            .unwrap();
        // 8 bytes of the 20-byte TCP header in the first fragment.
        let frags = fragment6(&syn, 56, 3);
        assert_eq!(frags[0].len(), 14 + 40 + 8 + 8);
        assert!(lab.rx(0, frags[1].clone()).is_empty());
        assert!(lab.rx(0, frags[0].clone()).is_empty());
        assert_eq!(lab.counters.drop_count(Drop::FragHeaderChain), 1);
        assert_eq!(lab.counters.event_count(Event::FragDatagrams), 0, "dropped with its datagram");
        assert!(feed(&mut lab, frags[2..].to_vec()).is_empty());
    }

    #[test]
    fn without_its_first_fragment_a_datagram_times_out_after_60_s() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        let req = udp6(ROUTER_MAC, (CLIENT6, 1), (VIP6, VPORT), &payload(4000, 0));
        let frags = fragment6(&req, 1280, 12);
        assert!(feed(&mut lab, frags[1..].to_vec()).is_empty());
        assert_eq!(lab.counters.event_count(Event::FragDatagrams), 1);
        lab.now += 31_000;
        lab.worker.tick(lab.now, &mut lab.io);
        assert_eq!(lab.counters.event_count(Event::FragDatagrams), 1, "IPv4's 30 s are not IPv6's");
        lab.now += 30_000;
        lab.worker.tick(lab.now, &mut lab.io);
        assert_eq!(lab.counters.event_count(Event::FragDatagrams), 0);
        assert_eq!(lab.counters.drop_count(Drop::FragTimeout), 1);
    }

    #[test]
    fn a_flood_fills_the_table_evicts_the_oldest_and_real_datagrams_still_pass() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        let cap = lab.counters.event_count(Event::FragCapacity);
        let junk = udp6(ROUTER_MAC, (CLIENT6, 1), (VIP6, VPORT), &payload(3000, 0));
        for id in 0..500u32 {
            let last = fragment6(&junk, 1280, id.wrapping_mul(0x9e37_79b9)).pop().unwrap();
            assert!(lab.rx(0, last).is_empty(), "a lone last fragment waits");
            assert!(lab.counters.event_count(Event::FragDatagrams) <= cap);
            if id % 50 == 0 {
                let data = payload(4000, 1);
                let req = udp6(ROUTER_MAC, (CLIENT6, 999), (VIP6, VPORT), &data);
                let (_, _, udp) = defrag6(&feed(&mut lab, fragment6(&req, 1280, 1)), 0, 1280);
                assert_eq!(&udp[8..], &data[..]);
            }
        }
        assert!(lab.counters.drop_count(Drop::FragEvicted) >= 490);
        assert!(lab.counters.event_count(Event::FragPeak) <= cap);
    }

    /// An echo request of `data` from `src` to `dst` (identifier 0x1234,
    /// sequence `seq`), written by etherparse, from the router's MAC.
    fn echo6(src: Ipv6Addr, dst: Ipv6Addr, seq: u16, data: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
            .ipv6(src.octets(), dst.octets(), 64)
            .icmpv6_echo_request(0x1234, seq)
            .write(&mut out, data)
            .unwrap();
        out
    }

    /// `ping -6 -s 3000` to the gateway: the request's 1280-byte fragments
    /// are reassembled and answered (as IPv4's are), the reply in
    /// fragments: routed back at most the size of the largest fragment
    /// received, to an on-link source at the port's MTU with the request's
    /// identification. etherparse reads the reply and checks its checksum.
    #[test]
    fn a_fragmented_echo_request_to_the_gateway_is_answered_in_fragments() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        let data = payload(3000, 7);
        let cases = [(CLIENT6, GW_OUT_ADDR6, 1280), (ROUTER6, GW_OUT_ADDR6, 1500), (CLIENT6, VIP6, 1280)];
        for (seq, (src, dst, size)) in cases.into_iter().enumerate() {
            let id = 0x5000 + seq as u32;
            let out = feed(&mut lab, fragment6(&echo6(src, dst, seq as u16, &data), 1280, id));
            assert!(out.len() > 1, "the reply is fragmented");
            assert!(out.iter().all(|(_, f)| f[..6] == ROUTER_MAC), "to the router's MAC");
            if size == 1500 {
                assert!(out.iter().any(|(_, f)| f.len() - 14 > 1280), "the port's MTU, not the fragments'");
                // Answered in place: the request's identification (a routed
                // reply takes the worker's next one).
                assert!(out.iter().all(|(_, f)| f[14 + 44..14 + 48] == id.to_be_bytes()));
            }
            let (h, proto, icmp) = defrag6(&out, 0, size);
            assert_eq!((addrs(&h), proto), ((dst, src), IpNumber::IPV6_ICMP));
            let (reply, rest) = Icmpv6Header::from_slice(&icmp).unwrap();
            assert_eq!(
                reply.icmp_type,
                Icmpv6Type::EchoReply(IcmpEchoHeader { id: 0x1234, seq: seq as u16 })
            );
            assert!(rest == data, "the request's data");
            assert_eq!(reply.checksum, reply.icmp_type.calc_checksum(h.source, h.destination, rest).unwrap());
        }
        // 1,400 bytes came in two fragments; the 1,448-byte reply fits the
        // port: one whole packet, no atomic fragment (RFC 8021).
        let small = payload(1400, 8);
        let out = feed(&mut lab, fragment6(&echo6(ROUTER6, GW_OUT_ADDR6, 9, &small), 1280, 0x6000));
        let (h, proto, icmp) = defrag6(&out, 0, 1500);
        assert_eq!((addrs(&h), proto), ((GW_OUT_ADDR6, ROUTER6), IpNumber::IPV6_ICMP));
        assert_eq!((out.len(), h.next_header), (1, IpNumber::IPV6_ICMP), "no fragment header");
        let (reply, rest) = Icmpv6Header::from_slice(&icmp).unwrap();
        assert_eq!(reply.icmp_type, Icmpv6Type::EchoReply(IcmpEchoHeader { id: 0x1234, seq: 9 }));
        assert!(rest == small);
        assert_eq!(reply.checksum, reply.icmp_type.calc_checksum(h.source, h.destination, rest).unwrap());
        assert_eq!(lab.counters.event_count(Event::Icmpv6EchoAnswered), 4);
        assert_eq!(lab.counters.event_count(Event::FragReassembled), 4);
    }

    /// With a kernel interface on the port, fragments to the port's own
    /// address are the kernel's to reassemble and answer, as IPv4's.
    #[test]
    fn with_a_kernel_interface_fragments_to_the_port_go_to_the_kernel() {
        let mut lab = LabConfig { kernel: vec![0], ..LabConfig::default() }.build();
        let frags = fragment6(&echo6(ROUTER6, GW_OUT_ADDR6, 1, &payload(3000, 7)), 1280, 9);
        let n = frags.len();
        assert!(feed(&mut lab, frags).is_empty());
        assert_eq!(lab.io.kernel.len(), n, "every fragment to the kernel");
        assert_eq!(lab.counters.event_count(Event::FragReceived), 0);
    }

    #[test]
    fn a_fragment_to_an_address_of_no_service_is_not_handled() {
        let mut lab = lab6(ForwardMode::FullNat, 1);
        let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);
        let req = udp6(ROUTER_MAC, (CLIENT6, 1), (other, VPORT), &payload(3000, 0));
        assert!(lab.rx(0, fragment6(&req, 1280, 1).remove(0)).is_empty());
        assert_eq!(lab.counters.drop_count(Drop::Ipv6NotHandled), 1);
        assert_eq!(lab.counters.event_count(Event::FragReceived), 0);
    }

    #[test]
    fn a_reassembled_datagram_owned_by_another_worker_is_handed_on_as_fragments() {
        let mut lab = lab6(ForwardMode::FullNat, 2);
        let data = payload(5000, 4);
        let mut handed = 0;
        for port in 5000..5020u16 {
            let req = udp6(ROUTER_MAC, (CLIENT6, port), (VIP6, VPORT), &data);
            let out = feed(&mut lab, fragment6(&req, 1280, u32::from(port)));
            let to_other = std::mem::take(&mut lab.io.handed);
            if to_other.is_empty() {
                assert!(!out.is_empty(), "this worker owns the session: forwarded here");
                continue;
            }
            handed += 1;
            assert!(out.is_empty());
            assert!(to_other.iter().all(|(w, p, _)| (*w, *p) == (1, 0)));
            let sent: Vec<(u16, Vec<u8>)> = to_other.into_iter().map(|(_, p, f)| (p, f)).collect();
            let (h, _, udp) = defrag6(&sent, 0, 1280);
            assert_eq!(addrs(&h), (CLIENT6, VIP6), "handed on untranslated");
            check_udp6(&udp, (CLIENT6, port), (VIP6, VPORT), &data);
            // Same identification: the owner's fragments steer like these.
            let id = |f: &[u8]| u32::from_be_bytes(f[14 + 44..14 + 48].try_into().unwrap());
            assert!(sent.iter().all(|(_, f)| id(f) == u32::from(port)));
        }
        assert!(handed > 0 && handed < 20, "{handed} of 20 handed on");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any size, any fragment size, any order: the real server gets
        /// the datagram intact, in fragments no larger than the largest
        /// received; mutated fragments (any byte of the fixed or fragment
        /// header, or the length cut) never panic and leave a counted drop
        /// or a held fragment.
        #[test]
        fn any_ipv6_fragmentation_in_any_order_reaches_the_real_server_intact(
            len in 1usize..20_000,
            size in 1280usize..=1500,
            seed in proptest::prelude::any::<u64>(),
            flip in proptest::prelude::any::<(usize, u8)>(),
        ) {
            let mut lab = lab6(ForwardMode::FullNat, 1);
            let data = payload(len, seed as u8);
            let req = udp6(ROUTER_MAC, (CLIENT6, 5555), (VIP6, VPORT), &data);
            let mut frags = fragment6(&req, size, seed as u32);
            let mut x = seed | 1;
            for i in (1..frags.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                frags.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let n = frags.len();
            let mut out = vec![];
            for (i, f) in frags.into_iter().enumerate() {
                out = lab.rx(0, f);
                if i + 1 < n {
                    proptest::prop_assert!(out.is_empty());
                }
            }
            let largest = if n == 1 { 1500 } else { size };
            let (h, _, udp) = defrag6(&out, 0, largest);
            proptest::prop_assert_eq!(addrs(&h), (LIP6, RS6));
            let lport = UdpHeader::from_slice(&udp).unwrap().0.source_port;
            check_udp6(&udp, (LIP6, lport), (RS6, 8080), &data);
            // A mutated fragment of another datagram.
            let mut bad = fragment6(&req, size, !(seed as u32)).swap_remove(0);
            let at = 14 + flip.0 % (40 + 8);
            bad[at] ^= flip.1 | 1;
            let cut = 14 + (flip.0 >> 8) % (bad.len() - 14);
            bad.truncate(if flip.1 & 0x80 != 0 { cut } else { bad.len() });
            let _ = lab.rx(0, bad);
        }
    }
}
