//! The client's address toward a FULLNAT real server (`--toa`,
//! `--proxy-protocol v1|v2`) end to end through `Worker<Vec<u8>>`: frames
//! built and read back with `etherparse`, every sent frame's lengths and
//! checksums checked ([`check_sent`]).

mod common;

use std::net::Ipv4Addr;

use common::*;
use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TcpOptionElement::*, TransportSlice};
use gw_core::counters::{Drop, Event};
use gw_proto::{ClientAddr, DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceSpec};

const CPORT: u16 = 40000;
const ISN: u32 = 1000;
const SISN: u32 = 70_000;

/// A lab with one TCP FULLNAT service on VIP:80 (one real server, RS[0]:8080)
/// handing the client address as `ca`, neighbours known.
fn lab(ca: ClientAddr) -> Lab {
    let mut lab = Lab::new(64, (1024, 65535));
    let mut spec = ServiceSpec::new(key(Protocol::Tcp), Scheduler::Rr);
    spec.client_addr = ca;
    lab.ok(Request::AddService { spec });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest });
    lab.ok(Request::AddLaddr { service: key(Protocol::Tcp), addr: Ipv4Addr::from(LIP).into() });
    lab.learn_neighbours();
    lab
}

fn client(s: Seg<'_>) -> Vec<u8> {
    segment(CLIENT_MAC, GW_OUT.0, (CLIENT, CPORT), (VIP, 80), s)
}

fn server(lport: u16, s: Seg<'_>) -> Vec<u8> {
    segment(RS_MAC[0], GW_IN.0, (RS[0], 8080), (LIP, lport), s)
}

const SYN_OPTS: [TcpOptionElement; 5] =
    [MaximumSegmentSize(1460), SelectiveAcknowledgementPermitted, Timestamp(1, 0), Noop, WindowScale(7)];

/// TOA as the TOA kernel module reads it: kind 254, length 8, port, address.
fn toa_bytes() -> [u8; 8] {
    let mut t = [254, 8, 0, 0, 0, 0, 0, 0];
    t[2..4].copy_from_slice(&CPORT.to_be_bytes());
    t[4..8].copy_from_slice(&CLIENT);
    t
}

#[test]
fn toa_rides_the_syn_and_the_handshake_ack_only() {
    let mut lab = lab(ClientAddr::Toa);
    let syn = client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() });
    let g = one(lab.rx(0, syn.clone()));
    assert_eq!((g.port, g.dst), (1, (RS[0], 8080)));
    assert_eq!(g.src.0, LIP);
    assert_eq!(g.raw_opts[..8], toa_bytes(), "TOA first in the option space");
    // The client's options follow, intact but for the MSS (etherparse
    // stops at kind 254, which it does not know: read the rest alone).
    let rest: Vec<_> =
        etherparse::TcpOptionsIterator::from_slice(&g.raw_opts[8..]).map(|o| o.unwrap()).collect();
    assert_eq!(mss(&rest), Some(1452), "MSS lowered by the option's 8 bytes");
    assert_eq!(rest[1..SYN_OPTS.len()], SYN_OPTS[1..]);
    let lport = g.src.1;
    let sa = server(lport, Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() });
    let g = one(lab.rx(1, sa));
    assert_eq!((g.dst, g.ack), ((CLIENT, CPORT), ISN + 1), "replies untouched");
    // The handshake's ACK carries it (the TOA module reads it there).
    let ack = client(Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() });
    let g = one(lab.rx(0, ack));
    assert_eq!(g.raw_opts, toa_bytes());
    assert_eq!((g.seq, g.ack), (ISN + 1, SISN + 1));
    assert!(g.payload.is_empty());
    // Later segments do not.
    let data = client(Seg { seq: ISN + 1, ack: Some(SISN + 1), data: b"GET /", ..Seg::default() });
    let g = one(lab.rx(0, data));
    assert!(g.raw_opts.is_empty());
    assert_eq!(g.payload, b"GET /");
    assert_eq!(lab.counters.event_count(Event::ToaAdded), 2);
    assert_eq!(lab.counters.event_count(Event::ToaNoRoom), 0);
}

