//! The tunnel headers of TUN (`-i`) between the outer IP header and the
//! inner packet, per real server (`--tun-type`, proto's [`TunnelEncap`]),
//! as IPVS writes them (`ip_vs_xmit.c`: `ipvs_gue_encap`, `ipvs_gre_encap`):
//!
//! - ipip: nothing; the outer protocol is 4 (IPv4 inner) or 41 (IPv6).
//! - gue: UDP (RFC 768) to the server's tun-port, from a source port the
//!   flow's hash picks in Linux's default ephemeral range (as the kernel's
//!   `udp_flow_src_port`, so a server's RSS spreads flows and each flow's
//!   packets stay in order), then the 4-byte GUE header
//!   (draft-ietf-intarea-gue §3.1, variant 0): version 0, C 0, Hlen 0,
//!   Proto/ctype 4 or 41, flags 0. The UDP checksum is sent with
//!   `--tun-csum` and `--tun-remcsum`, else 0 (over IPv6 too: RFC 6935's
//!   zero-checksum tunnels, as the kernel's `udp6_set_csum`).
//!   `--tun-remcsum` (remote checksum offload) adds its option only to a
//!   packet whose inner checksum is left to offload (`CHECKSUM_PARTIAL`),
//!   which a forwarded packet never is: the kernel then sends exactly what
//!   `--tun-csum` sends, and so does gatewayd.
//! - gre: the GRE header (RFC 2784 §2): flags and version 0 and the
//!   protocol type 0x0800 or 0x86DD, 4 bytes; with `--tun-csum` the C bit
//!   and the checksum over the GRE header and the inner packet (§2.5), then
//!   16 reserved bits, 8 bytes.
//!
//! The tunnel MTU loses [`overhead`] bytes more than ipip's.

use gw_proto::{TunnelCsum, TunnelEncap};

use crate::wire::{checksum, udp};

/// Length of the GUE header (variant 0, no optional fields).
pub const GUE_LEN: usize = 4;
/// Length of the GRE header without and with the checksum field.
pub const GRE_LEN: usize = 4;
pub const GRE_CSUM_LEN: usize = 8;
/// The GRE C (checksum present) bit of the flags word (RFC 2784 §2).
pub const GRE_FLAG_CSUM: u16 = 0x8000;
/// IP protocol numbers of the outer header.
pub const PROTO_IPIP: u8 = 4;
pub const PROTO_IPV6: u8 = 41;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_GRE: u8 = 47;
/// Linux's default `net.ipv4.ip_local_port_range`, where
/// `udp_flow_src_port` picks GUE's source port.
pub const SPORT_MIN: u16 = 32768;
pub const SPORT_MAX: u16 = 60999;

/// Bytes of tunnel header after the outer IP header.
#[inline]
pub fn overhead(t: TunnelEncap) -> usize {
    match t {
        TunnelEncap::Ipip => 0,
        TunnelEncap::Gue { .. } => udp::HEADER_LEN + GUE_LEN,
        TunnelEncap::Gre { csum: TunnelCsum::NoCsum } => GRE_LEN,
        TunnelEncap::Gre { .. } => GRE_CSUM_LEN,
    }
}

/// The outer header's protocol (next header) for an inner IPv6 packet or
/// not.
#[inline]
pub fn outer_proto(t: TunnelEncap, inner_v6: bool) -> u8 {
    match t {
        TunnelEncap::Ipip if inner_v6 => PROTO_IPV6,
        TunnelEncap::Ipip => PROTO_IPIP,
        TunnelEncap::Gue { .. } => PROTO_UDP,
        TunnelEncap::Gre { .. } => PROTO_GRE,
    }
}

/// Whether the outer UDP header of a GUE tunnel carries a checksum.
#[inline]
pub fn udp_csum(t: TunnelEncap) -> bool {
    matches!(t, TunnelEncap::Gue { csum: TunnelCsum::Csum | TunnelCsum::RemCsum, .. })
}

/// GUE's UDP source port for the inner packet `inner` (an IPv4 or IPv6
/// packet): a hash of its addresses, protocol and first four transport
/// bytes (the ports of TCP and UDP), scaled into
/// [`SPORT_MIN`]`..`[`SPORT_MAX`] as `udp_flow_src_port` scales its hash.
/// Reads only the headers, which the caller checked.
#[inline]
pub fn flow_port(inner: &[u8], inner_v6: bool) -> u16 {
    let (addrs, proto, l4) = if inner_v6 {
        (inner.get(8..40), inner.get(6).copied(), 40)
    } else {
        let ihl = usize::from(inner.first().map_or(5, |b| b & 0x0f)) * 4;
        (inner.get(12..20), inner.get(9).copied(), ihl)
    };
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(proto.unwrap_or(0));
    let mut mix = |w: u64| h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    for c in addrs.unwrap_or(&[]).chunks_exact(4) {
        mix(u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])));
    }
    if let Some(p) = inner.get(l4..l4 + 4) {
        mix(u64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]])));
    }
    let hash = (h ^ (h >> 32)) as u32;
    let hash = hash ^ (hash << 16);
    SPORT_MIN + ((u64::from(hash) * u64::from(SPORT_MAX - SPORT_MIN)) >> 32) as u16
}

