//! ICMPv6 (RFC 4443) and the neighbour-discovery messages NS and NA
//! (RFC 4861 §4.3, §4.4) with their link-layer address options (§4.6.1).
//!
//! ICMPv6 has no length field: build the view over the upper-layer bytes
//! of the IPv6 packet (`ipv6::Packet::upper_layer`, which excludes Ethernet
//! padding); the checksum covers the IPv6 pseudo header (next header 58)
//! and the whole buffer (RFC 4443 §2.3).
//!
//! After [`Packet::check_len`] the buffer holds at least the 8-byte header,
//! and for NS, NA and redirect the 16-byte target address too (24 bytes),
//! so no getter panics. [`Packet::set_msg_type`] can break that: re-run
//! `check_len` after changing the type to one of those.
//!
//! Bytes 4..8 depend on the type: identifier and sequence number for echo,
//! the MTU for Packet Too Big, the pointer for Parameter Problem, the R/S/O
//! flags for NA. Errors (types 1..=127) quote as much of the invoking
//! packet as fits in the minimum MTU, from byte 8 on ([`Packet::quoted`]).

use std::net::Ipv6Addr;

use super::checksum::{self, Delta};
use super::ethernet::MacAddr;
use super::ipv6::{self, read_ipv6, NextHeader};
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

/// The ICMPv6 message type (IANA "ICMPv6 Parameters").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// 1, destination unreachable.
    DstUnreachable,
    /// 2, packet too big (carries the MTU).
    PacketTooBig,
    /// 3, time exceeded.
    TimeExceeded,
    /// 4, parameter problem (carries a pointer).
    ParamProblem,
    /// 128, echo request.
    EchoRequest,
    /// 129, echo reply.
    EchoReply,
    /// 133, router solicitation (RFC 4861).
    RouterSolicit,
    /// 134, router advertisement (RFC 4861).
    RouterAdvert,
    /// 135, neighbour solicitation (RFC 4861).
    NeighborSolicit,
    /// 136, neighbour advertisement (RFC 4861).
    NeighborAdvert,
    /// 137, redirect (RFC 4861).
    Redirect,
    /// Any other value (never one of the above).
    Unknown(u8),
}

impl From<u8> for Message {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            1 => Message::DstUnreachable,
            2 => Message::PacketTooBig,
            3 => Message::TimeExceeded,
            4 => Message::ParamProblem,
            128 => Message::EchoRequest,
            129 => Message::EchoReply,
            133 => Message::RouterSolicit,
            134 => Message::RouterAdvert,
            135 => Message::NeighborSolicit,
            136 => Message::NeighborAdvert,
            137 => Message::Redirect,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    #[inline]
    fn from(m: Message) -> Self {
        match m {
            Message::DstUnreachable => 1,
            Message::PacketTooBig => 2,
            Message::TimeExceeded => 3,
            Message::ParamProblem => 4,
            Message::EchoRequest => 128,
            Message::EchoReply => 129,
            Message::RouterSolicit => 133,
            Message::RouterAdvert => 134,
            Message::NeighborSolicit => 135,
            Message::NeighborAdvert => 136,
            Message::Redirect => 137,
            Message::Unknown(other) => other,
        }
    }
}

impl Message {
    /// Error messages are types 0..=127 (RFC 4443 §2.1); they quote the
    /// invoking packet from byte 8 on.
    #[inline]
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }

    /// Whether the message carries a target address at bytes 8..24 (NS,
    /// NA, redirect).
    #[inline]
    fn has_target(self) -> bool {
        matches!(self, Message::NeighborSolicit | Message::NeighborAdvert | Message::Redirect)
    }
}

/// Header field offsets (RFC 4443 §2.1, §3, §4; RFC 4861 §4.3, §4.4).
pub mod field {
    use core::ops::{Range, RangeFrom};

    /// Type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum (pseudo header and whole message).
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo identifier.
    pub const ECHO_IDENT: Range<usize> = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Packet Too Big: MTU of the next-hop link.
    pub const MTU: Range<usize> = 4..8;
    /// Parameter Problem: offset of the error in the invoking packet.
    pub const POINTER: Range<usize> = 4..8;
    /// NA flags: router (0x80), solicited (0x40), override (0x20).
    pub const NA_FLAGS: usize = 4;
    /// NS/NA/redirect: target address.
    pub const TARGET_ADDR: Range<usize> = 8..24;
    /// NS/NA options.
    pub const ND_OPTIONS: RangeFrom<usize> = 24..;
    /// Data after the 8-byte header (errors: the invoking packet).
    pub const DATA: RangeFrom<usize> = 8..;
}

