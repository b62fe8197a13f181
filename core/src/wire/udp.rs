//! UDP datagrams (RFC 768).
//!
//! After [`Packet::check_len`]: `8 <= len() <= buffer length`, so
//! [`Packet::payload`] (`8..len`) is in bounds and excludes anything after
//! the datagram (Ethernet padding if the view was built over more than the
//! IPv4 payload).
//!
//! Checksum rules (RFC 768), applied by every method here that writes one:
//! a stored `0` means "no checksum" and verifies as valid; a computed `0` is
//! stored as `0xffff`; an incremental update of a datagram without a
//! checksum leaves the `0` alone. The checksum covers the IPv4 pseudo
//! header, so NAT must call [`Packet::update_checksum_for_addr`] for each
//! rewritten address.

use std::net::Ipv4Addr;

use super::checksum;
use super::{read_u16, write_u16, Error, Result};

/// IP protocol number of UDP, for the pseudo header.
const PROTOCOL: u8 = 17;

/// Header field offsets (RFC 768).
pub mod field {
    use core::ops::Range;

    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length of header and payload.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum (0 = none).
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the UDP header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than the header or than `len()`.
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

    /// Buffer shorter than 8 bytes: `Truncated`; length field < 8:
    /// `Malformed`; length field longer than the buffer: `Truncated`.
    /// (A length of 0, used by IPv6 jumbograms, is `Malformed` here.)
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let buf_len = self.buffer.as_ref().len();
        if buf_len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len > buf_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Length of header and payload, from the header.
    #[inline]
    #[allow(clippy::len_without_is_empty)] // a header field, not a container
    pub fn len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Checksum as stored (0 = none).
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The payload, `8..len`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Folded, uncomplemented sum of pseudo header and datagram (`..len`).
    #[inline]
    fn full_sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let len = self.len();
        let data = &self.buffer.as_ref()[..usize::from(len)];
        checksum::fold(checksum::pseudo_header(src, dst, PROTOCOL, len) + checksum::sum(data))
    }

    /// True if the checksum is valid for a datagram from `src` to `dst`, or
    /// absent (0).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || self.full_sum(src, dst) == 0xffff
    }
}

/// A computed checksum of 0 is transmitted as all ones (RFC 768).
#[inline]
fn zero_to_ffff(c: u16) -> u16 {
    if c == 0 {
        0xffff
    } else {
        c
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port (checksum untouched).
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(&mut self.buffer.as_mut()[field::SRC_PORT], port);
    }

    /// Sets the destination port (checksum untouched).
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(&mut self.buffer.as_mut()[field::DST_PORT], port);
    }

    /// Sets the length field. Re-run `check_len` before reading the payload.
    #[inline]
    pub fn set_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Stores a checksum as given (0 = none).
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// The payload (`8..len`), mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }

    /// Computes and stores the checksum over the IPv4 pseudo header and
    /// bytes `..len`; a computed 0 is stored as `0xffff` (RFC 768).
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = !self.full_sum(src, dst);
        self.set_checksum(zero_to_ffff(c));
    }

    /// Applies an RFC 1624 update to a present checksum; keeps 0 (none).
    #[inline]
    fn update_checksum(&mut self, update: impl FnOnce(u16) -> u16) {
        let c = self.checksum();
        if c != 0 {
            self.set_checksum(zero_to_ffff(update(c)));
        }
    }

    /// Sets the source port and updates the checksum incrementally
    /// (RFC 1624), unless the datagram has none.
    #[inline]
    pub fn rewrite_src_port(&mut self, port: u16) {
        let old = self.src_port();
        self.update_checksum(|c| checksum::update16(c, old, port));
        self.set_src_port(port);
    }

    /// Sets the destination port and updates the checksum incrementally,
    /// unless the datagram has none.
    #[inline]
    pub fn rewrite_dst_port(&mut self, port: u16) {
        let old = self.dst_port();
        self.update_checksum(|c| checksum::update16(c, old, port));
        self.set_dst_port(port);
    }

    /// Updates the checksum for a pseudo-header address that the IPv4
    /// header changed from `old` to `new`, unless the datagram has none.
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.update_checksum(|c| checksum::update_addr(c, old, new));
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The fields of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length (`len - 8`).
    pub payload_len: usize,
}

