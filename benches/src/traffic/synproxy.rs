//! The generator's side of a SYNPROXY service (issue 16): what its clients
//! and real servers do so that connections complete through the gateway's
//! SYN cookies.
//!
//! - A client answers the gateway's cookie SYN+ACK with the handshake ACK
//!   at sequence ISN + 1 and acknowledgement cookie + 1 ([`set_seq_ack`] on
//!   the ACK template, [`cookie_of`] for the cookie). The clients' ISN is
//!   the templates' sequence number, [`CLIENT_ISN`].
//! - A real server answers the gateway's SYN (which the gateway sends only
//!   after a valid cookie) with a SYN+ACK acknowledging the SYN:
//!   [`frame::reflect`] turns the SYN around, [`ack_the_syn`] sets its
//!   acknowledgement number to the SYN's sequence + 1.
//! - During the flood the spoofed clients never answer; the legitimate new
//!   connections are flows from [`LEGIT_BASE`] up, so a SYN+ACK's
//!   destination says whether its client is one of ours ([`is_ours`]).
//!   Each SYN at a real server is a connection whose cookie the gateway
//!   accepted: counted there, the flood's share is what exceeds the
//!   legitimate clients' ACKs.

use gw_core::wire::checksum;
use gw_core::wire::ethernet::{self, EtherType};
use gw_core::wire::ipv4::{self, Protocol};
use gw_core::wire::tcp::{self, flags};

use super::flows::{CLIENT_HOSTS, CLIENT_NET, CLIENT_PORT_BASE, MAX_FLOWS};
#[cfg(doc)]
use super::frame;

/// The sequence number of the templates' SYN ([`super::frame::Template`]
/// builds every TCP segment with sequence number 1).
pub const CLIENT_ISN: u32 = 1;

/// The first flow of the legitimate new connections opened during the
/// flood: far above anything the flood's never-seen tuples reach (one per
/// SYN from the established flows' count up; ~2^32 flows exist).
pub const LEGIT_BASE: u64 = MAX_FLOWS / 2;

/// The flow index of client `ip`:`port` (the inverse of
/// [`super::flows::client`]), `None` outside the clients' network.
#[inline]
pub fn flow_of(ip: u32, port: u16) -> Option<u64> {
    if ip >> 16 != u32::from(CLIENT_NET) >> 16 || port < CLIENT_PORT_BASE {
        return None;
    }
    let host = u64::from(ip & (CLIENT_HOSTS - 1));
    Some(u64::from(port - CLIENT_PORT_BASE) * u64::from(CLIENT_HOSTS) + host)
}

/// Whether client `ip`:`port` is one of the generator's real clients: an
/// established flow (below `established`) or a legitimate new connection
/// (from [`LEGIT_BASE`]), not a spoofed flood source.
#[inline]
pub fn is_ours(ip: u32, port: u16, established: u64) -> bool {
    flow_of(ip, port).is_some_and(|f| f < established || f >= LEGIT_BASE)
}

/// The TCP header of an IPv4 frame, and where it starts.
fn tcp_at(frame: &[u8]) -> Option<usize> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
    if ip.protocol() != Protocol::Tcp || ip.is_fragment() {
        return None;
    }
    let at = ethernet::HEADER_LEN + ip.header_len();
    tcp::Packet::new_checked(&frame[at..]).ok()?;
    Some(at)
}

/// The client (destination address and port) and the cookie (sequence
/// number) of a SYN+ACK the gateway sent to a client; `None` for anything
/// else.
pub fn cookie_of(frame: &[u8]) -> Option<(u32, u16, u32)> {
    let at = tcp_at(frame)?;
    let t = tcp::Packet::new_unchecked(&frame[at..]);
    if t.flags() & (flags::SYN | flags::ACK | flags::RST) != flags::SYN | flags::ACK {
        return None;
    }
    let ip = ipv4::Packet::new_unchecked(&frame[ethernet::HEADER_LEN..]);
    Some((u32::from(ip.dst_addr()), t.dst_port(), t.seq_number()))
}

/// Sets the sequence and acknowledgement numbers of the TCP segment in
/// `frame`, updating its checksum (RFC 1624). False, frame unchanged, if it
/// is not an IPv4 TCP frame.
pub fn set_seq_ack(frame: &mut [u8], seq: u32, ack: u32) -> bool {
    let Some(at) = tcp_at(frame) else { return false };
    let mut t = tcp::Packet::new_unchecked(&mut frame[at..]);
    let (s, a) = (t.seq_number(), t.ack_number());
    let c = checksum::update32(checksum::update32(t.checksum(), s, seq), a, ack);
    t.set_seq_number(seq);
    t.set_ack_number(ack);
    t.set_checksum(c);
    true
}

