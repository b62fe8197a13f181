//! One direction's index of the session table: a bucketised cuckoo hash
//! (the shape of DPDK's `rte_hash` and VPP's bihash).
//!
//! Invariants:
//! - A bucket is one 64-byte cache line: [`WAYS`] 16-bit signatures (as
//!   `rte_hash`'s short signatures), [`WAYS`] session indexes, which ways
//!   hold an entry away from its primary bucket, and the bucket's spill
//!   count. A way is empty when its index is [`NIL`], and then its
//!   signature is 0, which no entry's is ([`sig_of`]): a lookup compares
//!   the signatures alone, one compare per way, and a bucket's empty ways
//!   never match (a lookup that finds nothing, every new flow's, compares
//!   ten signatures and reads no index).
//! - An entry with hash `h` lives in its primary bucket `h & mask` or in its
//!   alternative `primary ^ alt(sig)`, where `sig` is the hash's top 16
//!   bits. XOR makes `alt` an involution, so a displaced entry finds its
//!   other bucket from the bucket it is in and its signature alone, without
//!   reading its session.
//! - `spill` of bucket `b` counts the entries whose primary bucket is `b`
//!   and which sit in their alternative (saturating: at `u16::MAX` it stays
//!   there, which only costs a second read). So a lookup reads one bucket
//!   line, and the alternative only when the primary has spilled (at the
//!   table's full load, about one bucket in ten): a lookup that finds
//!   nothing (every new flow, every local port a FULLNAT bind tries) is one
//!   line, not two. Then only the session lines whose signature matches are
//!   read (a false match is 1 in 2^16 per way): never a chain walk.
//! - Inserts displace entries along a path of at most [`MAX_KICKS`] moves;
//!   a path that does not end in a free way is undone, spill counts
//!   included, so a failed insert leaves the index as it was (the caller
//!   counts a full table).

use super::NIL;

