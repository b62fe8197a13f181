//! Tests of SYNPROXY for IPv6 services (`engine/synproxy6.rs`) through the
//! worker: client and server frames built by etherparse, every frame that
//! leaves read back by etherparse (addresses, ports, flags, options, the
//! TCP checksum it computes itself, the IPv4 header checksum), for a
//! FULLNAT66 and a NAT64 service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};
use gw_proto::{ClientAddr, ForwardMode, Protocol as P, Scheduler, ServiceKey};

use super::*;
use crate::counters::WorkerCounters;
use crate::engine::ipv6_fwd_tests::{engine, CIP, GW_MAC, PEER_MAC, VIP};
use crate::engine::EngineConfig;
use crate::neigh::StaticNeigh;
use crate::sched::{DestConf, Prepared};
use crate::service::{Dest, Service};
use crate::synproxy as sp;

const LIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x60);
const RIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);
const LIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 60);
const RIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 200);
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x5e]);
/// The engine's SYN cookie secret (`ipv6_fwd_tests::engine`).
const SECRET: u64 = 1;
const CPORT: u16 = 40000;
const CLIENT_ISN: u32 = 1000;
const SERVER_ISN: u32 = 0x8000_0000;

/// A SYNPROXY TCP service on [VIP]:80 with one real server (`rip`, port
/// 8080): IPv6 (FULLNAT66) or IPv4 (NAT64), with a local address of its
/// family.
fn service(rip: IpAddr, mode: ForwardMode) -> Service {
    let dests = vec![Dest { slot: 0, addr: rip, port: 8080, mode, weight: 1, upper: 0, lower: 0 }];
    let confs: Vec<DestConf> = dests
        .iter()
        .map(|d| DestConf { id: d.slot, ..DestConf::new(1, crate::service::sched_addr(d.addr), d.port) })
        .collect();
    Service {
        slot: 0,
        version: 1,
        key: ServiceKey { proto: P::Tcp, addr: IpAddr::V6(VIP), port: 80 },
        scheduler: Scheduler::Rr,
        prep: Prepared::build(Scheduler::Rr, 0, &confs),
        dests,
        laddrs: vec![u32::from(LIP4)],
        laddrs6: vec![u128::from(LIP6)],
        persistent_ms: None,
        netmask: u32::MAX,
        netmask6: u128::MAX,
        one_packet: false,
        sched_flags: 0,
        client_addr: ClientAddr::None,
        synproxy: true,
    }
}

/// A worker for `svc` whose neighbours (client, both real servers) are
/// known.
fn worker(svc: Service) -> Worker<Vec<u8>> {
    worker_with(svc, &[])
}

/// [`worker`] with more clients known, at [`CLIENT_MAC`].
fn worker_with(svc: Service, clients: &[Ipv6Addr]) -> Worker<Vec<u8>> {
    let neigh = NeighConfig {
        capacity: 1024,
        per_port_max: 1024,
        reachable_ms: 30_000,
        retry_ms: 1000,
        max_probes: 3,
    };
    let n6 = |ip: Ipv6Addr, mac| StaticNeigh { port: 0, ip: u128::from(ip), mac };
    let mut statics = vec![n6(CIP, CLIENT_MAC), n6(RIP6, SERVER_MAC)];
    statics.extend(clients.iter().map(|c| n6(*c, CLIENT_MAC)));
    Worker::new(engine(svc, 0, 1), neigh)
        .with_static_neighbours6(Arc::new(StaticNeighbours::new(statics)))
        .with_static_neighbours(Arc::new(StaticNeighbours::new(vec![StaticNeigh {
            port: 0,
            ip: u32::from(RIP4),
            mac: SERVER_MAC,
        }])))
}

/// The I/O of a test: every frame sent, with its port.
#[derive(Default)]
struct Sent(Vec<(u16, Vec<u8>)>);

impl Io<Vec<u8>> for Sent {
    fn alloc(&mut self) -> Option<Vec<u8>> {
        Some(Vec::new())
    }
    fn send(&mut self, port: u16, pkt: Vec<u8>) {
        self.0.push((port, pkt));
    }
}

