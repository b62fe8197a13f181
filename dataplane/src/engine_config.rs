//! From the validated configuration to what the workers are built with.
//!
//! Every number the daemon chooses itself (rather than reads from the TOML
//! file) is a named constant here, with the reason for its value; the
//! functions derive each worker's [`EngineConfig`] and the neighbour-table
//! settings from [`Config`]. Nothing here touches DPDK, so it is tested with
//! plain `cargo test`.

use std::time::Duration;

use gw_core::engine::{ConnReuse, EngineConfig};
use gw_core::frag::FragConfig;
use gw_core::neigh::NeighConfig;
use gw_core::route::{Iface, Routes};

use crate::config::Config;

/// Sessions the expiry pass of a poll that received nothing examines
/// (`EngineConfig::expire_budget`, [`expire_budget`]).
///
/// Expiry runs once per poll, between bursts, and packets that arrive
/// meanwhile wait in the rx ring: its length is latency. A wheel slot is a
/// list whose entries are random cache misses once the table is larger
/// than the cache (500-1300 cycles each on the benchmark VM); the walk
/// prefetches two entries ahead (`Table::expire_with`), which brings an
/// entry to a few hundred cycles. 64 of them is some 10-30 µs at worst,
/// about one burst's processing; the former 4096 per poll was up to a
/// millisecond and more when a slot held thousands of sessions opened
/// together (docs/benchmarks-log.md, "The poll loop's stalls").
pub const EXPIRE_BUDGET: usize = 64;

/// Sessions the expiry pass of a poll that received packets examines
/// before [`EXPIRE_PER_PACKET`] adds its share: see [`expire_budget`].
pub const EXPIRE_BUSY_BASE: usize = 16;

/// Sessions the expiry pass may examine per packet its poll received.
///
/// Why the wheel keeps up: a session is examined once when it is freed and
/// once more each time a slot finds it refreshed (it moves to its new
/// deadline's slot), and a refresh is a packet; a persistence template's
/// re-arm is the one exception, at most one per template and timeout.
/// Every new session is a packet too. So the work that can come due is at
/// most one examination per packet received (plus templates), whatever the
/// rate: at the peak of 2 M new sessions/s per worker the busy polls alone
/// examine at least 4 M/s, twice what comes due, and the surplus drains a
/// backlog (a slot of sessions opened together). Idle polls add
/// [`EXPIRE_BUDGET`] each. The session tests simulate this at the peak rate
/// (`expiry_keeps_up_at_the_peak_new_session_rate`).
pub const EXPIRE_PER_PACKET: usize = 2;

/// The expiry budget of a poll that received (or was handed) `packets`:
/// [`EXPIRE_BUDGET`] when idle, else [`EXPIRE_BUSY_BASE`] +
/// [`EXPIRE_PER_PACKET`] per packet. A busy poll's pass thus grows with its
/// own work (two entries per packet, whose own cost is a few hundred
/// cycles), never to the thousands that stalled a poll before.
pub fn expire_budget(packets: usize) -> usize {
    if packets == 0 {
        EXPIRE_BUDGET
    } else {
        EXPIRE_BUSY_BASE + EXPIRE_PER_PACKET * packets
    }
}

/// Mbufs each lcore keeps in its mempool cache. DPDK's `rte_mempool_create`
/// takes at most `RTE_MEMPOOL_CACHE_MAX_SIZE` (512); 256 is eight bursts,
/// enough that rx refills and tx frees rarely reach the shared ring.
pub const MBUF_CACHE: u32 = 256;

/// Packets each worker's redirect inbox holds (`gw_core::steer::Redirect`):
/// frames received on one worker's queue that another worker owns. 4096 is
/// 128 bursts, room for the owner to fall a few polls behind; a full inbox
/// drops and counts (`drop_redirect_full`).
pub const REDIRECT_INBOX: usize = 4096;

/// Learnt neighbours each worker's inbox holds (ARP answers shared between
/// workers). Few arrive at once; a full inbox only delays that worker's ARP.
pub const NEIGHBOUR_INBOX: usize = 256;

