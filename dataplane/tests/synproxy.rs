//! SYNPROXY (`-j enable`) end to end through `Worker<Vec<u8>>`: the
//! gateway's cookie SYN-ACK, the real server's handshake only after a
//! valid cookie ACK, and the splice of sequence numbers, SACK edges,
//! timestamps and windows; frames built and read back with `etherparse`,
//! every sent frame's lengths and checksums checked ([`check_sent`]);
//! ICMP errors about a spliced (or PROXY-shifted) connection quote each
//! end's own sequence numbers.

mod common;

use std::net::Ipv4Addr;

use common::*;
use etherparse::{TcpOptionElement, TcpOptionElement::*};
use gw_core::counters::{Drop, Event};
use gw_proto::{ClientAddr, DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceSpec};

const CPORT: u16 = 40000;
const ISN: u32 = 1000;
const SISN: u32 = 0x7000_0000;

fn lab(ca: ClientAddr, mode: ForwardMode) -> Lab {
    let mut lab = Lab::new(256, (1024, 65535));
    let mut spec = ServiceSpec::new(key(Protocol::Tcp), Scheduler::Rr);
    spec.client_addr = ca;
    spec.synproxy = true;
    lab.ok(Request::AddService { spec });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, mode, 1);
    lab.ok(Request::AddDest { service: key(Protocol::Tcp), dest });
    lab.ok(Request::AddLaddr { service: key(Protocol::Tcp), addr: Ipv4Addr::from(LIP).into() });
    lab.learn_neighbours();
    lab
}

/// These tests' segments have a window of 500 unless they set one.
fn with_window(s: Seg<'_>) -> Seg<'_> {
    Seg { win: if s.win == 0 { 500 } else { s.win }, ..s }
}

fn client(s: Seg<'_>) -> Vec<u8> {
    segment(CLIENT_MAC, GW_OUT.0, (CLIENT, CPORT), (VIP, 80), with_window(s))
}

fn server(dst: ([u8; 4], u16), s: Seg<'_>) -> Vec<u8> {
    segment(RS_MAC[0], GW_IN.0, (RS[0], 8080), dst, with_window(s))
}

fn ts(opts: &[TcpOptionElement]) -> Option<(u32, u32)> {
    opts.iter().find_map(|o| match o {
        Timestamp(a, b) => Some((*a, *b)),
        _ => None,
    })
}

fn wscale(opts: &[TcpOptionElement]) -> Option<u8> {
    opts.iter().find_map(|o| match o {
        WindowScale(w) => Some(*w),
        _ => None,
    })
}

const SYN_OPTS: [TcpOptionElement; 5] =
    [MaximumSegmentSize(1460), SelectiveAcknowledgementPermitted, Timestamp(111, 0), Noop, WindowScale(6)];

/// The client's SYN answered by the gateway: the cookie, its TSval. The
/// gateway's MSS is the port's (1500 - 40) less the longest PROXY header
/// the service (`ca`) puts in front of the client's first segment (v1's
/// 56 bytes for IPv4, v2's 28).
fn handshake(lab: &mut Lab, ca: ClientAddr) -> (u32, u32) {
    let room = match ca {
        ClientAddr::ProxyV1 => 56,
        ClientAddr::ProxyV2 => 28,
        _ => 0,
    };
    let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, opts: &SYN_OPTS, ..Seg::default() })));
    assert_eq!(g.port, 0, "back out the client's port");
    assert!(g.syn && g.ackf);
    assert_eq!((g.src, g.dst), ((VIP, 80), (CLIENT, CPORT)), "from the VIP");
    assert_eq!(g.ack, ISN + 1);
    assert_eq!(mss(&g.opts), Some(1460 - room));
    assert_eq!(wscale(&g.opts), Some(7), "the gateway's window scale");
    assert!(g.opts.contains(&SelectiveAcknowledgementPermitted));
    let (tsval, tsecr) = ts(&g.opts).expect("timestamps");
    assert_eq!(tsecr, 111);
    assert_eq!(tsval & 0xf, 6, "the client's window scale in the TSval");
    assert_eq!(tsval & 0x10, 0x10, "SACK in the TSval");
    assert_eq!(lab.worker.engine.sessions().len(), 0, "no state for a SYN");
    (g.seq, tsval)
}