/// Length of the ICMPv6 header.
pub const HEADER_LEN: usize = field::DATA.start;
/// Length of an NS or NA without options.
pub const ND_LEN: usize = field::ND_OPTIONS.start;
/// Length of a source/target link-layer address option for Ethernet
/// (RFC 4861 §4.6.1; RFC 2464 §8): type, length 1, six address bytes.
pub const LL_OPTION_LEN: usize = 8;

/// NA "router" flag.
pub const NA_ROUTER: u8 = 0x80;
/// NA "solicited" flag: sent in answer to an NS.
pub const NA_SOLICITED: u8 = 0x40;
/// NA "override" flag: update an existing cache entry.
pub const NA_OVERRIDE: u8 = 0x20;

/// ND option type "source link-layer address" (RFC 4861 §4.6.1).
pub const OPT_SOURCE_LL: u8 = 1;
/// ND option type "target link-layer address" (RFC 4861 §4.6.1).
pub const OPT_TARGET_LL: u8 = 2;

/// Destination-unreachable code "port unreachable" (RFC 4443 §3.1).
pub const CODE_PORT_UNREACHABLE: u8 = 4;

/// Hop limit every ND message is sent and must be received with
/// (RFC 4861 §7.1.1, §7.1.2): proof it was not forwarded.
pub const ND_HOP_LIMIT: u8 = 255;

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of the ICMPv6 header.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than the header (or than 24 bytes for NS/NA/redirect).
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

    /// `Err(Truncated)` if the buffer is shorter than the 8-byte header, or
    /// than 24 bytes for a message with a target address (NS, NA,
    /// redirect; RFC 4861 §7.1.1 requires them to be that long).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || (self.msg_type().has_target() && len < ND_LEN) {
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

    /// MTU (meaningful for Packet Too Big).
    #[inline]
    pub fn mtu(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::MTU])
    }

    /// Pointer (meaningful for Parameter Problem).
    #[inline]
    pub fn pointer(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::POINTER])
    }

    /// NA flags byte (router, solicited, override in the high bits).
    #[inline]
    pub fn na_flags(&self) -> u8 {
        self.buffer.as_ref()[field::NA_FLAGS] & (NA_ROUTER | NA_SOLICITED | NA_OVERRIDE)
    }

    /// Target address of an NS, NA or redirect (`::` for other types).
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        if self.msg_type().has_target() {
            read_ipv6(&self.buffer.as_ref()[field::TARGET_ADDR])
        } else {
            Ipv6Addr::UNSPECIFIED
        }
    }

    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// Folded, uncomplemented sum of pseudo header and message.
    #[inline]
    fn full_sum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let data = self.buffer.as_ref();
        let ph = ipv6::pseudo_header(src, dst, NextHeader::Icmpv6, data.len() as u32);
        checksum::fold(ph + checksum::sum(data))
    }

    /// True if the checksum is valid for a message from `src` to `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.full_sum(src, dst) == 0xffff
    }

    /// The ND options of an NS or NA (empty for other types).
    #[inline]
    pub fn nd_options(&self) -> NdOptions<'_> {
        let data = self.buffer.as_ref();
        let rest = if matches!(self.msg_type(), Message::NeighborSolicit | Message::NeighborAdvert) {
            &data[field::ND_OPTIONS]
        } else {
            &[]
        };
        NdOptions { rest }
    }

    /// The Ethernet address in the first option of type `kind`
    /// ([`OPT_SOURCE_LL`] or [`OPT_TARGET_LL`]): `Ok(None)` if there is
    /// none, `Err(Malformed)` if an option has length 0 or runs past the
    /// message (RFC 4861 §4.6: discard the packet), or if the option is not
    /// the 8 bytes of an Ethernet address (RFC 2464 §8).
    pub fn link_layer_option(&self, kind: u8) -> Result<Option<MacAddr>> {
        let mut found = None;
        for opt in self.nd_options() {
            let (t, body) = opt?;
            if t == kind && found.is_none() {
                if body.len() != LL_OPTION_LEN - 2 {
                    return Err(Error::Malformed);
                }
                found = MacAddr::from_bytes(body);
            }
        }
        Ok(found)
    }

    /// Source link-layer address option of an NS (RFC 4861 §4.3).
    #[inline]
    pub fn source_ll_addr(&self) -> Result<Option<MacAddr>> {
        self.link_layer_option(OPT_SOURCE_LL)
    }

    /// Target link-layer address option of an NA (RFC 4861 §4.4).
    #[inline]
    pub fn target_ll_addr(&self) -> Result<Option<MacAddr>> {
        self.link_layer_option(OPT_TARGET_LL)
    }

    /// The invoking packet an error quotes, walked to its upper layer:
    /// `None` if this is not an error, the quote is not an IPv6 header, or
    /// its extension headers do not fit the quote. Offsets in the result
    /// are from the start of [`Packet::data`]. The quote is normally cut
    /// short, so its payload length is not checked against the buffer.
    pub fn quoted(&self) -> Option<(ipv6::Packet<&[u8]>, ipv6::Transport)> {
        if !self.msg_type().is_error() {
            return None;
        }
        let inner = self.data();
        if inner.len() < ipv6::HEADER_LEN {
            return None;
        }
        let ip = ipv6::Packet::new_unchecked(inner);
        if ip.version() != 6 {
            return None;
        }
        let t = ipv6::walk(ip.next_header(), &inner[ipv6::HEADER_LEN..], ipv6::HEADER_LEN).ok()?;
        Some((ip, t))
    }

    /// The TCP/UDP ports of the quoted packet, if it quotes a first (or no)
    /// fragment of TCP or UDP with at least 4 bytes of its header.
    pub fn quoted_ports(&self) -> Option<(NextHeader, u16, u16)> {
        let (_, t) = self.quoted()?;
        if !matches!(t.protocol, NextHeader::Tcp | NextHeader::Udp) || !t.has_header() {
            return None;
        }
        let (sport, dport) = super::ports(self.data().get(t.offset..)?)?;
        Some((t.protocol, sport, dport))
    }
}

