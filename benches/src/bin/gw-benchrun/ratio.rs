//! Ratios that hold on a noisy machine: `--ratio A:B --rounds N`.
//!
//! This VM's speed drifts for whole minutes (testpmd alone measured
//! 172-553 cycles per packet across runs), so two rows of one sequential run
//! can land in different moments and their ratio says more about the
//! moment than about the code. Here each pair of scenarios runs back to back,
//! A then B, `N` rounds, the side that goes first alternating, the rounds of
//! all pairs interleaved (round 1 of every pair, then round 2); every round
//! gives one ratio B/A of two measurements seconds apart, and the report is
//! the median and range of those per-round ratios (plus each side's own
//! median and range). A slow moment then costs one round, not the verdict.
//!
//! Each side is a full scenario run as the main table does it (the DUT
//! started, the flows opened, measured, stopped), with a shorter
//! measurement; gatewayd cannot be kept running between rounds, since the
//! generator's memif ports must leave only after the DUT stopped (see
//! `run::run_gatewayd`).
//!
//! A side may name a gatewayd build: `fullnat-udp-1k@a` runs `--gatewayd`,
//! `fullnat-udp-1k@b` runs `--gatewayd-b`, so `X@a:X@b` compares two builds
//! on one scenario. Writes `ratios.md` and `ratios.json`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use anyhow::{bail, Context, Result};
use gw_benches::traffic::report::spread;
use gw_benches::traffic::table::{self, Level, Row, NEAR_LINK_CYCLES};
use serde::Serialize;

use crate::results::Env;
use crate::run::{self, Ctx};
use crate::scenarios::Scenario;

/// `--ratio issues`: the pairs issues 14 and 17 are judged on.
pub const ISSUE_PAIRS: [&str; 5] = [
    "testpmd-64:fullnat-udp-1k",
    "fullnat-udp-1k:fullnat6-udp-1k",
    "fullnat-tcp-1k:fullnat6-tcp-1k",
    "fullnat-udp-1k:nat64-udp-1k",
    "fullnat-tcp-1k:nat64-tcp-1k",
];
/// `--ratio scale`: issue 14's session-count goals (each round opens the
/// 1M or 10M flows again: about a minute per 10M side).
pub const SCALE_PAIRS: [&str; 4] = [
    "fullnat-udp-1k:fullnat-udp-1m",
    "fullnat-udp-1k:fullnat-udp-10m",
    "fullnat-tcp-1k:fullnat-tcp-1m",
    "fullnat-tcp-1k:fullnat-tcp-10m",
];
/// Added to `--ratio issues` with `--gatewayd-b` (the reference build, the
/// one before the change): issue 17's "IPv4 rows unchanged within 3 %",
/// judged as no more than 3 % slower.
pub const BUILD_PAIRS: [&str; 2] = ["fullnat-udp-1k@a:fullnat-udp-1k@b", "fullnat-tcp-1k@a:fullnat-tcp-1k@b"];

/// Seconds of measurement per side and round (the main table's is 3).
pub const MEASURE_S: f64 = 2.0;

/// Which gatewayd a side runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Build {
    /// `--gatewayd` (the default).
    A,
    /// `--gatewayd-b`.
    B,
}

/// One side of a pair: a scenario id and a build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    pub id: String,
    pub build: Build,
    /// Written with `@a`/`@b`.
    pub explicit: bool,
}

impl Side {
    fn parse(s: &str) -> Result<Side> {
        let (id, build, explicit) = match s.rsplit_once('@') {
            Some((id, "a")) => (id, Build::A, true),
            Some((id, "b")) => (id, Build::B, true),
            Some((_, other)) => bail!("{s:?}: a build is @a or @b, not @{other}"),
            None => (s, Build::A, false),
        };
        if id.is_empty() {
            bail!("{s:?}: no scenario id");
        }
        Ok(Side { id: id.to_string(), build, explicit })
    }

    /// As written on the command line.
    pub fn label(&self) -> String {
        match (self.explicit, self.build) {
            (false, _) => self.id.clone(),
            (true, Build::A) => format!("{}@a", self.id),
            (true, Build::B) => format!("{}@b", self.id),
        }
    }
}

/// Two scenarios whose ratio B/A is wanted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pair {
    pub a: Side,
    pub b: Side,
}

impl Pair {
    pub fn label(&self) -> String {
        format!("{}:{}", self.a.label(), self.b.label())
    }
}

/// Parses `--ratio` values: `A:B` pairs, `issues` for [`ISSUE_PAIRS`]
/// (and [`BUILD_PAIRS`] when a second build is given), `scale` for
/// [`SCALE_PAIRS`].
pub fn parse_pairs(specs: &[String], have_b: bool) -> Result<Vec<Pair>> {
    let mut out = vec![];
    for spec in specs {
        if spec == "issues" {
            let extra: &[&str] = if have_b { &BUILD_PAIRS } else { &[] };
            for p in ISSUE_PAIRS.iter().chain(extra) {
                out.push(parse_pair(p)?);
            }
            continue;
        }
        if spec == "scale" {
            for p in SCALE_PAIRS {
                out.push(parse_pair(p)?);
            }
            continue;
        }
        let p = parse_pair(spec)?;
        if (p.a.build == Build::B || p.b.build == Build::B) && !have_b {
            bail!("{spec:?} names build b: give it with --gatewayd-b BIN");
        }
        out.push(p);
    }
    if out.is_empty() {
        bail!("--ratio needs at least one pair A:B (or `issues`)");
    }
    Ok(out)
}