/// Sends into `port` a "fragmentation needed" from the receiver of
/// `quoted` (a frame the gateway sent) about it, quoting its first 28
/// bytes, and reads the one translated error with etherparse (checksums
/// checked): its port and what it quotes (source, destination, TCP
/// sequence number).
#[allow(clippy::type_complexity)]
fn icmp_about(
    lab: &mut Lab,
    port: u16,
    mac: [u8; 6],
    gw_mac: [u8; 6],
    quoted: &[u8],
) -> (u16, (([u8; 4], u16), ([u8; 4], u16), u32)) {
    use etherparse::{icmpv4::DestUnreachableHeader, Icmpv4Type, PacketBuilder, SlicedPacket};
    let q = etherparse::Ipv4HeaderSlice::from_slice(&quoted[14..]).unwrap().to_header();
    let t =
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 });
    let mut f = vec![];
    PacketBuilder::ethernet2(mac, gw_mac)
        .ipv4(q.destination, q.source, 64)
        .icmpv4(t)
        .write(&mut f, &quoted[14..14 + 28])
        .unwrap();
    let out = lab.rx(port, f);
    assert_eq!(out.len(), 1, "one translated error");
    let p = SlicedPacket::from_ethernet(&out[0].1).unwrap();
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = p.transport else { panic!("not ICMP") };
    assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(icmp.payload()), "ICMP checksum");
    let inner = etherparse::Ipv4HeaderSlice::from_slice(icmp.payload()).unwrap().to_header();
    assert_eq!(inner.header_checksum, inner.calc_header_checksum(), "quoted IPv4 checksum");
    let b = &icmp.payload()[20..28];
    let be16 = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
    let seq = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    (out[0].0, ((inner.source, be16(0)), (inner.destination, be16(2)), seq))
}

