//! `--alternate issue17 --pairs N`: issue 17's IPv6/IPv4 cycles ratios with
//! both sides in one process and one moment.
//!
//! `--ratio` runs each side as its own gatewayd, seconds apart, and on this
//! VM a process's cycles per packet sit at one of two levels about 2x apart
//! (docs/benchmarks.md, "Alternating phases"): its per-round ratios spread
//! over 0.5-3x. Here one gatewayd serves the IPv4 FULLNAT services of
//! `conf/bench-fullnat.toml` and the IPv6 services of the IPv6 row's config
//! (FULLNAT66 or NAT64) on the same ports and worker, and `gw-pktgen
//! --alternate` sends IPv4 and IPv6 flows in phases of `--phase-ms`,
//! `--pairs` pairs of them (the first of a pair alternating). The worker's
//! busy cycles and received packets are read at every phase boundary; the
//! ratio is taken per pair (IPv6 phase / IPv4 phase, the two phases
//! adjacent), and the report is its median and range over the pairs where
//! both phases saturated the worker.
//!
//! With NAT64 the IPv4 FULLNAT services get local addresses of their own
//! (198.18.1.150-186, [`NAT64_V4_LADDR_SHIFT`]), so the two families never
//! compete for a local port; FULLNAT66's local addresses are IPv6 anyway.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::{bail, Context, Result};
use gw_benches::traffic::report::GenReport;
use serde::Serialize;

use crate::procs;
use crate::ratio::Stat;
use crate::results::Env;
use crate::run::{self, Ctx, SATURATED_BUSY_PCT};
use crate::scenarios::{self, Dut, Endpoints, Mode, Scenario};

/// `--alternate issue17`: the IPv6 rows issue 17 compares with IPv4's.
pub const ISSUE17: [&str; 4] = ["fullnat6-udp-1k", "fullnat6-tcp-1k", "nat64-udp-1k", "nat64-tcp-1k"];
/// The IPv4 phases' frame (the IPv4 rows'); the IPv6 phases use the IPv6
/// row's (84 B).
const IPV4_FRAME: usize = 64;
/// Added to the last octet of the IPv4 services' local addresses when the
/// IPv6 side is NAT64 (whose local addresses are 198.18.1.100-136 too).
const NAT64_V4_LADDR_SHIFT: u8 = 50;
/// Generator phase names (gw-pktgen's `alternate::IPV4`, `IPV6`).
const IPV4: &str = "ipv4";
const IPV6: &str = "ipv6";
/// The phase counter gw-pktgen adds with `--dut-pid`: the worker threads'
/// nanoseconds on the CPU.
const WORKER_RUN_NS: &str = "worker_run_ns";

/// Parses `--alternate` values: `issue17` or IPv6 scenario ids.
pub fn parse(specs: &[String], all: &[Scenario]) -> Result<Vec<Scenario>> {
    let mut out = vec![];
    for spec in specs {
        let ids: Vec<&str> = if spec == "issue17" { ISSUE17.to_vec() } else { vec![spec.as_str()] };
        for id in ids {
            let s = all
                .iter()
                .find(|s| s.id == id)
                .with_context(|| format!("no scenario {id:?} (see --list)"))?;
            match s.dut {
                Dut::Gatewayd { mode: Mode::FullNat6 | Mode::Nat64, workers: 1 } if !s.new_flows => {}
                _ => bail!("--alternate {id}: not a one-worker FULLNAT66 or NAT64 row of established flows"),
            }
            out.push(s.clone());
        }
    }
    if out.is_empty() {
        bail!("--alternate needs `issue17` or IPv6 scenario ids");
    }
    Ok(out)
}

/// The IPv4 row an IPv6 row is compared with: FULLNAT, same protocol and
/// flows, 64-byte frames.
pub fn ipv4_id(s: &Scenario) -> String {
    let (_, rest) = s.id.split_once('-').unwrap_or(("", &s.id));
    format!("fullnat-{rest}")
}

