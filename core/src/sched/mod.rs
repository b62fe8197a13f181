//! Schedulers: pick a real server for a new connection, with the rules of
//! the kernel's twelve IPVS schedulers (`net/netfilter/ipvs/ip_vs_*.c`).
//!
//! # How to use it
//!
//! * **Control plane**, on every change of a service or of its servers (may
//!   allocate): [`Prepared::build`]`(scheduler, flags, &[DestConf])`. The
//!   result is immutable and shared by all workers: the scheduler and its
//!   flags, wrr's maximum weight and gcd, the 256-bucket sh/dh tables, the
//!   4093-slot Maglev table. Maglev needs each server's `last_weight` (see
//!   [`DestConf`]), which the control plane keeps across edits.
//! * **Worker**, per service: [`SchedState::new`] once (this allocates the
//!   lblc/lblcr cache, bounded), then [`SchedState::reconfigure`] whenever the
//!   service's [`Prepared`] changes. `reconfigure` allocates only when the
//!   scheduler itself changed.
//! * **Worker**, per new connection: [`pick`]`(&prepared, &mut state,
//!   &dests, &flow)` returns the index of the chosen server in `dests`, or
//!   `None` ("no destination available"). `dests` is the worker's view of the
//!   same server list, in the same order as the `DestConf`s ([`Dests`]).
//!   The list is in IPVS's order: the control plane puts each server added
//!   at its head (`list_add_rcu` in `__ip_vs_update_dest`), so rr starts
//!   with the server added last, and ties go to it.
//!
//! # Invariants
//!
//! * `pick` never allocates: it only reads the [`Prepared`] and writes
//!   cursors and fixed-size boxed slices of [`SchedState`] that were
//!   allocated by `new`/`reconfigure`. The lblc/lblcr caches are
//!   set-associative with [`CACHE_WAYS`] ways per bucket; when a bucket is
//!   full the least recently used entry is evicted, and entries idle longer
//!   than the expiration (24 h, the kernel's `lblc_expiration` and
//!   `lblcr_expiration` default) are treated as absent.
//! * `pick` never returns a server with weight 0 (quiesced) or flagged
//!   overloaded ([`Dests::overloaded`], the kernel's `IP_VS_DEST_F_OVERLOAD`
//!   from the `-x`/`-y` thresholds, which the caller maintains).
//! * An index out of range of `dests` is never returned, even if `dests` and
//!   the `Prepared` disagree (that is a caller bug, caught by a debug
//!   assertion).
//!
//! # Per-worker state: how it differs from the kernel
//!
//! The kernel keeps one state per service; here each worker has its own, so
//! workers never write a shared cache line.
//!
//! * **rr, wrr**: each worker runs its own sequence. Over many connections
//!   the shares are the configured ones, but consecutive connections landing
//!   on different workers can go to the same server. The cursor is an index:
//!   after servers are added or removed before it, rr goes on from the same
//!   position rather than from the same server.
//! * **lc, wlc, sed, nq, and the least-load part of lblc/lblcr**: a worker
//!   only knows its *own* active/inactive connection counts per server
//!   ([`Dests::conns`]), so it compares per-worker counts. With RSS spreading
//!   flows evenly over workers, each worker's counts are about 1/N of the
//!   global ones and the choices approximate the kernel's.
//! * **lblc, lblcr**: each worker has its own destination-address cache, so
//!   the same destination address can be cached to different servers on
//!   different workers (each worker's choice follows the kernel's rules).
//!   The kernel's table grows without bound and garbage-collects entries idle
//!   for 6 minutes once it holds more than 16384 of them; here the cache is
//!   bounded and evicts the least recently used entry of the bucket. An lblcr
//!   set holds at most [`LBLCR_SET_MAX`] servers (unbounded in the kernel).
//! * **dh, sh, mh, fo**: no mutable state; every worker makes the same
//!   choice for the same flow, as the kernel does.
//!
//! # Deliberate differences from the kernel
//!
//! * lblc: the kernel keeps using a cached server that is flagged overloaded
//!   (it only applies its own "more active connections than weight" rule);
//!   here, as for every scheduler, a server flagged overloaded is never
//!   chosen, so the connection is rescheduled.
//! * lblc/lblcr cache entries name servers by [`Dests::id`] (gatewayd: the
//!   server's slot), not by index, so they survive configuration changes
//!   (the kernel keeps a reference to the server, which it keeps in its
//!   trash while it is deleted).

