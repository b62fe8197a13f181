//! The per-worker session table.
//!
//! Invariants:
//! - All memory is allocated in [`SessionTable::new`]: a slab of `capacity`
//!   sessions, two bucket arrays (one per direction) and the timer wheel.
//!   Nothing on the packet path allocates.
//! - Every live session is in each index exactly once (the reply index
//!   skipped for [`Flags::NO_OUT`]) and in exactly one wheel slot. The
//!   indexes are bucketised cuckoo hashes ([`index`]): a lookup reads one
//!   64-byte bucket line (two at worst, and a lookup that finds nothing
//!   only when the bucket has spilled) and the session line, never a chain.
//!   A session is one 64-byte cache line; with both indexes sized for at
//!   most 7 entries per 10-way bucket, a session costs 64 + 2 * 64 / 7 /
//!   fill bytes, fill being `capacity` over the next power of two times 7:
//!   82 to 101 bytes ([`SessionTable::memory_bytes`]).
//! - `reply_ports` counts, per (class of destination address, destination
//!   port), the live sessions whose reply key has them (a counting filter
//!   of a few MiB, where the reply index is tens): a zero says that no
//!   reply key with that address and port exists, without reading the
//!   reply index's random bucket line, so a FULLNAT bind finds a free local
//!   port in O(1) ([`SessionTable::reply_port_unused`]). A count that
//!   reaches 255 stays there (the port then only looks busy).
//! - Wheel lists and the free list are intrusive (`u32` links inside the
//!   session).
//! - The index hash is keyed with a per-table random seed, so a remote sender
//!   cannot aim many flows at one bucket pair without knowing the seed.
//! - Lookups come in two steps for burst pipelines: [`SessionTable::hash`]
//!   then [`SessionTable::find_in`]/[`SessionTable::find_out`], with
//!   [`SessionTable::prefetch_bucket`] and [`SessionTable::prefetch_session`]
//!   between them so a burst's memory reads overlap.
//! - Expiry is a hashed timer wheel of 64 ms ticks. A packet only stores the
//!   new deadline (`expires`); the session moves to a later slot when its old
//!   slot fires, or at once when the deadline moved earlier. `expire` does a
//!   bounded amount of work per call, so no poll ever scans the table.

mod entry;
mod index;
pub mod ipv6;

use gw_proto::ForwardMode;

use crate::persist;
use crate::tcp_state::State;
use crate::wire::ipv4::Protocol;

pub use self::entry::{Flags, Session};
use self::index::Index;
pub use crate::wire::FlowKey;

/// "No session" in the intrusive links.
pub const NIL: u32 = u32::MAX;
/// log2 of the wheel tick in milliseconds (64 ms).
pub const TICK_SHIFT: u32 = 6;
const WHEEL_SLOTS: usize = 1 << 14; // 16384 ticks * 64 ms = 17.5 minutes
/// The reply-port counts: at least 4 KiB, at most 4 MiB (64 classes of
/// 65536 ports), whatever the capacity.
const MIN_REPLY_PORT_CELLS: usize = 1 << 12;
const MAX_REPLY_PORT_CELLS: usize = 1 << 22;