fn splice(ca: ClientAddr, mode: ForwardMode, hdr_len: u32) {
    let mut lab = lab(ca, mode);
    let (cookie, gw_ts) = handshake(&mut lab, ca);
    // The cookie ACK, with data the gateway keeps for the real server.
    let tso = [Noop, Noop, Timestamp(112, gw_ts)];
    let ack =
        Seg { seq: ISN + 1, ack: Some(cookie + 1), win: 700, opts: &tso, data: b"early", ..Seg::default() };
    let g = one(lab.rx(0, client(ack)));
    assert_eq!(g.port, 1);
    assert!(g.syn && !g.ackf, "the client's SYN toward the real server");
    assert_eq!(g.seq, ISN);
    assert_eq!(g.dst, (RS[0], 8080));
    let local = g.src;
    if mode == ForwardMode::FullNat {
        assert_eq!(local.0, LIP);
    } else {
        assert_eq!(local, (CLIENT, CPORT));
    }
    let less = match ca {
        ClientAddr::Toa => 8,
        _ => hdr_len as u16,
    };
    assert_eq!(mss(&g.opts), Some(1460 - less), "MSS from the cookie, less the room TOA/PROXY take");
    assert_eq!(wscale(&g.opts), Some(6), "the client's window scale");
    assert!(g.opts.contains(&SelectiveAcknowledgementPermitted));
    assert_eq!(ts(&g.opts), Some((112, 0)));
    assert!(g.payload.is_empty(), "no data on the SYN");
    assert_eq!(lab.worker.engine.sessions().len(), 1);
    assert_eq!(lab.counters.event_count(Event::SynproxyOpened), 1);
    assert_eq!(lab.counters.event_count(Event::SynproxyDataHeld), 1);
    assert_eq!(lab.counters.event_count(Event::SynproxyDataRetransmit), 0);
    // A client segment before the server answered waits.
    let early = Seg { seq: ISN + 1, ack: Some(cookie + 1), opts: &tso, data: b"early", ..Seg::default() };
    assert!(lab.rx(0, client(early)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::SynproxyPending), 1);
    // The server's SYN-ACK becomes the client's handshake ACK.
    let sa_opts = [
        MaximumSegmentSize(1400),
        SelectiveAcknowledgementPermitted,
        Timestamp(9000, 112),
        Noop,
        WindowScale(9),
    ];
    let sa = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, opts: &sa_opts, ..Seg::default() };
    let mut sent = lab.rx(1, server(local, sa));
    assert_eq!(sent.len(), 2, "the handshake ACK, then the cookie ACK's data");
    let early = one(vec![sent.pop().unwrap()]);
    let g = one(sent);
    assert_eq!(g.port, 1, "toward the real server, not the client");
    assert!(g.ackf && !g.syn);
    assert_eq!((g.seq, g.ack), (ISN + 1, SISN + 1));
    assert_eq!(g.win, 700, "the client's window");
    if ca != ClientAddr::Toa {
        // (etherparse stops at TOA's kind 254.)
        assert_eq!(ts(&g.opts), Some((112, 9000)), "TSecr in the server's clock");
    }
    if hdr_len > 0 && ca != ClientAddr::Toa {
        assert_eq!(g.payload.len() as u32, hdr_len, "the PROXY header goes with it");
    }
    if ca == ClientAddr::Toa {
        assert_eq!(lab.counters.event_count(Event::ToaAdded), 1, "TOA on the handshake ACK");
    }
    let n = if ca == ClientAddr::Toa { 0 } else { hdr_len };
    // The held data, spliced: in the server's sequence space and clock,
    // after the PROXY header if there is one.
    assert_eq!((early.port, early.src, early.dst), (1, local, (RS[0], 8080)));
    assert!(early.ackf && !early.syn);
    assert_eq!((early.seq, early.ack), (ISN + 1, SISN + 1));
    assert_eq!(early.payload.len() as u32, 5 + n);
    assert_eq!(&early.payload[n as usize..], b"early");
    if ca != ClientAddr::Toa {
        assert_eq!(ts(&early.opts), Some((112, 9000)));
    }
    // Client data: its ACK and SACK edges move into the server's space,
    // its TSecr into the server's clock.
    let sack = [
        Noop,
        Noop,
        Timestamp(113, gw_ts + 5),
        Noop,
        Noop,
        SelectiveAcknowledgement((cookie + 11, cookie + 21), [None, None, None]),
    ];
    let d = Seg { seq: ISN + 1, ack: Some(cookie + 1), opts: &sack, data: b"hello", ..Seg::default() };
    let g = one(lab.rx(0, client(d)));
    assert_eq!(g.ack, SISN + 1);
    assert_eq!(ts(&g.opts), Some((113, 9005)));
    assert!(g.opts.contains(&SelectiveAcknowledgement((SISN + 11, SISN + 21), [None, None, None])));
    assert_eq!(&g.payload[g.payload.len() - 5..], b"hello");
    // Server data: its sequence number and TSval into the client's view,
    // its window rescaled from 2^9 to 2^7.
    let so = [Noop, Noop, Timestamp(9010, 113)];
    let r =
        Seg { seq: SISN + 1, ack: Some(ISN + 6 + n), win: 100, opts: &so, data: b"world", ..Seg::default() };
    let sent = lab.rx(1, server(local, r));
    let to_client = sent[0].1.clone();
    let g = one(sent);
    assert_eq!(g.port, 0);
    assert_eq!((g.src, g.dst), ((VIP, 80), (CLIENT, CPORT)));
    assert_eq!((g.seq, g.ack), (cookie + 1, ISN + 6));
    assert_eq!(ts(&g.opts), Some((gw_ts + 10, 113)));
    assert_eq!(g.win, 400);
    assert_eq!(g.payload, b"world");
    // ICMP errors quote each end's own sequence numbers: the client's
    // later data (after the PROXY header toward the server) ...
    let d = Seg { seq: ISN + 6, ack: Some(cookie + 6), opts: &so, data: b"again", ..Seg::default() };
    let sent = lab.rx(0, client(d));
    let to_server = sent[0].1.clone();
    assert_eq!(one(sent).seq, ISN + 6 + n);
    let (port, q) = icmp_about(&mut lab, 1, RS_MAC[0], GW_IN.0, &to_server);
    assert_eq!((port, q), (0, ((CLIENT, CPORT), (VIP, 80), ISN + 6)), "to the client, its own number");
    // ... and the server's data (moved by the splice toward the client).
    let (port, q) = icmp_about(&mut lab, 0, CLIENT_MAC, GW_OUT.0, &to_client);
    assert_eq!((port, q), (1, ((RS[0], 8080), local, SISN + 1)), "to the server, its own number");
    assert_eq!(lab.counters.event_count(Event::IcmpErrorsTranslated), 2);
    // A retransmitted server SYN-ACK (our ACK lost) is answered again
    // (after a PROXY header, at the sequence number that follows it).
    let g = one(lab.rx(1, server(local, sa)));
    assert_eq!((g.seq, g.ack, g.dst), (ISN + 1 + n, SISN + 1, (RS[0], 8080)));
    assert_eq!(lab.counters.drop_count(Drop::SynproxyBadCookie), 0);
}

