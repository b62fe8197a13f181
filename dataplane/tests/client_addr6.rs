//! The IPv6 client's address toward a FULLNAT66 or NAT64 real server
//! (`--toa`, `--proxy-protocol v1|v2`, issue 17) end to end through
//! `Worker<Vec<u8>>`: frames built with `etherparse`, what leaves read back
//! with it (TCP/UDP checksums recomputed there; IPv4 frames through
//! [`check_sent`]), the expected PROXY lines and v2 bytes written out here
//! by hand from haproxy's `proxy-protocol.txt`, TOA bytes from DPVS's
//! `tcpopt_ip6_addr` (kind 254, length 20, port, address).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::v6::*;
use common::*;
use etherparse::{
    Ipv6Header, NetSlice, PacketBuilder, SlicedPacket, TcpOptionElement, TcpOptionElement::*, TransportSlice,
};
use gw_core::counters::{Drop, Event};
use gw_proto::{ClientAddr, DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceSpec};

const CPORT: u16 = 40000;
const ISN: u32 = 1000;
const SISN: u32 = 70_000;

/// Where the real server is: FULLNAT66 (an IPv6 server on port 0, an
/// IPv6 local address) or NAT64 (an IPv4 server on port 1, an IPv4 local
/// address).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Fnat66,
    Nat64,
}

impl Kind {
    fn rs(self) -> IpAddr {
        match self {
            Kind::Fnat66 => RS6.into(),
            Kind::Nat64 => Ipv4Addr::from(RS[0]).into(),
        }
    }
    fn lip(self) -> IpAddr {
        match self {
            Kind::Fnat66 => LIP6.into(),
            Kind::Nat64 => Ipv4Addr::from(LIP).into(),
        }
    }
    /// The port the real server is on.
    fn rs_port(self) -> u16 {
        match self {
            Kind::Fnat66 => 0,
            Kind::Nat64 => 1,
        }
    }
}

/// A lab with one IPv6 service of `proto` on [VIP6]:80 handing the client
/// address as `ca` to one real server of `kind` (port 8080); the router
/// and the real server known as neighbours.
fn lab(kind: Kind, proto: Protocol, ca: ClientAddr) -> Lab {
    let mut lab = LabConfig::default().build();
    let mut spec = ServiceSpec::new(key6(proto), Scheduler::Rr);
    spec.client_addr = ca;
    lab.ok(Request::AddService { spec });
    let dest = DestSpec::new(kind.rs(), 8080, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: key6(proto), dest });
    lab.ok(Request::AddLaddr { service: key6(proto), addr: kind.lip() });
    assert_eq!(lab.rx(0, ns(ROUTER_MAC, ROUTER6)).len(), 1, "the router's solicitation is answered");
    match kind {
        Kind::Fnat66 => assert_eq!(lab.rx(0, ns(RS_MAC[0], RS6)).len(), 1),
        Kind::Nat64 => assert_eq!(lab.rx(1, arp_request(RS_MAC[0], RS[0], GW_IN_ADDR)).len(), 1),
    }
    lab
}

/// A TCP segment from the client (beyond the router) to the VIP.
fn client(s: Seg<'_>) -> Vec<u8> {
    segment6(ROUTER_MAC, GW_OUT.0, (CLIENT6.octets(), CPORT), (VIP6.octets(), VPORT), s)
}

/// A TCP segment from the real server to the local address, and the port
/// it arrives on.
fn server(kind: Kind, lport: u16, s: Seg<'_>) -> (u16, Vec<u8>) {
    match kind {
        Kind::Nat64 => (1, segment(RS_MAC[0], GW_IN.0, (RS[0], 8080), (LIP, lport), s)),
        Kind::Fnat66 => (0, segment6(RS_MAC[0], GW_OUT.0, (RS6.octets(), 8080), (LIP6.octets(), lport), s)),
    }
}

