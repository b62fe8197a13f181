//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Vocabulary used below, and which functions return what:
//!
//! - A **sum** (`u32`) is a ones-complement accumulator of 16-bit big-endian
//!   words: [`sum`] and [`pseudo_header`] return one. Sums can be added with
//!   plain `+` (see [`sum`] for the bound) and are reduced with [`fold`].
//! - [`fold`] returns the folded 16-bit ones-complement sum, **not**
//!   complemented.
//! - A **checksum** is the complement of a folded sum: it is what goes in a
//!   header's checksum field. [`checksum`], [`update16`], [`update32`] and
//!   [`update_addr`] return a checksum (complemented).
//! - A packet verifies when the folded sum over it, checksum field included,
//!   is `0xffff`; equivalently `checksum(data) == 0`.
//!
//! Zero and negative zero: for any input with at least one non-zero word
//! (every IPv4 header, every TCP/UDP segment, because the pseudo header
//! holds a non-zero protocol number) the folded sum is in `1..=0xffff`, so a
//! computed checksum is in `0..=0xfffe`. The incremental functions keep that
//! invariant (RFC 1624 §3): they return exactly what a full recompute would,
//! including `0x0000` where the older RFC 1141 formula gave `0xffff`.
//!
//! UDP (RFC 768): a transmitted checksum of `0` means "no checksum", so a
//! computed `0` is sent as `0xffff` (both are the same ones-complement
//! number, so the receiver verifies either). Callers that update a UDP
//! checksum incrementally must therefore (1) leave a received `0` alone, it
//! carries no checksum to update, and (2) send `0xffff` when the update
//! returns `0`. [`super::udp::Packet`]'s `fill_checksum` and `rewrite_*`
//! methods do both. TCP and ICMP have no such rule.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Ones-complement sum of `data` as big-endian 16-bit words (RFC 1071 §4.1).
///
/// An odd trailing byte is padded with a zero byte on the right. The result
/// is already reduced to `0..=0xffff` (it is `0` only for all-zero data), so
/// up to 65537 results of `sum`/[`pseudo_header`] may be added with `+`
/// before [`fold`]. Not complemented.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    // Add 32-bit big-endian words into a 64-bit accumulator: since
    // 2^16 ≡ 1 (mod 0xffff), a sum of 32-bit words folds to the same
    // ones-complement value as a sum of 16-bit words (RFC 1071 §2(C)).
    // Two adds per 8 bytes, and no carry can be lost below 2^32 words.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        acc += u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
    }
    let mut rest = chunks.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        acc += u64::from(u32::from_be_bytes([*a, *b, *c, *d]));
        rest = tail;
    }
    if let [a, b, tail @ ..] = rest {
        acc += u64::from(u16::from_be_bytes([*a, *b]));
        rest = tail;
    }
    if let [a] = rest {
        acc += u64::from(*a) << 8;
    }
    // 64 -> 32 bits, with end-around carry; twice bounds it by 0xffff_ffff.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    u32::from(fold(acc as u32))
}

/// Folds a 32-bit sum to 16 bits with end-around carry. **Not** complemented.
///
/// Returns `0` only for a zero sum; any non-zero sum folds to `1..=0xffff`.
#[inline]
pub fn fold(sum: u32) -> u16 {
    // `sum + (sum rotated by 16)` has `hi + lo` in its low half and, in its
    // high half, `hi + lo` plus that addition's carry: the end-around
    // carry, so the high half is the folded sum (Linux's `csum_fold`). A
    // carry out of the high half cannot happen with the low half's: `hi +
    // lo + 1` overflows 16 bits only when `hi + lo` did, and then it is at
    // most 0xffff after the wrap. Three instructions for the two folds.
    (sum.wrapping_add(sum.rotate_left(16)) >> 16) as u16
}

/// [`fold`] of a 64-bit sum of 32-bit words (as [`Delta`] keeps them):
/// first to 32 bits by the same rotate-and-add as [`fold`] (the high half
/// of `s + (s rotated by 32)` is `hi + lo` with its end-around carry),
/// then [`fold`]. Not complemented.
#[inline(always)]
pub fn fold64(s: u64) -> u16 {
    fold((s.wrapping_add(s.rotate_left(32)) >> 32) as u32)
}

/// The Internet checksum of `data`: `!fold(sum(data))`. Complemented, ready
/// to store (for UDP, see the module docs about a result of `0`).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Sum of the TCP/UDP IPv4 pseudo header (RFC 793 §3.1, RFC 768): source
/// and destination address, zero, protocol, and the L4 length (header plus
/// payload). Not folded, not complemented; add it to [`sum`] of the segment.
#[inline]
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(proto) + u32::from(len)
}

