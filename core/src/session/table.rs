//! The session table of both families: one slab, two cuckoo indexes, the
//! free list and the timer wheel, generic over the entry ([`Entry`]).
//!
//! [`super::SessionTable`] (IPv4, 64-byte [`super::Session`]) and
//! [`super::ipv6::SessionTable6`] (IPv6, 128-byte
//! [`super::ipv6::Session6`]) are this table instantiated for their entry:
//! what differs is the key, how it hashes and compares, and (IPv4 only) the
//! reply-port counts a FULLNAT bind consults ([`Entry::Aux`]). Everything
//! is monomorphised, so the IPv4 table compiles to what it was before it
//! became generic (`benches/examples/ir_per_packet` counts the same
//! instructions per packet, docs/benchmarks.md).
//!
//! The invariants are [`super`]'s: all memory allocated in [`Table::new`];
//! every live entry in each index once (the reply index skipped for
//! [`Flags::NO_OUT`]) and in one wheel slot; intrusive `u32` links
//! ([`Links`]); bounded [`Table::expire`].

use super::index::Index;
use super::{ms_to_tick, Flags, Full, Prefetch, NIL, TICK_SHIFT, WHEEL_SLOTS};
use crate::persist;

/// An entry's links and deadline, owned by the [`Table`] (16 bytes, the
/// same fields in both entry types).
///
/// A free slot is in no wheel list, so its `wheel_next` links the free
/// list (the next free slot, or [`NIL`]): the free list needs no field of
/// its own (its four bytes hold [`super::Session`]'s checksum changes).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Links {
    /// Deadline, in ticks.
    pub(super) expires: u32,
    /// The tick of the wheel slot this entry is linked in.
    pub(super) wheel_tick: u32,
    /// The next entry in its wheel list; while the slot is free, the next
    /// free slot.
    pub(super) wheel_next: u32,
    pub(super) wheel_prev: u32,
}

impl Links {
    /// Unlinked, no deadline.
    pub(super) const NONE: Links = Links { expires: 0, wheel_tick: 0, wheel_next: NIL, wheel_prev: NIL };
}

/// Lists per wheel slot ([`Table::expire_with`] walks them side by side,
/// so their cache misses overlap): 4 x 16384 heads, 256 KiB per table.
pub const WHEEL_LISTS: usize = 4;

/// The index in a table's `wheel` of the head of entry `idx`'s list in
/// the slot of `tick`.
#[inline(always)]
fn head_of(idx: u32, tick: u32) -> usize {
    (tick as usize & (WHEEL_SLOTS - 1)) * WHEEL_LISTS + (idx as usize & (WHEEL_LISTS - 1))
}

/// What one [`Table::expire_with`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Sessions it looked at (at most the budget).
    pub examined: usize,
    /// Sessions it freed.
    pub freed: usize,
}

impl std::ops::AddAssign for Expired {
    fn add_assign(&mut self, o: Expired) {
        self.examined += o.examined;
        self.freed += o.freed;
    }
}

