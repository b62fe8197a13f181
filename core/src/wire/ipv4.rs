//! IPv4 headers (RFC 791).
//!
//! After [`Packet::check_len`] succeeds: `20 <= header_len() <= total_len()
//! <= buffer length`, so [`Packet::options`] and [`Packet::payload`] are in
//! bounds. `payload()` ends at `total_len`, never at the end of the buffer:
//! a short packet in a minimum-size Ethernet frame is followed by padding
//! that must not reach the transport layer (its checksum would be wrong).
//!
//! Setters that change `header_len` or `total_len` can break that invariant;
//! run `check_len` again before reading through the new value. Options are
//! exposed as raw bytes and not interpreted.

use std::net::Ipv4Addr;

use super::checksum::{self, Delta};
use super::{read_ipv4, read_u16, write_u16, Error, Result};

/// The checksum change of a TTL one less: the TTL is the high byte of the
/// word it shares with the protocol, so that word goes down by 0x100
/// whatever the protocol, the same change as a word 0x0100 becoming 0
/// (`~m + m'` = 0xffff - 0x100 either way), a constant.
const TTL_DOWN: Delta = Delta::word(0x0100, 0);

/// The IP protocol number (IANA "Assigned Internet Protocol Numbers").
///
/// The number itself, so that reading it from a header, writing it back,
/// hashing it into a session key and comparing it are each one byte
/// operation. The named numbers are constants spelled as variants
/// (`Protocol::Tcp`), and they work as patterns: `match p { Protocol::Tcp
/// => .., Protocol::Udp => .., _ => .. }`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol(u8);

#[allow(non_upper_case_globals)]
impl Protocol {
    /// 1, ICMP (RFC 792).
    pub const Icmp: Protocol = Protocol(1);
    /// 4, IP in IP (RFC 2003), the tunnel of LVS/DPVS "TUN" forwarding.
    pub const IpIp: Protocol = Protocol(4);
    /// 6, TCP.
    pub const Tcp: Protocol = Protocol(6);
    /// 17, UDP.
    pub const Udp: Protocol = Protocol(17);

    /// Whether the number is none of the named ones.
    #[inline]
    pub fn is_unknown(self) -> bool {
        !matches!(self, Protocol::Icmp | Protocol::IpIp | Protocol::Tcp | Protocol::Udp)
    }
}

impl From<u8> for Protocol {
    #[inline]
    fn from(v: u8) -> Self {
        Protocol(v)
    }
}

impl From<Protocol> for u8 {
    #[inline]
    fn from(p: Protocol) -> Self {
        p.0
    }
}

impl core::fmt::Debug for Protocol {
    /// By name (`Tcp`), or as `Unknown(47)` for any other number.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Protocol::Icmp => f.write_str("Icmp"),
            Protocol::IpIp => f.write_str("IpIp"),
            Protocol::Tcp => f.write_str("Tcp"),
            Protocol::Udp => f.write_str("Udp"),
            Protocol(other) => write!(f, "Unknown({other})"),
        }
    }
}

/// Header field offsets (RFC 791 §3.1).
pub mod field {
    use core::ops::Range;

