//! The per-worker session table.
//!
//! The code is one generic [`Table`] ([`table`]: slab, indexes, free list,
//! timer wheel), instantiated for IPv4 as [`SessionTable`] (64-byte
//! [`Session`], with the reply-port counts) and for IPv6 as
//! [`ipv6::SessionTable6`] (128-byte [`ipv6::Session6`]); an entry type
//! brings its key, hash and compares ([`Entry`]).
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
//!   [`Table::bucket_line`] and [`Table::session_line`]
//!   between them so a burst's memory reads overlap.
//! - Expiry is a hashed timer wheel of 64 ms ticks. A packet only stores the
//!   new deadline (`expires`); the session moves to a later slot when its old
//!   slot fires, or at once when the deadline moved earlier. `expire` does a
//!   bounded amount of work per call (the caller's budget of examined
//!   sessions), so no poll ever scans the table or stalls on a slot that
//!   holds many sessions. Each slot is [`WHEEL_LISTS`] lists (entry
//!   `i` in list `i % WHEEL_LISTS`) walked side by side with prefetch
//!   ([`Table::expire_with`]), so a walk's cache misses overlap.

mod entry;
mod index;
pub mod ipv6;
mod table;

use gw_proto::ForwardMode;

use crate::tcp_state::State;
use crate::wire::ipv4::Protocol;

pub use self::entry::{Flags, Session};
pub use self::table::{Entry, Expired, Links, Table, WHEEL_LISTS};
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

/// IPv4 sessions of one worker: the generic [`Table`] of 64-byte
/// [`Session`]s, with the reply-port counts ([`ReplyPorts`]).
pub type SessionTable = Table<Session>;

#[inline(always)]
pub(crate) fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
pub(crate) fn ms_to_tick(ms: u64) -> u32 {
    (ms >> TICK_SHIFT) as u32
}

/// Reply keys per (destination address class, destination port), a power
/// of two of saturating one-byte cells: the IPv4 table's [`Entry::Aux`].
pub struct ReplyPorts {
    cells: Box<[u8]>,
    /// `32 - log2(classes)`: the class is the address's mixed top bits.
    class_shift: u32,
}

impl ReplyPorts {
    fn new(capacity: usize) -> ReplyPorts {
        // Two counts per session, 4 KiB to 4 MiB: below 64 KiB the ports
        // fold onto each other, above it the addresses split into classes.
        let cells = ReplyPorts::cells_for(capacity);
        let classes = (cells >> 16).max(1);
        ReplyPorts { cells: vec![0; cells].into_boxed_slice(), class_shift: 32 - classes.trailing_zeros() }
    }

    /// One-byte counts for a table of `capacity` sessions.
    fn cells_for(capacity: usize) -> usize {
        (capacity * 2).next_power_of_two().clamp(MIN_REPLY_PORT_CELLS, MAX_REPLY_PORT_CELLS)
    }

    /// The counter of reply keys to `addr:port`.
    #[inline(always)]
    fn cell(&self, addr: u32, port: u16) -> usize {
        // `class_shift` is 32 for one class: a u64 shift keeps that legal.
        let class = (u64::from(addr.wrapping_mul(0x9e37_79b1)) >> self.class_shift) as usize;
        (class << 16 | port as usize) & (self.cells.len() - 1)
    }
}

