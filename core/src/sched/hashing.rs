//! Hashing schedulers: destination hashing dh (`ip_vs_dh.c`), source hashing
//! sh (`ip_vs_sh.c`) and Maglev hashing mh (`ip_vs_mh.c`).
//!
//! The tables are built by the control plane into [`Prepared`] with the
//! kernel's rules and hash functions, so a client goes to the same server on
//! every worker, and to the same server as on a kernel director with the
//! same servers in the same list order (64-bit kernel, default table sizes):
//! the order the same `-a` commands or keepalived file make there, since
//! gatewayd's control plane also puts each server added at the head.
//! A table slot holds the index of a server or [`NONE`] (no servers).

use super::siphash::{hash_32, hsiphash_u32};
use super::{available, DestConf, Dests, Flow, Prepared};

/// An empty table slot.
pub(super) const NONE: u16 = u16::MAX;

/// Bits of the sh and dh tables: the kernel's default
/// `CONFIG_IP_VS_SH_TAB_BITS` and `CONFIG_IP_VS_DH_TAB_BITS`.
const HASH_TAB_BITS: u32 = 8;
/// Buckets of the sh and dh tables (256).
pub const HASH_TAB_SIZE: usize = 1 << HASH_TAB_BITS;

/// Slots of the Maglev table: the kernel's `primes[CONFIG_IP_VS_MH_TAB_INDEX
/// - 8]` with the default index 12, a prime, as Maglev needs.
pub const MH_TAB_SIZE: usize = 4093;
/// The kernel's `IP_VS_MH_TAB_BITS` (`CONFIG_IP_VS_MH_TAB_INDEX / 2`): weights
/// divided by their gcd keep at most this many significant bits.
const MH_TAB_BITS: u32 = 6;
/// `generate_hash_secret` of `ip_vs_mh.c`: fixed keys, so every director
/// builds the same table. The first places sources and server offsets, the
/// second server skips.
const MH_KEY1: (u64, u64) = (2_654_435_761, 2_654_435_761);
const MH_KEY2: (u64, u64) = (2_654_446_892, 2_654_446_892);

/// Server index as stored in a table; servers past the 65535th are left out.
fn slot_of(i: usize) -> u16 {
    debug_assert!(i < NONE as usize, "too many servers for a hashing table");
    i.min(NONE as usize - 1) as u16
}

/// dh: buckets go round robin to the servers in list order, whatever their
/// weights.
pub(super) fn build_dh(dests: &[DestConf]) -> Box<[u16]> {
    let n = dests.len().min(NONE as usize);
    (0..HASH_TAB_SIZE).map(|b| if n == 0 { NONE } else { slot_of(b % n) }).collect()
}

/// sh: the list is walked round robin and each server takes `weight`
/// consecutive buckets (one if its weight is 0), until the 256 are filled.
pub(super) fn build_sh(dests: &[DestConf]) -> Box<[u16]> {
    let n = dests.len().min(NONE as usize);
    let mut table = vec![NONE; HASH_TAB_SIZE];
    if n == 0 {
        return table.into();
    }
    let (mut i, mut taken) = (0, 0u32);
    for slot in table.iter_mut() {
        *slot = slot_of(i);
        taken += 1;
        if taken >= dests[i].weight {
            i = (i + 1) % n;
            taken = 0;
        }
    }
    table.into()
}

/// The server in `slot`, if it is in range and available.
fn usable<D: Dests + ?Sized>(d: &D, slot: u16) -> Option<usize> {
    let i = slot as usize;
    (slot != NONE && i < d.len() && available(d, i)).then_some(i)
}

/// dh: the bucket of the destination address; no server if its server is
/// quiesced or overloaded.
pub(super) fn dh<D: Dests + ?Sized>(p: &Prepared, d: &D, f: &Flow) -> Option<usize> {
    let slot = *p.table.get(hash_32(f.dst, HASH_TAB_BITS) as usize)?;
    usable(d, slot)
}

