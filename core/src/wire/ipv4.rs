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

use super::checksum;
use super::{read_ipv4, read_u16, write_u16, Error, Result};

/// The IP protocol number (IANA "Assigned Internet Protocol Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 1, ICMP (RFC 792).
    Icmp,
    /// 4, IP in IP (RFC 2003), the tunnel of LVS/DPVS "TUN" forwarding.
    IpIp,
    /// 6, TCP.
    Tcp,
    /// 17, UDP.
    Udp,
    /// Any other value (never one of the above).
    Unknown(u8),
}

impl From<u8> for Protocol {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            1 => Protocol::Icmp,
            4 => Protocol::IpIp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            other => Protocol::Unknown(other),
        }
    }
}

impl From<Protocol> for u8 {
    #[inline]
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Icmp => 1,
            Protocol::IpIp => 4,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Unknown(other) => other,
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
    #[inline]
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
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv4Header, Ipv4HeaderSlice, PacketBuilder, SlicedPacket};
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    // A TCP segment in a frame with two bytes of Ethernet padding after it.
    #[rustfmt::skip]
    const PACKET: [u8; 46] = [
        0x45,                   // version 4, IHL 5
        0x00,                   // DSCP 0, ECN 0
        0x00, 0x2c,             // total length 44
        0x12, 0x34,             // identification
        0x40, 0x00,             // flags DF, fragment offset 0
        0x40,                   // TTL 64
        0x06,                   // protocol TCP
        0x5c, 0xe5,             // header checksum
        0xc0, 0xa8, 0x01, 0x0a, // source 192.168.1.10
        0x0a, 0x00, 0x00, 0x01, // destination 10.0.0.1
        // payload: 24 bytes (a TCP segment; see tcp.rs)
        0xc0, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04,
        0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x18, 0xfa, 0xf0,
        0x85, 0x42, 0x00, 0x00, 0x68, 0x69, 0x21, 0x0a,
        0x00, 0x00,             // Ethernet padding, not part of the packet
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!((p.tos(), p.dscp(), p.ecn()), (0, 0, 0));
        assert_eq!(p.total_len(), 44);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), Protocol::Tcp);
        assert_eq!(p.checksum(), 0x5ce5);
        assert_eq!(p.src_addr(), SRC);
        assert_eq!(p.dst_addr(), DST);
        assert!(p.verify_checksum());
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), &PACKET[20..44]);
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 46];
        buf[20..].copy_from_slice(&PACKET[20..]);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_tos(0);
        p.set_total_len(44);
        p.set_ident(0x1234);
        p.clear_flags();
        p.set_dont_frag(true);
        p.set_more_frags(false);
        p.set_frag_offset(0);
        p.set_ttl(64);
        p.set_protocol(Protocol::Tcp);
        p.set_src_addr(SRC);
        p.set_dst_addr(DST);
        p.fill_checksum();
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn repr_round_trip() {
        let repr = Repr::parse(&Packet::new_checked(&PACKET[..]).unwrap()).unwrap();
        assert_eq!(
            repr,
            Repr { src_addr: SRC, dst_addr: DST, protocol: Protocol::Tcp, ttl: 64, payload_len: 24 }
        );
        let mut buf = PACKET;
        buf[..20].fill(0);
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        // Identical except the identification (emit writes 0) and checksum.
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr);
        assert!(p.verify_checksum() && p.dont_frag() && p.ident() == 0);
        assert_eq!(p.payload(), &PACKET[20..44]);
    }

    #[test]
    fn repr_emit_errors() {
        let mut r = Repr { src_addr: SRC, dst_addr: DST, protocol: Protocol::Udp, ttl: 1, payload_len: 8 };
        assert_eq!(r.emit(&mut Packet::new_unchecked(&mut [0u8; 27][..])), Err(Error::Truncated));
        r.payload_len = 65_516;
        assert_eq!(r.emit(&mut Packet::new_unchecked(&mut [0u8; 27][..])), Err(Error::Malformed));
    }

    #[test]
    fn fragments() {
        let mut buf = PACKET;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_dont_frag(false);
        p.set_more_frags(true);
        assert!(p.is_fragment() && p.more_frags() && p.frag_offset() == 0);
        p.set_more_frags(false);
        p.set_frag_offset(1480);
        assert!(p.is_fragment() && !p.more_frags() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(&buf[6..8], &[0x00, 0xb9]); // 1480 / 8 = 185
    }

    #[test]
    fn dscp_ecn() {
        let mut buf = PACKET;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_dscp(46); // EF
        p.set_ecn(0b11); // CE
        assert_eq!((p.tos(), p.dscp(), p.ecn()), (0xbb, 46, 3));
        p.set_ecn(0);
        assert_eq!((p.dscp(), p.ecn()), (46, 0));
    }

    #[test]
    fn bad_checksum_detected() {
        let mut buf = PACKET;
        buf[11] ^= 1;
        assert!(!Packet::new_checked(&buf[..]).unwrap().verify_checksum());
    }

    #[test]
    fn options_and_payload_with_ihl_6() {
        let mut buf = vec![0u8; 28];
        buf[..20].copy_from_slice(&PACKET[..20]);
        buf[0] = 0x46;
        buf[3] = 28;
        buf[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // router alert
        buf[24..28].copy_from_slice(&[1, 2, 3, 4]);
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        let h = Ipv4HeaderSlice::from_slice(&buf).unwrap();
        assert_eq!(h.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
    }

    #[test]
    fn short_buffer() {
        for n in 0..MIN_HEADER_LEN {
            assert_eq!(Packet::new_checked(&PACKET[..n]).err(), Some(Error::Truncated), "len {n}");
        }
    }

    #[test]
    fn bad_version() {
        for v in [0u8, 5, 6, 15] {
            let mut buf = PACKET;
            buf[0] = v << 4 | 5;
            assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
        }
    }

    #[test]
    fn ihl_below_5() {
        for ihl in 0..5u8 {
            let mut buf = PACKET;
            buf[0] = 0x40 | ihl;
            assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
        }
    }

    #[test]
    fn ihl_beyond_buffer() {
        let mut buf = [0u8; 40];
        buf[..20].copy_from_slice(&PACKET[..20]);
        buf[0] = 0x4f; // 60-byte header in a 40-byte buffer
        buf[3] = 40;
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
    }

    #[test]
    fn total_len_below_header_len() {
        let mut buf = PACKET;
        buf[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
        buf[0] = 0x46; // header 24 > total 20 also malformed
        buf[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
    }

    #[test]
    fn total_len_beyond_frame() {
        let mut buf = PACKET;
        buf[2..4].copy_from_slice(&47u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
        // The same packet cut short by the link layer.
        assert_eq!(Packet::new_checked(&PACKET[..43]).err(), Some(Error::Truncated));
        // Exactly the buffer length is fine.
        buf[2..4].copy_from_slice(&46u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&buf[..]).unwrap().payload().len(), 26);
    }

    #[test]
    fn protocol_numbers() {
        for (p, n) in [
            (Protocol::Icmp, 1u8),
            (Protocol::IpIp, 4),
            (Protocol::Tcp, 6),
            (Protocol::Udp, 17),
            (Protocol::Unknown(47), 47),
        ] {
            assert_eq!(Protocol::from(n), p);
            assert_eq!(u8::from(p), n);
        }
    }

    #[test]
    fn rewrite_and_ttl_match_recompute() {
        let mut buf = PACKET;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.rewrite_src_addr(Ipv4Addr::new(172, 16, 0, 1));
        p.rewrite_dst_addr(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(p.decrement_ttl(), 63);
        let incremental = p.checksum();
        p.fill_checksum();
        assert_eq!(incremental, p.checksum());
        let h = Ipv4HeaderSlice::from_slice(&buf).unwrap();
        assert_eq!(h.ttl(), 63);
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
    }

    #[test]
    fn ttl_zero_is_left_alone() {
        let mut buf = PACKET;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_ttl(0);
        p.fill_checksum();
        let before = p.checksum();
        assert_eq!(p.decrement_ttl(), 0);
        assert_eq!((p.ttl(), p.checksum()), (0, before));
    }

    #[test]
    fn we_read_etherparse_packet() {
        let builder = PacketBuilder::ipv4(SRC.octets(), DST.octets(), 17).udp(1000, 53);
        let payload = [7u8; 5];
        let mut buf = Vec::new();
        builder.write(&mut buf, &payload).unwrap();
        buf.extend_from_slice(&[0, 0, 0]); // padding
        let p = Packet::new_checked(&buf[..]).unwrap();
        let h = Ipv4HeaderSlice::from_slice(&buf).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), usize::from(h.ihl()) * 4);
        assert_eq!(p.total_len(), h.total_len());
        assert_eq!(p.ident(), h.identification());
        assert_eq!(p.dont_frag(), h.dont_fragment());
        assert_eq!(p.ttl(), 17);
        assert_eq!(p.protocol(), Protocol::Udp);
        assert_eq!(p.checksum(), h.header_checksum());
        assert_eq!((p.src_addr(), p.dst_addr()), (SRC, DST));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 8 + payload.len());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = (p.version(), p.header_len(), p.tos(), p.dscp(), p.ecn(), p.total_len());
                let _ = (p.ident(), p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment());
                let _ = (p.ttl(), p.protocol(), p.checksum(), p.src_addr(), p.dst_addr());
                let _ = (p.verify_checksum(), p.options().len(), p.payload().len());
                prop_assert!(Repr::parse(&p).is_ok());
            }
        }

        #[test]
        fn random_header_with_valid_prefix_never_panics(
            ver_ihl in 0x40u8..0x50,
            len: u16,
            rest in proptest::collection::vec(any::<u8>(), 16..80),
        ) {
            let mut data = vec![ver_ihl, 0];
            data.extend_from_slice(&len.to_be_bytes());
            data.extend_from_slice(&rest);
            if let Ok(mut p) = Packet::new_checked(&mut data[..]) {
                let _ = (p.options().len(), p.payload().len(), p.verify_checksum());
                p.fill_checksum();
                prop_assert!(p.verify_checksum());
                let _ = p.payload_mut().len();
            }
        }

        /// Our setters + fill_checksum, read back by etherparse.
        #[test]
        fn etherparse_reads_what_we_write(
            tos: u8, ident: u16, df: bool, mf: bool, off in 0u16..8192, ttl: u8, proto: u8,
            src: [u8; 4], dst: [u8; 4], payload_len in 0usize..64,
        ) {
            let mut buf = vec![0u8; 20 + payload_len];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            p.set_version(4);
            p.set_header_len(20);
            p.set_tos(tos);
            p.set_total_len((20 + payload_len) as u16);
            p.set_ident(ident);
            p.set_dont_frag(df);
            p.set_more_frags(mf);
            p.set_frag_offset(off * 8);
            p.set_ttl(ttl);
            p.set_protocol(Protocol::from(proto));
            p.set_src_addr(Ipv4Addr::from(src));
            p.set_dst_addr(Ipv4Addr::from(dst));
            p.fill_checksum();
            let h = Ipv4HeaderSlice::from_slice(&buf).unwrap();
            prop_assert_eq!(h.dcp().value(), tos >> 2);
            prop_assert_eq!(h.ecn().value(), tos & 3);
            prop_assert_eq!(h.identification(), ident);
            prop_assert_eq!(h.dont_fragment(), df);
            prop_assert_eq!(h.more_fragments(), mf);
            prop_assert_eq!(h.fragments_offset().value(), off);
            prop_assert_eq!(h.ttl(), ttl);
            prop_assert_eq!(h.protocol(), IpNumber(proto));
            prop_assert_eq!(h.source(), src);
            prop_assert_eq!(h.destination(), dst);
            prop_assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        }

        /// Headers built by etherparse, read by us.
        #[test]
        fn we_read_what_etherparse_writes(
            ttl: u8, proto: u8, src: [u8; 4], dst: [u8; 4], ident: u16, df: bool,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut h = Ipv4Header::new(payload.len() as u16, ttl, IpNumber(proto), src, dst).unwrap();
            h.identification = ident;
            h.dont_fragment = df;
            h.header_checksum = h.calc_header_checksum();
            let mut buf = h.to_bytes().to_vec();
            buf.extend_from_slice(&payload);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(p.ttl(), ttl);
            prop_assert_eq!(u8::from(p.protocol()), proto);
            prop_assert_eq!(p.ident(), ident);
            prop_assert_eq!(p.dont_frag(), df);
            prop_assert_eq!(p.src_addr().octets(), src);
            prop_assert_eq!(p.dst_addr().octets(), dst);
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        /// NAT-style rewrites with incremental updates equal a full recompute,
        /// and etherparse agrees the result is valid.
        #[test]
        fn incremental_rewrite_matches_recompute(
            src: [u8; 4], dst: [u8; 4], new_src: [u8; 4], new_dst: [u8; 4],
            ttl in 1u8..=255, ident: u16, proto: u8,
        ) {
            let mut h = Ipv4Header::new(0, ttl, IpNumber(proto), src, dst).unwrap();
            h.identification = ident;
            h.header_checksum = h.calc_header_checksum();
            let mut buf = h.to_bytes().to_vec();
            let mut p = Packet::new_checked(&mut buf[..]).unwrap();
            p.rewrite_src_addr(Ipv4Addr::from(new_src));
            p.rewrite_dst_addr(Ipv4Addr::from(new_dst));
            p.decrement_ttl();
            let incremental = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(incremental, p.checksum());
            let h2 = Ipv4HeaderSlice::from_slice(&buf).unwrap();
            prop_assert_eq!(h2.header_checksum(), h2.to_header().calc_header_checksum());
            prop_assert_eq!(h2.source(), new_src);
        }
    }

    #[test]
    fn etherparse_sliced_packet_agrees_on_payload() {
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&PACKET);
        let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
        let p = Packet::new_checked(&frame[14..]).unwrap();
        match sliced.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => {
                assert_eq!(ip.payload().payload, p.payload());
            }
            other => panic!("expected IPv4, got {other:?}"),
        }
    }
}
