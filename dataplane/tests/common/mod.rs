//! The shared lab (`dataplane::testing`: a worker with two ports driven
//! through `Worker<Vec<u8>>`, a driven clock, the same control-plane code
//! gatewayd runs) and the frames these tests build with the independent
//! `etherparse` crate.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use gw_core::wire::ethernet::MacAddr;

pub use dataplane::testing::*;

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
    let mut out = vec![];
    PacketBuilder::ethernet2(src_mac, dst_mac.0)
        .ipv4(s.0, d.0, 64)
        .udp(s.1, d.1)
        .write(&mut out, b"ping")
        .unwrap();
    out
}
