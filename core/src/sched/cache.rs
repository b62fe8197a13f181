//! A bounded, preallocated map from a destination address to a value, for
//! lblc and lblcr.
//!
//! Set-associative: a key hashes (the kernel's `hash_32`) to one bucket of
//! [`CACHE_WAYS`] slots. Lookups and inserts touch that bucket only and never
//! allocate. An entry idle for the expiration time is treated as absent (the
//! kernel deletes such entries in a periodic full scan); when a bucket is
//! full, an insert replaces its least recently used entry (the kernel instead
//! lets its table grow and trims entries idle for 6 minutes once it holds
//! more than 16384).

use super::siphash::GOLDEN_RATIO_32;

/// Slots per bucket.
pub const CACHE_WAYS: usize = 4;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Slot<V> {
    used: bool,
    key: u32,
    /// Last use, ms.
    pub lastuse: u64,
    pub val: V,
}

#[derive(Clone, Debug)]
pub(super) struct Table<V> {
    slots: Box<[Slot<V>]>,
}

impl<V: Copy + Default> Table<V> {
    /// A table of at least `entries` slots (whole buckets, at least one).
    pub fn new(entries: usize) -> Table<V> {
        let buckets = entries.div_ceil(CACHE_WAYS).max(1);
        Table { slots: vec![Slot::default(); buckets * CACHE_WAYS].into_boxed_slice() }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    /// Start and length of the buffer: they never change after `new`.
    #[cfg(test)]
    pub fn buffer(&self) -> (usize, usize) {
        (self.slots.as_ptr() as usize, self.slots.len())
    }

    /// First slot of `key`'s bucket. Multiply-shift range reduction: for a
    /// power-of-two bucket count 2^b it is the kernel's `hash_32(key, b)`.
    fn bucket(&self, key: u32) -> usize {
        let buckets = (self.slots.len() / CACHE_WAYS) as u64;
        ((u64::from(key.wrapping_mul(GOLDEN_RATIO_32)) * buckets) >> 32) as usize * CACHE_WAYS
    }

    /// The slot holding `key`, if it was used less than `expiration` ms ago;
    /// an expired entry is dropped.
    pub fn find(&mut self, key: u32, now: u64, expiration: u64) -> Option<usize> {
        let b = self.bucket(key);
        let i = (b..b + CACHE_WAYS).find(|i| self.slots[*i].used && self.slots[*i].key == key)?;
        let s = &mut self.slots[i];
        if now.saturating_sub(s.lastuse) >= expiration {
            s.used = false;
            return None;
        }
        Some(i)
    }

    /// A slot for `key` (which must be absent), used at `now`, with a default
    /// value: a free slot of the bucket, or else its least recently used one.
    pub fn insert(&mut self, key: u32, now: u64) -> usize {
        let b = self.bucket(key);
        let ways = &self.slots[b..b + CACHE_WAYS];
        let i = b + ways
            .iter()
            .position(|s| !s.used)
            .unwrap_or_else(|| (0..CACHE_WAYS).min_by_key(|w| ways[*w].lastuse).unwrap_or(0));
        self.slots[i] = Slot { used: true, key, lastuse: now, val: V::default() };
        i
    }

    pub fn slot(&mut self, i: usize) -> &mut Slot<V> {
        &mut self.slots[i]
    }

    /// Entries used less than `expiration` ms before `now`.
    pub fn live(&self, now: u64, expiration: u64) -> usize {
        self.slots.iter().filter(|s| s.used && now.saturating_sub(s.lastuse) < expiration).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_buckets() {
        assert_eq!(Table::<u8>::new(0).capacity(), CACHE_WAYS);
        assert_eq!(Table::<u8>::new(5).capacity(), 2 * CACHE_WAYS);
        assert_eq!(Table::<u8>::new(4096).capacity(), 4096);
    }

    #[test]
    fn bucket_is_the_kernel_hash_32_for_powers_of_two() {
        let t = Table::<u8>::new(1024 * CACHE_WAYS);
        for key in [0u32, 1, 0x0a00_0001, 0xc0a8_0101, u32::MAX] {
            let hash_32_10 = key.wrapping_mul(0x61C8_8647) >> (32 - 10);
            assert_eq!(t.bucket(key), hash_32_10 as usize * CACHE_WAYS);
        }
    }

    #[test]
    fn find_insert_expire() {
        let mut t = Table::<u32>::new(8);
        assert_eq!(t.find(7, 0, 100), None);
        let i = t.insert(7, 10);
        t.slot(i).val = 42;
        assert_eq!(t.find(7, 50, 100), Some(i));
        assert_eq!(t.slot(i).val, 42);
        assert_eq!(t.live(109, 100), 1);
        // 100 ms after its last use the entry is gone.
        assert_eq!(t.find(7, 110, 100), None);
        assert_eq!(t.live(110, 100), 0);
    }

    #[test]
    fn full_bucket_evicts_least_recently_used() {
        // One bucket: every key lands in it.
        let mut t = Table::<u32>::new(CACHE_WAYS);
        for k in 0..CACHE_WAYS as u32 {
            t.insert(k, u64::from(k));
        }
        // Touch key 0, so key 1 is now the least recently used.
        let i0 = t.find(0, 100, 1000).unwrap();
        t.slot(i0).lastuse = 100;
        t.insert(99, 200);
        assert!(t.find(1, 200, 1000).is_none());
        for k in [0, 2, 3, 99] {
            assert!(t.find(k, 200, 1000).is_some(), "{k}");
        }
        assert_eq!(t.live(200, 1000), CACHE_WAYS);
    }
}