use gw_proto::{sched_flags, Scheduler};

mod cache;
mod hashing;
mod least;
mod locality;
mod rr;
mod siphash;

pub use cache::CACHE_WAYS;
pub use hashing::{HASH_TAB_SIZE, MH_TAB_SIZE};
pub use locality::{DEFAULT_CACHE_ENTRIES, DEFAULT_EXPIRATION_MS, LBLCR_SET_MAX};

/// Bytes one worker allocates for one lblc or lblcr service's cache (the
/// larger of the two: lblcr's sets).
pub fn locality_cache_bytes() -> usize {
    SchedState::new(Scheduler::Lblcr).cache.bytes().max(SchedState::new(Scheduler::Lblc).cache.bytes())
}
pub(crate) use siphash::sip13_words;

/// What schedulers see of the real servers of one service, on this worker.
/// Index `i` is the same server as `DestConf` number `i` given to
/// [`Prepared::build`].
pub trait Dests {
    /// Number of servers.
    fn len(&self) -> usize;
    /// Current weight; 0 = quiesced.
    fn weight(&self, i: usize) -> u32;
    /// Address, host order.
    fn addr(&self, i: usize) -> u32;
    /// Port, host order.
    fn port(&self, i: usize) -> u16;
    /// What tells server `i` from every other server of the service, and
    /// stays with it when the list changes (gatewayd: its slot). The
    /// lblc/lblcr caches name servers by it, as the kernel's by the
    /// `ip_vs_dest` pointer: an IPv6 server's [`Dests::addr`] is folded to
    /// 32 bits, and two servers' folds can be equal.
    fn id(&self, i: usize) -> u32;
    /// (active, inactive) connections to server `i` owned by this worker.
    fn conns(&self, i: usize) -> (u32, u32);
    /// `IP_VS_DEST_F_OVERLOAD`: above its upper connection threshold (`-x`)
    /// and not yet back below the lower one (`-y`). Maintained by the caller.
    fn overloaded(&self, i: usize) -> bool;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A server can take new connections: weight above zero and not overloaded.
#[inline]
fn available<D: Dests + ?Sized>(d: &D, i: usize) -> bool {
    d.weight(i) > 0 && !d.overloaded(i)
}

/// The new connection being scheduled. Addresses and ports in host order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub src: u32,
    /// Client port for TCP/UDP/SCTP, 0 for other protocols (what the kernel
    /// hashes with `sh-port`/`mh-port`).
    pub sport: u16,
    pub dst: u32,
    pub dport: u16,
    /// A monotonic clock in milliseconds (lblc/lblcr cache ageing).
    pub now_ms: u64,
}

/// One real server as configured, input of [`Prepared::build`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestConf {
    /// Current weight.
    pub weight: u32,
    /// The kernel's `last_weight`: the weight the server was added with, then
    /// the last weight it was set to that was not 0. Maglev builds its table
    /// from it, so quiescing a server (weight 0) does not reshuffle the
    /// other servers' sources.
    pub last_weight: u32,
    /// Address, host order.
    pub addr: u32,
    /// Port, host order.
    pub port: u16,
    /// The server's [`Dests::id`] (gatewayd: its slot).
    pub id: u32,
}

impl DestConf {
    /// A server whose `last_weight` is its weight (a server just added),
    /// its address for its id (the test servers' default id, [`Dests::id`]).
    pub fn new(weight: u32, addr: u32, port: u16) -> DestConf {
        DestConf { weight, last_weight: weight, addr, port, id: addr }
    }
}

