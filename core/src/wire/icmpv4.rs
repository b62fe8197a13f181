//! ICMP for IPv4 (RFC 792).
//!
//! The view covers the 8-byte header and the data after it; ICMP has no
//! length field, so build it over the IPv4 payload (which excludes Ethernet
//! padding): the checksum covers the whole buffer. After
//! [`Packet::check_len`] the buffer holds at least the 8-byte header.
//!
//! Bytes 4..8 depend on the type: identifier and sequence number for echo
//! messages, the next-hop MTU (RFC 1191) in bytes 6..8 for "fragmentation
//! needed". For error messages [`Packet::data`] holds the offending IPv4
//! header and at least 8 bytes of its payload, which is how a load balancer
//! finds the session an error belongs to.

use super::checksum;
use super::{read_u16, write_u16, Error, Result};

/// The ICMP message type (RFC 792; IANA "ICMP Type Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// 0, echo reply.
    EchoReply,
    /// 3, destination unreachable.
    DstUnreachable,
    /// 8, echo request.
    EchoRequest,
    /// 11, time exceeded.
    TimeExceeded,
    /// Any other value (never one of the above).
    Unknown(u8),
}

impl From<u8> for Message {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            0 => Message::EchoReply,
            3 => Message::DstUnreachable,
            8 => Message::EchoRequest,
            11 => Message::TimeExceeded,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    #[inline]
    fn from(m: Message) -> Self {
        match m {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::Unknown(other) => other,
        }
    }
}

/// Destination-unreachable code "fragmentation needed and DF set"
/// (RFC 792), whose header carries the next-hop MTU (RFC 1191).
pub const CODE_FRAG_NEEDED: u8 = 4;

/// Header field offsets (RFC 792).
pub mod field {
    use core::ops::{Range, RangeFrom};

    /// Type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum over the whole ICMP message.
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo identifier.
    pub const ECHO_IDENT: Range<usize> = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Next-hop MTU of "fragmentation needed" (RFC 1191).
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    /// Data after the header.
    pub const DATA: RangeFrom<usize> = 8..;
}