/// gatewayd's config for the alternation: the IPv6 row's (dual-stack ports,
/// both routes, its IPv6 services) with the IPv4 FULLNAT services added.
pub fn merged_config(conf_dir: &Path, s: &Scenario, ep: &Endpoints, prefix: &str) -> Result<String> {
    let base = scenarios::gatewayd_config(conf_dir, s, ep, prefix)?;
    let mut t: toml::Table = base.parse().context("parsing the IPv6 row's config")?;
    let path = conf_dir.join(Mode::FullNat.conf_name());
    let v4 = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v4: toml::Table = v4.parse().with_context(|| format!("parsing {}", path.display()))?;
    let nat64 = matches!(s.dut, Dut::Gatewayd { mode: Mode::Nat64, .. });
    let mut added = v4.get("service").and_then(|v| v.as_array()).cloned().context("no IPv4 [[service]]")?;
    if nat64 {
        for sv in &mut added {
            let sv = sv.as_table_mut().context("[[service]] is not a table")?;
            let rules = sv.get("rules").and_then(|r| r.as_str()).context("[[service]] without rules")?;
            let rules = shift_laddrs(rules, NAT64_V4_LADDR_SHIFT)?;
            sv.insert("rules".into(), rules.into());
        }
    }
    let services = t.get_mut("service").and_then(|v| v.as_array_mut()).context("no IPv6 [[service]]")?;
    services.extend(added);
    Ok(toml::to_string(&t)?)
}

/// Adds `by` to the last octet of every IPv4 `--add-laddr -z` address.
fn shift_laddrs(rules: &str, by: u8) -> Result<String> {
    let mut out = vec![];
    for l in rules.lines() {
        let mut w: Vec<String> = l.split_whitespace().map(str::to_string).collect();
        if w.first().map(String::as_str) == Some("--add-laddr") {
            let at = w.iter().position(|x| x == "-z").context("--add-laddr without -z")? + 1;
            let ip: std::net::Ipv4Addr =
                w.get(at).context("-z without an address")?.parse().context("an IPv4 local address")?;
            let mut o = ip.octets();
            o[3] = o[3].checked_add(by).context("local address out of range")?;
            w[at] = std::net::Ipv4Addr::from(o).to_string();
            out.push(w.join(" "));
        } else {
            out.push(l.to_string());
        }
    }
    Ok(out.join("\n"))
}

/// One phase's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PhaseFig {
    /// gatewayd's busy TSC cycles per received packet (the table's figure):
    /// a poll preempted in the middle counts the time it was off the CPU.
    pub cycles_per_packet: Option<f64>,
    /// The worker thread's time on the CPU, in TSC cycles, per received
    /// packet: leaves out the time other processes had its CPU.
    pub run_cycles_per_packet: Option<f64>,
    /// The worker's busy share of the phase, percent.
    pub busy_pct: Option<f64>,
    /// The worker's time on the CPU over the phase (its drain included),
    /// percent: below 100 other processes held its CPU.
    pub run_pct: Option<f64>,
    /// Packets forwarded per second (both directions), millions.
    pub mpps: f64,
}

impl PhaseFig {
    /// The phase measured the worker at saturation: busy at least
    /// [`SATURATED_BUSY_PCT`] of the phase, and on its CPU as long (where
    /// known). A worker preempted for long stretches is not judged even on
    /// its time on the CPU: the generator, which shares the machine, was
    /// likely starved too, and busy cycles then count the time off the CPU
    /// inside a poll.
    pub fn saturated(&self) -> bool {
        self.busy_pct.is_some_and(|b| b >= SATURATED_BUSY_PCT)
            && self.run_pct.is_none_or(|r| r >= SATURATED_BUSY_PCT)
    }
    /// The figure judged: on-CPU cycles per packet where known.
    pub fn judged(&self) -> Option<f64> {
        self.run_cycles_per_packet.or(self.cycles_per_packet)
    }
}

/// One pair: an IPv4 and an IPv6 phase, adjacent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PairFig {
    pub ipv4_first: bool,
    pub ipv4: PhaseFig,
    pub ipv6: PhaseFig,
}

impl PairFig {
    pub fn saturated(&self) -> bool {
        self.ipv4.saturated() && self.ipv6.saturated()
    }
    /// IPv6 / IPv4 of the judged figure (on-CPU cycles where known).
    pub fn ratio(&self) -> Option<f64> {
        Some(self.ipv6.judged()? / self.ipv4.judged()?)
    }
    /// IPv6 / IPv4 of the busy TSC cycles.
    pub fn busy_ratio(&self) -> Option<f64> {
        Some(self.ipv6.cycles_per_packet? / self.ipv4.cycles_per_packet?)
    }
}