/// Immutable per-configuration data of one service, built by the control
/// plane and shared by all workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    sched: Scheduler,
    flags: u8,
    /// Number of servers it was built for.
    len: usize,
    /// wrr: largest weight and gcd of the weights above zero (at least 1).
    max_weight: u32,
    gcd: u32,
    /// dh/sh: [`HASH_TAB_SIZE`] buckets; mh: [`MH_TAB_SIZE`] slots. Each
    /// holds a server index or [`hashing::NONE`]. Empty for the others.
    table: Box<[u16]>,
    /// lblc/lblcr: idle time after which a cache entry is forgotten, and an
    /// lblcr set unchanged for this long loses its most loaded member.
    expiration_ms: u64,
    /// rr: each server's [`Dests::id`], in list order, for the cursor to
    /// find its server again after a change ([`SchedState::reconfigure`]).
    /// Empty for the others.
    ids: Box<[u32]>,
    /// A fingerprint of the servers' addresses, ports and weights in list
    /// order: whether a change of the service touched its servers (wrr's
    /// state follows those only, as the kernel's `dest_changed` hook).
    dests_sig: u64,
}

impl Prepared {
    /// Precomputes what `sched` needs for this server list. `flags` are
    /// [`sched_flags`] bits (`sh-fallback`/`mh-fallback`, `sh-port`/`mh-port`).
    pub fn build(sched: Scheduler, flags: u8, dests: &[DestConf]) -> Prepared {
        let max_weight = dests.iter().map(|d| d.weight).max().unwrap_or(0);
        let gcd = dests.iter().map(|d| d.weight).filter(|w| *w > 0).fold(0, gcd).max(1);
        let table = match sched {
            Scheduler::Dh => hashing::build_dh(dests),
            Scheduler::Sh => hashing::build_sh(dests),
            Scheduler::Mh => hashing::build_mh(dests),
            _ => Box::default(),
        };
        Prepared {
            sched,
            flags,
            len: dests.len(),
            max_weight,
            gcd,
            table,
            expiration_ms: DEFAULT_EXPIRATION_MS,
            ids: match sched {
                Scheduler::Rr => dests.iter().map(|d| d.id).collect(),
                _ => Box::default(),
            },
            dests_sig: dests.iter().fold(dests.len() as u64, |h, d| {
                let word = u64::from(d.addr) << 32 | u64::from(d.port) << 16;
                crate::session::fold_mul(h ^ word, 0x9e37_79b9_7f4a_7c15 ^ u64::from(d.weight))
            }),
        }
    }

    /// Sets the lblc/lblcr expiration (the kernel's `lblc_expiration` and
    /// `lblcr_expiration` sysctls; default [`DEFAULT_EXPIRATION_MS`]).
    pub fn with_expiration_ms(mut self, ms: u64) -> Prepared {
        self.expiration_ms = ms;
        self
    }

    pub fn scheduler(&self) -> Scheduler {
        self.sched
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }

    fn fallback(&self) -> bool {
        self.flags & sched_flags::FLAG1 != 0
    }