/// A TCP segment with raw `opts`, from `src` to `dst` (one family).
#[allow(clippy::too_many_arguments)]
fn tcp(
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    rst: bool,
    opts: &[TcpOptionElement],
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0);
    let ip = match (src.0, dst.0) {
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut b = ip.tcp(src.1, dst.1, seq, 28960);
    if syn {
        b = b.syn();
    }
    if rst {
        b = b.rst();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    let b = b.options(opts).unwrap();
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// A TCP segment as etherparse reads it (its checksums checked).
#[derive(Debug)]
struct Seen {
    dmac: [u8; 6],
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    hops: u8,
    seq: u32,
    ack: u32,
    syn: bool,
    ack_flag: bool,
    rst: bool,
    win: u16,
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_ok: bool,
    ts: Option<(u32, u32)>,
    /// A TOA option first in the option space (etherparse does not know
    /// kind 254), as sent; empty if none.
    toa: Vec<u8>,
    payload: Vec<u8>,
}

fn seen(frame: &[u8]) -> Seen {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses it");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else { panic!("not Ethernet") };
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP: {:?}", p.transport) };
    let (src, dst, hops, want) = match &p.net {
        Some(NetSlice::Ipv6(ip)) => {
            assert_eq!(eth.ether_type().0, 0x86dd);
            let h = ip.header().to_header();
            let want = t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap();
            (IpAddr::from(h.source), IpAddr::from(h.destination), h.hop_limit, want)
        }
        Some(NetSlice::Ipv4(ip)) => {
            assert_eq!(eth.ether_type().0, 0x0800);
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 header checksum");
            let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
            (IpAddr::from(h.source), IpAddr::from(h.destination), h.time_to_live, want)
        }
        other => panic!("not IP: {other:?}"),
    };
    assert_eq!(t.checksum(), want, "TCP checksum");
    let mut s = Seen {
        dmac: eth.destination(),
        src: (src, t.source_port()),
        dst: (dst, t.destination_port()),
        hops,
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        syn: t.syn(),
        ack_flag: t.ack(),
        rst: t.rst(),
        win: t.window_size(),
        mss: None,
        wscale: None,
        sack_ok: false,
        ts: None,
        toa: Vec::new(),
        payload: t.payload().to_vec(),
    };
    let raw = t.options();
    let rest = match raw {
        [254, n, ..] if usize::from(*n) <= raw.len() => {
            s.toa = raw[..usize::from(*n)].to_vec();
            &raw[usize::from(*n)..]
        }
        _ => raw,
    };
    for o in etherparse::TcpOptionsIterator::from_slice(rest) {
        match o.expect("well-formed options") {
            TcpOptionElement::MaximumSegmentSize(m) => s.mss = Some(m),
            TcpOptionElement::WindowScale(w) => s.wscale = Some(w),
            TcpOptionElement::SelectiveAcknowledgementPermitted => s.sack_ok = true,
            TcpOptionElement::Timestamp(a, b) => s.ts = Some((a, b)),
            _ => {}
        }
    }
    s
}

/// Handles `frame` at `now` and returns what left (port 0 each time).
fn run(w: &mut Worker<Vec<u8>>, now: u64, frame: Vec<u8>) -> Vec<Seen> {
    run_raw(w, now, frame).iter().map(|f| seen(f)).collect()
}

/// [`run`], the frames as they left.
fn run_raw(w: &mut Worker<Vec<u8>>, now: u64, frame: Vec<u8>) -> Vec<Vec<u8>> {
    let mut io = Sent::default();
    w.handle(now, 0, frame, &mut io);
    io.0.into_iter()
        .map(|(port, f)| {
            assert_eq!(port, 0);
            f
        })
        .collect()
}

fn client_opts(tsval: u32) -> Vec<TcpOptionElement> {
    use TcpOptionElement::*;
    vec![
        MaximumSegmentSize(1440),
        SelectiveAcknowledgementPermitted,
        Timestamp(tsval, 0),
        Noop,
        WindowScale(7),
    ]
}

const C: fn() -> (IpAddr, u16) = || (IpAddr::V6(CIP), CPORT);
const V: fn() -> (IpAddr, u16) = || (IpAddr::V6(VIP), 80);

/// What a test run of the handshake saw.
struct Handshake {
    /// The gateway's ISN toward the client (the cookie).
    cookie: u32,
    /// The gateway's TSval of its SYN-ACK.
    gw_tsval: u32,
    /// LIP:lport as the server sees it.
    local: (IpAddr, u16),
}

/// The client's SYN, the cookie SYN-ACK (checked), then the cookie ACK
/// with `data`; returns the cookie and the SYN that reached the server.
fn open(w: &mut Worker<Vec<u8>>, data: &[u8]) -> (Handshake, Seen) {
    open_less(w, data, 0, 0)
}

/// [`open`], the SYN toward the server with the client's MSS lowered by
/// `less` (room for TOA or a PROXY header), the cookie SYN-ACK's own MSS
/// by `room` (room for a PROXY header in front of the client's first
/// segment).
fn open_less(w: &mut Worker<Vec<u8>>, data: &[u8], less: u16, room: u16) -> (Handshake, Seen) {
    let c = w.engine.counters().clone();
    let out = run(w, 1_000, tcp(C(), V(), CLIENT_ISN, None, true, false, &client_opts(111), &[]));
    assert_eq!(out.len(), 1, "one SYN-ACK");
    let sa = &out[0];
    assert_eq!((sa.src, sa.dst, sa.dmac), (V(), C(), CLIENT_MAC.0));
    assert!(sa.syn && sa.ack_flag && !sa.rst);
    assert_eq!(sa.ack, CLIENT_ISN + 1);
    // The gateway's MSS for a 1500-byte port (1500 - 60), window scale 7,
    // SACK; the client's TSval echoed.
    assert_eq!((sa.mss, sa.wscale, sa.sack_ok), (Some(1440 - room), Some(sp::WSCALE), true));
    let (gw_tsval, ecr) = sa.ts.expect("timestamps");
    assert_eq!(ecr, 111);
    assert_eq!(sp::ts_decode(gw_tsval), (Some(7), true), "the client's options ride in the TSval");
    // The cookie is IPv6's: the keyed hash over the whole addresses, the
    // client's MSS 1440 as index 2 of IPv6's table.
    let t = sp::Tuple { saddr: u128::from(CIP), daddr: u128::from(VIP), sport: CPORT, dport: 80 };
    assert_eq!(sp::check(SECRET, &t, CLIENT_ISN, sa.seq, sp::minute(1_000)), Some(2));
    assert_eq!(c.event_count(Event::SynproxySynAcks), 1);
    assert_eq!(c.event_count(Event::SessionsCreated), 0, "no state for a SYN");
    let cookie = sa.seq;
    // The cookie ACK (with data, if any): the session, and the client's
    // SYN toward the real server with the options of the cookie.
    let ack = tcp(
        C(),
        V(),
        CLIENT_ISN + 1,
        Some(cookie.wrapping_add(1)),
        false,
        false,
        &[TcpOptionElement::Noop, TcpOptionElement::Noop, TcpOptionElement::Timestamp(112, gw_tsval)],
        data,
    );
    let out = run(w, 1_010, ack);
    assert_eq!(out.len(), 1, "the SYN to the server: {out:?}");
    let syn = out.into_iter().next().unwrap();
    assert!(syn.syn && !syn.ack_flag);
    assert_eq!(syn.seq, CLIENT_ISN);
    assert_eq!(
        (syn.mss, syn.wscale, syn.sack_ok, syn.ts),
        (Some(1440 - less), Some(7), true, Some((112, 0)))
    );
    assert!(syn.payload.is_empty());
    assert_eq!(syn.dmac, SERVER_MAC.0);
    assert_eq!(c.event_count(Event::SynproxyOpened), 1);
    assert_eq!(c.event_count(Event::SessionsCreated), 1);
    (Handshake { cookie, gw_tsval, local: syn.src }, syn)
}

/// The server's SYN-ACK (from `rs`), the handshake ACK and the held data
/// it releases, then data both ways with the sequence numbers shifted.
fn splice(w: &mut Worker<Vec<u8>>, h: &Handshake, rs: (IpAddr, u16), data: &[u8]) {
    use TcpOptionElement::*;
    let c = w.engine.counters().clone();
    let sa_opts = [
        MaximumSegmentSize(1400),
        SelectiveAcknowledgementPermitted,
        Timestamp(9000, 112),
        Noop,
        WindowScale(5),
    ];
    let out = run(w, 1_020, tcp(rs, h.local, SERVER_ISN, Some(CLIENT_ISN + 1), true, false, &sa_opts, &[]));
    let n = 1 + usize::from(!data.is_empty());
    assert_eq!(out.len(), n, "the handshake ACK (and the held data): {out:?}");
    let a = &out[0];
    assert_eq!((a.src, a.dst), (h.local, rs));
    assert!(a.ack_flag && !a.syn);
    assert_eq!((a.seq, a.ack), (CLIENT_ISN + 1, SERVER_ISN + 1), "in the server's sequence space");
    assert_eq!(a.ts, Some((112, 9000)), "the client's TSval, the server's echoed");
    assert!(a.payload.is_empty());
    if !data.is_empty() {
        let d = &out[1];
        assert_eq!((d.src, d.dst), (h.local, rs));
        assert_eq!((d.seq, d.ack), (CLIENT_ISN + 1, SERVER_ISN + 1));
        assert_eq!(d.ts, Some((112, 9000)));
        assert_eq!(d.payload, data);
        assert_eq!(c.event_count(Event::SynproxyDataHeld), 1);
    }
    let sent = data.len() as u32;
    // The server's data: to the client in the cookie's sequence space,
    // its TSval in the gateway's clock, its window from scale 5 to 7.
    let reply = tcp(
        rs,
        h.local,
        SERVER_ISN + 1,
        Some(CLIENT_ISN + 1 + sent),
        false,
        false,
        &[Noop, Noop, Timestamp(9010, 113)],
        b"hello client",
    );
    let out = run(w, 1_030, reply);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!((r.src, r.dst, r.dmac), (V(), C(), CLIENT_MAC.0));
    assert_eq!((r.seq, r.ack), (h.cookie.wrapping_add(1), CLIENT_ISN + 1 + sent));
    assert_eq!(r.ts, Some((h.gw_tsval.wrapping_add(10), 113)), "server TSval + (gateway - server)");
    assert_eq!(r.win, 28960 >> 2, "window scale 5 -> 7");
    assert_eq!(r.payload, b"hello client");
    // The client's answer: its ACK up to the server's numbers, its TSecr
    // back to the server's clock.
    let ack = tcp(
        C(),
        V(),
        CLIENT_ISN + 1 + sent,
        Some(h.cookie.wrapping_add(1 + 12)),
        false,
        false,
        &[Noop, Noop, Timestamp(114, h.gw_tsval.wrapping_add(10))],
        b"more",
    );
    let out = run(w, 1_040, ack);
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!((a.src, a.dst), (h.local, rs));
    assert_eq!((a.seq, a.ack), (CLIENT_ISN + 1 + sent, SERVER_ISN + 1 + 12));
    assert_eq!(a.ts, Some((114, 9010)));
    assert_eq!(a.payload, b"more");
    assert_eq!(c.drop_count(Drop::SynproxyPending), 0);
}

#[test]
fn fullnat66_synproxy_handshake_then_spliced_data_both_ways() {
    let mut w = worker(service(IpAddr::V6(RIP6), ForwardMode::FullNat));
    let (h, syn) = open(&mut w, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(syn.src.0, IpAddr::V6(LIP6), "from the IPv6 local address");
    assert_eq!(syn.dst, (IpAddr::V6(RIP6), 8080));
    assert_eq!(syn.hops, 63);
    splice(&mut w, &h, (IpAddr::V6(RIP6), 8080), b"GET / HTTP/1.0\r\n\r\n");
}

#[test]
fn nat64_synproxy_handshake_then_spliced_data_both_ways() {
    let mut w = worker(service(IpAddr::V4(RIP4), ForwardMode::FullNat));
    let (h, syn) = open(&mut w, b"");
    assert_eq!(syn.src.0, IpAddr::V4(LIP4), "translated, from the IPv4 local address");
    assert_eq!(syn.dst, (IpAddr::V4(RIP4), 8080));
    assert_eq!(syn.hops, 63);
    splice(&mut w, &h, (IpAddr::V4(RIP4), 8080), b"");
}

#[test]
fn nat64_synproxy_carries_the_cookie_acks_data_after_the_handshake() {
    let mut w = worker(service(IpAddr::V4(RIP4), ForwardMode::FullNat));
    let (h, _) = open(&mut w, b"early data");
    splice(&mut w, &h, (IpAddr::V4(RIP4), 8080), b"early data");
}

#[test]
fn client_segments_wait_for_the_server_and_its_refusal_resets_the_client() {
    let mut w = worker(service(IpAddr::V6(RIP6), ForwardMode::FullNat));
    let (h, _) = open(&mut w, b"");
    let c = w.engine.counters().clone();
    // Before the server answered: client data waits (it retransmits).
    let early = tcp(C(), V(), CLIENT_ISN + 1, Some(h.cookie.wrapping_add(1)), false, false, &[], b"x");
    assert!(run(&mut w, 1_015, early).is_empty());
    assert_eq!(c.drop_count(Drop::SynproxyPending), 1);
    // The server refuses: the client is reset at the cookie's number.
    let rs = (IpAddr::V6(RIP6), 8080);
    let rst = tcp(rs, h.local, 0, Some(CLIENT_ISN + 1), false, true, &[], &[]);
    let out = run(&mut w, 1_020, rst);
    assert_eq!(out.len(), 1);
    assert!(out[0].rst);
    assert_eq!((out[0].src, out[0].dst), (V(), C()));
    assert_eq!(out[0].seq, h.cookie.wrapping_add(1));
}

/// A lost SYN toward server `rs` (FULLNAT66, or NAT64's IPv4 server):
/// the client's retransmission 200 ms or more later sends it again, as
/// the first was, at most 3 times; a server answer that does not
/// acknowledge it is dropped and sets nothing, the real one splices.
fn lost_syn_and_forged_answers(rs_ip: IpAddr) {
    let mut w = worker(service(rs_ip, ForwardMode::FullNat));
    let (h, first) = open(&mut w, b"");
    let c = w.engine.counters().clone();
    let opts = [TcpOptionElement::Noop, TcpOptionElement::Noop, TcpOptionElement::Timestamp(113, h.gw_tsval)];
    let again = || tcp(C(), V(), CLIENT_ISN + 1, Some(h.cookie.wrapping_add(1)), false, false, &opts, b"x");
    assert!(run(&mut w, 1_100, again()).is_empty(), "100 ms after the SYN: it waits");
    for (k, now) in [1_300, 1_600, 1_900].into_iter().enumerate() {
        let out = run(&mut w, now, again());
        assert_eq!(out.len(), 1, "the SYN again: {out:?}");
        let syn = &out[0];
        assert!(syn.syn && !syn.ack_flag && syn.payload.is_empty());
        assert_eq!((syn.src, syn.dst, syn.seq, syn.hops), (first.src, first.dst, CLIENT_ISN, first.hops));
        assert_eq!(
            (syn.mss, syn.wscale, syn.sack_ok, syn.ts),
            (first.mss, first.wscale, true, Some((113, 0)))
        );
        assert_eq!(c.event_count(Event::SynproxySynResent), k as u64 + 1);
    }
    assert!(run(&mut w, 2_200, again()).is_empty(), "at most 3 times");
    assert_eq!(c.drop_count(Drop::SynproxyPending), 2);
    assert_eq!(c.event_count(Event::SessionsCreated), 1, "one session");
    // Answers that do not acknowledge the SYN: dropped, nothing set.
    let rs = (rs_ip, 8080);
    for (seq, ack, syn, rst) in
        [(5, Some(CLIENT_ISN + 9), true, false), (0, Some(CLIENT_ISN), false, true), (0, None, false, true)]
    {
        assert!(run(&mut w, 2_300, tcp(rs, h.local, seq, ack, syn, rst, &[], &[])).is_empty());
    }
    assert_eq!(c.drop_count(Drop::SynproxyServerAck), 3);
    // The real SYN-ACK: the handshake ACK in the server's space.
    let out = run(&mut w, 2_400, tcp(rs, h.local, SERVER_ISN, Some(CLIENT_ISN + 1), true, false, &[], &[]));
    assert_eq!(out.len(), 1);
    assert!(out[0].ack_flag && !out[0].syn);
    assert_eq!((out[0].seq, out[0].ack), (CLIENT_ISN + 1, SERVER_ISN + 1));
    // Another ISN on a repeated SYN-ACK is not the server's.
    let other = tcp(rs, h.local, SERVER_ISN + 7, Some(CLIENT_ISN + 1), true, false, &[], &[]);
    assert!(run(&mut w, 2_500, other).is_empty());
    assert_eq!(c.drop_count(Drop::SynproxyServerAck), 4);
    // Client data now goes through, spliced.
    let out = run(&mut w, 2_600, again());
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].seq, out[0].ack, out[0].payload.as_slice()),
        (CLIENT_ISN + 1, SERVER_ISN + 1, &b"x"[..])
    );
}

