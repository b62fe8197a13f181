//! Statistics and rates: counters summed over workers, `-Z` bases,
//! IPVS's rate estimator, and the DPDK port statistics.
//!
//! Workers only add to their own counter blocks; everything here reads them.
//! A service's or real server's statistics are the sum over workers minus the
//! base recorded at its last `-Z` (or when its slot was handed out), with
//! wrapping arithmetic, so a reused slot starts from zero without the workers
//! being told. Rates are estimated every [`RATE_PERIOD`] on the control thread
//! ([`Control::tick`]), never on a worker's core. The ports' statistics
//! (`rte_eth_stats`: what the NIC or the kernel dropped before a worker saw
//! it) are read every [`PORT_STATS_PERIOD`] on the same thread, through the
//! reader gatewayd installs ([`Control::with_port_stats`]); `--counters`
//! shows the last read.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use gw_proto::{PortCounters, Rates, Stats};

use super::model::Model;
use super::Control;

/// IPVS's rate estimator for one service or server: every [`RATE_PERIOD`]
/// the rate over the period is folded into a moving average with weight
/// 1/4 (`avg += (rate - avg) / 4`, as `ip_vs_estimator.c`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RateEst {
    pub(super) last: Stats,
    pub(super) avg: [f64; 5],
}

/// How often rates are estimated (IPVS: 2 s).
pub const RATE_PERIOD: Duration = Duration::from_secs(2);

impl RateEst {
    pub(super) fn update(&mut self, now: Stats, secs: f64) {
        let d = sub(now, self.last);
        // InBPS/OutBPS are bytes per second, as IPVS's `inbps`/`outbps` and
        // ipvsadm(8) report them (ip_vs_estimator.c scales bytes, never bits).
        let rates = [d.conns, d.inpkts, d.outpkts, d.inbytes, d.outbytes];
        for (avg, r) in self.avg.iter_mut().zip(rates) {
            *avg += (r as f64 / secs - *avg) / 4.0;
        }
        self.last = now;
    }
    pub(super) fn rates(&self) -> Rates {
        let r = |i: usize| self.avg[i].round().max(0.0) as u64;
        Rates { cps: r(0), inpps: r(1), outpps: r(2), inbps: r(3), outbps: r(4) }
    }
}

/// How often the control plane reads the ports' statistics.
pub const PORT_STATS_PERIOD: Duration = Duration::from_secs(1);

/// How old a reading `--counters` still shows as it is; older, it reads the
/// ports again first.
pub const FRESH_PORT_STATS: Duration = Duration::from_millis(100);

/// Reads every port's statistics (gatewayd's is `ports::PortStatsReader`).
/// Called on the control thread only, never on a worker's.
pub type PortReader = Box<dyn Fn() -> Vec<PortCounters> + Send + Sync>;

/// The port reader and its last reading.
#[derive(Default)]
pub(super) struct PortStats {
    pub(super) reader: Option<PortReader>,
    /// When the ports were last read, and what was read.
    last: Mutex<(Option<Instant>, Vec<PortCounters>)>,
}

/// `a - b` field by field, wrapping (counters are read relative to a base).
pub(super) fn sub(a: Stats, b: Stats) -> Stats {
    Stats {
        conns: a.conns.wrapping_sub(b.conns),
        inpkts: a.inpkts.wrapping_sub(b.inpkts),
        outpkts: a.outpkts.wrapping_sub(b.outpkts),
        inbytes: a.inbytes.wrapping_sub(b.inbytes),
        outbytes: a.outbytes.wrapping_sub(b.outbytes),
    }
}

impl Control {
    pub(super) fn dest_stats(&self, slot: u32) -> (Stats, u64, u64) {
        let mut st = Stats::default();
        let (mut act, mut inact) = (0u64, 0u64);
        for w in &self.workers {
            let c = &w.dests[slot as usize];
            st += c.read();
            act = act.wrapping_add(c.active.get());
            inact = inact.wrapping_add(c.inactive.get());
        }
        (st, act, inact)
    }

    /// Persistence templates pointing at a real server, over workers.
    pub(super) fn dest_persist(&self, slot: u32) -> u64 {
        self.workers.iter().map(|w| w.dests[slot as usize].persist.get()).fold(0, u64::wrapping_add)
    }

    pub(super) fn svc_stats(&self, slot: u32) -> Stats {
        let mut st = Stats::default();
        for w in &self.workers {
            st += w.services[slot as usize].read();
        }
        st
    }

    /// Lowest generation any worker runs.
    pub(super) fn min_worker_generation(&self) -> u64 {
        self.workers.iter().map(|w| w.generation.get()).min().unwrap_or(u64::MAX)
    }

    /// Every [`RATE_PERIOD`], folds the rates of every service and real server
    /// into their estimators; called from [`Control::tick`] with the model locked.
    pub(super) fn estimate(&self, m: &mut Model, now: Instant) {
        let secs = match m.last_estimate {
            None => {
                m.last_estimate = Some(now);
                return;
            }
            Some(t) if now.duration_since(t) < RATE_PERIOD => return,
            Some(t) => now.duration_since(t).as_secs_f64(),
        };
        m.last_estimate = Some(now);
        // Trashed entries too: re-added, their rates continue.
        let slots: Vec<(bool, u32)> = m
            .services
            .values()
            .flat_map(|s| std::iter::once((false, s.slot)).chain(s.dests.iter().map(|d| (true, d.slot))))
            .chain(m.trash.services.values().map(|t| (false, t.entry.slot)))
            .chain(m.trash.dests.values().map(|t| (true, t.entry.slot)))
            .collect();
        for (is_dest, slot) in slots {
            let cur = if is_dest { self.dest_stats(slot).0 } else { self.svc_stats(slot) };
            m.rates
                .entry((is_dest, slot))
                .or_insert_with(|| RateEst { last: cur, avg: [0.0; 5] })
                .update(cur, secs);
        }
    }