#[test]
fn fullnat_connection_is_spliced_after_a_valid_cookie() {
    splice(ClientAddr::None, ForwardMode::FullNat, 0);
}

#[test]
fn nat_connection_is_spliced_after_a_valid_cookie() {
    splice(ClientAddr::None, ForwardMode::Masq, 0);
}

#[test]
fn synproxy_with_proxy_protocol_v2_moves_both_offsets() {
    splice(ClientAddr::ProxyV2, ForwardMode::FullNat, 28);
}

#[test]
fn synproxy_with_toa() {
    splice(ClientAddr::Toa, ForwardMode::FullNat, 0);
}

#[test]
fn floods_without_a_valid_cookie_never_reach_the_real_server() {
    let mut lab = lab(ClientAddr::None, ForwardMode::FullNat);
    for k in 0..200u32 {
        let syn = Seg { seq: k * 7919, syn: true, ..Seg::default() };
        let f = segment(CLIENT_MAC, GW_OUT.0, (CLIENT, 1024 + k as u16), (VIP, 80), with_window(syn));
        let g = one(lab.rx(0, f));
        assert_eq!(g.port, 0, "every SYN answered to the client");
        assert_eq!(mss(&g.opts), Some(1460));
        assert_eq!(ts(&g.opts), None, "no timestamps offered, none answered");
        assert_eq!(wscale(&g.opts), None);
    }
    for (k, (ack, rst)) in
        [(Some(12345u32), false), (Some(1), false), (None, true), (Some(9), true)].into_iter().enumerate()
    {
        for j in 0..50u32 {
            let s = Seg { seq: j, ack: ack.map(|a| a.wrapping_mul(j + 1)), rst, ..Seg::default() };
            let f = segment(
                CLIENT_MAC,
                GW_OUT.0,
                (CLIENT, 2000 + (k as u16) * 100 + j as u16),
                (VIP, 80),
                with_window(s),
            );
            assert!(lab.rx(0, f).is_empty());
        }
    }
    assert_eq!(lab.worker.engine.sessions().len(), 0);
    assert_eq!(lab.counters.event_count(Event::SynproxySynAcks), 200);
    assert_eq!(lab.counters.drop_count(Drop::SynproxyBadCookie), 200);
    assert_eq!(lab.counters.event_count(Event::FwdIn), 0, "nothing toward a real server");
}

#[test]
fn a_refusing_server_resets_the_client_where_it_expects_it() {
    let mut lab = lab(ClientAddr::None, ForwardMode::FullNat);
    let g = one(lab.rx(0, client(Seg { seq: ISN, syn: true, ..Seg::default() })));
    let cookie = g.seq;
    assert_eq!(mss(&g.opts), Some(1460));
    let g = one(lab.rx(0, client(Seg { seq: ISN + 1, ack: Some(cookie + 1), ..Seg::default() })));
    assert!(g.syn);
    assert_eq!(mss(&g.opts), Some(536), "no MSS in the SYN: Linux's 536");
    let rst = Seg { seq: 0, ack: Some(ISN + 1), rst: true, ..Seg::default() };
    let g = one(lab.rx(1, server(g.src, rst)));
    assert!(g.rst);
    assert_eq!((g.seq, g.dst), (cookie + 1, (CLIENT, CPORT)));
}