/// A real server's SYN+ACK made by [`frame::reflect`] from the gateway's
/// SYN: acknowledges the SYN (sequence + 1) as a TCP stack would; its own
/// ISN stays the SYN's sequence number.
pub fn ack_the_syn(frame: &mut [u8]) -> bool {
    let Some(at) = tcp_at(frame) else { return false };
    let seq = tcp::Packet::new_unchecked(&frame[at..]).seq_number();
    set_seq_ack(frame, seq, seq.wrapping_add(1))
}

/// Whether TCP flags are a plain SYN (no ACK): what reaches a real server
/// only for a connection the gateway opened.
#[inline]
pub fn is_plain_syn(tcp_flags: u8) -> bool {
    tcp_flags & (flags::SYN | flags::ACK | flags::RST) == flags::SYN
}

#[cfg(test)]
mod tests {
    use super::super::flows::{self, VIP};
    use super::super::frame::{reflect, L4Kind, Template};
    use super::*;
    use etherparse::{SlicedPacket, TransportSlice};
    use gw_core::wire::ethernet::MacAddr;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    /// Sequence, acknowledgement and whether etherparse finds both
    /// checksums right.
    fn check(f: &[u8]) -> (u32, u32, bool) {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else { panic!("not ipv4") };
        let Some(TransportSlice::Tcp(t)) = p.transport else { panic!("not tcp") };
        let h = ip.header();
        let ok = h.to_header().calc_header_checksum() == h.header_checksum()
            && t.calc_checksum_ipv4(h.source(), h.destination()).unwrap() == t.checksum();
        (t.sequence_number(), t.acknowledgment_number(), ok)
    }

    fn filled(kind: u8, ip: u32, port: u16) -> Vec<u8> {
        let t = Template::new(A, B, VIP, 80, L4Kind::Tcp(kind), 64);
        let mut f = vec![0; t.len()];
        t.write(&mut f, ip, port, 0x1234_5678_9abc);
        f
    }

    #[test]
    fn flow_indexes_invert_the_client_tuples() {
        for f in [0u64, 1, 65_535, 65_536, 10_000, LEGIT_BASE, LEGIT_BASE + 77_777, MAX_FLOWS - 1] {
            let (ip, port) = flows::client(f);
            assert_eq!(flow_of(ip, port), Some(f));
        }
        assert_eq!(flow_of(u32::from(VIP), 80), None);
        let (ip, port) = flows::client(10_000);
        assert!(!is_ours(ip, port, 10_000), "a flood tuple right after the established flows");
        assert!(is_ours(ip, port, 10_001));
        let (ip, port) = flows::client(LEGIT_BASE + 3);
        assert!(is_ours(ip, port, 0));
    }

    #[test]
    fn the_handshake_ack_carries_the_cookie_with_right_checksums() {
        let (ip, port) = flows::client(42);
        let mut f = filled(flags::ACK, ip, port);
        assert_eq!(check(&f), (1, 1, true));
        assert!(set_seq_ack(&mut f, CLIENT_ISN + 1, 0xfedc_ba99));
        assert_eq!(check(&f), (2, 0xfedc_ba99, true));
    }

    #[test]
    fn a_cookie_is_read_from_a_syn_ack_only() {
        let (ip, port) = flows::client(7);
        let mut syn = filled(flags::SYN, ip, port);
        assert_eq!(cookie_of(&syn), None);
        // The server's answer to the SYN is a SYN+ACK toward the client.
        assert!(reflect(&mut syn));
        assert!(set_seq_ack(&mut syn, 0x8000_0001, CLIENT_ISN + 1));
        assert_eq!(cookie_of(&syn), Some((ip, port, 0x8000_0001)));
        assert!(check(&syn).2);
        assert_eq!(cookie_of(&filled(flags::ACK | flags::PSH, ip, port)), None);
        assert_eq!(cookie_of(&[0u8; 20]), None);
    }

    #[test]
    fn the_server_acknowledges_the_syn() {
        let (ip, port) = flows::client(9);
        let mut f = filled(flags::SYN, ip, port);
        assert!(set_seq_ack(&mut f, 0x1111_0000, 0));
        assert!(reflect(&mut f) && ack_the_syn(&mut f));
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else { panic!("not tcp") };
        assert!(t.syn() && t.ack());
        assert_eq!(check(&f), (0x1111_0000, 0x1111_0001, true));
        assert!(is_plain_syn(flags::SYN) && !is_plain_syn(flags::SYN | flags::ACK));
    }
}
