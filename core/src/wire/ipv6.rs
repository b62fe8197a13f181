//! IPv6 headers (RFC 8200) and the walk over extension headers to the
//! transport header.
//!
//! After [`Packet::check_len`] succeeds: `40 + payload_len() <= buffer
//! length`, so [`Packet::payload`] (`40..40 + payload_len`) is in bounds and,
//! as for IPv4, excludes Ethernet padding. A payload length of 0 is accepted
//! (an empty payload); jumbograms (RFC 2675, which also write 0 here) are
//! not supported: their walk ends `Truncated`.
//!
//! [`Packet::transport`] walks the extension-header chain (hop-by-hop,
//! routing, fragment, destination options, AH; RFC 8200 §4, RFC 4302) and
//! returns where the upper-layer header starts, its protocol, and the
//! fragment header if there was one. The walk reads at most
//! [`MAX_EXT_HEADERS`] extension headers and never allocates; a longer chain
//! is `Malformed` (RFC 8200 leaves the bound to the node, RFC 7112 makes the
//! first fragment carry the whole chain). A hop-by-hop header anywhere but
//! first is `Malformed` (RFC 8200 §4.1). ESP (50) and No Next Header (59)
//! end the walk: what follows is not readable.
//!
//! The same walk, [`walk`], reads the truncated packet an ICMPv6 error
//! quotes (see `icmpv6::Packet::quoted`).

use std::net::Ipv6Addr;

use super::checksum::{self, Delta};
use super::ethernet::MacAddr;
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

/// The next-header value (IANA "Assigned Internet Protocol Numbers"; the
/// same registry as IPv4's protocol): an extension header or the
/// upper-layer protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHeader {
    /// 0, hop-by-hop options (RFC 8200 §4.3).
    HopByHop,
    /// 4, IPv4 in IPv6 (RFC 2473).
    Ipv4,
    /// 6, TCP.
    Tcp,
    /// 17, UDP.
    Udp,
    /// 41, IPv6 in IPv6 (RFC 2473), the tunnel of IPVS "TUN" for IPv6.
    Ipv6,
    /// 43, routing header (RFC 8200 §4.4).
    Routing,
    /// 44, fragment header (RFC 8200 §4.5).
    Fragment,
    /// 50, encapsulating security payload (RFC 4303).
    Esp,
    /// 51, authentication header (RFC 4302).
    Ah,
    /// 58, ICMPv6 (RFC 4443).
    Icmpv6,
    /// 59, no next header (RFC 8200 §4.7).
    NoNext,
    /// 60, destination options (RFC 8200 §4.6).
    DstOpts,
    /// Any other value (never one of the above).
    Unknown(u8),
}

impl From<u8> for NextHeader {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            0 => NextHeader::HopByHop,
            4 => NextHeader::Ipv4,
            6 => NextHeader::Tcp,
            17 => NextHeader::Udp,
            41 => NextHeader::Ipv6,
            43 => NextHeader::Routing,
            44 => NextHeader::Fragment,
            50 => NextHeader::Esp,
            51 => NextHeader::Ah,
            58 => NextHeader::Icmpv6,
            59 => NextHeader::NoNext,
            60 => NextHeader::DstOpts,
            other => NextHeader::Unknown(other),
        }
    }
}

impl From<NextHeader> for u8 {
    #[inline]
    fn from(n: NextHeader) -> Self {
        match n {
            NextHeader::HopByHop => 0,
            NextHeader::Ipv4 => 4,
            NextHeader::Tcp => 6,
            NextHeader::Udp => 17,
            NextHeader::Ipv6 => 41,
            NextHeader::Routing => 43,
            NextHeader::Fragment => 44,
            NextHeader::Esp => 50,
            NextHeader::Ah => 51,
            NextHeader::Icmpv6 => 58,
            NextHeader::NoNext => 59,
            NextHeader::DstOpts => 60,
            NextHeader::Unknown(other) => other,
        }
    }
}

impl From<NextHeader> for super::ipv4::Protocol {
    /// The same number in IPv4's enum (one IANA registry for both).
    #[inline]
    fn from(n: NextHeader) -> Self {
        super::ipv4::Protocol::from(u8::from(n))
    }
}

impl NextHeader {
    /// Whether the walk steps over this header to find the upper layer.
    #[inline]
    pub fn is_extension(self) -> bool {
        matches!(
            self,
            NextHeader::HopByHop
                | NextHeader::Routing
                | NextHeader::Fragment
                | NextHeader::Ah
                | NextHeader::DstOpts
        )
    }
}