/// Runs the worker's timers at `now`; what they sent.
fn tick(w: &mut Worker<Vec<u8>>, now: u64) -> Vec<Seen> {
    let mut io = Sent::default();
    w.tick(now, &mut io);
    io.0.iter().map(|(_, f)| seen(f)).collect()
}

/// A client that waits for the server to speak first, toward server
/// `rs_ip` (FULLNAT66, or NAT64's IPv4 server): the session's timer sends
/// the lost SYN again 1, 3 and 7 s after the first, as the first was made;
/// the handshake ends 15 s after the first SYN. Another handshake, whose
/// server answers after the first resend, is spliced and resends nothing
/// more.
fn timer_resends(rs_ip: IpAddr) {
    let mut w = worker(service(rs_ip, ForwardMode::FullNat));
    let (_, first) = open(&mut w, b"");
    let c = w.engine.counters().clone();
    let t0 = 1_010;
    assert!(tick(&mut w, t0 + 800).is_empty(), "not yet");
    for (k, at) in [(1, 1_000), (2, 3_000), (3, 7_000)] {
        let out = tick(&mut w, t0 + at + 150);
        assert_eq!(out.len(), 1, "the SYN again at {at} ms: {out:?}");
        let syn = &out[0];
        assert!(syn.syn && !syn.ack_flag && syn.payload.is_empty());
        assert_eq!((syn.src, syn.dst, syn.seq, syn.hops), (first.src, first.dst, CLIENT_ISN, first.hops));
        assert_eq!((syn.mss, syn.wscale, syn.sack_ok, syn.ts), (first.mss, first.wscale, true, first.ts));
        assert_eq!(c.event_count(Event::SynproxySynResent), k);
        assert!(tick(&mut w, t0 + at + 600).is_empty(), "once");
    }
    assert!(tick(&mut w, t0 + 14_700).is_empty());
    assert_eq!(c.event_count(Event::SessionsExpired), 0, "still waiting");
    assert!(tick(&mut w, t0 + 15_300).is_empty());
    assert_eq!(c.event_count(Event::SessionsExpired), 1, "ended 15 s after the first SYN");
    // The server answers after the timer's first resend.
    let mut w = worker(service(rs_ip, ForwardMode::FullNat));
    let (h2, _) = open(&mut w, b"");
    assert_eq!(tick(&mut w, t0 + 1_150).len(), 1);
    let rs = (rs_ip, 8080);
    let sa = tcp(rs, h2.local, SERVER_ISN, Some(CLIENT_ISN + 1), true, false, &[], &[]);
    assert_eq!(run(&mut w, t0 + 1_200, sa).len(), 1, "the handshake ACK");
    for at in [3_150, 7_150, 15_150, 60_000] {
        assert!(tick(&mut w, t0 + at).is_empty(), "nothing at {at} ms");
    }
    let c = w.engine.counters().clone();
    assert_eq!((c.event_count(Event::SynproxySynResent), c.event_count(Event::SessionsExpired)), (1, 0));
}