/// What a [`Table`] needs of its entry type: the key, its hash and
/// compares, the links, and the state a free slot and the template rule
/// ([`persist::Template`]) read.
pub trait Entry: Copy + persist::Template {
    /// The 5-tuple the indexes are keyed by.
    type Key;
    /// Per-table state kept beside the slots and updated with each reply
    /// key (IPv4: the reply-port counts; IPv6: none).
    type Aux;
    /// A free slot (protocol 0).
    fn vacant() -> Self;
    /// The table's two hash keys from the configured seed.
    fn seed(seed: u64) -> (u64, u64);
    /// The index hash of `k` under `seed`: its low bits pick the bucket,
    /// its high 16 bits are the signature kept in the bucket.
    fn hash(seed: (u64, u64), k: &Self::Key) -> u64;
    /// Key of the client's packets.
    fn in_key(&self) -> Self::Key;
    /// Key of the real server's replies.
    fn out_key(&self) -> Self::Key;
    /// `k`'s IP protocol number (read once per lookup, not per candidate).
    fn key_proto(k: &Self::Key) -> u8;
    /// Whether `k` (protocol `proto`) is this entry's client-side key.
    fn is_in(&self, k: &Self::Key, proto: u8) -> bool;
    /// Whether `k` (protocol `proto`) is this entry's reply key.
    fn is_out(&self, k: &Self::Key, proto: u8) -> bool;
    fn links(&self) -> &Links;
    fn links_mut(&mut self) -> &mut Links;
    /// IP protocol number; 0 marks a free slot.
    fn proto(&self) -> u8;
    fn set_free(&mut self);
    fn flags(&self) -> Flags;
    /// The controlling persistence template's slot, or [`NIL`].
    fn control(&self) -> u32;
    fn set_control(&mut self, t: u32);
    fn new_aux(capacity: usize) -> Self::Aux;
    /// Bytes the per-table state of a table of `capacity` entries takes.
    fn aux_bytes(capacity: usize) -> usize;
    /// `e`'s reply key entered the reply index.
    fn reply_key_added(aux: &mut Self::Aux, e: &Self);
    /// `e`'s reply key left the reply index.
    fn reply_key_removed(aux: &mut Self::Aux, e: &Self);
}

/// Sessions of one worker, indexed in both directions, with a timer wheel.
pub struct Table<E: Entry> {
    slots: Box<[E]>,
    free_head: u32,
    live: usize,
    in_index: Index,
    out_index: Index,
    pub(super) aux: E::Aux,
    seed: (u64, u64),
    /// [`WHEEL_LISTS`] list heads per slot: entry `i` is in list
    /// `i % WHEEL_LISTS` of its slot.
    wheel: Box<[u32]>,
    /// The next tick whose slot has not been processed yet.
    cur_tick: u32,
    /// The clock of the latest `expire` call, in ticks.
    now_tick: u32,
    /// Lines needed soon, hinted ([`Prefetch`]): the free list's head, the
    /// expiry walk's next sessions.
    pub(super) prefetch: Prefetch,
}

impl<E: Entry> Table<E> {
    /// Allocates a table for `capacity` sessions. `seed` keys the index hash.
    pub fn new(capacity: usize, seed: u64, now_ms: u64) -> Table<E> {
        assert!(capacity > 0 && capacity < NIL as usize, "session capacity out of range");
        let mut slots = vec![E::vacant(); capacity].into_boxed_slice();
        for (i, s) in slots.iter_mut().enumerate() {
            s.links_mut().wheel_next = if i + 1 < capacity { i as u32 + 1 } else { NIL };
        }
        Table {
            slots,
            free_head: 0,
            live: 0,
            in_index: Index::new(capacity),
            out_index: Index::new(capacity),
            aux: E::new_aux(capacity),
            seed: E::seed(seed),
            wheel: vec![NIL; WHEEL_SLOTS * WHEEL_LISTS].into_boxed_slice(),
            cur_tick: ms_to_tick(now_ms),
            now_tick: ms_to_tick(now_ms),
            prefetch: Prefetch::NONE,
        }
    }

    /// Sets the prefetch hint the table uses ([`Prefetch`]).
    pub fn set_prefetch(&mut self, p: Prefetch) {
        self.prefetch = p;
    }

    pub fn len(&self) -> usize {
        self.live
    }
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
    /// Bytes this table allocated, for memory accounting.
    pub fn memory_bytes(&self) -> usize {
        Self::bytes_for(self.capacity())
    }

    /// Bytes a table of `capacity` entries allocates (its slab, both
    /// indexes, per-table state and timer wheel): what
    /// [`Table::memory_bytes`] reports once it is built, for sizing checks
    /// before building it.
    pub fn bytes_for(capacity: usize) -> usize {
        capacity * std::mem::size_of::<E>()
            + 2 * Index::bytes_for(capacity)
            + E::aux_bytes(capacity)
            + WHEEL_SLOTS * WHEEL_LISTS * std::mem::size_of::<u32>()
    }