/// Sum of the IPv6 pseudo header (RFC 8200 §8.1): source and destination
/// address, the upper-layer packet length as 32 bits, three zero bytes and
/// the next header. Reduced to `0..=0xffff` like [`sum`], not complemented;
/// add it to [`sum`] of the upper-layer packet.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let words = |a: Ipv6Addr| a.segments().iter().map(|w| u32::from(*w)).sum::<u32>();
    // At most 16 * 0xffff + 2 * 0xffff + 0xff: no overflow.
    let s = words(src) + words(dst) + (len >> 16) + (len & 0xffff) + u32::from(next_header);
    u32::from(fold(s))
}

/// Completes an RFC 1624 eqn. 3 update: `!fold(s)`, where `s` is
/// `~HC + ~m + m'` summed over the changed words.
///
/// Adding `0xffff` (ones-complement negative zero) leaves every non-zero sum
/// unchanged after folding and turns a zero sum into `0xffff`, so the folded
/// value is always in `1..=0xffff`, as for a full recompute over non-zero
/// data. Without it, `~HC = 0` (a UDP `0xffff`), `m = 0xffff`, `m' = 0`
/// would yield `0xffff` where a recompute yields `0x0000`.
#[inline]
fn finish_update(s: u32) -> u16 {
    !fold(s + 0xffff)
}

/// Incrementally updates checksum `csum` after a 16-bit word of the covered
/// data changed from `old` to `new` (RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`). Takes and returns a complemented checksum.
///
/// The word must sit at an even offset of the checksummed data (every
/// 16-bit header field does). For UDP see the module docs: skip the call
/// when `csum == 0`, and store `0xffff` if it returns `0`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    finish_update(u32::from(!csum) + u32::from(!old) + u32::from(new))
}

/// Like [`update16`] for a 32-bit field (two adjacent 16-bit words at an
/// even offset), e.g. a sequence number or an IPv4 address.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let old_hi = !(old >> 16) & 0xffff;
    let old_lo = !old & 0xffff;
    finish_update(u32::from(!csum) + old_hi + old_lo + (new >> 16) + (new & 0xffff))
}

/// [`update16`] for a 16-bit field at byte offset `at` of the checksummed
/// data, even or odd. At an odd offset the field's two bytes fall into two
/// different 16-bit words of the sum, which then sees them swapped (the
/// ones' complement sum commutes with a byte swap, RFC 1071 §2(B)): a TCP
/// option after a single NOP, say, which no sender has to pad.
#[inline]
pub fn update16_at(csum: u16, at: usize, old: u16, new: u16) -> u16 {
    if at % 2 == 0 {
        update16(csum, old, new)
    } else {
        update16(csum, old.swap_bytes(), new.swap_bytes())
    }
}

/// [`update32`] for a 32-bit field at byte offset `at`, even or odd (see
/// [`update16_at`]): SACK edges and timestamps sit wherever a sender's
/// options put them.
#[inline]
pub fn update32_at(csum: u16, at: usize, old: u32, new: u32) -> u16 {
    if at % 2 == 0 {
        update32(csum, old, new)
    } else {
        // Bytes b0 b1 b2 b3 at an odd offset add b1b0 + b3b2 to the sum.
        update32(csum, old.swap_bytes(), new.swap_bytes())
    }
}

/// Like [`update32`] for an IPv4 address: use it for the IPv4 header
/// checksum and for the TCP/UDP checksum (the pseudo header covers both
/// addresses) when NAT rewrites an address.
#[inline]
pub fn update_addr(csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update32(csum, u32::from(old), u32::from(new))
}

