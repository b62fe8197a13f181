//! NAT64 header translation: IPv6 <-> IPv4 as RFC 7915 ("SIIT") describes
//! it, for the NAT64 mode (an IPv6 VIP in front of IPv4 real servers, the
//! FULLNAT shape DPVS uses: the IPv4 side talks to a local address).
//!
//! Pure functions over a byte buffer; no allocation, no state. The caller
//! (the session) gives the addresses and ports of the translated packet
//! ([`Ends`]): IPv6 client and VIP on one side, IPv4 local address and real
//! server on the other; an RFC 6052 prefix is not needed, but the helpers
//! [`embed`] and [`extract`] map addresses through one for a caller that
//! wants it.
//!
//! # Buffer layout
//!
//! `buf[start..]` holds the IP packet (no Ethernet header). The upper-layer
//! bytes (TCP/UDP header and payload, or the bytes an ICMP error quotes
//! after its inner IP header) **stay where they are**; the new IP
//! header(s) are written in front of them. The result ([`Translated`])
//! says where the translated packet starts and how long it is:
//!
//! - IPv6 -> IPv4 ([`to_ipv4`]) shrinks: the IPv4 packet starts after
//!   `start` (20 bytes later for a plain IPv6 header, more with extension
//!   headers). No headroom is needed.
//! - IPv4 -> IPv6 ([`to_ipv6`]) grows by 20 bytes (28 with a fragment
//!   header, minus any IPv4 options); an ICMP error grows by twice that
//!   (outer and quoted header). `start` must leave that much room in
//!   front, else [`Error::Headroom`]; the worker keeps mbuf headroom for it
//!   (`rte_pktmbuf_prepend`, as TUN's outer header).
//!
//! Bytes after the packet's own length (Ethernet padding) are ignored and
//! not part of the result. On an error the buffer is unchanged.
//!
//! [`frame_to_ipv4`] and [`frame_to_ipv6`] do the same over an Ethernet
//! frame in a [`PacketBuf`] (an mbuf): the Ethernet header follows the IP
//! header, and the buffer is cut (`adj`, `truncate`) or grown (`prepend`)
//! to the new frame.
//!
//! # What is translated (RFC 7915 §4, §5)
//!
//! - Traffic class <-> type of service copied; the flow label becomes 0.
//! - Hop limit <-> TTL copied: the caller (a router) decrements it before
//!   or after, as for every routed mode.
//! - Payload length <-> total length; next header <-> protocol, ICMPv6 (58)
//!   <-> ICMP (1). Only TCP, UDP and ICMP are translated
//!   ([`Error::Untranslatable`] otherwise: a load balancer has no session
//!   for anything else).
//! - IPv6 extension headers are walked ([`ipv6::Packet::transport`]) and
//!   dropped; a routing header with segments left is untranslatable
//!   (§5.1). IPv4 options are dropped; an unexpired source route option is
//!   untranslatable (§4.1).
//! - IPv6 -> IPv4 without a fragment header: ID from the caller
//!   ([`To4::ident`], a per-worker counter), MF clear, DF set when the
//!   IPv4 packet is longer than 1260 bytes (RFC 7915 §5.1: smaller ones may
//!   be fragmented by IPv4 routers, so a host that only lowers its MTU to
//!   1280 still gets through). With a fragment header (§5.1.1): ID from its
//!   low 16 bits, MF and offset copied, DF clear.
//! - IPv4 -> IPv6: a fragment (MF or a non-zero offset) gets a fragment
//!   header (ID, offset, M copied, §4.1); an unfragmented packet gets none,
//!   DF or not (RFC 8021: no atomic fragments). A DF-clear packet larger
//!   than the IPv6 path is the caller's MTU decision.
//! - TCP/UDP checksums are updated incrementally (RFC 1624) for the
//!   pseudo-header change and the port rewrite in one [`Delta`]. An IPv4
//!   UDP datagram with checksum 0 gets a computed one (IPv6 requires it,
//!   §4.5); if it is fragmented it cannot be computed: [`Error::Fragmented`].
//!   A non-first fragment carries no upper-layer header: only the IP header
//!   is translated.
//! - ICMP <-> ICMPv6 (§4.2, §5.2): echo request/reply; destination
//!   unreachable codes, Packet Too Big <-> fragmentation needed (the MTU
//!   moved by 20, 28 with a fragment header, capped by [`To4::mtu`] /
//!   [`To6::mtu`], an IPv4 MTU of 0 replaced by the RFC 1191 plateau below
//!   the quoted length, an IPv6 MTU never below 1280), time exceeded,
//!   parameter problem with the pointer mapped; everything else is
//!   untranslatable. An error's quoted packet is translated too, with the
//!   addresses and ports the caller gives ([`To4::inner`]); a translated
//!   ICMPv6 error is cut to 1280 bytes. The incoming ICMP checksum must
//!   verify ([`Error::Checksum`]); the outgoing one is computed over the
//!   whole message. Fragmented ICMP is not translated.
//!
//! The IPv4 header checksum of the input is the caller's to check (the
//! engine does it for every IPv4 packet) and is not read here (the engine
//! decrements a reply's TTL without updating it); the output's is computed.
//!
//! # Cost
//!
//! Almost every packet is a session's TCP/UDP packet with nothing to walk:
//! an IPv6 header whose next header is TCP or UDP, an IPv4 header without
//! options that is not a fragment. [`to_ipv4`] and [`to_ipv6`] first try
//! that case (`plain_to_ipv4`, `plain_to_ipv6`): the fixed header read
//! once behind one bounds check, the pseudo-header change of the L4
//! checksum summed from the 32- and 64-bit words of both address pairs
//! without folding to 16 bits (`pseudo_6to4`) and applied with the port
//! change in one RFC 1624 update, the new header written as whole words.
//! Anything else (extension headers, options, fragments, ICMP, a short
//! segment, a UDP checksum of 0, too little headroom) takes the general
//! translation, which does the same for these packets byte for byte (a
//! property test holds the two equal).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::checksum::{self, Delta};
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{ipv4, ipv6, read_u16, read_u32, write_u16, write_u32};
use crate::worker::PacketBuf;

const ETH_LEN: usize = ethernet::HEADER_LEN;

