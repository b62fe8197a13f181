//! The shared lab (`dataplane::testing`: a worker with two ports driven
//! through `Worker<Vec<u8>>`, a driven clock, the same control-plane code
//! gatewayd runs) and the frames these tests build with the independent
//! `etherparse` crate.
#![allow(dead_code)]

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep};
use gw_core::wire::ethernet::MacAddr;

pub use dataplane::testing::*;

pub mod v6;

pub fn arp_reply(mac: [u8; 6], ip: [u8; 4], to_mac: MacAddr, to_ip: [u8; 4]) -> Vec<u8> {
    let mut f = arp_request(mac, ip, to_ip);
    f[0..6].copy_from_slice(&to_mac.0);
    f[21] = 2;
    f[32..38].copy_from_slice(&to_mac.0);
    f
}

pub fn tcp(
    src_mac: [u8; 6],
    dst_mac: MacAddr,
    s: ([u8; 4], u16),
    d: ([u8; 4], u16),
    syn: bool,
    ack: bool,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac.0).ipv4(s.0, d.0, 64).tcp(s.1, d.1, 1000, 64000);
    let b = if syn { b.syn() } else { b };
    let b = if ack { b.ack(1) } else { b };
    let mut out = vec![];
    b.write(&mut out, if syn { &[] } else { b"data" }).unwrap();
    out
}

pub fn udp(src_mac: [u8; 6], dst_mac: MacAddr, s: ([u8; 4], u16), d: ([u8; 4], u16)) -> Vec<u8> {
    udp_ttl(src_mac, dst_mac, s, d, 64)
}

/// [`udp`] with TTL `ttl`.
pub fn udp_ttl(src_mac: [u8; 6], dst_mac: MacAddr, s: ([u8; 4], u16), d: ([u8; 4], u16), ttl: u8) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(src_mac, dst_mac.0)
        .ipv4(s.0, d.0, ttl)
        .udp(s.1, d.1)
        .write(&mut out, b"ping")
        .unwrap();
    out
}

/// A TCP segment for [`segment`]: the fields the client-address and
/// SYNPROXY tests set; `win` 0 is a window of 64000.
#[derive(Clone, Copy, Default)]
pub struct Seg<'a> {
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub win: u16,
    pub opts: &'a [etherparse::TcpOptionElement],
    pub data: &'a [u8],
}

/// The frame of segment `s` from `src` to `dst`, built with etherparse.
pub fn segment(sm: [u8; 6], dm: [u8; 6], src: ([u8; 4], u16), dst: ([u8; 4], u16), s: Seg<'_>) -> Vec<u8> {
    tcp_frame(PacketBuilder::ethernet2(sm, dm).ipv4(src.0, dst.0, 64), (src.1, dst.1), s)
}

/// [`segment`] over IPv6 (hop limit 64).
pub fn segment6(sm: [u8; 6], dm: [u8; 6], src: ([u8; 16], u16), dst: ([u8; 16], u16), s: Seg<'_>) -> Vec<u8> {
    tcp_frame(PacketBuilder::ethernet2(sm, dm).ipv6(src.0, dst.0, 64), (src.1, dst.1), s)
}

/// Segment `s` from port `sport` to `dport` on the IP step `ip`.
fn tcp_frame(ip: PacketBuilderStep<IpHeaders>, (sport, dport): (u16, u16), s: Seg<'_>) -> Vec<u8> {
    let win = if s.win == 0 { 64000 } else { s.win };
    let b = ip.tcp(sport, dport, s.seq, win);
    let b = if s.syn { b.syn() } else { b };
    let b = if s.fin { b.fin() } else { b };
    let b = if s.rst { b.rst() } else { b };
    let b = match s.ack {
        Some(a) => b.ack(a),
        None => b,
    };
    let b = b.options(s.opts).unwrap();
    let mut out = vec![];
    b.write(&mut out, s.data).unwrap();
    out
}

/// The one TCP frame sent, checked ([`check_sent`]) and read back with
/// etherparse: its port, addresses, header fields, options and payload.
#[derive(Debug)]
pub struct Got {
    pub port: u16,
    pub src: ([u8; 4], u16),
    pub dst: ([u8; 4], u16),
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub ackf: bool,
    pub rst: bool,
    pub win: u16,
    /// The options etherparse knows (it does not know TOA's kind 254).
    pub opts: Vec<etherparse::TcpOptionElement>,
    pub raw_opts: Vec<u8>,
    pub payload: Vec<u8>,
}

pub fn one(out: Vec<(u16, Vec<u8>)>) -> Got {
    assert_eq!(out.len(), 1, "one frame sent");
    let (port, f) = &out[0];
    check_sent(*port, f, true);
    let p = etherparse::SlicedPacket::from_ethernet(f).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    let Some(etherparse::TransportSlice::Tcp(t)) = &p.transport else { panic!() };
    Got {
        port: *port,
        src: (ip.header().source(), t.source_port()),
        dst: (ip.header().destination(), t.destination_port()),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        syn: t.syn(),
        ackf: t.ack(),
        rst: t.rst(),
        win: t.window_size(),
        opts: t.options_iterator().filter_map(Result::ok).collect(),
        raw_opts: t.options().to_vec(),
        payload: t.payload().to_vec(),
    }
}

pub fn mss(opts: &[etherparse::TcpOptionElement]) -> Option<u16> {
    opts.iter().find_map(|o| match o {
        etherparse::TcpOptionElement::MaximumSegmentSize(m) => Some(*m),
        _ => None,
    })
}
