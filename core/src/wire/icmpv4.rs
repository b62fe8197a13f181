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

use std::net::Ipv4Addr;

use super::checksum;
use super::{ipv4, tcp, udp};
use super::{read_u16, write_u16, Error, FlowKey, Result};

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

impl Message {
    /// Whether this is an error that quotes the offending packet and that a
    /// load balancer translates: destination unreachable (including
    /// "fragmentation needed") and time exceeded (RFC 792).
    #[inline]
    pub fn is_error(self) -> bool {
        matches!(self, Message::DstUnreachable | Message::TimeExceeded)
    }
}

/// Bytes of the offending packet's payload an error quotes at least
/// (RFC 792): enough for the TCP/UDP ports.
pub const QUOTED_L4_LEN: usize = 8;

/// Destination-unreachable code "fragmentation needed and DF set"
/// (RFC 792), whose header carries the next-hop MTU (RFC 1191).
pub const CODE_FRAG_NEEDED: u8 = 4;

/// Destination-unreachable code "port unreachable" (RFC 792).
pub const CODE_PORT_UNREACHABLE: u8 = 3;

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

    /// The TCP/UDP flow an error message quotes (RFC 792: the offending
    /// IPv4 header and at least [`QUOTED_L4_LEN`] bytes of its payload), or
    /// `None` if this is not an error ([`Message::is_error`]), the quote is
    /// not IPv4 TCP/UDP, or it is too short. The quoted packet is normally
    /// cut short, so its total length is not checked against the buffer.
    #[inline]
    pub fn quoted(&self) -> Option<FlowKey> {
        let (ip, hl) = self.quoted_header()?;
        let proto = ip.protocol();
        if !matches!(proto, ipv4::Protocol::Tcp | ipv4::Protocol::Udp) {
            return None;
        }
        let (sport, dport) = super::ports(&self.data()[hl..])?;
        Some(FlowKey { proto, src: u32::from(ip.src_addr()), sport, dst: u32::from(ip.dst_addr()), dport })
    }

    /// The quoted IPv4 header and its length, if the message is an error
    /// that holds a whole one plus [`QUOTED_L4_LEN`] bytes.
    #[inline]
    fn quoted_header(&self) -> Option<(ipv4::Packet<&[u8]>, usize)> {
        if !self.msg_type().is_error() {
            return None;
        }
        let inner = self.data();
        if inner.len() < ipv4::MIN_HEADER_LEN {
            return None;
        }
        let ip = ipv4::Packet::new_unchecked(inner);
        let hl = ip.header_len();
        if ip.version() != 4 || hl < ipv4::MIN_HEADER_LEN || inner.len() < hl + QUOTED_L4_LEN {
            return None;
        }
        Some((ip, hl))
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
        // An all-zero reply (identifier, sequence and data 0) sums to 0, and
        // a full recompute gives 0xffff where RFC 1624's update gives 0.
        // Any other reply whose update gives 0 is right as it is (its sum
        // folds to 0xffff): what a full recompute gives, in both cases.
        let c = if c == 0 && data[field::CHECKSUM.end..].iter().all(|b| *b == 0) { 0xffff } else { c };
        self.set_msg_type(Message::EchoReply);
        self.set_code(0);
        self.set_checksum(c);
    }

    /// Rewrites the packet an error quotes to `src -> dst` (address, port)
    /// and recomputes the ICMP checksum, which covers the quote. Call it
    /// only after [`Packet::quoted`] returned `Some` (else it may panic).
    ///
    /// As IPVS (`ip_vs_nat_icmp`): the quoted IPv4 header checksum is
    /// recomputed; a quoted UDP checksum, which lies within the 8 quoted
    /// bytes, is updated incrementally by the UDP view (RFC 1624, keeping
    /// RFC 768's "no checksum" 0); a quoted TCP checksum lies beyond them
    /// and is left alone.
    pub fn rewrite_quoted(&mut self, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) {
        let hl = ipv4::Packet::new_unchecked(self.data()).header_len();
        let data = self.data_mut();
        let (ip, l4) = data.split_at_mut(hl);
        let mut ip = ipv4::Packet::new_unchecked(ip);
        let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(src.0);
        ip.set_dst_addr(dst.0);
        ip.fill_checksum();
        let l4 = &mut l4[..QUOTED_L4_LEN];
        if ip.protocol() == ipv4::Protocol::Udp {
            let mut u = udp::Packet::new_unchecked(l4);
            u.update_checksum_for_addr(old_src, src.0);
            u.update_checksum_for_addr(old_dst, dst.0);
            u.rewrite_src_port(src.1);
            u.rewrite_dst_port(dst.1);
        } else {
            let mut t = tcp::Packet::new_unchecked(l4);
            t.set_src_port(src.1);
            t.set_dst_port(dst.1);
        }
        self.fill_checksum();
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests;