/// Why a packet was not translated. Each is a counted drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The headers do not parse (truncated, bad version, bad lengths).
    Malformed,
    /// An ICMP message whose checksum does not verify.
    Checksum,
    /// RFC 7915 has no translation for it (a protocol other than TCP, UDP
    /// or ICMP; an ICMP type or code without a counterpart; a source route
    /// or a routing header with segments left; an error quoting something
    /// other than TCP/UDP, or an error with no [`To4::inner`]).
    Untranslatable,
    /// A fragmented ICMP message, or an IPv4 UDP fragment with checksum 0.
    Fragmented,
    /// The IPv4 packet would exceed 65535 bytes.
    TooBig,
    /// Not enough room in front of `start` for the IPv6 header(s).
    Headroom,
}

/// Addresses and ports a translated packet gets (the session's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends<A> {
    /// Source address.
    pub src: A,
    /// Source port (TCP/UDP; ignored for ICMP).
    pub sport: u16,
    /// Destination address.
    pub dst: A,
    /// Destination port (TCP/UDP; ignored for ICMP).
    pub dport: u16,
}

/// Parameters of an IPv6 -> IPv4 translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct To4 {
    /// The IPv4 packet's addresses and ports.
    pub ends: Ends<Ipv4Addr>,
    /// For an ICMP error: the quoted packet's addresses and ports, as they
    /// must read on the IPv4 side. `None` makes an error untranslatable.
    pub inner: Option<Ends<Ipv4Addr>>,
    /// IPv4 identification for a packet without a fragment header.
    pub ident: u16,
    /// Upper bound of the MTU a translated Packet Too Big reports (the
    /// IPv4 next hop's MTU); `u16::MAX` for none.
    pub mtu: u16,
    /// The TCP/UDP checksum's change for a packet whose addresses and
    /// ports are known to be this translation's own (a session's packet:
    /// [`l4_change`] of its ends and [`To4::ends`]), folded as
    /// [`Delta::folded`]: the common packet's translation then does not
    /// sum the addresses. `None` to compute it from the packet.
    pub l4_change: Option<u16>,
}

/// Parameters of an IPv4 -> IPv6 translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct To6 {
    /// The IPv6 packet's addresses and ports.
    pub ends: Ends<Ipv6Addr>,
    /// For an ICMP error: the quoted packet's addresses and ports, as they
    /// must read on the IPv6 side. `None` makes an error untranslatable.
    pub inner: Option<Ends<Ipv6Addr>>,
    /// Upper bound of the MTU a translated fragmentation-needed reports
    /// (the IPv6 next hop's MTU); `u16::MAX` for none.
    pub mtu: u16,
    /// As [`To4::l4_change`], the other way: a session's reply, whose
    /// change is the client side's undone (its complement).
    pub l4_change: Option<u16>,
}

/// Where the translated packet is: `buf[start..start + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translated {
    /// Offset of the new IP header in the buffer.
    pub start: usize,
    /// Length of the translated packet.
    pub len: usize,
}

/// The largest IPv4 packet translated from IPv6 that still leaves DF
/// clear (RFC 7915 §5.1): 1280 minus the 20 bytes the header grows by.
pub const DF_THRESHOLD: usize = 1260;
/// An ICMPv6 error is at most the IPv6 minimum MTU (RFC 4443 §2.4(c)).
pub const MAX_ICMPV6_ERROR: usize = ipv6::MIN_MTU as usize;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;
const PROTO_FRAGMENT: u8 = 44;
const PROTO_ROUTING: u8 = 43;
const PROTO_AH: u8 = 51;

const ICMP_HEADER_LEN: usize = 8;
const IPV4_LEN: usize = ipv4::MIN_HEADER_LEN;
const IPV6_LEN: usize = ipv6::HEADER_LEN;
const FRAG_LEN: usize = ipv6::FRAG_HEADER_LEN;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;