#[test]
fn fullnat66_the_timer_sends_a_lost_syn_again_for_a_client_that_waits() {
    timer_resends(IpAddr::V6(RIP6));
}

#[test]
fn nat64_the_timer_sends_a_lost_syn_again_for_a_client_that_waits() {
    timer_resends(IpAddr::V4(RIP4));
}

#[test]
fn fullnat66_a_lost_syn_is_sent_again_and_forged_answers_are_dropped() {
    lost_syn_and_forged_answers(IpAddr::V6(RIP6));
}

#[test]
fn nat64_a_lost_syn_is_sent_again_and_forged_answers_are_dropped() {
    lost_syn_and_forged_answers(IpAddr::V4(RIP4));
}

#[test]
fn bad_cookies_and_stray_segments_are_dropped_counted_and_leave_no_state() {
    for rip in [IpAddr::V6(RIP6), IpAddr::V4(RIP4)] {
        let mut w = worker(service(rip, ForwardMode::FullNat));
        let c = w.engine.counters().clone();
        let syn_ack = run(&mut w, 1_000, tcp(C(), V(), CLIENT_ISN, None, true, false, &client_opts(1), &[]));
        let cookie = syn_ack[0].seq;
        // An ACK flood: wrong cookies, a cookie for another tuple or ISN,
        // an expired one, and RST/FIN without a session.
        let cases = [
            // (A cookie one or two higher would only move its MSS index,
            // as Linux's.)
            (C(), CLIENT_ISN + 1, cookie.wrapping_add(0x11), 1_000, false),
            (C(), CLIENT_ISN + 1, cookie ^ 0x0100_0000, 1_000, false),
            ((IpAddr::V6(CIP), CPORT + 1), CLIENT_ISN + 1, cookie.wrapping_add(1), 1_000, false),
            (C(), CLIENT_ISN + 0x0123_4567, cookie.wrapping_add(1), 1_000, false),
            (C(), CLIENT_ISN + 1, cookie.wrapping_add(1), 1_000 + 2 * 60_000, false),
            (C(), CLIENT_ISN + 1, cookie.wrapping_add(1), 1_000, true),
        ];
        for (k, (src, seq, ack, now, rst)) in cases.into_iter().enumerate() {
            let f = tcp(src, V(), seq, Some(ack), false, rst, &[], b"data");
            assert!(run(&mut w, now, f).is_empty(), "case {k}");
        }
        assert_eq!(c.drop_count(Drop::SynproxyBadCookie), cases.len() as u64);
        assert_eq!(c.event_count(Event::SessionsCreated), 0);
        assert_eq!(c.event_count(Event::SynproxyDataHeld), 0);
        // A truncated cookie ACK is malformed, not a panic.
        let mut cut = tcp(C(), V(), CLIENT_ISN + 1, Some(cookie.wrapping_add(1)), false, false, &[], &[]);
        cut.truncate(cut.len() - 6);
        assert!(run(&mut w, 1_000, cut).is_empty());
        assert_eq!(c.event_count(Event::SessionsCreated), 0);
    }
}