/// Length of the ICMP header.
pub const HEADER_LEN: usize = field::DATA.start;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the ICMP header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than the header.
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

    /// `Err(Truncated)` if the buffer is shorter than the 8-byte header.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// Next-hop MTU (meaningful for destination unreachable, code 4).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::NEXT_HOP_MTU])
    }

    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// True if the checksum over the whole buffer is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type (checksum untouched).
    #[inline]
    pub fn set_msg_type(&mut self, m: Message) {
        self.buffer.as_mut()[field::TYPE] = m.into();
    }

    /// Sets the code (checksum untouched).
    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Stores a checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_IDENT], v);
    }

    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_SEQNO], v);
    }

    /// Sets the next-hop MTU.
    #[inline]
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::NEXT_HOP_MTU], v);
    }

    /// Everything after the 8-byte header, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes and stores the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Turns an echo request into an echo reply in place, updating the
    /// checksum incrementally (RFC 1624; type and code form one word).
    /// Identifier, sequence number and data stay as received (RFC 792).
    #[inline]
    pub fn make_echo_reply(&mut self) {
        let data = self.buffer.as_ref();
        let old = u16::from_be_bytes([data[field::TYPE], data[field::CODE]]);
        let c = checksum::update16(self.checksum(), old, 0);
        self.set_msg_type(Message::EchoReply);
        self.set_code(0);
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::Frame;
    use crate::wire::ipv4;
    use etherparse::{icmpv4::DestUnreachableHeader, IcmpEchoHeader, Icmpv4Slice, Icmpv4Type, PacketBuilder};
    use proptest::prelude::*;

    #[rustfmt::skip]
    const ECHO_REQUEST: [u8; 16] = [
        0x08,                   // type: echo request
        0x00,                   // code 0
        0x54, 0x35,             // checksum
        0x12, 0x34,             // identifier
        0x00, 0x01,             // sequence number 1
        b'a', b'b', b'c', b'd', // data "abcdefgh"
        b'e', b'f', b'g', b'h',
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.msg_type(), Message::EchoRequest);
        assert_eq!(p.code(), 0);
        assert_eq!(p.checksum(), 0x5435);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data(), b"abcdefgh");
        assert!(p.verify_checksum());
    }

    #[test]
    fn construct() {
        let mut buf = [0xffu8; 16];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Message::EchoRequest);
        p.set_code(0);
        p.set_echo_ident(0x1234);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(b"abcdefgh");
        p.fill_checksum();
        assert_eq!(buf, ECHO_REQUEST);
    }

    #[test]
    fn echo_reply_in_place() {
        let mut buf = ECHO_REQUEST;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.make_echo_reply();
        assert_eq!(p.msg_type(), Message::EchoReply);
        assert!(p.verify_checksum());
        let incremental = p.checksum();
        p.fill_checksum();
        assert_eq!(incremental, p.checksum());
        assert_eq!((p.echo_ident(), p.echo_seq_no(), p.data()), (0x1234, 1, &b"abcdefgh"[..]));
    }

    #[test]
    fn short_buffer() {
        for n in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&ECHO_REQUEST[..n]).err(), Some(Error::Truncated), "len {n}");
        }
        assert!(Packet::new_checked(&ECHO_REQUEST[..8]).unwrap().data().is_empty());
    }

    #[test]
    fn bad_checksum_detected() {
        let mut buf = ECHO_REQUEST;
        buf[15] ^= 0x40;
        assert!(!Packet::new_checked(&buf[..]).unwrap().verify_checksum());
    }

    #[test]
    fn message_numbers() {
        for (m, n) in [
            (Message::EchoReply, 0u8),
            (Message::DstUnreachable, 3),
            (Message::EchoRequest, 8),
            (Message::TimeExceeded, 11),
            (Message::Unknown(5), 5),
        ] {
            assert_eq!(Message::from(n), m);
            assert_eq!(u8::from(m), n);
        }
    }

    #[test]
    fn frag_needed_read_by_etherparse() {
        // A "fragmentation needed" error quoting the IPv4 header of ipv4.rs.
        let mut buf = vec![0u8; 8 + 28];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Message::DstUnreachable);
        p.set_code(CODE_FRAG_NEEDED);
        p.set_next_hop_mtu(1400);
        #[rustfmt::skip]
        let quoted: [u8; 28] = [
            0x45, 0x00, 0x05, 0xdc, 0x12, 0x34, 0x40, 0x00, // v4 IHL 5, len 1500, DF
            0x40, 0x06, 0x00, 0x00, 0xc0, 0xa8, 0x01, 0x0a, // TTL 64, TCP, src
            0x0a, 0x00, 0x00, 0x01,                         // dst
            0xc0, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, // ports, seq
        ];
        p.data_mut().copy_from_slice(&quoted);
        p.fill_checksum();
        let e = Icmpv4Slice::from_slice(&buf).unwrap();
        assert_eq!(
            e.icmp_type(),
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1400
            })
        );
        assert_eq!(e.checksum(), e.icmp_type().calc_checksum(e.payload()));
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1400);
        let inner = ipv4::Packet::new_unchecked(p.data());
        assert_eq!(inner.dst_addr(), std::net::Ipv4Addr::new(10, 0, 0, 1));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = (p.msg_type(), p.code(), p.checksum(), p.echo_ident(), p.echo_seq_no());
                let _ = (p.next_hop_mtu(), p.data().len(), p.verify_checksum());
            }
        }

        /// etherparse builds an echo request in a frame; we read it and
        /// answer it in place; etherparse validates the reply.
        #[test]
        fn echo_round_trip_with_etherparse(
            id: u16, seq: u16, payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .icmpv4_echo_request(id, seq);
            let mut frame = Vec::new();
            b.write(&mut frame, &payload).unwrap();
            frame.resize(frame.len().max(60), 0);

            let mut eth = Frame::new_checked(&mut frame[..]).unwrap();
            let mut ip = ipv4::Packet::new_checked(eth.payload_mut()).unwrap();
            prop_assert_eq!(ip.protocol(), ipv4::Protocol::Icmp);
            let mut p = Packet::new_checked(ip.payload_mut()).unwrap();
            prop_assert_eq!(p.msg_type(), Message::EchoRequest);
            prop_assert_eq!((p.echo_ident(), p.echo_seq_no()), (id, seq));
            prop_assert_eq!(p.data(), &payload[..]);
            prop_assert!(p.verify_checksum());
            p.make_echo_reply();

            let icmp_len = 8 + payload.len();
            let e = Icmpv4Slice::from_slice(&frame[34..34 + icmp_len]).unwrap();
            prop_assert_eq!(e.icmp_type(), Icmpv4Type::EchoReply(IcmpEchoHeader { id, seq }));
            prop_assert_eq!(e.checksum(), e.icmp_type().calc_checksum(e.payload()));
        }

        /// We write with setters + fill_checksum; etherparse validates.
        #[test]
        fn etherparse_reads_what_we_write(
            id: u16, seq: u16, payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut buf = vec![0u8; 8 + payload.len()];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            p.set_msg_type(Message::EchoRequest);
            p.set_echo_ident(id);
            p.set_echo_seq_no(seq);
            p.data_mut().copy_from_slice(&payload);
            p.fill_checksum();
            let e = Icmpv4Slice::from_slice(&buf).unwrap();
            prop_assert_eq!(e.icmp_type(), Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq }));
            prop_assert_eq!(e.checksum(), e.icmp_type().calc_checksum(e.payload()));
        }
    }
}
