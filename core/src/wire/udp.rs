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

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum::{self, Delta};
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

    /// Folded, uncomplemented sum of the IPv6 pseudo header (RFC 8200
    /// §8.1) and bytes `..len`.
    #[inline]
    fn full_sum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        let ph = checksum::pseudo_header_v6(src, dst, PROTOCOL, u32::from(self.len()));
        checksum::fold(ph + checksum::sum(data))
    }

    /// True if the checksum is valid for a datagram from `src` to `dst`
    /// over IPv6. Unlike IPv4, a stored `0` is invalid: IPv6 makes the UDP
    /// checksum mandatory (RFC 8200 §8.1).
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.checksum() != 0 && self.full_sum_v6(src, dst) == 0xffff
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

    /// Computes and stores the checksum over the IPv6 pseudo header and
    /// bytes `..len`; a computed 0 is stored as `0xffff` (RFC 8200 §8.1).
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = !self.full_sum_v6(src, dst);
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

    /// Sets both ports and updates the checksum once for them and for
    /// `pseudo`, the pseudo-header change of the IPv4 rewrite
    /// (`ipv4::Packet::rewrite_addrs_and_forward`), unless the datagram
    /// has none (RFC 768; a computed `0` is sent as `0xffff`).
    #[inline]
    pub fn rewrite_ports(&mut self, src: u16, dst: u16, pseudo: Delta) {
        let h: &mut [u8; HEADER_LEN] = (&mut self.buffer.as_mut()[..HEADER_LEN]).try_into().unwrap();
        let old = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let new = u32::from(src) << 16 | u32::from(dst);
        h[..4].copy_from_slice(&new.to_be_bytes());
        let at = field::CHECKSUM.start;
        let csum = u16::from_be_bytes([h[at], h[at + 1]]);
        if csum != 0 {
            let c = zero_to_ffff((pseudo + Delta::word32(old, new)).apply(csum));
            h[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        }
    }

    /// Sets the ports to `src` and `dst` and updates the checksum by
    /// `change`, known beforehand and folded (as `tcp::Packet::set_ports_with`), unless
    /// the datagram has none (RFC 768; a computed `0` is sent as `0xffff`).
    #[inline]
    pub fn set_ports_with(&mut self, src: u16, dst: u16, change: Delta) {
        let h: &mut [u8; HEADER_LEN] = (&mut self.buffer.as_mut()[..HEADER_LEN]).try_into().unwrap();
        h[..4].copy_from_slice(&(u32::from(src) << 16 | u32::from(dst)).to_be_bytes());
        let at = field::CHECKSUM.start;
        let csum = u16::from_be_bytes([h[at], h[at + 1]]);
        if csum != 0 {
            h[field::CHECKSUM].copy_from_slice(&zero_to_ffff(change.apply_small(csum)).to_be_bytes());
        }
    }

    /// Updates the checksum for a pseudo-header address that the IPv4
    /// header changed from `old` to `new`, unless the datagram has none.
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.update_checksum(|c| checksum::update_addr(c, old, new));
    }

    /// Updates the checksum for a pseudo-header IPv6 address changed from
    /// `old` to `new` (`ipv6::Packet::rewrite_src_addr` returns the same
    /// change as a `Delta`). A stored 0 is left alone (invalid over IPv6
    /// anyway; the caller counts and drops it).
    #[inline]
    pub fn update_checksum_for_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        self.update_checksum(|c| Delta::addr6(old, new).apply(c));
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
mod tests;