/// Spreads the workers' session-hash seeds: worker `i` uses
/// `seed ^ i * SEED_STRIDE`. The odd constant is 2^64 divided by the golden
/// ratio (Fibonacci hashing), so consecutive worker numbers give seeds that
/// differ in many bits.
pub const SEED_STRIDE: u64 = 0x9e37_79b9_7f4a_7c15;

/// How often the main thread runs the control plane's housekeeping
/// (`Control::tick`: retired snapshots, rate estimation every 2 s) and looks
/// for signals. Short enough that SIGTERM and SIGHUP act at once for an
/// operator, long enough to cost nothing.
pub const CONTROL_TICK: Duration = Duration::from_millis(100);

/// The gateway's SYN cookie secret, from the process's random `seed`
/// (SipHash of it, so that it tells nothing of the session seeds).
pub fn synproxy_secret(seed: u64) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write_u64(seed);
    h.write_u64(0x5359_4e50_524f_5859); // "SYNPROXY"
    h.finish()
}

/// Worker `worker`'s session-hash seed, from the process's random `seed`.
pub fn worker_seed(seed: u64, worker: u32) -> u64 {
    seed ^ u64::from(worker).wrapping_mul(SEED_STRIDE)
}

impl Config {
    /// The engine of worker `worker` out of `workers`, forwarding over
    /// `ifaces` with `routes`; `seed` is the process's random seed.
    pub fn engine_config(
        &self,
        worker: u32,
        workers: u32,
        ifaces: &[Iface],
        routes: &Routes,
        seed: u64,
    ) -> EngineConfig {
        let w = &self.workers;
        EngineConfig {
            worker,
            workers,
            ifaces: ifaces.to_vec(),
            routes: routes.clone(),
            sessions: w.sessions,
            sessions6: w.sessions6(),
            lport_range: (w.lport_min, w.lport_max),
            seed: worker_seed(seed, worker),
            expire_budget: EXPIRE_BUDGET,
            max_services: w.max_services,
            half_open_max: self.half_open_max(),
            half_open_max6: (w.sessions6() * w.half_open_percent as usize).div_ceil(100),
            conn_reuse: ConnReuse::new(self.ipvs.conn_reuse_mode).unwrap_or_default(),
            nodest: self.ipvs.nodest_conn,
            reject: self.ipvs.reject(),
            frag: FragConfig {
                datagrams: self.fragments.datagrams,
                timeout_ms: self.fragments.timeout_s * 1000,
            },
            kernel: vec![],
            // The same on every worker: any worker checks any cookie.
            synproxy_secret: synproxy_secret(seed),
        }
    }

    /// Most half-open TCP sessions per worker: `half_open_percent` of its
    /// session table, rounded up.
    pub fn half_open_max(&self) -> usize {
        (self.workers.sessions * self.workers.half_open_percent as usize).div_ceil(100)
    }

    /// Sessions over all `workers` workers (`gwctl -L`'s "size" header).
    pub fn conn_table_size(&self, workers: usize) -> u64 {
        (self.workers.sessions * workers) as u64
    }