fn parse_pair(spec: &str) -> Result<Pair> {
    let (a, b) = spec.split_once(':').with_context(|| format!("{spec:?} is not a pair A:B"))?;
    let p = Pair { a: Side::parse(a)?, b: Side::parse(b)? };
    if p.a == p.b {
        bail!("{spec:?} compares a scenario with itself on the same build");
    }
    Ok(p)
}

/// What one side measured in one round.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Measured {
    pub cycles_per_packet: Option<f64>,
    /// gatewayd's cycles/packet over the phases testpmd's figure spans
    /// (`Row::cycles_testpmd_scope`): used against a testpmd side.
    pub cycles_testpmd_scope: Option<f64>,
    /// The same counted as testpmd counts its own
    /// (`Row::cycles_testpmd_accounting`): preferred against a testpmd side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycles_testpmd_accounting: Option<f64>,
    /// The side is testpmd.
    pub testpmd: bool,
    pub mpps: f64,
    /// p99 round-trip latency at half load, µs.
    pub p99_half_us: Option<f64>,
    /// gatewayd's busy share of the measurement, percent.
    pub dut_busy_pct: Option<f64>,
    /// Other processes' share of the machine's CPU time, percent.
    pub others_cpu_pct: Option<f64>,
    /// Percent of the DUT's CPU the hypervisor stole.
    pub steal_pct: Option<f64>,
    /// The generator's TSC ticks per second.
    pub tsc_hz: u64,
    /// The CPU link's round trip before and after, TSC cycles
    /// (`Row::cpu_link_rtt`).
    pub cpu_link_rtt: Option<(f64, f64)>,
}

impl Measured {
    pub fn of(r: &Row) -> Measured {
        Measured {
            cycles_per_packet: r.cycles_per_packet.filter(|c| *c > 0.0),
            cycles_testpmd_scope: r.cycles_testpmd_scope.filter(|c| *c > 0.0),
            cycles_testpmd_accounting: r.cycles_testpmd_accounting.filter(|c| *c > 0.0),
            testpmd: r.dut.starts_with("testpmd"),
            mpps: r.mpps,
            p99_half_us: r.latency_half_load.as_ref().and_then(|l| l.p99_us).filter(|p| *p > 0.0),
            dut_busy_pct: r.dut_busy_pct,
            others_cpu_pct: r.others_cpu_pct,
            steal_pct: r.steal_pct,
            tsc_hz: r.tsc_hz,
            cpu_link_rtt: r.cpu_link_rtt,
        }
    }
}

/// One round of a pair: both sides, measured back to back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Round {
    /// A ran first (rounds alternate).
    pub a_first: bool,
    pub a: Measured,
    pub b: Measured,
}

impl Measured {
    /// Cycles/packet to compare with `other`: against testpmd, gatewayd's
    /// figure over the same phases as testpmd's, counted as testpmd counts
    /// when the run recorded its bursts.
    pub fn cycles_against(&self, other: &Measured) -> Option<f64> {
        if other.testpmd && !self.testpmd {
            self.cycles_testpmd_accounting.or(self.cycles_testpmd_scope).or(self.cycles_per_packet)
        } else {
            self.cycles_per_packet
        }
    }
}

impl Measured {
    /// The DUT was saturated (busy at least [`run::SATURATED_BUSY_PCT`] of
    /// the measurement), so cycles/packet is its cost at saturation; a
    /// side without the figure (testpmd) counts as saturated.
    pub fn saturated(&self) -> bool {
        self.dut_busy_pct.is_none_or(|b| b >= run::SATURATED_BUSY_PCT)
    }
}

impl Measured {
    /// The side's level over its whole run (`table::level`).
    pub fn level(&self) -> Option<Level> {
        table::level(self.cpu_link_rtt)
    }
}

impl Round {
    /// Both sides ran at one level from start to end.
    pub fn level(&self) -> Option<Level> {
        let l = self.a.level()?;
        (self.b.level()? == l).then_some(l)
    }
}

impl Round {
    /// Both sides were saturated: the round's cycles ratio is judged.
    pub fn saturated(&self) -> bool {
        self.a.saturated() && self.b.saturated()
    }
    pub fn cycles_ratio(&self) -> Option<f64> {
        Some(self.b.cycles_against(&self.a)? / self.a.cycles_against(&self.b)?)
    }
    pub fn p99_ratio(&self) -> Option<f64> {
        Some(self.b.p99_half_us? / self.a.p99_half_us?)
    }
}

/// Median, lowest and highest of some values, and how many there were.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(v: impl IntoIterator<Item = Option<f64>>) -> Option<Stat> {
        let v: Vec<f64> = v.into_iter().flatten().collect();
        let n = v.len();
        spread(v).map(|(median, lo, hi)| Stat { median, lo, hi, n })
    }

    /// `m (lo–hi)`.
    fn show(&self, prec: usize) -> String {
        format!("{:.prec$} ({:.prec$}–{:.prec$})", self.median, self.lo, self.hi)
    }
}

/// Everything measured for one pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairResult {
    pub pair: Pair,
    pub rounds: Vec<Round>,
    /// Rounds lost because a side failed (the error is on stderr).
    pub failed: u32,
}

