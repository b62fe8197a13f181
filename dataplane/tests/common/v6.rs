//! The IPv6 fixtures of the worker tests (ipv6_modes, icmp6, fragments):
//! the addresses of an IPv6 service, a neighbour solicitation built by
//! etherparse, and a lab with one IPv6 service per protocol.

use std::net::{IpAddr, Ipv6Addr};

use etherparse::{Icmpv6Type, PacketBuilder};
use gw_core::wire::ipv6;
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec};

use super::*;

/// A client beyond the router on port 0.
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 9);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);
/// FULLNAT66's local address.
pub const LIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x60);
pub const RS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);

/// The IPv6 service [VIP6]:[VPORT] of `proto`.
pub fn key6(proto: Protocol) -> ServiceKey {
    ServiceKey { proto, addr: IpAddr::V6(VIP6), port: VPORT }
}

/// A neighbour solicitation from `src` (at `mac`) for the port's address.
pub fn ns(mac: [u8; 6], src: Ipv6Addr) -> Vec<u8> {
    ns_for(mac, src, GW_OUT_ADDR6)
}

/// A neighbour solicitation from `src` (at `mac`) for `target`.
pub fn ns_for(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = ipv6::solicited_node(target);
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&mac);
    let mut out = vec![];
    PacketBuilder::ethernet2(mac, ipv6::multicast_mac(group).0)
        .ipv6(src.octets(), group.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown { type_u8: 135, code_u8: 0, bytes5to8: [0; 4] })
        .write(&mut out, &body)
        .unwrap();
    out
}

/// A neighbour advertisement from `addr` at `mac` to port 0's address,
/// with `flags` (R 0x80, S 0x40, O 0x20) and the target link-layer option.
pub fn na(mac: [u8; 6], addr: Ipv6Addr, flags: u8) -> Vec<u8> {
    let mut body = addr.octets().to_vec();
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&mac);
    let mut out = vec![];
    PacketBuilder::ethernet2(mac, GW_OUT.0)
        .ipv6(addr.octets(), GW_OUT_ADDR6.octets(), 255)
        .icmpv6(Icmpv6Type::Unknown { type_u8: 136, code_u8: 0, bytes5to8: [flags, 0, 0, 0] })
        .write(&mut out, &body)
        .unwrap();
    out
}

/// An echo request from `src` to port 0's IPv6 address, through the router.
pub fn echo_request(src: Ipv6Addr) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
        .ipv6(src.octets(), GW_OUT_ADDR6.octets(), 60)
        .icmpv6_echo_request(0x42, 1)
        .write(&mut out, b"through the router")
        .unwrap();
    out
}

/// A UDP datagram `s -> d` carrying "datagram", from `mac` to port 0.
pub fn udp6(mac: [u8; 6], s: (Ipv6Addr, u16), d: (Ipv6Addr, u16)) -> Vec<u8> {
    let mut out = vec![];
    PacketBuilder::ethernet2(mac, GW_OUT.0)
        .ipv6(s.0.octets(), d.0.octets(), 64)
        .udp(s.1, d.1)
        .write(&mut out, b"datagram")
        .unwrap();
    out
}

/// A lab with `workers` workers (this one is worker 0), one IPv6 service
/// per protocol on [VIP6]:80 with the real server [RS6]:8080 of `mode`
/// (and, FULLNAT, the local address [LIP6]); the router and the real
/// server known as neighbours (each answered our solicitation).
pub fn lab6(mode: ForwardMode, workers: u32) -> Lab {
    lab6_from(mode, LabConfig { workers, ..LabConfig::default() })
}

/// [lab6] from `cfg` (e.g. a larger session table).
pub fn lab6_from(mode: ForwardMode, cfg: LabConfig) -> Lab {
    let mut lab = cfg.build();
    for proto in [Protocol::Tcp, Protocol::Udp] {
        lab.ok(Request::AddService { spec: ServiceSpec::new(key6(proto), Scheduler::Rr) });
        lab.ok(Request::AddDest { service: key6(proto), dest: DestSpec::new(RS6, 8080, mode, 1) });
        if mode == ForwardMode::FullNat {
            lab.ok(Request::AddLaddr { service: key6(proto), addr: LIP6.into() });
        }
    }
    for (mac, addr) in [(ROUTER_MAC, ROUTER6), (RS_MAC[0], RS6)] {
        assert_eq!(lab.rx(0, ns(mac, addr)).len(), 1, "the solicitation is answered");
    }
    lab
}