/// Header field offsets (RFC 8200 §3).
pub mod field {
    use core::ops::Range;

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    /// Length of the payload (extension headers included), in bytes.
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 8..24;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Extension header field offsets, relative to the extension header.
pub mod ext_field {
    use core::ops::Range;

    /// Next header (every extension header).
    pub const NEXT_HEADER: usize = 0;
    /// Length: in 8-byte units not counting the first 8 for hop-by-hop,
    /// routing and destination options (RFC 8200 §4.3); in 4-byte units
    /// minus 2 for AH (RFC 4302 §2.2); reserved in a fragment header.
    pub const LENGTH: usize = 1;
    /// Fragment header: offset (13 bits, 8-byte units), 2 reserved bits,
    /// M flag (RFC 8200 §4.5).
    pub const FRAG_OFF_M: Range<usize> = 2..4;
    /// Fragment header: identification.
    pub const FRAG_IDENT: Range<usize> = 4..8;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Length of a fragment header (RFC 8200 §4.5).
pub const FRAG_HEADER_LEN: usize = 8;
/// Most extension headers [`walk`] steps over before giving up.
pub const MAX_EXT_HEADERS: usize = 8;
/// The IPv6 minimum link MTU (RFC 8200 §5).
pub const MIN_MTU: u16 = 1280;

const FRAG_OFFSET_MASK: u16 = 0xfff8;
const FRAG_MORE: u16 = 0x0001;

/// The fragment header a walk met (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of the fragment header from the start of the walked bytes
    /// (from the IPv6 header for [`Packet::transport`]).
    pub header_at: usize,
    /// Fragment offset **in bytes** (the 13-bit field times 8).
    pub offset: u16,
    /// M flag: more fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

impl Fragment {
    /// True for the first fragment (offset 0), which carries the
    /// upper-layer header; later fragments carry none.
    #[inline]
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }

    /// An atomic fragment (offset 0 and M clear, RFC 6946): the whole
    /// packet, to be processed as if it had no fragment header.
    #[inline]
    pub fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// Where a walk over the extension headers ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// The upper-layer protocol (never an extension header; may be
    /// [`NextHeader::Esp`] or [`NextHeader::NoNext`], whose bytes are not
    /// readable).
    pub protocol: NextHeader,
    /// Offset of the upper-layer header (or, in a non-first fragment, of
    /// the fragment data) from the start of the walked bytes: from the IPv6
    /// header for [`Packet::transport`].
    pub offset: usize,
    /// The fragment header, if the chain had one.
    pub fragment: Option<Fragment>,
    /// The chain had a routing header with segments left (RFC 8200 §4.4):
    /// the destination address is not the packet's last one.
    pub routing_left: bool,
}

impl Transport {
    /// Whether `offset` points at an upper-layer header: false in a
    /// non-first fragment.
    #[inline]
    pub fn has_header(&self) -> bool {
        self.fragment.is_none_or(|f| f.is_first())
    }
}

/// Walks the extension headers in `bytes` (which start right after a
/// fixed IPv6 header whose next header is `first`) to the upper layer.
/// Offsets in the result are `base` plus offsets into `bytes`.
///
/// `Truncated` if an extension header runs past `bytes`; `Malformed` for a
/// hop-by-hop header that is not first, a second fragment header, or more
/// than [`MAX_EXT_HEADERS`] headers. A non-first fragment ends the walk at
/// the fragment data (its next header is reported, its bytes are data).
pub fn walk(first: NextHeader, bytes: &[u8], base: usize) -> Result<Transport> {
    let mut next = first;
    let mut at = 0usize;
    let mut fragment: Option<Fragment> = None;
    let mut routing_left = false;
    for i in 0..=MAX_EXT_HEADERS {
        if !next.is_extension() {
            return Ok(Transport { protocol: next, offset: base + at, fragment, routing_left });
        }
        if i == MAX_EXT_HEADERS {
            break;
        }
        let h = bytes.get(at..at + 2).ok_or(Error::Truncated)?;
        let this = next;
        next = NextHeader::from(h[ext_field::NEXT_HEADER]);
        let len = match this {
            NextHeader::HopByHop if i != 0 => return Err(Error::Malformed),
            NextHeader::Fragment => {
                if fragment.is_some() {
                    return Err(Error::Malformed);
                }
                let f = bytes.get(at..at + FRAG_HEADER_LEN).ok_or(Error::Truncated)?;
                let off_m = read_u16(&f[ext_field::FRAG_OFF_M]);
                let frag = Fragment {
                    header_at: base + at,
                    offset: off_m & FRAG_OFFSET_MASK,
                    more: off_m & FRAG_MORE != 0,
                    ident: read_u32(&f[ext_field::FRAG_IDENT]),
                };
                fragment = Some(frag);
                if !frag.is_first() {
                    // The rest is fragment data, not headers.
                    let offset = base + at + FRAG_HEADER_LEN;
                    return Ok(Transport { protocol: next, offset, fragment, routing_left });
                }
                FRAG_HEADER_LEN
            }
            NextHeader::Ah => (usize::from(h[ext_field::LENGTH]) + 2) * 4,
            NextHeader::Routing => {
                // Segments left, the fourth byte (in the 8 bytes checked below).
                routing_left |= bytes.get(at + 3).is_some_and(|&n| n != 0);
                (usize::from(h[ext_field::LENGTH]) + 1) * 8
            }
            _ => (usize::from(h[ext_field::LENGTH]) + 1) * 8,
        };
        if bytes.len() < at + len {
            return Err(Error::Truncated);
        }
        at += len;
    }
    Err(Error::Malformed)
}

/// Whether `addr` lies in `::/64`, which holds the unspecified and loopback
/// addresses, the IPv4-compatible ones (deprecated) and the IPv4-mapped
/// ones: none is an address a packet carries on the wire (RFC 4291
/// §2.5.2, §2.5.3, §2.5.5).
#[inline(always)]
pub fn never_on_the_wire(addr: u128) -> bool {
    (addr >> 64) as u64 == 0
}

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1):
/// `ff02::1:ff00:0/104` plus the low 24 bits of `addr`; where neighbour
/// solicitations for `addr` are sent (RFC 4861 §7.2.2).
#[inline]
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15]])
}

