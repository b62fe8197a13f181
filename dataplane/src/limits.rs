//! The ranges `--check` enforces on the configuration, and why.
//!
//! A value that parses is not yet a value the daemon can run with: a timeout
//! of 0 ends every connection after its handshake, a session count near
//! `u32::MAX` overflows the index arithmetic, a table larger than the machine
//! aborts the allocation at start, a multi-hour idle sleep leaves a worker deaf
//! to SIGTERM. Each limit here is a named constant with its reason; every
//! check names the field and the limit. The same timeout range guards
//! `gwctl --set` at run time ([`timeout_in_range`]).
//!
//! Memory: the bytes a setting implies are computed from the sizes of the
//! structures it allocates (sessions with both hash indexes, counter blocks
//! per worker, mbufs) and compared with the machine's `MemTotal`, so a
//! configuration that cannot fit is refused by `--check` with the field's
//! name, not by an allocation abort at start.

use gw_core::counters::TrafficCells;
use gw_core::session::ipv6::SessionTable6;
use gw_core::session::{SessionTable, TICK_SHIFT};

use crate::config::{
    invalid, Config, ConfigError, DEFAULT_MBUF_SIZE, MAX_MBUF_SIZE, MBUF_HEADROOM, TPACKET_SLACK,
};

/// Longest timeout, in seconds, of any `[timeouts]` value and of `gwctl --set`:
/// 31 days, ipvsadm's own maximum (`--set` and `-p` refuse more). Deadlines
/// are kept as `u32` counts of 64 ms ticks (`gw_core::session`), which wrap
/// after 2^32 * 64 ms (8.7 years); 31 days keeps `now + timeout` far from
/// that. Deadlines past the wheel's 17.5-minute span are re-slotted when
/// their slot fires, so the wheel itself sets no lower bound.
pub const MAX_TIMEOUT_S: u32 = 31 * 86_400;

/// Shortest timeout: 1 s. 0 would expire a session at once (every TCP
/// connection dies after its handshake).
pub const MIN_TIMEOUT_S: u32 = 1;

/// The tick counter's span in milliseconds; [`MAX_TIMEOUT_S`] must stay far
/// below it (checked at compile time).
pub const TICK_SPAN_MS: u64 = (u32::MAX as u64) << TICK_SHIFT;
const _: () = assert!((MAX_TIMEOUT_S as u64) * 1000 * 64 < TICK_SPAN_MS);

/// Most sessions per worker: the index has `sessions.next_power_of_two()`
/// buckets with a `u32` mask and `u32::MAX` means "no session", so 2^31 is
/// the largest table whose arithmetic cannot overflow.
pub const MAX_SESSIONS: usize = 1 << 31;

/// Most services or real servers (`workers.max_services`, `max_dests`): a
/// session holds its service and real-server slots in 16 bits (it stays one
/// 64-byte line), so 2^16.
pub const MAX_SLOTS: usize = 1 << 16;

/// The share of the machine's memory (`MemTotal`, percent) past which the
/// configuration's large allocations are warned about
/// ([`Config::memory_warning`]); past 100 % they are refused.
pub const MEMORY_WARN_PERCENT: u32 = 80;

/// Most mbufs: DPDK sizes the pool's ring to the next power of two above the
/// count, which must fit in 31 bits.
pub const MAX_MBUFS: u32 = 1 << 30;

/// Bytes one mbuf takes besides its packet bytes (`workers.mbuf_size`):
/// the 128-byte headroom and the 128-byte `rte_mbuf` header.
pub const MBUF_OVERHEAD: u64 = (MBUF_HEADROOM + 128) as u64;

/// Most bytes of packet an af_packet ring frame of whole pages can hold
/// with mbufs of at most [`MAX_MBUF_SIZE`]: a 61,440-byte frame less its
/// 66-byte header.
pub const MAX_AF_PACKET: usize = 61_440 - 66;

/// Longest idle sleep of a worker (`workers.idle_sleep_us`): 10 ms. A worker
/// looks at the stop flag and the configuration between polls, so a longer
/// sleep delays SIGTERM, new rules and the first packet after a quiet spell.
pub const MAX_IDLE_SLEEP_US: u64 = 10_000;

/// Most lcores, and one above the largest lcore id: DPDK's
/// `RTE_MAX_LCORE` (128 in the Debian build; gatewayd asserts at compile
/// time that its DPDK agrees). `workers.cores` beyond it names lcores EAL
/// cannot have.
pub const MAX_LCORE: u32 = 128;