/// Cycles/packet figures are taken from saturated rounds only (issue 14:
/// "cycles/packet reported at saturation only"); latency from every round.
impl PairResult {
    fn saturated(&self) -> impl Iterator<Item = &Round> {
        self.rounds.iter().filter(|r| r.saturated())
    }
    /// Rounds where a side's DUT was not saturated.
    pub fn unsaturated(&self) -> usize {
        self.rounds.len() - self.saturated().count()
    }
    /// A's cycles/packet over the saturated rounds, as compared with B's.
    pub fn a_cycles(&self) -> Option<Stat> {
        Stat::of(self.saturated().map(|r| r.a.cycles_against(&r.b)))
    }
    /// B's cycles/packet over the saturated rounds, as compared with A's.
    pub fn b_cycles(&self) -> Option<Stat> {
        Stat::of(self.saturated().map(|r| r.b.cycles_against(&r.a)))
    }
    pub fn cycles_ratio(&self) -> Option<Stat> {
        Stat::of(self.saturated().map(Round::cycles_ratio))
    }
    pub fn p99_ratio(&self) -> Option<Stat> {
        Stat::of(self.rounds.iter().map(Round::p99_ratio))
    }
    /// The cycles and p99 ratios over the rounds run wholly at `level`.
    pub fn at_level(&self, level: Level) -> (usize, Option<Stat>, Option<Stat>) {
        let at = || self.rounds.iter().filter(move |r| r.level() == Some(level));
        let cycles = Stat::of(at().filter(|r| r.saturated()).map(Round::cycles_ratio));
        (at().count(), cycles, Stat::of(at().map(Round::p99_ratio)))
    }
}

/// The goal an issue sets for a pair's ratio.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Goal {
    pub what: String,
    /// The per-round ratio judged: cycles/packet or p99 at half load.
    pub p99: bool,
    /// The median must lie in `lo..=hi`.
    pub lo: f64,
    pub hi: f64,
}

fn is_ipv4_gw(id: &str) -> bool {
    id.starts_with("fullnat-") && !id.starts_with("fullnat6-")
}
fn is_ipv6_gw(id: &str) -> bool {
    id.starts_with("fullnat6-") || id.starts_with("nat64-")
}

/// The goals of issues 14 and 17 that apply to a pair, by the shape of its
/// ids: IPv4 FULLNAT against an IPv6 row of the same protocol (issue 17:
/// within 1.3x), testpmd against FULLNAT UDP 1k (issue 14: 1.7x cycles, 2x
/// p99), FULLNAT 1k against 1M and 10M sessions (issue 14: 1.5x, 2x), one
/// scenario on two builds (issue 17: within 3 %).
pub fn goals(p: &Pair) -> Vec<Goal> {
    let (a, b) = (p.a.id.as_str(), p.b.id.as_str());
    let proto = |id: &str| id.split('-').nth(1).map(str::to_string);
    let mut g = vec![];
    if a == b && p.a.build != p.b.build && is_ipv4_gw(a) {
        // Build b (`--gatewayd-b`) is the reference, the build before the
        // change: issue 17 asks that IPv4 be no slower, so the goal is one
        // sided, the build under test at most 3 % above the reference (a
        // faster build meets it). B/A is reference/new when b is B, and
        // new/reference when b is A.
        let (lo, hi, ratio) = if p.b.build == Build::B {
            (1.0 / 1.03, f64::MAX, "build b / build a: at least 0.971")
        } else {
            (0.0, 1.03, "build a / build b: at most 1.03")
        };
        g.push(Goal {
            what: format!("issue 17: IPv4 no more than 3 % slower than the reference build b ({a}, {ratio})"),
            p99: false,
            lo,
            hi,
        });
    } else if is_ipv4_gw(a) && is_ipv6_gw(b) && proto(a) == proto(b) && p.a.build == p.b.build {
        let what = if b.starts_with("nat64") { "NAT64" } else { "IPv6 FULLNAT" };
        g.push(Goal {
            what: format!("issue 17: {what} cycles/packet within 1.3x of IPv4's ({b} / {a})"),
            p99: false,
            lo: 0.0,
            hi: 1.3,
        });
    } else if let Some(n) = a
        .strip_suffix("-1k")
        .filter(|_| is_ipv4_gw(a) && p.a.build == p.b.build)
        .and_then(|stem| b.strip_prefix(stem)?.strip_prefix('-'))
    {
        // fullnat-udp-1k against fullnat-udp-1m / -10m.
        let hi = match n {
            "1m" => 1.5,
            "10m" => 2.0,
            _ => return g,
        };
        g.push(Goal {
            what: format!("issue 14: {n} sessions within {hi}x of the 1k cycles/packet ({b} / {a})"),
            p99: false,
            lo: 0.0,
            hi,
        });
    } else if a.starts_with("testpmd-64") && b == "fullnat-udp-1k" {
        g.push(Goal {
            what: "issue 14: 1k at most 1.7x testpmd's cycles/packet".into(),
            p99: false,
            lo: 0.0,
            hi: 1.7,
        });
        g.push(Goal {
            what: "issue 14: p99 added latency at half load within 2x of testpmd's".into(),
            p99: true,
            lo: 0.0,
            hi: 2.0,
        });
    }
    g
}

/// Looks a scenario up by id and shortens its measurement for a round.
pub fn scenario_for(id: &str, all: &[Scenario]) -> Result<Scenario> {
    let mut s = all
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .with_context(|| format!("no scenario {id:?} (see --list)"))?;
    if s.syn_flood > 0.0 {
        bail!("{id} is a flood measurement: it has no cycles per packet to compare");
    }
    s.duration = s.duration.min(MEASURE_S);
    Ok(s)
}

