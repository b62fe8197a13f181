use etherparse::{NetSlice, PacketBuilder, SlicedPacket};
use proptest::prelude::*;

use super::*;

const SRC: [u8; 4] = [198, 18, 0, 2];
const DST: [u8; 4] = [198, 18, 0, 100];

/// An Ethernet + IPv4 + UDP frame with `len` bytes of payload and ID `id`.
fn datagram(len: usize, id: u16, seed: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    let mut f = vec![];
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(SRC, DST, 64)
        .udp(5000, 53)
        .write(&mut f, &payload)
        .unwrap();
    let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
    ip.set_ident(id);
    ip.fill_checksum();
    f
}

fn key(id: u16) -> FragKey {
    FragKey {
        src: u32::from_be_bytes(SRC).into(),
        dst: u32::from_be_bytes(DST).into(),
        proto: 17,
        id: id.into(),
        v6: false,
    }
}

/// Fragments of `frame` for `mtu`, as frames (our fragmenter).
fn fragments(frame: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    fragment_lens(frame, mtu)
        .enumerate()
        .map(|(k, len)| {
            let mut out = vec![0; len];
            write_fragment(frame, mtu, k, &mut out);
            out
        })
        .collect()
}

/// Feeds a fragment frame to the table as the engine does.
fn insert(r: &mut Reassembler, now: u64, frag: &[u8]) -> Insert {
    let ip = ipv4::Packet::new_checked(&frag[14..]).unwrap();
    let hl = ip.header_len();
    let tl = ip.total_len() as usize;
    let f = Fragment {
        headers: &frag[..14 + hl],
        size: tl,
        offset: ip.frag_offset() as usize,
        more: ip.more_frags(),
        payload: &frag[14 + hl..14 + tl],
    };
    r.insert(now, 7, key(ip.ident()), &f)
}

/// The reassembled frame, finished as the engine does.
fn complete(r: &mut Reassembler, res: Insert) -> Vec<u8> {
    let Insert::Complete { range, port, .. } = res else { panic!("not complete: {res:?}") };
    assert_eq!(port, 7);
    let mut f = r.out()[range].to_vec();
    finish_ipv4(&mut f).unwrap();
    f
}