impl Repr {
    /// Reads a datagram after [`Packet::check_len`]; the checksum is not
    /// verified (see [`Packet::verify_checksum`]).
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// Length of header and payload.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header with checksum 0. Write the payload next, then call
    /// [`Packet::fill_checksum`] (or leave 0, or let the NIC fill it).
    /// `Err(Malformed)` if the length does not fit 16 bits, `Err(Truncated)`
    /// if the buffer cannot hold header and payload.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let len = u16::try_from(self.buffer_len()).map_err(|_| Error::Malformed)?;
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::Truncated);
        }
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::Frame;
    use crate::wire::ipv4;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice, UdpHeader, UdpSlice};
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

    // A datagram followed by two bytes that are not part of it.
    #[rustfmt::skip]
    const DATAGRAM: [u8; 14] = [
        0x00, 0x35,             // source port 53
        0x82, 0x35,             // destination port 33333
        0x00, 0x0c,             // length 12
        0xec, 0xf1,             // checksum (pseudo header 10.0.0.1 -> 192.168.1.10)
        0x61, 0x62, 0x63, 0x64, // payload "abcd"
        0xff, 0xff,             // trailing bytes (e.g. Ethernet padding)
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(p.src_port(), 53);
        assert_eq!(p.dst_port(), 33333);
        assert_eq!(p.len(), 12);
        assert_eq!(p.checksum(), 0xecf1);
        assert_eq!(p.payload(), b"abcd");
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(192, 168, 1, 11)));
    }

    #[test]
    fn construct() {
        let mut buf = [0xffu8; 14];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(53);
        p.set_dst_port(33333);
        p.set_len(12);
        p.payload_mut().copy_from_slice(b"abcd");
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, DATAGRAM);
    }

    #[test]
    fn repr_round_trip() {
        let repr = Repr::parse(&Packet::new_checked(&DATAGRAM[..]).unwrap()).unwrap();
        assert_eq!(repr, Repr { src_port: 53, dst_port: 33333, payload_len: 4 });
        let mut buf = [0xffu8; 14];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p).unwrap();
        assert_eq!(p.checksum(), 0);
        p.payload_mut().copy_from_slice(b"abcd");
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, DATAGRAM);
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut [0u8; 11][..])), Err(Error::Truncated));
        let huge = Repr { payload_len: 65_528, ..repr };
        assert_eq!(huge.emit(&mut Packet::new_unchecked(&mut [0u8; 8][..])), Err(Error::Malformed));
    }

    #[test]
    fn short_buffer() {
        for n in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&DATAGRAM[..n]).err(), Some(Error::Truncated), "len {n}");
        }
    }

    #[test]
    fn len_below_8() {
        for len in 0..8u16 {
            let mut buf = DATAGRAM;
            buf[4..6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed), "len {len}");
        }
    }

    #[test]
    fn len_beyond_buffer() {
        let mut buf = DATAGRAM;
        buf[4..6].copy_from_slice(&15u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
        assert_eq!(Packet::new_checked(&DATAGRAM[..11]).err(), Some(Error::Truncated));
        // Header-only datagram.
        buf[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert!(Packet::new_checked(&buf[..]).unwrap().payload().is_empty());
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut buf = DATAGRAM;
        buf[6..8].fill(0);
        buf[8] = b'X'; // payload no longer matches any checksum
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        p.rewrite_src_port(1);
        p.rewrite_dst_port(2);
        p.update_checksum_for_addr(SRC, DST);
        assert_eq!(p.checksum(), 0);
        assert_eq!((p.src_port(), p.dst_port()), (1, 2));
    }

    /// Ones-complement addition of two 16-bit words.
    fn oc_add(a: u16, b: u16) -> u16 {
        checksum::fold(u32::from(a) + u32::from(b))
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Adjust the first payload word so the datagram sums to 0xffff:
        // adding the current checksum C to a word adds ~S to the sum S.
        let mut buf = DATAGRAM;
        let word = u16::from_be_bytes([buf[8], buf[9]]);
        buf[8..10].copy_from_slice(&oc_add(word, 0xecf1).to_be_bytes());
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
        // etherparse computes the same transmitted value.
        let h = UdpSlice::from_slice(&buf[..12]).unwrap();
        let want = h.to_header().calc_checksum_ipv4_raw(SRC.octets(), DST.octets(), h.payload()).unwrap();
        assert_eq!(want, 0xffff);
    }

    #[test]
    fn incremental_update_to_zero_is_sent_as_ffff() {
        // Rewriting the source port from P to P + C (ones-complement) moves
        // the sum to 0xffff, i.e. a computed checksum of 0.
        let mut buf = DATAGRAM;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        let new_port = oc_add(53, 0xecf1);
        p.rewrite_src_port(new_port);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
        let incremental = p.checksum();
        p.fill_checksum(SRC, DST);
        assert_eq!(incremental, p.checksum());
        // And back from 0xffff (computed 0) to the original.
        p.rewrite_src_port(53);
        assert_eq!(p.checksum(), 0xecf1);
    }

    #[test]
    fn padding_excluded_from_checksum() {
        let mut buf = DATAGRAM;
        buf[12] = 0x12; // garbage after the datagram
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
    }

    fn build(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .udp(sport, dport);
        let mut buf = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut buf, payload).unwrap();
        if buf.len() < 60 {
            buf.resize(60, 0);
        }
        buf
    }

    /// etherparse parses the frame and validates both checksums itself.
    fn etherparse_valid(frame: &[u8]) -> UdpSlice<'_> {
        let sliced = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else { panic!("not IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        let Some(TransportSlice::Udp(udp)) = sliced.transport else { panic!("not UDP") };
        let header: UdpHeader = udp.to_header();
        let want = header.calc_checksum_ipv4_raw(h.source, h.destination, udp.payload()).unwrap();
        assert_eq!(udp.checksum(), want, "UDP checksum");
        udp
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = (p.src_port(), p.dst_port(), p.len(), p.checksum(), p.payload().len());
                let _ = p.verify_checksum(SRC, DST);
                prop_assert!(Repr::parse(&p).is_ok());
            }
        }

        #[test]
        fn we_read_what_etherparse_writes(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16,
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let frame = build(src, dst, sport, dport, &payload);
            let eth = Frame::new_checked(&frame[..]).unwrap();
            let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
            prop_assert!(ip.verify_checksum());
            prop_assert_eq!(ip.protocol(), ipv4::Protocol::Udp);
            let p = Packet::new_checked(ip.payload()).unwrap();
            prop_assert_eq!(p.src_port(), sport);
            prop_assert_eq!(p.dst_port(), dport);
            prop_assert_eq!(usize::from(p.len()), 8 + payload.len());
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_ne!(p.checksum(), 0);
            prop_assert!(p.verify_checksum(ip.src_addr(), ip.dst_addr()));
        }

        #[test]
        fn etherparse_reads_what_we_write(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16,
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let udp_len = 8 + payload.len();
            let mut frame = vec![0u8; (14 + 20 + udp_len).max(60)];
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            let repr = ipv4::Repr { src_addr: src, dst_addr: dst, protocol: ipv4::Protocol::Udp, ttl: 9, payload_len: udp_len };
            let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..]);
            repr.emit(&mut ip).unwrap();
            let mut p = Packet::new_unchecked(ip.payload_mut());
            Repr { src_port: sport, dst_port: dport, payload_len: payload.len() }.emit(&mut p).unwrap();
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum(src, dst);
            let e = etherparse_valid(&frame);
            prop_assert_eq!((e.source_port(), e.destination_port()), (sport, dport));
            prop_assert_eq!(e.payload(), &payload[..]);
        }

        /// Full-NAT rewrite of both addresses and both ports: incremental
        /// checksums equal a full recompute (with the 0 -> 0xffff rule), and
        /// etherparse validates the result.
        #[test]
        fn nat_rewrite_incremental_equals_recompute(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16,
            payload in proptest::collection::vec(any::<u8>(), 0..100),
            new_src: [u8; 4], new_dst: [u8; 4], new_sport: u16, new_dport: u16,
        ) {
            let mut frame = build(src, dst, sport, dport, &payload);
            let (new_src, new_dst) = (Ipv4Addr::from(new_src), Ipv4Addr::from(new_dst));
            let mut eth = Frame::new_checked(&mut frame[..]).unwrap();
            let mut ip = ipv4::Packet::new_checked(eth.payload_mut()).unwrap();
            let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
            ip.rewrite_src_addr(new_src);
            ip.rewrite_dst_addr(new_dst);
            let ip_incremental = ip.checksum();
            let mut p = Packet::new_checked(ip.payload_mut()).unwrap();
            p.update_checksum_for_addr(old_src, new_src);
            p.update_checksum_for_addr(old_dst, new_dst);
            p.rewrite_src_port(new_sport);
            p.rewrite_dst_port(new_dport);
            let l4_incremental = p.checksum();
            prop_assert_ne!(l4_incremental, 0);
            prop_assert!(p.verify_checksum(new_src, new_dst));
            p.fill_checksum(new_src, new_dst);
            prop_assert_eq!(l4_incremental, p.checksum());
            ip.fill_checksum();
            prop_assert_eq!(ip_incremental, ip.checksum());
            let e = etherparse_valid(&frame);
            prop_assert_eq!((e.source_port(), e.destination_port()), (new_sport, new_dport));
        }

        /// Single-port rewrites that land exactly on a computed 0 and back.
        #[test]
        fn port_rewrite_through_zero(sport: u16, dport: u16, payload in proptest::collection::vec(any::<u8>(), 0..20)) {
            let frame = build([10, 0, 0, 1], [10, 0, 0, 2], sport, dport, &payload);
            let mut l4 = frame[34..34 + 8 + payload.len()].to_vec();
            let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
            let mut p = Packet::new_checked(&mut l4[..]).unwrap();
            // The port that makes the computed checksum 0.
            let c = p.checksum();
            let zero_port = oc_add(sport, if c == 0xffff { 0 } else { c });
            p.rewrite_src_port(zero_port);
            let inc = p.checksum();
            p.fill_checksum(a, b);
            prop_assert_eq!(inc, p.checksum());
            prop_assert!(p.verify_checksum(a, b));
            p.rewrite_src_port(sport);
            let inc = p.checksum();
            p.fill_checksum(a, b);
            prop_assert_eq!(inc, p.checksum());
        }
    }
}