/// Runs every pair `rounds` times: round 1 of every pair, then round 2 of
/// every pair, and so on, so each pair's rounds spread over the whole run
/// (a slow stretch of minutes costs each pair a round, not one pair all of
/// them); within a round the two sides run back to back, the first side
/// alternating from round to round. `ctx_b` runs the `@b` sides. A side
/// that fails loses its round; an interruption ends the run.
pub fn run(
    ctx: &Ctx,
    ctx_b: Option<&Ctx>,
    pairs: &[Pair],
    all: &[Scenario],
    rounds: u32,
) -> Result<Vec<PairResult>> {
    let ctx_of = |side: &Side| -> Result<Ctx> {
        let c = match side.build {
            Build::A => ctx,
            Build::B => ctx_b.context("build b needs --gatewayd-b")?,
        };
        // The round waits for a quiet machine once, before its first side:
        // the second follows at once.
        Ok(Ctx { quiet_wait: 0.0, ..c.clone() })
    };
    // Every pair's scenarios and contexts, checked before anything runs.
    let sides = pairs
        .iter()
        .map(|p| {
            Ok(((scenario_for(&p.a.id, all)?, ctx_of(&p.a)?), (scenario_for(&p.b.id, all)?, ctx_of(&p.b)?)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out: Vec<PairResult> =
        pairs.iter().map(|p| PairResult { pair: p.clone(), rounds: vec![], failed: 0 }).collect();
    for r in 0..rounds {
        for (i, (p, ((sa, ca), (sb, cb)))) in pairs.iter().zip(&sides).enumerate() {
            if ctx.stop.load(Relaxed) {
                bail!("interrupted");
            }
            let a_first = r % 2 == 0;
            eprintln!(
                "gw-benchrun: ratio round {}/{rounds}, pair [{}/{}] {} ({} first)",
                r + 1,
                i + 1,
                pairs.len(),
                p.label(),
                if a_first { "A" } else { "B" }
            );
            let _ = ctx.wait_quiet();
            let one = |c: &Ctx, s: &Scenario| run::scenario_saturated(c, s).map(|row| Measured::of(&row));
            let got = if a_first {
                one(ca, sa).and_then(|a| Ok((a, one(cb, sb)?)))
            } else {
                one(cb, sb).and_then(|b| Ok((one(ca, sa)?, b)))
            };
            match got {
                Ok((a, b)) => {
                    let round = Round { a_first, a, b };
                    eprintln!(
                        "gw-benchrun: {}: A {} B {} cycles/pkt, B/A {}{}",
                        p.label(),
                        opt(round.a.cycles_against(&round.b), 0),
                        opt(round.b.cycles_against(&round.a), 0),
                        opt(round.cycles_ratio(), 3),
                        if round.saturated() { "" } else { " (not saturated)" }
                    );
                    out[i].rounds.push(round);
                }
                Err(e) => {
                    if ctx.stop.load(Relaxed) {
                        bail!("interrupted");
                    }
                    eprintln!("gw-benchrun: {} round {} FAILED: {e:#}", p.label(), r + 1);
                    out[i].failed += 1;
                }
            }
        }
    }
    Ok(out)
}

/// The TSC rate the rounds measured with (0 if none ran).
pub fn tsc_hz(res: &[PairResult]) -> u64 {
    res.iter().flat_map(|r| &r.rounds).map(|x| x.a.tsc_hz.max(x.b.tsc_hz)).max().unwrap_or(0)
}

/// `" (2 not saturated, 1 failed)"`: rounds the cycles figures leave out,
/// and rounds lost.
fn lost(r: &PairResult) -> String {
    let mut v = vec![];
    if r.unsaturated() > 0 {
        v.push(format!("{} not saturated", r.unsaturated()));
    }
    if r.failed > 0 {
        v.push(format!("{} failed", r.failed));
    }
    if v.is_empty() {
        String::new()
    } else {
        format!(" ({})", v.join(", "))
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.prec$}"))
}

fn stat(s: Option<Stat>, prec: usize) -> String {
    s.map_or_else(|| "–".to_string(), |s| s.show(prec))
}

/// The gatewayd binaries of a run, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct Builds {
    pub a: PathBuf,
    pub b: Option<PathBuf>,
}

/// `ratios.md`: the command and machine, the pairs' table, the goals judged
/// on the medians, every round.
pub fn markdown(res: &[PairResult], env: &Env, builds: &Builds, rounds: u32) -> String {
    let mut md = String::from("# gatewayd: ratios measured in interleaved rounds\n\n");
    md.push_str(&format!(
        "Run {} with `{}` ({:.0} s). Machine: {}, {} CPUs, TSC {:.0} MHz, Linux {}, DPDK {}. gatewayd `{}`",
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
    match &builds.b {
        Some(b) => {
            md.push_str(&format!("; build a `{}`, build b `{}`.\n\n", builds.a.display(), b.display()))
        }
        None => md.push_str(".\n\n"),
    }
    md.push_str(&format!(
        "Each pair A:B ran {rounds} rounds (round 1 of every pair, then round 2 of every pair, ...); in a round \
         A and B ran back to back (A first in odd rounds, B first in even ones), each a full scenario run with a {MEASURE_S:.0} s measurement. A side's cycles/pkt \
         is the median (lowest–highest) over the rounds; **B/A is the median (lowest–highest) of the \
         per-round ratios**, each of two measurements seconds apart, so the machine's slow minutes move \
         both sides of a ratio together. Cycles/pkt figures and their ratios count only the rounds where both \
         DUTs were saturated (gatewayd busy >= 90 % of the measurement); latency counts every round. How to read it: `docs/benchmarks.md`, \"Ratios that hold on a noisy \
         machine\".\n\n"
    ));
    md.push_str(
        "| pair A : B | rounds | A cycles/pkt | B cycles/pkt | B/A cycles/pkt | A p99 half load µs | B p99 half load µs | B/A p99 half load |\n",
    );
    md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in res {
        let p99 = |f: fn(&Round) -> Option<f64>| Stat::of(r.rounds.iter().map(f));
        md.push_str(&format!(
            "| `{}` | {}{} | {} | {} | {} | {} | {} | {} |\n",
            r.pair.label(),
            r.rounds.len(),
            lost(r),
            stat(r.a_cycles(), 0),
            stat(r.b_cycles(), 0),
            stat(r.cycles_ratio(), 3),
            stat(p99(|x| x.a.p99_half_us), 1),
            stat(p99(|x| x.b.p99_half_us), 1),
            stat(r.p99_ratio(), 2),
        ));
    }
    md.push_str("\n## Goals\n\n| goal | pair | measured | met |\n|---|---|---|---|\n");
    let mut any = false;
    for r in res {
        for g in goals(&r.pair) {
            any = true;
            let s = if g.p99 { r.p99_ratio() } else { r.cycles_ratio() };
            let (measured, met) = match s {
                Some(s) => (
                    format!(
                        "{:.3}x: median of {} interleaved rounds, range {:.3}–{:.3}",
                        s.median, s.n, s.lo, s.hi
                    ),
                    verdict(&g, &s, &per_round(r, &g)),
                ),
                None if !g.p99 && r.unsaturated() > 0 => (
                    format!("no round with both DUTs saturated ({} not saturated)", r.unsaturated()),
                    "–".to_string(),
                ),
                None => ("not measured".to_string(), "–".to_string()),
            };
            md.push_str(&format!("| {} | `{}` | {measured} | {met} |\n", g.what, r.pair.label()));
        }
    }
    if !any {
        md.push_str("| (no issue goal applies to these pairs) | | | |\n");
    }
    if res.iter().any(|r| r.rounds.iter().any(|x| x.a.cpu_link_rtt.is_some())) {
        md.push_str(&format!(
            "\n## By the CPU link's level\n\nThe same ratios over the rounds whose two sides both ran with the \
             generator's and the DUT's vCPUs near each other (a cache line's round trip between them under \
             {NEAR_LINK_CYCLES:.0} TSC cycles before and after each side), or both far apart. Every packet crosses \
             between the two CPUs, so the level adds the same cycles to both DUTs: a ratio to a DUT that does \
             little else (testpmd) depends on it. Rounds whose level changed or differed between the sides are \
             in neither column.\n\n| pair A : B | near: rounds | B/A cycles/pkt | B/A p99 half load | far: rounds | B/A cycles/pkt | B/A p99 half load |\n|---|--:|--:|--:|--:|--:|--:|\n"
        ));
        for r in res {
            let (nn, nc, np) = r.at_level(Level::Near);
            let (fnn, fc, fp) = r.at_level(Level::Far);
            md.push_str(&format!(
                "| `{}` | {nn} | {} | {} | {fnn} | {} | {} |\n",
                r.pair.label(),
                stat(nc, 3),
                stat(np, 2),
                stat(fc, 3),
                stat(fp, 2),
            ));
        }
    }
    md.push_str(
        "\n## Every round\n\n| pair | round | first | A cycles/pkt | B cycles/pkt | B/A | A / B p99 half load µs | A / B DUT busy % | A / B others' CPU % | A / B steal % | A / B CPU link round trip, cycles |\n|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in res {
        for (i, x) in r.rounds.iter().enumerate() {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} |\n",
                r.pair.label(),
                i + 1,
                if x.a_first { "A" } else { "B" },
                opt(x.a.cycles_against(&x.b), 0),
                opt(x.b.cycles_against(&x.a), 0),
                if x.saturated() {
                    opt(x.cycles_ratio(), 3)
                } else {
                    format!("{} (not saturated)", opt(x.cycles_ratio(), 3))
                },
                opt(x.a.p99_half_us, 1),
                opt(x.b.p99_half_us, 1),
                opt(x.a.dut_busy_pct, 0),
                opt(x.b.dut_busy_pct, 0),
                opt(x.a.others_cpu_pct, 0),
                opt(x.b.others_cpu_pct, 0),
                opt(x.a.steal_pct, 1),
                opt(x.b.steal_pct, 1),
                link(x.a.cpu_link_rtt),
                link(x.b.cpu_link_rtt),
            ));
        }
    }
    md
}

/// A side's CPU link round trips: the mean of before and after, with
/// both when they differ by more than a tenth (the level changed).
pub fn link(rtt: Option<(f64, f64)>) -> String {
    match rtt {
        None => "–".into(),
        Some((a, b)) if (a - b).abs() > 0.1 * a.min(b) => format!("{a:.0}→{b:.0}"),
        Some((a, b)) => format!("{:.0}", (a + b) / 2.0),
    }
}

/// The per-round ratios a goal judges.
fn per_round(r: &PairResult, g: &Goal) -> Vec<f64> {
    if g.p99 {
        r.rounds.iter().filter_map(Round::p99_ratio).collect()
    } else {
        r.saturated().filter_map(Round::cycles_ratio).collect()
    }
}

/// `yes`/`**no**` on the median, and whether every round agrees or how
/// many did (a median near the threshold is not settled by the run).
fn verdict(g: &Goal, s: &Stat, rounds: &[f64]) -> String {
    let ok = |x: f64| x >= g.lo && x <= g.hi;
    let met = if ok(s.median) { "yes" } else { "**no**" };
    let agree = rounds.iter().filter(|x| ok(**x) == ok(s.median)).count();
    if agree == rounds.len() {
        format!("{met} (every round)")
    } else {
        format!("{met} (median; {agree} of {} rounds)", rounds.len())
    }
}

/// Writes `ratios.md` and `ratios.json` into `out`.
pub fn write(out: &Path, res: &[PairResult], env: &Env, builds: &Builds, rounds: u32) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("ratios.md"), markdown(res, env, builds, rounds))?;
    #[derive(Serialize)]
    struct PairJson<'a> {
        label: String,
        #[serde(flatten)]
        result: &'a PairResult,
        a_cycles: Option<Stat>,
        b_cycles: Option<Stat>,
        cycles_ratio: Option<Stat>,
        p99_half_ratio: Option<Stat>,
        goals: Vec<Goal>,
    }
    #[derive(Serialize)]
    struct All<'a> {
        env: &'a Env,
        builds: &'a Builds,
        rounds: u32,
        measure_s: f64,
        pairs: Vec<PairJson<'a>>,
    }
    let pairs = res
        .iter()
        .map(|r| PairJson {
            label: r.pair.label(),
            result: r,
            a_cycles: r.a_cycles(),
            b_cycles: r.b_cycles(),
            cycles_ratio: r.cycles_ratio(),
            p99_half_ratio: r.p99_ratio(),
            goals: goals(&r.pair),
        })
        .collect();
    let all = All { env, builds, rounds, measure_s: MEASURE_S, pairs };
    std::fs::write(out.join("ratios.json"), serde_json::to_string_pretty(&all)?)?;
    Ok(())
}