#[test]
fn a_syn_flood_from_ipv6_sources_is_answered_with_cookies_and_creates_no_state() {
    let clients: Vec<Ipv6Addr> =
        (0..200u32).map(|k| Ipv6Addr::from(u128::from(CIP) + 0x1_0000 + u128::from(k))).collect();
    let mut w = worker_with(service(IpAddr::V6(RIP6), ForwardMode::FullNat), &clients);
    let c = w.engine.counters().clone();
    for k in 0..2000u32 {
        let src = clients[k as usize % clients.len()];
        // Half of them without any option: the SYN-ACK is longer than
        // the SYN it answers.
        let opts = if k % 2 == 0 { client_opts(k) } else { vec![] };
        let out = run(
            &mut w,
            5_000,
            tcp((IpAddr::V6(src), 1024 + k as u16), V(), k, None, true, false, &opts, &[]),
        );
        assert_eq!(out.len(), 1);
        let sa = &out[0];
        assert_eq!(sa.dst.0, IpAddr::V6(src));
        assert!(sa.syn && sa.ack_flag);
        if k % 2 == 1 {
            // Nothing but the MSS without timestamps (as Linux); the
            // client's unknown MSS is IPv6's 1220, index 0.
            assert_eq!((sa.mss, sa.wscale, sa.sack_ok, sa.ts), (Some(1440), None, false, None));
            let t = sp::Tuple {
                saddr: u128::from(src),
                daddr: u128::from(VIP),
                sport: 1024 + k as u16,
                dport: 80,
            };
            assert_eq!(sp::check(SECRET, &t, k, sa.seq, sp::minute(5_000)), Some(0));
        }
    }
    assert_eq!(c.event_count(Event::SynproxySynAcks), 2000);
    assert_eq!(c.event_count(Event::SessionsCreated), 0);
    assert_eq!(c.event_count(Event::HalfOpen), 0);
}