/// Pairs the generator's `ipv4` and `ipv6` phases in the order they ran.
pub fn pairs_of(r: &GenReport) -> Vec<PairFig> {
    let fig = |p: &gw_benches::traffic::report::Phase| {
        let rx = p.gw("rx_packets");
        let run =
            p.gw.as_ref().and_then(|g| g.get(WORKER_RUN_NS)).map(|ns| *ns as f64 * r.tsc_hz as f64 / 1e9);
        PhaseFig {
            cycles_per_packet: p.gw_cycles_per_packet(),
            run_cycles_per_packet: run.filter(|_| rx > 0).map(|c| c / rx as f64),
            busy_pct: p.gw_busy_share(r.tsc_hz).map(|b| b * 100.0),
            run_pct: run.filter(|_| p.seconds > 0.0).map(|c| 100.0 * c / (p.seconds * r.tsc_hz as f64)),
            mpps: p.forwarded_pps() / 1e6,
        }
    };
    let ph: Vec<_> = r.phases.iter().filter(|p| p.name == IPV4 || p.name == IPV6).collect();
    ph.chunks_exact(2)
        .filter_map(|c| match (c[0].name.as_str(), c[1].name.as_str()) {
            (IPV4, IPV6) => Some(PairFig { ipv4_first: true, ipv4: fig(c[0]), ipv6: fig(c[1]) }),
            (IPV6, IPV4) => Some(PairFig { ipv4_first: false, ipv4: fig(c[1]), ipv6: fig(c[0]) }),
            _ => None,
        })
        .collect()
}

/// One gatewayd's alternation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AltRun {
    pub pairs: Vec<PairFig>,
    /// The DUT worker's preemptions per second over the run.
    pub preemptions_per_s: Option<f64>,
    /// Percent of the DUT's CPU the hypervisor stole.
    pub steal_pct: Option<f64>,
    /// A cache line's round trip between the generator's and the DUT's CPU
    /// before and after the run, TSC cycles ([`crate::cpulink`]): the
    /// host's placement of the two vCPUs, which moves every packet's cost.
    pub cpu_link_rtt: Option<(f64, f64)>,
    /// The generator's TSC ticks per second.
    pub tsc_hz: u64,
    pub error: Option<String>,
}

impl AltRun {
    fn saturated(&self) -> impl Iterator<Item = &PairFig> {
        self.pairs.iter().filter(|p| p.saturated())
    }
    /// The judged ratio over this run's saturated pairs.
    pub fn ratio(&self) -> Option<Stat> {
        Stat::of(self.saturated().map(PairFig::ratio))
    }
}

/// Everything measured for one IPv6 row: its runs, each a gatewayd of its
/// own (a process's memory placement is its own).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AltResult {
    pub ipv6_id: String,
    pub ipv4_id: String,
    pub phase_ms: u32,
    pub runs: Vec<AltRun>,
}

/// A pair is at the slow level when its IPv4 phase took this much more
/// than the row's fastest IPv4 phase (the VM's levels are about 2x apart).
pub const SLOW_LEVEL: f64 = 1.5;