#[test]
fn fragments_parse_with_etherparse_and_its_defragmenter_rebuilds_the_payload() {
    let frame = datagram(8000, 77, 1);
    let frags = fragments(&frame, 1500);
    assert_eq!(frags.len(), 6, "8008 bytes of UDP in 1480-byte pieces");
    let mut pool = etherparse::defrag::IpDefragPool::<u32, ()>::new();
    let mut whole = None;
    for f in &frags {
        assert!(f.len() <= 14 + 1500);
        let s = SlicedPacket::from_ethernet(f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &s.net else { panic!() };
        assert!(ip.header().header_checksum() == ip.header().to_header().calc_header_checksum());
        assert_eq!(ip.header().identification(), 77);
        if let Some(p) = pool.process_sliced_packet(&s, 0, ()).unwrap() {
            whole = Some(p.payload);
        }
    }
    assert_eq!(whole.unwrap(), frame[34..], "UDP header and payload");
}

#[test]
fn an_unfragmentable_mtu_gives_no_fragments() {
    let frame = datagram(100, 1, 0);
    assert_eq!(fragment_lens(&frame, 27).count(), 0);
    assert_eq!(fragment_lens(&frame, 28).count(), 14, "8 bytes each");
}

#[test]
fn overlap_discards_the_datagram_and_a_duplicate_only_itself() {
    let frame = datagram(3000, 9, 0);
    let frags = fragments(&frame, 1000);
    let mut r = Reassembler::new(FragConfig::default());
    assert_eq!(insert(&mut r, 0, &frags[0]), Insert::Held);
    assert_eq!(insert(&mut r, 0, &frags[0]), Insert::Drop { why: Drop::FragDuplicate, discarded: false });
    assert_eq!(r.len(), 1);
    // A fragment starting 8 bytes into the first one's data.
    let mut bad = frags[1].clone();
    let mut ip = ipv4::Packet::new_unchecked(&mut bad[14..]);
    let off = ip.frag_offset();
    ip.set_frag_offset(off - 8);
    ip.fill_checksum();
    assert_eq!(insert(&mut r, 0, &bad), Insert::Drop { why: Drop::FragOverlap, discarded: true });
    assert!(r.is_empty());
    // The rest alone cannot complete it now.
    for f in &frags[1..] {
        assert_eq!(insert(&mut r, 0, f), Insert::Held);
    }
}

#[test]
fn a_datagram_past_65535_bytes_is_refused() {
    let frame = datagram(2000, 3, 0);
    let mut frag = fragments(&frame, 1500).pop().unwrap();
    let mut ip = ipv4::Packet::new_unchecked(&mut frag[14..]);
    ip.set_frag_offset(65528);
    ip.fill_checksum();
    let res = insert(&mut Reassembler::new(FragConfig::default()), 0, &frag);
    assert_eq!(res, Insert::Drop { why: Drop::FragOversized, discarded: false });
    // Within 65,535 bytes of payload but not of IP: refused when finished.
    let mut f = vec![0u8; 14 + 20 + 65_528];
    f[14] = 0x45;
    assert_eq!(finish_ipv4(&mut f), Err(Drop::FragOversized));
}

#[test]
fn a_flood_of_random_ids_evicts_the_oldest_and_never_grows_the_table() {
    let cfg = FragConfig { datagrams: 8, timeout_ms: 30_000 };
    let mut r = Reassembler::new(cfg);
    let index_capacity = r.index.capacity();
    let real = datagram(3000, 1, 5);
    let frags = fragments(&real, 1500);
    for id in 100..1100u16 {
        let f = fragments(&datagram(3000, id, 0), 1500);
        assert_eq!(insert(&mut r, u64::from(id), &f[0]), Insert::Held);
        assert!(r.len() <= 8);
    }
    assert_eq!(r.take_dropped().evicted, 1000 - 8);
    assert_eq!(r.peak(), 8);
    assert_eq!(r.index.capacity(), index_capacity, "the index never grew (no allocation)");
    // A real datagram whose fragments arrive together still completes.
    let mut res = Insert::Held;
    for f in &frags {
        res = insert(&mut r, 2000, f);
    }
    assert_eq!(complete(&mut r, res), real);
}

#[test]
fn churn_never_grows_the_index() {
    // The default table under a long flood of random IDs: its index keeps
    // the capacity it was built with (hashbrown reallocates only to grow).
    let mut r = Reassembler::new(FragConfig::default());
    let cap = r.index.capacity();
    let mut x = 0x9e37_79b9u32;
    for now in 0..200_000u64 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let key = FragKey { src: 1, dst: 2, proto: 17, id: x, v6: false };
        let f = Fragment { headers: &[0; 34], size: 28, offset: 0, more: true, payload: &[0; 8] };
        assert_eq!(r.insert(now, 0, key, &f), Insert::Held);
    }
    assert_eq!(r.len(), 64);
    assert_eq!(r.index.capacity(), cap, "the index reallocated");
}

#[test]
fn incomplete_datagrams_time_out() {
    let mut r = Reassembler::new(FragConfig { datagrams: 4, timeout_ms: 30_000 });
    let frags = fragments(&datagram(3000, 1, 0), 1500);
    insert(&mut r, 1000, &frags[0]);
    assert_eq!(r.expire(30_999), 0);
    assert_eq!(r.expire(31_000), 1);
    assert!(r.is_empty());
    assert_eq!(r.take_dropped().timed_out, 1);
}

#[test]
fn bad_ends_and_lengths_are_malformed() {
    let frags = fragments(&datagram(3000, 1, 0), 1000);
    let mut r = Reassembler::new(FragConfig::default());
    // A middle fragment whose length is not a multiple of 8.
    let mut odd = frags[1].clone();
    odd.pop();
    let mut ip = ipv4::Packet::new_unchecked(&mut odd[14..]);
    let tl = ip.total_len();
    ip.set_total_len(tl - 1);
    assert_eq!(insert(&mut r, 0, &odd), Insert::Drop { why: Drop::FragMalformed, discarded: false });
    // The last fragment, then data past its end.
    let last = frags.last().unwrap();
    assert_eq!(insert(&mut r, 0, last), Insert::Held);
    let mut past = frags[1].clone();
    let mut ip = ipv4::Packet::new_unchecked(&mut past[14..]);
    ip.set_frag_offset(8000);
    assert_eq!(insert(&mut r, 0, &past), Insert::Drop { why: Drop::FragMalformed, discarded: true });
}