/// The one TCP frame sent, read back with etherparse (IPv4: checked by
/// [`check_sent`]; IPv6: its TCP checksum recomputed).
#[derive(Debug)]
struct G {
    port: u16,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    seq: u32,
    ack: u32,
    /// The options etherparse knows (it stops at TOA's kind 254).
    opts: Vec<TcpOptionElement>,
    raw_opts: Vec<u8>,
    payload: Vec<u8>,
}

fn one(out: Vec<(u16, Vec<u8>)>) -> G {
    assert_eq!(out.len(), 1, "one frame sent");
    let (port, f) = &out[0];
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
    let (s, d) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            check_sent(*port, f, true);
            (IpAddr::from(ip.header().source_addr()), IpAddr::from(ip.header().destination_addr()))
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h: Ipv6Header = ip.header().to_header();
            let sum = t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap();
            assert_eq!(t.checksum(), sum, "TCP checksum over IPv6");
            assert_eq!(usize::from(h.payload_length), f.len() - 14 - 40, "IPv6 payload length");
            (IpAddr::from(h.source), IpAddr::from(h.destination))
        }
        _ => panic!("not IP"),
    };
    G {
        port: *port,
        src: (s, t.source_port()),
        dst: (d, t.destination_port()),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        opts: t.options_iterator().filter_map(Result::ok).collect(),
        raw_opts: t.options().to_vec(),
        payload: t.payload().to_vec(),
    }
}

const SYN_OPTS: [TcpOptionElement; 5] =
    [MaximumSegmentSize(1440), SelectiveAcknowledgementPermitted, Timestamp(1, 0), Noop, WindowScale(7)];

/// The IPv6 TOA as DPVS writes it: 254, 20, port, the client's address.
fn toa6_bytes() -> Vec<u8> {
    let mut t = vec![254, 20];
    t.extend_from_slice(&CPORT.to_be_bytes());
    t.extend_from_slice(&CLIENT6.octets());
    t
}

fn toa_connection(kind: Kind) {
    let mut lab = lab(kind, Protocol::Tcp, ClientAddr::Toa);
    let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() })));
    assert_eq!((g.port, g.src.0, g.dst), (kind.rs_port(), kind.lip(), (kind.rs(), 8080)));
    assert_eq!(g.raw_opts[..20], toa6_bytes()[..], "the IPv6 TOA first in the option space");
    let rest: Vec<_> =
        etherparse::TcpOptionsIterator::from_slice(&g.raw_opts[20..]).map(|o| o.unwrap()).collect();
    assert_eq!(mss(&rest), Some(1420), "MSS lowered by the option's 20 bytes");
    assert_eq!(rest[1..SYN_OPTS.len()], SYN_OPTS[1..]);
    let lport = g.src.1;
    let (port, sa) = server(kind, lport, Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() });
    let g = one(lab.rx(port, sa));
    assert_eq!((g.dst, g.ack), ((IpAddr::from(CLIENT6), CPORT), ISN + 1), "replies untouched");
    let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() })));
    assert_eq!(g.raw_opts, toa6_bytes(), "the handshake's ACK carries it");
    assert_eq!((g.seq, g.ack), (ISN + 1, SISN + 1));
    assert!(g.payload.is_empty());
    let data = client(Seg { seq: ISN + 1, ack: Some(SISN + 1), data: b"GET /", ..Seg::default() });
    let g = one(lab.rx(0, data));
    assert!(g.raw_opts.is_empty(), "later segments go without");
    assert_eq!(g.payload, b"GET /");
    assert_eq!(lab.counters.event_count(Event::ToaAdded), 2);
    assert_eq!(lab.counters.event_count(Event::ToaNoRoom), 0);
}

#[test]
fn fullnat66_toa_carries_the_ipv6_client() {
    toa_connection(Kind::Fnat66);
}

#[test]
fn nat64_toa_carries_the_ipv6_client_to_the_ipv4_server() {
    toa_connection(Kind::Nat64);
}

