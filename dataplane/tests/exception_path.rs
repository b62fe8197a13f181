//! The exception path (issue 15): what a port with a kernel interface hands
//! to the kernel, untouched, and what it keeps. The lab's inside port (1,
//! 198.18.1.1) has a kernel interface; the outside port (0) has none unless
//! a test says so. Frames are built with etherparse.

mod common;

use common::*;
use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};
use gw_core::counters::{Drop, Event};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec};

/// A lab whose ports `kernel` have a kernel interface, with the FULLNAT
/// services of [`Lab::with_services`] and its neighbours learnt.
fn lab(kernel: &[u16]) -> Lab {
    let mut lab =
        LabConfig { kernel: kernel.to_vec(), ..LabConfig::default() }.build().with_services(Scheduler::Rr);
    lab.learn_neighbours();
    lab
}

fn rs0() -> ([u8; 6], [u8; 4]) {
    (RS_MAC[0], RS[0])
}

/// An ICMP echo (request or reply) from `src` to `dst`.
fn echo(
    mac: [u8; 6],
    to: gw_core::wire::ethernet::MacAddr,
    src: [u8; 4],
    dst: [u8; 4],
    reply: bool,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(mac, to.0).ipv4(src, dst, 64);
    let b = if reply { b.icmpv4_echo_reply(7, 1) } else { b.icmpv4_echo_request(7, 1) };
    let mut out = vec![];
    b.write(&mut out, b"ping payload").unwrap();
    out
}

#[test]
fn tcp_and_udp_to_the_ports_own_address_with_no_service_go_to_the_kernel_untouched() {
    let mut lab = lab(&[1]);
    let (mac, rs) = rs0();
    // ssh from a real server to the gateway's inside address: SYN, then the
    // rest of the connection (not a plain SYN: still the kernel's).
    for frame in [
        tcp(mac, GW_IN, (rs, 40000), (GW_IN_ADDR, 22), true, false),
        tcp(mac, GW_IN, (rs, 40000), (GW_IN_ADDR, 22), false, true),
        udp(mac, GW_IN, (rs, 5000), (GW_IN_ADDR, 53)),
    ] {
        let out = lab.rx(1, frame.clone());
        assert!(out.is_empty(), "nothing answered by the dataplane: {out:?}");
        let (port, got) = lab.io.kernel.pop().expect("handed to the kernel");
        assert_eq!(port, 1);
        assert_eq!(got, frame, "untouched");
    }
    assert_eq!(lab.counters.event_count(Event::ToKernel), 3);
    assert_eq!(lab.counters.drop_count(Drop::NoService), 0, "not a drop any more");
    assert_eq!(lab.counters.event_count(Event::TcpRstSent), 0);
    assert_eq!(lab.counters.event_count(Event::IcmpPortUnreachSent), 0);
}

#[test]
fn without_a_kernel_interface_the_dataplane_answers_as_before() {
    let mut lab = lab(&[]);
    let (mac, rs) = rs0();
    let out = lab.rx(1, tcp(mac, GW_IN, (rs, 40000), (GW_IN_ADDR, 22), true, false));
    assert_eq!(out.len(), 1, "an ICMP port unreachable (no_service_reply = icmp)");
    assert!(lab.io.kernel.is_empty());
    assert_eq!(lab.counters.drop_count(Drop::NoService), 1);
    assert_eq!(lab.counters.event_count(Event::ToKernel), 0);
}

#[test]
fn a_vip_keeps_the_fail_fast_replies_and_another_ports_address_is_not_punted() {
    // Both ports have a kernel interface.
    let mut lab = lab(&[0, 1]);
    // A SYN to the VIP on a port with no service: port unreachable, as today.
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 22), true, false));
    assert_eq!(out.len(), 1);
    let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!("not ICMP") };
    assert!(matches!(icmp.icmp_type(), Icmpv4Type::DestinationUnreachable(_)));
    // The inside address reached through the outside port: not the
    // receiving port's own address, so the dataplane's answer.
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40001), (GW_IN_ADDR, 22), true, false));
    assert_eq!(out.len(), 1);
    assert!(lab.io.kernel.is_empty());
    assert_eq!(lab.counters.drop_count(Drop::NoService), 2);
    // The outside address through the outside port: the kernel's.
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40002), (GW_OUT_ADDR, 179), true, false));
    assert!(out.is_empty());
    assert_eq!(lab.io.kernel.len(), 1);
    assert_eq!(lab.io.kernel[0].0, 0);
}