#[test]
fn cookie_ack_data_is_held_in_bounded_slots_freed_when_the_server_refuses() {
    let mut lab = lab(ClientAddr::None, ForwardMode::FullNat);
    let slots = gw_core::synproxy::HOLD_SLOTS as u16;
    let mut first = None;
    // One handshake with data per client port, no server answering.
    let open = |lab: &mut Lab, port: u16| {
        let syn = Seg { seq: ISN, syn: true, ..Seg::default() };
        let f = segment(CLIENT_MAC, GW_OUT.0, (CLIENT, port), (VIP, 80), with_window(syn));
        let cookie = one(lab.rx(0, f)).seq;
        let ack = Seg { seq: ISN + 1, ack: Some(cookie + 1), data: b"data", ..Seg::default() };
        let f = segment(CLIENT_MAC, GW_OUT.0, (CLIENT, port), (VIP, 80), with_window(ack));
        let g = one(lab.rx(0, f));
        assert!(g.syn && g.payload.is_empty(), "the SYN toward the server goes without the data");
        g.src
    };
    for k in 0..slots {
        let local = open(&mut lab, 30000 + k);
        first.get_or_insert(local);
    }
    assert_eq!(lab.counters.event_count(Event::SynproxyDataHeld), u64::from(slots));
    open(&mut lab, 30000 + slots);
    assert_eq!(lab.counters.event_count(Event::SynproxyDataRetransmit), 1, "every slot taken");
    // The first server refuses: the client is reset, its slot is free.
    let rst = Seg { seq: 0, ack: Some(ISN + 1), rst: true, ..Seg::default() };
    let g = one(lab.rx(1, server(first.unwrap(), rst)));
    assert!(g.rst && g.dst == (CLIENT, 30000));
    open(&mut lab, 30001 + slots);
    assert_eq!(lab.counters.event_count(Event::SynproxyDataHeld), u64::from(slots) + 1);
    assert_eq!(lab.counters.event_count(Event::SynproxyDataRetransmit), 1);
}

/// The cookie handshake up to the SYN toward the real server, the cookie
/// ACK carrying `data` (`ca`: the service's client-address choice): the
/// cookie, the gateway's TSval, and that SYN.
fn to_the_server(lab: &mut Lab, ca: ClientAddr, data: &'static [u8]) -> (u32, u32, Got) {
    let (cookie, gw_ts) = handshake(lab, ca);
    let tso = [Noop, Noop, Timestamp(112, gw_ts)];
    let ack = Seg { seq: ISN + 1, ack: Some(cookie + 1), win: 700, opts: &tso, data, ..Seg::default() };
    let syn = one(lab.rx(0, client(ack)));
    assert!(syn.syn && !syn.ackf && syn.port == 1);
    (cookie, gw_ts, syn)
}