#[test]
fn toa_without_room_leaves_the_options_alone_and_is_counted() {
    let mut lab = lab(ClientAddr::Toa);
    // 36 bytes of options: 8 more would pass 40.
    let opts = [
        MaximumSegmentSize(1400),
        SelectiveAcknowledgementPermitted,
        Timestamp(5, 0),
        Noop,
        WindowScale(9),
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
        Noop,
    ];
    let syn = client(Seg { seq: ISN, syn: true, opts: &opts, ..Seg::default() });
    let sent_opts = {
        let p = SlicedPacket::from_ethernet(&syn).unwrap();
        let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!() };
        t.options().to_vec()
    };
    assert!(sent_opts.len() + 8 > 40);
    let g = one(lab.rx(0, syn));
    assert_eq!(g.raw_opts.len(), sent_opts.len());
    assert!(!g.raw_opts.windows(2).any(|w| w == [254, 8]));
    assert_eq!(mss(&g.opts), Some(1392), "the MSS is still lowered");
    assert_eq!(lab.counters.event_count(Event::ToaNoRoom), 1);
    assert_eq!(lab.counters.event_count(Event::ToaAdded), 0);
}

fn v1_header() -> Vec<u8> {
    format!("PROXY TCP4 {} {} {CPORT} 80\r\n", Ipv4Addr::from(CLIENT), Ipv4Addr::from(VIP)).into_bytes()
}

fn v2_header() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&CLIENT);
    h.extend_from_slice(&VIP);
    h.extend_from_slice(&CPORT.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h
}

/// The whole life of a PROXY connection: header with the handshake ACK,
/// again in front of a retransmitted first segment, later sequence
/// numbers shifted, acknowledgements and SACK edges shifted back.
fn proxy_connection(ca: ClientAddr, hdr: &[u8]) {
    let mut lab = lab(ca);
    let n = hdr.len() as u32;
    let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() })));
    assert_eq!(mss(&g.opts), Some(1460 - n as u16), "MSS leaves room for the header");
    assert_eq!(g.seq, ISN);
    let lport = g.src.1;
    let syn_ack = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, opts: &SYN_OPTS, ..Seg::default() };
    let g = one(lab.rx(1, server(lport, syn_ack)));
    assert_eq!(g.ack, ISN + 1);
    assert_eq!(mss(&g.opts), Some(1460 - n as u16), "the client's full segments leave room for the header");
    // Handshake ACK: the header goes with it (a server may speak first).
    let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() })));
    assert_eq!((g.seq, g.ack), (ISN + 1, SISN + 1));
    assert_eq!(g.payload, hdr);
    // The server's banner; its ACK of the header maps to ISN+1.
    let banner = Seg { seq: SISN + 1, ack: Some(ISN + 1 + n), data: b"220 hi\r\n", ..Seg::default() };
    let g = one(lab.rx(1, server(lport, banner)));
    assert_eq!((g.seq, g.ack), (SISN + 1, ISN + 1));
    // First data at ISN+1 (also what a lost handshake ACK leaves): header again.
    let d1 = Seg { seq: ISN + 1, ack: Some(SISN + 9), data: b"hello", ..Seg::default() };
    let g = one(lab.rx(0, client(d1)));
    assert_eq!(g.seq, ISN + 1);
    assert_eq!(g.payload, [hdr, b"hello"].concat());
    // Its retransmission carries the same bytes.
    let g = one(lab.rx(0, client(d1)));
    assert_eq!(g.payload, [hdr, b"hello"].concat());
    // Later data moves by the header's length.
    let d2 = Seg { seq: ISN + 6, ack: Some(SISN + 9), data: b"world", ..Seg::default() };
    let g = one(lab.rx(0, client(d2)));
    assert_eq!((g.seq, g.payload.as_slice()), (ISN + 6 + n, &b"world"[..]));
    // A server ACK with a SACK block, both shifted back; one inside the
    // header maps to ISN+1.
    let sack = [Noop, Noop, SelectiveAcknowledgement((ISN + 6 + n, ISN + 11 + n), [None, None, None])];
    let ackd = Seg { seq: SISN + 9, ack: Some(ISN + 1 + n), opts: &sack, ..Seg::default() };
    let g = one(lab.rx(1, server(lport, ackd)));
    assert_eq!(g.ack, ISN + 1);
    assert!(g.opts.contains(&SelectiveAcknowledgement((ISN + 6, ISN + 11), [None, None, None])));
    let inside = Seg { seq: SISN + 9, ack: Some(ISN + 3), ..Seg::default() };
    assert_eq!(one(lab.rx(1, server(lport, inside))).ack, ISN + 1);
    let all = Seg { seq: SISN + 9, ack: Some(ISN + 11 + n), ..Seg::default() };
    assert_eq!(one(lab.rx(1, server(lport, all))).ack, ISN + 11);
    // The client's FIN moves too.
    let fin = Seg { seq: ISN + 11, ack: Some(SISN + 9), fin: true, ..Seg::default() };
    assert_eq!(one(lab.rx(0, client(fin))).seq, ISN + 11 + n);
    assert_eq!(lab.counters.event_count(Event::ProxyHeadersSent), 3);
    assert_eq!(lab.counters.drop_count(Drop::ProxyHeaderNoRoom), 0);
}