/// The IPv6 TOA as DPVS writes it (kind 254, length 20, port, address).
fn toa6() -> Vec<u8> {
    let mut t = vec![254, 20];
    t.extend_from_slice(&CPORT.to_be_bytes());
    t.extend_from_slice(&CIP.octets());
    t
}

/// The PROXY header for the IPv6 client and VIP, written out here from
/// haproxy's proxy-protocol.txt (v1: §2.1's TCP6 line; v2: §2.2,
/// AF_INET6 STREAM, 36 address bytes).
fn proxy_hdr(ca: ClientAddr) -> Vec<u8> {
    if ca == ClientAddr::ProxyV1 {
        return b"PROXY TCP6 2001:db8::100 2001:db8::50 40000 80\r\n".to_vec();
    }
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x21, 0, 36]);
    h.extend_from_slice(&CIP.octets());
    h.extend_from_slice(&VIP.octets());
    h.extend_from_slice(&CPORT.to_be_bytes());
    h.extend_from_slice(&80u16.to_be_bytes());
    h
}

/// SYNPROXY with a client-address option on an IPv6 service (FULLNAT66:
/// `rip` IPv6; NAT64: IPv4): the SYN rebuilt from the cookie carries TOA
/// (and the MSS is lowered by the option's or the header's length), the
/// handshake ACK made of the server's SYN-ACK carries TOA or the PROXY
/// header, the data the cookie ACK carried follows with the header in
/// front; then data both ways with the splice and the PROXY shift both
/// applied (client: sequence up by the header, acknowledgement into the
/// server's space; server: sequence into the cookie's space,
/// acknowledgement down by the header). Every frame read by etherparse,
/// its checksums recomputed there.
fn synproxy_with(rip: IpAddr, ca: ClientAddr) {
    use TcpOptionElement::*;
    let mut svc = service(rip, ForwardMode::FullNat);
    svc.client_addr = ca;
    let mut w = worker(svc);
    let c = w.engine.counters().clone();
    let toa = ca == ClientAddr::Toa;
    let hdr = if toa { Vec::new() } else { proxy_hdr(ca) };
    let n = hdr.len() as u32;
    let less = if toa { 20 } else { n as u16 };
    let early = b"GET / HTTP/1.0\r\n\r\n";
    // The longest header of an IPv6 client: v1's 108 bytes, v2's 52.
    let room = match ca {
        ClientAddr::ProxyV1 => 108,
        ClientAddr::ProxyV2 => 52,
        _ => 0,
    };
    let (h, syn) = open_less(&mut w, early, less, room);
    assert_eq!(syn.dst, (rip, 8080));
    assert_eq!(syn.toa, if toa { toa6() } else { vec![] }, "TOA on the SYN toward the server");
    // The server's SYN-ACK: the handshake ACK, then the held data.
    let rs = (rip, 8080);
    let sa_opts = [
        MaximumSegmentSize(1400),
        SelectiveAcknowledgementPermitted,
        Timestamp(9000, 112),
        Noop,
        WindowScale(5),
    ];
    let out =
        run(&mut w, 1_020, tcp(rs, h.local, SERVER_ISN, Some(CLIENT_ISN + 1), true, false, &sa_opts, &[]));
    assert_eq!(out.len(), 2, "the handshake ACK and the held data: {out:?}");
    let a = &out[0];
    assert_eq!((a.src, a.dst), (h.local, rs));
    assert!(a.ack_flag && !a.syn);
    assert_eq!((a.seq, a.ack), (CLIENT_ISN + 1, SERVER_ISN + 1), "in the server's sequence space");
    assert_eq!(a.ts, Some((112, 9000)));
    assert_eq!(a.toa, if toa { toa6() } else { vec![] }, "TOA on the handshake ACK");
    assert_eq!(a.payload, hdr, "the PROXY header with the handshake ACK");
    let d = &out[1];
    assert_eq!((d.src, d.dst), (h.local, rs));
    assert_eq!((d.seq, d.ack), (CLIENT_ISN + 1, SERVER_ISN + 1));
    assert_eq!(d.ts, Some((112, 9000)));
    assert!(d.toa.is_empty());
    assert_eq!(d.payload, [&hdr[..], early].concat(), "the held data after the header");
    let sent = early.len() as u32;
    // The server's answer: its acknowledgement back by the header, its
    // sequence number into the cookie's space.
    let reply = tcp(
        rs,
        h.local,
        SERVER_ISN + 1,
        Some(CLIENT_ISN + 1 + n + sent),
        false,
        false,
        &[Noop, Noop, Timestamp(9010, 113)],
        b"hello client",
    );
    let out = run(&mut w, 1_030, reply);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!((r.src, r.dst), (V(), C()));
    assert_eq!((r.seq, r.ack), (h.cookie.wrapping_add(1), CLIENT_ISN + 1 + sent));
    assert_eq!(r.ts, Some((h.gw_tsval.wrapping_add(10), 113)));
    assert_eq!(r.payload, b"hello client");
    // An acknowledgement inside the header maps to the client's ISN+1.
    let inside = tcp(rs, h.local, SERVER_ISN + 13, Some(CLIENT_ISN + 2), false, false, &[], &[]);
    let out = run(&mut w, 1_031, inside);
    assert_eq!((out[0].seq, out[0].ack), (h.cookie.wrapping_add(13), CLIENT_ISN + 1 + u32::from(toa)));
    // The client's next data: sequence up by the header, its
    // acknowledgement and SACK edges into the server's space.
    let cs = [
        Noop,
        Noop,
        SelectiveAcknowledgement((h.cookie.wrapping_add(20), h.cookie.wrapping_add(30)), [None, None, None]),
    ];
    let more =
        tcp(C(), V(), CLIENT_ISN + 1 + sent, Some(h.cookie.wrapping_add(13)), false, false, &cs, b"more");
    let raw = run_raw(&mut w, 1_040, more);
    assert_eq!(raw.len(), 1);
    let m = seen(&raw[0]);
    assert_eq!((m.src, m.dst), (h.local, rs));
    assert_eq!((m.seq, m.ack), (CLIENT_ISN + 1 + sent + n, SERVER_ISN + 13));
    assert!(m.toa.is_empty());
    assert_eq!(m.payload, b"more");
    let p = SlicedPacket::from_ethernet(&raw[0]).unwrap();
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
    let sack: Vec<_> = t.options_iterator().filter_map(Result::ok).collect();
    assert!(sack.contains(&SelectiveAcknowledgement((SERVER_ISN + 20, SERVER_ISN + 30), [None, None, None])));
    // FULLNAT66: a Packet Too Big from a router on the server's side about
    // that segment reaches the client quoting its own sequence number (the
    // PROXY shift undone; the splice moved none of the client's).
    if let IpAddr::V6(rip6) = rip {
        use etherparse::Icmpv6Type;
        let mut ptb = Vec::new();
        PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
            .ipv6(rip6.octets(), LIP6.octets(), 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut ptb, &raw[0][14..])
            .unwrap();
        let out = run_raw(&mut w, 1_045, ptb);
        assert_eq!(out.len(), 1, "the error goes to the client");
        let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
        let (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) = (&p.net, &p.transport) else {
            panic!("not ICMPv6: {p:?}")
        };
        let hd = ip.header();
        assert_eq!((hd.source_addr(), hd.destination_addr()), (VIP, CIP));
        assert!(icmp.is_checksum_valid(hd.source(), hd.destination()), "ICMPv6 checksum");
        let q = &icmp.payload()[40..48];
        assert_eq!(u16::from_be_bytes([q[0], q[1]]), CPORT, "the client's own segment");
        assert_eq!(u32::from_be_bytes([q[4], q[5], q[6], q[7]]), CLIENT_ISN + 1 + sent);
    }
    // A retransmitted SYN-ACK (the handshake ACK lost) is answered again,
    // after the header, without TOA: the session is established.
    let again = tcp(rs, h.local, SERVER_ISN, Some(CLIENT_ISN + 1), true, false, &sa_opts, &[]);
    let out = run(&mut w, 1_050, again);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].dst, out[0].seq, out[0].ack), (rs, CLIENT_ISN + 1 + n, SERVER_ISN + 1));
    assert!(out[0].ack_flag && !out[0].syn && out[0].toa.is_empty() && out[0].payload.is_empty());
    // Counted as the plain IPv6 path counts them, nothing dropped.
    if toa {
        assert_eq!(c.event_count(Event::ToaAdded), 2, "the SYN and the handshake ACK");
    } else {
        assert_eq!(c.event_count(Event::ProxyHeadersSent), 2, "the handshake ACK and the held data");
    }
    assert_eq!(c.event_count(Event::SynproxyDataHeld), 1);
    for d in [Drop::Ipv6NotHandled, Drop::SynproxyPending, Drop::ProxyHeaderNoRoom, Drop::SynproxyNoRoom] {
        assert_eq!(c.drop_count(d), 0, "{d:?}");
    }
}

