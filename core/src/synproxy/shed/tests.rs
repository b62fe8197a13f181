//! The frames are built by `etherparse`, not by the code under test.

use super::*;
use etherparse::PacketBuilder;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// A TCP segment with `flags` (FIN, SYN, RST, ACK bits) over IPv4.
fn tcp4(flags: u8) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, MAC).ipv4([198, 18, 0, 2], [198, 18, 0, 100], 64);
    let mut t = b.tcp(40000, 80, 1000, 500);
    if flags & tf::SYN != 0 {
        t = t.syn();
    }
    if flags & tf::ACK != 0 {
        t = t.ack(7);
    }
    if flags & tf::RST != 0 {
        t = t.rst();
    }
    if flags & tf::FIN != 0 {
        t = t.fin();
    }
    let mut out = Vec::new();
    t.write(&mut out, &[]).unwrap();
    out
}

fn tcp6(syn: bool, ack: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, MAC).ipv6(
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64],
        64,
    );
    let mut t = b.tcp(40000, 80, 1000, 500);
    if syn {
        t = t.syn();
    }
    if ack {
        t = t.ack(7);
    }
    let mut out = Vec::new();
    t.write(&mut out, &[]).unwrap();
    out
}

#[test]
fn only_plain_syns_are_sheddable() {
    assert!(plain_syn(&tcp4(tf::SYN)));
    assert!(plain_syn(&tcp6(true, false)));
    for f in [tf::SYN | tf::ACK, tf::SYN | tf::RST, tf::SYN | tf::FIN, tf::ACK, tf::RST, tf::FIN | tf::ACK, 0]
    {
        assert!(!plain_syn(&tcp4(f)), "flags {f:#x}");
    }
    assert!(!plain_syn(&tcp6(true, true)));
    assert!(!plain_syn(&tcp6(false, true)));
    // UDP whose byte at the TCP flags' place looks like SYN.
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC, MAC)
        .ipv4([198, 18, 0, 2], [198, 18, 0, 100], 64)
        .udp(40000, 80)
        .write(&mut out, &[0x02; 32])
        .unwrap();
    assert!(!plain_syn(&out));
    // A fragment (MF set, or an offset) is never shed: its flags are not
    // where a first fragment's are.
    let mut f = tcp4(tf::SYN);
    f[ETH + 6] |= 0x20;
    assert!(!plain_syn(&f));
    let mut f = tcp4(tf::SYN);
    f[ETH + 7] = 1;
    assert!(!plain_syn(&f));
    // IPv4 options move the TCP header.
    let mut out = Vec::new();
    let mut ip =
        etherparse::Ipv4Header::new(20, 64, etherparse::IpNumber::TCP, [198, 18, 0, 2], [198, 18, 0, 100])
            .unwrap();
    ip.options = [1, 1, 1, 1][..].try_into().unwrap();
    let mut tcp = etherparse::TcpHeader::new(40000, 80, 1000, 500);
    tcp.syn = true;
    ip.set_payload_len(20).unwrap();
    etherparse::Ethernet2Header { source: MAC, destination: MAC, ether_type: etherparse::EtherType::IPV4 }
        .write(&mut out)
        .unwrap();
    ip.write(&mut out).unwrap();
    tcp.write(&mut out).unwrap();
    assert!(plain_syn(&out));
    out[ETH + 24 + 13] |= tf::ACK;
    assert!(!plain_syn(&out));
    // Truncated anywhere, tagged, or not IP: not shed, no panic.
    let syn = tcp4(tf::SYN);
    for n in 0..ETH + 20 + 14 {
        assert!(!plain_syn(&syn[..n]), "{n} bytes");
    }
    let mut tagged = syn[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0, 5]);
    tagged.extend_from_slice(&syn[12..]);
    assert!(!plain_syn(&tagged));
    let mut arp = syn.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert!(!plain_syn(&arp));
}