    fn hash_port(&self) -> bool {
        self.flags & sched_flags::FLAG2 != 0
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Per-worker, per-service mutable scheduler state: the rr/wrr cursor and
/// the lblc/lblcr cache. Its memory is allocated by [`SchedState::new`] and
/// [`SchedState::reconfigure`], never by [`pick`].
#[derive(Clone)]
pub struct SchedState {
    sched: Scheduler,
    /// rr: index chosen last; wrr: index examined last. `None`: start at the
    /// head of the list.
    last: Option<usize>,
    /// rr: the [`Dests::id`] of the server chosen last.
    last_id: u32,
    /// wrr's current weight; 0 before the first pick.
    cw: u32,
    /// wrr: the gcd `cw` is a multiple of, and the servers' fingerprint,
    /// of the configuration last taken up.
    gcd: u32,
    sig: u64,
    /// Entries of the lblc/lblcr cache, kept across scheduler changes.
    entries: usize,
    cache: locality::Cache,
}

impl SchedState {
    /// State for `sched` with a cache of [`DEFAULT_CACHE_ENTRIES`] entries if
    /// it is lblc or lblcr.
    pub fn new(sched: Scheduler) -> SchedState {
        SchedState::with_capacity(sched, DEFAULT_CACHE_ENTRIES)
    }

    /// State for `sched` with a cache of about `entries` entries (rounded up
    /// to whole buckets of [`CACHE_WAYS`]) if it is lblc or lblcr.
    pub fn with_capacity(sched: Scheduler, entries: usize) -> SchedState {
        SchedState {
            sched,
            last: None,
            last_id: 0,
            cw: 0,
            gcd: 1,
            sig: 0,
            entries,
            cache: locality::Cache::new(sched, entries),
        }
    }

    /// Follows a configuration change of the service. A new scheduler gets a
    /// new state (this allocates the cache of lblc/lblcr). Otherwise, as the
    /// kernel's `dest_changed` hooks do: when the servers changed (not on an
    /// edit of the service alone, which has no hook), wrr restarts from the
    /// head of the list at its current weight level mapped as the kernel
    /// maps it to the new gcd ([`wrr_level`]); rr's
    /// cursor stays on the server it chose last, wherever servers added at
    /// the head moved it, and when that server is gone it steps back one
    /// (`ip_vs_rr_del_dest`: the next choice is the one after it);
    /// lblc/lblcr keep their cache (entries name servers by
    /// [`Dests::id`], so they follow a server that moved in the list).
    pub fn reconfigure(&mut self, prep: &Prepared) {
        if prep.sched != self.sched {
            *self = SchedState::with_capacity(prep.sched, self.entries);
        } else if self.sched == Scheduler::Rr {
            if let Some(l) = self.last {
                self.last = match prep.ids.iter().position(|id| *id == self.last_id) {
                    Some(j) => Some(j),
                    None => l.checked_sub(1),
                };
            }
        } else if self.sched == Scheduler::Wrr && prep.dests_sig != self.sig {
            self.last = None;
            self.cw = wrr_level(self.cw, self.gcd, prep);
        }
        (self.gcd, self.sig) = (prep.gcd, prep.dests_sig);
    }

    pub fn scheduler(&self) -> Scheduler {
        self.sched
    }

    /// Entries allocated for the lblc/lblcr cache (0 for the others).
    pub fn cache_capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// Live lblc/lblcr cache entries (for statistics; walks the cache).
    pub fn cached(&self, now_ms: u64, prep: &Prepared) -> usize {
        self.cache.live(now_ms, prep.expiration_ms)
    }
}

/// wrr's level `cw` (a multiple of `gcd`; 0: the top) after the servers
/// changed to `prep`'s, as `ip_vs_wrr_dest_changed` maps it. The kernel's
/// levels are `max - (gcd - 1) - k * gcd` where these are `max - k * gcd`,
/// the same sequence shifted by `gcd - 1`: the level goes to the kernel's
/// form, through its rule (the top if above the new top, else rounded to
/// the new gcd as `cw / gcd * gcd + 1`), and back.
fn wrr_level(cw: u32, gcd: u32, prep: &Prepared) -> u32 {
    if cw == 0 {
        return 0;
    }
    let (k, g) = (cw.saturating_sub(gcd.max(1) - 1).max(1), prep.gcd.max(1));
    let top = prep.max_weight.saturating_sub(g - 1);
    if k > top {
        return 0;
    }
    let k = if g > 1 { k / g * g + 1 } else { k };
    k + (g - 1)
}

impl Default for SchedState {
    /// State of ipvsadm's default scheduler (wlc), which allocates nothing.
    fn default() -> SchedState {
        SchedState::new(Scheduler::DEFAULT)
    }
}

impl std::fmt::Debug for SchedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedState")
            .field("sched", &self.sched)
            .field("last", &self.last)
            .field("cw", &self.cw)
            .field("cache_capacity", &self.cache.capacity())
            .finish()
    }
}