impl AltResult {
    fn saturated(&self) -> impl Iterator<Item = &PairFig> {
        self.runs.iter().flat_map(|r| r.saturated())
    }
    /// The judged ratio (on-CPU cycles) over every run's saturated pairs.
    pub fn ratio(&self) -> Option<Stat> {
        Stat::of(self.saturated().map(PairFig::ratio))
    }
    /// The busy-cycles ratio over the saturated pairs.
    pub fn busy_ratio(&self) -> Option<Stat> {
        Stat::of(self.saturated().map(PairFig::busy_ratio))
    }
    /// The judged figure's ratio over every pair, saturated or not: shown,
    /// not judged (on a loaded machine it is all there is).
    pub fn ratio_all_pairs(&self) -> Option<Stat> {
        Stat::of(self.runs.iter().flat_map(|r| &r.pairs).map(PairFig::ratio))
    }
    pub fn ipv4_cycles(&self) -> Option<Stat> {
        Stat::of(self.saturated().map(|p| p.ipv4.judged()))
    }
    pub fn ipv6_cycles(&self) -> Option<Stat> {
        Stat::of(self.saturated().map(|p| p.ipv6.judged()))
    }
    /// The judged ratio over the saturated pairs whose IPv4 phase was at
    /// the fast level (`slow == false`) or the slow one.
    pub fn ratio_at(&self, slow: bool) -> Option<Stat> {
        let fastest = self.saturated().filter_map(|p| p.ipv4.judged()).min_by(f64::total_cmp)?;
        Stat::of(
            self.saturated()
                .filter(|p| p.ipv4.judged().is_some_and(|c| (c >= SLOW_LEVEL * fastest) == slow))
                .map(PairFig::ratio),
        )
    }
    pub fn pairs(&self) -> usize {
        self.runs.iter().map(|r| r.pairs.len()).sum()
    }
    /// Every run failed.
    pub fn failed(&self) -> bool {
        self.runs.iter().all(|r| r.error.is_some())
    }
    /// The goal: issue 17's 1.3x.
    pub fn met(&self) -> Option<bool> {
        self.ratio().map(|s| s.median <= GOAL)
    }
}

/// Issue 17: IPv6 FULLNAT and NAT64 cycles/packet within 1.3x of IPv4's.
pub const GOAL: f64 = 1.3;

/// Runs every row's alternation `runs` times, a new gatewayd each time:
/// run 1 of every row, then run 2, and so on.
pub fn run(ctx: &Ctx, rows: &[Scenario], pairs: u32, phase_ms: u32, runs: u32) -> Result<Vec<AltResult>> {
    let mut out: Vec<AltResult> = rows
        .iter()
        .map(|s| AltResult { ipv6_id: s.id.clone(), ipv4_id: ipv4_id(s), phase_ms, runs: vec![] })
        .collect();
    for k in 0..runs {
        for (i, s6) in rows.iter().enumerate() {
            if ctx.stop.load(Relaxed) {
                bail!("interrupted");
            }
            eprintln!(
                "gw-benchrun: run {}/{runs}, [{}/{}] alternating {} and {} ({pairs} pairs of {phase_ms} ms phases)",
                k + 1,
                i + 1,
                rows.len(),
                ipv4_id(s6),
                s6.id
            );
            let r = run_one(ctx, s6, pairs, phase_ms)?;
            match &r.error {
                None => eprintln!(
                    "gw-benchrun: {}/{}: {} pairs ({} saturated), ratio {}",
                    s6.id,
                    ipv4_id(s6),
                    r.pairs.len(),
                    r.saturated().count(),
                    show(r.ratio(), 3)
                ),
                Some(e) => eprintln!("gw-benchrun: alternating {} FAILED: {e}", s6.id),
            }
            out[i].runs.push(r);
        }
    }
    Ok(out)
}

/// One gatewayd, one alternation.
fn run_one(ctx: &Ctx, s6: &Scenario, pairs: u32, phase_ms: u32) -> Result<AltRun> {
    let _ = ctx.wait_quiet();
    let mut s = s6.clone();
    let phase_s = f64::from(phase_ms) / 1000.0;
    // The generator's budget: the pairs, each phase's drain and counter
    // reads, the warm-ups.
    s.duration = f64::from(pairs) * 2.0 * (phase_s + 0.6) + 2.0;
    s.half_load = 0.0;
    let id = format!("alt-{}", s.id);
    let ep = ctx.endpoints(&id);
    let prefix = |what: &str| format!("{}-{id}-{what}", ctx.tag);
    let around = run::Around::start();
    let extra = |pid: u32| -> Vec<String> {
        [
            "--alternate".to_string(),
            phase_s.to_string(),
            "--pairs".into(),
            pairs.to_string(),
            "--sizes4".into(),
            IPV4_FRAME.to_string(),
            "--dut-pid".into(),
            pid.to_string(),
        ]
        .into()
    };
    let got = merged_config(&ctx.conf_dir, &s, &ep, &prefix("gw"))
        .and_then(|conf| run::gatewayd_custom(ctx, &s, &ep, &prefix("gen"), conf, &extra));
    for p in ["gw", "gen"] {
        procs::remove_dpdk_runtime(&prefix(p));
    }
    let (cpu_link_rtt, steal_pct) = around.end();
    let mut r = AltRun { steal_pct, cpu_link_rtt, ..AltRun::default() };
    match got {
        Ok((report, preempt)) => {
            r.pairs = pairs_of(&report);
            r.tsc_hz = report.tsc_hz;
            r.preemptions_per_s = preempt;
        }
        Err(e) => {
            if ctx.stop.load(Relaxed) {
                bail!("interrupted");
            }
            r.error = Some(format!("{e:#}"));
        }
    }
    Ok(r)
}