    /// The index hash of `k`: its low bits pick the bucket, its high 16
    /// bits are the signature kept in the bucket.
    #[inline(always)]
    pub fn hash(&self, k: &E::Key) -> u64 {
        E::hash(self.seed, k)
    }

    /// The session whose client-side key is `k`.
    #[inline(always)]
    pub fn lookup_in(&self, k: &E::Key) -> Option<u32> {
        self.find_in(k, self.hash(k))
    }

    /// The session whose real-server-side key is `k`.
    #[inline(always)]
    pub fn lookup_out(&self, k: &E::Key) -> Option<u32> {
        self.find_out(k, self.hash(k))
    }

    /// [`Table::lookup_in`] with `h == self.hash(k)` computed earlier.
    #[inline(always)]
    pub fn find_in(&self, k: &E::Key, h: u64) -> Option<u32> {
        let proto = E::key_proto(k);
        self.in_index.find(h, |i| self.slots[i as usize].is_in(k, proto))
    }

    /// [`Table::lookup_out`] with `h == self.hash(k)` computed earlier.
    #[inline(always)]
    pub fn find_out(&self, k: &E::Key, h: u64) -> Option<u32> {
        let proto = E::key_proto(k);
        self.out_index.find(h, |i| self.slots[i as usize].is_out(k, proto))
    }

    /// [`Table::find_in`], trying session `hint` first (a stage's
    /// [`Table::candidate`], or `NIL`): taken when it is live and holds
    /// `k` as its client-side key, which only the session the index would
    /// find does (keys are unique; a free slot's protocol is 0, which no
    /// key has), so a hint gone stale is only a miss.
    #[inline(always)]
    pub fn find_in_hinted(&self, k: &E::Key, h: u64, hint: u32) -> Option<u32> {
        match self.slots.get(hint as usize) {
            Some(s) if s.is_in(k, E::key_proto(k)) => Some(hint),
            _ => self.find_in(k, h),
        }
    }

    /// [`Table::find_out`] as [`Table::find_in_hinted`] (a session without
    /// a reply key, `NO_OUT`, is never the reply index's).
    #[inline(always)]
    pub fn find_out_hinted(&self, k: &E::Key, h: u64, hint: u32) -> Option<u32> {
        match self.slots.get(hint as usize) {
            Some(s) if s.is_out(k, E::key_proto(k)) && !s.flags().contains(Flags::NO_OUT) => Some(hint),
            _ => self.find_out(k, h),
        }
    }

    /// Whether a session may have the reply key of hash `h`, from the reply
    /// index's signatures alone (no session line is read, where a
    /// [`Table::find_out`] that meets a matching signature reads one, a
    /// random cache miss): `false` is exact, a `true` is a session with
    /// that key or, 1 in 2^16 per way, one whose hash shares its
    /// signature. For a FULLNAT bind, which may pass over a free port but
    /// never hand out a taken one.
    #[inline(always)]
    pub fn out_hash_may_be_live(&self, h: u64) -> bool {
        self.out_index.has_sig(h)
    }

    /// The bucket line a lookup of hash `h` reads first, for the caller to
    /// prefetch (the core has no unsafe code, so it cannot prefetch itself).
    #[inline(always)]
    pub fn bucket_line(&self, h: u64, dir_out: bool) -> &impl Sized {
        if dir_out {
            self.out_index.bucket_of(h)
        } else {
            self.in_index.bucket_of(h)
        }
    }

    /// Prefetches (through the table's [`Prefetch`]) the alternative
    /// bucket line an insert of hash `h` into the client-side index
    /// (`dir_out` false) or the reply index writes when `h`'s primary
    /// bucket is full, which at a high load is several percent of inserts;
    /// nothing when the primary's last way is free. Reads the primary
    /// bucket line: for a caller that has it in cache (the lookup that
    /// missed read it, or the bind's prefetch fetched it), far enough
    /// ahead of the insert for the alternative line to arrive.
    #[inline(always)]
    pub fn prefetch_insert_alt(&self, h: u64, dir_out: bool) {
        let ix = if dir_out { &self.out_index } else { &self.in_index };
        if let Some(b) = ix.alt_if_crowded(h) {
            self.prefetch.line(b);
        }
    }