    /// Version (high nibble) and IHL (low nibble, in 32-bit words).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2 bits), RFC 2474 / RFC 3168.
    pub const DSCP_ECN: usize = 1;
    /// Total length of header and payload, in bytes.
    pub const LENGTH: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (3 high bits) and fragment offset (13 bits, 8-byte units).
    pub const FLG_OFF: Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 12..16;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = field::DST_ADDR.end;
/// Longest header: IHL = 15.
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = MIN_HEADER_LEN;

    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than the header or than `total_len`.
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
    /// - buffer shorter than 20 bytes: `Truncated`;
    /// - version != 4: `Malformed`;
    /// - IHL < 5: `Malformed`;
    /// - header (IHL * 4) longer than the buffer: `Truncated`;
    /// - `total_len` < header length: `Malformed`;
    /// - `total_len` longer than the buffer: `Truncated`.
    ///
    /// The checksum is not verified here (see [`Packet::verify_checksum`]),
    /// so that a NIC's checksum offload can stand in for it.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let header_len = self.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::Malformed);
        }
        if total_len > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (4 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP/ECN byte (the former TOS field).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Differentiated services code point (RFC 2474), the high 6 bits of TOS.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// Explicit congestion notification (RFC 3168), the low 2 bits of TOS.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// Total length of header and payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF])
    }

    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset **in bytes** (the 13-bit field times 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// True for any fragment of a fragmented datagram (MF set or offset != 0).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline(always)]
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        read_ipv4(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        read_ipv4(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// True if the header checksum (over `header_len` bytes) is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// Option bytes (`20..header_len`), uninterpreted.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload, `header_len..total_len` (Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60); writes
    /// IHL = `len / 4`. Re-run `check_len` before reading through it.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        debug_assert!(len & 3 == 0 && (MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&len));
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP/ECN byte.
    #[inline]
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the DSCP (low 6 bits of `v`), keeping ECN.
    #[inline]
    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }

    /// Sets the ECN bits (low 2 bits of `v`), keeping DSCP.
    #[inline]
    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (v & 0x03);
    }

    /// Sets the total length. Re-run `check_len` before reading the payload.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::IDENT], v);
    }

    #[inline]
    fn set_flags_offset(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::FLG_OFF], v);
    }

    /// Clears the three flag bits (reserved, DF, MF), keeping the offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        let v = self.flags_offset() & OFFSET_MASK;
        self.set_flags_offset(v);
    }

    /// Sets or clears Don't Fragment.
    #[inline]
    pub fn set_dont_frag(&mut self, on: bool) {
        let v = self.flags_offset() & !FLAG_DF;
        self.set_flags_offset(if on { v | FLAG_DF } else { v });
    }

    /// Sets or clears More Fragments.
    #[inline]
    pub fn set_more_frags(&mut self, on: bool) {
        let v = self.flags_offset() & !FLAG_MF;
        self.set_flags_offset(if on { v | FLAG_MF } else { v });
    }

    /// Sets the fragment offset **in bytes** (a multiple of 8, < 65536);
    /// writes `offset / 8`.
    #[inline]
    pub fn set_frag_offset(&mut self, offset: u16) {
        debug_assert!(offset & 7 == 0);
        let v = (self.flags_offset() & !OFFSET_MASK) | (offset >> 3);
        self.set_flags_offset(v);
    }

    /// Sets the time to live.
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, p: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.into();
    }

    /// Stores a header checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the source address (checksum untouched).
    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address (checksum untouched).
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and stores the header checksum over `header_len` bytes.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(c);
    }

    /// Sets the source address and updates the header checksum
    /// incrementally (RFC 1624). The L4 checksum needs the same update:
    /// `tcp::Packet::update_checksum_for_addr` / `udp::...`.
    #[inline]
    pub fn rewrite_src_addr(&mut self, addr: Ipv4Addr) {
        let c = checksum::update_addr(self.checksum(), self.src_addr(), addr);
        self.set_src_addr(addr);
        self.set_checksum(c);
    }

    /// Sets the destination address and updates the header checksum
    /// incrementally (RFC 1624). See [`Packet::rewrite_src_addr`].
    #[inline]
    pub fn rewrite_dst_addr(&mut self, addr: Ipv4Addr) {
        let c = checksum::update_addr(self.checksum(), self.dst_addr(), addr);
        self.set_dst_addr(addr);
        self.set_checksum(c);
    }

    /// Decrements the TTL and updates the checksum incrementally (RFC 1624;
    /// TTL and protocol form one 16-bit word). Returns the new TTL; a TTL
    /// of 0 is left alone and 0 is returned (the caller drops the packet
    /// and may send ICMP Time Exceeded).
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl();
        if ttl == 0 {
            return 0;
        }
        let proto = u16::from(self.buffer.as_ref()[field::PROTOCOL]);
        let old = u16::from(ttl) << 8 | proto;
        let new = u16::from(ttl - 1) << 8 | proto;
        let c = checksum::update16(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        ttl - 1
    }

    /// Forwards the packet with both addresses rewritten, as NAT does:
    /// sets source and destination, decrements the TTL and updates the
    /// header checksum with one incremental update (RFC 1624) instead of
    /// one per field. Returns the pseudo-header part of the change, for the
    /// TCP/UDP checksum (`tcp::Packet::rewrite_ports`,
    /// `udp::Packet::rewrite_ports`). The TTL must be above 0 (checked by
    /// the caller, who drops and may answer Time Exceeded otherwise).
    #[inline]
    pub fn rewrite_addrs_and_forward(&mut self, src: Ipv4Addr, dst: Ipv4Addr) -> Delta {
        let h: &mut [u8; MIN_HEADER_LEN] = (&mut self.buffer.as_mut()[..MIN_HEADER_LEN]).try_into().unwrap();
        let word = |h: &[u8; MIN_HEADER_LEN], at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
        let addr = |h: &[u8; MIN_HEADER_LEN], at: usize| {
            u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
        };
        let (src, dst) = (u32::from(src), u32::from(dst));
        let addrs = Delta::word32(addr(h, field::SRC_ADDR.start), src)
            + Delta::word32(addr(h, field::DST_ADDR.start), dst);
        debug_assert!(h[field::TTL] > 0, "the caller checks the TTL");
        let csum = (addrs + TTL_DOWN).apply(word(h, field::CHECKSUM.start));
        h[field::TTL] = h[field::TTL].wrapping_sub(1);
        h[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
        h[field::SRC_ADDR].copy_from_slice(&src.to_be_bytes());
        h[field::DST_ADDR].copy_from_slice(&dst.to_be_bytes());
        addrs
    }

    /// [`Packet::rewrite_addrs_and_forward`] with the addresses' change to
    /// the checksum known beforehand: `change` is RFC 1624's `~m + m'`
    /// summed over both addresses, from those the packet has to `src` and
    /// `dst` (a FULLNAT or NAT session's, [`crate::session::Session::rewrite_change`]),
    /// so no old address is read; a folded change ([`Delta::apply_small`]).
    /// The TTL must be above 0.
    #[inline]
    pub fn forward_with(&mut self, src: u32, dst: u32, change: Delta) {
        let h: &mut [u8; MIN_HEADER_LEN] = (&mut self.buffer.as_mut()[..MIN_HEADER_LEN]).try_into().unwrap();
        debug_assert!(h[field::TTL] > 0, "the caller checks the TTL");
        let at = field::CHECKSUM.start;
        let csum = (change + TTL_DOWN).apply_small(u16::from_be_bytes([h[at], h[at + 1]]));
        h[field::TTL] = h[field::TTL].wrapping_sub(1);
        h[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
        h[field::SRC_ADDR].copy_from_slice(&src.to_be_bytes());
        h[field::DST_ADDR].copy_from_slice(&dst.to_be_bytes());
    }

    /// Option bytes, mutable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..hl]
    }

    /// The payload (`header_len..total_len`), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..tl]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The header fields needed to emit a locally generated IPv4 packet
/// (no options, not fragmented).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: Protocol,
    /// Time to live.
    pub ttl: u8,
    /// Payload length in bytes (`total_len - header_len`).
    pub payload_len: usize,
}

impl Repr {
    /// Reads a packet after [`Packet::check_len`]. Options are skipped and
    /// the checksum is not verified (call [`Packet::verify_checksum`] unless
    /// the NIC did).
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
        })
    }

    /// Header length of the emitted packet (20).
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN
    }

    /// Writes a 20-byte header (TOS 0, ident 0, DF set as RFC 6864 allows
    /// for atomic datagrams) with a valid checksum; the caller writes the
    /// payload. `Err(Malformed)` if 20 + `payload_len` exceeds 65535,
    /// `Err(Truncated)` if the buffer cannot hold header and payload.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let total = MIN_HEADER_LEN + self.payload_len;
        let total_u16 = u16::try_from(total).map_err(|_| Error::Malformed)?;
        if packet.buffer.as_ref().len() < total {
            return Err(Error::Truncated);
        }
        packet.buffer.as_mut()[field::VER_IHL] = 0x45;
        packet.set_tos(0);
        packet.set_total_len(total_u16);
        packet.set_ident(0);
        packet.set_flags_offset(FLAG_DF);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