/// Longest `neighbours.reachable_s`: one day (it is multiplied into
/// milliseconds; Linux's `base_reachable_time` is 30 s).
pub const MAX_REACHABLE_S: u64 = 86_400;

/// Longest `neighbours.retry_ms`: one minute between ARP probes.
pub const MAX_RETRY_MS: u64 = 60_000;

/// Most neighbour entries per worker and family (an IPv6 table of the same
/// size is allocated when a port is dual-stack).
pub const MAX_NEIGHBOURS: usize = 1 << 20;

/// Most replies per second per worker (`ipvs.reply_rate`): a million,
/// far above Linux's default of 1000 (`icmp_msgs_per_sec`); the bucket's
/// arithmetic (thousandths of a token per millisecond) stays exact below it.
pub const MAX_REPLY_RATE: u32 = 1_000_000;

/// Most replies in one burst (`ipvs.reply_burst`; Linux's default is 50).
pub const MAX_REPLY_BURST: u32 = 1_000_000;

/// Most reassembly slots per worker (`fragments.datagrams`): 4096 slots
/// of 64 KiB are 256 MiB per worker, and the oldest-first eviction scans
/// the slots.
pub const MAX_FRAG_DATAGRAMS: usize = 4096;

/// Longest `fragments.timeout_s`: 10 minutes (the kernel's `ipfrag_time`
/// is 30 s; a longer wait only lets a flood hold the slots longer).
pub const MAX_FRAG_TIMEOUT_S: u64 = 600;