    /// Each worker's neighbour (ARP) table settings.
    pub fn neigh_config(&self) -> NeighConfig {
        let n = &self.neighbours;
        NeighConfig {
            capacity: n.capacity,
            per_port_max: (n.capacity * n.per_port_percent as usize).div_ceil(100),
            reachable_ms: n.reachable_s * 1000,
            retry_ms: n.retry_ms,
            max_probes: n.max_probes,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(workers: &str) -> Config {
        let text = format!(
            "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n[workers]\n{workers}\n\
             [neighbours]\nreachable_s = 30\n"
        );
        Config::parse(&text, Path::new("test.toml")).unwrap()
    }

    #[test]
    fn each_worker_gets_the_configured_table_and_its_own_seed() {
        let c = config("sessions = 1001\nhalf_open_percent = 10\nlport_min = 2000\nlport_max = 3000");
        let routes = Routes::new(&[], &[]);
        let e0 = c.engine_config(0, 2, &[], &routes, 7);
        let e1 = c.engine_config(1, 2, &[], &routes, 7);
        assert_eq!((e1.worker, e1.workers, e1.sessions), (1, 2, 1001));
        assert_eq!(e1.lport_range, (2000, 3000));
        assert_eq!(e1.expire_budget, EXPIRE_BUDGET);
        assert_eq!(e1.half_open_max, 101, "10% of 1001, rounded up");
        assert_eq!(e1.half_open_max6, 25, "10% of the IPv6 table's 250");
        assert_eq!(e0.seed, 7);
        assert_eq!(e1.seed, 7 ^ SEED_STRIDE);
        assert_eq!(e0.synproxy_secret, e1.synproxy_secret, "any worker checks any SYN cookie");
        assert_ne!(e0.synproxy_secret, c.engine_config(0, 2, &[], &routes, 8).synproxy_secret);
        assert_eq!(c.conn_table_size(2), 2002);
    }

    #[test]
    fn conn_reuse_mode_is_the_kernels_sysctl_and_refused_out_of_range() {
        let routes = Routes::new(&[], &[]);
        assert_eq!(config("").engine_config(0, 1, &[], &routes, 7).conn_reuse, ConnReuse::DEFAULT);
        let c = config("[ipvs]\nconn_reuse_mode = 0");
        assert_eq!(c.engine_config(0, 1, &[], &routes, 7).conn_reuse, ConnReuse::new(0).unwrap());
        let text =
            "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n[ipvs]\nconn_reuse_mode = 4\n";
        let e = Config::parse(text, Path::new("test.toml")).unwrap_err().to_string();
        assert!(e.contains("ipvs.conn_reuse_mode"), "{e}");
    }

    #[test]
    fn nodest_conn_defaults_to_ipvs_drop_and_names_the_field_when_wrong() {
        let routes = Routes::new(&[], &[]);
        assert_eq!(config("").engine_config(0, 1, &[], &routes, 7).nodest, gw_core::engine::NoDest::Drop);
        let c = config("[ipvs]\nnodest_conn = \"forward\"");
        assert_eq!(c.engine_config(0, 1, &[], &routes, 7).nodest, gw_core::engine::NoDest::Forward);
        let text =
            "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n[ipvs]\nnodest_conn = \"keep\"\n";
        let e = Config::parse(text, Path::new("test.toml")).unwrap_err().to_string();
        assert!(e.contains("nodest_conn") && e.contains("expire"), "{e}");
    }

    #[test]
    fn neighbour_times_are_in_milliseconds() {
        let n = config("").neigh_config();
        assert_eq!((n.reachable_ms, n.retry_ms, n.max_probes), (30_000, 1000, 3));
        assert_eq!((n.capacity, n.per_port_max), (1024, 768), "75% per port by default");
    }

    /// One worker at the peak new-session rate, polls simulated with
    /// [`expire_budget`]: `new_per_packet` of every packet opens a session
    /// (timeout 2 s), the others refresh a live one (which moves it once
    /// more in the wheel). Time is scaled by 100 (20k packets per second of
    /// the simulation's clock for 2M/s): a 64 ms wheel tick then sees the
    /// same number of polls per session as at full speed, so the lateness
    /// in ticks is the same as at full speed. Returns (sessions opened,
    /// the most ticks a session was freed after its deadline tick).
    fn simulate_peak(packets_per_s: u64, refresh: bool) -> (usize, u32) {
        use gw_core::session::{Session, SessionTable};
        use gw_core::tcp_state::State;
        use gw_core::wire::ipv4::Protocol;
        use gw_proto::ForwardMode;

        const SCALE: u64 = 100;
        const TIMEOUT_MS: u64 = 2_000;
        const RUN_MS: u64 = 7_000;
        // gw_dpdk::BURST, which this crate has only with `dpdk`.
        const BURST: usize = 32;
        #[cfg(feature = "dpdk")]
        const _: () = assert!(BURST == gw_dpdk::BURST);
        let burst = 2 * BURST; // two ports, full bursts: the fewest polls
        let poll_us = burst as u64 * 1_000_000 * SCALE / packets_per_s;
        let mut t = SessionTable::new(1 << 17, 1, 0);
        let mut deadline: Vec<u64> = vec![]; // per session id, in ms
        let mut live: Vec<u32> = vec![]; // ids, for refreshes
        let mut slot_of: Vec<u32> = vec![];
        let (mut latest, mut freed, mut rng) = (0u32, 0usize, 0x2545_f491_4f6c_dd1du64);
        let mut now_us = 0u64; // the simulation's clock
        let poll =
            |t: &mut SessionTable, now_ms: u64, packets: usize, deadline: &Vec<u64>, latest: &mut u32| {
                // The engine's cheap test before its walks: nothing it
                // skips would have done anything.
                let due = t.expiry_due(now_ms);
                let done = t.expire_with(now_ms, expire_budget(packets), |_, s: &Session| {
                    let id = (s.cip - 0x0a00_0000) as usize;
                    let (due, now) = (deadline[id] >> 6, now_ms >> 6);
                    assert!(due <= now, "session {id} freed before its deadline");
                    *latest = (*latest).max((now - due) as u32);
                    None
                });
                assert!(done.examined <= expire_budget(packets));
                assert!(due || done == Default::default(), "expiry_due said nothing was due: {done:?}");
                done.freed
            };
        while now_us < RUN_MS * 1000 {
            let now_ms = now_us / 1000;
            for k in 0..burst {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                if refresh && k % 2 == 1 && !live.is_empty() {
                    let id = live[(rng % live.len() as u64) as usize] as usize;
                    if t.slot(slot_of[id] as usize).is_some_and(|s| (s.cip - 0x0a00_0000) as usize == id) {
                        t.touch(slot_of[id], now_ms, TIMEOUT_MS);
                        deadline[id] = now_ms + TIMEOUT_MS;
                    }
                    continue;
                }
                let id = deadline.len() as u32;
                let s = Session::new(
                    Protocol::Udp,
                    (0x0a00_0000 + id, 1024),
                    (0xc612_0064, 80),
                    (0xc612_0102, 8080),
                    (0xc612_0100 + (id >> 16), id as u16),
                    State::None,
                    ForwardMode::FullNat,
                    0,
                    0,
                );
                slot_of.push(t.insert(s, now_ms, TIMEOUT_MS).expect("room"));
                deadline.push(now_ms + TIMEOUT_MS);
                if live.len() < 4096 {
                    live.push(id);
                } else {
                    live[(rng >> 20) as usize % 4096] = id;
                }
            }
            freed += poll(&mut t, now_ms, burst, &deadline, &mut latest);
            now_us += poll_us;
        }
        // Then idle, the clock past every deadline (lateness no longer
        // measured): every session goes, none is left behind.
        let end_ms = now_us / 1000 + TIMEOUT_MS + 64;
        while !t.is_empty() {
            freed += poll(&mut t, end_ms, 0, &deadline, &mut 0);
        }
        assert_eq!(freed, deadline.len(), "each session freed once");
        (deadline.len(), latest)
    }

    /// The budget rule keeps up at 2M new sessions per second per worker:
    /// every session is freed within a tick (64 ms) after its deadline
    /// tick, never before, and none is left behind; also with as many
    /// refreshes again (each one more move in the wheel).
    #[test]
    fn expiry_keeps_up_at_the_peak_new_session_rate() {
        let (opened, late) = simulate_peak(2_000_000, false);
        assert!(opened >= 2_000_000 * 7 / 100, "{opened} sessions");
        assert!(late <= 1, "freed {late} ticks late");
        let (opened, late) = simulate_peak(4_000_000, true);
        assert!(opened >= 2_000_000 * 7 / 100, "{opened} sessions");
        assert!(late <= 1, "freed {late} ticks late");
    }
}