#[test]
fn ipv6_toa_without_room_leaves_the_options_alone_and_is_counted() {
    for kind in [Kind::Fnat66, Kind::Nat64] {
        let mut lab = lab(kind, Protocol::Tcp, ClientAddr::Toa);
        // 24 bytes of options: 20 more would pass 40.
        let opts = [
            MaximumSegmentSize(1400),
            SelectiveAcknowledgementPermitted,
            Timestamp(5, 0),
            Noop,
            WindowScale(9),
        ];
        let mut pad = opts.to_vec();
        pad.extend([Noop, Noop, Noop, Noop]);
        let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &pad, ..Seg::default() })));
        assert_eq!(g.raw_opts.len(), 24);
        assert!(!g.raw_opts.windows(2).any(|w| w == [254, 20]));
        assert_eq!(mss(&g.opts), Some(1380), "the MSS is still lowered");
        assert_eq!(lab.counters.event_count(Event::ToaNoRoom), 1, "{kind:?}");
        assert_eq!(lab.counters.event_count(Event::ToaAdded), 0);
    }
}

/// haproxy's v1 line for TCP over IPv6 (proxy-protocol.txt §2.1).
fn v1_header() -> Vec<u8> {
    b"PROXY TCP6 2001:db8:77::9 2001:db8::50 40000 80\r\n".to_vec()
}

/// haproxy's v2 header, AF_INET6 STREAM (0x21), 36 address bytes
/// (proxy-protocol.txt §2.2).
fn v2_header(dgram: bool) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, if dgram { 0x22 } else { 0x21 }, 0, 36]);
    h.extend_from_slice(&CLIENT6.octets());
    h.extend_from_slice(&VIP6.octets());
    h.extend_from_slice(&CPORT.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h
}

/// The whole life of a PROXY connection from an IPv6 client: the header
/// with the handshake ACK, again in front of a retransmitted first
/// segment, later sequence numbers shifted, acknowledgements and SACK
/// edges shifted back (in the server's own family for NAT64: the shift is
/// made before translation).
fn proxy_connection(kind: Kind, ca: ClientAddr, hdr: &[u8]) {
    let mut lab = lab(kind, Protocol::Tcp, ca);
    let n = hdr.len() as u32;
    let c6 = (IpAddr::from(CLIENT6), CPORT);
    let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() })));
    assert_eq!(mss(&g.opts), Some(1440 - n as u16), "MSS leaves room for the header");
    assert_eq!((g.src.0, g.dst, g.seq), (kind.lip(), (kind.rs(), 8080), ISN));
    let lport = g.src.1;
    let sa = server(kind, lport, Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() });
    let g = one(lab.rx(sa.0, sa.1));
    assert_eq!((g.dst, g.ack), (c6, ISN + 1));
    // Handshake ACK: the header goes with it (a server may speak first).
    let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() })));
    assert_eq!((g.seq, g.ack), (ISN + 1, SISN + 1));
    assert_eq!(g.payload, hdr);
    // The server's banner; its ACK of the header maps to ISN+1.
    let banner = Seg { seq: SISN + 1, ack: Some(ISN + 1 + n), data: b"220 hi\r\n", ..Seg::default() };
    let (p, f) = server(kind, lport, banner);
    let g = one(lab.rx(p, f));
    assert_eq!((g.dst, g.seq, g.ack), (c6, SISN + 1, ISN + 1));
    // First data at ISN+1: the header again, the same bytes.
    let d1 = Seg { seq: ISN + 1, ack: Some(SISN + 9), data: b"hello", ..Seg::default() };
    for _ in 0..2 {
        let g = one(lab.rx(0, client(d1)));
        assert_eq!(g.seq, ISN + 1);
        assert_eq!(g.payload, [hdr, b"hello"].concat());
    }
    // Later data moves by the header's length.
    let d2 = Seg { seq: ISN + 6, ack: Some(SISN + 9), data: b"world", ..Seg::default() };
    let g = one(lab.rx(0, client(d2)));
    assert_eq!((g.seq, g.payload.as_slice()), (ISN + 6 + n, &b"world"[..]));
    // A server ACK with a SACK block, both shifted back; one inside the
    // header maps to ISN+1.
    let sack = [Noop, Noop, SelectiveAcknowledgement((ISN + 6 + n, ISN + 11 + n), [None, None, None])];
    let (p, f) =
        server(kind, lport, Seg { seq: SISN + 9, ack: Some(ISN + 1 + n), opts: &sack, ..Seg::default() });
    let g = one(lab.rx(p, f));
    assert_eq!(g.ack, ISN + 1);
    assert!(g.opts.contains(&SelectiveAcknowledgement((ISN + 6, ISN + 11), [None, None, None])));
    let (p, f) = server(kind, lport, Seg { seq: SISN + 9, ack: Some(ISN + 3), ..Seg::default() });
    assert_eq!(one(lab.rx(p, f)).ack, ISN + 1);
    let (p, f) = server(kind, lport, Seg { seq: SISN + 9, ack: Some(ISN + 11 + n), ..Seg::default() });
    assert_eq!(one(lab.rx(p, f)).ack, ISN + 11);
    // The client's FIN moves too.
    let fin = Seg { seq: ISN + 11, ack: Some(SISN + 9), fin: true, ..Seg::default() };
    assert_eq!(one(lab.rx(0, client(fin))).seq, ISN + 11 + n);
    assert_eq!(lab.counters.event_count(Event::ProxyHeadersSent), 3);
    assert_eq!(lab.counters.drop_count(Drop::ProxyHeaderNoRoom), 0);
    assert_eq!(lab.counters.drop_count(Drop::Ipv6NotHandled), 0);
}