/// Whether `s` seconds is an acceptable timeout.
pub fn timeout_in_range(s: u32) -> bool {
    (MIN_TIMEOUT_S..=MAX_TIMEOUT_S).contains(&s)
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`), if known.
pub fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Bytes of counter blocks one worker keeps for `slots` services or real servers.
pub fn counter_bytes(slots: usize) -> u64 {
    slots as u64 * std::mem::size_of::<TrafficCells>() as u64
}

/// Bytes one worker keeps per real-server slot besides its counters: the
/// FULLNAT next port ([`gw_core::engine::NextPort`]) and the overload flag.
pub fn dest_state_bytes(slots: usize) -> u64 {
    slots as u64 * (std::mem::size_of::<gw_core::engine::NextPort>() + 1) as u64
}

/// Bytes one worker's reassembly table of `datagrams` slots takes.
pub fn frag_bytes(datagrams: usize) -> u64 {
    gw_core::frag::FragConfig { datagrams, timeout_ms: 0 }.memory_bytes() as u64
}

/// How many workers the daemon will run, as far as `--check` can tell:
/// `workers.cores`, or else one per CPU but the main one.
fn workers_estimate(c: &Config) -> u64 {
    if !c.workers.cores.is_empty() {
        return c.workers.cores.len() as u64;
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cpus.max(2) - 1) as u64
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

impl Config {
    /// Range checks of `[timeouts]`, `[workers]`, `[neighbours]` and the reply
    /// rate of `[ipvs]`;
    /// `mem` is the machine's memory in bytes (`None`: not checked).
    pub fn check_limits(&self, mem: Option<u64>) -> Result<(), ConfigError> {
        self.check_timeouts()?;
        let w = &self.workers;
        if w.sessions == 0 || w.sessions > MAX_SESSIONS {
            return Err(invalid("workers.sessions", format!("must be between 1 and {MAX_SESSIONS}")));
        }
        // No IPv6 table would need an "IPv6 off" branch on the IPv6 path:
        // an IPv4-only gateway sets 1 (128 bytes and an empty index).
        if w.sessions6_setting.is_some_and(|n| n == 0 || n > MAX_SESSIONS) {
            return Err(invalid("workers.sessions6", format!("must be between 1 and {MAX_SESSIONS}")));
        }
        if w.cores.len() > MAX_LCORE as usize {
            let msg = format!("{} lcores, at most {MAX_LCORE} (DPDK's RTE_MAX_LCORE)", w.cores.len());
            return Err(invalid("workers.cores", msg));
        }
        if let Some(c) = w.cores.iter().find(|&&c| c >= MAX_LCORE) {
            let msg = format!("lcore {c} is not below {MAX_LCORE} (DPDK's RTE_MAX_LCORE)");
            return Err(invalid("workers.cores", msg));
        }
        if let Some((i, c)) = w.cores.iter().enumerate().find(|(i, c)| w.cores[..*i].contains(c)) {
            return Err(invalid(
                "workers.cores",
                format!("lcore {c} is listed twice (at {i}): one worker per lcore"),
            ));
        }
        for (field, v) in [("workers.max_services", w.max_services), ("workers.max_dests", w.max_dests)] {
            if v == 0 || v > MAX_SLOTS {
                return Err(invalid(field, format!("must be between 1 and {MAX_SLOTS}")));
            }
        }
        if !(1024..=MAX_MBUFS).contains(&w.mbufs) {
            return Err(invalid("workers.mbufs", format!("must be between 1024 and {MAX_MBUFS}")));
        }
        if !(DEFAULT_MBUF_SIZE..=MAX_MBUF_SIZE).contains(&w.mbuf_size) {
            let msg = format!("{} is not within {DEFAULT_MBUF_SIZE}..={MAX_MBUF_SIZE}", w.mbuf_size);
            return Err(invalid("workers.mbuf_size", msg));
        }
        let given = self.largest_given_framesz();
        if given.saturating_sub(TPACKET_SLACK) > MAX_MBUF_SIZE {
            let msg = format!(
                "framesz={given} would need mbufs of {}, above {MAX_MBUF_SIZE} \
                 (af_packet holds at most {MAX_AF_PACKET} bytes of packet)",
                given - TPACKET_SLACK
            );
            return Err(invalid("port.device", msg));
        }
        if self.mbuf_size() > MAX_MBUF_SIZE {
            let msg = format!(
                "{} bytes of af_packet ring frame would need mbufs of {}, above {MAX_MBUF_SIZE} \
                 (af_packet holds at most {MAX_AF_PACKET} bytes of packet)",
                w.mbuf_size,
                self.mbuf_size()
            );
            return Err(invalid("workers.mbuf_size", msg));
        }
        if w.idle_sleep_us > MAX_IDLE_SLEEP_US {
            let msg = format!("{} is above {MAX_IDLE_SLEEP_US} (10 ms)", w.idle_sleep_us);
            return Err(invalid("workers.idle_sleep_us", msg));
        }
        // "sleep" sleeps idle_sleep_us (README, "Idle policy"): a zero sleep
        // is none, a busy poll under another name.
        if w.idle == crate::config::IdlePolicy::Sleep && w.idle_sleep_us == 0 {
            let msg = format!(
                "must be 1..={MAX_IDLE_SLEEP_US} with idle = \"sleep\" (idle = \"busy\" polls without pause)"
            );
            return Err(invalid("workers.idle_sleep_us", msg));
        }
        let n = &self.neighbours;
        if n.capacity == 0 || n.capacity > MAX_NEIGHBOURS {
            return Err(invalid("neighbours.capacity", format!("must be between 1 and {MAX_NEIGHBOURS}")));
        }
        if !(1..=MAX_REACHABLE_S).contains(&n.reachable_s) {
            let msg = format!("must be between 1 and {MAX_REACHABLE_S} seconds");
            return Err(invalid("neighbours.reachable_s", msg));
        }
        if !(1..=MAX_RETRY_MS).contains(&n.retry_ms) {
            let msg = format!("must be between 1 and {MAX_RETRY_MS} milliseconds");
            return Err(invalid("neighbours.retry_ms", msg));
        }
        if n.max_probes == 0 {
            return Err(invalid("neighbours.max_probes", "must be above 0"));
        }
        let ipvs = &self.ipvs;
        if !(1..=MAX_REPLY_RATE).contains(&ipvs.reply_rate) {
            let msg = format!(
                "{} is not within 1..={MAX_REPLY_RATE} replies per second \
                 (no_service_reply = \"none\" and no_session_rst = false turn replies off)",
                ipvs.reply_rate
            );
            return Err(invalid("ipvs.reply_rate", msg));
        }
        if !(1..=MAX_REPLY_BURST).contains(&ipvs.reply_burst) {
            let msg = format!("{} is not within 1..={MAX_REPLY_BURST} replies", ipvs.reply_burst);
            return Err(invalid("ipvs.reply_burst", msg));
        }
        let f = &self.fragments;
        if f.datagrams > MAX_FRAG_DATAGRAMS {
            let msg = format!("{} is above {MAX_FRAG_DATAGRAMS} (0 turns reassembly off)", f.datagrams);
            return Err(invalid("fragments.datagrams", msg));
        }
        if !(1..=MAX_FRAG_TIMEOUT_S).contains(&f.timeout_s) {
            let msg = format!("{} is not within 1..={MAX_FRAG_TIMEOUT_S} seconds", f.timeout_s);
            return Err(invalid("fragments.timeout_s", msg));
        }
        if let Some(mem) = mem {
            self.check_memory(mem)?;
        }
        Ok(())
    }

    /// Every `[timeouts]` value within [`MIN_TIMEOUT_S`]..=[`MAX_TIMEOUT_S`].
    fn check_timeouts(&self) -> Result<(), ConfigError> {
        let t = &self.timeouts;
        let all = [
            ("none", t.none),
            ("established", t.established),
            ("syn_sent", t.syn_sent),
            ("syn_recv", t.syn_recv),
            ("fin_wait", t.fin_wait),
            ("time_wait", t.time_wait),
            ("close", t.close),
            ("close_wait", t.close_wait),
            ("last_ack", t.last_ack),
            ("listen", t.listen),
            ("synack", t.synack),
            ("udp", t.udp),
        ];
        match all.into_iter().find(|&(_, s)| !timeout_in_range(s)) {
            Some((name, s)) => Err(invalid(
                format!("timeouts.{name}"),
                format!("{s} is not within {MIN_TIMEOUT_S}..={MAX_TIMEOUT_S} seconds (31 days)"),
            )),
            None => Ok(()),
        }
    }

    /// How many lblc/lblcr services the control plane accepts at once. Each
    /// worker allocates a cache for each ([`gw_core::sched::locality_cache_bytes`],
    /// 384 KiB), so `workers.max_services` of them could need more than the
    /// machine has (65,536 such services: 24 GiB per worker). They may take
    /// half of the memory [`Config::check_limits`]'s parts leave; never more
    /// than `max_services`, never fewer than 1. `mem`: `MemTotal`, `None` when
    /// unknown (then `max_services`).
    pub fn locality_services(&self, mem: Option<u64>) -> usize {
        let max = self.workers.max_services;
        let Some(mem) = mem else { return max };
        let used: u64 = self.memory_parts().iter().map(|p| p.1).sum();
        let per_service = gw_core::sched::locality_cache_bytes() as u64 * workers_estimate(self);
        let fit = mem.saturating_sub(used) / 2 / per_service.max(1);
        (fit.min(max as u64) as usize).max(1)
    }

    /// The large allocations [`Config::check_memory`] counts, by the key
    /// that sizes them.
    fn memory_parts(&self) -> [(&'static str, u64); 6] {
        let w = &self.workers;
        let workers = workers_estimate(self);
        let v6 = SessionTable6::bytes_for(w.sessions6()) as u64 * workers;
        let (v6_default, v6_set) = if w.sessions6_setting.is_some() { (0, v6) } else { (v6, 0) };
        [
            // The IPv6 table counts under the key that sized it.
            ("workers.sessions", SessionTable::bytes_for(w.sessions) as u64 * workers + v6_default),
            ("workers.sessions6", v6_set),
            (
                "workers.max_dests",
                (counter_bytes(w.max_dests) + dest_state_bytes(w.max_dests)) * workers
                    + w.max_dests as u64 * 8,
            ),
            ("workers.max_services", counter_bytes(w.max_services) * workers),
            ("workers.mbufs", u64::from(w.mbufs) * (self.mbuf_size() as u64 + MBUF_OVERHEAD)),
            ("fragments.datagrams", frag_bytes(self.fragments.datagrams) * workers),
        ]
    }

    /// A warning when the large allocations `check_memory` counts together take
    /// more than [`MEMORY_WARN_PERCENT`] of the machine's memory `mem`
    /// (`MemTotal`, `None`: unknown): allowed, but the kernel, DPDK's own
    /// allocations, the control plane and the health checks share the
    /// rest, and a host that swaps or meets the OOM killer drops traffic.
    pub fn memory_warning(&self, mem: Option<u64>) -> Option<String> {
        let mem = mem?;
        let total: u64 = self.memory_parts().iter().map(|p| p.1).sum();
        let percent = total as u128 * 100 / u128::from(mem.max(1));
        (percent > u128::from(MEMORY_WARN_PERCENT)).then(|| {
            format!(
                "sessions, counters, mbufs and reassembly need {} with {} worker(s), {percent} % of the \
                 machine's memory ({}, MemTotal); above {MEMORY_WARN_PERCENT} % the kernel and the rest \
                 of gatewayd may run short",
                gib(total),
                workers_estimate(self),
                gib(mem)
            )
        })
    }

    /// Each large allocation, and their sum, below the machine's memory.
    fn check_memory(&self, mem: u64) -> Result<(), ConfigError> {
        let workers = workers_estimate(self);
        let parts = self.memory_parts();
        let limit = format!("the machine's memory ({}, MemTotal)", gib(mem));
        for (field, bytes) in parts {
            if bytes > mem {
                let msg = format!("needs {} with {workers} worker(s), above {limit}", gib(bytes));
                return Err(invalid(field, msg));
            }
        }
        let total: u64 = parts.iter().map(|p| p.1).sum();
        if total > mem {
            let msg = format!(
                "sessions, counters, mbufs and reassembly together need {} with {workers} worker(s), above {limit}",
                gib(total)
            );
            return Err(invalid("workers", msg));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A config with `workers` keys added to `[workers]` and `rest` after it.
    fn config_with(workers: &str, rest: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n\
             [workers]\ncores = [1]\n{workers}\n{rest}"
        );
        Config::parse(&text, Path::new("test.toml"))
    }

    fn config(rest: &str) -> Result<Config, ConfigError> {
        config_with("sessions = 1000", rest)
    }

    /// `--check`'s message for a config with `rest` added.
    fn refusal(rest: &str) -> String {
        config(rest).expect_err(rest).to_string()
    }

    fn workers_refusal(workers: &str) -> String {
        config_with(workers, "").expect_err(workers).to_string()
    }

    #[test]
    fn more_lcores_than_dpdk_has_are_refused_before_their_memory() {
        let cores = |list: &str| {
            Config::parse(
                &format!("[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n[workers]\ncores = [{list}]\n"),
                Path::new("test.toml"),
            )
            .expect_err(list)
            .to_string()
        };
        let all: Vec<String> = (1..=1000).map(|c| c.to_string()).collect();
        assert_eq!(cores(&all.join(", ")), "workers.cores: 1000 lcores, at most 128 (DPDK's RTE_MAX_LCORE)");
        assert_eq!(
            cores("1, 4294967295"),
            "workers.cores: lcore 4294967295 is not below 128 (DPDK's RTE_MAX_LCORE)"
        );
        assert_eq!(cores("128"), "workers.cores: lcore 128 is not below 128 (DPDK's RTE_MAX_LCORE)");
        let top = "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n\
                   [workers]\ncores = [127]\nsessions = 1000\n";
        assert_eq!(Config::parse(top, Path::new("test.toml")).unwrap().workers.cores, [127]);
    }

    #[test]
    fn an_lcore_listed_twice_is_refused() {
        let e = Config::parse(
            "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n[workers]\ncores = [1, 2, 1]\n",
            Path::new("test.toml"),
        )
        .expect_err("duplicate");
        assert_eq!(e.to_string(), "workers.cores: lcore 1 is listed twice (at 2): one worker per lcore");
    }

    #[test]
    fn lblc_services_take_at_most_half_the_memory_the_tables_leave() {
        let c = config("").unwrap();
        assert_eq!(c.workers.max_services, 4096);
        let per = gw_core::sched::locality_cache_bytes() as u64;
        assert!((96 << 10..=512 << 10).contains(&per), "{per}");
        let used: u64 = c.memory_parts().iter().map(|p| p.1).sum();
        assert_eq!(c.locality_services(None), 4096);
        assert_eq!(c.locality_services(Some(used + 2 * 10 * per + 1)), 10);
        assert_eq!(c.locality_services(Some(1 << 50)), 4096);
        assert_eq!(c.locality_services(Some(0)), 1);
    }

    #[test]
    fn every_timeout_is_refused_at_zero_and_past_the_horizon() {
        for name in [
            "none",
            "established",
            "syn_sent",
            "syn_recv",
            "fin_wait",
            "time_wait",
            "close",
            "close_wait",
            "last_ack",
            "listen",
            "synack",
            "udp",
        ] {
            let e = refusal(&format!("[timeouts]\n{name} = 0"));
            assert!(e.starts_with(&format!("timeouts.{name}: 0 is not within 1..=2678400")), "{e}");
            let e = refusal(&format!("[timeouts]\n{name} = 2678401"));
            assert!(e.starts_with(&format!("timeouts.{name}: 2678401 is not within")), "{e}");
            let e = refusal(&format!("[timeouts]\n{name} = 4294967295"));
            assert!(e.starts_with(&format!("timeouts.{name}: ")), "{e}");
            config(&format!("[timeouts]\n{name} = 2678400")).unwrap();
        }
    }

    #[test]
    fn sizes_that_overflow_are_refused_with_the_field() {
        let e = workers_refusal("sessions = 4294967294");
        assert_eq!(e, "workers.sessions: must be between 1 and 2147483648");
        assert!(workers_refusal("sessions = 0").starts_with("workers.sessions: "));
        let e = workers_refusal("sessions6 = 0");
        assert_eq!(e, "workers.sessions6: must be between 1 and 2147483648");
        let e = workers_refusal("sessions6 = 4294967294");
        assert_eq!(e, "workers.sessions6: must be between 1 and 2147483648");
        let e = workers_refusal("max_dests = 1099511627776");
        assert_eq!(e, "workers.max_dests: must be between 1 and 65536");
        let e = workers_refusal("max_services = 9223372036854775807");
        assert_eq!(e, "workers.max_services: must be between 1 and 65536");
        assert!(workers_refusal("max_services = 0").starts_with("workers.max_services: "));
        assert!(workers_refusal("mbufs = 4294967295").starts_with("workers.mbufs: must be between 1024"));
    }

    #[test]
    fn sizes_beyond_the_machines_memory_are_refused_with_the_field_and_the_limit() {
        const GIB: u64 = 1 << 30;
        let ok = config_with("sessions = 1000000", "").unwrap();
        ok.check_limits(Some(GIB)).unwrap();
        let big = config_with("sessions = 16777216", "").unwrap();
        let e = big.check_limits(Some(GIB)).unwrap_err().to_string();
        // 1.5 GiB of IPv4 sessions (1 GiB of entries, two 256 MiB indexes of
        // 64-byte buckets) and 0.6 GiB of IPv6 ones (a quarter as many).
        assert_eq!(
            e,
            "workers.sessions: needs 2.1 GiB with 1 worker(s), above the machine's memory (1.0 GiB, MemTotal)"
        );
        // Set, the IPv6 table counts under its own key.
        let e = config_with("sessions = 1000000\nsessions6 = 16777216", "").unwrap();
        let e = e.check_limits(Some(GIB)).unwrap_err().to_string();
        assert_eq!(
            e,
            "workers.sessions6: needs 2.5 GiB with 1 worker(s), above the machine's memory (1.0 GiB, MemTotal)"
        );
        config_with("sessions = 16777216\nsessions6 = 1", "").unwrap().check_limits(Some(2 * GIB)).unwrap();
        let four = Config::parse(
            "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n\
             [workers]\ncores = [1, 2, 3, 4]\nsessions = 1000\nmax_dests = 65536\n",
            Path::new("test.toml"),
        )
        .unwrap();
        let e = four.check_limits(Some(8 << 20)).unwrap_err().to_string();
        assert!(e.starts_with("workers.max_dests: needs ") && e.contains(" with 4 worker(s), above"), "{e}");
        let e = config_with("sessions = 1000\nmbufs = 1073741824", "").unwrap_err().to_string();
        assert!(
            e.starts_with("workers.mbufs: needs 2304.0 GiB with 1 worker(s), above the machine's"),
            "{e}"
        );
        // Each part fits, their sum does not.
        let sum = config_with("sessions = 6000000\nmbufs = 250000", "").unwrap();
        let e = sum.check_limits(Some(GIB)).unwrap_err().to_string();
        assert!(e.starts_with("workers: sessions, counters, mbufs and reassembly together need"), "{e}");
    }

    #[test]
    fn sizes_near_the_machines_memory_are_allowed_with_a_warning() {
        const GIB: u64 = 1 << 30;
        // 2.2 GiB in all (2.1 GiB of sessions, the test above) on 2.5 GiB:
        // allowed, 87 %.
        let big = config_with("sessions = 16777216", "").unwrap();
        let mem = 5 * GIB / 2;
        big.check_limits(Some(mem)).unwrap();
        let w = big.memory_warning(Some(mem)).expect("a warning above 80 %");
        assert!(
            w.starts_with("sessions, counters, mbufs and reassembly need 2.2 GiB with 1 worker(s), 87 %"),
            "{w}"
        );
        assert!(w.contains(" % of the machine's memory (2.5 GiB, MemTotal); above 80 %"), "{w}");
        assert_eq!(big.memory_warning(Some(4 * GIB)), None, "half of it");
        assert_eq!(big.memory_warning(None), None, "unknown memory");
    }

    #[test]
    fn reassembly_limits_name_their_field() {
        let e = refusal("[fragments]\ndatagrams = 5000");
        assert_eq!(e, "fragments.datagrams: 5000 is above 4096 (0 turns reassembly off)");
        let e = refusal("[fragments]\ntimeout_s = 0");
        assert_eq!(e, "fragments.timeout_s: 0 is not within 1..=600 seconds");
        config("[fragments]\ndatagrams = 0\ntimeout_s = 600").unwrap();
        let c = config("[fragments]\ndatagrams = 4096").unwrap();
        let e = c.check_limits(Some(1 << 28)).unwrap_err().to_string();
        assert!(e.starts_with("fragments.datagrams: needs 0.3 GiB with 1 worker(s)"), "{e}");
    }

    #[test]
    fn sleeps_and_neighbour_times_are_bounded() {
        let e = refusal("idle_sleep_us = 3600000000");
        assert_eq!(e, "workers.idle_sleep_us: 3600000000 is above 10000 (10 ms)");
        config("idle_sleep_us = 10000").unwrap();
        // "sleep" with no sleep would poll without pause.
        let e = refusal("idle_sleep_us = 0");
        assert_eq!(
            e,
            "workers.idle_sleep_us: must be 1..=10000 with idle = \"sleep\" (idle = \"busy\" polls without pause)"
        );
        config("idle_sleep_us = 0\nidle = \"busy\"").unwrap();
        config("idle_sleep_us = 1").unwrap();
        let e = refusal("[neighbours]\nreachable_s = 9223372036854775807");
        assert_eq!(e, "neighbours.reachable_s: must be between 1 and 86400 seconds");
        assert!(refusal("[neighbours]\nreachable_s = 0").starts_with("neighbours.reachable_s: "));
        assert!(refusal("[neighbours]\nretry_ms = 0").starts_with("neighbours.retry_ms: "));
        assert!(refusal("[neighbours]\nretry_ms = 86400000").starts_with("neighbours.retry_ms: "));
        assert!(refusal("[neighbours]\nmax_probes = 0").starts_with("neighbours.max_probes: "));
        assert!(refusal("[neighbours]\ncapacity = 4294967296").starts_with("neighbours.capacity: "));
    }

    #[test]
    fn the_reply_rate_and_burst_are_bounded() {
        let e = refusal("[ipvs]\nreply_rate = 0");
        assert!(e.starts_with("ipvs.reply_rate: 0 is not within 1..=1000000 replies per second"), "{e}");
        let e = refusal("[ipvs]\nreply_rate = 1000001");
        assert!(e.starts_with("ipvs.reply_rate: 1000001 is not within"), "{e}");
        assert!(refusal("[ipvs]\nreply_rate = 4294967296").contains("reply_rate"));
        let e = refusal("[ipvs]\nreply_burst = 0");
        assert_eq!(e, "ipvs.reply_burst: 0 is not within 1..=1000000 replies");
        let c = config("[ipvs]\nreply_rate = 1000000\nreply_burst = 1000000\nno_service_reply = \"rst\"")
            .unwrap();
        let r = c.ipvs.reject();
        assert_eq!(
            (r.rate, r.burst, r.no_service),
            (1_000_000, 1_000_000, gw_core::engine::NoServiceReply::Rst)
        );
        let e = refusal("[ipvs]\nno_service_reply = \"tcp\"");
        assert!(e.contains("no_service_reply") || e.contains("unknown variant"), "{e}");
        let d = config("").unwrap().ipvs.reject();
        assert_eq!(d, gw_core::engine::RejectConfig::default());
        assert_eq!((d.rate, d.burst, d.no_session_rst), (1000, 50, true), "Linux's icmp_msgs_per_sec/burst");
    }
}
