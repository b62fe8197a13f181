//! One result row per scenario, and the markdown table made of them.

use serde::{Deserialize, Serialize};

use super::hist::Latency;

/// The figures of one scenario run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Short id, e.g. `fullnat-udp-1k`.
    pub id: String,
    /// What ran, e.g. `FULLNAT UDP 64 B established`.
    pub scenario: String,
    /// Device under test: `gatewayd`, `testpmd macswap`.
    pub dut: String,
    pub workers: u32,
    /// Concurrent client flows (sessions) during the measurement.
    pub flows: u64,
    /// Frame sizes in bytes (without FCS).
    pub frames: String,
    /// Packets forwarded per second through the device, both directions, in
    /// millions: the median over the measurement's sub-windows.
    pub mpps: f64,
    /// Smallest and largest sub-window figure of `mpps`.
    pub mpps_range: Option<(f64, f64)>,
    /// gatewayd's own TSC cycles per received packet (busy cycles / rx
    /// packets), median over the sub-windows; or testpmd's
    /// `--record-core-cycles` figure for its whole run.
    pub cycles_per_packet: Option<f64>,
    /// Smallest and largest sub-window figure of `cycles_per_packet`.
    pub cycles_range: Option<(f64, f64)>,
    /// gatewayd's busy cycles / rx packets over warm-up, measurement and
    /// half load together: the scope of testpmd's `--record-core-cycles`
    /// figure (its whole run, half load included, where smaller bursts
    /// cost more per packet), so the ratios to testpmd compare like with
    /// like.
    #[serde(default)]
    pub cycles_testpmd_scope: Option<f64>,
    /// gatewayd's `burst_cycles` / rx packets over the same phases: its
    /// cycles counted as testpmd's `--record-core-cycles` counts its own
    /// (each rx burst that received packets, from the rx call to the end
    /// of its TX; empty polls and the poll's other work left out). The
    /// ratios to testpmd use it when present.
    #[serde(default)]
    pub cycles_testpmd_accounting: Option<f64>,
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// `mpps / testpmd's mpps` on the same link and frame sizes.
    pub vs_testpmd_mpps: Option<f64>,
    /// `cycles_per_packet / testpmd's` (the goal is at most 2).
    pub vs_testpmd_cycles: Option<f64>,
    /// Packets lost after the link took them, in percent.
    pub drop_pct: f64,
    /// Packets gatewayd counted as dropped (all reasons).
    pub gw_drops: u64,
    /// gatewayd's non-zero drop counters over the measurement, by name.
    #[serde(default)]
    pub gw_drop_reasons: std::collections::BTreeMap<String, u64>,
    /// Latency with the generator sending as fast as it can (queues full).
    pub latency_max_load: Latency,
    /// Latency at half the measured rate.
    pub latency_half_load: Option<Latency>,
    /// p99 at half load / testpmd's p99 at half load on the same link and
    /// frame sizes (the goal is at most 2).
    #[serde(default)]
    pub vs_testpmd_p99_half: Option<f64>,
    /// Share of the measurement the DUT's workers were busy, in percent
    /// (gatewayd): near 100 at saturation.
    #[serde(default)]
    pub dut_busy_pct: Option<f64>,
    /// Times the scenario ran again because the DUT was not saturated
    /// (the generator was slow); the row is the most saturated run.
    #[serde(default)]
    pub repeats: u32,
    /// Sessions created per second (new-flow scenarios).
    pub new_sessions_per_s: Option<f64>,
    /// Sessions live at the end of the measurement (gatewayd's gauge).
    pub sessions_live: Option<u64>,
    /// Session-table bytes / capacity (gatewayd's own accounting).
    pub bytes_per_session: Option<f64>,
    /// Resident set size of the device-under-test process, MiB.
    pub rss_mib: Option<f64>,
    /// Times per second the DUT's busy-polling worker was preempted
    /// (involuntary context switches): how much the machine interfered.
    pub dut_preemptions_per_s: Option<f64>,
    /// Percent of the machine's CPU time other processes used during the run.
    pub others_cpu_pct: Option<f64>,
    /// Percent of the DUT's CPU time the hypervisor stole during the run.
    #[serde(default)]
    pub steal_pct: Option<f64>,
    /// A cache line's round trip between the generator's CPU and the
    /// DUT's, in TSC cycles, measured right before and right after the
    /// scenario (the machine's level: `gw-benchrun`'s `cpulink`).
    #[serde(default)]
    pub cpu_link_rtt: Option<(f64, f64)>,
    /// The testpmd row the ratios to testpmd divide by ran at this row's
    /// CPU link level (`None`: no ratio, or levels not measured).
    #[serde(default)]
    pub vs_testpmd_same_level: Option<bool>,
    /// Anything a reader must know about this row.
    pub note: String,
}