#[test]
fn fullnat66_synproxy_with_toa() {
    synproxy_with(IpAddr::V6(RIP6), ClientAddr::Toa);
}

#[test]
fn fullnat66_synproxy_with_proxy_protocol_v1() {
    synproxy_with(IpAddr::V6(RIP6), ClientAddr::ProxyV1);
}

#[test]
fn fullnat66_synproxy_with_proxy_protocol_v2() {
    synproxy_with(IpAddr::V6(RIP6), ClientAddr::ProxyV2);
}

#[test]
fn nat64_synproxy_with_toa() {
    synproxy_with(IpAddr::V4(RIP4), ClientAddr::Toa);
}

#[test]
fn nat64_synproxy_with_proxy_protocol_v1() {
    synproxy_with(IpAddr::V4(RIP4), ClientAddr::ProxyV1);
}

#[test]
fn nat64_synproxy_with_proxy_protocol_v2() {
    synproxy_with(IpAddr::V4(RIP4), ClientAddr::ProxyV2);
}

/// A Packet Too Big from a router on the client's side about a spliced
/// reply reaches the real server quoting the server's own sequence
/// number (FULLNAT66: ICMPv6 from the local address; NAT64: ICMP
/// "fragmentation needed" to the IPv4 server), checksums checked by
/// etherparse.
#[test]
fn an_icmpv6_error_about_a_spliced_reply_quotes_the_servers_sequence_number() {
    use etherparse::{Icmpv4Type, Icmpv6Type};
    let router = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
    for rip in [IpAddr::V6(RIP6), IpAddr::V4(RIP4)] {
        let mut w = worker(service(rip, ForwardMode::FullNat));
        let (h, _) = open(&mut w, b"");
        splice(&mut w, &h, (rip, 8080), b"");
        // Server data (sequence SERVER_ISN + 13) toward the client.
        let data = vec![7u8; 1300];
        let d = tcp((rip, 8080), h.local, SERVER_ISN + 13, Some(CLIENT_ISN + 1), false, false, &[], &data);
        let out = run_raw(&mut w, 1_050, d);
        assert_eq!(out.len(), 1);
        let sent = seen(&out[0]);
        assert_eq!(sent.seq, h.cookie.wrapping_add(13), "in the cookie's space toward the client");
        // The router quotes the reply as it left, and answers its source.
        let mut ptb = Vec::new();
        PacketBuilder::ethernet2(PEER_MAC, GW_MAC.0)
            .ipv6(router.octets(), VIP.octets(), 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut ptb, &out[0][14..14 + 1232])
            .unwrap();
        let out = run_raw(&mut w, 1_060, ptb);
        let c = w.engine.counters().clone();
        let drops: Vec<_> =
            Drop::ALL.iter().filter(|d| c.drop_count(**d) > 0).map(|d| (d, c.drop_count(*d))).collect();
        assert_eq!(out.len(), 1, "the error goes to the real server: {drops:?}");
        let p = SlicedPacket::from_ethernet(&out[0]).unwrap();
        let quote = match (&p.net, &p.transport) {
            (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) => {
                let hd = ip.header();
                assert_eq!((hd.source_addr(), hd.destination_addr()), (LIP6, RIP6));
                assert!(icmp.is_checksum_valid(hd.source(), hd.destination()), "ICMPv6 checksum");
                assert!(matches!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1280 }));
                icmp.payload()[40..48].to_vec()
            }
            (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) => {
                let hd = ip.header().to_header();
                assert_eq!((hd.source, hd.destination), (LIP4.octets(), RIP4.octets()));
                assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(icmp.payload()), "ICMP checksum");
                assert!(matches!(icmp.icmp_type(), Icmpv4Type::DestinationUnreachable(_)));
                icmp.payload()[20..28].to_vec()
            }
            other => panic!("not an ICMP error: {other:?}"),
        };
        assert_eq!(u16::from_be_bytes([quote[0], quote[1]]), 8080, "the server's own packet");
        let seq = u32::from_be_bytes([quote[4], quote[5], quote[6], quote[7]]);
        assert_eq!(seq, SERVER_ISN + 13, "the server's own sequence number, not the client's view");
    }
}