    /// Prefetches (through the table's [`Prefetch`]) the reply-index
    /// bucket line of hash `h`, which an insert of that hash writes.
    #[inline(always)]
    pub fn prefetch_out_bucket(&self, h: u64) {
        self.prefetch.line(self.out_index.bucket_of(h));
    }

    /// Starts reading the reply-index bucket line of hash `h` (one load,
    /// kept by `black_box`), without the lookup's compares: the line is
    /// in cache, or on its way, when an insert of that hash writes it.
    #[inline(always)]
    pub fn load_out_bucket(&self, h: u64) {
        std::hint::black_box(self.out_index.load_bucket(h));
    }

    /// The session line a lookup of hash `h` will most likely read, once
    /// its bucket line is in cache, for the caller to prefetch.
    #[inline(always)]
    pub fn session_line(&self, h: u64, dir_out: bool) -> Option<&E> {
        self.candidate(h, dir_out).map(|i| &self.slots[i as usize])
    }

    /// The session of the client-side index's (`dir_out` false) or the
    /// reply index's primary bucket of hash `h` whose signature is `h`'s,
    /// if any: what a lookup of `h` most likely finds, and the line
    /// [`Table::session_line`] names.
    #[inline(always)]
    pub fn candidate(&self, h: u64, dir_out: bool) -> Option<u32> {
        if dir_out {
            self.out_index.candidate(h)
        } else {
            self.in_index.candidate(h)
        }
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &E {
        &self.slots[idx as usize]
    }
    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut E {
        &mut self.slots[idx as usize]
    }

    /// Inserts `s`, expiring `timeout_ms` after `now_ms`. The caller has
    /// checked that neither key is present.
    pub fn insert(&mut self, s: E, now_ms: u64, timeout_ms: u64) -> Result<u32, Full> {
        self.insert_hashed(s, self.hash(&s.in_key()), now_ms, timeout_ms)
    }

    /// [`Table::insert`] with `hin == self.hash(&s.in_key())`, which the
    /// lookup that found no session computed: a new flow hashes its key
    /// once.
    #[inline]
    pub fn insert_hashed(&mut self, s: E, hin: u64, now_ms: u64, timeout_ms: u64) -> Result<u32, Full> {
        self.insert_with_hashes(s, hin, None, now_ms, timeout_ms)
    }

    /// [`Table::insert_hashed`] with, when known, `hout ==
    /// self.hash(&s.out_key())`, which a FULLNAT bind computed when it
    /// checked that the reply key is free: a new flow hashes each key once.
    #[inline]
    pub fn insert_with_hashes(
        &mut self,
        s: E,
        hin: u64,
        hout: Option<u64>,
        now_ms: u64,
        timeout_ms: u64,
    ) -> Result<u32, Full> {
        debug_assert_eq!(hin, self.hash(&s.in_key()), "the hash of the session's client-side key");
        debug_assert!(hout.is_none_or(|h| h == self.hash(&s.out_key())), "the hash of the reply key");
        if self.free_head == NIL {
            return Err(Full);
        }
        let idx = self.free_head;
        self.in_index.insert(hin, idx).map_err(|_| Full)?;
        if !s.flags().contains(Flags::NO_OUT) {
            let hout = hout.unwrap_or_else(|| self.hash(&s.out_key()));
            if self.out_index.insert(hout, idx).is_err() {
                self.in_index.remove(hin, idx);
                return Err(Full);
            }
            E::reply_key_added(&mut self.aux, &s);
        }
        // A free slot's `wheel_next` is the free list's link (`Links`).
        self.free_head = self.slots[idx as usize].links().wheel_next;
        // The next insert writes the new head's line: after expiries the
        // free list runs through the slab at random, so start its miss now
        // rather than on the next new flow's path.
        if let Some(next) = self.slots.get(self.free_head as usize) {
            self.prefetch.line(next);
        }
        self.slots[idx as usize] = s;
        self.live += 1;
        let deadline = ms_to_tick(now_ms + timeout_ms);
        self.slots[idx as usize].links_mut().expires = deadline;
        self.wheel_link(idx, deadline);
        Ok(idx)
    }

    /// Pushes the deadline of `idx` to `timeout_ms` after `now_ms`. Inline
    /// in the established paths of both families: the deadline's store,
    /// and [`Table::relink`] only when it moved earlier than its slot.
    #[inline(always)]
    pub fn touch(&mut self, idx: u32, now_ms: u64, timeout_ms: u64) {
        let deadline = ms_to_tick(now_ms + timeout_ms);
        let l = self.slots[idx as usize].links_mut();
        l.expires = deadline;
        if deadline < l.wheel_tick {
            self.relink(idx, deadline);
        }
    }

    /// Moves `idx` to the wheel slot of `deadline` (a shorter timeout:
    /// a state change).
    #[inline(never)]
    fn relink(&mut self, idx: u32, deadline: u32) {
        self.wheel_unlink(idx);
        self.wheel_link(idx, deadline);
    }

    /// Removes `idx` from both indexes and the wheel and frees its slot; a
    /// connection no longer counts for its template ([`persist::release`]).
    pub fn remove(&mut self, idx: u32) {
        let s = self.slots[idx as usize];
        let found = self.in_index.remove(self.hash(&s.in_key()), idx);
        debug_assert!(found, "session {idx} missing from the client-side index");
        if !s.flags().contains(Flags::NO_OUT) {
            let found = self.out_index.remove(self.hash(&s.out_key()), idx);
            debug_assert!(found, "session {idx} missing from the reply index");
            E::reply_key_removed(&mut self.aux, &s);
        }
        self.wheel_unlink(idx);
        if s.control() != NIL {
            // The connection ended at its deadline, or now if it was removed
            // early. (Not the wheel cursor, which lags the clock while a long
            // pause is caught up.)
            let ended = s.links().expires.min(self.now_tick);
            persist::release(&mut self.slots[s.control() as usize], ended);
        }
        let slot = &mut self.slots[idx as usize];
        // Protocol 0 marks a free slot (see `slot`).
        slot.set_free();
        // Unlinked from the wheel above: `wheel_next` now links the free list.
        slot.links_mut().wheel_next = self.free_head;
        self.free_head = idx;
        self.live -= 1;
    }

    #[inline]
    fn wheel_link(&mut self, idx: u32, deadline: u32) {
        // Never schedule into the past or beyond one lap of the wheel.
        let tick = deadline.clamp(self.cur_tick, self.cur_tick + WHEEL_SLOTS as u32 - 1);
        let slot = self.wheel_head(idx, deadline);
        let head = self.wheel[slot];
        let l = self.slots[idx as usize].links_mut();
        l.wheel_tick = tick;
        l.wheel_prev = NIL;
        l.wheel_next = head;
        if head != NIL {
            self.slots[head as usize].links_mut().wheel_prev = idx;
        }
        self.wheel[slot] = idx;
    }

    fn wheel_unlink(&mut self, idx: u32) {
        let Links { wheel_prev: prev, wheel_next: next, wheel_tick: tick, .. } =
            *self.slots[idx as usize].links();
        if prev == NIL {
            self.wheel[head_of(idx, tick)] = next;
        } else {
            self.slots[prev as usize].links_mut().wheel_next = next;
        }
        if next != NIL {
            self.slots[next as usize].links_mut().wheel_prev = prev;
        }
    }

    /// Expires sessions whose deadline is at or before `now_ms`. For each,
    /// `on_expire` decides: `None` frees it, `Some(ms)` keeps it for `ms`
    /// more (a persistence template that still controls connections).
    /// Examines at most `budget` sessions, so one call's cost is bounded;
    /// returns the number freed ([`Table::expire_with`] says more).
    pub fn expire(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut on_expire: impl FnMut(&E) -> Option<u64>,
    ) -> usize {
        self.expire_with(now_ms, budget, |_, e| on_expire(e)).freed
    }

    /// Whether [`Table::expire_with`] at `now_ms` would do anything. It
    /// would not when the wheel has been walked past `now_ms`'s tick and
    /// the table's clock already reads that tick (most polls: a tick is
    /// 64 ms): then it would store the same clock and walk no slot. Two
    /// loads and compares, for the poll loop to skip the call.
    #[inline]
    pub fn expiry_due(&self, now_ms: u64) -> bool {
        let now = ms_to_tick(now_ms);
        now >= self.cur_tick || now != self.now_tick
    }

    /// [`Table::expire`], saying how many sessions it examined; prefetches
    /// with the table's hint ([`Table::set_prefetch`]). `on_expire` is
    /// given the session's index too.
    ///
    /// A wheel slot's lists are intrusive: each entry's line must arrive
    /// before the next one is known, and at a million sessions each is a
    /// random cache miss (hundreds of cycles). So a slot holds
    /// [`WHEEL_LISTS`] lists, walked in turn, and each walk is a two-step
    /// pipeline: when entry `i`'s line is read, the next entry's line is
    /// prefetched, and so are the lines that handling `i` will write (its
    /// two index buckets when it is due, the head of the slot it moves to
    /// when it is not); the entry before `i` in its list, whose lines were
    /// prefetched a round earlier, is handled then. The misses of a dozen
    /// lines are in flight together instead of one after the other.
    /// Handling an entry never unlinks another one (a removed connection
    /// only changes its template's count and deadline, read when the
    /// template is handled), so the entries read ahead stay valid.
    pub fn expire_with(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut on_expire: impl FnMut(u32, &E) -> Option<u64>,
    ) -> Expired {
        let pf = self.prefetch;
        let now = ms_to_tick(now_ms);
        self.now_tick = now;
        // After a long pause, one lap visits every slot: skip the rest.
        if now.saturating_sub(self.cur_tick) >= WHEEL_SLOTS as u32 {
            self.cur_tick = now - WHEEL_SLOTS as u32 + 1;
        }
        let mut done = Expired::default();
        while self.cur_tick <= now {
            let first = (self.cur_tick as usize & (WHEEL_SLOTS - 1)) * WHEEL_LISTS;
            // Per list: the next entry to read, and the one read and
            // prefetched for but not handled yet.
            let mut next = [NIL; WHEEL_LISTS];
            next.copy_from_slice(&self.wheel[first..first + WHEEL_LISTS]);
            let mut pending = [NIL; WHEEL_LISTS];
            let mut walking = next.iter().any(|&i| i != NIL);
            while walking && done.examined < budget {
                walking = false;
                for list in 0..WHEEL_LISTS {
                    let i = next[list];
                    if i == NIL || done.examined == budget {
                        continue;
                    }
                    done.examined += 1;
                    let after = self.slots[i as usize].links().wheel_next;
                    if after != NIL {
                        pf.line(&self.slots[after as usize]);
                        walking = true;
                    }
                    self.prefetch_handling(i, now, pf);
                    if pending[list] != NIL {
                        self.expire_one(pending[list], now, now_ms, &mut on_expire, &mut done);
                    }
                    (pending[list], next[list]) = (i, after);
                }
            }
            for i in pending.into_iter().filter(|&i| i != NIL) {
                self.expire_one(i, now, now_ms, &mut on_expire, &mut done);
            }
            if next.iter().any(|&i| i != NIL) {
                // Out of budget in this slot: the rest waits for the next call.
                return done;
            }
            self.cur_tick += 1;
        }
        done
    }

    /// Prefetches the lines that [`Table::expire_one`] of `i` will write.
    #[inline(always)]
    fn prefetch_handling(&self, i: u32, now: u32, pf: Prefetch) {
        let s = &self.slots[i as usize];
        let l = s.links();
        if l.wheel_tick > self.cur_tick {
            return;
        }
        if l.expires <= now {
            pf.line(self.in_index.bucket_of(self.hash(&s.in_key())));
            if !s.flags().contains(Flags::NO_OUT) {
                pf.line(self.out_index.bucket_of(self.hash(&s.out_key())));
            }
        } else {
            let head = self.wheel[self.wheel_head(i, l.expires)];
            if head != NIL {
                pf.line(&self.slots[head as usize]);
            }
        }
    }

    /// Handles `i`, linked in the slot of `cur_tick`: frees it or re-arms
    /// it if its deadline has come, moves it to its deadline's slot if not.
    #[inline(always)]
    fn expire_one(
        &mut self,
        i: u32,
        now: u32,
        now_ms: u64,
        on_expire: &mut impl FnMut(u32, &E) -> Option<u64>,
        done: &mut Expired,
    ) {
        let s = self.slots[i as usize];
        let l = *s.links();
        if l.wheel_tick > self.cur_tick {
            return;
        }
        if l.expires <= now {
            match on_expire(i, &s) {
                None => {
                    self.remove(i);
                    done.freed += 1;
                }
                Some(ms) => {
                    let deadline = ms_to_tick(now_ms + ms.max(1 << TICK_SHIFT));
                    self.slots[i as usize].links_mut().expires = deadline;
                    self.wheel_unlink(i);
                    self.wheel_link(i, deadline);
                }
            }
        } else {
            // expires > now >= cur_tick, so this lands in another slot.
            self.wheel_unlink(i);
            self.wheel_link(i, l.expires);
        }
    }

    /// The list head (in `wheel`) entry `idx` is linked behind when its
    /// deadline is `deadline`: never in the past or beyond one lap.
    #[inline(always)]
    fn wheel_head(&self, idx: u32, deadline: u32) -> usize {
        head_of(idx, deadline.clamp(self.cur_tick, self.cur_tick + WHEEL_SLOTS as u32 - 1))
    }

    /// Sessions linked in the wheel slots due at `now_ms` that no
    /// [`Table::expire`] has examined yet: what the wheel is behind by
    /// (walks those slots' lists: for tests and measurements).
    pub fn expiry_backlog(&self, now_ms: u64) -> usize {
        let now = ms_to_tick(now_ms);
        let first = self.cur_tick.max(now.saturating_sub(WHEEL_SLOTS as u32 - 1));
        let mut n = 0;
        for tick in first..=now {
            let slot = (tick as usize & (WHEEL_SLOTS - 1)) * WHEEL_LISTS;
            for &head in &self.wheel[slot..slot + WHEEL_LISTS] {
                let mut i = head;
                while i != NIL {
                    n += 1;
                    i = self.slots[i as usize].links().wheel_next;
                }
            }
        }
        n
    }

    /// The live session in slot `i`, if any (connection listing walks the
    /// slots in chunks; a free slot has protocol 0, which no session has).
    #[inline]
    pub fn slot(&self, i: usize) -> Option<&E> {
        self.slots.get(i).filter(|s| s.proto() != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ipv6::Session6;
    use crate::session::Session;

    /// What the allocations of a built table add up to.
    fn held<E: Entry>(t: &Table<E>, aux: usize) -> usize {
        std::mem::size_of_val(&*t.slots)
            + std::mem::size_of_val(&*t.in_index.buckets)
            + std::mem::size_of_val(&*t.out_index.buckets)
            + aux
            + std::mem::size_of_val(&*t.wheel)
    }

    /// `bytes_for` (gatewayd's memory check before it builds a table) is
    /// what a table of that capacity allocates, for both entries, around
    /// powers of two and the reply-port counts' bounds.
    #[test]
    fn bytes_for_is_what_a_table_allocates() {
        for n in [1, 2, 7, 8, 1000, 1 << 12, (1 << 12) + 1, 100_000, 1 << 21, (1 << 21) + 3] {
            let t = Table::<Session>::new(n, 1, 0);
            assert_eq!(Table::<Session>::bytes_for(n), held(&t, t.aux.cells.len()), "IPv4, {n}");
            let t = Table::<Session6>::new(n, 1, 0);
            assert_eq!(Table::<Session6>::bytes_for(n), held(&t, 0), "IPv6, {n}");
        }
    }
}