/// A full-size first segment (what the client sends with the MSS it was
/// given) leaves with the header in front; and a new ISN on a kept session
/// (a SYN again while the server has not answered) moves where the header
/// goes.
#[test]
fn a_full_first_segment_and_a_new_isn_carry_the_header() {
    let hdr = v2_header();
    let n = hdr.len() as u32;
    let mut lab = lab(ClientAddr::ProxyV2);
    let g = one(lab.rx(0, client(Seg { seq: 5, syn: true, opts: &SYN_OPTS, ..Seg::default() })));
    let lport = g.src.1;
    // The client tries again with another ISN before the server answers.
    let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() })));
    assert_eq!(g.seq, ISN);
    let syn_ack = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, opts: &SYN_OPTS, ..Seg::default() };
    let given = mss(&one(lab.rx(1, server(lport, syn_ack))).opts).unwrap();
    let full = vec![b'x'; usize::from(given)];
    let first = Seg { seq: ISN + 1, ack: Some(SISN + 1), data: &full, ..Seg::default() };
    let g = one(lab.rx(0, client(first)));
    assert_eq!(g.seq, ISN + 1);
    assert_eq!(g.payload, [&hdr[..], &full].concat());
    let next = Seg { seq: ISN + 1 + u32::from(given), ack: Some(SISN + 1), data: b"more", ..Seg::default() };
    assert_eq!(one(lab.rx(0, client(next))).seq, ISN + 1 + u32::from(given) + n);
    assert_eq!(lab.counters.drop_count(Drop::ProxyHeaderNoRoom), 0);
}

/// The handshake's ACK, which carries the header, is lost: the server
/// sends its SYN-ACK again and the client's ACK again carries the header
/// (a server that speaks first would otherwise take the connection with a
/// gap where the header belongs). Once the server has acknowledged it, a
/// bare ACK goes without.
#[test]
fn a_lost_handshake_ack_is_followed_by_the_header_again() {
    let hdr = v1_header();
    let n = hdr.len() as u32;
    let mut lab = lab(ClientAddr::ProxyV1);
    let lport = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() }))).src.1;
    let syn_ack = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() };
    one(lab.rx(1, server(lport, syn_ack)));
    let hs = Seg { seq: ISN + 1, ack: Some(SISN + 1), ..Seg::default() };
    assert_eq!(one(lab.rx(0, client(hs))).payload, hdr, "the header with the handshake's ACK (lost)");
    one(lab.rx(1, server(lport, syn_ack)));
    let g = one(lab.rx(0, client(hs)));
    assert_eq!((g.seq, g.payload.as_slice()), (ISN + 1, &hdr[..]), "again");
    // The server's banner acknowledges it: a bare ACK now goes without.
    let banner = Seg { seq: SISN + 1, ack: Some(ISN + 1 + n), data: b"220 hi\r\n", ..Seg::default() };
    assert_eq!(one(lab.rx(1, server(lport, banner))).ack, ISN + 1);
    let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(SISN + 9), ..Seg::default() })));
    assert_eq!((g.seq, g.payload.len()), (ISN + 1 + n, 0));
    assert_eq!(lab.counters.event_count(Event::ProxyHeadersSent), 2);
}