/// Below this CPU link round trip (TSC cycles) the host had the
/// generator's and the DUT's vCPUs near each other (measured on this VM:
/// 120-330 near, 870-1070 far, switching every few tens of seconds;
/// `gw-benchrun`'s `cpulink.rs`).
pub const NEAR_LINK_CYCLES: f64 = 500.0;

/// Where the host had the generator's and the DUT's vCPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Near,
    Far,
}

/// The level of a run whose link probes read `rtt` (before, after): both
/// on the same side of [`NEAR_LINK_CYCLES`]; `None` when it changed during
/// the run or was not measured.
pub fn level(rtt: Option<(f64, f64)>) -> Option<Level> {
    let (before, after) = rtt?;
    match (before < NEAR_LINK_CYCLES, after < NEAR_LINK_CYCLES) {
        (true, true) => Some(Level::Near),
        (false, false) => Some(Level::Far),
        _ => None,
    }
}

/// Above this share of the machine's CPU time used by other processes, a
/// row ran on a shared machine: its figures are depressed.
pub const NOISY_OTHERS_PCT: f64 = 10.0;
/// Above this share of the DUT's CPU stolen by the hypervisor, likewise.
pub const NOISY_STEAL_PCT: f64 = 2.0;

impl Row {
    /// gatewayd's cycles/packet to hold against testpmd's
    /// `--record-core-cycles` figure: counted as testpmd counts
    /// (`cycles_testpmd_accounting`) when the run recorded it, else over
    /// the same phases (`cycles_testpmd_scope`), else the measurement's.
    pub fn testpmd_comparable_cycles(&self) -> Option<f64> {
        self.cycles_testpmd_accounting.or(self.cycles_testpmd_scope).or(self.cycles_per_packet)
    }

    /// Whether the machine was busy with something else during the row
    /// (other processes or the hypervisor): shown in bold in the table.
    pub fn noisy(&self) -> bool {
        self.others_cpu_pct.is_some_and(|o| o > NOISY_OTHERS_PCT)
            || self.steal_pct.is_some_and(|s| s > NOISY_STEAL_PCT)
    }

    /// The CPU link's level over the whole row ([`level`]).
    pub fn level(&self) -> Option<Level> {
        level(self.cpu_link_rtt)
    }

    /// Packets per second one core could forward at the measured cycles per
    /// packet: `tsc_hz / cycles_per_packet`, in millions.
    pub fn capacity_mpps(&self) -> Option<f64> {
        self.cycles_per_packet.filter(|c| *c > 0.0).map(|c| self.tsc_hz as f64 / c / 1e6)
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.prec$}"))
}

fn lat(l: Option<&Latency>) -> String {
    match l {
        Some(l) if l.samples > 0 => format!("{} / {}", opt(l.p50_us, 1), opt(l.p99_us, 1)),
        _ => "–".to_string(),
    }
}

/// `v (lo–hi)`, or just `v` without a range or when it is narrow (< 10 %).
fn with_range(v: Option<f64>, range: Option<(f64, f64)>, prec: usize) -> String {
    match (v, range) {
        (Some(v), Some((lo, hi))) if v > 0.0 && (hi - lo) / v >= 0.10 => {
            format!("{v:.prec$} ({lo:.prec$}–{hi:.prec$})")
        }
        (v, _) => opt(v, prec),
    }
}

