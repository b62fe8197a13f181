//! One direction's index of the session table: a bucketised cuckoo hash
//! (the shape of DPDK's `rte_hash` and VPP's bihash).
//!
//! Invariants:
//! - A bucket is one 64-byte cache line: [`WAYS`] 32-bit signatures and
//!   [`WAYS`] session indexes. A way is empty when its index is [`NIL`].
//! - An entry with hash `h` lives in its primary bucket `h & mask` or in its
//!   alternative `primary ^ alt(sig)`, where `sig` is the hash's upper half.
//!   XOR makes `alt` an involution, so a displaced entry finds its other
//!   bucket from the bucket it is in and its signature alone, without
//!   reading its session.
//! - So a lookup reads at most two bucket lines (usually one: inserts fill
//!   the primary first) and then only the session lines whose signature
//!   matches (a false match is 1 in 2^32 per way): never a chain walk.
//! - Inserts displace entries along a path of at most [`MAX_KICKS`] moves;
//!   a path that does not end in a free way is undone, so a failed insert
//!   leaves the index as it was (the caller counts a full table).

use super::NIL;

/// Entries per bucket (one cache line of signatures and indexes).
pub const WAYS: usize = 8;
/// Longest displacement path an insert tries.
const MAX_KICKS: usize = 64;
/// Target load: at most 7 entries per 8-way bucket on average.
const LOAD_NUM: usize = 7;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Bucket {
    sig: [u32; WAYS],
    idx: [u32; WAYS],
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

const EMPTY: Bucket = Bucket { sig: [0; WAYS], idx: [NIL; WAYS] };

impl Bucket {
    #[inline(always)]
    fn free_way(&self) -> Option<usize> {
        self.idx.iter().position(|&i| i == NIL)
    }
}

/// The index could not place an entry (every displacement path was full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom;

/// A cuckoo index from a 64-bit hash to session indexes.
pub(super) struct Index {
    buckets: Box<[Bucket]>,
    mask: u32,
}

#[inline(always)]
fn sig_of(h: u64) -> u32 {
    (h >> 32) as u32
}

impl Index {
    /// An index sized for `capacity` entries at a load of at most 7/8.
    pub fn new(capacity: usize) -> Index {
        let n = capacity.div_ceil(LOAD_NUM).max(2).next_power_of_two();
        Index { buckets: vec![EMPTY; n].into_boxed_slice(), mask: n as u32 - 1 }
    }

    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    #[inline(always)]
    fn primary(&self, h: u64) -> usize {
        (h as u32 & self.mask) as usize
    }

    /// The other bucket of an entry with signature `sig` in bucket `b`
    /// (never `b` itself: the mixed signature's low bit is forced to 1).
    #[inline(always)]
    fn alt(&self, b: usize, sig: u32) -> usize {
        let m = (sig.wrapping_mul(0x9e37_79b1).rotate_left(13) | 1) & self.mask;
        b ^ m as usize
    }

    /// The primary bucket line of hash `h`, for prefetching.
    #[inline(always)]
    pub fn bucket_of(&self, h: u64) -> &Bucket {
        &self.buckets[self.primary(h)]
    }

    /// The first entry of hash `h` in its primary bucket whose signature
    /// matches (a likely hit, for prefetching its session line).
    #[inline(always)]
    pub fn candidate(&self, h: u64) -> Option<u32> {
        let sig = sig_of(h);
        let b = &self.buckets[self.primary(h)];
        (0..WAYS).find(|&w| b.sig[w] == sig && b.idx[w] != NIL).map(|w| b.idx[w])
    }

    /// The entry of hash `h` for which `is` holds.
    #[inline(always)]
    pub fn find(&self, h: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        let sig = sig_of(h);
        let b1 = self.primary(h);
        let b = &self.buckets[b1];
        for w in 0..WAYS {
            if b.sig[w] == sig && b.idx[w] != NIL && is(b.idx[w]) {
                return Some(b.idx[w]);
            }
        }
        let b = &self.buckets[self.alt(b1, sig)];
        for w in 0..WAYS {
            if b.sig[w] == sig && b.idx[w] != NIL && is(b.idx[w]) {
                return Some(b.idx[w]);
            }
        }
        None
    }

    /// Adds entry `idx` with hash `h` (the caller knows it is absent).
    pub fn insert(&mut self, h: u64, idx: u32) -> Result<(), NoRoom> {
        let sig = sig_of(h);
        let b1 = self.primary(h);
        let b2 = self.alt(b1, sig);
        for b in [b1, b2] {
            if let Some(w) = self.buckets[b].free_way() {
                self.put(b, w, sig, idx);
                return Ok(());
            }
        }
        // Displace: put the new entry in way `w` of `b`, move that way's
        // old entry to its other bucket, and so on until one lands in a
        // free way. The path is kept so that a failure can be undone.
        let mut path = [(0u32, 0u8); MAX_KICKS];
        let (mut b, mut s, mut i) = (b1, sig, idx);
        for (k, step) in path.iter_mut().enumerate() {
            // Vary the victim so that two full buckets do not trade one
            // entry back and forth.
            let w = (s as usize ^ k) % WAYS;
            *step = (b as u32, w as u8);
            let bucket = &mut self.buckets[b];
            (s, bucket.sig[w]) = (bucket.sig[w], s);
            (i, bucket.idx[w]) = (bucket.idx[w], i);
            b = self.alt(b, s);
            if let Some(free) = self.buckets[b].free_way() {
                self.put(b, free, s, i);
                return Ok(());
            }
        }
        // Undo: walk the path back, each way taking back what it held.
        for &(pb, pw) in path.iter().rev() {
            let bucket = &mut self.buckets[pb as usize];
            let w = pw as usize;
            (s, bucket.sig[w]) = (bucket.sig[w], s);
            (i, bucket.idx[w]) = (bucket.idx[w], i);
        }
        debug_assert_eq!((s, i), (sig, idx));
        Err(NoRoom)
    }

    #[inline(always)]
    fn put(&mut self, b: usize, w: usize, sig: u32, idx: u32) {
        self.buckets[b].sig[w] = sig;
        self.buckets[b].idx[w] = idx;
    }

    /// Removes entry `idx`, which was inserted with hash `h`.
    pub fn remove(&mut self, h: u64, idx: u32) -> bool {
        let sig = sig_of(h);
        let b1 = self.primary(h);
        for b in [b1, self.alt(b1, sig)] {
            let bucket = &mut self.buckets[b];
            if let Some(w) = (0..WAYS).find(|&w| bucket.idx[w] == idx) {
                bucket.idx[w] = NIL;
                bucket.sig[w] = 0;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(usize),
    }

    /// Every entry of the model is found under its hash, exactly once in
    /// the index, and nothing else is in it.
    fn check(ix: &Index, model: &HashMap<u32, u64>) {
        for (&idx, &h) in model {
            assert_eq!(ix.find(h, |i| i == idx), Some(idx), "entry {idx} lost");
        }
        let stored: Vec<u32> = ix.buckets.iter().flat_map(|b| b.idx).filter(|&i| i != NIL).collect();
        assert_eq!(stored.len(), model.len());
        assert!(stored.iter().all(|i| model.contains_key(i)));
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        // Hashes whose bucket bits take few values crowd a few buckets, so
        // buckets fill and inserts displace.
        let hash = (any::<u32>(), 0u64..4).prop_map(|(sig, b)| (sig as u64) << 32 | b);
        prop::collection::vec(
            prop_oneof![3 => hash.prop_map(Op::Insert), 1 => any::<usize>().prop_map(Op::Remove)],
            1..200,
        )
    }

    proptest! {
        #[test]
        fn agrees_with_a_hashmap(ops in ops(), cap in 1usize..60) {
            let mut ix = Index::new(cap);
            let mut model: HashMap<u32, u64> = HashMap::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Insert(h) => {
                        match ix.insert(h, next) {
                            Ok(()) => { model.insert(next, h); }
                            // Only a crowded index may refuse, and it is unchanged.
                            Err(NoRoom) => prop_assert!(model.len() >= WAYS),
                        }
                        next += 1;
                    }
                    Op::Remove(n) if !model.is_empty() => {
                        let idx = *model.keys().nth(n % model.len()).unwrap();
                        let h = model.remove(&idx).unwrap();
                        prop_assert!(ix.remove(h, idx));
                        prop_assert_eq!(ix.find(h, |i| i == idx), None);
                    }
                    Op::Remove(_) => {}
                }
                check(&ix, &model);
            }
        }
    }

    #[test]
    fn displacement_fills_both_buckets_and_undoes_a_failure() {
        // Two buckets: every entry's two candidates are the two buckets, so
        // 16 entries fit and the 17th is refused with nothing lost.
        let mut ix = Index::new(2);
        assert_eq!(ix.buckets.len(), 2);
        let mut model = HashMap::new();
        for i in 0..(2 * WAYS) as u32 {
            let h = (u64::from(i) * 0x1234_5679) << 32; // all primary bucket 0
            ix.insert(h, i).unwrap();
            model.insert(i, h);
            check(&ix, &model);
        }
        assert_eq!(ix.insert(7 << 32, 99), Err(NoRoom));
        check(&ix, &model);
    }

    #[test]
    fn loads_to_seven_eighths_at_capacity() {
        // A table at its nominal capacity (with well-mixed hashes) takes
        // every entry: the sizing leaves room for the cuckoo's slack.
        let cap = 100_000;
        let mut ix = Index::new(cap);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..cap as u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ix.insert(x, i).unwrap();
        }
        assert!(ix.memory_bytes() <= cap * 64 / 8 * 2);
    }
}