#[test]
fn fullnat66_proxy_protocol_v1() {
    proxy_connection(Kind::Fnat66, ClientAddr::ProxyV1, &v1_header());
}

#[test]
fn fullnat66_proxy_protocol_v2() {
    assert_eq!(v2_header(false).len(), 52);
    proxy_connection(Kind::Fnat66, ClientAddr::ProxyV2, &v2_header(false));
}

#[test]
fn nat64_proxy_protocol_v1_names_the_ipv6_client_and_vip() {
    proxy_connection(Kind::Nat64, ClientAddr::ProxyV1, &v1_header());
}

#[test]
fn nat64_proxy_protocol_v2_names_the_ipv6_client_and_vip() {
    proxy_connection(Kind::Nat64, ClientAddr::ProxyV2, &v2_header(false));
}

/// A first segment that fits the path alone but not with the header is
/// dropped and counted (the client's MSS was lowered, so only a client
/// that ignores it sends one).
#[test]
fn a_first_segment_too_big_for_the_header_is_dropped_and_counted() {
    for kind in [Kind::Fnat66, Kind::Nat64] {
        let mut lab = lab(kind, Protocol::Tcp, ClientAddr::ProxyV2);
        let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, ..Seg::default() })));
        let sa = server(kind, g.src.1, Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() });
        one(lab.rx(sa.0, sa.1));
        // 1440 bytes of data: a full 1500-byte IPv6 packet (1480 as IPv4).
        let data = vec![b'x'; 1440];
        let big = Seg { seq: ISN + 1, ack: Some(SISN + 1), data: &data, ..Seg::default() };
        assert!(lab.rx(0, client(big)).is_empty(), "{kind:?}");
        assert_eq!(lab.counters.drop_count(Drop::ProxyHeaderNoRoom), 1);
    }
}