#[test]
fn reassembly_off_drops_as_before() {
    let mut r = Reassembler::new(FragConfig { datagrams: 0, timeout_ms: 1 });
    assert!(!r.enabled());
    let frags = fragments(&datagram(3000, 1, 0), 1500);
    assert_eq!(insert(&mut r, 0, &frags[0]), Insert::Drop { why: Drop::Fragment, discarded: false });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random fragmentation (random 8-byte-aligned cut points), random
    /// order, random duplicates: always the original datagram, byte for
    /// byte, and the result parses with etherparse as one UDP datagram.
    #[test]
    fn any_fragmentation_in_any_order_reassembles_to_the_original(
        len in 9usize..20_000,
        big in any::<bool>(),
        cuts in proptest::collection::vec(any::<u16>(), 1..40),
        order in any::<u64>(),
        dups in proptest::collection::vec(any::<u8>(), 0..5),
        seed in any::<u8>(),
    ) {
        let len = if big { 65_507 - len } else { len };
        let frame = datagram(len, 4242, seed);
        let payload = &frame[34..];
        let mut points: Vec<usize> = cuts.iter().map(|c| (*c as usize % payload.len()) & !7).filter(|p| *p > 0).collect();
        points.push(0);
        points.push(8);
        points.push(payload.len());
        points.sort();
        points.dedup();
        let mut frags: Vec<Vec<u8>> = points.windows(2).map(|w| {
            let mut f = frame[..34].to_vec();
            f.extend_from_slice(&payload[w[0]..w[1]]);
            let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
            ip.set_total_len((20 + w[1] - w[0]) as u16);
            ip.set_frag_offset(w[0] as u16);
            ip.set_more_frags(w[1] < payload.len());
            ip.fill_checksum();
            f
        }).collect();
        for d in &dups {
            let again = frags[*d as usize % frags.len()].clone();
            frags.push(again);
        }
        // A deterministic shuffle from `order`.
        let mut x = order | 1;
        for i in (1..frags.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            frags.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut r = Reassembler::new(FragConfig { datagrams: 2, timeout_ms: 30_000 });
        let mut done = None;
        for f in &frags {
            match insert(&mut r, 0, f) {
                Insert::Held => {}
                // (Again only if every fragment came again after the end.)
                c @ Insert::Complete { .. } => {
                    let again = complete(&mut r, c);
                    prop_assert_eq!(&again, &frame);
                    done = Some(again);
                }
                Insert::Drop { why, discarded } => {
                    prop_assert_eq!(why, Drop::FragDuplicate);
                    prop_assert!(!discarded);
                }
            }
        }
        let done = done.expect("complete");
        prop_assert_eq!(&done, &frame);
        let s = SlicedPacket::from_ethernet(&done).unwrap();
        let Some(etherparse::TransportSlice::Udp(u)) = s.transport else { panic!() };
        prop_assert_eq!(u.payload(), &frame[42..]);
        // Only a duplicate arriving after completion can start anew.
        prop_assert!(r.len() <= 1);
    }

    /// Our fragmenter's output, reassembled by our table, is the input.
    #[test]
    fn fragmenting_then_reassembling_is_the_identity(len in 1usize..30_000, mtu in 68usize..9000) {
        let frame = datagram(len, 7, 3);
        let frags = fragments(&frame, mtu);
        let mut r = Reassembler::new(FragConfig::default());
        let mut res = Insert::Held;
        for f in frags.iter().rev() {
            prop_assert!(f.len() - 14 <= mtu);
            res = insert(&mut r, 0, f);
        }
        if frags.len() == 1 {
            prop_assert_eq!(&frags[0], &frame);
        } else {
            prop_assert_eq!(complete(&mut r, res), frame);
        }
    }
}