/// Writes the tunnel header of `t` at the front of `buf`, which holds
/// [`overhead`]`(t)` free bytes and then the inner packet to its end.
/// GUE's UDP checksum is left 0: the caller fills it once the outer
/// addresses are known ([`fill_udp_checksum`]). ipip writes nothing.
pub fn write_header(t: TunnelEncap, buf: &mut [u8], inner_v6: bool, sport: u16) {
    match t {
        TunnelEncap::Ipip => {}
        TunnelEncap::Gue { port, .. } => {
            let len = buf.len() as u16;
            let mut u = udp::Packet::new_unchecked(&mut buf[..]);
            u.set_src_port(sport);
            u.set_dst_port(port);
            u.set_len(len);
            u.set_checksum(0);
            let g = &mut buf[udp::HEADER_LEN..udp::HEADER_LEN + GUE_LEN];
            // Version 0, C 0, Hlen 0; Proto/ctype; flags 0 (§3.1).
            g.copy_from_slice(&[0, if inner_v6 { PROTO_IPV6 } else { PROTO_IPIP }, 0, 0]);
        }
        TunnelEncap::Gre { csum } => {
            let ether_type: u16 = if inner_v6 { 0x86dd } else { 0x0800 };
            let [t0, t1] = ether_type.to_be_bytes();
            if csum == TunnelCsum::NoCsum {
                buf[..GRE_LEN].copy_from_slice(&[0, 0, t0, t1]);
                return;
            }
            let [f0, f1] = GRE_FLAG_CSUM.to_be_bytes();
            buf[..GRE_CSUM_LEN].copy_from_slice(&[f0, f1, t0, t1, 0, 0, 0, 0]);
            // RFC 2784 §2.5: over the GRE header and the payload packet,
            // the checksum field 0 while it is computed.
            let c = checksum::checksum(buf);
            buf[4..6].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// Fills GUE's UDP checksum of `dgram` (the UDP header to the end of the
/// inner packet) over the pseudo header `pseudo`
/// ([`checksum::pseudo_header`] or `pseudo_header_v6`), when the tunnel
/// asks for one (0xffff for a computed 0, RFC 768).
#[inline]
pub fn fill_udp_checksum(t: TunnelEncap, dgram: &mut [u8], pseudo: u32) {
    if !udp_csum(t) {
        return;
    }
    let c = !checksum::fold(pseudo + checksum::sum(dgram));
    let c = if c == 0 { 0xffff } else { c };
    dgram[udp::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overheads_are_the_kernels() {
        use TunnelCsum::*;
        assert_eq!(overhead(TunnelEncap::Ipip), 0);
        for csum in [NoCsum, Csum, RemCsum] {
            assert_eq!(overhead(TunnelEncap::Gue { port: 1, csum }), 12, "udphdr + guehdr");
        }
        assert_eq!(overhead(TunnelEncap::Gre { csum: NoCsum }), 4, "gre_calc_hlen(0)");
        assert_eq!(overhead(TunnelEncap::Gre { csum: Csum }), 8, "gre_calc_hlen(TUNNEL_CSUM)");
    }

    #[test]
    fn the_source_port_stays_in_the_range_and_follows_the_flow() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000u32 {
            let mut p = [0u8; 24];
            p[0] = 0x45;
            p[9] = 6;
            p[12..16].copy_from_slice(&(0xc612_0000 + i).to_be_bytes());
            p[16..20].copy_from_slice(&[198, 18, 0, 100]);
            p[20..24].copy_from_slice(&[0x9c, 0x40, 0, 80]);
            let a = flow_port(&p, false);
            assert!((SPORT_MIN..SPORT_MAX).contains(&a), "{a}");
            assert_eq!(a, flow_port(&p, false), "the same flow, the same port");
            seen.insert(a);
        }
        assert!(seen.len() > 1900, "flows spread over the range: {} ports for 2000 flows", seen.len());
        // Truncated input does not panic.
        assert!((SPORT_MIN..SPORT_MAX).contains(&flow_port(&[0x45], false)));
        assert!((SPORT_MIN..SPORT_MAX).contains(&flow_port(&[], true)));
    }
}