/// UOA for IPv6 clients: a UDP service with `--proxy-protocol v2` puts
/// the v2 header (AF_INET6, DGRAM: 0x21 0x22, 36 address bytes) before
/// the payload of a session's first datagram only, FULLNAT66 and NAT64.
#[test]
fn udp_proxy_v2_header_on_the_first_ipv6_datagram_only() {
    for kind in [Kind::Fnat66, Kind::Nat64] {
        let mut lab = lab(kind, Protocol::Udp, ClientAddr::ProxyV2);
        let dgram = |data: &[u8]| {
            let mut out = vec![];
            PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
                .ipv6(CLIENT6.octets(), VIP6.octets(), 64)
                .udp(CPORT, VPORT)
                .write(&mut out, data)
                .unwrap();
            out
        };
        let read = |out: Vec<(u16, Vec<u8>)>| {
            assert_eq!(out.len(), 1);
            let (port, f) = &out[0];
            let p = SlicedPacket::from_ethernet(f).unwrap();
            let Some(TransportSlice::Udp(u)) = &p.transport else { panic!("not UDP") };
            match &p.net {
                Some(NetSlice::Ipv4(_)) => check_sent(*port, f, true),
                Some(NetSlice::Ipv6(ip)) => {
                    let h: Ipv6Header = ip.header().to_header();
                    assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap());
                    assert_eq!(usize::from(h.payload_length), f.len() - 14 - 40);
                }
                _ => panic!("not IP"),
            }
            assert_eq!(usize::from(u.length()), 8 + u.payload().len());
            (u.source_port(), u.payload().to_vec())
        };
        let (_, first) = read(lab.rx(0, dgram(b"query")));
        assert_eq!(first, [&v2_header(true)[..], b"query"].concat(), "{kind:?}");
        let (_, second) = read(lab.rx(0, dgram(b"again")));
        assert_eq!(second, b"again", "the header on the first datagram only");
        assert_eq!(lab.counters.event_count(Event::ProxyHeadersSent), 1);
    }
}

/// IPv4 clients keep their own forms: a FULLNAT service's PROXY v1 line
/// is still TCP4 when an IPv6 service with PROXY runs beside it.
#[test]
fn ipv4_and_ipv6_services_side_by_side_each_get_their_family() {
    let mut lab = lab(Kind::Fnat66, Protocol::Tcp, ClientAddr::ProxyV1);
    let mut spec = ServiceSpec::new(key(Protocol::Tcp), Scheduler::Rr);
    spec.client_addr = ClientAddr::ProxyV1;
    lab.ok(Request::AddService { spec });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest });
    lab.ok(Request::AddLaddr { service: key(Protocol::Tcp), addr: Ipv4Addr::from(LIP).into() });
    lab.learn_neighbours();
    let c4 = |s: Seg<'_>| segment(CLIENT_MAC, GW_OUT.0, (CLIENT, CPORT), (VIP, 80), s);
    let g4 = one(lab.rx(0, c4(Seg { seq: ISN, syn: true, ..Seg::default() })));
    let g6 = one(lab.rx(0, client(Seg { seq: ISN, syn: true, ..Seg::default() })));
    let sa = segment(
        RS_MAC[0],
        GW_IN.0,
        (RS[0], 8080),
        (LIP, g4.src.1),
        Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() },
    );
    one(lab.rx(1, sa));
    let sa6 =
        server(Kind::Fnat66, g6.src.1, Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() });
    one(lab.rx(sa6.0, sa6.1));
    let g = one(lab.rx(0, c4(Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() })));
    assert_eq!(g.payload, b"PROXY TCP4 198.18.0.2 198.18.0.100 40000 80\r\n");
    let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() })));
    assert_eq!(g.payload, v1_header());
}