#[test]
fn a_service_on_the_ports_own_address_stays_the_dataplanes() {
    let mut lab = lab(&[1]);
    let key = ServiceKey { proto: Protocol::Tcp, addr: GW_IN_ADDR.into(), port: 8080 };
    lab.ok(Request::AddService { spec: ServiceSpec::new(key, Scheduler::Rr) });
    let dest = DestSpec::new(RS[1].into(), 80, ForwardMode::Masq, 1);
    lab.ok(Request::AddDest { service: key, dest });
    let (mac, rs) = rs0();
    let out = lab.rx(1, tcp(mac, GW_IN, (rs, 40000), (GW_IN_ADDR, 8080), true, false));
    assert_eq!(out.len(), 1, "forwarded to the real server");
    let (_, _, _, dst, _) = inspect(&out[0].1);
    assert_eq!(dst, (RS[1], 80));
    // Another port on the same address: the kernel's.
    lab.rx(1, tcp(mac, GW_IN, (rs, 40001), (GW_IN_ADDR, 22), true, false));
    assert_eq!(lab.io.kernel.len(), 1);
}

#[test]
fn echo_requests_are_answered_here_and_other_icmp_goes_to_the_kernel() {
    let mut lab = lab(&[1]);
    let (mac, rs) = rs0();
    let out = lab.rx(1, echo(mac, GW_IN, rs, GW_IN_ADDR, false));
    assert_eq!(out.len(), 1, "the dataplane answers ping");
    assert_eq!(lab.counters.event_count(Event::IcmpEchoAnswered), 1);
    // The reply to the kernel's own ping.
    let reply = echo(mac, GW_IN, rs, GW_IN_ADDR, true);
    assert!(lab.rx(1, reply.clone()).is_empty());
    assert_eq!(lab.io.kernel, vec![(1, reply)]);
    // An error about a flow of the kernel's (no session): the kernel's too.
    let mut quoted = vec![];
    PacketBuilder::ipv4(GW_IN_ADDR, rs, 64).udp(33434, 9).write(&mut quoted, b"").unwrap();
    let mut err = vec![];
    PacketBuilder::ethernet2(mac, GW_IN.0)
        .ipv4(rs, GW_IN_ADDR, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port))
        .write(&mut err, &quoted)
        .unwrap();
    assert!(lab.rx(1, err.clone()).is_empty());
    assert_eq!(lab.io.kernel.last(), Some(&(1, err)));
    assert_eq!(lab.counters.event_count(Event::ToKernel), 2);
    assert_eq!(lab.counters.drop_count(Drop::IcmpUnknownFlow), 0);
}

#[test]
fn other_protocols_other_ethertypes_and_multicast_go_to_the_kernel() {
    let mut lab = lab(&[1]);
    let (mac, rs) = rs0();
    // OSPF-like (protocol 89) to the port's address.
    let mut ip = vec![];
    PacketBuilder::ethernet2(mac, GW_IN.0)
        .ipv4(rs, GW_IN_ADDR, 1)
        .write(&mut ip, 89.into(), b"hello")
        .unwrap();
    assert!(lab.rx(1, ip).is_empty());
    // IPv6 to our MAC.
    let mut v6 = vec![];
    PacketBuilder::ethernet2(mac, GW_IN.0)
        .ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
        .udp(546, 547)
        .write(&mut v6, b"x")
        .unwrap();
    assert!(lab.rx(1, v6).is_empty());
    // A multicast frame (VRRP's MAC group, 224.0.0.18).
    let mut mc = vec![];
    PacketBuilder::ethernet2(mac, [0x01, 0, 0x5e, 0, 0, 0x12])
        .ipv4(rs, [224, 0, 0, 18], 255)
        .write(&mut mc, 112.into(), b"vrrp")
        .unwrap();
    assert!(lab.rx(1, mc).is_empty());
    assert_eq!(lab.io.kernel.len(), 3);
    assert_eq!(lab.counters.event_count(Event::ToKernel), 3);
    // The same on the outside port, which has no kernel interface: dropped.
    let mut mc = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, [0x01, 0, 0x5e, 0, 0, 0x12])
        .ipv4(CLIENT, [224, 0, 0, 18], 255)
        .write(&mut mc, 112.into(), b"vrrp")
        .unwrap();
    assert!(lab.rx(0, mc).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::NotOurMac), 1);
    assert_eq!(lab.io.kernel.len(), 3);
}

#[test]
fn arp_replies_to_the_ports_address_are_learnt_and_given_to_the_kernel() {
    let mut lab = LabConfig { kernel: vec![1], ..LabConfig::default() }.build();
    // A reply to the kernel's request (the kernel ARPs through the port).
    let reply = arp_reply(RS_MAC[1], RS[1], GW_IN, GW_IN_ADDR);
    assert!(lab.rx(1, reply.clone()).is_empty());
    assert_eq!(lab.io.kernel, vec![(1, reply)]);
    // Requests for the port's address are answered here, not copied.
    let out = lab.rx(1, arp_request(RS_MAC[0], RS[0], GW_IN_ADDR));
    assert_eq!(out.len(), 1);
    assert_eq!(lab.io.kernel.len(), 1);
    // A gratuitous ARP refreshes the kernel's entry too.
    let garp = arp_request(RS_MAC[0], RS[0], RS[0]);
    assert!(lab.rx(1, garp.clone()).is_empty());
    assert_eq!(lab.io.kernel.last(), Some(&(1, garp)));
    assert_eq!(lab.counters.event_count(Event::ToKernel), 2);
}