/// Whether the smoke's ratio round produced a ratio (both sides forwarded
/// and were measured).
pub fn smoke_ok(res: &[PairResult]) -> bool {
    !res.is_empty()
        && res.iter().all(|r| {
            r.failed == 0
                && r.rounds.iter().all(|x| x.a.mpps > 0.0 && x.b.mpps > 0.0 && x.cycles_ratio().is_some())
        })
}

/// The pair the CI smoke runs for one round.
pub fn smoke_pair() -> Pair {
    parse_pair("fullnat-udp-1k:fullnat6-udp-1k").expect("a valid pair")
}

/// Shortens a scenario for the smoke (as `scenarios::smoke` does).
pub fn smoke_scenarios(all: &[Scenario]) -> Vec<Scenario> {
    all.iter()
        .map(|s| {
            let mut s = s.clone();
            s.duration = 1.0;
            s.warmup = 0.2;
            s.half_load = 0.0;
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(cycles: f64, p99: Option<f64>) -> Measured {
        Measured { cycles_per_packet: Some(cycles), mpps: 1.0, p99_half_us: p99, ..Measured::default() }
    }

    /// A testpmd side, and a gatewayd side whose figure over testpmd's
    /// phases is `scoped` (its measurement alone: `cycles`).
    fn tp(cycles: f64, p99: Option<f64>) -> Measured {
        Measured { testpmd: true, ..m(cycles, p99) }
    }
    fn gw(cycles: f64, scoped: f64, p99: Option<f64>) -> Measured {
        Measured { cycles_testpmd_scope: Some(scoped), ..m(cycles, p99) }
    }

    fn env() -> Env {
        Env {
            date_utc: "2026-12-01 06:00 UTC".into(),
            cpu: "Test CPU".into(),
            cpus: 2,
            kernel: "6.1".into(),
            dpdk: "22.11".into(),
            gatewayd_rev: "abc1234".into(),
            tsc_mhz: 2600.0,
            elapsed_s: 100.0,
            command: "benches/run.sh --ratio issues --rounds 3".into(),
        }
    }

    #[test]
    fn against_testpmd_gatewayd_counts_as_testpmd_counts_when_recorded() {
        let t = tp(100.0, None);
        let g = gw(180.0, 220.0, None);
        assert_eq!(g.cycles_against(&t), Some(220.0));
        assert_eq!(g.cycles_against(&gw(1.0, 1.0, None)), Some(180.0));
        let counted = Measured { cycles_testpmd_accounting: Some(190.0), ..g.clone() };
        assert_eq!(counted.cycles_against(&t), Some(190.0));
        assert_eq!(counted.cycles_against(&g), Some(180.0));
        assert_eq!(t.cycles_against(&counted), Some(100.0));
    }

    #[test]
    fn pairs_parse_with_builds_and_the_issue_set() {
        let p = parse_pairs(&["fullnat-udp-1k:nat64-udp-1k".into()], false).unwrap();
        assert_eq!(p[0].a, Side { id: "fullnat-udp-1k".into(), build: Build::A, explicit: false });
        assert_eq!(p[0].label(), "fullnat-udp-1k:nat64-udp-1k");
        let p = parse_pairs(&["fullnat-udp-1k@a:fullnat-udp-1k@b".into()], true).unwrap();
        assert_eq!(p[0].b.build, Build::B);
        assert_eq!(p[0].label(), "fullnat-udp-1k@a:fullnat-udp-1k@b");
        assert!(parse_pairs(&["fullnat-udp-1k@a:fullnat-udp-1k@b".into()], false).is_err());
        assert!(parse_pairs(&["fullnat-udp-1k".into()], false).is_err());
        assert!(parse_pairs(&["x@c:y".into()], false).is_err());
        assert!(parse_pairs(&["x:x".into()], false).is_err());
        assert!(parse_pairs(&[], false).is_err());
        assert_eq!(parse_pairs(&["issues".into()], false).unwrap().len(), 5);
        assert_eq!(parse_pairs(&["issues".into()], true).unwrap().len(), 7);
        // Every pair of the issue set names real scenarios with a measurement.
        let all: Vec<Scenario> = crate::scenarios::full();
        for p in parse_pairs(&["issues".into()], true).unwrap() {
            assert!(scenario_for(&p.a.id, &all).unwrap().duration <= MEASURE_S);
            scenario_for(&p.b.id, &all).unwrap();
            assert!(!goals(&p).is_empty(), "{}", p.label());
        }
        assert!(scenario_for("nope", &all).is_err());
        assert!(scenario_for("synflood", &crate::scenarios::extra()).is_err());
    }

    #[test]
    fn goals_follow_the_pair() {
        let g = |s: &str| goals(&parse_pair(s).unwrap());
        assert_eq!(g("fullnat-udp-1k:fullnat6-udp-1k")[0].hi, 1.3);
        assert!(g("fullnat-tcp-1k:nat64-tcp-1k")[0].what.contains("NAT64"));
        assert!(g("fullnat-udp-1k:nat64-tcp-1k").is_empty()); // different protocols
        let t = g("testpmd-64:fullnat-udp-1k");
        assert_eq!((t[0].hi, t[0].p99, t[1].hi, t[1].p99), (1.7, false, 2.0, true));
        // Build b is the reference: the build under test may be faster, and
        // at most 3 % slower, whichever side it stands on.
        let within = |g: &Goal, x: f64| x >= g.lo && x <= g.hi;
        let b = g("fullnat-udp-1k@a:fullnat-udp-1k@b"); // B/A = reference / new
        assert!(within(&b[0], 1.0) && within(&b[0], 1.25) && within(&b[0], 0.975), "{b:?}");
        assert!(!within(&b[0], 0.96), "{b:?}");
        let b = g("fullnat-udp-new@b:fullnat-udp-new@a"); // B/A = new / reference
        assert!(within(&b[0], 1.0) && within(&b[0], 0.8) && within(&b[0], 1.025), "{b:?}");
        assert!(!within(&b[0], 1.04), "{b:?}");
        assert!(g("nat-udp-100k:dr-udp-100k").is_empty());
        assert_eq!(g("fullnat-udp-1k:fullnat-udp-1m")[0].hi, 1.5);
        assert_eq!(g("fullnat-tcp-1k:fullnat-tcp-10m")[0].hi, 2.0);
        assert!(g("fullnat-udp-1k:fullnat-udp-100k").is_empty());
        assert!(g("fullnat-udp-1k:fullnat-tcp-1m").is_empty());
        let all = crate::scenarios::full();
        for p in parse_pairs(&["scale".into()], false).unwrap() {
            scenario_for(&p.b.id, &all).unwrap();
            assert_eq!(goals(&p).len(), 1, "{}", p.label());
        }
    }

    #[test]
    fn rounds_split_by_the_cpu_links_level() {
        let at = |m: Measured, before: f64, after: f64| Measured { cpu_link_rtt: Some((before, after)), ..m };
        let r = PairResult {
            pair: parse_pair("testpmd-64:fullnat-udp-1k").unwrap(),
            rounds: vec![
                // Near on both sides: 2.5x; far on both: 1.5x.
                Round {
                    a_first: true,
                    a: at(tp(95.0, Some(5.0)), 200.0, 180.0),
                    b: at(gw(200.0, 237.5, Some(15.0)), 150.0, 300.0),
                },
                Round {
                    a_first: false,
                    a: at(tp(240.0, Some(10.0)), 900.0, 950.0),
                    b: at(gw(300.0, 360.0, Some(20.0)), 1000.0, 880.0),
                },
                Round {
                    a_first: true,
                    a: at(tp(94.0, Some(5.0)), 210.0, 220.0),
                    b: at(gw(200.0, 235.0, Some(10.0)), 190.0, 200.0),
                },
                // The level changed during B, and differed between the sides.
                Round {
                    a_first: false,
                    a: at(tp(95.0, Some(5.0)), 200.0, 200.0),
                    b: at(gw(250.0, 300.0, Some(9.0)), 200.0, 900.0),
                },
                Round {
                    a_first: true,
                    a: at(tp(240.0, Some(5.0)), 900.0, 900.0),
                    b: at(gw(200.0, 240.0, Some(9.0)), 200.0, 200.0),
                },
            ],
            failed: 0,
        };
        assert_eq!(
            r.rounds.iter().map(Round::level).collect::<Vec<_>>(),
            [Some(Level::Near), Some(Level::Far), Some(Level::Near), None, None]
        );
        let (n, c, p) = r.at_level(Level::Near);
        assert_eq!((n, c.unwrap().lo, c.unwrap().hi, p.unwrap().median), (2, 2.5, 2.5, 2.5));
        let (n, c, p) = r.at_level(Level::Far);
        assert_eq!((n, c.unwrap().median, p.unwrap().median), (1, 1.5, 2.0));
        assert_eq!(Measured::default().level(), None);
        let md = markdown(std::slice::from_ref(&r), &env(), &Builds { a: "g".into(), b: None }, 5);
        assert!(md.contains("| `testpmd-64:fullnat-udp-1k` | 2 | 2.500 (2.500–2.500) | 2.50"), "{md}");
        assert!(md.contains("| 1 | 1.500 (1.500–1.500) | 2.00 (2.00–2.00) |"), "{md}");
        // Each side's probes: one figure, or before→after when it moved.
        assert!(md.contains("| 925 / 1000→880 |"), "{md}");
        // Without probes (older results) there is no such section.
        let plain = PairResult {
            rounds: vec![Round { a_first: true, a: tp(95.0, None), b: gw(200.0, 237.5, None) }],
            ..r.clone()
        };
        let md = markdown(std::slice::from_ref(&plain), &env(), &Builds { a: "g".into(), b: None }, 1);
        assert!(!md.contains("By the CPU link"), "{md}");
    }

    #[test]
    fn ratios_are_the_median_of_per_round_ratios() {
        // Round 2 is a slow minute for both sides: the per-round ratio holds.
        let r = PairResult {
            pair: parse_pair("testpmd-64:fullnat-udp-1k").unwrap(),
            rounds: vec![
                Round { a_first: true, a: tp(200.0, Some(10.0)), b: gw(290.0, 300.0, Some(15.0)) },
                Round { a_first: false, a: tp(500.0, Some(40.0)), b: gw(700.0, 800.0, Some(100.0)) },
                Round { a_first: true, a: tp(180.0, None), b: gw(320.0, 330.0, Some(12.0)) },
            ],
            failed: 1,
        };
        let c = r.cycles_ratio().unwrap();
        assert_eq!((c.median, c.lo, c.n), (1.6, 1.5, 3));
        assert!((c.hi - 330.0 / 180.0).abs() < 1e-12);
        assert_eq!(r.a_cycles().unwrap(), Stat { median: 200.0, lo: 180.0, hi: 500.0, n: 3 });
        // Ratios of rounds where both sides have a p99: 1.5 and 2.5.
        let p = r.p99_ratio().unwrap();
        assert_eq!((p.median, p.lo, p.hi, p.n), (2.0, 1.5, 2.5, 2));
        // The ratio of the sides' medians (330 / 200) differs: it pairs
        // measurements of different moments.
        assert_eq!(r.b_cycles().unwrap().median / r.a_cycles().unwrap().median, 1.65);
        assert!(!smoke_ok(std::slice::from_ref(&r))); // a round failed
                                                      // A round whose gatewayd was not saturated leaves the cycles figures.
        let mut u = r.clone();
        let slow = Measured { dut_busy_pct: Some(45.0), ..gw(2000.0, 2000.0, Some(20.0)) };
        u.rounds.push(Round { a_first: false, a: tp(200.0, Some(10.0)), b: slow });
        assert_eq!((u.unsaturated(), u.cycles_ratio(), u.b_cycles()), (1, r.cycles_ratio(), r.b_cycles()));
        assert_eq!(u.p99_ratio().unwrap().n, 3);
        let md = markdown(std::slice::from_ref(&u), &env(), &Builds { a: "g".into(), b: None }, 4);
        assert!(md.contains("| 4 (1 not saturated, 1 failed) |"), "{md}");
        assert!(md.contains("| 10.000 (not saturated) |"), "{md}");
        let none = PairResult { rounds: u.rounds[3..].to_vec(), failed: 0, ..u.clone() };
        let md = markdown(std::slice::from_ref(&none), &env(), &Builds { a: "g".into(), b: None }, 1);
        assert!(md.contains("| no round with both DUTs saturated (1 not saturated) | – |"), "{md}");
        // Between two gatewayd sides, the measurement's own figure.
        let two = Round { a_first: true, a: gw(100.0, 150.0, None), b: gw(120.0, 200.0, None) };
        assert_eq!(two.cycles_ratio(), Some(1.2));

        let builds = Builds { a: "target/release/gatewayd".into(), b: None };
        let md = markdown(std::slice::from_ref(&r), &env(), &builds, 4);
        assert!(md.contains("`benches/run.sh --ratio issues --rounds 3`"), "{md}");
        assert!(md.contains("Test CPU, 2 CPUs"), "{md}");
        assert!(
            md.contains(
                "| `testpmd-64:fullnat-udp-1k` | 3 (1 failed) | 200 (180–500) | 330 (300–800) | 1.600 (1.500–1.833) | 25.0 (10.0–40.0) | 15.0 (12.0–100.0) | 2.00 (1.50–2.50) |"
            ),
            "{md}"
        );
        assert!(md.contains(
            "| issue 14: 1k at most 1.7x testpmd's cycles/packet | `testpmd-64:fullnat-udp-1k` | 1.600x: median of 3 interleaved rounds, range 1.500–1.833 | yes (median; 2 of 3 rounds) |"
        ));
        assert!(md.contains("within 2x of testpmd's | `testpmd-64:fullnat-udp-1k` | 2.000x: median of 2 interleaved rounds, range 1.500–2.500 | yes (median; 1 of 2 rounds) |"), "{md}");
        assert!(
            md.contains("| `testpmd-64:fullnat-udp-1k` | 2 | B | 500 | 800 | 1.600 | 40.0 / 100.0 |"),
            "{md}"
        );

        let dir = std::env::temp_dir().join(format!("gwbench-ratios-{}", std::process::id()));
        write(&dir, std::slice::from_ref(&r), &env(), &builds, 4).unwrap();
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("ratios.json")).unwrap()).unwrap();
        assert_eq!(j["pairs"][0]["cycles_ratio"]["median"], 1.6);
        assert_eq!(j["pairs"][0]["label"], "testpmd-64:fullnat-udp-1k");
        assert_eq!(j["pairs"][0]["pair"]["b"]["id"], "fullnat-udp-1k");
        assert_eq!(j["pairs"][0]["rounds"].as_array().unwrap().len(), 3);
        assert_eq!(j["pairs"][0]["goals"].as_array().unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missed_goal_and_builds_render() {
        let r = PairResult {
            pair: parse_pair("fullnat-udp-1k@a:fullnat-udp-1k@b").unwrap(),
            // The build under test (a) 5 % slower than the reference (b).
            rounds: vec![Round { a_first: true, a: m(300.0, None), b: m(285.0, None) }],
            failed: 0,
        };
        assert!(smoke_ok(std::slice::from_ref(&r)));
        let builds = Builds { a: "a/gatewayd".into(), b: Some("b/gatewayd".into()) };
        let md = markdown(std::slice::from_ref(&r), &env(), &builds, 1);
        assert!(md.contains("build a `a/gatewayd`, build b `b/gatewayd`."), "{md}");
        assert!(
            md.contains("0.950x: median of 1 interleaved rounds, range 0.950–0.950 | **no** (every round) |"),
            "{md}"
        );
        assert!(md.contains("| – | – | – |"), "{md}"); // no p99 without a half-load phase
    }
}