#[test]
fn a_server_answer_that_does_not_acknowledge_the_syn_is_dropped_and_sets_nothing() {
    let mut lab = lab(ClientAddr::None, ForwardMode::FullNat);
    let (cookie, _, syn) = to_the_server(&mut lab, ClientAddr::None, b"");
    let local = syn.src;
    let bad = |ack: Option<u32>, seq: u32, syn: bool, rst: bool| Seg { seq, ack, syn, rst, ..Seg::default() };
    // Forged or stale answers to the local address: a SYN-ACK or RST
    // acknowledging anything but the SYN, a RST without ACK.
    for s in [
        bad(Some(ISN + 2), 0x1234_0000, true, false),
        bad(Some(ISN), 0x1234_0000, true, false),
        bad(Some(ISN + 5), 0, false, true),
        bad(None, ISN + 1, false, true),
    ] {
        assert!(lab.rx(1, server(local, s)).is_empty());
    }
    assert_eq!(lab.counters.drop_count(Drop::SynproxyServerAck), 4);
    assert_eq!(lab.worker.engine.sessions().len(), 1, "the handshake goes on");
    // The real SYN-ACK sets the splice from its own ISN.
    let sa = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() };
    let g = one(lab.rx(1, server(local, sa)));
    assert!(g.ackf && !g.syn && g.port == 1);
    assert_eq!((g.seq, g.ack), (ISN + 1, SISN + 1));
    // A repeated SYN-ACK with another ISN is not the server's: dropped; the
    // same one again (the handshake ACK was lost) is answered again.
    let other = Seg { seq: SISN + 777, ..sa };
    assert!(lab.rx(1, server(local, other)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::SynproxyServerAck), 5);
    let g = one(lab.rx(1, server(local, sa)));
    assert_eq!((g.seq, g.ack), (ISN + 1, SISN + 1));
    // Server data reaches the client in the cookie's sequence space.
    let d = Seg { seq: SISN + 1, ack: Some(ISN + 1), data: b"banner", ..Seg::default() };
    let g = one(lab.rx(1, server(local, d)));
    assert_eq!((g.port, g.dst, g.seq), (0, (CLIENT, CPORT), cookie + 1));
    assert_eq!(g.payload, b"banner");
}

/// A lost SYN toward the real server: the client's retransmissions send it
/// again, not sooner than 200 ms after the last one, at most 3 times, each
/// as the first was made (`ca`: with TOA or a PROXY header's room too).
fn a_lost_syn_is_sent_again(ca: ClientAddr) {
    let mut lab = lab(ca, ForwardMode::FullNat);
    let (cookie, gw_ts, first) = to_the_server(&mut lab, ca, b"early");
    let tso = [Noop, Noop, Timestamp(113, gw_ts)];
    let again =
        Seg { seq: ISN + 1, ack: Some(cookie + 1), win: 700, opts: &tso, data: b"early", ..Seg::default() };
    // At once (the client's first window): the SYN is on its way.
    lab.now += 50;
    assert!(lab.rx(0, client(again)).is_empty());
    assert_eq!(lab.counters.drop_count(Drop::SynproxyPending), 1);
    let mut resent = 0;
    for _ in 0..5 {
        lab.now += 250;
        let out = lab.rx(0, client(again));
        if resent == 3 {
            assert!(out.is_empty(), "at most 3 times");
            continue;
        }
        resent += 1;
        let g = one(out);
        assert!(g.syn && !g.ackf && g.payload.is_empty(), "the SYN again, without the data");
        assert_eq!((g.port, g.src, g.dst, g.seq), (first.port, first.src, first.dst, ISN));
        assert_eq!(mss(&g.opts), mss(&first.opts), "the MSS the first SYN announced");
        assert_eq!(wscale(&g.opts), wscale(&first.opts));
        assert!(g.opts.contains(&SelectiveAcknowledgementPermitted));
        assert_eq!(ts(&g.opts), Some((113, 0)), "the client's clock");
        assert_eq!(lab.counters.event_count(Event::SynproxySynResent), resent);
    }
    assert_eq!(lab.counters.drop_count(Drop::SynproxyPending), 3);
    assert_eq!(lab.counters.event_count(Event::SynproxyOpened), 1, "one connection");
    assert_eq!(lab.worker.engine.sessions().len(), 1);
    // The server answers at last: the handshake ACK, then the held data.
    let sa = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() };
    let sent = lab.rx(1, server(first.src, sa));
    assert_eq!(sent.len(), 2, "the handshake ACK, then the cookie ACK's data");
    let n = match ca {
        ClientAddr::ProxyV1 | ClientAddr::ProxyV2 => one(vec![sent[0].clone()]).payload.len(),
        _ => 0,
    };
    let data = one(vec![sent[1].clone()]);
    assert_eq!((data.seq, data.ack), (ISN + 1, SISN + 1));
    assert_eq!(&data.payload[n..], b"early");
}