fn show(s: Option<Stat>, prec: usize) -> String {
    s.map_or_else(|| "–".to_string(), |s| format!("{:.prec$} ({:.prec$}–{:.prec$})", s.median, s.lo, s.hi))
}

/// `alternate.md`: the command and machine, the table, every pair.
pub fn markdown(res: &[AltResult], env: &Env) -> String {
    let mut md = String::from("# gatewayd: IPv6 / IPv4 cycles per packet in alternating phases\n\n");
    md.push_str(&format!(
        "Run {} with `{}` ({:.0} s). Machine: {}, {} CPUs, TSC {:.0} MHz, Linux {}, DPDK {}. gatewayd `{}`.\n\n",
        env.date_utc,
        env.command,
        env.elapsed_s,
        env.cpu,
        env.cpus,
        env.tsc_mhz,
        env.kernel,
        env.dpdk,
        env.gatewayd_rev
    ));
    md.push_str(
        "One gatewayd per row serves the IPv4 FULLNAT services and the row's IPv6 services on the same ports \
         and worker; the generator sends IPv4 flows (64 B frames) and IPv6 flows (84 B) in alternating phases \
         (the first of a pair alternating), 1,000 established flows each, as fast as the link takes them. At \
         every phase boundary the worker's received packets and busy cycles are read from gatewayd, and its \
         thread's time on the CPU from `/proc` (`schedstat`). Cycles/pkt is the worker's **time on the CPU** \
         in TSC cycles per received packet (it leaves out the time other processes held the worker's CPU; \
         the busy-cycles figure of the other tables does not). **IPv6 / IPv4 is the median (lowest–highest) of \
         the per-pair ratios**, each of two adjacent phases of one process, over the pairs where the worker \
         was busy, and on its CPU, >= 90 % of both phases. How to read it: `docs/benchmarks.md`, \
         \"Alternating phases\".\n\n",
    );
    md.push_str(
        "| IPv6 row / IPv4 row | phase | runs | pairs | IPv4 cycles/pkt | IPv6 cycles/pkt | IPv6 / IPv4 | within 1.3x | at the fast level | at the slow level | IPv6 / IPv4, busy cycles | IPv6 / IPv4, every pair (not judged) |\n",
    );
    md.push_str("|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|\n");
    for r in res {
        let sat = r.saturated().count();
        let pairs =
            if sat == r.pairs() { format!("{sat}") } else { format!("{sat} of {} saturated", r.pairs()) };
        let met = match r.met() {
            _ if r.failed() => "failed".to_string(),
            Some(true) => "yes".into(),
            Some(false) => "**no**".into(),
            None => "–".into(),
        };
        let level = |slow: bool| match r.ratio_at(slow) {
            Some(s) => format!("{} ({} pairs)", show(Some(s), 3), s.n),
            None => "–".into(),
        };
        md.push_str(&format!(
            "| `{}` / `{}` | {} ms | {} | {pairs} | {} | {} | {} | {met} | {} | {} | {} | {} |\n",
            r.ipv6_id,
            r.ipv4_id,
            r.phase_ms,
            r.runs.len(),
            show(r.ipv4_cycles(), 0),
            show(r.ipv6_cycles(), 0),
            show(r.ratio(), 3),
            level(false),
            level(true),
            show(r.busy_ratio(), 3),
            show(r.ratio_all_pairs(), 3),
        ));
    }
    md.push_str(&format!(
        "\nA pair is at the slow level when its IPv4 phase took >= {SLOW_LEVEL}x the row's fastest IPv4 phase.\n\n## Every run\n\n| IPv6 row | run | pairs | IPv6 / IPv4 | DUT preempted /s | steal | CPU link round trip, cycles |\n|---|--:|--:|--:|--:|--:|--:|\n"
    ));
    for r in res {
        for (k, run) in r.runs.iter().enumerate() {
            let sat = run.saturated().count();
            let pairs = match &run.error {
                Some(e) => format!("failed: {}", e.lines().next().unwrap_or("")),
                None if sat == run.pairs.len() => format!("{sat}"),
                None => format!("{sat} of {} saturated", run.pairs.len()),
            };
            md.push_str(&format!(
                "| `{}` | {} | {pairs} | {} | {} | {} | {} |\n",
                r.ipv6_id,
                k + 1,
                show(run.ratio(), 3),
                num(run.preemptions_per_s, 0),
                run.steal_pct.map_or("–".into(), |s| format!("{s:.1} %")),
                crate::ratio::link(run.cpu_link_rtt),
            ));
        }
    }
    md.push_str("\n## Every pair\n\nCycles per packet on the CPU (busy cycles per packet; the worker's busy share / share on the CPU of the phase).\n\n");
    for r in res {
        for (k, run) in r.runs.iter().enumerate() {
            if run.pairs.is_empty() {
                continue;
            }
            md.push_str(&format!("`{}` / `{}`, run {}:\n\n", r.ipv6_id, r.ipv4_id, k + 1));
            md.push_str(
                "| pair | first | IPv4 | IPv6 | IPv6 / IPv4 | busy cycles |\n|--:|---|--:|--:|--:|--:|\n",
            );
            for (i, p) in run.pairs.iter().enumerate() {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {}{} | {} |\n",
                    i + 1,
                    if p.ipv4_first { "IPv4" } else { "IPv6" },
                    phase_cell(&p.ipv4),
                    phase_cell(&p.ipv6),
                    num(p.ratio(), 3),
                    if p.saturated() { "" } else { " (not saturated)" },
                    num(p.busy_ratio(), 3),
                ));
            }
            md.push('\n');
        }
    }
    md
}

