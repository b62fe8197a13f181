//! TCP segments (RFC 9293).
//!
//! The view covers header and payload; TCP has no length field, so the
//! segment ends where the buffer ends. Build it over the IPv4 payload
//! ([`super::ipv4::Packet::payload`]), which already excludes Ethernet
//! padding. After [`Packet::check_len`]: `20 <= header_len() <= buffer
//! length`. Options are exposed as raw bytes.
//!
//! The checksum covers the IPv4 pseudo header (addresses, protocol, segment
//! length): when NAT rewrites an IPv4 address, call
//! [`Packet::update_checksum_for_addr`] too. The segment length in the
//! pseudo header is the buffer length as a `u16`; an IPv4 payload always
//! fits, and a longer buffer (never a valid segment) gives a wrong but
//! harmless checksum.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum::{self, Delta};
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

/// IP protocol number of TCP, for the pseudo header.
const PROTOCOL: u8 = 6;

/// Flag bits of byte 13 (RFC 9293 §3.1; ECE and CWR from RFC 3168).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field is significant.
    pub const URG: u8 = 0x20;
    /// ECN-Echo.
    pub const ECE: u8 = 0x40;
    /// Congestion Window Reduced.
    pub const CWR: u8 = 0x80;
}

/// Header field offsets (RFC 9293 §3.1).
pub mod field {
    use core::ops::Range;

    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Range<usize> = 4..8;
    /// Acknowledgment number.
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset (high nibble, in 32-bit words) and reserved bits.
    pub const DATA_OFF: usize = 12;
    /// Flags ([`super::flags`]).
    pub const FLAGS: usize = 13;
    /// Window.
    pub const WINDOW: Range<usize> = 14..16;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Urgent pointer.
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = field::URGENT.end;
/// Longest header: data offset 15.
pub const MAX_HEADER_LEN: usize = 60;

/// A view of a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = MIN_HEADER_LEN;

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

    /// Buffer shorter than 20 bytes: `Truncated`; data offset < 5:
    /// `Malformed`; header (data offset * 4) longer than the buffer:
    /// `Truncated`. The checksum is not verified here.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// Header length in bytes (data offset * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The raw flag byte; test it against [`flags`].
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// FIN flag.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    /// SYN flag.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    /// RST flag.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    /// PSH flag.
    #[inline]
    pub fn psh(&self) -> bool {
        self.flags() & flags::PSH != 0
    }

    /// ACK flag.
    #[inline]
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    /// URG flag.
    #[inline]
    pub fn urg(&self) -> bool {
        self.flags() & flags::URG != 0
    }

    /// ECE flag.
    #[inline]
    pub fn ece(&self) -> bool {
        self.flags() & flags::ECE != 0
    }