/// Entries per bucket (one cache line of signatures and indexes).
pub const WAYS: usize = 10;
/// Longest displacement path an insert tries.
const MAX_KICKS: usize = 64;
/// Target load: at most 7 entries per 10-way bucket on average.
const LOAD_NUM: usize = 7;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Bucket {
    sig: [u16; WAYS],
    idx: [u32; WAYS],
    /// Bit `w`: the entry in way `w` is in its alternative bucket.
    away: u16,
    /// Entries whose primary bucket is this one, in their alternative.
    spill: u16,
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

const EMPTY: Bucket = Bucket { sig: [0; WAYS], idx: [NIL; WAYS], away: 0, spill: 0 };

impl Bucket {
    #[inline(always)]
    fn free_way(&self) -> Option<usize> {
        self.idx.iter().position(|&i| i == NIL)
    }

    #[inline(always)]
    fn is_away(&self, w: usize) -> bool {
        self.away & 1 << w != 0
    }

    #[inline(always)]
    fn set_away(&mut self, w: usize, away: bool) {
        self.away = self.away & !(1 << w) | u16::from(away) << w;
    }

    /// Counts one more spilled entry (sticky at the maximum).
    #[inline(always)]
    fn spill_inc(&mut self) {
        self.spill = self.spill.saturating_add(1);
    }

    /// Counts one spilled entry less (a saturated count stays).
    #[inline(always)]
    fn spill_dec(&mut self) {
        debug_assert!(self.spill > 0, "spill count below zero");
        if self.spill != u16::MAX {
            self.spill -= 1;
        }
    }

    /// The way holding an entry of signature `sig` (never 0) for which
    /// `is` holds.
    #[inline(always)]
    fn find(&self, sig: u16, is: &impl Fn(u32) -> bool) -> Option<u32> {
        debug_assert_ne!(sig, 0, "0 is an empty way's signature");
        (0..WAYS).map(|w| (self.sig[w], self.idx[w])).find(|&(s, i)| s == sig && is(i)).map(|(_, i)| i)
    }
}

/// The index could not place an entry (every displacement path was full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom;

/// A cuckoo index from a 64-bit hash to session indexes.
pub(super) struct Index {
    pub(super) buckets: Box<[Bucket]>,
    mask: u32,
}

/// The signature of hash `h`: its top 16 bits, 0 taken as 1 (0 marks an
/// empty way, so a way's signature alone says it may hold `h`'s entry).
#[inline(always)]
fn sig_of(h: u64) -> u16 {
    let s = (h >> 48) as u16;
    s | u16::from(s == 0)
}

impl Index {
    /// An index sized for `capacity` entries at a load of at most 7/10.
    pub fn new(capacity: usize) -> Index {
        let n = Index::buckets_for(capacity);
        Index { buckets: vec![EMPTY; n].into_boxed_slice(), mask: n as u32 - 1 }
    }

    /// Buckets of an index for `capacity` entries.
    fn buckets_for(capacity: usize) -> usize {
        capacity.div_ceil(LOAD_NUM).max(2).next_power_of_two()
    }

    /// Bytes an index for `capacity` entries allocates.
    pub fn bytes_for(capacity: usize) -> usize {
        Index::buckets_for(capacity) * std::mem::size_of::<Bucket>()
    }

    #[inline(always)]
    fn primary(&self, h: u64) -> usize {
        (h as u32 & self.mask) as usize
    }

    /// The other bucket of an entry with signature `sig` in bucket `b`
    /// (never `b` itself: the mixed signature's low bit is forced to 1).
    #[inline(always)]
    fn alt(&self, b: usize, sig: u16) -> usize {
        let m = (u32::from(sig).wrapping_mul(0x9e37_79b1).rotate_left(13) | 1) & self.mask;
        b ^ m as usize
    }

    /// The primary bucket line of hash `h`, for prefetching.
    #[inline(always)]
    pub fn bucket_of(&self, h: u64) -> &Bucket {
        &self.buckets[self.primary(h)]
    }

    /// Reads the primary bucket line of hash `h` (its spill count): the
    /// load starts the line's cache miss for a caller that wants the line
    /// in cache soon (an insert) but has no ways to compare yet.
    #[inline(always)]
    pub fn load_bucket(&self, h: u64) -> u16 {
        self.buckets[self.primary(h)].spill
    }

    /// The first entry of hash `h` in its primary bucket whose signature
    /// matches (a likely hit, for prefetching its session line).
    #[inline(always)]
    pub fn candidate(&self, h: u64) -> Option<u32> {
        let sig = sig_of(h);
        let b = &self.buckets[self.primary(h)];
        // (The index check is implied, since an empty way's signature is 0;
        // with it the compiler loads the index in each way's own branch
        // instead of one shared load that every way passes a number to.)
        (0..WAYS).find(|&w| b.sig[w] == sig && b.idx[w] != NIL).map(|w| b.idx[w])
    }

    /// Whether an entry of hash `h` may be in the index, from the
    /// signatures alone: no session line is read. `false` is exact (no
    /// entry has hash `h`); `true` may be an entry of another hash with the
    /// same signature (1 in 2^16 per way). Reads the alternative bucket only
    /// when the primary has spilled.
    #[inline(always)]
    pub fn has_sig(&self, h: u64) -> bool {
        let sig = sig_of(h);
        let b1 = self.primary(h);
        let b = &self.buckets[b1];
        b.sig.contains(&sig) || (b.spill != 0 && self.buckets[self.alt(b1, sig)].sig.contains(&sig))
    }

    /// The entry of hash `h` for which `is` holds. Reads the alternative
    /// bucket only when the primary has spilled.
    #[inline(always)]
    pub fn find(&self, h: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        let sig = sig_of(h);
        let b1 = self.primary(h);
        let b = &self.buckets[b1];
        if let Some(i) = b.find(sig, &is) {
            return Some(i);
        }
        if b.spill == 0 {
            return None;
        }
        self.buckets[self.alt(b1, sig)].find(sig, &is)
    }

    /// The alternative bucket of hash `h` when its primary may be full
    /// (its last way is taken: a bucket whose last way is free has room),
    /// for prefetching the line an insert of `h` would then write. Reads
    /// the primary bucket's line, which should be in cache.
    #[inline(always)]
    pub fn alt_if_crowded(&self, h: u64) -> Option<&Bucket> {
        let b1 = self.primary(h);
        (self.buckets[b1].idx[WAYS - 1] != NIL).then(|| &self.buckets[self.alt(b1, sig_of(h))])
    }

    /// Adds entry `idx` with hash `h` (the caller knows it is absent):
    /// inline when its primary bucket has room (most inserts), else
    /// [`Index::insert_away`].
    #[inline(always)]
    pub fn insert(&mut self, h: u64, idx: u32) -> Result<(), NoRoom> {
        let b1 = self.primary(h);
        if let Some(w) = self.buckets[b1].free_way() {
            self.put(b1, w, (sig_of(h), idx, false));
            return Ok(());
        }
        self.insert_away(h, idx)
    }

    /// [`Index::insert`] when the primary bucket is full: the alternative
    /// bucket, else a displacement path.
    #[inline(never)]
    fn insert_away(&mut self, h: u64, idx: u32) -> Result<(), NoRoom> {
        let sig = sig_of(h);
        let b1 = self.primary(h);
        let b2 = self.alt(b1, sig);
        if let Some(w) = self.buckets[b2].free_way() {
            self.put(b2, w, (sig, idx, true));
            self.buckets[b1].spill_inc();
            return Ok(());
        }
        // Displace: put the new entry in way `w` of `b`, move that way's
        // old entry to its other bucket, and so on until one lands in a
        // free way. The path is kept so that a failure can be undone.
        let mut path = [(0u32, 0u8); MAX_KICKS];
        let (mut b, mut e) = (b1, (sig, idx, false));
        for (k, step) in path.iter_mut().enumerate() {
            // Vary the victim so that two full buckets do not trade one
            // entry back and forth.
            let w = (e.0 as usize ^ k) % WAYS;
            *step = (b as u32, w as u8);
            let (next, out) = self.evict(b, w, e);
            (b, e) = (next, out);
            if let Some(free) = self.buckets[b].free_way() {
                self.put(b, free, e);
                return Ok(());
            }
        }
        // Undo: walk the path back, each way taking back what it held.
        for &(pb, pw) in path.iter().rev() {
            e = self.unevict(pb as usize, pw as usize, b, e);
            b = pb as usize;
        }
        debug_assert_eq!((e.0, e.1), (sig, idx));
        Err(NoRoom)
    }

    /// Puts entry `e` (signature, index, whether `b` is its alternative)
    /// in the free way `w` of bucket `b`.
    #[inline(always)]
    fn put(&mut self, b: usize, w: usize, (sig, idx, away): (u16, u32, bool)) {
        let bucket = &mut self.buckets[b];
        bucket.sig[w] = sig;
        bucket.idx[w] = idx;
        bucket.set_away(w, away);
    }

    /// One displacement step: `e` takes way `w` of bucket `b`; the entry it
    /// pushes out is returned with the bucket it now belongs in (its
    /// other one), its spill count moved accordingly.
    fn evict(&mut self, b: usize, w: usize, e: (u16, u32, bool)) -> (usize, (u16, u32, bool)) {
        let bucket = &self.buckets[b];
        let out = (bucket.sig[w], bucket.idx[w], bucket.is_away(w));
        self.put(b, w, e);
        let other = self.alt(b, out.0);
        if out.2 {
            // Back to its primary, `other`.
            self.buckets[other].spill_dec();
        } else {
            // Away from its primary, `b`.
            self.buckets[b].spill_inc();
        }
        (other, (out.0, out.1, !out.2))
    }

    /// Undoes `evict(b, w, ..)`, which sent the returned entry to `other`:
    /// `e` (that entry) takes its way back and what was put there returns.
    fn unevict(&mut self, b: usize, w: usize, other: usize, e: (u16, u32, bool)) -> (u16, u32, bool) {
        let bucket = &self.buckets[b];
        let put = (bucket.sig[w], bucket.idx[w], bucket.is_away(w));
        let back = (e.0, e.1, !e.2);
        self.put(b, w, back);
        if back.2 {
            self.buckets[other].spill_inc();
        } else {
            self.buckets[b].spill_dec();
        }
        put
    }

    /// Removes entry `idx`, which was inserted with hash `h`.
    pub fn remove(&mut self, h: u64, idx: u32) -> bool {
        let sig = sig_of(h);
        let b1 = self.primary(h);
        for b in [b1, self.alt(b1, sig)] {
            let bucket = &mut self.buckets[b];
            if let Some(w) = (0..WAYS).find(|&w| bucket.idx[w] == idx) {
                let away = bucket.is_away(w);
                bucket.idx[w] = NIL;
                bucket.sig[w] = 0;
                bucket.set_away(w, false);
                if away {
                    self.buckets[b1].spill_dec();
                }
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
        // Each way's away bit says whether it is off its primary bucket,
        // and each bucket's spill count is the number of its entries away.
        // A way's signature is 0 exactly when it is empty.
        for bucket in ix.buckets.iter() {
            for w in 0..WAYS {
                assert_eq!(bucket.idx[w] == NIL, bucket.sig[w] == 0, "way {w}: {:?}", bucket.idx);
            }
        }
        let mut spill = vec![0u16; ix.buckets.len()];
        for (b, bucket) in ix.buckets.iter().enumerate() {
            for w in (0..WAYS).filter(|&w| bucket.idx[w] != NIL) {
                let p = ix.primary(model[&bucket.idx[w]]);
                assert_eq!(bucket.is_away(w), p != b, "away bit of entry {}", bucket.idx[w]);
                spill[p] += u16::from(p != b);
            }
        }
        for (b, bucket) in ix.buckets.iter().enumerate() {
            assert_eq!(bucket.spill, spill[b], "spill count of bucket {b}");
        }
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        // Hashes whose bucket bits take few values crowd a few buckets, so
        // buckets fill and inserts displace.
        let hash = (any::<u16>(), 0u64..4).prop_map(|(sig, b)| (sig as u64) << 48 | b);
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

    /// A hash whose top 16 bits are 0 (signature 1, as a hash whose top
    /// bits are 1) is found, not taken for an empty way, and kept apart
    /// from its twin by the compare.
    #[test]
    fn a_zero_signature_is_not_an_empty_way() {
        let mut ix = Index::new(64);
        let (zero, one) = (5u64, 1 << 48 | 5);
        assert_eq!((sig_of(zero), sig_of(one)), (1, 1));
        ix.insert(zero, 7).unwrap();
        ix.insert(one, 8).unwrap();
        let model = HashMap::from([(7, zero), (8, one)]);
        check(&ix, &model);
        assert_eq!(ix.find(zero, |i| i == 7), Some(7));
        assert_eq!(ix.find(one, |i| i == 8), Some(8));
        assert_eq!(ix.candidate(zero), Some(7), "the first way of that signature");
        assert!(ix.remove(zero, 7));
        assert_eq!(ix.find(zero, |i| i == 7), None);
        assert_eq!(ix.find(one, |i| i == 8), Some(8));
        check(&ix, &HashMap::from([(8, one)]));
    }

    /// A bucket with a free last way names no alternative; a full one names
    /// the bucket the next insert of its hash takes a way in.
    #[test]
    fn a_crowded_bucket_names_the_alternative_an_insert_takes() {
        let mut ix = Index::new(7 * 64);
        let h = |i: u64| (i + 1) << 48 | 5; // all primary bucket 5
        for i in 0..WAYS as u64 {
            assert!(ix.alt_if_crowded(h(i)).is_none(), "room after {i} entries");
            ix.insert(h(i), i as u32).unwrap();
        }
        let next = h(WAYS as u64);
        let alt = ix.alt_if_crowded(next).expect("a full bucket names its alternative") as *const Bucket;
        ix.insert(next, 99).unwrap();
        let b = ix.buckets.iter().position(|b| b.idx.contains(&99)).unwrap();
        assert_eq!(&ix.buckets[b] as *const Bucket, alt);
        assert_ne!(b, 5);
    }

    #[test]
    fn displacement_fills_both_buckets_and_undoes_a_failure() {
        // Two buckets: every entry's two candidates are the two buckets, so
        // 20 entries fit and the 21st is refused with nothing lost.
        let mut ix = Index::new(2);
        assert_eq!(ix.buckets.len(), 2);
        let mut model = HashMap::new();
        for i in 0..(2 * WAYS) as u32 {
            let h = (u64::from(i) + 1) << 48; // all primary bucket 0
            ix.insert(h, i).unwrap();
            model.insert(i, h);
            check(&ix, &model);
        }
        assert_eq!(ix.insert(7 << 48, 99), Err(NoRoom));
        check(&ix, &model);
    }

    #[test]
    fn loads_to_capacity_and_a_miss_reads_one_line() {
        // A table at its nominal capacity, at the worst rounding (exactly
        // 7 entries per bucket), with well-mixed hashes, takes every entry:
        // the sizing leaves room for the cuckoo's slack. Few buckets have
        // spilled, so a lookup that finds nothing mostly reads one line.
        let cap = 7 * 16384;
        let mut ix = Index::new(cap);
        assert_eq!(ix.buckets.len(), 16384);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..cap as u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ix.insert(x, i).unwrap();
        }
        assert!(std::mem::size_of_val(&*ix.buckets) <= cap * 64 / 7 * 2);
        let spilled = ix.buckets.iter().filter(|b| b.spill > 0).count();
        assert!(spilled * 5 < ix.buckets.len(), "{spilled} of {} buckets spilled", ix.buckets.len());
    }
}