/// RFC 1191 §7 plateau table, for a fragmentation-needed with MTU 0.
const PLATEAUS: [u16; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// The fixed fields of an IPv4 header, written in one go.
struct Hdr4 {
    tos: u8,
    total_len: u16,
    ident: u16,
    flags_off: u16,
    ttl: u8,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

impl Hdr4 {
    /// Writes the header as five 32-bit words, its checksum computed from
    /// them (RFC 1071; the sum of the 32-bit words folds to the sum of the
    /// 16-bit ones), not read back from the bytes.
    #[inline(always)]
    fn emit(&self, out: &mut [u8]) {
        let (src, dst) = (u32::from(self.src), u32::from(self.dst));
        let w0 = 0x4500_0000 | u32::from(self.tos) << 16 | u32::from(self.total_len);
        let w1 = u32::from(self.ident) << 16 | u32::from(self.flags_off);
        let w2 = u32::from(self.ttl) << 24 | u32::from(self.proto) << 16;
        let s = u64::from(w0) + u64::from(w1) + u64::from(w2) + u64::from(src) + u64::from(dst);
        let s = (s & 0xffff_ffff) + (s >> 32);
        let c = !checksum::fold(s as u32);
        let h = &mut out[..IPV4_LEN];
        for (at, w) in [w0, w1, w2 | u32::from(c), src, dst].into_iter().enumerate() {
            write_u32(&mut h[4 * at..4 * at + 4], w);
        }
    }
}

/// The fields of an IPv6 header (and fragment header) written in one go.
struct Hdr6 {
    tc: u8,
    payload_len: u16,
    next: u8,
    hop: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    /// `(offset in bytes | M, identification)` of a fragment header that
    /// follows the fixed header, whose next header is then `next`.
    frag: Option<(u16, u32)>,
}

impl Hdr6 {
    fn len(&self) -> usize {
        IPV6_LEN + if self.frag.is_some() { FRAG_LEN } else { 0 }
    }

    /// Writes the header as two 32-bit words and the two addresses (and
    /// the fragment header as two more words).
    #[inline(always)]
    fn emit(&self, out: &mut [u8]) {
        use ipv6::field;
        let next = if self.frag.is_some() { PROTO_FRAGMENT } else { self.next };
        let w0 = 6u32 << 28 | u32::from(self.tc) << 20;
        let w1 = u32::from(self.payload_len) << 16 | u32::from(next) << 8 | u32::from(self.hop);
        let h = &mut out[..IPV6_LEN];
        write_u32(&mut h[field::VER_TC_FLOW], w0);
        write_u32(&mut h[4..8], w1);
        h[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        h[field::DST_ADDR].copy_from_slice(&self.dst.octets());
        if let Some((off_m, ident)) = self.frag {
            let f = &mut out[IPV6_LEN..IPV6_LEN + FRAG_LEN];
            f[0] = self.next;
            f[1] = 0;
            f[2..4].copy_from_slice(&off_m.to_be_bytes());
            f[4..8].copy_from_slice(&ident.to_be_bytes());
        }
    }
}

/// The TCP/UDP pseudo-header change of a translation from the address
/// pair `v6` to the pair `v4`, as one RFC 1624 update (RFC 7915 §4.5/§5.5
/// allow it in place of a recomputation: the length and the protocol
/// words of both pseudo headers are the same). Each pair's sum is kept to
/// 32 bits, which [`Delta::word32`] takes as two 16-bit words: 2^16 ≡ 1
/// and 2^32 - 1 ≡ 0 (mod 0xffff), so no fold to 16 bits is needed before
/// [`Delta::apply`]'s one.
#[inline(always)]
fn pseudo_6to4((s6, d6): (Ipv6Addr, Ipv6Addr), (s4, d4): (Ipv4Addr, Ipv4Addr)) -> Delta {
    Delta::word32(sum6(s6, d6), sum4(s4, d4))
}

/// [`pseudo_6to4`] the other way: the pair `v4` replaced by `v6`.
#[inline(always)]
fn pseudo_4to6((s4, d4): (Ipv4Addr, Ipv4Addr), (s6, d6): (Ipv6Addr, Ipv6Addr)) -> Delta {
    Delta::word32(sum4(s4, d4), sum6(s6, d6))
}

/// Ones-complement sum (RFC 1071) of the IPv6 addresses `a` and `b`,
/// reduced to 32 bits: their four 64-bit halves added with end-around
/// carry (2^64 ≡ 1 mod 0xffff, as [`checksum::sum`]'s 32-bit words), then
/// 64 -> 32 bits twice.
#[inline(always)]
fn sum6(a: Ipv6Addr, b: Ipv6Addr) -> u32 {
    let (a, b) = (u128::from(a), u128::from(b));
    let add = |s: u64, x: u64| {
        let (s, c) = s.overflowing_add(x);
        s + u64::from(c)
    };
    let s = add(add(add((a >> 64) as u64, a as u64), (b >> 64) as u64), b as u64);
    let s = (s & 0xffff_ffff) + (s >> 32);
    ((s & 0xffff_ffff) + (s >> 32)) as u32
}

/// [`sum6`] for two IPv4 addresses.
#[inline(always)]
fn sum4(a: Ipv4Addr, b: Ipv4Addr) -> u32 {
    let s = u64::from(u32::from(a)) + u64::from(u32::from(b));
    ((s & 0xffff_ffff) + (s >> 32)) as u32
}

/// The TCP/UDP checksum change, folded ([`Delta::folded`]), of translating
/// a packet `from` (IPv6 addresses and ports) to `to` (IPv4): the
/// pseudo-header's addresses and the ports. A session computes it once
/// ([`crate::session::ipv6::Session6::new`]) for [`To4::l4_change`]; its
/// complement is the reply's ([`To6::l4_change`]). The ones' complement sum
/// does not depend on the words' order, so the reply's swapped addresses
/// and ports undo it exactly.
pub fn l4_change(from: Ends<Ipv6Addr>, to: Ends<Ipv4Addr>) -> u16 {
    let ports = |sport: u16, dport: u16| u32::from(sport) << 16 | u32::from(dport);
    let pseudo = pseudo_6to4((from.src, from.dst), (to.src, to.dst));
    (pseudo + Delta::word32(ports(from.sport, from.dport), ports(to.sport, to.dport))).folded()
}

/// Rewrites the ports of a TCP/UDP header and updates its checksum by
/// `pseudo` (the pseudo-header change) plus the port change. `l4` may be a
/// quote cut short: the ports need 4 bytes, the checksum its own field.
/// A UDP checksum of 0 stays 0 (the caller handles IPv4 -> IPv6).
#[inline(always)]
fn rewrite_l4(l4: &mut [u8], proto: u8, pseudo: Delta, sport: u16, dport: u16) {
    let Some(ports) = l4.get(0..4) else { return };
    let ports_change = Delta::word32(read_u32(ports), u32::from(sport) << 16 | u32::from(dport));
    rewrite_l4_by(l4, proto, pseudo + ports_change, sport, dport)
}

/// The ports of TCP/UDP segment `seg` become `ends`' with the checksum
/// updated: by `change` when the translation knows it (a session's packet,
/// [`To4::l4_change`]: the packet's own addresses and ports are not read;
/// debug builds check it against them), else by the pseudo header's change
/// (`pseudo`, computed only then) and the ports'. One step for both
/// directions.
#[inline(always)]
fn rewrite_l4_to<A>(
    seg: &mut [u8],
    proto: u8,
    change: Option<u16>,
    ends: &Ends<A>,
    pseudo: impl FnOnce() -> Delta,
) {
    match change {
        Some(change) => {
            debug_assert!(change_is(change, pseudo(), seg, ends), "a session's change is its packet's");
            rewrite_l4_by(seg, proto, Delta::from_folded(change), ends.sport, ends.dport)
        }
        None => rewrite_l4(seg, proto, pseudo(), ends.sport, ends.dport),
    }
}

/// Whether `change` (a session's, [`To4::l4_change`]) is the change the
/// packet's own pseudo header (`pseudo`) and ports (the first 4 bytes of
/// `l4`) give toward `ends`: equal as ones' complement values (mod
/// 0xffff). For the debug builds' assertion (the labs run them).
fn change_is<A>(change: u16, pseudo: Delta, l4: &[u8], ends: &Ends<A>) -> bool {
    let new_ports = u32::from(ends.sport) << 16 | u32::from(ends.dport);
    let own = (pseudo + Delta::word32(read_u32(&l4[0..4]), new_ports)).folded();
    u32::from(own) % 0xffff == u32::from(change) % 0xffff
}

/// [`rewrite_l4`] with the whole checksum change known (`change`: the
/// pseudo header's and the ports'), as a session's packet has it
/// ([`To4::l4_change`]): the ports are written, not read.
#[inline(always)]
fn rewrite_l4_by(l4: &mut [u8], proto: u8, change: Delta, sport: u16, dport: u16) {
    let Some(ports) = l4.get_mut(0..4) else { return };
    write_u32(ports, u32::from(sport) << 16 | u32::from(dport));
    let at = if proto == PROTO_TCP { 16 } else { 6 };
    let Some(c) = l4.get_mut(at..at + 2) else { return };
    let old = read_u16(c);
    if proto == PROTO_UDP && old == 0 {
        return;
    }
    let mut new = change.apply(old);
    if proto == PROTO_UDP && new == 0 {
        new = 0xffff;
    }
    c.copy_from_slice(&new.to_be_bytes());
}

/// An IPv6 routing header with segments left must not be translated
/// (RFC 7915 §5.1); `ext` are the extension headers the walk stepped over.
fn routing_done(first: u8, ext: &[u8]) -> Result<(), Error> {
    let (mut next, mut at) = (first, 0usize);
    while at + 4 <= ext.len() {
        let h = &ext[at..];
        if next == PROTO_ROUTING && h[3] != 0 {
            return Err(Error::Untranslatable);
        }
        at += match next {
            PROTO_FRAGMENT => FRAG_LEN,
            PROTO_AH => (usize::from(h[1]) + 2) * 4,
            _ => (usize::from(h[1]) + 1) * 8,
        };
        next = h[0];
    }
    Ok(())
}

/// IPv4 options: an unexpired loose or strict source route (RFC 791,
/// pointer not past the option) makes the packet untranslatable.
fn options_ok(opts: &[u8]) -> Result<(), Error> {
    let mut at = 0usize;
    while at < opts.len() {
        match opts[at] {
            0 => return Ok(()),
            1 => at += 1,
            kind => {
                let len = usize::from(*opts.get(at + 1).ok_or(Error::Malformed)?);
                if len < 2 || at + len > opts.len() {
                    return Err(Error::Malformed);
                }
                if (kind == 131 || kind == 137) && len >= 3 && usize::from(opts[at + 2]) <= len {
                    return Err(Error::Untranslatable);
                }
                at += len;
            }
        }
    }
    Ok(())
}

/// IPv4 identification and flags/offset for a packet translated from
/// IPv6: from the fragment header if there is one, else `ident` and DF by
/// the 1260-byte rule.
fn frag_to4(frag: Option<ipv6::Fragment>, ident: u16, total: usize) -> (u16, u16) {
    match frag {
        Some(f) => (f.ident as u16, (if f.more { FLAG_MF } else { 0 }) | (f.offset >> 3)),
        None => (ident, if total > DF_THRESHOLD { FLAG_DF } else { 0 }),
    }
}

/// The fragment header an IPv4 fragment gets: `(offset | M, ident)`.
fn frag_to6(ip: &ipv4::Packet<&[u8]>) -> Option<(u16, u32)> {
    ip.is_fragment().then(|| (ip.frag_offset() | u16::from(ip.more_frags()), u32::from(ip.ident())))
}

/// Translates the IPv6 packet at `buf[start..]` into IPv4 in place (see
/// the module docs for the layout and the rules).
#[inline]
pub fn to_ipv4(buf: &mut [u8], start: usize, p: &To4) -> Result<Translated, Error> {
    match plain_to_ipv4(buf, start, p) {
        Some(t) => Ok(t),
        None => any_to_ipv4(buf, start, p),
    }
}

/// [`to_ipv4`] of the packet almost every session sends: a fixed IPv6
/// header that names TCP or UDP itself (so no extension header: no
/// fragment, no routing header), with the upper-layer header's checksum
/// field inside the payload. It reads the 40-byte header once, with one
/// bounds check, and writes what [`any_to_ipv4`] writes for that packet,
/// byte for byte (a property test holds the two equal). `None`, the
/// buffer untouched, for any other packet.
#[inline(always)]
fn plain_to_ipv4(buf: &mut [u8], start: usize, p: &To4) -> Option<Translated> {
    let h: &[u8; IPV6_LEN] = buf.get(start..start + IPV6_LEN)?.try_into().ok()?;
    let w0 = read_u32(&h[0..4]);
    let w1 = read_u32(&h[4..8]);
    let (payload_len, proto, hop) = ((w1 >> 16) as usize, (w1 >> 8) as u8, w1 as u8);
    let csum_at = l4_checksum_at(proto)?;
    let total = IPV4_LEN + payload_len;
    if w0 >> 28 != 6 || payload_len < csum_at + 2 || total > usize::from(u16::MAX) {
        return None;
    }
    let (src6, dst6) = (read_ipv6(&h[8..24]), read_ipv6(&h[24..40]));
    let l4 = start + IPV6_LEN;
    let seg = buf.get_mut(l4..l4 + payload_len)?;
    rewrite_l4_to(seg, proto, p.l4_change, &p.ends, || pseudo_6to4((src6, dst6), (p.ends.src, p.ends.dst)));
    let (ident, flags_off) = frag_to4(None, p.ident, total);
    let hdr = Hdr4 {
        tos: (w0 >> 20) as u8,
        total_len: total as u16,
        ident,
        flags_off,
        ttl: hop,
        proto,
        src: p.ends.src,
        dst: p.ends.dst,
    };
    hdr.emit(&mut buf[l4 - IPV4_LEN..l4]);
    Some(Translated { start: l4 - IPV4_LEN, len: total })
}

/// Where a TCP or UDP header keeps its checksum; `None` for another
/// protocol.
#[inline(always)]
fn l4_checksum_at(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        _ => None,
    }
}

/// An IPv6 address from the first 16 bytes of `b`.
#[inline(always)]
fn read_ipv6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// [`to_ipv4`] of any packet: extension headers walked, fragments, ICMP.
#[inline(never)]
fn any_to_ipv4(buf: &mut [u8], start: usize, p: &To4) -> Result<Translated, Error> {
    let ip =
        ipv6::Packet::new_checked(buf.get(start..).ok_or(Error::Malformed)?).map_err(|_| Error::Malformed)?;
    let t = ip.transport().map_err(|_| Error::Malformed)?;
    routing_done(u8::from(ip.next_header()), &ip.payload()[..t.offset - IPV6_LEN])?;
    let (tc, hop, src6, dst6) = (ip.traffic_class(), ip.hop_limit(), ip.src_addr(), ip.dst_addr());
    let end = start + IPV6_LEN + usize::from(ip.payload_len());
    let l4 = start + t.offset;
    let proto = match t.protocol {
        ipv6::NextHeader::Tcp => PROTO_TCP,
        ipv6::NextHeader::Udp => PROTO_UDP,
        ipv6::NextHeader::Icmpv6 => PROTO_ICMP,
        _ => return Err(Error::Untranslatable),
    };
    let total = IPV4_LEN + (end - l4);
    let total_len = u16::try_from(total).map_err(|_| Error::TooBig)?;
    let (ident, flags_off) = frag_to4(t.fragment, p.ident, total);
    if proto == PROTO_ICMP {
        if t.fragment.is_some_and(|f| !f.is_atomic()) {
            return Err(Error::Fragmented);
        }
        if let Some(done) = icmp_to4(buf, l4, end, (src6, dst6), tc, hop, p)? {
            return Ok(done);
        }
    } else if t.has_header() {
        let pseudo = pseudo_6to4((src6, dst6), (p.ends.src, p.ends.dst));
        rewrite_l4(&mut buf[l4..end], proto, pseudo, p.ends.sport, p.ends.dport);
    }
    let hdr =
        Hdr4 { tos: tc, total_len, ident, flags_off, ttl: hop, proto, src: p.ends.src, dst: p.ends.dst };
    hdr.emit(&mut buf[l4 - IPV4_LEN..l4]);
    Ok(Translated { start: l4 - IPV4_LEN, len: total })
}

/// The IPv6 minimum link MTU (RFC 8200 §5).
const IPV6_MIN_MTU: u32 = 1280;

/// ICMPv6 -> ICMP type, code and the 4 bytes after the checksum
/// (RFC 7915 §5.2); `None` for what has no translation. `quote_frag`: the
/// quoted packet has a fragment header (Packet Too Big's MTU moves by 8
/// more).
fn map_icmp6(ty: u8, code: u8, rest: u32, quote_frag: bool, mtu_cap: u16) -> Option<(u8, u8, u32)> {
    Some(match (ty, code) {
        (128, _) => (8, code, rest),
        (129, _) => (0, code, rest),
        (1, 0 | 2 | 3) => (3, 1, 0),
        (1, 1) => (3, 10, 0),
        (1, 4) => (3, 3, 0),
        (2, _) => {
            // No IPv6 link is under 1280 bytes (RFC 8200 §5; RFC 8021: a
            // smaller Packet Too Big only ever asked for atomic fragments):
            // as Linux, a smaller one counts as 1280, so a client cannot
            // drive an IPv4 server's path MTU toward the shared local
            // address below 1260.
            let shrink = if quote_frag { 28 } else { 20 };
            let mtu = rest.max(IPV6_MIN_MTU).saturating_sub(shrink).min(u32::from(mtu_cap));
            (3, 4, mtu)
        }
        (3, _) => (11, code, 0),
        (4, 0) => (12, 0, u32::from(param_ptr_to4(rest)?) << 24),
        (4, 1) => (3, 2, 0),
        _ => return None,
    })
}

/// RFC 7915 §5.2 Figure 6: an IPv6 header pointer as an IPv4 one.
fn param_ptr_to4(ptr: u32) -> Option<u8> {
    Some(match ptr {
        0 => 0,
        1 => 1,
        4 | 5 => 2,
        6 => 9,
        7 => 8,
        8..=23 => 12,
        24..=39 => 16,
        _ => return None,
    })
}

/// ICMP -> ICMPv6 type, code and rest (RFC 7915 §4.2); `quote_len` is the
/// quoted IPv4 total length (for the plateau of an MTU of 0).
fn map_icmp4(ty: u8, code: u8, rest: u32, quote_len: u16, mtu_cap: u16) -> Option<(u8, u8, u32)> {
    Some(match (ty, code) {
        (8, _) => (128, code, rest),
        (0, _) => (129, code, rest),
        (3, 0 | 1 | 5 | 6 | 7 | 8 | 11 | 12) => (1, 0, 0),
        (3, 2) => (4, 1, 6),
        (3, 3) => (1, 4, 0),
        (3, 4) => {
            let mut mtu = rest as u16;
            if mtu == 0 {
                mtu = PLATEAUS.iter().copied().find(|m| *m < quote_len).unwrap_or(68);
            }
            let mtu = (u32::from(mtu) + 20).min(u32::from(mtu_cap)).max(u32::from(ipv6::MIN_MTU));
            (2, 0, mtu)
        }
        (3, 9 | 10 | 13 | 15) => (1, 1, 0),
        (11, _) => (3, code, 0),
        (12, 0 | 2) => (4, 0, u32::from(param_ptr_to6((rest >> 24) as u8)?)),
        _ => return None,
    })
}

/// RFC 7915 §4.2 Figure 3: an IPv4 header pointer as an IPv6 one.
fn param_ptr_to6(ptr: u8) -> Option<u8> {
    Some(match ptr {
        0 => 0,
        1 => 1,
        2 | 3 => 4,
        8 => 7,
        9 => 6,
        12..=15 => 8,
        16..=19 => 24,
        _ => return None,
    })
}

/// The ICMPv6 message at `buf[l4..end]`: an echo is translated in place
/// (`None`: the caller writes the IPv4 header); an error is rebuilt with
/// its quote translated, and the whole packet's place returned.
fn icmp_to4(
    buf: &mut [u8],
    l4: usize,
    end: usize,
    (src6, dst6): (Ipv6Addr, Ipv6Addr),
    tc: u8,
    hop: u8,
    p: &To4,
) -> Result<Option<Translated>, Error> {
    let msg = &buf[l4..end];
    if msg.len() < ICMP_HEADER_LEN {
        return Err(Error::Malformed);
    }
    let ph = ipv6::pseudo_header(src6, dst6, ipv6::NextHeader::Icmpv6, msg.len() as u32);
    if checksum::fold(ph + checksum::sum(msg)) != 0xffff {
        return Err(Error::Checksum);
    }
    let (ty, code, rest) = (msg[0], msg[1], read_u32(&msg[4..8]));
    if ty >= 128 {
        let (ty4, code4, rest4) = map_icmp6(ty, code, rest, false, p.mtu).ok_or(Error::Untranslatable)?;
        write_icmp(&mut buf[l4..end], ty4, code4, rest4, 0);
        return Ok(None);
    }
    // An error: the quote is an IPv6 header and (part of) its upper layer.
    let inner_at = l4 + ICMP_HEADER_LEN;
    let quote = &buf[inner_at..end];
    if quote.len() < IPV6_LEN {
        return Err(Error::Malformed);
    }
    let qip = ipv6::Packet::new_unchecked(quote);
    if qip.version() != 6 {
        return Err(Error::Malformed);
    }
    let qt = ipv6::walk(qip.next_header(), &quote[IPV6_LEN..], IPV6_LEN).map_err(|_| Error::Malformed)?;
    let qproto = match qt.protocol {
        ipv6::NextHeader::Tcp => PROTO_TCP,
        ipv6::NextHeader::Udp => PROTO_UDP,
        _ => return Err(Error::Untranslatable),
    };
    let (ty4, code4, rest4) =
        map_icmp6(ty, code, rest, qt.fragment.is_some(), p.mtu).ok_or(Error::Untranslatable)?;
    let inner = p.inner.ok_or(Error::Untranslatable)?;
    let ext = qt.offset - IPV6_LEN;
    let qtotal = (IPV4_LEN + usize::from(qip.payload_len())).checked_sub(ext).ok_or(Error::Malformed)?;
    let qtotal_len = u16::try_from(qtotal).map_err(|_| Error::Malformed)?;
    let (qident, qflags) = frag_to4(qt.fragment, 0, qtotal);
    let qhdr = Hdr4 {
        tos: qip.traffic_class(),
        total_len: qtotal_len,
        ident: qident,
        flags_off: qflags,
        ttl: qip.hop_limit(),
        proto: qproto,
        src: inner.src,
        dst: inner.dst,
    };
    let qpseudo = pseudo_6to4((qip.src_addr(), qip.dst_addr()), (inner.src, inner.dst));
    let q_l4 = inner_at + qt.offset;
    if qt.has_header() {
        rewrite_l4(&mut buf[q_l4..end], qproto, qpseudo, inner.sport, inner.dport);
    }
    // New layout, ending where the quote's upper layer ends:
    // [IPv4 20][ICMP 8][quoted IPv4 20][quoted upper layer].
    let new_start = q_l4 - IPV4_LEN - ICMP_HEADER_LEN - IPV4_LEN;
    let icmp_at = new_start + IPV4_LEN;
    qhdr.emit(&mut buf[q_l4 - IPV4_LEN..q_l4]);
    write_icmp(&mut buf[icmp_at..end], ty4, code4, rest4, 0);
    let total = end - new_start;
    let (ident, flags_off) = frag_to4(None, p.ident, total);
    let hdr = Hdr4 {
        tos: tc,
        total_len: total as u16,
        ident,
        flags_off,
        ttl: hop,
        proto: PROTO_ICMP,
        src: p.ends.src,
        dst: p.ends.dst,
    };
    hdr.emit(&mut buf[new_start..icmp_at]);
    Ok(Some(Translated { start: new_start, len: total }))
}

/// Writes type, code and the rest-of-header word of the ICMP(v6) message
/// `msg` and its checksum: over the message plus `pseudo` (0 for ICMP).
fn write_icmp(msg: &mut [u8], ty: u8, code: u8, rest: u32, pseudo: u32) {
    msg[0] = ty;
    msg[1] = code;
    msg[2..4].copy_from_slice(&[0, 0]);
    msg[4..8].copy_from_slice(&rest.to_be_bytes());
    let c = !checksum::fold(pseudo + checksum::sum(msg));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Translates the IPv4 packet at `buf[start..]` into IPv6 in place (see
/// the module docs for the layout, the headroom and the rules).
#[inline]
pub fn to_ipv6(buf: &mut [u8], start: usize, p: &To6) -> Result<Translated, Error> {
    match plain_to_ipv6(buf, start, p) {
        Some(t) => Ok(t),
        None => any_to_ipv6(buf, start, p),
    }
}

/// [`to_ipv6`] of the packet almost every session sends: an IPv4 header
/// without options, not a fragment, TCP or UDP with the checksum field
/// inside the packet and, for UDP, a checksum (not 0), with room for the
/// IPv6 header in front. It reads the 20-byte header once, with one
/// bounds check, and writes what [`any_to_ipv6`] writes for that packet,
/// byte for byte (a property test holds the two equal). `None`, the buffer
/// untouched, for any other packet.
#[inline(always)]
fn plain_to_ipv6(buf: &mut [u8], start: usize, p: &To6) -> Option<Translated> {
    let h: &[u8; IPV4_LEN] = buf.get(start..start + IPV4_LEN)?.try_into().ok()?;
    let (w0, w1, w2) = (read_u32(&h[0..4]), read_u32(&h[4..8]), read_u32(&h[8..12]));
    let (src4, dst4) = (read_u32(&h[12..16]), read_u32(&h[16..20]));
    let (total, proto) = (w0 as u16 as usize, (w2 >> 16) as u8);
    let csum_at = l4_checksum_at(proto)?;
    // Version 4 and IHL 5; MF clear and offset 0 (DF is not translated).
    if w0 >> 24 != 0x45 || w1 & 0x3fff != 0 || total < IPV4_LEN + csum_at + 2 || start < IPV6_LEN - IPV4_LEN {
        return None;
    }
    let l4 = start + IPV4_LEN;
    let seg = buf.get_mut(l4..start + total)?;
    if proto == PROTO_UDP && read_u16(&seg[6..8]) == 0 {
        return None;
    }
    rewrite_l4_to(seg, proto, p.l4_change, &p.ends, || {
        pseudo_4to6((src4.into(), dst4.into()), (p.ends.src, p.ends.dst))
    });
    let hdr = Hdr6 {
        tc: (w0 >> 16) as u8,
        payload_len: (total - IPV4_LEN) as u16,
        next: proto,
        hop: (w2 >> 24) as u8,
        src: p.ends.src,
        dst: p.ends.dst,
        frag: None,
    };
    hdr.emit(&mut buf[l4 - IPV6_LEN..l4]);
    Some(Translated { start: l4 - IPV6_LEN, len: IPV6_LEN + total - IPV4_LEN })
}

/// [`to_ipv6`] of any packet: options, fragments, ICMP.
#[inline(never)]
fn any_to_ipv6(buf: &mut [u8], start: usize, p: &To6) -> Result<Translated, Error> {
    let ip =
        ipv4::Packet::new_checked(buf.get(start..).ok_or(Error::Malformed)?).map_err(|_| Error::Malformed)?;
    options_ok(ip.options())?;
    let (tos, ttl, src4, dst4) = (ip.tos(), ip.ttl(), ip.src_addr(), ip.dst_addr());
    let l4 = start + ip.header_len();
    let end = start + usize::from(ip.total_len());
    let first = ip.frag_offset() == 0;
    let frag = frag_to6(&ip);
    let proto = u8::from(ip.protocol());
    let next = match proto {
        PROTO_TCP | PROTO_UDP => proto,
        PROTO_ICMP => PROTO_ICMPV6,
        _ => return Err(Error::Untranslatable),
    };
    let hdr_len = IPV6_LEN + if frag.is_some() { FRAG_LEN } else { 0 };
    if l4 < hdr_len {
        return Err(Error::Headroom);
    }
    let l4_len = end - l4;
    if proto == PROTO_ICMP {
        if frag.is_some() {
            return Err(Error::Fragmented);
        }
        if let Some(done) = icmp_to6(buf, l4, end, tos, ttl, p)? {
            return Ok(done);
        }
    } else if first {
        let pseudo = pseudo_4to6((src4, dst4), (p.ends.src, p.ends.dst));
        let seg = &mut buf[l4..end];
        if proto == PROTO_UDP && seg.len() >= 8 && read_u16(&seg[6..8]) == 0 {
            if frag.is_some() {
                return Err(Error::Fragmented);
            }
            seg[0..2].copy_from_slice(&p.ends.sport.to_be_bytes());
            seg[2..4].copy_from_slice(&p.ends.dport.to_be_bytes());
            let ph = ipv6::pseudo_header(p.ends.src, p.ends.dst, ipv6::NextHeader::Udp, l4_len as u32);
            let c = match !checksum::fold(ph + checksum::sum(seg)) {
                0 => 0xffff,
                c => c,
            };
            seg[6..8].copy_from_slice(&c.to_be_bytes());
        } else {
            rewrite_l4(seg, proto, pseudo, p.ends.sport, p.ends.dport);
        }
    }
    let hdr = Hdr6 {
        tc: tos,
        payload_len: (l4_len + hdr_len - IPV6_LEN) as u16,
        next,
        hop: ttl,
        src: p.ends.src,
        dst: p.ends.dst,
        frag,
    };
    hdr.emit(&mut buf[l4 - hdr_len..l4]);
    Ok(Translated { start: l4 - hdr_len, len: hdr_len + l4_len })
}

/// The ICMP message at `buf[l4..end]` as ICMPv6: an echo in place (`None`:
/// the caller writes the IPv6 header, whose addresses the checksum uses);
/// an error rebuilt with its quote translated and cut to 1280 bytes.
fn icmp_to6(
    buf: &mut [u8],
    l4: usize,
    end: usize,
    tos: u8,
    ttl: u8,
    p: &To6,
) -> Result<Option<Translated>, Error> {
    let msg = &buf[l4..end];
    if msg.len() < ICMP_HEADER_LEN {
        return Err(Error::Malformed);
    }
    if checksum::checksum(msg) != 0 {
        return Err(Error::Checksum);
    }
    let (ty, code, rest) = (msg[0], msg[1], read_u32(&msg[4..8]));
    if matches!(ty, 0 | 8) {
        let (ty6, code6, rest6) = map_icmp4(ty, code, rest, 0, p.mtu).ok_or(Error::Untranslatable)?;
        let ph = ipv6::pseudo_header(p.ends.src, p.ends.dst, ipv6::NextHeader::Icmpv6, (end - l4) as u32);
        write_icmp(&mut buf[l4..end], ty6, code6, rest6, ph);
        return Ok(None);
    }
    if !matches!(ty, 3 | 11 | 12) {
        return Err(Error::Untranslatable);
    }
    let inner_at = l4 + ICMP_HEADER_LEN;
    let quote = &buf[inner_at..end];
    if quote.len() < IPV4_LEN {
        return Err(Error::Malformed);
    }
    let qip = ipv4::Packet::new_unchecked(quote);
    let qihl = qip.header_len();
    if qip.version() != 4 || qihl < IPV4_LEN || qihl > quote.len() {
        return Err(Error::Malformed);
    }
    let qproto = u8::from(qip.protocol());
    if !matches!(qproto, PROTO_TCP | PROTO_UDP) {
        return Err(Error::Untranslatable);
    }
    let (ty6, code6, rest6) =
        map_icmp4(ty, code, rest, qip.total_len(), p.mtu).ok_or(Error::Untranslatable)?;
    let inner = p.inner.ok_or(Error::Untranslatable)?;
    let qfrag = frag_to6(&qip);
    let qfirst = qip.frag_offset() == 0;
    let qpayload = usize::from(qip.total_len()).saturating_sub(qihl);
    let qhdr = Hdr6 {
        tc: qip.tos(),
        payload_len: u16::try_from(qpayload + if qfrag.is_some() { FRAG_LEN } else { 0 }).unwrap_or(u16::MAX),
        next: qproto,
        hop: qip.ttl(),
        src: inner.src,
        dst: inner.dst,
        frag: qfrag,
    };
    let qpseudo = pseudo_4to6((qip.src_addr(), qip.dst_addr()), (inner.src, inner.dst));
    let q_l4 = inner_at + qihl;
    // New layout, ending where the quote's upper layer ends:
    // [IPv6 40][ICMPv6 8][quoted IPv6 40 (+8)][quoted upper layer].
    let grown = IPV6_LEN + ICMP_HEADER_LEN + qhdr.len();
    let new_start = q_l4.checked_sub(grown).ok_or(Error::Headroom)?;
    if qfirst {
        rewrite_l4(&mut buf[q_l4..end], qproto, qpseudo, inner.sport, inner.dport);
    }
    let end = end.min(new_start + MAX_ICMPV6_ERROR);
    let icmp_at = new_start + IPV6_LEN;
    qhdr.emit(&mut buf[q_l4 - qhdr.len()..q_l4]);
    let ph = ipv6::pseudo_header(p.ends.src, p.ends.dst, ipv6::NextHeader::Icmpv6, (end - icmp_at) as u32);
    write_icmp(&mut buf[icmp_at..end], ty6, code6, rest6, ph);
    let hdr = Hdr6 {
        tc: tos,
        payload_len: (end - icmp_at) as u16,
        next: PROTO_ICMPV6,
        hop: ttl,
        src: p.ends.src,
        dst: p.ends.dst,
        frag: None,
    };
    hdr.emit(&mut buf[new_start..icmp_at]);
    Ok(Some(Translated { start: new_start, len: end - new_start }))
}

/// The most [`to_ipv6`] grows a packet by: an ICMP error whose outer and
/// quoted header both become IPv6 with a fragment header.
pub const MAX_GROWTH: usize = 2 * (IPV6_LEN + FRAG_LEN - IPV4_LEN);

/// [`to_ipv4`] over an Ethernet frame (untagged, IPv6 at byte 14): the
/// Ethernet header moves in front of the IPv4 packet, its EtherType becomes
/// IPv4, and the buffer loses the bytes in front (`adj`) and any after the
/// packet. MACs are left for the worker to set. The common packet
/// ([`plain_to_ipv4`]'s) with one view of the buffer and no second parse;
/// any other through [`frame_to_ipv4_any`].
pub fn frame_to_ipv4<B: PacketBuf>(pkt: &mut B, p: &To4) -> Result<(), Error> {
    let buf = pkt.as_mut();
    let Some(t) = plain_to_ipv4(buf, ETH_LEN, p) else { return frame_to_ipv4_any(pkt, p) };
    // The header shrank by 20 bytes: the Ethernet header follows it.
    const SHRINK: usize = IPV6_LEN - IPV4_LEN;
    move_eth(buf, 0, SHRINK);
    write_u16(&mut buf[SHRINK + 12..SHRINK + 14], EtherType::Ipv4.into());
    if !pkt.adj(SHRINK) {
        return Err(Error::Malformed);
    }
    pkt.truncate(ETH_LEN + t.len);
    Ok(())
}

/// [`frame_to_ipv4`] of a packet [`plain_to_ipv4`] leaves: extension
/// headers, fragments, ICMP, bad input.
#[inline(never)]
fn frame_to_ipv4_any<B: PacketBuf>(pkt: &mut B, p: &To4) -> Result<(), Error> {
    let t = any_to_ipv4(pkt.as_mut(), ETH_LEN, p)?;
    reframe(pkt, t, EtherType::Ipv4)
}

/// [`to_ipv6`] over an Ethernet frame (untagged, IPv4 at byte 14): the
/// buffer first grows in front (`prepend`, the mbuf's headroom;
/// [`Error::Headroom`] without it) by what the new header needs, then loses
/// what the translation did not use; the Ethernet header moves in front of
/// the IPv6 packet with EtherType IPv6. The common packet
/// ([`plain_to_ipv6`]'s: unfragmented TCP/UDP without options) grows by
/// exactly the 40 bytes less its own header, so the Ethernet header moves
/// once, and it is parsed once; any other goes back as it came (the 20
/// bytes and the Ethernet header given back) to [`frame_to_ipv6_any`],
/// which grows it by what it needs, at most [`MAX_GROWTH`].
pub fn frame_to_ipv6<B: PacketBuf>(pkt: &mut B, p: &To6) -> Result<(), Error> {
    const GROW: usize = IPV6_LEN - IPV4_LEN;
    if pkt.prepend(GROW) {
        let buf = pkt.as_mut();
        move_eth(buf, GROW, 0);
        if let Some(t) = plain_to_ipv6(buf, GROW + ETH_LEN, p) {
            write_u16(&mut buf[12..14], EtherType::Ipv6.into());
            pkt.truncate(ETH_LEN + t.len);
            return Ok(());
        }
        move_eth(buf, 0, GROW);
        pkt.adj(GROW);
    }
    frame_to_ipv6_any(pkt, p)
}

/// [`frame_to_ipv6`] of any packet (its plain case included, which the
/// tests compare): the growth from the IPv4 header, then [`to_ipv6`].
#[inline(never)]
fn frame_to_ipv6_any<B: PacketBuf>(pkt: &mut B, p: &To6) -> Result<(), Error> {
    let grow = match pkt.as_ref().get(ETH_LEN..ETH_LEN + IPV4_LEN) {
        Some(h) if matches!(h[9], PROTO_TCP | PROTO_UDP) && read_u16(&h[6..8]) & 0x3fff == 0 => {
            IPV6_LEN.saturating_sub(usize::from(h[0] & 0x0f) * 4)
        }
        _ => MAX_GROWTH,
    };
    if !pkt.prepend(grow) {
        return Err(Error::Headroom);
    }
    let buf = pkt.as_mut();
    move_eth(buf, grow, 0);
    match to_ipv6(buf, grow + ETH_LEN, p) {
        Ok(t) => reframe(pkt, t, EtherType::Ipv6),
        Err(e) => {
            // Give the frame back as it came (the caller may still answer
            // or count it).
            move_eth(pkt.as_mut(), 0, grow);
            pkt.adj(grow);
            Err(e)
        }
    }
}

/// Copies the 14-byte Ethernet header at `buf[from..]` to `buf[to..]`: a
/// fixed-size copy, not a call to memmove.
#[inline]
fn move_eth(buf: &mut [u8], from: usize, to: usize) {
    if from != to {
        let mut eth = [0u8; ETH_LEN];
        eth.copy_from_slice(&buf[from..from + ETH_LEN]);
        buf[to..to + ETH_LEN].copy_from_slice(&eth);
    }
}

/// Moves the Ethernet header (at the front of `pkt`) to just before the
/// translated packet `t`, sets its EtherType, and cuts the buffer to the
/// frame.
#[inline(always)]
fn reframe<B: PacketBuf>(pkt: &mut B, t: Translated, ty: EtherType) -> Result<(), Error> {
    let at = t.start - ETH_LEN;
    let buf = pkt.as_mut();
    move_eth(buf, 0, at);
    ethernet::Frame::new_unchecked(&mut buf[at..at + ETH_LEN]).set_ethertype(ty);
    // (An unfragmented TCP/UDP packet from IPv4 grew by exactly what its
    // header needed: nothing to strip.)
    if at != 0 && !pkt.adj(at) {
        return Err(Error::Malformed);
    }
    pkt.truncate(ETH_LEN + t.len);
    Ok(())
}

/// Embeds an IPv4 address in an RFC 6052 prefix of length `len` (32, 40,
/// 48, 56, 64 or 96; bits 64..72, the "u" octet, stay zero). `None` for
/// another length.
pub fn embed(prefix: Ipv6Addr, len: u8, v4: Ipv4Addr) -> Option<Ipv6Addr> {
    let mut o = prefix.octets();
    let at = rfc6052_at(len)?;
    o[at..].fill(0);
    let mut i = at;
    for b in v4.octets() {
        if i == 8 {
            i += 1;
        }
        o[i] = b;
        i += 1;
    }
    Some(Ipv6Addr::from(o))
}

/// The IPv4 address an RFC 6052 address of prefix length `len` embeds
/// (the inverse of [`embed`]); `None` for another length.
pub fn extract(addr: Ipv6Addr, len: u8) -> Option<Ipv4Addr> {
    let o = addr.octets();
    let mut i = rfc6052_at(len)?;
    let mut v4 = [0u8; 4];
    for b in &mut v4 {
        if i == 8 {
            i += 1;
        }
        *b = o[i];
        i += 1;
    }
    Some(Ipv4Addr::from(v4))
}

fn rfc6052_at(len: u8) -> Option<usize> {
    matches!(len, 32 | 40 | 48 | 56 | 64 | 96).then_some(usize::from(len / 8))
}

#[cfg(test)]
mod tests;
