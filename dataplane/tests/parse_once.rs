//! Parse once (issue 14): a frame the poll loop's classify step parsed
//! ([`gw_core::steer::classify`], then `Worker::handle_parsed`) meets the
//! same fate as through the full ladder (`Worker::handle`): the same frames
//! out, byte for byte, and the same counters, for good traffic and for
//! every kind of header fault the record must not hide. IPv6 frames
//! (issue 17: extension headers, fragments, truncated headers, ICMPv6)
//! get no record yet and must meet the full ladder's fate through the
//! parsed path too. Frames are built with `etherparse`.

mod common;

use common::v6::*;
use common::*;
use etherparse::PacketBuilder;
use gw_core::counters::Drop;
use gw_core::engine::L4Info;
use gw_core::steer::classify;
use gw_proto::{ForwardMode, Scheduler};
use std::net::Ipv6Addr;

/// Both labs, fed the same frames, one through each path.
fn labs() -> (Lab, Lab) {
    let lab = || {
        let mut l = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
        l.learn_neighbours();
        l
    };
    (lab(), lab())
}

fn full(lab: &mut Lab, port: u16, f: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
    lab.worker.handle(lab.now, port, f, &mut lab.io);
    std::mem::take(&mut lab.io.sent)
}

#[test]
fn a_parsed_frame_meets_the_same_fate_as_a_full_parse() {
    let (mut parsed, mut ladder) = labs();
    let syn = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false);
    let data = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40001), (VIP, 80));
    let mut bad_sum = data.clone();
    bad_sum[14 + 10] ^= 0x55;
    let mut zero_port = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40002), (VIP, 80));
    zero_port[14 + 20..14 + 22].copy_from_slice(&[0, 0]);
    let mut short_tcp = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40003), (VIP, 80), false, true);
    short_tcp[14 + 20 + 12] = 0xf0; // data offset 60 > the segment
    let mut frag = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40004), (VIP, 80));
    frag[14 + 6] = 0x20; // MF
    let other_mac = udp(CLIENT_MAC, GW_IN, (CLIENT, 40005), (VIP, 80));
    let bad_src = udp(CLIENT_MAC, GW_OUT, ([127, 0, 0, 1], 40006), (VIP, 80));
    let spoofed = udp(CLIENT_MAC, GW_OUT, (RS[0], 40007), (VIP, 80));
    let no_service = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40008), (VIP, 81));
    let frames = [
        (0, syn.clone()),
        (0, data.clone()),
        (0, data.clone()),
        (0, bad_sum),
        (0, zero_port),
        (0, short_tcp),
        (0, frag),
        (0, other_mac),
        (0, bad_src),
        (0, spoofed),
        (0, no_service),
        (0, syn[..40].to_vec()),
        (0, syn),
    ];
    for (i, (port, f)) in frames.into_iter().enumerate() {
        let record = classify(parsed.worker.engine.snapshot(), 1, 0, &f).l4;
        // The record is the engine's own check: present only for a frame
        // that passes every stateless check.
        assert_eq!(record, L4Info::check(&f), "frame {i}");
        let a = parsed.rx(port, f.clone());
        let b = full(&mut ladder, port, f);
        assert_eq!(a, b, "frame {i}: the same frames out");
        assert_eq!(parsed.counters.snapshot(), ladder.counters.snapshot(), "frame {i}: the same counters");
    }
    // The faults were counted as the ladder counts them, not hidden.
    for why in
        [Drop::Ipv4BadChecksum, Drop::L4Malformed, Drop::NotOurMac, Drop::BadSourceAddr, Drop::ReversePath]
    {
        assert!(parsed.counters.drop_count(why) > 0, "{why:?}");
    }
}

/// `frame` (Ethernet + IPv6 without extension headers) with the 8-byte
/// extension header `ext` (its next header byte set here) inserted after
/// the fixed header, whose next header becomes `kind`.
fn with_ext(frame: &[u8], kind: u8, mut ext: [u8; 8]) -> Vec<u8> {
    let (hdr, rest) = frame.split_at(14 + 40);
    let mut f = hdr.to_vec();
    ext[0] = f[14 + 6];
    f[14 + 6] = kind;
    let len = u16::from_be_bytes([f[14 + 4], f[14 + 5]]) + 8;
    f[14 + 4..14 + 6].copy_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&ext);
    f.extend_from_slice(rest);
    f
}

/// A TCP segment `s -> d` to port 0 (SYN, or ACK with data).
fn tcp6(s: (Ipv6Addr, u16), d: (Ipv6Addr, u16), syn: bool) -> Vec<u8> {
    let mut out = vec![];
    let b = PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0).ipv6(s.0.octets(), d.0.octets(), 64);
    if syn {
        b.tcp(s.1, d.1, 1000, 64000).syn().write(&mut out, &[]).unwrap();
    } else {
        b.tcp(s.1, d.1, 1001, 64000).ack(1).write(&mut out, b"data").unwrap();
    }
    out
}