/// Iterator over ND options: `(type, body)` where `body` is the option
/// after its type and length bytes. Yields `Err(Malformed)` once and stops
/// for an option of length 0 or one that runs past the message.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let len = usize::from(*self.rest.get(1).unwrap_or(&0)) * 8;
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(Error::Malformed));
        }
        let (opt, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok((opt[0], &opt[2..])))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type (checksum untouched). Re-run `check_len`.
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

    /// Sets the MTU (Packet Too Big).
    #[inline]
    pub fn set_mtu(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::MTU], v);
    }

    /// Sets the pointer (Parameter Problem).
    #[inline]
    pub fn set_pointer(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::POINTER], v);
    }

    /// Sets the NA flags byte and clears the 29 reserved bits after it
    /// (RFC 4861 §4.4).
    #[inline]
    pub fn set_na_flags(&mut self, flags: u8) {
        write_u32(&mut self.buffer.as_mut()[4..8], u32::from(flags) << 24);
    }

    /// Sets the target address (NS, NA, redirect; the buffer must hold 24
    /// bytes).
    #[inline]
    pub fn set_target_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET_ADDR].copy_from_slice(&addr.octets());
    }

    /// Everything after the 8-byte header, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes and stores the checksum over the IPv6 pseudo header and
    /// the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = !self.full_sum(src, dst);
        self.set_checksum(c);
    }

    /// Rewrites an error's quoted packet to read `src -> dst` (addresses
    /// and TCP/UDP ports), its TCP/UDP checksum updated incrementally
    /// (RFC 1624) when the quote holds it, so the quote is the packet its
    /// new receiver sent. The ICMPv6 checksum is not touched: the caller
    /// computes it for the new outer addresses ([`Packet::fill_checksum`]).
    /// Returns `false`, changing nothing, if the quote has no TCP/UDP ports
    /// ([`Packet::quoted_ports`]).
    pub fn rewrite_quoted(&mut self, src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16)) -> bool {
        let Some((proto, sport, dport)) = self.quoted_ports() else {
            return false;
        };
        let Some((_, t)) = self.quoted() else {
            return false;
        };
        let data = self.data_mut();
        let (ip, l4) = data.split_at_mut(ipv6::HEADER_LEN);
        let mut ip = ipv6::Packet::new_unchecked(ip);
        let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(src.0);
        ip.set_dst_addr(dst.0);
        let l4 = &mut l4[t.offset - ipv6::HEADER_LEN..];
        l4[0..2].copy_from_slice(&src.1.to_be_bytes());
        l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
        let at = if proto == NextHeader::Tcp { 16 } else { 6 };
        // (A UDP checksum of 0, invalid over IPv6, stays 0.)
        if let Some(c) = l4.get_mut(at..at + 2).filter(|c| proto == NextHeader::Tcp || c != &[0, 0]) {
            let old = u16::from_be_bytes([c[0], c[1]]);
            let delta = Delta::addr6(old_src, src.0)
                + Delta::addr6(old_dst, dst.0)
                + Delta::word(sport, src.1)
                + Delta::word(dport, dst.1);
            let new = match delta.apply(old) {
                0 if proto == NextHeader::Udp => 0xffff,
                v => v,
            };
            c.copy_from_slice(&new.to_be_bytes());
        }
        true
    }

    /// Turns an echo request into an echo reply in place, updating the
    /// checksum incrementally (RFC 1624; type and code form one word). The
    /// reply goes back with source and destination swapped, which leaves
    /// the pseudo-header sum alone; that sum holds next header 58, so the
    /// total is never zero and the update equals a full recompute.
    #[inline]
    pub fn make_echo_reply(&mut self) {
        let data = self.buffer.as_ref();
        let old = u16::from_be_bytes([data[field::TYPE], data[field::CODE]]);
        let new = u16::from(u8::from(Message::EchoReply)) << 8;
        let c = checksum::update16(self.checksum(), old, new);
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

/// A neighbour-discovery message the gateway sends or reads (RFC 4861).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdRepr {
    /// Neighbour solicitation for `target`, with the sender's link-layer
    /// address unless the source is `::` (RFC 4861 §4.3).
    Solicit {
        /// Address being resolved.
        target: Ipv6Addr,
        /// Source link-layer address option.
        lladdr: Option<MacAddr>,
    },
    /// Neighbour advertisement for `target` (RFC 4861 §4.4).
    Advert {
        /// R/S/O flags ([`NA_ROUTER`], [`NA_SOLICITED`], [`NA_OVERRIDE`]).
        flags: u8,
        /// Address advertised.
        target: Ipv6Addr,
        /// Target link-layer address option.
        lladdr: Option<MacAddr>,
    },
}