/// Picks the server for a new connection: an index into `dests`, or `None`
/// if no server is available. Never allocates (see the module docs).
///
/// `st` should have been made for `prep`'s scheduler ([`SchedState::new`] or
/// [`SchedState::reconfigure`]); if it was not, lblc and lblcr still pick a
/// server by their least-load rule, without a cache.
pub fn pick<D: Dests + ?Sized>(
    prep: &Prepared,
    st: &mut SchedState,
    dests: &D,
    flow: &Flow,
) -> Option<usize> {
    debug_assert_eq!(prep.len, dests.len(), "Dests and Prepared describe different server lists");
    let i = match prep.sched {
        Scheduler::Rr => rr::rr(st, dests),
        Scheduler::Wrr => rr::wrr(prep, st, dests),
        Scheduler::Lc => least::lc(dests),
        Scheduler::Wlc => least::wlc(dests),
        Scheduler::Sed => least::sed(dests),
        Scheduler::Nq => least::nq(dests),
        Scheduler::Fo => least::fo(dests),
        Scheduler::Ovf => least::ovf(dests),
        Scheduler::Dh => hashing::dh(prep, dests, flow),
        Scheduler::Sh => hashing::sh(prep, dests, flow),
        Scheduler::Mh => hashing::mh(prep, dests, flow),
        Scheduler::Lblc => locality::lblc(prep, &mut st.cache, dests, flow),
        Scheduler::Lblcr => locality::lblcr(prep, &mut st.cache, dests, flow),
    }?;
    debug_assert!(i < dests.len() && available(dests, i));
    Some(i)
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A server list for tests.
    use super::*;

    /// A test server: weight, address, port, (active, inactive), overloaded;
    /// `id` its [`Dests::id`] (0: its address).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct D {
        pub w: u32,
        pub addr: u32,
        pub port: u16,
        pub id: u32,
        pub act: u32,
        pub inact: u32,
        pub over: bool,
    }

    impl Dests for [D] {
        fn len(&self) -> usize {
            <[D]>::len(self)
        }
        fn weight(&self, i: usize) -> u32 {
            self[i].w
        }
        fn addr(&self, i: usize) -> u32 {
            self[i].addr
        }
        fn port(&self, i: usize) -> u16 {
            self[i].port
        }
        fn id(&self, i: usize) -> u32 {
            if self[i].id != 0 {
                self[i].id
            } else {
                self[i].addr
            }
        }
        fn conns(&self, i: usize) -> (u32, u32) {
            (self[i].act, self[i].inact)
        }
        fn overloaded(&self, i: usize) -> bool {
            self[i].over
        }
    }

    /// Servers 10.0.0.1, 10.0.0.2, ... port 80 with these weights.
    pub fn servers(weights: &[u32]) -> Vec<D> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| D { w: *w, addr: 0x0a00_0001 + i as u32, port: 80, ..D::default() })
            .collect()
    }

    /// With (active, inactive) connections.
    pub fn loaded(weights: &[u32], active: &[u32], inactive: &[u32]) -> Vec<D> {
        let mut v = servers(weights);
        for (i, d) in v.iter_mut().enumerate() {
            d.act = active.get(i).copied().unwrap_or(0);
            d.inact = inactive.get(i).copied().unwrap_or(0);
        }
        v
    }

    pub fn confs(ds: &[D]) -> Vec<DestConf> {
        ds.iter()
            .enumerate()
            .map(|(i, d)| DestConf { id: ds.id(i), ..DestConf::new(d.w, d.addr, d.port) })
            .collect()
    }

    pub fn prepare(sched: Scheduler, flags: u8, ds: &[D]) -> Prepared {
        Prepared::build(sched, flags, &confs(ds))
    }

    /// A flow from `src` to `dst` at `now_ms`.
    pub fn flow(src: u32, dst: u32, now_ms: u64) -> Flow {
        Flow { src, sport: 40000, dst, dport: 80, now_ms }
    }

    /// One pick with a fresh state.
    pub fn pick_once(sched: Scheduler, ds: &[D]) -> Option<usize> {
        let p = prepare(sched, 0, ds);
        pick(&p, &mut SchedState::new(sched), ds, &flow(1, 2, 0))
    }

    /// `n` picks as letters ('A' = index 0, '-' = none).
    pub fn sequence(sched: Scheduler, ds: &[D], n: usize) -> String {
        let p = prepare(sched, 0, ds);
        let mut st = SchedState::new(sched);
        (0..n).map(|_| letter(pick(&p, &mut st, ds, &flow(1, 2, 0)))).collect()
    }

    pub fn letter(i: Option<usize>) -> char {
        i.map_or('-', |i| (b'A' + i as u8) as char)
    }
}

#[cfg(test)]
mod tests;