/// A Packet Too Big (FULLNAT66) or "fragmentation needed" (NAT64) from
/// the real server's side about a client segment that the PROXY header
/// shifted reaches the client quoting the sequence number it sent (its
/// TCP takes an error only for a number in its send window), with a
/// checksum etherparse verifies.
#[test]
fn an_error_about_a_shifted_segment_quotes_the_clients_own_sequence_number() {
    use etherparse::icmpv4::DestUnreachableHeader;
    use etherparse::{Icmpv4Type, Icmpv6Type, Ipv6HeaderSlice};
    for kind in [Kind::Fnat66, Kind::Nat64] {
        let hdr = v2_header(false);
        let n = hdr.len() as u32;
        let mut lab = lab(kind, Protocol::Tcp, ClientAddr::ProxyV2);
        let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, ..Seg::default() })));
        let lport = g.src.1;
        let sa = server(kind, lport, Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() });
        one(lab.rx(sa.0, sa.1));
        one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() })));
        let d2 = Seg { seq: ISN + 1, ack: Some(SISN + 1), data: b"shifted", ..Seg::default() };
        assert_eq!(lab.rx(0, client(d2)).len(), 1);
        let d2 = Seg { seq: ISN + 8, ack: Some(SISN + 1), data: b"later", ..Seg::default() };
        let out = lab.rx(0, client(d2));
        assert_eq!(one(out.clone()).seq, ISN + 8 + n);
        let sent = &out[0].1[14..];
        // The error, from the real server's side to the local address.
        let mut err = vec![];
        match kind {
            Kind::Fnat66 => PacketBuilder::ethernet2(RS_MAC[0], GW_OUT.0)
                .ipv6(RS6.octets(), LIP6.octets(), 64)
                .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1400 })
                .write(&mut err, sent)
                .unwrap(),
            Kind::Nat64 => {
                let unreach = DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 };
                PacketBuilder::ethernet2(RS_MAC[0], GW_IN.0)
                    .ipv4(RS[0], LIP, 64)
                    .icmpv4(Icmpv4Type::DestinationUnreachable(unreach))
                    .write(&mut err, &sent[..28])
                    .unwrap()
            }
        }
        let out = lab.rx(kind.rs_port(), err);
        assert_eq!(out.len(), 1, "{kind:?}: the error reaches the client");
        let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6") };
        let h = ip.header();
        assert_eq!(h.destination_addr(), CLIENT6);
        let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else { panic!("not ICMPv6") };
        assert!(icmp.is_checksum_valid(h.source(), h.destination()), "{kind:?}: ICMPv6 checksum");
        assert!(matches!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { .. }), "{:?}", icmp.icmp_type());
        let q = Ipv6HeaderSlice::from_slice(icmp.payload()).unwrap();
        assert_eq!((q.source_addr(), q.destination_addr()), (CLIENT6, VIP6));
        // The quote may hold only 8 bytes of TCP (NAT64 quoted 28 of IPv4).
        let qt = &icmp.payload()[40..];
        assert_eq!(qt[..4], [CPORT.to_be_bytes(), VPORT.to_be_bytes()].concat());
        let seq = u32::from_be_bytes([qt[4], qt[5], qt[6], qt[7]]);
        assert_eq!(seq, ISN + 8, "{kind:?}: the client's own sequence number");
    }
}

/// SYNPROXY with a PROXY v2 header on an IPv6 service, through the
/// dataplane's worker: the SYN is answered with a cookie and makes no
/// session; the cookie ACK opens the connection with the client's MSS
/// lowered by the header's 52 bytes; the server's SYN-ACK becomes the
/// handshake ACK carrying the header; the server's data reaches the
/// client spliced into the cookie's sequence space, its acknowledgement
/// back by the header (`core/src/worker/synproxy6_tests.rs` has every
/// combination).
fn synproxy_with_proxy_v2(kind: Kind) {
    let mut lab = LabConfig::default().build();
    let mut spec = ServiceSpec::new(key6(Protocol::Tcp), Scheduler::Rr);
    spec.client_addr = ClientAddr::ProxyV2;
    spec.synproxy = true;
    lab.ok(Request::AddService { spec });
    let dest = DestSpec::new(kind.rs(), 8080, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: key6(Protocol::Tcp), dest });
    lab.ok(Request::AddLaddr { service: key6(Protocol::Tcp), addr: kind.lip() });
    assert_eq!(lab.rx(0, ns(ROUTER_MAC, ROUTER6)).len(), 1);
    match kind {
        Kind::Fnat66 => assert_eq!(lab.rx(0, ns(RS_MAC[0], RS6)).len(), 1),
        Kind::Nat64 => assert_eq!(lab.rx(1, arp_request(RS_MAC[0], RS[0], GW_IN_ADDR)).len(), 1),
    }
    let c6 = (IpAddr::from(CLIENT6), CPORT);
    let hdr = v2_header(false);
    let n = hdr.len() as u32;
    let opts = [MaximumSegmentSize(1440)];
    let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &opts, ..Seg::default() })));
    assert_eq!((g.port, g.dst, g.ack), (0, c6, ISN + 1), "the cookie SYN-ACK to the client");
    // Its MSS leaves room for the header in front of a full first segment
    // (1500 - 60 of IPv6 and TCP, less v2's 52 bytes for an IPv6 client).
    assert_eq!(mss(&g.opts), Some(1440 - 52));
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 0);
    let cookie = g.seq;
    let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(cookie.wrapping_add(1)), ..Seg::default() })));
    assert_eq!((g.port, g.src.0, g.dst, g.seq), (kind.rs_port(), kind.lip(), (kind.rs(), 8080), ISN));
    assert_eq!(mss(&g.opts), Some(1440 - n as u16), "MSS leaves room for the header");
    let lport = g.src.1;
    let sa = server(kind, lport, Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() });
    let g = one(lab.rx(sa.0, sa.1));
    assert_eq!((g.port, g.dst, g.seq, g.ack), (kind.rs_port(), (kind.rs(), 8080), ISN + 1, SISN + 1));
    assert_eq!(g.payload, hdr, "the header with the handshake ACK");
    let banner = Seg { seq: SISN + 1, ack: Some(ISN + 1 + n), data: b"220 hi\r\n", ..Seg::default() };
    let (p, f) = server(kind, lport, banner);
    let g = one(lab.rx(p, f));
    assert_eq!((g.dst, g.seq, g.ack), (c6, cookie.wrapping_add(1), ISN + 1));
    let d = Seg { seq: ISN + 1, ack: Some(cookie.wrapping_add(9)), data: b"hello", ..Seg::default() };
    let g = one(lab.rx(0, client(d)));
    assert_eq!((g.seq, g.ack), (ISN + 1, SISN + 9));
    assert_eq!(g.payload, [&hdr[..], b"hello"].concat());
    assert_eq!(lab.counters.event_count(Event::ProxyHeadersSent), 2);
    assert_eq!(lab.counters.drop_count(Drop::Ipv6NotHandled), 0);
    assert_eq!(lab.counters.event_count(Event::SessionsCreated), 1);
}

