//! Hashing schedulers: destination hashing dh (`ip_vs_dh.c`), source hashing
//! sh (`ip_vs_sh.c`) and Maglev hashing mh (`ip_vs_mh.c`).
//!
//! The tables are built by the control plane into [`Prepared`] with the
//! kernel's rules and hash functions, so a client goes to the same server on
//! every worker, and to the same server as on a kernel director with the
//! same servers in the same list order (64-bit kernel, default table sizes).
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
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::*;
    use gw_proto::sched_flags::{FLAG1, FLAG2};

    /// A deterministic spread of client addresses.
    fn sources(n: u32) -> impl Iterator<Item = u32> {
        (0..n).map(|k| 0xc0a8_0000u32.wrapping_add(k.wrapping_mul(2_654_435_761)))
    }

    fn pick_src(p: &Prepared, ds: &[D], src: u32, sport: u16) -> Option<usize> {
        let f = Flow { src, sport, dst: src ^ 0x5555_5555, dport: 80, now_ms: 0 };
        pick(p, &mut SchedState::new(p.scheduler()), ds, &f)
    }

    /// Share of `n` sources that each server gets.
    fn shares(p: &Prepared, ds: &[D], n: u32) -> Vec<f64> {
        let mut c = vec![0u32; ds.len()];
        for s in sources(n) {
            if let Some(i) = pick_src(p, ds, s, 0) {
                c[i] += 1;
            }
        }
        c.iter().map(|x| f64::from(*x) / f64::from(n)).collect()
    }

    fn is_prime(n: usize) -> bool {
        n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d))
    }

    #[test]
    fn table_sizes() {
        let ds = servers(&[1, 2, 3]);
        assert_eq!(prepare(Scheduler::Sh, 0, &ds).table.len(), 256);
        assert_eq!(prepare(Scheduler::Dh, 0, &ds).table.len(), 256);
        assert_eq!(prepare(Scheduler::Mh, 0, &ds).table.len(), MH_TAB_SIZE);
        assert!(is_prime(MH_TAB_SIZE));
        assert!(prepare(Scheduler::Wlc, 0, &ds).table.is_empty());
    }

    #[test]
    fn sh_buckets_repeat_each_server_weight_times() {
        let t = build_sh(&confs(&servers(&[1, 3, 0, 2])));
        assert_eq!(&t[..14], &[0, 1, 1, 1, 2, 3, 3, 0, 1, 1, 1, 2, 3, 3]);
        let t = build_sh(&confs(&servers(&[300, 1])));
        assert!(t.iter().all(|s| *s == 0));
        assert!(build_sh(&[]).iter().all(|s| *s == NONE));
    }

    #[test]
    fn dh_buckets_ignore_weights() {
        let t = build_dh(&confs(&servers(&[5, 1, 0])));
        assert_eq!(&t[..7], &[0, 1, 2, 0, 1, 2, 0]);
        assert!(build_dh(&[]).iter().all(|s| *s == NONE));
    }

    /// Same client, same server: across calls, and across independently
    /// built tables and states (that is, across workers).
    #[test]
    fn hashing_is_stable_across_calls_and_workers() {
        let ds = servers(&[1, 2, 3, 1, 1]);
        for s in [Scheduler::Sh, Scheduler::Dh, Scheduler::Mh] {
            let (w1, w2) = (prepare(s, 0, &ds), prepare(s, 0, &ds));
            let (mut st1, mut st2) = (SchedState::new(s), SchedState::new(s));
            let mut seen = std::collections::HashSet::new();
            for src in sources(2000) {
                let f = Flow { src, sport: 1234, dst: src.rotate_left(7), dport: 80, now_ms: 0 };
                let a = pick(&w1, &mut st1, &ds[..], &f);
                assert_eq!(a, pick(&w1, &mut st1, &ds[..], &f), "{s}");
                assert_eq!(a, pick(&w2, &mut st2, &ds[..], &f), "{s}");
                seen.insert(a);
            }
            assert_eq!(seen.len(), 5, "{s} uses every server");
        }
    }

    #[test]
    fn sh_share_follows_weight() {
        let ds = servers(&[1, 1]);
        let sh = shares(&prepare(Scheduler::Sh, 0, &ds), &ds, 20_000);
        assert!((sh[0] - 0.5).abs() < 0.03, "{sh:?}");
        let ds = servers(&[3, 1]);
        let sh = shares(&prepare(Scheduler::Sh, 0, &ds), &ds, 20_000);
        assert!((sh[0] - 0.75).abs() < 0.03, "{sh:?}");
        // dh does not weigh: 1/2 each whatever the weights.
        let p = prepare(Scheduler::Dh, 0, &ds);
        let mut c = [0; 2];
        for dst in sources(20_000) {
            c[pick(&p, &mut SchedState::new(Scheduler::Dh), &ds[..], &flow(1, dst, 0)).unwrap()] += 1;
        }
        assert!((f64::from(c[0]) / 20_000.0 - 0.5).abs() < 0.03, "{c:?}");
    }

    #[test]
    fn dh_hashes_the_destination_only() {
        let ds = servers(&[1, 1, 1, 1]);
        let p = prepare(Scheduler::Dh, 0, &ds);
        let mut st = SchedState::new(Scheduler::Dh);
        for dst in sources(200) {
            let a = pick(&p, &mut st, &ds[..], &flow(1, dst, 0));
            for src in sources(20) {
                assert_eq!(pick(&p, &mut st, &ds[..], &Flow { src, sport: 9, ..flow(1, dst, 0) }), a);
            }
            // The kernel's bucket: hash_32(daddr, 8).
            let want = (dst.wrapping_mul(0x61C8_8647) >> 24) as usize % 4;
            assert_eq!(a, Some(want));
        }
    }

    #[test]
    fn sh_uses_the_kernel_bucket() {
        let ds = servers(&[1, 1, 1]);
        let p = prepare(Scheduler::Sh, FLAG2, &ds);
        for src in sources(300) {
            for sport in [0u16, 80, 40000] {
                let b = (u32::from(sport).wrapping_add(src).wrapping_mul(0x61C8_8647) >> 24) as usize;
                assert_eq!(pick_src(&p, &ds, src, sport), Some(b % 3));
            }
        }
    }

    #[test]
    fn port_flag_spreads_one_client_over_servers() {
        let ds = servers(&[1, 1, 1, 1]);
        for s in [Scheduler::Sh, Scheduler::Mh] {
            let plain = prepare(s, 0, &ds);
            let port = prepare(s, FLAG2, &ds);
            let src = 0xc0a8_0101;
            let by_port: std::collections::HashSet<_> =
                (1000..1100).map(|sp| pick_src(&port, &ds, src, sp)).collect();
            let plain_set: std::collections::HashSet<_> =
                (1000..1100).map(|sp| pick_src(&plain, &ds, src, sp)).collect();
            assert_eq!(plain_set.len(), 1, "{s}");
            assert_eq!(by_port.len(), 4, "{s}");
        }
    }

    /// Without the fallback flag a client of an unavailable server gets
    /// nothing; with it, it moves, and only it moves.
    #[test]
    fn fallback_flag() {
        for s in [Scheduler::Sh, Scheduler::Mh] {
            let ds = servers(&[1, 1, 1, 1]);
            let (plain, fb) = (prepare(s, 0, &ds), prepare(s, FLAG1, &ds));
            let before: Vec<_> = sources(3000).map(|x| pick_src(&plain, &ds, x, 0)).collect();
            for (quiesce, overload) in [(true, false), (false, true)] {
                let mut down = ds.clone();
                down[2].w = if quiesce { 0 } else { 1 };
                down[2].over = overload;
                for (x, was) in sources(3000).zip(&before) {
                    let (p, f) = (pick_src(&plain, &down, x, 0), pick_src(&fb, &down, x, 0));
                    if *was == Some(2) {
                        assert_eq!(p, None, "{s}");
                        assert!(f.is_some() && f != Some(2), "{s}");
                    } else {
                        assert_eq!(p, *was, "{s}");
                        assert_eq!(f, *was, "{s}");
                    }
                }
            }
            // Nothing available: the fallback finds nothing either.
            let mut all = ds.clone();
            all.iter_mut().for_each(|d| d.over = true);
            assert_eq!(pick_src(&fb, &all, 7, 0), None, "{s}");
        }
    }

    #[test]
    fn sh_fallback_probes_from_twice_the_bucket() {
        // Buckets go A B C D A B C D ...; C (buckets h = 4k + 2) is
        // overloaded. The kernel probes buckets (offset + 2h) mod 256 for
        // offset 0, 1, ...: the first probe, 8k + 4, is always A's (a walk
        // from the next bucket would give D).
        let mut ds = servers(&[1, 1, 1, 1]);
        let plain = prepare(Scheduler::Sh, 0, &ds);
        let on_c: Vec<u32> = sources(2000).filter(|x| pick_src(&plain, &ds, *x, 0) == Some(2)).collect();
        assert!(on_c.len() > 300);
        ds[2].over = true;
        let p = prepare(Scheduler::Sh, FLAG1, &ds);
        for src in on_c {
            assert_eq!(pick_src(&p, &ds, src, 0), Some(0));
        }
        // Weight-0 servers still own buckets in sh (one per round): without
        // the fallback their clients find nothing.
        let ds = servers(&[1, 0]);
        let sh = shares(&prepare(Scheduler::Sh, 0, &ds), &ds, 10_000);
        assert!((sh[0] - 0.5).abs() < 0.03, "{sh:?}");
        let sh = shares(&prepare(Scheduler::Sh, FLAG1, &ds), &ds, 10_000);
        assert_eq!(sh[0], 1.0);
    }

    fn mh_map(ds: &[D], n: u32) -> Vec<Option<u32>> {
        let p = prepare(Scheduler::Mh, 0, ds);
        sources(n).map(|x| pick_src(&p, ds, x, 0).map(|i| ds[i].addr)).collect()
    }

    /// Removing one of 10 equal servers moves about 1/10 of the clients:
    /// all of the removed server's, and few others.
    #[test]
    fn mh_removing_a_server_moves_about_its_share() {
        let n = 100_000;
        let ten = servers(&[1; 10]);
        let before = mh_map(&ten, n);
        for gone in [0, 4, 9] {
            let mut nine = ten.clone();
            let removed = nine.remove(gone).addr;
            let after = mh_map(&nine, n);
            let mut moved = 0;
            for (b, a) in before.iter().zip(&after) {
                assert!(a.is_some());
                if *b == Some(removed) {
                    assert_ne!(a, b);
                }
                if a != b {
                    moved += 1;
                }
            }
            let share = f64::from(moved) / f64::from(n);
            assert!((share - 0.1).abs() < 0.03, "removing server {gone} moved {share}");
        }
        // Adding it back restores the mapping exactly.
        assert_eq!(mh_map(&ten, n), before);
    }

    #[test]
    fn mh_shares_follow_weights() {
        let ds = servers(&[2, 1, 1, 1]);
        let sh = shares(&prepare(Scheduler::Mh, 0, &ds), &ds, 100_000);
        assert!((sh[0] - 0.4).abs() < 0.03, "{sh:?}");
        for s in &sh[1..] {
            assert!((s - 0.2).abs() < 0.03, "{sh:?}");
            assert!((sh[0] / s - 2.0).abs() < 0.3, "{sh:?}");
        }
        // The table itself: slots in proportion 2:1:1:1.
        let t = build_mh(&confs(&ds));
        let count = |i| t.iter().filter(|s| **s == i).count() as f64 / MH_TAB_SIZE as f64;
        assert!((count(0) - 0.4).abs() < 0.01, "{}", count(0));
        // Weights with a common factor give the same table.
        assert_eq!(build_mh(&confs(&servers(&[20, 10, 10, 10]))), t);
    }

    #[test]
    fn mh_turns_follow_the_kernel() {
        let c = |w: &[u32]| mh_turns(&confs(&servers(w)));
        assert_eq!(c(&[4, 2, 6]), vec![2, 1, 3]);
        assert_eq!(c(&[0, 3]), vec![0, 1]);
        assert_eq!(c(&[0, 0]), vec![0, 0]);
        // 100000 has 17 significant bits: shifted by 17 - 6 = 11.
        assert_eq!(c(&[100_000, 1]), vec![100_000 >> 11, 1]);
        assert_eq!(fls(0), 0);
        assert_eq!(fls(1), 1);
        assert_eq!(fls(64), 7);
    }

    #[test]
    fn mh_quiesce_keeps_everyone_else_in_place() {
        let ds = servers(&[1, 1, 1, 1]);
        let before = mh_map(&ds, 5000);
        // Weight set to 0: last_weight keeps the server in the table.
        let mut c = confs(&ds);
        c[1].weight = 0;
        let p = Prepared::build(Scheduler::Mh, 0, &c);
        let mut down = ds.clone();
        down[1].w = 0;
        for (x, b) in sources(5000).zip(&before) {
            let got = pick_src(&p, &down, x, 0).map(|i| down[i].addr);
            if *b == Some(ds[1].addr) {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, *b);
            }
        }
        // A server added with weight 0 takes no slot.
        let mut c = confs(&servers(&[1, 1, 1, 1, 0]));
        c[4].last_weight = 0;
        assert!(build_mh(&c).iter().all(|s| *s != 4));
        assert!(build_mh(&confs(&servers(&[0, 0]))).iter().all(|s| *s == NONE));
    }

    #[test]
    fn mh_server_hash_uses_address_and_port() {
        let mut ds = servers(&[1, 1]);
        let t1 = build_mh(&confs(&ds));
        ds[0].port = 81;
        assert_ne!(build_mh(&confs(&ds)), t1);
    }
}
