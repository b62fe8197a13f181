//! The two hash functions the kernel's IPVS schedulers use, so that sh, dh
//! and mh map a client to the same bucket as a kernel director does.
//!
//! * `hash_32` (`<linux/hash.h>`): multiply by `GOLDEN_RATIO_32` and keep the
//!   top bits (sh, dh, the lblc/lblcr tables).
//! * SipHash-1-3 (Aumasson and Bernstein, "SipHash: a fast short-input
//!   PRF", 2012, with one compression and three finalization rounds): on
//!   64-bit machines the kernel's `hsiphash` is SipHash-1-3 truncated to 32
//!   bits, which Maglev (mh) uses with fixed keys.

/// `GOLDEN_RATIO_32` of `<linux/hash.h>`.
pub(super) const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(val, bits)`: the top `bits` (1..=32) bits of `val * GOLDEN_RATIO_32`.
#[inline]
pub(super) fn hash_32(val: u32, bits: u32) -> u32 {
    debug_assert!((1..=32).contains(&bits));
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-c-d of `msg` under the key (`k0`, `k1`), the 64-bit output.
fn siphash(c: usize, d: usize, k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let compress = |v: &mut [u64; 4], m: u64| {
        v[3] ^= m;
        for _ in 0..c {
            round(v);
        }
        v[0] ^= m;
    };
    let mut words = msg.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        compress(&mut v, u64::from_le_bytes(b));
    }
    let mut last = [0u8; 8];
    let rest = words.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = msg.len() as u8;
    compress(&mut v, u64::from_le_bytes(last));
    v[2] ^= 0xff;
    for _ in 0..d {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// SipHash-1-3 of the `8 * N` bytes of `words` (each little-endian, in
/// order) under the key (`k0`, `k1`): [`siphash`]`(1, 3, ..)` of those
/// bytes, and std's `DefaultHasher` (key 0, 0) given them in one `write`,
/// in straight-line code. A fixed length needs no tail buffer: std's
/// hasher took 260 instructions for 32 bytes, this takes about 120 (a new
/// FULLNAT flow's next local port hashes 32 bytes, issue 14).
#[inline(always)]
pub(crate) fn sip13_words<const N: usize>((k0, k1): (u64, u64), words: [u64; N]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    // The last block is the length byte alone (the message is whole words).
    let last = ((8 * N) as u64 & 0xff) << 56;
    let mut compress = |m: u64| {
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    };
    for m in words {
        compress(m);
    }
    compress(last);
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The kernel's `hsiphash(&v, 4, key)` on a 64-bit machine, where the key is
/// two `unsigned long`s: SipHash-1-3 of `v`'s 4 bytes in little-endian order
/// (the kernel reads them with `le32_to_cpup`), low 32 bits.
#[inline]
pub(super) fn hsiphash_u32(key: (u64, u64), v: u32) -> u32 {
    siphash(1, 3, key.0, key.1, &v.to_le_bytes()) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const K0: u64 = 0x0706_0504_0302_0100;
    const K1: u64 = 0x0f0e_0d0c_0b0a_0908;

    /// Appendix A of the SipHash paper (SipHash-2-4, key 00..0f, message
    /// 00..0e) and the first entry of the reference `vectors.h` (empty
    /// message): checks the rounds, the padding and the length byte.
    #[test]
    fn siphash_2_4_reference_vectors() {
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash(2, 4, K0, K1, &msg), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash(2, 4, K0, K1, &[]), 0x726f_db47_dd0e_0e31);
    }

    /// SipHash-1-3 answers checked against an independent implementation
    /// (the `siphasher` crate's `SipHasher13`).
    #[test]
    fn siphash_1_3_known_answers() {
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash(1, 3, K0, K1, &msg), SIP13_K_00_0E);
        // Maglev's two keys on 10.0.0.1 port 80.
        assert_eq!(hsiphash_u32((2_654_435_761, 2_654_435_761), 0x0a00_0001 + 80), 0x439c_0cbe);
        assert_eq!(hsiphash_u32((2_654_446_892, 2_654_446_892), 0x0a00_0001 + 80), 0x97b3_dc47);
    }

    const SIP13_K_00_0E: u64 = 0xd320_d86d_2a51_9956;

    /// The fixed-length SipHash-1-3 is the byte-wise one, and std's
    /// `DefaultHasher` (which the FULLNAT port choice used before it) fed
    /// the same bytes in one `write`, for 1 to 6 words and any key.
    #[test]
    fn sip13_words_is_siphash_1_3_of_their_bytes() {
        use std::hash::Hasher;
        fn check<const N: usize>(key: (u64, u64), words: [u64; N]) {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            assert_eq!(sip13_words(key, words), siphash(1, 3, key.0, key.1, &bytes), "{words:x?}");
            if key == (0, 0) {
                let mut h = std::hash::DefaultHasher::new();
                h.write(&bytes);
                assert_eq!(sip13_words(key, words), h.finish(), "{words:x?}");
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for key in [(0, 0), (K0, K1)] {
            for _ in 0..50 {
                check(key, [next()]);
                check(key, [next(), next()]);
                check(key, [next(), next(), next(), next()]);
                check(key, [next(), next(), next(), next(), next(), next()]);
            }
        }
    }

    #[test]
    fn hash_32_keeps_the_top_bits() {
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(2, 8), 0xc3);
    }
}
