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

use std::net::Ipv4Addr;

use super::checksum;
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
    use etherparse::{PacketBuilder, SlicedPacket, TcpSlice, TransportSlice};
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    #[rustfmt::skip]
    const SEGMENT: [u8; 24] = [
        0xc0, 0x00,             // source port 49152
        0x00, 0x50,             // destination port 80
        0x01, 0x02, 0x03, 0x04, // sequence number
        0x0a, 0x0b, 0x0c, 0x0d, // acknowledgment number
        0x50,                   // data offset 5 (20 bytes), reserved 0
        0x18,                   // flags PSH, ACK
        0xfa, 0xf0,             // window 64240
        0x85, 0x42,             // checksum (pseudo header 192.168.1.10 -> 10.0.0.1)
        0x00, 0x00,             // urgent pointer
        0x68, 0x69, 0x21, 0x0a, // payload "hi!\n"
    ];

    #[rustfmt::skip]
    const SYN_WITH_MSS: [u8; 24] = [
        0xc0, 0x00,             // source port 49152
        0x00, 0x50,             // destination port 80
        0x01, 0x02, 0x03, 0x04, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgment number
        0x60,                   // data offset 6 (24 bytes)
        0x02,                   // flags SYN
        0xfa, 0xf0,             // window 64240
        0x00, 0x00,             // checksum (filled in by the test)
        0x00, 0x00,             // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // option MSS 1460
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&SEGMENT[..]).unwrap();
        assert_eq!(p.src_port(), 49152);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x0102_0304);
        assert_eq!(p.ack_number(), 0x0a0b_0c0d);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.flags(), flags::PSH | flags::ACK);
        assert!(p.psh() && p.ack());
        assert!(!(p.syn() || p.fin() || p.rst() || p.urg() || p.ece() || p.cwr()));
        assert_eq!(p.window(), 64240);
        assert_eq!(p.checksum(), 0x8542);
        assert_eq!(p.urgent(), 0);
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), b"hi!\n");
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn construct() {
        let mut buf = [0xeeu8; 24];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(49152);
        p.set_dst_port(80);
        p.set_seq_number(0x0102_0304);
        p.set_ack_number(0x0a0b_0c0d);
        p.buffer[field::DATA_OFF] = 0; // clear reserved bits
        p.set_header_len(20);
        p.set_flags(0);
        p.set_psh(true);
        p.set_ack(true);
        p.set_window(64240);
        p.set_urgent(0);
        p.payload_mut().copy_from_slice(b"hi!\n");
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, SEGMENT);
    }

    #[test]
    fn flag_setters() {
        let mut p = Packet::new_unchecked(SEGMENT.to_vec());
        p.set_flags(0);
        type Setter = fn(&mut Packet<Vec<u8>>, bool);
        let all: [(Setter, u8); 8] = [
            (Packet::set_fin, flags::FIN),
            (Packet::set_syn, flags::SYN),
            (Packet::set_rst, flags::RST),
            (Packet::set_psh, flags::PSH),
            (Packet::set_ack, flags::ACK),
            (Packet::set_urg, flags::URG),
            (Packet::set_ece, flags::ECE),
            (Packet::set_cwr, flags::CWR),
        ];
        for (set, bit) in all {
            set(&mut p, true);
            assert_eq!(p.flags(), bit);
            set(&mut p, false);
            assert_eq!(p.flags(), 0);
        }
        p.set_flags(0xff);
        assert!(p.fin() && p.syn() && p.rst() && p.psh() && p.ack() && p.urg() && p.ece() && p.cwr());
    }

    #[test]
    fn options_and_header_len() {
        let mut buf = SYN_WITH_MSS;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum(SRC, DST);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert!(p.payload().is_empty() && p.syn() && !p.ack());
        let e = TcpSlice::from_slice(&buf).unwrap();
        assert_eq!(e.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert_eq!(e.checksum(), e.calc_checksum_ipv4(SRC.octets(), DST.octets()).unwrap());
    }

    #[test]
    fn short_buffer() {
        for n in 0..MIN_HEADER_LEN {
            assert_eq!(Packet::new_checked(&SEGMENT[..n]).err(), Some(Error::Truncated), "len {n}");
        }
    }

    #[test]
    fn data_offset_below_5() {
        for off in 0..5u8 {
            let mut buf = SEGMENT;
            buf[12] = off << 4;
            assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Malformed));
        }
    }

    #[test]
    fn data_offset_beyond_buffer() {
        let mut buf = SEGMENT;
        buf[12] = 0x70; // 28-byte header in a 24-byte buffer
        assert_eq!(Packet::new_checked(&buf[..]).err(), Some(Error::Truncated));
        buf[12] = 0x60; // exactly 24: fine, empty payload
        assert!(Packet::new_checked(&buf[..]).unwrap().payload().is_empty());
        assert_eq!(Packet::new_checked(&SYN_WITH_MSS[..23]).err(), Some(Error::Truncated));
    }

    #[test]
    fn rewrites_match_recompute() {
        let mut buf = SEGMENT;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        let (nsrc, ndst) = (Ipv4Addr::new(172, 16, 0, 9), Ipv4Addr::new(10, 9, 8, 7));
        p.rewrite_src_port(1024);
        p.rewrite_dst_port(8080);
        p.rewrite_seq_number(0xffff_0000);
        p.rewrite_ack_number(1);
        p.update_checksum_for_addr(SRC, nsrc);
        p.update_checksum_for_addr(DST, ndst);
        assert!(p.verify_checksum(nsrc, ndst));
        let incremental = p.checksum();
        p.fill_checksum(nsrc, ndst);
        assert_eq!(incremental, p.checksum());
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        window: u16,
        flag_bits: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, window);
        if flag_bits & flags::FIN != 0 {
            b = b.fin();
        }
        if flag_bits & flags::SYN != 0 {
            b = b.syn();
        }
        if flag_bits & flags::RST != 0 {
            b = b.rst();
        }
        if flag_bits & flags::PSH != 0 {
            b = b.psh();
        }
        if flag_bits & flags::ACK != 0 {
            b = b.ack(ack);
        }
        if flag_bits & flags::URG != 0 {
            b = b.urg(7);
        }
        if flag_bits & flags::ECE != 0 {
            b = b.ece();
        }
        if flag_bits & flags::CWR != 0 {
            b = b.cwr();
        }
        if flag_bits & 0x0f == flags::SYN {
            b = b.options_raw(&[0x02, 0x04, 0x05, 0xb4]).unwrap();
        }
        let mut buf = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut buf, payload).unwrap();
        // Ethernet padding to the 60-byte minimum, as a NIC delivers it.
        if buf.len() < 60 {
            buf.resize(60, 0);
        }
        buf
    }

    /// Parses eth/ipv4/tcp from `frame` with etherparse and checks both
    /// checksums with etherparse's own functions.
    fn etherparse_valid(frame: &[u8]) -> TcpSlice<'_> {
        let sliced = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else { panic!("not IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else { panic!("not TCP") };
        let want = tcp.calc_checksum_ipv4(h.source, h.destination).unwrap();
        assert_eq!(tcp.checksum(), want, "TCP checksum");
        tcp
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.header_len());
                let _ = (p.flags(), p.fin(), p.syn(), p.rst(), p.psh(), p.ack(), p.urg(), p.ece(), p.cwr());
                let _ = (p.window(), p.checksum(), p.urgent(), p.options().len(), p.payload().len());
                let _ = p.verify_checksum(SRC, DST);
            }
        }

        /// etherparse builds, we read: every field and the checksum.
        #[test]
        fn we_read_what_etherparse_writes(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, ack: u32,
            window: u16, flag_bits: u8, payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let frame = build(src, dst, sport, dport, seq, ack, window, flag_bits, &payload);
            let eth = Frame::new_checked(&frame[..]).unwrap();
            let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
            prop_assert!(ip.verify_checksum());
            prop_assert_eq!(ip.protocol(), ipv4::Protocol::Tcp);
            let p = Packet::new_checked(ip.payload()).unwrap();
            let e = TcpSlice::from_slice(ip.payload()).unwrap();
            prop_assert_eq!(p.src_port(), sport);
            prop_assert_eq!(p.dst_port(), dport);
            prop_assert_eq!(p.seq_number(), seq);
            prop_assert_eq!(p.ack_number(), e.acknowledgment_number());
            prop_assert_eq!(p.header_len(), usize::from(e.data_offset()) * 4);
            prop_assert_eq!(p.flags(), flag_bits);
            prop_assert_eq!(p.window(), window);
            prop_assert_eq!(p.urgent(), e.urgent_pointer());
            prop_assert_eq!(p.options(), e.options());
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert!(p.verify_checksum(ip.src_addr(), ip.dst_addr()));
        }

        /// We write with setters + fill_checksum; etherparse reads and validates.
        #[test]
        fn etherparse_reads_what_we_write(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, ack: u32,
            window: u16, flag_bits: u8, urgent: u16,
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut frame = vec![0u8; 14 + 20 + 20 + payload.len()];
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            let ip_len = 40 + payload.len();
            let repr = ipv4::Repr { src_addr: src, dst_addr: dst, protocol: ipv4::Protocol::Tcp, ttl: 64, payload_len: 20 + payload.len() };
            let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..14 + ip_len]);
            repr.emit(&mut ip).unwrap();
            let mut p = Packet::new_unchecked(ip.payload_mut());
            p.set_src_port(sport);
            p.set_dst_port(dport);
            p.set_seq_number(seq);
            p.set_ack_number(ack);
            p.set_header_len(20);
            p.set_flags(flag_bits);
            p.set_window(window);
            p.set_urgent(urgent);
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum(src, dst);
            let e = etherparse_valid(&frame);
            prop_assert_eq!(e.source_port(), sport);
            prop_assert_eq!(e.destination_port(), dport);
            prop_assert_eq!(e.sequence_number(), seq);
            prop_assert_eq!(e.acknowledgment_number(), ack);
            prop_assert_eq!(e.syn(), flag_bits & flags::SYN != 0);
            prop_assert_eq!(e.fin(), flag_bits & flags::FIN != 0);
            prop_assert_eq!(e.cwr(), flag_bits & flags::CWR != 0);
            prop_assert_eq!(e.window_size(), window);
            prop_assert_eq!(e.urgent_pointer(), urgent);
            prop_assert_eq!(e.payload(), &payload[..]);
        }

        /// Full-NAT rewrite of both addresses and both ports (plus a TTL
        /// decrement): the incremental checksums equal a full recompute, and
        /// etherparse validates the rewritten frame.
        #[test]
        fn nat_rewrite_incremental_equals_recompute(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, ack: u32,
            window: u16, flag_bits: u8, payload in proptest::collection::vec(any::<u8>(), 0..100),
            new_src: [u8; 4], new_dst: [u8; 4], new_sport: u16, new_dport: u16, new_seq: u32,
        ) {
            let mut frame = build(src, dst, sport, dport, seq, ack, window, flag_bits, &payload);
            let (new_src, new_dst) = (Ipv4Addr::from(new_src), Ipv4Addr::from(new_dst));
            let mut eth = Frame::new_checked(&mut frame[..]).unwrap();
            let mut ip = ipv4::Packet::new_checked(eth.payload_mut()).unwrap();
            let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
            ip.rewrite_src_addr(new_src);
            ip.rewrite_dst_addr(new_dst);
            ip.decrement_ttl();
            let ip_incremental = ip.checksum();
            let mut p = Packet::new_checked(ip.payload_mut()).unwrap();
            p.update_checksum_for_addr(old_src, new_src);
            p.update_checksum_for_addr(old_dst, new_dst);
            p.rewrite_src_port(new_sport);
            p.rewrite_dst_port(new_dport);
            p.rewrite_seq_number(new_seq);
            let l4_incremental = p.checksum();
            prop_assert!(p.verify_checksum(new_src, new_dst));
            p.fill_checksum(new_src, new_dst);
            prop_assert_eq!(l4_incremental, p.checksum());
            ip.fill_checksum();
            prop_assert_eq!(ip_incremental, ip.checksum());

            let e = etherparse_valid(&frame);
            prop_assert_eq!((e.source_port(), e.destination_port()), (new_sport, new_dport));
            prop_assert_eq!(e.sequence_number(), new_seq);
            prop_assert_eq!(e.payload(), &payload[..]);
        }
    }
}
