//! gw-benchrun: runs issue 5's benchmark scenarios and writes the results.
//!
//! For each scenario it starts the device under test (gatewayd with one
//! busy-polling worker pinned to CPU 1, or dpdk-testpmd macswap as the
//! ceiling) with two memif server ports, runs gw-pktgen on CPU 0 against
//! them, reads gatewayd's counters, RSS and the generator's report, and
//! stops everything. At the end it writes `results.md`, `results.json` and
//! `plot.svg`. `--ratio A:B --rounds N` instead runs pairs of scenarios
//! back to back in interleaved rounds and writes `ratios.md`/`ratios.json`
//! (see [`ratio`]). `--smoke` runs one short FULLNAT scenario and one ratio
//! round, and fails unless packets came back through the gateway (for CI).
//!
//! Every child is stopped by pid when the runner ends, on any path,
//! including SIGINT/SIGTERM; the scratch directory and DPDK's runtime
//! directories of our file prefixes are removed.

#![forbid(unsafe_code)]

mod alternate;
mod cpulink;
mod procs;
mod ratio;
mod results;
mod run;
mod scenarios;
mod synflood;
mod synproxy_flood;
mod trace;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use gw_benches::traffic::table::{self, Row};

/// gw-benchrun: gatewayd's benchmark harness (issue 5). Usually started by
/// benches/run.sh, which builds everything first.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// One short FULLNAT run that must forward traffic (exit 1 otherwise).
    #[arg(long)]
    smoke: bool,
    /// Only these scenario ids (comma separated; see --list).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Write results.md and plot.svg again from this results.json (its ratios
    /// and goals recomputed by this build's rules), into --out or next to it.
    #[arg(long)]
    render: Option<PathBuf>,
    /// Where results.md, results.json and plot.svg go (default: benches/results,
    /// or nowhere for --smoke).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scratch directory (created, and removed at the end).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// The gatewayd binary (default: next to this one).
    #[arg(long)]
    gatewayd: Option<PathBuf>,
    /// The gw-pktgen binary (default: next to this one).
    #[arg(long)]
    pktgen: Option<PathBuf>,
    /// dpdk-testpmd.
    #[arg(long, default_value = "dpdk-testpmd")]
    testpmd: PathBuf,
    /// Directory of the bench-*.toml gatewayd configs.
    #[arg(long)]
    conf_dir: Option<PathBuf>,
    /// Seconds to wait before each scenario for other processes to leave
    /// the CPUs (a shared machine); the run goes ahead afterwards and the
    /// row says how busy the machine was.
    #[arg(long, default_value_t = 5.0)]
    quiet_wait: f64,
    /// Interleaved ratios instead of the table: pairs A:B of scenario ids
    /// (comma separated; `issues` for the pairs of issues 14 and 17; a side
    /// `ID@b` runs --gatewayd-b). Writes ratios.md and ratios.json.
    #[arg(long, value_delimiter = ',')]
    ratio: Vec<String>,
    /// Rounds of each --ratio pair (the side that goes first alternates).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// A second gatewayd build, for --ratio sides written `ID@b`.
    #[arg(long)]
    gatewayd_b: Option<PathBuf>,
    /// IPv6 and IPv4 in alternating phases of one gatewayd (issue 17's
    /// ratios on a noisy machine): `issue17`, or IPv6 row ids (FULLNAT66,
    /// NAT64), each against the IPv4 FULLNAT row of its protocol. Writes
    /// alternate.md and alternate.json.
    #[arg(long, value_delimiter = ',')]
    alternate: Vec<String>,
    /// Pairs of phases (IPv4, IPv6) per --alternate row.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pairs: u32,
    /// --alternate runs per row, a new gatewayd each (a process's memory
    /// placement is its own); the rows take turns.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    alt_runs: u32,
    /// Length of one --alternate phase, milliseconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(50..=10_000))]
    phase_ms: u32,
    /// Print gatewayd's cycles/packet per 100 ms over a long measurement of
    /// this scenario (is the machine's speed level per process, or does it
    /// switch within one?).
    #[arg(long)]
    trace: Option<String>,
    /// Seconds of the --trace measurement.
    #[arg(long, default_value_t = 30.0)]
    trace_seconds: f64,
    /// --trace runs (a new gatewayd each).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    trace_runs: u32,
    /// Keep the scratch directory (configs and logs) for a look afterwards.
    #[arg(long)]
    keep: bool,
}