impl NdRepr {
    /// Reads an NS or NA after [`Packet::check_len`]; `Err(Malformed)` for
    /// another type, a code other than 0 (RFC 4861 §7.1) or a bad option.
    /// Neither the checksum nor the hop limit is checked here.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<NdRepr> {
        p.check_len()?;
        if p.code() != 0 {
            return Err(Error::Malformed);
        }
        match p.msg_type() {
            Message::NeighborSolicit => {
                Ok(NdRepr::Solicit { target: p.target_addr(), lladdr: p.source_ll_addr()? })
            }
            Message::NeighborAdvert => Ok(NdRepr::Advert {
                flags: p.na_flags(),
                target: p.target_addr(),
                lladdr: p.target_ll_addr()?,
            }),
            _ => Err(Error::Malformed),
        }
    }

    /// Length of the emitted message.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        let lladdr = match self {
            NdRepr::Solicit { lladdr, .. } | NdRepr::Advert { lladdr, .. } => lladdr,
        };
        ND_LEN + if lladdr.is_some() { LL_OPTION_LEN } else { 0 }
    }

    /// Writes the message, checksum included, for an IPv6 packet from
    /// `src` to `dst`. `Err(Truncated)` if the buffer is shorter than
    /// [`NdRepr::buffer_len`]; bytes after it are not covered.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<()> {
        let len = self.buffer_len();
        let buf = packet.buffer.as_mut().get_mut(..len).ok_or(Error::Truncated)?;
        let mut p = Packet::new_unchecked(buf);
        let (msg, flags, target, opt, lladdr) = match *self {
            NdRepr::Solicit { target, lladdr } => {
                (Message::NeighborSolicit, 0, target, OPT_SOURCE_LL, lladdr)
            }
            NdRepr::Advert { flags, target, lladdr } => {
                (Message::NeighborAdvert, flags, target, OPT_TARGET_LL, lladdr)
            }
        };
        p.set_msg_type(msg);
        p.set_code(0);
        p.set_na_flags(flags);
        p.set_target_addr(target);
        if let Some(mac) = lladdr {
            let o = &mut p.buffer[ND_LEN..ND_LEN + LL_OPTION_LEN];
            o[0] = opt;
            o[1] = 1;
            o[2..].copy_from_slice(mac.as_bytes());
        }
        p.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