impl Entry for Session {
    type Key = FlowKey;
    type Aux = ReplyPorts;
    #[inline(always)]
    fn vacant() -> Session {
        Session::new(
            Protocol::from(0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            State::None,
            ForwardMode::FullNat,
            0,
            0,
        )
    }
    fn seed(seed: u64) -> (u64, u64) {
        (seed | 1, seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15)
    }
    #[inline(always)]
    fn hash(seed: (u64, u64), k: &FlowKey) -> u64 {
        let a = ((k.src as u64) << 32 | k.dst as u64) ^ seed.0;
        let b = ((k.sport as u64) << 32 | (k.dport as u64) << 16 | u8::from(k.proto) as u64) ^ seed.1;
        fold_mul(fold_mul(a, b), 0x9e37_79b9_7f4a_7c15)
    }
    #[inline(always)]
    fn in_key(&self) -> FlowKey {
        Session::in_key(self)
    }
    #[inline(always)]
    fn out_key(&self) -> FlowKey {
        Session::out_key(self)
    }
    #[inline(always)]
    fn key_proto(k: &FlowKey) -> u8 {
        u8::from(k.proto)
    }
    #[inline(always)]
    fn is_in(&self, k: &FlowKey, proto: u8) -> bool {
        Session::is_in(self, k, proto)
    }
    #[inline(always)]
    fn is_out(&self, k: &FlowKey, proto: u8) -> bool {
        Session::is_out(self, k, proto)
    }
    #[inline(always)]
    fn links(&self) -> &Links {
        &self.links
    }
    #[inline(always)]
    fn links_mut(&mut self) -> &mut Links {
        &mut self.links
    }
    #[inline(always)]
    fn proto(&self) -> u8 {
        self.proto
    }
    #[inline(always)]
    fn set_free(&mut self) {
        self.proto = 0;
    }
    #[inline(always)]
    fn flags(&self) -> Flags {
        self.flags
    }
    #[inline(always)]
    fn control(&self) -> u32 {
        self.control
    }
    #[inline(always)]
    fn set_control(&mut self, t: u32) {
        self.control = t;
    }
    fn new_aux(capacity: usize) -> ReplyPorts {
        ReplyPorts::new(capacity)
    }
    fn aux_bytes(capacity: usize) -> usize {
        ReplyPorts::cells_for(capacity)
    }
    #[inline(always)]
    fn reply_key_added(aux: &mut ReplyPorts, s: &Session) {
        let c = &mut aux.cells[aux.cell(s.lip, s.lport)];
        *c = c.saturating_add(1);
    }
    #[inline(always)]
    fn reply_key_removed(aux: &mut ReplyPorts, s: &Session) {
        let c = &mut aux.cells[aux.cell(s.lip, s.lport)];
        if *c != u8::MAX {
            *c -= 1;
        }
    }
}

impl Table<Session> {
    /// Whether no live session has a reply key to `addr:port` (from any
    /// source, any protocol): then a FULLNAT bind may take local port
    /// `port` on local address `addr` without looking the reply key up. A
    /// `false` only means "look it up": another address of the same class
    /// or another real server may hold the count.
    #[inline(always)]
    pub fn reply_port_unused(&self, addr: u32, port: u16) -> bool {
        self.aux.cells[self.aux.cell(addr, port)] == 0
    }

    /// Prefetches (through the table's [`Prefetch`]) the two lines a
    /// FULLNAT bind of local `addr:port` toward a real server reads and
    /// writes: the reply-port count of [`Self::reply_port_unused`] and the
    /// reply index's bucket line of the reply key's hash `h`.
    #[inline(always)]
    pub fn prefetch_reply(&self, addr: u32, port: u16, h: u64) {
        self.prefetch.line(&self.aux.cells[self.aux.cell(addr, port)]);
        self.prefetch.line(self.bucket_line(h, true));
    }
}

/// A cache-line prefetch hint that the I/O layer lends the core: gw-core
/// has no unsafe code and `_mm_prefetch` is unsafe (its pointer), so the
/// table calls this for lines it knows it will need a packet or more
/// later (the next free slot, a FULLNAT bind's next reply lines, the
/// sessions an expiry walk reaches next), where a burst stage cannot know
/// them. A hint: [`Prefetch::NONE`] (tests, a
/// table nobody set one on) does nothing, and the table works the same.
#[derive(Clone, Copy)]
pub struct Prefetch(pub fn(*const u8));

impl Prefetch {
    /// No prefetch.
    pub const NONE: Prefetch = Prefetch(|_| {});

    /// Hints the line holding `*r`.
    #[inline(always)]
    pub fn line<T>(self, r: &T) {
        (self.0)(r as *const T as *const u8)
    }
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prefetch")
    }
}

#[cfg(test)]
mod tests;