/// A change to checksummed data, kept as the RFC 1624 eqn. 3 partial sum
/// `~m + m'` over the changed 16-bit words, so that a rewrite of several
/// fields (addresses, ports, TTL) updates each checksum with one fold
/// instead of one per field. [`Delta::apply`] gives exactly what
/// [`update16`]/[`update32`] applied field by field would (and so what a
/// full recompute would).
///
/// It sums 32-bit words in a `u64` (2^16 ≡ 1 mod 0xffff, as in [`sum`])
/// and folds once, in [`Delta::apply`]; it cannot overflow before 2^32
/// changed fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// A 16-bit word changed from `old` to `new`.
    #[inline]
    pub const fn word(old: u16, new: u16) -> Delta {
        Delta(!old as u64 + new as u64)
    }

    /// Two adjacent 16-bit words (at an even offset) changed from `old` to
    /// `new`: an IPv4 address, a sequence number, a port pair.
    #[inline]
    pub fn word32(old: u32, new: u32) -> Delta {
        Delta(u64::from(!old) + u64::from(new))
    }

    /// An IPv4 address changed: in the IPv4 header, or in the TCP/UDP
    /// pseudo header.
    #[inline]
    pub fn addr(old: Ipv4Addr, new: Ipv4Addr) -> Delta {
        Delta::word32(u32::from(old), u32::from(new))
    }

    /// An IPv6 address changed: in a TCP/UDP/ICMPv6 pseudo header (IPv6
    /// has no header checksum).
    #[inline]
    pub fn addr6(old: Ipv6Addr, new: Ipv6Addr) -> Delta {
        let (o, n) = (u128::from(old), u128::from(new));
        let word = |v: u128, i: u32| u64::from((v >> (32 * i)) as u32);
        Delta((0..4).map(|i| word(!o, i) + word(n, i)).sum())
    }

    /// The change folded to 16 bits (in `1..=0xffff` unless no word
    /// changed by anything): the same change, in two bytes, for storing
    /// ([`Delta::from_folded`]); its complement `!v` is the change undone.
    #[inline]
    pub fn folded(self) -> u16 {
        fold64(self.0)
    }

    /// A change stored by [`Delta::folded`] (or its complement).
    #[inline(always)]
    pub const fn from_folded(v: u16) -> Delta {
        Delta(v as u64)
    }

    /// Applies the change to checksum `csum` (complemented, as stored) and
    /// returns the new one. For UDP see the module docs: skip it when the
    /// stored checksum is `0`, and store `0xffff` if it returns `0`.
    #[inline(always)]
    pub fn apply(self, csum: u16) -> u16 {
        // 64 -> 32 bits with end-around carry (twice bounds it), then as
        // `finish_update`.
        !fold64(self.0 + u64::from(!csum) + 0xffff)
    }

    /// [`Delta::apply`] of a small change: at most [`Delta::SMALL`], as a
    /// folded change ([`Delta::from_folded`]) with a word or two added.
    /// Its sum with the checksum then fits 32 bits and folds once less.
    #[inline(always)]
    pub fn apply_small(self, csum: u16) -> u16 {
        debug_assert!(self.0 <= Delta::SMALL, "{:#x} is not a small change", self.0);
        !fold(self.0 as u32 + u32::from(!csum) + 0xffff)
    }

    /// The largest change [`Delta::apply_small`] takes: its sum with a
    /// checksum's complement and 0xffff stays below 2^32.
    pub const SMALL: u64 = (1 << 31) - 1;
}