#[test]
fn a_lost_syn_is_sent_again_when_the_client_retransmits() {
    a_lost_syn_is_sent_again(ClientAddr::None);
}

#[test]
fn a_lost_syn_is_sent_again_with_toa_and_a_proxy_header() {
    a_lost_syn_is_sent_again(ClientAddr::Toa);
    a_lost_syn_is_sent_again(ClientAddr::ProxyV2);
}

/// Runs the worker's timers at `at` ms after `t0`; what they sent.
fn tick_at(lab: &mut Lab, t0: u64, at: u64) -> Vec<(u16, Vec<u8>)> {
    lab.now = t0 + at;
    lab.worker.tick(lab.now, &mut lab.io);
    std::mem::take(&mut lab.io.sent)
}

/// A client that waits for the server to speak first (its cookie ACK
/// carried no data; SSH, SMTP): nothing of its own to retransmit. The
/// session's timer sends the lost SYN again 1, 3 and 7 s after the first
/// (each wait doubled), as the first was made; 15 s after the first the
/// handshake ends. With TOA, the SYN again carries what the first did.
#[test]
fn the_timer_sends_a_lost_syn_again_for_a_client_that_waits() {
    for ca in [ClientAddr::None, ClientAddr::Toa] {
        let mut lab = lab(ca, ForwardMode::FullNat);
        let (_, _, first) = to_the_server(&mut lab, ca, b"");
        let t0 = lab.now;
        let toa = lab.counters.event_count(Event::ToaAdded);
        assert!(tick_at(&mut lab, t0, 800).is_empty(), "{ca:?}: not yet");
        for (k, at) in [(1, 1_000), (2, 3_000), (3, 7_000)] {
            let g = one(tick_at(&mut lab, t0, at + 150));
            assert!(g.syn && !g.ackf && g.payload.is_empty(), "{ca:?}: the SYN again at {at} ms");
            assert_eq!((g.port, g.src, g.dst, g.seq), (first.port, first.src, first.dst, ISN));
            assert_eq!((mss(&g.opts), wscale(&g.opts)), (mss(&first.opts), wscale(&first.opts)));
            assert_eq!(ts(&g.opts), ts(&first.opts), "the client's clock of its cookie ACK");
            assert_eq!(g.raw_opts, first.raw_opts, "{ca:?}: the same options");
            assert_eq!(lab.counters.event_count(Event::SynproxySynResent), k);
            assert!(tick_at(&mut lab, t0, at + 600).is_empty(), "{ca:?}: once");
        }
        assert_eq!(lab.counters.event_count(Event::ToaAdded), toa, "{ca:?}: TOA as on the first SYN");
        assert!(tick_at(&mut lab, t0, 14_700).is_empty());
        assert_eq!(lab.worker.engine.sessions().len(), 1, "{ca:?}: still waiting");
        assert!(tick_at(&mut lab, t0, 15_300).is_empty());
        assert_eq!(lab.worker.engine.sessions().len(), 0, "{ca:?}: ended 15 s after the first SYN");
        assert_eq!(lab.counters.event_count(Event::SynproxySynResent), 3);
    }
}

/// The server answers after the timer's first resend: the handshake is
/// spliced, the timer sends nothing more, and the connection lives on.
#[test]
fn an_answered_handshake_stops_the_resend_timer() {
    let mut lab = lab(ClientAddr::None, ForwardMode::FullNat);
    let (cookie, _, first) = to_the_server(&mut lab, ClientAddr::None, b"");
    let t0 = lab.now;
    assert!(one(tick_at(&mut lab, t0, 1_150)).syn);
    let sa = Seg { seq: SISN, ack: Some(ISN + 1), syn: true, ..Seg::default() };
    let g = one(lab.rx(1, server(first.src, sa)));
    assert!(g.ackf && !g.syn);
    for at in [3_150, 7_150, 15_150, 60_000] {
        assert!(tick_at(&mut lab, t0, at).is_empty(), "nothing at {at} ms");
    }
    assert_eq!(lab.counters.event_count(Event::SynproxySynResent), 1);
    assert_eq!(lab.worker.engine.sessions().len(), 1, "established");
    let d = Seg { seq: SISN + 1, ack: Some(ISN + 1), data: b"hi", ..Seg::default() };
    let g = one(lab.rx(1, server(first.src, d)));
    assert_eq!((g.dst, g.seq, g.payload.as_slice()), ((CLIENT, CPORT), cookie + 1, &b"hi"[..]));
}