#[test]
fn ipv6_frames_through_the_parsed_path_meet_the_same_fate_as_a_full_parse() {
    let (mut parsed, mut ladder) = (lab6(ForwardMode::FullNat, 1), lab6(ForwardMode::FullNat, 1));
    let c = |port| (CLIENT6, port);
    let syn = tcp6(c(40000), (VIP6, 80), true);
    let data = udp6(CLIENT_MAC, c(40001), (VIP6, 80));
    let hop_by_hop = with_ext(&udp6(CLIENT_MAC, c(40002), (VIP6, 80)), 0, [0, 0, 1, 4, 0, 0, 0, 0]);
    let dst_opts = with_ext(&tcp6(c(40003), (VIP6, 80), true), 60, [0, 0, 1, 4, 0, 0, 0, 0]);
    // A first fragment (M set) and an atomic one (offset 0, M clear).
    let first_frag = with_ext(&udp6(CLIENT_MAC, c(40004), (VIP6, 80)), 44, [0, 0, 0, 1, 0, 0, 0, 7]);
    let atomic = with_ext(&udp6(CLIENT_MAC, c(40005), (VIP6, 80)), 44, [0, 0, 0, 0, 0, 0, 0, 8]);
    let mut bad_ext = hop_by_hop.clone();
    bad_ext[14 + 40 + 1] = 200; // the header's length runs past the packet
    let mut long_payload = data.clone();
    long_payload[14 + 4..14 + 6].copy_from_slice(&2000u16.to_be_bytes());
    let mut short_udp = udp6(CLIENT_MAC, c(40006), (VIP6, 80));
    short_udp[14 + 4..14 + 6].copy_from_slice(&6u16.to_be_bytes()); // 6 bytes of UDP
    let mut short_tcp = tcp6(c(40007), (VIP6, 80), false);
    short_tcp[14 + 40 + 12] = 0xf0; // data offset 60 > the segment
    let mut multicast_src = udp6(CLIENT_MAC, c(40008), (VIP6, 80));
    multicast_src[14 + 8] = 0xff;
    let mut bad_version = data.clone();
    bad_version[14] = 0x40;
    let mut hop_1 = udp6(CLIENT_MAC, c(40009), (VIP6, 80));
    hop_1[14 + 7] = 1;
    let other_mac = {
        let mut f = udp6(CLIENT_MAC, c(40010), (VIP6, 80));
        f[..6].copy_from_slice(&GW_IN.0);
        f
    };
    let no_service = udp6(CLIENT_MAC, c(40011), (VIP6, 81));
    let not_ours = udp6(CLIENT_MAC, c(40012), (Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1), 80));
    let to_laddr = udp6(CLIENT_MAC, (RS6, 8080), (LIP6, 1234));
    let mut echo = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv6(CLIENT6.octets(), VIP6.octets(), 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut echo, b"ping")
        .unwrap();
    // Packet Too Big from a router about the gateway's reply to the client.
    let mut quoted = vec![];
    PacketBuilder::ipv6(VIP6.octets(), CLIENT6.octets(), 63)
        .udp(80, 40001)
        .write(&mut quoted, &[1; 100])
        .unwrap();
    let mut too_big = vec![];
    PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
        .ipv6(ROUTER6.octets(), VIP6.octets(), 64)
        .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut too_big, &quoted)
        .unwrap();
    let frames = [
        syn.clone(),
        data.clone(),
        data.clone(),
        hop_by_hop,
        dst_opts,
        first_frag,
        atomic,
        bad_ext,
        long_payload,
        short_udp,
        short_tcp,
        multicast_src,
        bad_version,
        hop_1,
        other_mac,
        no_service,
        not_ours,
        to_laddr,
        echo,
        too_big,
        syn[..14 + 30].to_vec(),
        data[..14 + 40 + 4].to_vec(),
        syn,
    ];
    for (i, f) in frames.into_iter().enumerate() {
        // No IPv6 record yet (IPv6 parse-once is not built): the parsed
        // path must hand every IPv6 frame to the full ladder.
        let record = classify(parsed.worker.engine.snapshot(), 1, 0, &f).l4;
        assert_eq!(record, None, "frame {i}");
        let a = parsed.rx(0, f.clone());
        let b = full(&mut ladder, 0, f);
        assert_eq!(a, b, "frame {i}: the same frames out");
        assert_eq!(parsed.counters.snapshot(), ladder.counters.snapshot(), "frame {i}: the same counters");
        // The good ones (SYN, data, through extension headers, echo) leave.
        if [0, 1, 2, 3, 4, 18].contains(&i) {
            assert_eq!(a.len(), 1, "frame {i} is forwarded or answered");
        }
    }
    for why in [Drop::Ipv6Malformed, Drop::BadSourceAddr, Drop::NotOurMac, Drop::NoService] {
        assert!(parsed.counters.drop_count(why) > 0, "{why:?}");
    }
}