#[test]
fn nat66_synproxy_handshake_then_spliced_data_both_ways() {
    let mut w = worker(service(IpAddr::V6(RIP6), ForwardMode::Masq));
    let (h, syn) = open(&mut w, b"hi");
    assert_eq!(syn.src, C(), "NAT66 keeps the client's address");
    assert_eq!(syn.dst, (IpAddr::V6(RIP6), 8080));
    splice(&mut w, &h, (IpAddr::V6(RIP6), 8080), b"hi");
}

/// The held-data slots are shared with IPv4, an IPv6 owner tagged
/// ([`sp::V6_OWNER`]): with every slot held by a live IPv6 handshake the
/// data is left to the client; once those sessions expired, their slots
/// are taken over, and the data reaches the server after the handshake.
#[test]
fn held_data_slots_of_expired_ipv6_handshakes_are_taken_over() {
    let probe = engine(service(IpAddr::V6(RIP6), ForwardMode::FullNat), 0, 1);
    let cfg =
        EngineConfig { sessions6: 256, half_open_max: 256, half_open_max6: 256, ..probe.config().clone() };
    let e = Engine::new(cfg, probe.snapshot().clone(), Arc::new(WorkerCounters::new(0, 0, 1, 4)), 0);
    let neigh =
        NeighConfig { capacity: 16, per_port_max: 16, reachable_ms: 30_000, retry_ms: 1000, max_probes: 3 };
    let n6 = |ip: Ipv6Addr, mac| StaticNeigh { port: 0, ip: u128::from(ip), mac };
    let mut w = Worker::new(e, neigh).with_static_neighbours6(Arc::new(StaticNeighbours::new(vec![
        n6(CIP, CLIENT_MAC),
        n6(RIP6, SERVER_MAC),
    ])));
    let c = w.engine.counters().clone();
    // A handshake from client port `port` at `now` whose cookie ACK carries
    // data: the SYN that reached the server.
    let connect = |w: &mut Worker<Vec<u8>>, port: u16, now: u64| {
        let cl = (IpAddr::V6(CIP), port);
        let sa = run(w, now, tcp(cl, V(), CLIENT_ISN, None, true, false, &client_opts(1), &[]));
        let ack = tcp(cl, V(), CLIENT_ISN + 1, Some(sa[0].seq.wrapping_add(1)), false, false, &[], b"data");
        let out = run(w, now, ack);
        assert_eq!(out.len(), 1, "the SYN toward the server");
        out.into_iter().next().unwrap()
    };
    for k in 0..sp::HOLD_SLOTS as u16 {
        connect(&mut w, 30000 + k, 1_000);
    }
    assert_eq!(c.event_count(Event::SynproxyDataHeld), sp::HOLD_SLOTS as u64);
    connect(&mut w, 29999, 1_000);
    assert_eq!(c.event_count(Event::SynproxyDataRetransmit), 1, "every slot held by a live handshake");
    // The servers never answer: the half-open sessions expire.
    let mut io = Sent::default();
    for now in (10_000..=600_000).step_by(10_000) {
        w.tick(now, &mut io);
    }
    assert_eq!(c.event_count(Event::SessionsLive), 0, "all expired");
    let syn = connect(&mut w, 29998, 600_000);
    assert_eq!(c.event_count(Event::SynproxyDataHeld), sp::HOLD_SLOTS as u64 + 1, "a dead owner's slot");
    // The server answers: the handshake ACK, then the data it held.
    let rs = (IpAddr::V6(RIP6), 8080);
    let sa = tcp(rs, syn.src, SERVER_ISN, Some(CLIENT_ISN + 1), true, false, &[], &[]);
    let out = run(&mut w, 600_010, sa);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!((out[1].dst, out[1].seq, out[1].ack), (rs, CLIENT_ISN + 1, SERVER_ISN + 1));
    assert_eq!(out[1].payload, b"data");
}