impl std::ops::Add for Delta {
    type Output = Delta;
    #[inline]
    fn add(self, other: Delta) -> Delta {
        Delta(self.0 + other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious RFC 1071 reference: 16-bit words, fold at the end.
    fn naive_sum(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = u64::from(pair.get(1).copied().unwrap_or(0));
            acc += hi | lo;
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    fn recompute(data: &[u8], csum_at: usize) -> u16 {
        let mut copy = data.to_vec();
        copy[csum_at] = 0;
        copy[csum_at + 1] = 0;
        checksum(&copy)
    }

    fn nonzero_outside(data: &[u8], csum_at: usize) -> bool {
        data.iter().enumerate().any(|(i, b)| *b != 0 && i != csum_at && i != csum_at + 1)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: words 0001 f203 f4f5 f6f7.
        #[rustfmt::skip]
        let data = [
            0x00, 0x01, // word 1
            0xf2, 0x03, // word 2
            0xf4, 0xf5, // word 3
            0xf6, 0xf7, // word 4
        ];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
        // Byte-order independence: the sum of swapped bytes is the swapped sum.
        let swapped: Vec<u8> = data.chunks(2).flat_map(|w| [w[1], w[0]]).collect();
        assert_eq!(fold(sum(&swapped)), 0xf2dd);
    }

    #[test]
    fn empty_and_zero_data() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(fold(0), 0);
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0u8; 13]), 0xffff);
    }

    #[test]
    fn odd_tail_is_padded_on_the_right() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x00, 0x01, 0xab]), 0xab01);
        // 7 and 9 bytes exercise the 4-, 2- and 1-byte remainders.
        let d7 = [1, 2, 3, 4, 5, 6, 7];
        assert_eq!(fold(sum(&d7)), naive_sum(&d7));
        let d9 = [0xff; 9];
        assert_eq!(fold(sum(&d9)), naive_sum(&d9));
    }

    #[test]
    fn fold_corner_cases() {
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 0x0001);
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(0xffff_ffff), 0xffff);
        assert_eq!(fold(0xffff_0001), 0x0001);
        assert_eq!(fold64(u64::MAX), 0xffff);
        assert_eq!(fold64(0xffff_ffff_0000_0001), 0x0001);
        assert_eq!(fold64(1 << 32), 0x0001);
        // A negative-zero sum stays negative zero: it never folds to 0.
        assert_eq!(fold(sum(&[0xff, 0xff, 0xff, 0xff])), 0xffff);
    }

    #[test]
    fn sum_results_add_without_overflow() {
        let big = vec![0xffu8; 65536];
        let s = sum(&big);
        assert!(s <= 0xffff);
        assert_eq!(s, 0xffff);
        // Every word is 0xffff (negative zero) except the protocol 0x00ff.
        let ph = pseudo_header(Ipv4Addr::BROADCAST, Ipv4Addr::BROADCAST, 255, 0xffff);
        assert_eq!(fold(s + s + ph), 0x00ff);
    }

    #[test]
    fn pseudo_header_words() {
        let s = pseudo_header(Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(10, 0, 0, 1), 6, 24);
        assert_eq!(s, 0xc0a8 + 0x010a + 0x0a00 + 0x0001 + 6 + 24);
    }

    #[test]
    fn rfc1624_section3_example() {
        // Sum of the other words 0xcd7a, m = 0x5555 -> HC = ~(0xcd7a + 0x5555).
        let hc = !fold(0xcd7a + 0x5555);
        assert_eq!(hc, 0xdd2f);
        // m changes to 0x3285: a recompute gives ~0xffff = 0x0000. RFC 1141's
        // eqn. 2 gave 0xffff here; eqn. 3 must give 0x0000.
        assert_eq!(update16(hc, 0x5555, 0x3285), 0x0000);
        assert_eq!(!fold(0xcd7a + 0x3285), 0x0000);
    }

    #[test]
    fn update_with_unchanged_value_is_identity() {
        for csum in [0x0000, 0x0001, 0x7fff, 0xfffe] {
            assert_eq!(update16(csum, 0x1234, 0x1234), csum);
            assert_eq!(update32(csum, 0xdead_beef, 0xdead_beef), csum);
        }
    }

    #[test]
    fn update_negative_zero_corner() {
        // Data whose sum is 0xffff: words [0xffff, 0x0000]; checksum 0 (a
        // UDP sender transmits it as 0xffff). Change the 0xffff word to 0.
        let data = [0xff, 0xff, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(checksum(&data), 0);
        let after = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
        // All-zero data is the one input whose full checksum is 0xffff.
        assert_eq!(checksum(&after), 0xffff);
        // From the UDP-mapped 0xffff, the update must match a recompute over
        // data with a non-zero word elsewhere (here a third word 0x0001).
        let data = [0xff, 0xff, 0x00, 0x01];
        let hc = checksum(&data); // 0xfffe
        let new = [0x00, 0x00, 0x00, 0x01];
        assert_eq!(update16(hc, 0xffff, 0x0000), checksum(&new));
        // ~HC = 0, m = 0xffff, m' = 0: the sum inside is 0.
        assert_eq!(update16(0xffff, 0xffff, 0x0000), 0x0000);
    }

    /// Random data of even length, the even byte offset `c` of a 16-bit
    /// checksum slot, and the even byte offset `f` of a field of
    /// `field_words` 16-bit words that does not overlap the slot.
    fn data_and_offsets(field_words: usize) -> impl Strategy<Value = (Vec<u8>, usize, usize)> {
        (2 * field_words + 2..200usize, 0usize..200).prop_flat_map(move |(words, c)| {
            let c = c % words;
            // Field starts that leave room for the field and skip word c.
            let starts: Vec<usize> =
                (0..=words - field_words).filter(|f| c < *f || c >= f + field_words).collect();
            (proptest::collection::vec(any::<u8>(), words * 2), proptest::sample::select(starts))
                .prop_map(move |(v, f)| (v, c * 2, f * 2))
        })
    }

    proptest! {
        /// A small change applies as the general one does.
        #[test]
        fn a_small_change_applies_as_any_change(d in 0..=Delta::SMALL, csum in any::<u16>()) {
            prop_assert_eq!(Delta(d).apply_small(csum), Delta(d).apply(csum));
        }
    }

    proptest! {
        #[test]
        fn sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
            prop_assert_eq!(fold(sum(&data)), naive_sum(&data));
            prop_assert!(sum(&data) <= 0xffff);
        }

        #[test]
        fn sum_of_unaligned_subslice_matches_naive(
            data in proptest::collection::vec(any::<u8>(), 1..300),
            start in 0usize..300,
        ) {
            let start = start % data.len();
            prop_assert_eq!(fold(sum(&data[start..])), naive_sum(&data[start..]));
        }

        #[test]
        fn update16_matches_recompute((mut data, c, f) in data_and_offsets(1), new: u16) {
            let hc = recompute(&data, c);
            data[c..c + 2].copy_from_slice(&hc.to_be_bytes());
            let old = u16::from_be_bytes([data[f], data[f + 1]]);
            data[f..f + 2].copy_from_slice(&new.to_be_bytes());
            // Real headers always hold a non-zero word (IPv4 version, the
            // pseudo-header protocol); all-zero data is the one exception.
            prop_assume!(nonzero_outside(&data, c));
            prop_assert_eq!(update16(hc, old, new), recompute(&data, c));
        }

        #[test]
        fn update32_matches_recompute((mut data, c, f) in data_and_offsets(2), new: u32) {
            let hc = recompute(&data, c);
            data[c..c + 2].copy_from_slice(&hc.to_be_bytes());
            let old = u32::from_be_bytes([data[f], data[f + 1], data[f + 2], data[f + 3]]);
            data[f..f + 4].copy_from_slice(&new.to_be_bytes());
            prop_assume!(nonzero_outside(&data, c));
            prop_assert_eq!(update32(hc, old, new), recompute(&data, c));
            // update_addr is update32 on the address bits.
            prop_assert_eq!(
                update_addr(hc, Ipv4Addr::from(old), Ipv4Addr::from(new)),
                recompute(&data, c)
            );
        }

        #[test]
        fn updates_at_any_offset_match_recompute(
            (mut data, c, f) in data_and_offsets(3), shift in 0usize..2, new16: u16, new32: u32,
        ) {
            // A 16-bit and a 32-bit field at `f + shift` (odd when shift is
            // 1), inside the three words that keep clear of the slot.
            let at = f + shift;
            let hc = recompute(&data, c);
            data[c..c + 2].copy_from_slice(&hc.to_be_bytes());
            let old16 = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new16.to_be_bytes());
            let hc16 = update16_at(hc, at, old16, new16);
            prop_assume!(nonzero_outside(&data, c));
            prop_assert_eq!(hc16, recompute(&data, c));
            let old32 = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            data[at..at + 4].copy_from_slice(&new32.to_be_bytes());
            prop_assume!(nonzero_outside(&data, c));
            prop_assert_eq!(update32_at(hc16, at, old32, new32), recompute(&data, c));
        }

        #[test]
        fn verify_after_update(data in proptest::collection::vec(any::<u8>(), 4..64), new: u16) {
            // Append a checksum word; the whole buffer must verify, before
            // and after an incremental update of word 0.
            let mut buf = data.clone();
            if buf.len() % 2 == 1 { buf.push(0); }
            buf[3] |= 1; // a non-zero word that the update leaves alone
            let hc = checksum(&buf);
            buf.extend_from_slice(&hc.to_be_bytes());
            prop_assert_eq!(checksum(&buf), 0);
            let old = u16::from_be_bytes([buf[0], buf[1]]);
            let hc2 = update16(hc, old, new);
            buf[0..2].copy_from_slice(&new.to_be_bytes());
            let n = buf.len();
            buf[n - 2..].copy_from_slice(&hc2.to_be_bytes());
            prop_assert_eq!(fold(sum(&buf)), 0xffff);
        }
    }

    proptest! {
        #[test]
        fn a_delta_applies_as_the_field_by_field_updates_do(
            csum in any::<u16>(), a in any::<u32>(), b in any::<u32>(), w in any::<u16>(), x in any::<u16>(),
        ) {
            let one_by_one = update16(update32(csum, a, b), w, x);
            prop_assert_eq!((Delta::word32(a, b) + Delta::word(w, x)).apply(csum), one_by_one);
        }

        /// The rotate-and-add folds equal folding 16 bits at a time until
        /// the sum fits (RFC 1071's loop).
        #[test]
        fn folds_equal_the_loop(x in any::<u32>(), y in 0u64..(1 << 62)) {
            let by_loop = |mut v: u64| {
                while v > 0xffff {
                    v = (v & 0xffff) + (v >> 16);
                }
                v as u16
            };
            prop_assert_eq!(fold(x), by_loop(u64::from(x)));
            prop_assert_eq!(fold64(y), by_loop(y));
        }
    }
}