/// The table is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Sessions of one worker, indexed in both directions, with a timer wheel.
pub struct SessionTable {
    slots: Box<[Session]>,
    free_head: u32,
    live: usize,
    in_index: Index,
    out_index: Index,
    /// Reply keys per (destination address class, destination port), a
    /// power of two of cells.
    reply_ports: Box<[u8]>,
    /// `32 - log2(classes)`: the class is the address's mixed top bits.
    class_shift: u32,
    seed: (u64, u64),
    wheel: Box<[u32]>,
    /// The next tick whose slot has not been processed yet.
    cur_tick: u32,
    /// The clock of the latest `expire` call, in ticks.
    now_tick: u32,
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
pub(crate) fn ms_to_tick(ms: u64) -> u32 {
    (ms >> TICK_SHIFT) as u32
}

impl SessionTable {
    /// Allocates a table for `capacity` sessions. `seed` keys the index hash.
    pub fn new(capacity: usize, seed: u64, now_ms: u64) -> SessionTable {
        assert!(capacity > 0 && capacity < NIL as usize, "session capacity out of range");
        let empty = Session::new(
            Protocol::Unknown(0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            State::None,
            ForwardMode::FullNat,
            0,
            0,
        );
        let mut slots = vec![empty; capacity].into_boxed_slice();
        for (i, s) in slots.iter_mut().enumerate() {
            s.next_free = if i + 1 < capacity { i as u32 + 1 } else { NIL };
        }
        // Two counts per session, 4 KiB to 4 MiB: below 64 KiB the ports
        // fold onto each other, above it the addresses split into classes.
        let cells = (capacity * 2).next_power_of_two().clamp(MIN_REPLY_PORT_CELLS, MAX_REPLY_PORT_CELLS);
        let classes = (cells >> 16).max(1);
        SessionTable {
            slots,
            free_head: 0,
            live: 0,
            in_index: Index::new(capacity),
            out_index: Index::new(capacity),
            reply_ports: vec![0; cells].into_boxed_slice(),
            class_shift: 32 - classes.trailing_zeros(),
            seed: (seed | 1, seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15),
            wheel: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            cur_tick: ms_to_tick(now_ms),
            now_tick: ms_to_tick(now_ms),
        }
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
        std::mem::size_of_val(&*self.slots)
            + self.in_index.memory_bytes()
            + self.out_index.memory_bytes()
            + self.reply_ports.len()
            + std::mem::size_of_val(&*self.wheel)
    }

    /// The index hash of `k`: its low bits pick the bucket, its high 16
    /// bits are the signature kept in the bucket.
    #[inline(always)]
    pub fn hash(&self, k: &FlowKey) -> u64 {
        let a = ((k.src as u64) << 32 | k.dst as u64) ^ self.seed.0;
        let b = ((k.sport as u64) << 32 | (k.dport as u64) << 16 | u8::from(k.proto) as u64) ^ self.seed.1;
        fold_mul(fold_mul(a, b), 0x9e37_79b9_7f4a_7c15)
    }

    /// The counter of reply keys to `addr:port`.
    #[inline(always)]
    fn reply_port_cell(&self, addr: u32, port: u16) -> usize {
        // `class_shift` is 32 for one class: a u64 shift keeps that legal.
        let class = (u64::from(addr.wrapping_mul(0x9e37_79b1)) >> self.class_shift) as usize;
        (class << 16 | port as usize) & (self.reply_ports.len() - 1)
    }

    /// Whether no live session has a reply key to `addr:port` (from any
    /// source, any protocol): then a FULLNAT bind may take local port
    /// `port` on local address `addr` without looking the reply key up. A
    /// `false` only means "look it up": another address of the same class
    /// or another real server may hold the count.
    #[inline(always)]
    pub fn reply_port_unused(&self, addr: u32, port: u16) -> bool {
        self.reply_ports[self.reply_port_cell(addr, port)] == 0
    }

    /// The session whose client-side key is `k`.
    #[inline(always)]
    pub fn lookup_in(&self, k: &FlowKey) -> Option<u32> {
        self.find_in(k, self.hash(k))
    }

    /// The session whose real-server-side key is `k`.
    #[inline(always)]
    pub fn lookup_out(&self, k: &FlowKey) -> Option<u32> {
        self.find_out(k, self.hash(k))
    }

    /// [`SessionTable::lookup_in`] with `h == self.hash(k)` computed earlier.
    #[inline(always)]
    pub fn find_in(&self, k: &FlowKey, h: u64) -> Option<u32> {
        let proto = u8::from(k.proto);
        self.in_index.find(h, |i| self.slots[i as usize].is_in(k, proto))
    }

    /// [`SessionTable::lookup_out`] with `h == self.hash(k)` computed earlier.
    #[inline(always)]
    pub fn find_out(&self, k: &FlowKey, h: u64) -> Option<u32> {
        let proto = u8::from(k.proto);
        self.out_index.find(h, |i| self.slots[i as usize].is_out(k, proto))
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

    /// The session line a lookup of hash `h` will most likely read, once
    /// its bucket line is in cache, for the caller to prefetch.
    #[inline(always)]
    pub fn session_line(&self, h: u64, dir_out: bool) -> Option<&Session> {
        let i = if dir_out { self.out_index.candidate(h) } else { self.in_index.candidate(h) };
        i.map(|i| &self.slots[i as usize])
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &Session {
        &self.slots[idx as usize]
    }
    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut Session {
        &mut self.slots[idx as usize]
    }

    /// Inserts `s`, expiring `timeout_ms` after `now_ms`. The caller has
    /// checked that neither key is present.
    pub fn insert(&mut self, s: Session, now_ms: u64, timeout_ms: u64) -> Result<u32, Full> {
        if self.free_head == NIL {
            return Err(Full);
        }
        let idx = self.free_head;
        let hin = self.hash(&s.in_key());
        self.in_index.insert(hin, idx).map_err(|_| Full)?;
        if !s.flags.contains(Flags::NO_OUT) {
            let hout = self.hash(&s.out_key());
            if self.out_index.insert(hout, idx).is_err() {
                self.in_index.remove(hin, idx);
                return Err(Full);
            }
            let c = &mut self.reply_ports[self.reply_port_cell(s.lip, s.lport)];
            *c = c.saturating_add(1);
        }
        self.free_head = self.slots[idx as usize].next_free;
        self.slots[idx as usize] = s;
        self.live += 1;
        let deadline = ms_to_tick(now_ms + timeout_ms);
        self.slots[idx as usize].expires = deadline;
        self.wheel_link(idx, deadline);
        Ok(idx)
    }

    /// Pushes the deadline of `idx` to `timeout_ms` after `now_ms`.
    #[inline]
    pub fn touch(&mut self, idx: u32, now_ms: u64, timeout_ms: u64) {
        let deadline = ms_to_tick(now_ms + timeout_ms);
        let s = &mut self.slots[idx as usize];
        s.expires = deadline;
        if deadline < s.wheel_tick {
            self.wheel_unlink(idx);
            self.wheel_link(idx, deadline);
        }
    }

    /// Removes `idx` from both indexes and the wheel and frees its slot; a
    /// connection no longer counts for its template ([`persist::release`]).
    pub fn remove(&mut self, idx: u32) {
        let s = self.slots[idx as usize];
        let found = self.in_index.remove(self.hash(&s.in_key()), idx);
        debug_assert!(found, "session {idx} missing from the client-side index");
        if !s.flags.contains(Flags::NO_OUT) {
            let found = self.out_index.remove(self.hash(&s.out_key()), idx);
            debug_assert!(found, "session {idx} missing from the reply index");
            let c = &mut self.reply_ports[self.reply_port_cell(s.lip, s.lport)];
            if *c != u8::MAX {
                *c -= 1;
            }
        }
        self.wheel_unlink(idx);
        if s.control != NIL {
            // The connection ended at its deadline, or now if it was removed
            // early. (Not the wheel cursor, which lags the clock while a long
            // pause is caught up.)
            let ended = s.expires.min(self.now_tick);
            persist::release(&mut self.slots[s.control as usize], ended);
        }
        let slot = &mut self.slots[idx as usize];
        // Protocol 0 marks a free slot (see `slot`).
        slot.proto = 0;
        slot.next_free = self.free_head;
        self.free_head = idx;
        self.live -= 1;
    }

    fn wheel_link(&mut self, idx: u32, deadline: u32) {
        // Never schedule into the past or beyond one lap of the wheel.
        let tick = deadline.clamp(self.cur_tick, self.cur_tick + WHEEL_SLOTS as u32 - 1);
        let slot = tick as usize & (WHEEL_SLOTS - 1);
        let head = self.wheel[slot];
        let s = &mut self.slots[idx as usize];
        s.wheel_tick = tick;
        s.wheel_prev = NIL;
        s.wheel_next = head;
        if head != NIL {
            self.slots[head as usize].wheel_prev = idx;
        }
        self.wheel[slot] = idx;
    }

    fn wheel_unlink(&mut self, idx: u32) {
        let (prev, next, tick) = {
            let s = &self.slots[idx as usize];
            (s.wheel_prev, s.wheel_next, s.wheel_tick)
        };
        if prev == NIL {
            self.wheel[tick as usize & (WHEEL_SLOTS - 1)] = next;
        } else {
            self.slots[prev as usize].wheel_next = next;
        }
        if next != NIL {
            self.slots[next as usize].wheel_prev = prev;
        }
    }

    /// Expires sessions whose deadline is at or before `now_ms`. For each,
    /// `on_expire` decides: `None` frees it, `Some(ms)` keeps it for `ms`
    /// more (a persistence template that still controls connections).
    /// Examines at most `budget` sessions, so one call's cost is bounded;
    /// returns the number freed.
    pub fn expire(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut on_expire: impl FnMut(&Session) -> Option<u64>,
    ) -> usize {
        let now = ms_to_tick(now_ms);
        self.now_tick = now;
        // After a long pause, one lap visits every slot: skip the rest.
        if now.saturating_sub(self.cur_tick) >= WHEEL_SLOTS as u32 {
            self.cur_tick = now - WHEEL_SLOTS as u32 + 1;
        }
        let mut examined = 0;
        let mut expired = 0;
        while self.cur_tick <= now {
            let slot = self.cur_tick as usize & (WHEEL_SLOTS - 1);
            let mut i = self.wheel[slot];
            while i != NIL {
                if examined == budget {
                    return expired;
                }
                examined += 1;
                let s = self.slots[i as usize];
                let next = s.wheel_next;
                if s.wheel_tick <= self.cur_tick {
                    if s.expires <= now {
                        match on_expire(&s) {
                            None => {
                                self.remove(i);
                                expired += 1;
                            }
                            Some(ms) => {
                                let deadline = ms_to_tick(now_ms + ms.max(1 << TICK_SHIFT));
                                self.slots[i as usize].expires = deadline;
                                self.wheel_unlink(i);
                                self.wheel_link(i, deadline);
                            }
                        }
                    } else {
                        // expires > now >= cur_tick, so this lands in another slot.
                        self.wheel_unlink(i);
                        self.wheel_link(i, s.expires);
                    }
                }
                i = next;
            }
            self.cur_tick += 1;
        }
        expired
    }

    /// The live session in slot `i`, if any (connection listing walks the
    /// slots in chunks; a free slot has protocol 0, which no session has).
    #[inline]
    pub fn slot(&self, i: usize) -> Option<&Session> {
        self.slots.get(i).filter(|s| s.proto != 0)
    }
}

#[cfg(test)]
mod tests;