#[test]
fn full_bursts_in_a_row_lower_the_quota_and_short_ones_raise_it() {
    let syn = tcp4(tf::SYN);
    let mut s = Shed::default();
    assert!(!s.rx_burst(0, false), "idle");
    assert_eq!(s.quota(), FULL_QUOTA);
    assert!(!s.rx_burst(0, true), "one full burst is no backlog yet");
    assert!(!s.rx_burst(0, false));
    assert!(!s.rx_burst(0, true));
    for want in (1..FULL_QUOTA).rev() {
        if want < FULL_QUOTA - 1 {
            assert!(s.rx_burst(0, true), "overloaded");
            assert_eq!(s.quota(), want + 1, "every second full burst");
        }
        assert!(s.rx_burst(0, true));
        assert_eq!(s.quota(), want);
        assert_eq!((0..FULL_QUOTA).filter(|_| s.admit(&syn)).count(), want as usize, "the burst's quota");
    }
    for _ in 0..10 {
        assert!(s.rx_burst(0, true));
        assert_eq!(s.quota(), 1, "never below one");
    }
    for want in 2..FULL_QUOTA {
        assert!(s.rx_burst(0, false), "still overloaded");
        assert_eq!(s.quota(), want);
        assert_eq!((0..FULL_QUOTA).filter(|_| s.admit(&syn)).count(), want as usize);
    }
    assert!(!s.rx_burst(0, false), "a whole burst again: not overloaded");
    assert!(!s.rx_burst(0, true));
    assert!(s.rx_burst(0, true), "a backlog again");
}

#[test]
fn the_rate_cap_is_a_millisecond_of_the_rate_refilled_by_the_clock() {
    let (syn, ack) = (tcp4(tf::SYN), tcp4(tf::ACK));
    let mut s = Shed::new(5_000);
    assert!(!s.rx_burst(10, true));
    assert!(s.rx_burst(10, true));
    assert_eq!(s.quota(), FULL_QUOTA - 1);
    let admitted = (0..20).filter(|_| s.admit(&syn)).count();
    assert_eq!(admitted, 5, "5 per ms");
    assert!((0..100).all(|_| s.admit(&ack)), "never shed, never counted against the budget");
    assert!(s.rx_burst(10, true));
    assert!(!s.admit(&syn), "the same millisecond: empty");
    assert!(s.rx_burst(11, true));
    assert_eq!((0..20).filter(|_| s.admit(&syn)).count(), 5, "one more millisecond");
    assert!(s.rx_burst(1_000_000, true));
    assert_eq!((0..20).filter(|_| s.admit(&syn)).count(), 5, "never more than a millisecond's worth");
    // Below 1,000/s a bucket still holds one SYN; rates are clamped.
    let mut s = Shed::new(1);
    assert_eq!(s.rate(), 1_000);
    assert!(!s.rx_burst(3, true));
    assert!(s.rx_burst(3, true));
    assert_eq!((0..20).filter(|_| s.admit(&syn)).count(), 1);
    assert_eq!(Shed::new(u32::MAX).rate(), 10_000_000);
}

proptest::proptest! {
    /// The shortcut for IPv4 without options reads what the general
    /// reading does, on TCP/UDP frames with a few bytes changed and cut
    /// anywhere.
    #[test]
    fn the_ipv4_shortcut_agrees_with_the_general_reading(
        flags in 0u8..64,
        udp: bool,
        edits in proptest::collection::vec((0usize..56, proptest::prelude::any::<u8>()), 0..3),
        cut in 0usize..80,
    ) {
        let mut f = if udp {
            let mut out = Vec::new();
            PacketBuilder::ethernet2(MAC, MAC)
                .ipv4([198, 18, 0, 2], [198, 18, 0, 100], 64)
                .udp(40000, 80)
                .write(&mut out, &[flags; 24])
                .unwrap();
            out
        } else {
            tcp4(flags)
        };
        for (at, v) in edits {
            if let Some(b) = f.get_mut(at) {
                *b = v;
            }
        }
        f.truncate(cut);
        proptest::prop_assert_eq!(plain_syn(&f), plain_syn_any(&f));
    }
}