fn num(v: Option<f64>, prec: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.prec$}"))
}

/// `run (busy; busy % / on the CPU %)`.
fn phase_cell(p: &PhaseFig) -> String {
    format!(
        "{} ({}; {} / {} %)",
        num(p.run_cycles_per_packet, 0),
        num(p.cycles_per_packet, 0),
        num(p.busy_pct, 0),
        num(p.run_pct, 0)
    )
}

/// Writes `alternate.md` and `alternate.json` into `out`.
pub fn write(out: &Path, res: &[AltResult], env: &Env) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("alternate.md"), markdown(res, env))?;
    #[derive(Serialize)]
    struct Row<'a> {
        #[serde(flatten)]
        r: &'a AltResult,
        ratio: Option<Stat>,
        ratio_fast_level: Option<Stat>,
        ratio_slow_level: Option<Stat>,
        busy_ratio: Option<Stat>,
        ratio_all_pairs: Option<Stat>,
        ipv4_cycles: Option<Stat>,
        ipv6_cycles: Option<Stat>,
        within_goal: Option<bool>,
    }
    let rows: Vec<Row> = res
        .iter()
        .map(|r| Row {
            r,
            ratio: r.ratio(),
            ratio_fast_level: r.ratio_at(false),
            ratio_slow_level: r.ratio_at(true),
            busy_ratio: r.busy_ratio(),
            ratio_all_pairs: r.ratio_all_pairs(),
            ipv4_cycles: r.ipv4_cycles(),
            ipv6_cycles: r.ipv6_cycles(),
            within_goal: r.met(),
        })
        .collect();
    let j = serde_json::json!({ "env": env, "goal": GOAL, "rows": rows });
    std::fs::write(out.join("alternate.json"), serde_json::to_string_pretty(&j)? + "\n")?;
    Ok(())
}