    /// CWR flag.
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags() & flags::CWR != 0
    }

    /// Window size (unscaled).
    #[inline]
    pub fn window(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::WINDOW])
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::URGENT])
    }

    /// Option bytes (`20..header_len`), uninterpreted.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Folded, uncomplemented sum of pseudo header and the whole segment.
    #[inline]
    fn full_sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, PROTOCOL, data.len() as u16);
        checksum::fold(ph + checksum::sum(data))
    }

    /// True if the checksum is valid for a segment from `src` to `dst`.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.full_sum(src, dst) == 0xffff
    }

    /// Folded, uncomplemented sum of the IPv6 pseudo header (RFC 8200
    /// §8.1) and the whole segment.
    #[inline]
    fn full_sum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, PROTOCOL, data.len() as u32);
        checksum::fold(ph + checksum::sum(data))
    }

    /// True if the checksum is valid for a segment from `src` to `dst`
    /// over IPv6.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.full_sum_v6(src, dst) == 0xffff
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

    /// Sets the sequence number (checksum untouched).
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::SEQ_NUM], v);
    }

    /// Sets the acknowledgment number (checksum untouched).
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::ACK_NUM], v);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60), keeping
    /// the reserved bits. Re-run `check_len` before reading through it.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        debug_assert!(len & 3 == 0 && (MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&len));
        let b = &mut self.buffer.as_mut()[field::DATA_OFF];
        *b = (*b & 0x0f) | (((len / 4) as u8) << 4);
    }

    /// Sets the raw flag byte.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    #[inline]
    fn set_flag(&mut self, bit: u8, on: bool) {
        let f = self.flags() & !bit;
        self.set_flags(if on { f | bit } else { f });
    }

    /// Sets or clears FIN.
    #[inline]
    pub fn set_fin(&mut self, on: bool) {
        self.set_flag(flags::FIN, on);
    }

    /// Sets or clears SYN.
    #[inline]
    pub fn set_syn(&mut self, on: bool) {
        self.set_flag(flags::SYN, on);
    }

    /// Sets or clears RST.
    #[inline]
    pub fn set_rst(&mut self, on: bool) {
        self.set_flag(flags::RST, on);
    }

    /// Sets or clears PSH.
    #[inline]
    pub fn set_psh(&mut self, on: bool) {
        self.set_flag(flags::PSH, on);
    }

    /// Sets or clears ACK.
    #[inline]
    pub fn set_ack(&mut self, on: bool) {
        self.set_flag(flags::ACK, on);
    }

    /// Sets or clears URG.
    #[inline]
    pub fn set_urg(&mut self, on: bool) {
        self.set_flag(flags::URG, on);
    }

    /// Sets or clears ECE.
    #[inline]
    pub fn set_ece(&mut self, on: bool) {
        self.set_flag(flags::ECE, on);
    }

    /// Sets or clears CWR.
    #[inline]
    pub fn set_cwr(&mut self, on: bool) {
        self.set_flag(flags::CWR, on);
    }

    /// Sets the window size.
    #[inline]
    pub fn set_window(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::WINDOW], v);
    }

    /// Stores a checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::URGENT], v);
    }

    /// Option bytes, mutable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..hl]
    }

    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes and stores the checksum over the IPv4 pseudo header
    /// (`src`, `dst`, protocol 6, buffer length) and the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = !self.full_sum(src, dst);
        self.set_checksum(c);
    }

    /// Computes and stores the checksum over the IPv6 pseudo header
    /// (`src`, `dst`, buffer length as 32 bits, next header 6) and the
    /// whole buffer.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = !self.full_sum_v6(src, dst);
        self.set_checksum(c);
    }

    /// Sets the source port and updates the checksum incrementally (RFC 1624).
    #[inline]
    pub fn rewrite_src_port(&mut self, port: u16) {
        let c = checksum::update16(self.checksum(), self.src_port(), port);
        self.set_src_port(port);
        self.set_checksum(c);
    }

    /// Sets the destination port and updates the checksum incrementally.
    #[inline]
    pub fn rewrite_dst_port(&mut self, port: u16) {
        let c = checksum::update16(self.checksum(), self.dst_port(), port);
        self.set_dst_port(port);
        self.set_checksum(c);
    }

    /// Sets both ports and updates the checksum once for them and for
    /// `pseudo`, the pseudo-header change of the IPv4 rewrite
    /// (`ipv4::Packet::rewrite_addrs_and_forward`): NAT's whole TCP update
    /// in one fold (RFC 1624).
    #[inline]
    pub fn rewrite_ports(&mut self, src: u16, dst: u16, pseudo: Delta) {
        let h: &mut [u8; field::CHECKSUM.end] =
            (&mut self.buffer.as_mut()[..field::CHECKSUM.end]).try_into().unwrap();
        let old = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let new = u32::from(src) << 16 | u32::from(dst);
        let at = field::CHECKSUM.start;
        let csum = (pseudo + Delta::word32(old, new)).apply(u16::from_be_bytes([h[at], h[at + 1]]));
        h[..4].copy_from_slice(&new.to_be_bytes());
        h[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
    }

    /// Sets the ports to `src` and `dst` and updates the checksum by
    /// `change`, known beforehand: RFC 1624's `~m + m'` over the ports and
    /// the pseudo header's addresses (a FULLNAT or NAT session's,
    /// [`crate::session::Session::rewrite_change`]: a folded change,
    /// [`Delta::apply_small`]); no old port is read.
    #[inline]
    pub fn set_ports_with(&mut self, src: u16, dst: u16, change: Delta) {
        let h: &mut [u8; field::CHECKSUM.end] =
            (&mut self.buffer.as_mut()[..field::CHECKSUM.end]).try_into().unwrap();
        let at = field::CHECKSUM.start;
        let csum = change.apply_small(u16::from_be_bytes([h[at], h[at + 1]]));
        h[..4].copy_from_slice(&(u32::from(src) << 16 | u32::from(dst)).to_be_bytes());
        h[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
    }

    /// Sets the sequence number and updates the checksum incrementally
    /// (sequence-number translation, e.g. behind a SYN proxy).
    #[inline]
    pub fn rewrite_seq_number(&mut self, v: u32) {
        let c = checksum::update32(self.checksum(), self.seq_number(), v);
        self.set_seq_number(v);
        self.set_checksum(c);
    }

    /// Sets the acknowledgment number and updates the checksum incrementally.
    #[inline]
    pub fn rewrite_ack_number(&mut self, v: u32) {
        let c = checksum::update32(self.checksum(), self.ack_number(), v);
        self.set_ack_number(v);
        self.set_checksum(c);
    }

    /// Updates the checksum for a pseudo-header address that the IPv4
    /// header changed from `old` to `new` (call once per rewritten address,
    /// next to `ipv4::Packet::rewrite_src_addr`/`rewrite_dst_addr`).
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update_addr(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Updates the checksum for a pseudo-header IPv6 address changed from
    /// `old` to `new` (`ipv6::Packet::rewrite_src_addr` returns the same
    /// change as a `Delta`, for [`Packet::rewrite_ports`]).
    #[inline]
    pub fn update_checksum_for_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let c = Delta::addr6(old, new).apply(self.checksum());
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A walk over the options of a TCP header (RFC 9293 §3.1): each call of
/// [`OptionWalk::next`] gives the next option's kind, offset in the header
/// and length. It ends at End of Option List, at the header's end, or at
/// the first malformed option (a length under 2 or past the header). The
/// header is passed to each call, so the caller may rewrite an option's
/// bytes between calls.
#[derive(Debug, Clone, Copy)]
pub struct OptionWalk {
    at: usize,
}

impl Default for OptionWalk {
    fn default() -> Self {
        OptionWalk { at: MIN_HEADER_LEN }
    }
}

impl OptionWalk {
    /// `(kind, offset, length)` of the next option of `hdr` (a TCP header
    /// with its options, `header_len` bytes), or `None` at the end.
    #[inline]
    pub fn next(&mut self, hdr: &[u8]) -> Option<(u8, usize, usize)> {
        loop {
            let kind = *hdr.get(self.at)?;
            match kind {
                0 => {
                    self.at = hdr.len();
                    return None;
                }
                1 => self.at += 1,
                _ => {
                    let len = usize::from(*hdr.get(self.at + 1)?);
                    if len < 2 || self.at + len > hdr.len() {
                        self.at = hdr.len();
                        return None;
                    }
                    let at = self.at;
                    self.at += len;
                    return Some((kind, at, len));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