fn main() {
    let args = Args::parse();
    if !run::keep_off_the_dut_cpu() {
        eprintln!(
            "gw-benchrun: could not pin itself to CPU {}: its wake-ups may take the DUT's CPU",
            run::GEN_CPU
        );
    }
    match real_main(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("gw-benchrun: {e:#}");
            std::process::exit(1);
        }
    }
}

/// The repository root (this crate is `benches/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf()
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Removes the scratch directory when the run ends, however it ends.
struct Scratch {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("gw-benchrun: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn real_main(args: Args) -> Result<i32> {
    if let Some(json) = &args.render {
        let out = args.out.clone().or_else(|| json.parent().map(Path::to_path_buf)).unwrap_or_default();
        results::render(json, &out)?;
        eprintln!("gw-benchrun: wrote {}/results.md, results.json, plot.svg", out.display());
        return Ok(0);
    }
    let mut list = if args.smoke { scenarios::smoke() } else { scenarios::full() };
    if !args.only.is_empty() {
        let all: Vec<_> =
            scenarios::full().into_iter().chain(scenarios::smoke()).chain(scenarios::extra()).collect();
        list = args
            .only
            .iter()
            .map(|id| {
                all.iter()
                    .find(|s| &s.id == id)
                    .cloned()
                    .with_context(|| format!("no scenario {id:?} (see --list)"))
            })
            .collect::<Result<_>>()?;
    }
    if args.list {
        for s in &list {
            println!("{:<24} {} ({} flows, {} B)", s.id, s.title, s.flows, s.frames());
        }
        if args.only.is_empty() && !args.smoke {
            for s in scenarios::extra() {
                println!("{:<24} {} (only with --only {}; writes {}.md)", s.id, s.title, s.id, s.id);
            }
        }
        if args.only.is_empty() && !args.smoke {
            println!("--ratio issues: {}", ratio::ISSUE_PAIRS.join(" "));
            println!("  with --gatewayd-b also: {}", ratio::BUILD_PAIRS.join(" "));
            println!("--ratio scale: {}", ratio::SCALE_PAIRS.join(" "));
            println!(
                "--alternate issue17: {} (each against the IPv4 FULLNAT row of its protocol)",
                alternate::ISSUE17.join(" ")
            );
        }
        return Ok(0);
    }
    let stop = gw_dpdk::stop_on_signals().context("installing signal handlers")?;
    let tag = format!("gwbench{}", std::process::id());
    let dir = args.run_dir.clone().unwrap_or_else(|| PathBuf::from(format!("/run/{tag}")));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _scratch = Scratch { dir: dir.clone(), keep: args.keep };
    let ctx = run::Ctx {
        dir,
        tag,
        conf_dir: args.conf_dir.clone().unwrap_or_else(|| repo().join("conf")),
        gatewayd: args.gatewayd.clone().unwrap_or_else(|| sibling("gatewayd")),
        pktgen: args.pktgen.clone().unwrap_or_else(|| sibling("gw-pktgen")),
        testpmd: args.testpmd.clone(),
        stop,
        quiet_wait: if args.smoke { 0.0 } else { args.quiet_wait },
    };
    for (what, p) in [("gatewayd", &ctx.gatewayd), ("gw-pktgen", &ctx.pktgen)] {
        if !p.exists() {
            bail!("{what} not found at {} (build it, or pass --{what})", p.display());
        }
    }
    if !args.ratio.is_empty() {
        return ratios(&args, &ctx);
    }
    if !args.alternate.is_empty() {
        return alternations(&args, &ctx);
    }
    if let Some(id) = &args.trace {
        let all: Vec<_> = scenarios::full().into_iter().chain(scenarios::smoke()).collect();
        let s =
            all.iter().find(|s| &s.id == id).with_context(|| format!("no scenario {id:?} (see --list)"))?;
        if !(args.trace_seconds > 0.0 && args.trace_seconds <= 3600.0) {
            bail!("--trace-seconds must be in (0, 3600]");
        }
        trace::run(&ctx, s, args.trace_seconds, args.trace_runs)?;
        return Ok(0);
    }

    let started = Instant::now();
    let mut rows: Vec<Row> = vec![];
    let mut failed = vec![];
    for (i, s) in list.iter().enumerate() {
        if stop.load(Relaxed) {
            bail!("interrupted");
        }
        eprintln!(
            "gw-benchrun: [{}/{}] {} — {} ({} flows, {} B)",
            i + 1,
            list.len(),
            s.id,
            s.title,
            s.flows,
            s.frames()
        );
        let t = Instant::now();
        if s.syn_flood > 0.0 {
            match run::flood_scenario(&ctx, s) {
                Ok((report, others)) if s.synproxy => {
                    println!("{}", synproxy_flood::table(&report));
                    let out = args.out.clone().unwrap_or_else(|| repo().join("benches/results"));
                    let command = format!("benches/run.sh --only {}", s.id);
                    let env =
                        results::Env::collect(&repo(), report.tsc_hz, t.elapsed().as_secs_f64(), &command);
                    synproxy_flood::write(&out, s, &report, others, &env)?;
                    eprintln!("gw-benchrun: wrote {}/synproxy_flood.md, synproxy_flood.json", out.display());
                }
                Ok((report, others)) => {
                    println!("{}", synflood::table(&report));
                    let out = args.out.clone().unwrap_or_else(|| repo().join("benches/results"));
                    let command = format!("benches/run.sh --only {}", s.id);
                    let env =
                        results::Env::collect(&repo(), report.tsc_hz, t.elapsed().as_secs_f64(), &command);
                    synflood::write(&out, s, &report, others, &env)?;
                    eprintln!("gw-benchrun: wrote {}/synflood.md, synflood.json", out.display());
                }
                Err(e) => {
                    eprintln!("gw-benchrun: {} FAILED: {e:#}", s.id);
                    failed.push(s.id.clone());
                }
            }
            continue;
        }
        match run::scenario_saturated(&ctx, s) {
            Ok(row) => {
                eprintln!(
                    "gw-benchrun: {} done in {:.1} s: {:.3} Mpps, {} cycles/pkt, drop {:.2} %, DUT busy {}",
                    s.id,
                    t.elapsed().as_secs_f64(),
                    row.mpps,
                    row.cycles_per_packet.map_or("–".into(), |c| format!("{c:.0}")),
                    row.drop_pct,
                    row.dut_busy_pct.map_or("–".into(), |b| format!("{b:.0} %")),
                );
                rows.push(row);
            }
            Err(e) => {
                eprintln!("gw-benchrun: {} FAILED: {e:#}", s.id);
                failed.push(s.id.clone());
                if stop.load(Relaxed) {
                    bail!("interrupted");
                }
            }
        }
    }
    if rows.is_empty() && !list.is_empty() && list.iter().all(|s| s.syn_flood > 0.0) {
        // Only the SYN-flood measurement ran: it wrote its own files.
        return Ok(if failed.is_empty() { 0 } else { 1 });
    }
    results::add_testpmd_ratios(&mut rows);
    let elapsed = started.elapsed().as_secs_f64();
    println!("{}", table::markdown(&rows));
    println!("{} scenarios in {elapsed:.0} s", rows.len());

    if args.smoke {
        // The alternation too: one row, a few short pairs.
        let alt = alternate::run(
            &ctx,
            &alternate::parse(&["nat64-udp-1k".into()], &scenarios::full())?,
            3,
            150,
            1,
        )?;
        let env = results::Env::collect(
            &repo(),
            hz_of(&rows),
            started.elapsed().as_secs_f64(),
            "benches/run.sh --smoke",
        );
        println!("{}", alternate::markdown(&alt, &env));
        let alt_ok = alternate::smoke_ok(&alt);
        if !alt_ok {
            println!("smoke: the alternation did not measure a pair");
        }
        // The ratio path too: one round of one pair.
        let all = ratio::smoke_scenarios(&scenarios::full());
        let res = ratio::run(&ctx, None, &[ratio::smoke_pair()], &all, 1)?;
        let builds = ratio::Builds { a: ctx.gatewayd.clone(), b: None };
        let env = results::Env::collect(
            &repo(),
            hz_of(&rows),
            started.elapsed().as_secs_f64(),
            "benches/run.sh --smoke",
        );
        println!("{}", ratio::markdown(&res, &env, &builds, 1));
        return Ok(smoke_verdict(&rows, &failed, ratio::smoke_ok(&res)).max(i32::from(!alt_ok)));
    }
    let out = args.out.clone().unwrap_or_else(|| repo().join("benches/results"));
    let hz = hz_of(&rows);
    let command = if args.only.is_empty() {
        "benches/run.sh".to_string()
    } else {
        format!("benches/run.sh --only {}", args.only.join(","))
    };
    let env = results::Env::collect(&repo(), hz, elapsed, &command);
    results::write(&out, &rows, &env)?;
    eprintln!("gw-benchrun: wrote {}/results.md, results.json, plot.svg", out.display());
    if !failed.is_empty() {
        eprintln!("gw-benchrun: failed scenarios: {}", failed.join(", "));
        return Ok(1);
    }
    Ok(0)
}

fn hz_of(rows: &[Row]) -> u64 {
    rows.first().map_or(0, |r| r.tsc_hz)
}

/// `--ratio`: the pairs in interleaved rounds, then ratios.md and .json.
fn ratios(args: &Args, ctx: &run::Ctx) -> Result<i32> {
    let pairs = ratio::parse_pairs(&args.ratio, args.gatewayd_b.is_some())?;
    let ctx_b = match &args.gatewayd_b {
        Some(b) if !b.exists() => bail!("--gatewayd-b: {} not found", b.display()),
        Some(b) => Some(run::Ctx { gatewayd: b.clone(), ..ctx.clone() }),
        None => None,
    };
    let mut all: Vec<_> =
        scenarios::full().into_iter().chain(scenarios::smoke()).chain(scenarios::extra()).collect();
    if args.smoke {
        all = ratio::smoke_scenarios(&all);
    }
    let started = Instant::now();
    let res = ratio::run(ctx, ctx_b.as_ref(), &pairs, &all, args.rounds)?;
    let mut command = format!("benches/run.sh --ratio {} --rounds {}", args.ratio.join(","), args.rounds);
    if let Some(b) = &args.gatewayd_b {
        command.push_str(&format!(" --gatewayd-b {}", b.display()));
    }
    let hz = ratio::tsc_hz(&res);
    let env = results::Env::collect(&repo(), hz, started.elapsed().as_secs_f64(), &command);
    let builds = ratio::Builds { a: ctx.gatewayd.clone(), b: args.gatewayd_b.clone() };
    println!("{}", ratio::markdown(&res, &env, &builds, args.rounds));
    if args.smoke {
        let ok = ratio::smoke_ok(&res);
        println!("smoke: {} passed, {} failed", u32::from(ok), u32::from(!ok));
        return Ok(if ok { 0 } else { 1 });
    }
    let out = args.out.clone().unwrap_or_else(|| repo().join("benches/results"));
    ratio::write(&out, &res, &env, &builds, args.rounds)?;
    eprintln!("gw-benchrun: wrote {}/ratios.md, ratios.json", out.display());
    Ok(if res.iter().any(|r| r.rounds.is_empty()) { 1 } else { 0 })
}

/// `--alternate`: each row's alternation, then alternate.md and .json.
fn alternations(args: &Args, ctx: &run::Ctx) -> Result<i32> {
    let rows = alternate::parse(&args.alternate, &scenarios::full())?;
    let started = Instant::now();
    let res = alternate::run(ctx, &rows, args.pairs, args.phase_ms, args.alt_runs)?;
    let command = format!(
        "benches/run.sh --alternate {} --pairs {} --phase-ms {} --alt-runs {}",
        args.alternate.join(","),
        args.pairs,
        args.phase_ms,
        args.alt_runs
    );
    let hz = res.iter().flat_map(|r| &r.runs).map(|r| r.tsc_hz).max().unwrap_or(0);
    let env = results::Env::collect(&repo(), hz, started.elapsed().as_secs_f64(), &command);
    println!("{}", alternate::markdown(&res, &env));
    let out = args.out.clone().unwrap_or_else(|| repo().join("benches/results"));
    alternate::write(&out, &res, &env)?;
    eprintln!("gw-benchrun: wrote {}/alternate.md, alternate.json", out.display());
    Ok(if res.iter().any(|r| r.failed() || r.pairs() == 0) { 1 } else { 0 })
}

/// The smoke run passes when packets went through the gateway both ways and
/// came back to the clients, and the ratio round measured both sides.
fn smoke_verdict(rows: &[Row], failed: &[String], ratio_ok: bool) -> i32 {
    let ok = failed.is_empty() && rows.iter().all(|r| r.mpps > 0.0 && r.latency_max_load.samples > 0);
    let (passed, fails) = (u32::from(ok) + u32::from(ratio_ok), u32::from(!ok) + u32::from(!ratio_ok));
    if !ok {
        println!("smoke: no traffic came back through gatewayd");
    }
    if !ratio_ok {
        println!("smoke: the ratio round did not measure both sides");
    }
    println!("smoke: {passed} passed, {fails} failed");
    i32::from(fails > 0)
}