/// The smoke's verdict: every row measured at least one pair with both
/// figures.
pub fn smoke_ok(res: &[AltResult]) -> bool {
    !res.is_empty()
        && res.iter().all(|r| {
            !r.runs.is_empty()
                && r.runs.iter().all(|x| x.error.is_none() && x.pairs.iter().any(|p| p.ratio().is_some()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw_benches::traffic::report::Phase;
    use std::collections::BTreeMap;

    fn phase(name: &str, busy: u64, rx: u64, seconds: f64, run_ns: u64) -> Phase {
        let gw: BTreeMap<String, u64> = [("busy_cycles", busy), ("rx_packets", rx), (WORKER_RUN_NS, run_ns)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Phase { name: name.into(), seconds, gw: Some(gw), ..Phase::default() }
    }

    #[test]
    fn pairs_are_adjacent_phases_whatever_goes_first() {
        let hz = 1_000_000_000; // one cycle per nanosecond
        let r = GenReport {
            tsc_hz: hz,
            round_trip: true,
            flows: 1000,
            frame_sizes: vec![84],
            proto: "udp".into(),
            phases: vec![
                phase("open_ipv4", 1, 1, 0.1, 1),
                phase("warmup_ipv4", 1, 1, 0.5, 1),
                phase(IPV4, 300_000_000, 1_000_000, 0.3, 300_000_000), // 300 cycles/pkt
                phase(IPV6, 300_000_000, 800_000, 0.3, 300_000_000),   // 375
                // Preempted for 30 ms inside polls: busy cycles count them,
                // the time on the CPU does not (91 % of the phase: judged).
                phase(IPV6, 330_000_000, 750_000, 0.33, 300_000_000), // 400 on the CPU, 440 busy
                phase(IPV4, 300_000_000, 1_000_000, 0.3, 300_000_000), // 300
                phase(IPV4, 100_000_000, 1_000_000, 0.3, 300_000_000), // busy 33 %: not saturated
                phase(IPV6, 300_000_000, 1_000_000, 0.3, 300_000_000),
                phase(IPV4, 300_000_000, 500_000, 0.3, 150_000_000), // half the phase off the CPU
                phase(IPV6, 300_000_000, 1_000_000, 0.3, 300_000_000),
                phase(IPV4, 1, 1, 0.3, 1), // a lone last phase (interrupted) is no pair
            ],
        };
        let p = pairs_of(&r);
        assert_eq!(p.len(), 4);
        assert!(p[0].ipv4_first && !p[1].ipv4_first);
        assert_eq!(p[0].ratio(), Some(1.25));
        assert_eq!(p[1].ratio(), Some(400.0 / 300.0), "time off the CPU is left out");
        assert_eq!(p[1].busy_ratio(), Some(440.0 / 300.0), "but not from busy cycles");
        assert_eq!(p[3].ipv4.run_pct, Some(50.0));
        assert_eq!(p.iter().map(PairFig::saturated).collect::<Vec<_>>(), [true, true, false, false]);
        // A second gatewayd, at the VM's slow level.
        let slow = GenReport {
            phases: vec![
                phase(IPV4, 700_000_000, 1_000_000, 0.7, 700_000_000),
                phase(IPV6, 805_000_000, 1_000_000, 0.805, 805_000_000),
            ],
            ..r.clone()
        };
        let res = AltResult {
            ipv6_id: "fullnat6-udp-1k".into(),
            ipv4_id: "fullnat-udp-1k".into(),
            phase_ms: 300,
            runs: vec![
                AltRun {
                    pairs: p,
                    preemptions_per_s: Some(3.0),
                    steal_pct: Some(0.0),
                    cpu_link_rtt: Some((1000.0, 160.0)),
                    tsc_hz: hz,
                    error: None,
                },
                AltRun { pairs: pairs_of(&slow), tsc_hz: hz, ..AltRun::default() },
            ],
        };
        let s = res.ratio().unwrap();
        assert_eq!((s.median, s.lo, s.hi, s.n), (1.25, 1.15, 400.0 / 300.0, 3));
        assert_eq!(res.ratio_at(true).unwrap().median, 1.15);
        assert_eq!(res.ratio_at(false).unwrap().n, 2);
        assert_eq!(res.ipv4_cycles().unwrap().n, 3);
        assert_eq!(res.met(), Some(true));
        assert!(smoke_ok(std::slice::from_ref(&res)));
        let env = Env::collect(Path::new("."), hz, 1.0, "benches/run.sh --alternate issue17 --pairs 3");
        let md = markdown(std::slice::from_ref(&res), &env);
        assert!(
            md.contains("| `fullnat6-udp-1k` / `fullnat-udp-1k` | 300 ms | 2 | 3 of 5 saturated | 300 (300–700) | 400 (375–805) | 1.250 (1.150–1.333) | yes | 1.292 (1.250–1.333) (2 pairs) | 1.150 (1.150–1.150) (1 pairs) | 1.250 (1.150–1.467) | 1.150 (1.000–1.333) |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| `fullnat6-udp-1k` | 1 | 2 of 4 saturated | 1.292 (1.250–1.333) | 3 | 0.0 % | 1000→160 |"
            ),
            "{md}"
        );
        assert!(md.contains("| `fullnat6-udp-1k` | 2 | 1 | 1.150 (1.150–1.150) | – | – | – |"), "{md}");
        assert!(
            md.contains("| 2 | IPv6 | 300 (300; 100 / 100 %) | 400 (440; 100 / 91 %) | 1.333 | 1.467 |"),
            "{md}"
        );
        assert!(md.contains("| 3 | IPv4 | 300 (100; 33 / 100 %) | 300 (300; 100 / 100 %) | 1.000 (not saturated) | 3.000 |"), "{md}");
        let failed =
            AltResult { runs: vec![AltRun { error: Some("x".into()), ..AltRun::default() }], ..res.clone() };
        assert!(failed.failed() && !smoke_ok(&[failed]));

        // Without --dut-pid (no run time) the busy figures are judged.
        let mut old = r.clone();
        old.phases.iter_mut().for_each(|p| {
            p.gw.as_mut().unwrap().remove(WORKER_RUN_NS);
        });
        let p = pairs_of(&old);
        assert_eq!((p[1].ratio(), p[1].ipv6.run_pct), (Some(440.0 / 300.0), None));
        assert_eq!(p.iter().map(PairFig::saturated).collect::<Vec<_>>(), [true, true, false, true]);
    }

    #[test]
    fn rows_and_configs() {
        let all = scenarios::full();
        let rows = parse(&["issue17".to_string()], &all).unwrap();
        assert_eq!(rows.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ISSUE17);
        assert_eq!(rows.iter().map(ipv4_id).collect::<Vec<_>>()[..2], ["fullnat-udp-1k", "fullnat-tcp-1k"]);
        // Every compared IPv4 row exists, with the 64 B frame.
        for s in &rows {
            let v4 = all.iter().find(|x| x.id == ipv4_id(s)).expect("the IPv4 row");
            assert_eq!(v4.sizes, [IPV4_FRAME]);
        }
        assert!(parse(&["fullnat-udp-1k".to_string()], &all).is_err(), "an IPv4 row");
        assert!(parse(&["nope".to_string()], &all).is_err());

        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
        let ep = Endpoints {
            outside_sock: "/run/x/o.sock".into(),
            inside_sock: "/run/x/i.sock".into(),
            control_sock: "/run/x/c.sock".into(),
        };
        for s in &rows {
            let text = merged_config(&conf, s, &ep, "pfx").unwrap();
            let t: toml::Table = text.parse().unwrap();
            let rules: Vec<&str> =
                t["service"].as_array().unwrap().iter().map(|v| v["rules"].as_str().unwrap()).collect();
            assert_eq!(rules.len(), 4, "two IPv6 and two IPv4 services");
            assert!(rules.iter().any(|r| r.contains("-A -u 198.18.0.100:80")));
            assert!(rules.iter().any(|r| r.contains("-A -t [2001:db8::100]:80")));
            let nat64 = s.id.starts_with("nat64");
            let v4 = rules.iter().find(|r| r.contains("-A -t 198.18.0.100:80")).unwrap();
            assert_eq!(v4.contains("--add-laddr -z 198.18.1.150 "), nat64, "{v4}");
            assert_eq!(v4.contains("--add-laddr -z 198.18.1.100 "), !nat64, "{v4}");
            assert_eq!(v4.lines().filter(|l| l.starts_with("--add-laddr")).count(), 37);
            assert!(text.contains("/run/x/c.sock") && text.contains("2001:db8:c000::/96"));
        }
        assert!(shift_laddrs("--add-laddr -z 198.18.1.250 -t 1.2.3.4:80", 10).is_err());
    }
}
