//! Packet views (smoltcp's shape): one file per protocol, zero-copy over any
//! `T: AsRef<[u8]>` (an `Mbuf` in production, a `Vec<u8>` or array in tests).
//!
//! Invariants shared by every view in this module:
//!
//! - `Packet::new_unchecked` wraps a buffer without looking at it; accessors
//!   on such a view may panic if the buffer is too short.
//! - `Packet::new_checked` (= `new_unchecked` + `check_len`) validates every
//!   length the getters rely on. After it succeeds, **no getter panics**, and
//!   no setter panics except the ones that write a new length field (see
//!   each view's docs): rewriting a length may invalidate the earlier check,
//!   so call `check_len` again before reading through the new length.
//! - Nothing here allocates. Multi-byte fields are big-endian (network order)
//!   and read with `from_be_bytes` on fixed ranges from each file's
//!   `mod field`.
//! - `Err(Error::Truncated)` means the buffer is shorter than the headers say
//!   (or than the minimum header); `Err(Error::Malformed)` means a field holds
//!   a value the protocol forbids (bad version, IHL < 5, ...). Both mean
//!   "drop and count"; the caller picks the counter.
//! - Checksums: see [`checksum`] for which functions return a complemented
//!   value and how a UDP checksum of zero is handled.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

use core::fmt;

/// Why a buffer could not be viewed as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header (or than a length field claims).
    Truncated,
    /// A header field holds a value the protocol does not allow.
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated packet"),
            Error::Malformed => f.write_str("malformed packet"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of parsing a packet view.
pub type Result<T> = core::result::Result<T, Error>;

/// A TCP or UDP flow as seen on the wire: (protocol, source, source port,
/// destination, destination port). Addresses are host-order `u32`. It is
/// the session table's key and what [`icmpv4::Packet::quoted`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// IP protocol (TCP or UDP).
    pub proto: ipv4::Protocol,
    /// Source address, host order.
    pub src: u32,
    /// Source port.
    pub sport: u16,
    /// Destination address, host order.
    pub dst: u32,
    /// Destination port.
    pub dport: u16,
}

impl FlowKey {
    /// The same flow seen from its other end (`dst -> src`).
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        FlowKey { proto: self.proto, src: self.dst, sport: self.dport, dst: self.src, dport: self.sport }
    }
}

/// Source and destination port of a TCP or UDP header, which both start
/// with them (RFC 793 §3.1, RFC 768); `None` if `l4` is shorter than the
/// two ports. Needs only those 4 bytes, not a whole header.
#[inline]
pub fn ports(l4: &[u8]) -> Option<(u16, u16)> {
    let p = l4.get(udp::field::SRC_PORT.start..udp::field::DST_PORT.end)?;
    Some((read_u16(&p[0..2]), read_u16(&p[2..4])))
}

// Big-endian helpers over a field slice. Callers pass `&data[field::X]` with a
// constant range, so after inlining the length is known and the indexing
// below compiles to a plain load with no bounds check.

/// Reads a big-endian `u16` from the first two bytes of `b`.
#[inline(always)]
pub(crate) fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Reads a big-endian `u32` from the first four bytes of `b`.
#[inline(always)]
pub(crate) fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Writes `v` big-endian into `b`, which must be exactly two bytes long.
#[inline(always)]
pub(crate) fn write_u16(b: &mut [u8], v: u16) {
    b.copy_from_slice(&v.to_be_bytes());
}

/// Writes `v` big-endian into `b`, which must be exactly four bytes long.
#[inline(always)]
pub(crate) fn write_u32(b: &mut [u8], v: u32) {
    b.copy_from_slice(&v.to_be_bytes());
}

/// Reads an IPv4 address from the first four bytes of `b`.
#[inline(always)]
pub(crate) fn read_ipv4(b: &[u8]) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display() {
        assert_eq!(Error::Truncated.to_string(), "truncated packet");
        assert_eq!(Error::Malformed.to_string(), "malformed packet");
    }

    #[test]
    fn be_helpers() {
        let mut b = [0u8; 6];
        write_u16(&mut b[0..2], 0x1234);
        write_u32(&mut b[2..6], 0xdead_beef);
        assert_eq!(b, [0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(read_u16(&b[0..2]), 0x1234);
        assert_eq!(read_u32(&b[2..6]), 0xdead_beef);
        assert_eq!(read_ipv4(&b[2..6]), std::net::Ipv4Addr::new(222, 173, 190, 239));
    }

    #[test]
    fn ports_need_four_bytes() {
        assert_eq!(ports(&[0x9c, 0x40, 0x00, 0x50]), Some((40000, 80)));
        assert_eq!(ports(&[0x9c, 0x40, 0x00, 0x50, 0xff]), Some((40000, 80)));
        assert_eq!(ports(&[0x9c, 0x40, 0x00]), None);
    }

    #[test]
    fn a_reversed_flow_swaps_the_ends() {
        let k = FlowKey { proto: ipv4::Protocol::Udp, src: 1, sport: 2, dst: 3, dport: 4 };
        let r = k.reversed();
        assert_eq!((r.src, r.sport, r.dst, r.dport), (3, 4, 1, 2));
        assert_eq!(r.reversed(), k);
    }
}