/// The Ethernet address an IPv6 multicast address maps to (RFC 2464 §7):
/// `33:33` and the low 32 bits of the group.
#[inline]
pub fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than the header or than `40 + payload_len`.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Validates the lengths the accessors rely on, in this order:
    ///
    /// - buffer shorter than 40 bytes: `Truncated`;
    /// - version != 6: `Malformed`;
    /// - `40 + payload_len` longer than the buffer: `Truncated`.
    ///
    /// Extension headers are checked by [`Packet::transport`], not here.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Malformed);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn ver_tc_flow(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    /// Version (6 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP and ECN, RFC 2474 / RFC 3168).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    /// Differentiated services code point, the high 6 bits of the
    /// traffic class.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// Explicit congestion notification, the low 2 bits of the traffic
    /// class.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// Flow label (20 bits, RFC 6437).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// Payload length in bytes (extension headers included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::PAYLOAD_LEN])
    }

    /// Next header after the fixed header.
    #[inline(always)]
    pub fn next_header(&self) -> NextHeader {
        NextHeader::from(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        read_ipv6(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        read_ipv6(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// The payload, `40..40 + payload_len` (Ethernet padding excluded),
    /// extension headers included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks the extension headers to the upper layer (see [`walk`]);
    /// offsets are from the start of the IPv6 header. Needs `check_len`.
    /// A packet without extension headers (the fixed header's next header
    /// is already the upper layer: most traffic) is answered inline, as the
    /// walk's first step would.
    #[inline(always)]
    pub fn transport(&self) -> Result<Transport> {
        let first = self.next_header();
        if !first.is_extension() {
            return Ok(Transport {
                protocol: first,
                offset: HEADER_LEN,
                fragment: None,
                routing_left: false,
            });
        }
        walk(first, self.payload(), HEADER_LEN)
    }

    /// The upper-layer bytes a walk found: `t.offset..40 + payload_len`.
    /// `t` must come from this packet's [`Packet::transport`].
    #[inline]
    pub fn upper_layer(&self, t: &Transport) -> &[u8] {
        &self.buffer.as_ref()[t.offset..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_ver_tc_flow(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::VER_TC_FLOW], v);
    }

    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let w = self.ver_tc_flow() & 0x0fff_ffff;
        self.set_ver_tc_flow(w | u32::from(v & 0x0f) << 28);
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, v: u8) {
        let w = self.ver_tc_flow() & 0xf00f_ffff;
        self.set_ver_tc_flow(w | u32::from(v) << 20);
    }

    /// Sets the flow label (low 20 bits of `v`).
    #[inline]
    pub fn set_flow_label(&mut self, v: u32) {
        let w = self.ver_tc_flow() & 0xfff0_0000;
        self.set_ver_tc_flow(w | (v & 0x000f_ffff));
    }

    /// Sets the payload length. Re-run `check_len` before reading the
    /// payload.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::PAYLOAD_LEN], len);
    }

    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, n: NextHeader) {
        self.buffer.as_mut()[field::NEXT_HEADER] = n.into();
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Decrements the hop limit (IPv6 has no header checksum). Returns the
    /// new value; a hop limit of 0 is left alone and 0 is returned (the
    /// caller drops and may answer Time Exceeded).
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let h = self.hop_limit();
        if h == 0 {
            return 0;
        }
        self.set_hop_limit(h - 1);
        h - 1
    }

    /// Sets the source address. The L4 checksum covers it (pseudo header):
    /// use [`Packet::rewrite_src_addr`] and apply its [`Delta`].
    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address (see [`Packet::set_src_addr`]).
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the source address and returns the pseudo-header change for
    /// the TCP/UDP/ICMPv6 checksum (IPv6 has no header checksum).
    #[inline]
    pub fn rewrite_src_addr(&mut self, addr: Ipv6Addr) -> Delta {
        let d = Delta::addr6(self.src_addr(), addr);
        self.set_src_addr(addr);
        d
    }

    /// Sets the destination address and returns the pseudo-header change
    /// (see [`Packet::rewrite_src_addr`]).
    #[inline]
    pub fn rewrite_dst_addr(&mut self, addr: Ipv6Addr) -> Delta {
        let d = Delta::addr6(self.dst_addr(), addr);
        self.set_dst_addr(addr);
        d
    }

    /// Sets the source and destination addresses, and decrements the hop
    /// limit if `forward` (the caller checked it is above 1): NAT's and
    /// FULLNAT's whole IPv6 header rewrite, on the fixed 40-byte header
    /// (one bounds check), for a caller that knows the TCP/UDP checksum
    /// change beforehand (a session's, `Session6::rewrite_change`), so no
    /// old address is read.
    #[inline]
    pub fn set_addrs(&mut self, src: Ipv6Addr, dst: Ipv6Addr, forward: bool) {
        let h: &mut [u8; HEADER_LEN] = (&mut self.buffer.as_mut()[..HEADER_LEN]).try_into().unwrap();
        if forward {
            h[field::HOP_LIMIT] = h[field::HOP_LIMIT].wrapping_sub(1);
        }
        h[field::SRC_ADDR].copy_from_slice(&src.octets());
        h[field::DST_ADDR].copy_from_slice(&dst.octets());
    }

    /// The payload (`40..40 + payload_len`), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// Reads an IPv6 address from the first sixteen bytes of `b`.
#[inline(always)]
pub(crate) fn read_ipv6(b: &[u8]) -> Ipv6Addr {
    let a: [u8; 16] = b[..16].try_into().unwrap();
    Ipv6Addr::from(a)
}

/// Sum of the IPv6 pseudo header (RFC 8200 §8.1): source, destination,
/// upper-layer packet length (32 bits) and next header. Folded to
/// `0..=0xffff`, not complemented; add it to [`checksum::sum`] of the
/// upper-layer packet.
#[inline]
pub fn pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, next_header: NextHeader, len: u32) -> u32 {
    checksum::pseudo_header_v6(src, dst, u8::from(next_header), len)
}

/// The header fields needed to emit a locally generated IPv6 packet
/// (no extension headers, traffic class and flow label 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header (the upper-layer protocol).
    pub next_header: NextHeader,
    /// Hop limit.
    pub hop_limit: u8,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Repr {
    /// Reads the fixed header after [`Packet::check_len`]. Extension
    /// headers are not walked: `next_header` is the fixed header's.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            payload_len: usize::from(packet.payload_len()),
        })
    }

    /// Header length of the emitted packet (40).
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte header; the caller writes the payload.
    /// `Err(Malformed)` if `payload_len` exceeds 65535, `Err(Truncated)` if
    /// the buffer cannot hold header and payload.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let len = u16::try_from(self.payload_len).map_err(|_| Error::Malformed)?;
        if packet.buffer.as_ref().len() < HEADER_LEN + self.payload_len {
            return Err(Error::Truncated);
        }
        packet.set_ver_tc_flow(0x6000_0000);
        packet.set_payload_len(len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
