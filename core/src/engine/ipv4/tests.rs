//! [`L4Info::check_plain`], the established path's parse of a header
//! without options, against the ladder of views it stands in for (and
//! [`L4Info::check_into`], the same written in place).

use super::*;
use etherparse::PacketBuilder;
use proptest::prelude::*;

/// An Ethernet/IPv4 frame 198.18.0.2:40000 -> 198.18.0.100:80, TCP
/// (ACK, or SYN+FIN to count both flags) or UDP, with `payload`.
fn frame(tcp: bool, syn_fin: bool, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
        [198, 18, 0, 2],
        [198, 18, 0, 100],
        64,
    );
    let mut out = Vec::new();
    let r = match (tcp, syn_fin) {
        (true, true) => b.tcp(40000, 80, 7, 64000).syn().fin().write(&mut out, payload),
        (true, false) => b.tcp(40000, 80, 7, 64000).ack(1).write(&mut out, payload),
        (false, _) => b.udp(40000, 80).write(&mut out, payload),
    };
    r.expect("etherparse writes to a Vec");
    out
}

/// The ladder's answer for the IPv4 bytes `ip` ([`L4Info::check`]'s
/// before the plain path).
fn ladder(ip: &[u8]) -> Option<L4Info> {
    L4Info::check_ip_ladder(&ipv4::Packet::new_checked(ip).ok()?)
}

#[test]
fn plain_path_reads_what_the_ladder_reads() {
    for (tcp, syn_fin) in [(true, false), (true, true), (false, false)] {
        let f = frame(tcp, syn_fin, b"0123456789");
        let ip = &f[ethernet::HEADER_LEN..];
        let p = L4Info::check_plain(ip).expect("a header without options takes the plain path");
        let p = p.expect("a valid packet");
        assert_eq!(Some(p), ladder(ip));
        assert_eq!(p.key.src, 0xc612_0002);
        assert_eq!((p.key.sport, p.key.dport, p.ttl, p.tl), (40000, 80, 64, ip.len()));
        if tcp {
            // Ten bytes of payload, plus SYN and FIN.
            assert_eq!((p.seq, p.seg_len), (7, 10 + 2 * u32::from(syn_fin)));
        }
        assert_eq!(L4Info::check(&f), Some(p));
    }
}

#[test]
fn plain_path_leaves_options_and_short_headers_to_the_ladder() {
    let mut f = frame(true, false, b"x");
    f[ethernet::HEADER_LEN] = 0x46;
    assert_eq!(L4Info::check_plain(&f[ethernet::HEADER_LEN..]), None);
    assert_eq!(L4Info::check_plain(&f[ethernet::HEADER_LEN..ethernet::HEADER_LEN + 19]), None);
}

/// Every byte of the IPv4 and TCP/UDP headers set to values that reach
/// each check (the flag bits, lengths around their bounds, zero ports,
/// the protocol), with the header checksum fixed after or left wrong:
/// the plain path answers as the ladder does.
#[test]
fn plain_path_equals_the_ladder_on_every_header_byte() {
    let fix = |f: &mut [u8]| {
        let ip = &mut f[ethernet::HEADER_LEN..];
        ip[10..12].copy_from_slice(&[0, 0]);
        let c = crate::wire::checksum::checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    };
    for tcp in [true, false] {
        let base = frame(tcp, false, b"0123456789");
        let end = ethernet::HEADER_LEN + 20 + if tcp { 20 } else { 8 };
        for at in ethernet::HEADER_LEN..end {
            for v in [
                0,
                1,
                7,
                8,
                0x11,
                0x14,
                0x20,
                0x2a,
                0x40,
                0x45,
                0x50,
                0x60,
                0x70,
                0x80,
                0x90,
                0xff,
                base[at] ^ 0xff,
            ] {
                for fixed in [true, false] {
                    let mut f = base.clone();
                    f[at] = v;
                    if fixed {
                        fix(&mut f);
                    }
                    let ip = &f[ethernet::HEADER_LEN..];
                    let fast = L4Info::check_plain(ip);
                    if f[ethernet::HEADER_LEN] == 0x45 {
                        assert_eq!(fast, Some(ladder(ip)), "byte {at} = {v:#x}, checksum fixed: {fixed}");
                    } else {
                        assert_eq!(fast, None, "byte {at} = {v:#x}");
                    }
                }
            }
        }
    }
}

proptest! {
    /// Any frame (valid ones with up to four bytes changed anywhere in
    /// their headers, and cut at any length): where the plain path
    /// answers, it answers as the ladder does.
    #[test]
    fn plain_path_equals_the_ladder(
        tcp in any::<bool>(),
        syn_fin in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        edits in proptest::collection::vec((0usize..60, any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        fix_checksum in any::<bool>(),
    ) {
        let mut f = frame(tcp, syn_fin, &payload);
        for (at, v) in edits {
            if let Some(b) = f.get_mut(at) {
                *b = v;
            }
        }
        let ip = &mut f[ethernet::HEADER_LEN..];
        if fix_checksum && ip.len() >= 20 {
            // The edits then reach the checks beyond the header checksum.
            ip[10..12].copy_from_slice(&[0, 0]);
            let c = crate::wire::checksum::checksum(&ip[..20]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let n = cut.index(f.len() + 1);
        let f = &f[..n.max(ethernet::HEADER_LEN)];
        let ip = &f[ethernet::HEADER_LEN..];
        if let Some(fast) = L4Info::check_plain(ip) {
            prop_assert_eq!(fast, ladder(ip));
        }
        let by_views = ethernet::Frame::new_checked(f)
            .ok()
            .filter(|e| e.ethertype() == ethernet::EtherType::Ipv4)
            .and_then(|_| ladder(ip));
        prop_assert_eq!(L4Info::check(f), by_views);
        // Written in place over another record (the poll loop's slot):
        // the same answer, every field written.
        let mut out = L4Info::check(&frame(!tcp, !syn_fin, b"stale")).unwrap();
        let staged = L4Info::check_into(f, &mut out);
        prop_assert_eq!(staged.then_some(out), by_views);
    }
}

/// A staging slot gives the record of the frame staged last, and only if
/// the engine's checks made one for it: a slot that held a record gives
/// none after a frame without one (not IPv4, a bad checksum, cut short),
/// and the record it gives is [`Engine::stage`]'s of [`L4Info::check`]'s.
#[test]
fn a_staging_slot_gives_only_the_last_frames_own_record() {
    let engine = crate::engine::ipv6::tests::engine(None);
    let ok = frame(false, false, b"0123456789");
    let mut bad_sum = ok.clone();
    bad_sum[ethernet::HEADER_LEN + 10] ^= 0xff;
    let mut not_ip = ok.clone();
    not_ip[12] = 0x86;
    let mut slot = StagedSlot::default();
    assert_eq!(slot.get(), None, "a new slot holds no record");
    for bad in [bad_sum, not_ip, ok[..30].to_vec(), vec![]] {
        assert_eq!(slot.stage(&engine, 1, 0, &ok), crate::steer::Owner::Here);
        let want = engine.stage(L4Info::check(&ok).unwrap());
        assert_eq!(slot.get(), Some(&want));
        slot.stage(&engine, 1, 0, &bad);
        assert_eq!(slot.get(), None, "{bad:?}");
        assert!(slot.get_mut().is_none());
    }
}