    /// Every [`PORT_STATS_PERIOD`], reads the ports' statistics; called from
    /// [`Control::tick`] (without the model's lock: reading may take a
    /// system call per port).
    pub(super) fn read_ports(&self, now: Instant) {
        self.read_ports_older_than(now, PORT_STATS_PERIOD);
    }

    /// Reads the ports' statistics unless the last reading is younger than
    /// `max_age` (`--counters` asks for a fresh one, bounded by
    /// [`FRESH_PORT_STATS`] so that a client polling fast costs little).
    pub(super) fn read_ports_older_than(&self, now: Instant, max_age: Duration) {
        let Some(reader) = &self.ports.reader else { return };
        let mut last = self.ports.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.0.is_some_and(|t| now.duration_since(t) < max_age) {
            return;
        }
        *last = (Some(now), reader());
    }

    /// The ports' statistics as last read.
    pub(super) fn port_counters(&self) -> Vec<PortCounters> {
        self.ports.last.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    pub(super) fn rates_of(m: &Model, is_dest: bool, slot: u32) -> Rates {
        m.rates.get(&(is_dest, slot)).map(RateEst::rates).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use crate::control::test_util::{add, control};
    use gw_proto::{Request, Response, Stats};

    use super::RateEst;

    #[test]
    fn port_statistics_are_read_on_the_tick_every_period_and_when_a_query_finds_them_stale() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        use std::time::{Duration, Instant};

        use gw_proto::{Counter, PortCounters};

        let reads = Arc::new(AtomicU64::new(0));
        let (c, _) = control(1);
        let c = c.with_port_stats({
            let reads = reads.clone();
            move || {
                let n = reads.fetch_add(1, Ordering::Relaxed) + 1;
                vec![PortCounters {
                    name: "outside".into(),
                    port: 0,
                    counters: vec![Counter { name: "imissed".into(), value: n * 10 }],
                }]
            }
        });
        let ports = |c: &crate::control::Control| match c.query(Request::Counters) {
            Response::Counters { ports, .. } => ports,
            other => panic!("{other:?}"),
        };
        // A query reads the ports when the last reading is stale (none yet).
        assert_eq!(ports(&c)[0].counters[0].value, 10);
        assert_eq!(reads.load(Ordering::Relaxed), 1);
        // The tick reads every period. (Its times lie an hour ahead, so the
        // queries below find each reading fresh and read nothing more.)
        let t0 = Instant::now() + Duration::from_secs(3600);
        c.tick(t0);
        assert_eq!(ports(&c)[0].counters[0].value, 20);
        // Within the period: no new read, the query shows the last one.
        c.tick(t0 + super::PORT_STATS_PERIOD / 2);
        assert_eq!(reads.load(Ordering::Relaxed), 2);
        assert_eq!(ports(&c)[0].name, "outside");
        c.tick(t0 + super::PORT_STATS_PERIOD + Duration::from_millis(1));
        assert_eq!(ports(&c)[0].counters[0].value, 30);
        assert_eq!(reads.load(Ordering::Relaxed), 3);
        // A control plane without ports (tests, no DPDK) shows none.
        let (bare, _) = control(1);
        bare.tick(t0);
        assert!(ports(&bare).is_empty());
    }

    #[test]
    fn byte_rates_are_bytes_per_second() {
        // 4 conns, 40 packets and 4000 bytes in 2 s, folded in until steady.
        let mut est = RateEst::default();
        let mut now = Stats::default();
        for _ in 0..200 {
            now.conns += 4;
            now.inpkts += 40;
            now.outpkts += 20;
            now.inbytes += 4000;
            now.outbytes += 1000;
            est.update(now, 2.0);
        }
        let r = est.rates();
        assert_eq!((r.cps, r.inpps, r.outpps, r.inbps, r.outbps), (2, 20, 10, 2000, 500));
    }

    #[test]
    fn listing_sums_workers_and_zero_resets() {
        let (c, _) = control(2);
        add(&c);
        c.workers[0].dests[0].inpkts.add(3);
        c.workers[1].dests[0].inpkts.add(4);
        c.workers[1].dests[0].active.add(2);
        let Response::Services { services, conn_table_size } = c.query(Request::List { service: None })
        else {
            panic!()
        };
        assert_eq!(conn_table_size, 1000);
        assert_eq!(services[0].dests[0].stats.inpkts, 7);
        assert_eq!(services[0].dests[0].active_conns, 2);
        assert_eq!(c.query(Request::Zero { service: None }), Response::Ok);
        let Response::Services { services, .. } = c.query(Request::List { service: None }) else { panic!() };
        assert_eq!(services[0].dests[0].stats.inpkts, 0);
        assert_eq!(services[0].dests[0].active_conns, 2);
    }
}