/// The cookie SYN-ACK to a source the gateway has not resolved solicits it
/// as a stranger's neighbour entry, as a RST or a port unreachable does:
/// answering a SYN flood from made-up on-link sources replaces only such
/// entries, never a resolution in progress (a real server's, its first
/// datagram parked) or a client the gateway sends to.
#[test]
fn cookie_syn_acks_to_made_up_on_link_sources_never_evict_the_neighbours_in_use() {
    use gw_core::neigh::NeighConfig;
    let neigh = NeighConfig { capacity: 16, per_port_max: 12, ..NeighConfig::default() };
    let mut lab = LabConfig { sessions: 256, lports: (1024, 65535), neigh, ..LabConfig::default() }.build();
    let mut spec = ServiceSpec::new(key(Protocol::Tcp), Scheduler::Rr);
    spec.synproxy = true;
    lab.ok(Request::AddService { spec });
    let udp_key = key(Protocol::Udp);
    lab.ok(Request::AddService { spec: ServiceSpec::new(udp_key, Scheduler::Rr) });
    for k in [key(Protocol::Tcp), udp_key] {
        let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
        lab.ok(Request::AddDest { service: k, dest });
        lab.ok(Request::AddLaddr { service: k, addr: Ipv4Addr::from(LIP).into() });
    }
    lab.learn_neighbours();
    // A new real server, not resolved yet, takes the new UDP flows.
    let (rs2, rs2_mac) = ([198, 18, 1, 9], [0x02, 0xaa, 0, 0, 0, 0x09]);
    lab.ok(Request::AddDest {
        service: udp_key,
        dest: DestSpec::new(Ipv4Addr::from(rs2), 8080, ForwardMode::FullNat, 1),
    });
    lab.ok(Request::EditDest {
        service: udp_key,
        dest: DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 0),
    });
    let out = lab.rx(0, udp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, VPORT)));
    assert_eq!(out.len(), 1, "an ARP request for the new server; its datagram waits");
    assert_eq!(lab.counters.event_count(Event::NeighHeld), 1);
    // 200 SYNs from made-up on-link sources: each answered with a cookie,
    // its source asked for first.
    for host in 10..210u8 {
        let syn = Seg { seq: ISN, syn: true, ..Seg::default() };
        let f = segment(
            [0x02, 0xbb, 0, 0, 0, host],
            GW_OUT.0,
            ([198, 18, 0, host], 5000),
            (VIP, 80),
            with_window(syn),
        );
        let out = lab.rx(0, f);
        assert_eq!(out.len(), 1, "SYN from .{host}: an ARP request for its source");
    }
    assert_eq!(lab.counters.event_count(Event::SynproxySynAcks), 200);
    assert!(lab.counters.event_count(Event::NeighEvicted) > 0, "the strangers replaced each other");
    // The new server answers: its datagram leaves.
    let out = lab.rx(1, arp_reply(rs2_mac, rs2, GW_IN, GW_IN_ADDR));
    assert_eq!(out.len(), 1);
    let (_, mac, local, dst, _) = inspect(&out[0].1);
    assert_eq!((mac, dst), (rs2_mac, (rs2, 8080)));
    // The client is still known: the server's reply goes to it at once.
    let out = lab.rx(1, udp(rs2_mac, GW_IN, (rs2, 8080), local));
    assert_eq!(out.len(), 1);
    assert_eq!(inspect(&out[0].1).1, CLIENT_MAC);
    // Every entry evicted was a made-up source's, holding its SYN-ACK.
    assert_eq!(lab.counters.drop_count(Drop::NeighUnresolved), lab.counters.event_count(Event::NeighEvicted));
}