#[test]
fn a_full_ring_is_a_counted_drop() {
    let mut lab = lab(&[1]);
    lab.io.kernel_full = true;
    let (mac, rs) = rs0();
    assert!(lab.rx(1, tcp(mac, GW_IN, (rs, 40000), (GW_IN_ADDR, 22), true, false)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::KernelFull), 1);
    assert_eq!(lab.counters.event_count(Event::ToKernel), 0);
}

#[test]
fn established_fullnat_traffic_does_not_touch_the_kernel() {
    let mut lab = lab(&[0, 1]);
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, VPORT), true, false));
    assert_eq!(out.len(), 1);
    let (_, _, lip, rs, _) = inspect(&out[0].1);
    let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs.0).unwrap()];
    let out = lab.rx(1, tcp(rs_mac, GW_IN, rs, lip, true, true));
    assert_eq!(out.len(), 1, "the SYN+ACK goes back to the client");
    for _ in 0..10 {
        assert_eq!(lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, VPORT), false, true)).len(), 1);
        assert_eq!(lab.rx(1, tcp(rs_mac, GW_IN, rs, lip, false, true)).len(), 1);
    }
    assert!(lab.io.kernel.is_empty());
    assert_eq!(lab.counters.event_count(Event::ToKernel), 0);
}

#[test]
fn fragments_to_the_ports_own_address_go_to_the_kernel_which_reassembles() {
    let (mac, rs) = rs0();
    // The first fragment of a UDP datagram (MF set) to the inside address.
    // 16 bytes of payload: a first fragment's length is a multiple of 8.
    let mut frag = vec![];
    PacketBuilder::ethernet2(mac, GW_IN.0)
        .ipv4(rs, GW_IN_ADDR, 64)
        .udp(5000, 53)
        .write(&mut frag, b"12345678")
        .unwrap();
    frag[20] |= 0x20;
    fix_checksums(&mut frag);
    let mut lab = lab(&[1]);
    assert!(lab.rx(1, frag.clone()).is_empty());
    assert_eq!(lab.io.kernel, vec![(1, frag.clone())], "untouched, not reassembled here");
    assert_eq!(lab.counters.event_count(Event::FragReceived), 0);
    // Without a kernel interface the dataplane keeps it for reassembly.
    let mut lab = lab_without_kernel();
    assert!(lab.rx(1, frag).is_empty());
    assert!(lab.io.kernel.is_empty());
    assert_eq!(lab.counters.event_count(Event::FragReceived), 1);
}

fn lab_without_kernel() -> Lab {
    lab(&[])
}

#[test]
fn a_datagram_reassembled_for_a_vip_on_the_ports_address_goes_to_the_kernel_when_no_service_has_it() {
    let mut lab = lab(&[1]);
    // The inside address is also a VIP (a TCP service on 8080): its
    // fragments are reassembled here.
    let key = ServiceKey { proto: Protocol::Tcp, addr: GW_IN_ADDR.into(), port: 8080 };
    lab.ok(Request::AddService { spec: ServiceSpec::new(key, Scheduler::Rr) });
    let (mac, rs) = rs0();
    let payload: Vec<u8> = (0..40u8).collect();
    let mut whole = vec![];
    PacketBuilder::ethernet2(mac, GW_IN.0)
        .ipv4(rs, GW_IN_ADDR, 64)
        .udp(5000, 53)
        .write(&mut whole, &payload)
        .unwrap();
    // Two fragments: 24 bytes (UDP header + 16), then the rest.
    let ip = &whole[14..];
    let (hdr, body) = (&ip[..20], &ip[20..]);
    let frag = |off: usize, data: &[u8], more: bool| {
        let mut f = whole[..14].to_vec();
        let mut h = hdr.to_vec();
        h[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
        let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&fo.to_be_bytes());
        f.extend_from_slice(&h);
        f.extend_from_slice(data);
        fix_checksums(&mut f);
        f
    };
    assert!(lab.rx(1, frag(0, &body[..24], true)).is_empty());
    assert!(lab.rx(1, frag(24, &body[24..], false)).is_empty());
    assert_eq!(lab.counters.event_count(Event::FragReassembled), 1);
    assert_eq!(lab.io.kernel.len(), 1, "the datagram fits the MTU: one frame");
    let p = SlicedPacket::from_ethernet(&lab.io.kernel[0].1).expect("parses");
    let Some(TransportSlice::Udp(u)) = &p.transport else { panic!("not UDP") };
    assert_eq!((u.source_port(), u.destination_port()), (5000, 53));
    assert_eq!(u.payload(), &payload[..]);
    assert_eq!(lab.counters.event_count(Event::ToKernel), 1);
}