/// sh: the bucket of the source address (plus the source port with
/// `sh-port`). With `sh-fallback`, an unavailable server sends the client
/// around the table to the next available one, as the kernel does (its
/// probes start at twice the first bucket, a quirk kept for compatibility).
pub(super) fn sh<D: Dests + ?Sized>(p: &Prepared, d: &D, f: &Flow) -> Option<usize> {
    if p.table.len() != HASH_TAB_SIZE {
        return None;
    }
    let port = if p.hash_port() { f.sport } else { 0 };
    let h = hash_32(u32::from(port).wrapping_add(f.src), HASH_TAB_BITS) as usize;
    let first = p.table[h];
    if first == NONE {
        return None;
    }
    if let Some(i) = usable(d, first) {
        return Some(i);
    }
    if !p.fallback() {
        return None;
    }
    for offset in 0..HASH_TAB_SIZE {
        let roffset = (offset + h) % HASH_TAB_SIZE;
        let slot = p.table[(roffset + h) % HASH_TAB_SIZE];
        if slot == NONE {
            break;
        }
        if let Some(i) = usable(d, slot) {
            return Some(i);
        }
    }
    None
}

/// Position of the highest set bit, 1-based; 0 for 0 (the kernel's `fls`).
fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

/// Table slots a server takes per round of Maglev's population: its
/// `last_weight` divided by the gcd, shifted so that the largest keeps
/// [`MH_TAB_BITS`] bits, and at least 1 for a weight above zero.
fn mh_turns(dests: &[DestConf]) -> Vec<u32> {
    let g = dests.iter().map(|d| d.last_weight).filter(|w| *w > 0).fold(0, super::gcd);
    if g == 0 {
        return vec![0; dests.len()];
    }
    let max = dests.iter().map(|d| d.last_weight).max().unwrap_or(0) / g;
    let shift = fls(max).saturating_sub(MH_TAB_BITS);
    dests.iter().map(|d| ((d.last_weight / g) >> shift).max(u32::from(d.last_weight != 0))).collect()
}

/// The Maglev hash of a server's or a client's address and port.
fn mh_hash(key: (u64, u64), addr: u32, port: u16, offset: u32) -> u32 {
    hsiphash_u32(key, offset.wrapping_add(u32::from(port)).wrapping_add(addr))
}

/// Maglev's table (Eisenbud et al., "Maglev: A Fast and Reliable Software
/// Network Load Balancer", NSDI 2016, section 3.4): each server has a
/// preference list of slots, `offset + k * skip` modulo the prime table
/// size, from two hashes of its address and port. Servers take turns, in
/// list order, each claiming its next preferred free slot `turns` times per
/// round, until the table is full. A server added or removed moves about
/// its share of slots and few others.
///
/// Built from `last_weight`: a quiesced server (weight 0) keeps its slots,
/// and its clients find no server (or fall back) without moving anyone else.
pub(super) fn build_mh(dests: &[DestConf]) -> Box<[u16]> {
    let n = dests.len().min(NONE as usize);
    let dests = &dests[..n];
    let turns = mh_turns(dests);
    let mut table = vec![NONE; MH_TAB_SIZE];
    if turns.iter().all(|t| *t == 0) {
        return table.into();
    }
    let m = MH_TAB_SIZE as u32;
    let skip: Vec<u32> = dests.iter().map(|d| mh_hash(MH_KEY2, d.addr, d.port, 0) % (m - 1) + 1).collect();
    let mut next: Vec<u32> = dests.iter().map(|d| mh_hash(MH_KEY1, d.addr, d.port, 0) % m).collect();
    let mut filled = 0;
    loop {
        for i in 0..n {
            for _ in 0..turns[i] {
                let mut c = next[i];
                while table[c as usize] != NONE {
                    c = (c + skip[i]) % m;
                }
                next[i] = c;
                table[c as usize] = slot_of(i);
                filled += 1;
                if filled == MH_TAB_SIZE {
                    return table.into();
                }
            }
        }
    }
}

/// mh: the slot of the source address (plus the source port with
/// `mh-port`). With `mh-fallback`, an unavailable server sends the client to
/// the slots of rehashes of its address, `offset` = 0, 1, ... added to the
/// first slot, until an available server.
pub(super) fn mh<D: Dests + ?Sized>(p: &Prepared, d: &D, f: &Flow) -> Option<usize> {
    if p.table.len() != MH_TAB_SIZE {
        return None;
    }
    let port = if p.hash_port() { f.sport } else { 0 };
    let m = MH_TAB_SIZE as u32;
    let h = mh_hash(MH_KEY1, f.src, port, 0) % m;
    let first = p.table[h as usize];
    if first == NONE {
        return None;
    }
    if let Some(i) = usable(d, first) {
        return Some(i);
    }
    if !p.fallback() {
        return None;
    }
    for offset in 0..m {
        let roffset = (offset + h) % m;
        let slot = p.table[(mh_hash(MH_KEY1, f.src, port, roffset) % m) as usize];
        if slot == NONE {
            break;
        }
        if let Some(i) = usable(d, slot) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests;
