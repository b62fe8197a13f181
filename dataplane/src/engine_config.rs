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

/// Most sessions one expiry pass examines (`EngineConfig::expire_budget`).
/// Expiry runs once per poll, between bursts: the bound keeps that pass to a
/// few microseconds, so a burst of timeouts cannot stall forwarding, while
/// 4096 per poll still clears a full table far faster than sessions time out.
pub const EXPIRE_BUDGET: usize = 4096;

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
}