#[test]
fn fullnat66_synproxy_with_proxy_v2_carries_the_header() {
    synproxy_with_proxy_v2(Kind::Fnat66);
}

#[test]
fn nat64_synproxy_with_proxy_v2_carries_the_header() {
    synproxy_with_proxy_v2(Kind::Nat64);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Any client segment after the first byte moves up by the header's
    /// length, any server acknowledgement moves back down (one inside the
    /// header to ISN+1), FULLNAT66 and NAT64, v1 and v2; every frame's
    /// checksum recomputed by etherparse ([`one`]).
    #[test]
    fn sequence_numbers_shift_both_ways(
        nat64 in proptest::prelude::any::<bool>(),
        v2 in proptest::prelude::any::<bool>(),
        events in proptest::collection::vec((proptest::prelude::any::<bool>(), 1u32..200_000, 1usize..64), 1..12),
    ) {
        let kind = if nat64 { Kind::Nat64 } else { Kind::Fnat66 };
        let (ca, hdr) = if v2 { (ClientAddr::ProxyV2, v2_header(false)) } else { (ClientAddr::ProxyV1, v1_header()) };
        let n = hdr.len() as u32;
        let mut lab = lab(kind, Protocol::Tcp, ca);
        let lport = one(lab.rx(0, client(Seg { seq: ISN, syn: true, ..Seg::default() }))).src.1;
        let sa = server(kind, lport, Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() });
        one(lab.rx(sa.0, sa.1));
        let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() })));
        proptest::prop_assert_eq!(g.payload, hdr);
        let data = [b'd'; 64];
        for (from_client, off, len) in events {
            if from_client {
                let s = Seg { seq: ISN + 1 + off, ack: Some(SISN + 1), data: &data[..len], ..Seg::default() };
                let g = one(lab.rx(0, client(s)));
                proptest::prop_assert_eq!(g.seq, ISN + 1 + off + n);
                proptest::prop_assert_eq!(g.payload.len(), len);
            } else {
                let (p, f) = server(kind, lport, Seg { seq: SISN + 1, ack: Some(ISN + 1 + off), ..Seg::default() });
                let g = one(lab.rx(p, f));
                proptest::prop_assert_eq!(g.ack, ISN + 1 + off.saturating_sub(n));
            }
        }
    }
}