#[test]
fn proxy_protocol_v1_header_and_sequence_shift() {
    proxy_connection(ClientAddr::ProxyV1, &v1_header());
}

#[test]
fn proxy_protocol_v2_header_and_sequence_shift() {
    assert_eq!(v2_header().len(), 28);
    proxy_connection(ClientAddr::ProxyV2, &v2_header());
}

#[test]
fn plain_fullnat_and_other_modes_are_untouched() {
    // A NAT real server of a PROXY service gets no header (FULLNAT only).
    let mut lab = Lab::new(64, (1024, 65535));
    let mut spec = ServiceSpec::new(key(Protocol::Tcp), Scheduler::Rr);
    spec.client_addr = ClientAddr::ProxyV1;
    lab.ok(Request::AddService { spec });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::Masq, 1);
    lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest });
    lab.learn_neighbours();
    one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() })));
    let syn_ack = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() };
    one(lab.rx(1, segment(RS_MAC[0], GW_IN.0, (RS[0], 8080), (CLIENT, CPORT), syn_ack)));
    let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(SISN + 1), data: b"x", ..Seg::default() })));
    assert_eq!((g.seq, g.payload.as_slice()), (ISN + 1, &b"x"[..]));
    assert_eq!(lab.counters.event_count(Event::ProxyHeadersSent), 0);
    // Plain FULLNAT: the SYN's MSS stays.
    let mut lab = lab_plain();
    let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() })));
    assert_eq!(mss(&g.opts), Some(1460));
}

fn lab_plain() -> Lab {
    lab(ClientAddr::None)
}

/// UOA: a UDP FULLNAT service with `--proxy-protocol v2` puts the PROXY v2
/// header (AF_INET, DGRAM: 0x21 0x12) before the payload of a session's
/// first datagram toward the real server, and only there.
#[test]
fn udp_proxy_v2_header_on_the_first_datagram_only() {
    let mut lab = Lab::new(64, (1024, 65535));
    let mut spec = ServiceSpec::new(key(Protocol::Udp), Scheduler::Rr);
    spec.client_addr = ClientAddr::ProxyV2;
    lab.ok(Request::AddService { spec });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 5353, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: key(Protocol::Udp), dest });
    lab.ok(Request::AddLaddr { service: key(Protocol::Udp), addr: Ipv4Addr::from(LIP).into() });
    lab.learn_neighbours();
    let dgram = |data: &[u8]| {
        let mut out = vec![];
        PacketBuilder::ethernet2(CLIENT_MAC, GW_OUT.0)
            .ipv4(CLIENT, VIP, 64)
            .udp(CPORT, 80)
            .write(&mut out, data)
            .unwrap();
        out
    };
    let read = |out: Vec<(u16, Vec<u8>)>| {
        assert_eq!(out.len(), 1);
        check_sent(out[0].0, &out[0].1, true);
        let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
        let Some(TransportSlice::Udp(u)) = &p.transport else { panic!() };
        (u.source_port(), u.payload().to_vec())
    };
    let (lport, first) = read(lab.rx(0, dgram(b"query")));
    let mut hdr = b"\r\n\r\n\0\r\nQUIT\n\x21\x12\x00\x0c".to_vec();
    hdr.extend_from_slice(&CLIENT);
    hdr.extend_from_slice(&VIP);
    hdr.extend_from_slice(&CPORT.to_be_bytes());
    hdr.extend_from_slice(&80u16.to_be_bytes());
    assert_eq!(first, [&hdr[..], b"query"].concat());
    let (_, second) = read(lab.rx(0, dgram(b"again")));
    assert_eq!(second, b"again", "the header on the first datagram only");
    // The reply goes back as it came.
    let mut reply = vec![];
    PacketBuilder::ethernet2(RS_MAC[0], GW_IN.0)
        .ipv4(RS[0], LIP, 64)
        .udp(5353, lport)
        .write(&mut reply, b"answer")
        .unwrap();
    let (_, back) = read(lab.rx(1, reply));
    assert_eq!(back, b"answer");
    assert_eq!(lab.counters.event_count(Event::ProxyHeadersSent), 1);
}