/// `others / steal`, in bold when the row was noisy.
fn machine(r: &Row) -> String {
    if r.others_cpu_pct.is_none() && r.steal_pct.is_none() {
        return "–".to_string();
    }
    let m = format!("{} / {}", opt(r.others_cpu_pct, 0), opt(r.steal_pct, 1));
    if r.noisy() {
        format!("**{m}**")
    } else {
        m
    }
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The results as a markdown table, one line per row, in order.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str(
        "| scenario | DUT | flows | frame B | Mpps fwd (range) | cycles/pkt (range) | Mpps/core from cycles | vs testpmd Mpps | vs testpmd cycles | drop % | new sess/s | lat p50/p99 µs, half load | p99 half load vs testpmd | lat p50/p99 µs, max load | B/session | sessions live | RSS MiB | others' CPU / steal % | CPU link round trip, cycles before / after |\n",
    );
    s.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows {
        let dut = if r.workers > 1 { format!("{} ({} workers)", r.dut, r.workers) } else { r.dut.clone() };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            dut,
            count(r.flows),
            r.frames,
            with_range(Some(r.mpps), r.mpps_range, 2),
            with_range(r.cycles_per_packet, r.cycles_range, 0),
            opt(r.capacity_mpps(), 2),
            opt(r.vs_testpmd_mpps, 2),
            opt(r.vs_testpmd_cycles, 2),
            r.drop_pct,
            r.new_sessions_per_s.map_or_else(|| "–".to_string(), |v| format!("{:.0}k", v / 1e3)),
            lat(r.latency_half_load.as_ref()),
            opt(r.vs_testpmd_p99_half, 2),
            lat(Some(&r.latency_max_load)),
            opt(r.bytes_per_session, 0),
            r.sessions_live.map_or_else(|| "–".to_string(), count),
            opt(r.rss_mib, 0),
            machine(r),
            r.cpu_link_rtt.map_or_else(|| "–".to_string(), |(a, b)| format!("{a:.0} / {b:.0}")),
        ));
    }
    let notes: Vec<_> = rows.iter().filter(|r| !r.note.is_empty()).collect();
    if !notes.is_empty() {
        s.push('\n');
        for r in notes {
            s.push_str(&format!("- `{}`: {}\n", r.id, r.note));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_render_with_dashes_for_missing_figures() {
        let r = Row {
            id: "fullnat-udp-1k".into(),
            scenario: "FULLNAT UDP".into(),
            dut: "gatewayd".into(),
            workers: 1,
            flows: 1000,
            frames: "64".into(),
            mpps: 3.456,
            cycles_per_packet: Some(260.0),
            tsc_hz: 2_600_000_000,
            latency_max_load: Latency {
                samples: 5,
                p50_us: Some(10.0),
                p99_us: Some(40.25),
                ..Latency::default()
            },
            note: "oversubscribed".into(),
            ..Row::default()
        };
        assert_eq!(r.capacity_mpps(), Some(10.0));
        let t = markdown(&[r]);
        let line = t.lines().nth(2).unwrap();
        assert!(line.starts_with("| FULLNAT UDP | gatewayd | 1k | 64 | 3.46 | 260 | 10.00 | – |"), "{line}");
        assert_eq!(with_range(Some(300.0), Some((290.0, 310.0)), 0), "300");
        assert_eq!(with_range(Some(300.0), Some((290.0, 600.0)), 0), "300 (290–600)");
        assert!(line.contains("| 10.0 / 40.2 |") || line.contains("| 10.0 / 40.3 |"), "{line}");
        assert!(t.contains("- `fullnat-udp-1k`: oversubscribed"));
        assert!(line.ends_with("| – |"), "{line}");
        let quiet = Row { others_cpu_pct: Some(3.2), steal_pct: Some(0.04), ..Row::default() };
        assert!(!quiet.noisy());
        assert_eq!(machine(&quiet), "3 / 0.0");
        let stolen = Row { steal_pct: Some(2.5), ..quiet.clone() };
        assert!(stolen.noisy());
        assert_eq!(machine(&stolen), "**3 / 2.5**");
        let shared = Row { others_cpu_pct: Some(71.0), steal_pct: None, ..Row::default() };
        assert_eq!(machine(&shared), "**71 / –**");
        assert_eq!(count(10_000_000), "10M");
        assert_eq!(count(100_000), "100k");
        assert_eq!(count(1234), "1234");
    }
}
