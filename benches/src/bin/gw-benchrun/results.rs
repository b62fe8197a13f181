//! Writing a run's results: `results.md` (environment, table, goals),
//! `results.json` (every row) and `plot.svg`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use gw_benches::traffic::plot::{self, Reference, Series};
use gw_benches::traffic::table::{self, Row};
use serde::{Deserialize, Serialize};

/// Where and on what the run happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Env {
    pub date_utc: String,
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
    pub dpdk: String,
    pub gatewayd_rev: String,
    pub tsc_mhz: f64,
    pub elapsed_s: f64,
    pub command: String,
}

fn cmd_out(prog: &str, args: &[&str]) -> String {
    Command::new(prog)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl Env {
    /// The line under a flood report's title: the command, when, which
    /// gatewayd, for how long, and on what machine.
    pub fn flood_header(&self) -> String {
        format!(
            "`{}` ({}, gatewayd `{}`, {:.0} s), {} ({} CPUs, TSC {:.0} MHz, {}, DPDK {}).\n",
            self.command,
            self.date_utc,
            self.gatewayd_rev,
            self.elapsed_s,
            self.cpu,
            self.cpus,
            self.tsc_mhz,
            self.kernel,
            self.dpdk
        )
    }

    pub fn collect(repo: &Path, tsc_hz: u64, elapsed_s: f64, command: &str) -> Env {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".into(), |s| s.trim().to_string());
        let repo = repo.to_string_lossy().to_string();
        let rev = cmd_out("git", &["-C", &repo, "describe", "--always", "--dirty"]);
        Env {
            date_utc: cmd_out("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            cpu,
            cpus: crate::procs::online_cpus(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            dpdk: cmd_out("pkg-config", &["--modversion", "libdpdk"]),
            gatewayd_rev: rev,
            tsc_mhz: tsc_hz as f64 / 1e6,
            elapsed_s,
            command: command.to_string(),
        }
    }
}

/// Fills in the ratios to the testpmd rows with the same frame sizes: the
/// best of them (highest Mpps, lowest cycles/packet), since a slow moment of
/// a shared machine can only make the ceiling look lower than it is. Only
/// the testpmd rows that ran at the row's CPU link level count when there
/// are any (the level adds the same cycles to both: `table::level`);
/// otherwise all of them, and `vs_testpmd_same_level` says the ratio
/// compares two levels.
pub fn add_testpmd_ratios(rows: &mut [Row]) {
    let p99 = |r: &Row| r.latency_half_load.as_ref().and_then(|l| l.p99_us).filter(|p| *p > 0.0);
    type Ceiling = (String, f64, Option<f64>, Option<f64>, Option<table::Level>);
    let ceilings: Vec<Ceiling> = rows
        .iter()
        .filter(|r| r.dut.starts_with("testpmd"))
        .map(|r| (r.frames.clone(), r.mpps, r.cycles_per_packet, p99(r), r.level()))
        .collect();
    for r in rows.iter_mut().filter(|r| !r.dut.starts_with("testpmd")) {
        let frames: Vec<_> = ceilings.iter().filter(|c| c.0 == r.frames).collect();
        let level = r.level();
        let at_level: Vec<_> = frames.iter().copied().filter(|c| level.is_some() && c.4 == level).collect();
        r.vs_testpmd_same_level = match (frames.is_empty(), at_level.is_empty()) {
            (true, _) => None,
            (false, false) => Some(true),
            (false, true) if level.is_none() && frames.iter().all(|c| c.4.is_none()) => None,
            (false, true) => Some(false),
        };
        let same = if at_level.is_empty() { frames } else { at_level };
        let mpps = same.iter().map(|c| c.1).fold(0.0, f64::max);
        let cycles = same.iter().filter_map(|c| c.2).filter(|c| *c > 0.0).reduce(f64::min);
        r.vs_testpmd_mpps = (mpps > 0.0).then(|| r.mpps / mpps);
        // testpmd's figure spans its whole run and counts only its bursts
        // that received: compare gatewayd's counted so over the same phases.
        r.vs_testpmd_cycles = match (r.testpmd_comparable_cycles(), cycles) {
            (Some(a), Some(b)) => Some(a / b),
            _ => None,
        };
        // The lowest testpmd p99 (a slow moment only raises it).
        let tp_p99 = same.iter().filter_map(|c| c.3).reduce(f64::min);
        r.vs_testpmd_p99_half = p99(r).zip(tp_p99).map(|(a, b)| a / b);
    }
}

/// The best testpmd row for `frames` (lowest cycles/packet).
fn best_ceiling<'a>(rows: &'a [Row], frames: &str) -> Option<&'a Row> {
    rows.iter().filter(|r| r.dut.starts_with("testpmd") && r.frames == frames).min_by(|a, b| {
        a.cycles_per_packet.unwrap_or(f64::MAX).total_cmp(&b.cycles_per_packet.unwrap_or(f64::MAX))
    })
}

/// One goal of issue 5, measured.
struct Goal {
    goal: &'static str,
    measured: String,
    met: Option<bool>,
}

fn goals(rows: &[Row]) -> Vec<Goal> {
    let by = |id: &str| rows.iter().find(|r| r.id == id);
    let mut g = vec![];
    let hot = by("fullnat-udp-1k");
    g.push(Goal {
        goal: "FULLNAT 64 B established: >= 9 Mpps per core from cycles/packet (3x DPVS's 2.9)",
        measured: hot.and_then(Row::capacity_mpps).map_or("not run".into(), |m| {
            format!(
                "{m:.2} Mpps/core ({:.0} cycles/pkt, fullnat-udp-1k)",
                hot.and_then(|r| r.cycles_per_packet).unwrap_or(0.0)
            )
        }),
        met: hot.and_then(Row::capacity_mpps).map(|m| m >= 9.0),
    });
    // A ratio of two rows that ran at different CPU link levels says
    // more about the host than about gatewayd: no verdict.
    let tp_levels = hot.and_then(|r| r.vs_testpmd_same_level) != Some(false);
    const OTHER_LEVEL: &str =
        "; testpmd ran at another CPU link level (near/far): not comparable, see ratios.md";
    let tp_note = if tp_levels { "" } else { OTHER_LEVEL };
    g.push(Goal {
        goal: "cycles/packet no worse than 2x testpmd macswap on the same link",
        measured: hot
            .and_then(|r| r.vs_testpmd_cycles)
            .map_or("not run".into(), |x| format!("{x:.2}x (fullnat-udp-1k){tp_note}")),
        met: hot.and_then(|r| r.vs_testpmd_cycles).map(|x| x <= 2.0).filter(|_| tp_levels),
    });
    let new = by("fullnat-udp-new");
    // TCP sessions as UDP's are counted (SYN and SYN+ACK, `fullnat-tcp-syn`);
    // a run without that row falls back to whole connections.
    let (tcp_id, tcp_what) = match by("fullnat-tcp-syn") {
        Some(_) => ("fullnat-tcp-syn", "SYN + SYN+ACK"),
        None => ("fullnat-tcp-new", "whole connections"),
    };
    let tcp = by(tcp_id).and_then(|r| r.new_sessions_per_s);
    g.push(Goal {
        goal: "issue 5: >= 2M new sessions per second per core with 1M+ live (issue 14: and >= 1.5M TCP)",
        measured: new.and_then(|r| r.new_sessions_per_s).map_or("not run".into(), |v| {
            format!(
                "{:.2} M/s UDP, {} TCP ({tcp_what})",
                v / 1e6,
                tcp.map_or("–".into(), |t| format!("{:.2} M/s", t / 1e6))
            )
        }),
        met: new.and_then(|r| r.new_sessions_per_s).map(|v| v >= 2e6 && tcp.is_none_or(|t| t >= 1.5e6)),
    });
    let bps = rows
        .iter()
        .filter_map(|r| r.bytes_per_session)
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    g.push(Goal {
        goal: "<= 128 bytes per session, both directions' index included",
        measured: bps
            .map_or("not run".into(), |b| format!("{b:.1} B (largest over the runs, gatewayd's accounting)")),
        met: bps.map(|b| b <= 128.0),
    });
    let big = by("fullnat-udp-10m");
    g.push(Goal {
        goal: "10M sessions in <= 2 GiB",
        measured: big.and_then(|r| r.rss_mib).map_or("not run".into(), |m| {
            format!("RSS {m:.0} MiB with {} sessions live", big.and_then(|r| r.sessions_live).unwrap_or(0))
        }),
        met: big.and_then(|r| r.rss_mib).map(|m| m <= 2048.0),
    });
    let p99 = hot.and_then(|r| r.latency_half_load).and_then(|l| l.p99_us);
    g.push(Goal {
        goal: "latency at half load: p99 < 20 µs",
        measured: p99.map_or("not run".into(), |p| {
            format!("{p:.1} µs (fullnat-udp-1k, round trip through the gateway twice)")
        }),
        met: p99.map(|p| p < 20.0),
    });
    let vs = hot.and_then(|r| r.vs_testpmd_p99_half);
    g.push(Goal {
        goal: "issue 14: p99 at half load within 2x of testpmd's p99 on the same link, same run",
        measured: vs.map_or("not run".into(), |x| {
            format!(
                "{:.1} µs against testpmd's {:.1} µs: {x:.2}x (fullnat-udp-1k){tp_note}",
                p99.unwrap_or(0.0),
                p99.unwrap_or(0.0) / x
            )
        }),
        met: vs.map(|x| x <= 2.0).filter(|_| tp_levels),
    });
    let cliff = match (hot, big) {
        (Some(a), Some(b)) if b.mpps > 0.0 && a.mpps > 0.0 => {
            let c = match (a.cycles_per_packet, b.cycles_per_packet) {
                (Some(x), Some(y)) if x > 0.0 => format!(", cycles/pkt {:.2}x", y / x),
                _ => String::new(),
            };
            Some((a.mpps / b.mpps, format!("1k/10M Mpps ratio {:.2}{c}", a.mpps / b.mpps)))
        }
        _ => None,
    };
    // Two gatewayd rows: comparable when both ran at one level.
    let level_of = |r: Option<&Row>| r.map(Row::level);
    let comparable = |a: Option<&Row>, b: Option<&Row>| {
        let (la, lb) = (level_of(a).flatten(), level_of(b).flatten());
        let unmeasured =
            a.is_some_and(|r| r.cpu_link_rtt.is_none()) && b.is_some_and(|r| r.cpu_link_rtt.is_none());
        unmeasured || (la.is_some() && la == lb)
    };
    const ROWS_LEVEL: &str =
        "; the two rows ran at different CPU link levels (near/far): not comparable, see ratios.md";
    let big_ok = comparable(hot, big);
    g.push(Goal {
        goal: "no cliff: the 10M-session figure within 2x of the 1k one",
        measured: cliff
            .as_ref()
            .map_or("not run".into(), |c| format!("{}{}", c.1, if big_ok { "" } else { ROWS_LEVEL })),
        met: cliff.map(|c| c.0 <= 2.0).filter(|_| big_ok),
    });
    // Issue 14 in cycles per packet (the DUT's own cost at saturation).
    let cyc = |r: Option<&Row>| r.and_then(|r| r.cycles_per_packet).filter(|c| *c > 0.0);
    let ratio = cyc(by("fullnat-udp-1m")).zip(cyc(hot)).map(|(m, k)| m / k);
    let m_ok = comparable(hot, by("fullnat-udp-1m"));
    g.push(Goal {
        goal: "issue 14: 1M sessions within 1.5x of the 1k cycles/packet (UDP)",
        measured: ratio
            .map_or("not run".into(), |x| format!("{x:.2}x{}", if m_ok { "" } else { ROWS_LEVEL })),
        met: ratio.map(|x| x <= 1.5).filter(|_| m_ok),
    });
    let tp = hot.and_then(|r| r.vs_testpmd_cycles);
    // Which of gatewayd's figures the ratio used, and the other one.
    let how = hot.map_or(String::new(), |r| match (r.cycles_testpmd_accounting, r.cycles_testpmd_scope) {
        (Some(a), Some(w)) => {
            format!(": {a:.0} cycles counted as testpmd counts, {w:.0} over whole polls")
        }
        _ => String::new(),
    });
    g.push(Goal {
        goal: "issue 14: 1k sessions at most 1.7x testpmd's cycles/packet",
        measured: tp.map_or("not run".into(), |x| format!("{x:.2}x (fullnat-udp-1k{how}){tp_note}")),
        met: tp.map(|x| x <= 1.7).filter(|_| tp_levels),
    });
    g
}

fn goals_md(rows: &[Row]) -> String {
    let mut s = String::from("| goal | measured | met |\n|---|---|---|\n");
    for g in goals(rows) {
        let met = match g.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        s.push_str(&format!("| {} | {} | {met} |\n", g.goal, g.measured));
    }
    s
}

/// How steady the machine was: the ceiling at the start against the end
/// (the guest cannot see its host's other tenants, but testpmd's cost moves
/// with them), and which rows ran while other processes or the hypervisor
/// took the CPU. Empty when there is nothing to say.
fn machine_md(rows: &[Row]) -> String {
    let mut s = String::new();
    let cyc =
        |id: &str| rows.iter().find(|r| r.id == id).and_then(|r| r.cycles_per_packet).filter(|c| *c > 0.0);
    if let (Some(a), Some(b)) = (cyc("testpmd-64"), cyc("testpmd-64-end")) {
        let drift = (b / a - 1.0) * 100.0;
        s.push_str(&format!(
            "**Machine drift**: the ceiling (`testpmd-64`) cost {a:.0} cycles/packet at the start and {b:.0} at the end \
             ({drift:+.0} %), the same work minutes apart; two rows of this table compare no better than that. \
             Ratios that must hold (IPv6/IPv4, gatewayd/testpmd, two builds) come from `benches/run.sh --ratio`, \
             measured back to back in interleaved rounds (`ratios.md`).\n\n"
        ));
    }
    let noisy: Vec<&str> = rows.iter().filter(|r| r.noisy()).map(|r| r.id.as_str()).collect();
    if !noisy.is_empty() {
        s.push_str(&format!(
            "**Shared machine**: {} of {} rows ran while other processes used more than {:.0} % of the CPU time or \
             the hypervisor stole more than {:.0} % of the DUT's CPU (bold in the last column; their figures are \
             depressed): {}.\n\n",
            noisy.len(),
            rows.len(),
            table::NOISY_OTHERS_PCT,
            table::NOISY_STEAL_PCT,
            noisy.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    s
}

fn svg(rows: &[Row], env: &Env) -> String {
    let family = |prefix: &str, workers: u32| -> Vec<&Row> {
        let mut v: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                r.id.starts_with(prefix)
                    && r.workers == workers
                    && r.frames == "64"
                    && !r.id.ends_with("-new")
                    && !r.id.ends_with("-syn")
            })
            .collect();
        v.sort_by_key(|r| r.flows);
        v
    };
    let mut mpps = vec![];
    let mut cycles = vec![];
    for (prefix, workers, label) in [
        ("fullnat-udp-", 1, "FULLNAT UDP 64 B"),
        ("fullnat-tcp-", 1, "FULLNAT TCP ACK 64 B"),
        ("fullnat-udp-", 2, "FULLNAT UDP 2w (1 CPU)"),
    ] {
        let f = family(prefix, workers);
        if f.is_empty() {
            continue;
        }
        mpps.push(Series {
            label: label.into(),
            points: f.iter().map(|r| (r.flows as f64, r.mpps)).collect(),
        });
        cycles.push(Series {
            label: label.into(),
            points: f.iter().filter_map(|r| r.cycles_per_packet.map(|c| (r.flows as f64, c))).collect(),
        });
    }
    let tp = best_ceiling(rows, "64");
    let mpps_refs: Vec<Reference> =
        tp.map(|t| Reference { label: "testpmd macswap".into(), y: t.mpps }).into_iter().collect();
    let cyc_refs: Vec<Reference> = tp
        .and_then(|t| t.cycles_per_packet)
        .map(|c| Reference { label: "testpmd macswap".into(), y: c })
        .into_iter()
        .collect();
    let caption = format!(
        "gatewayd {} on {} ({} CPUs), net_memif, {}; generator gw-pktgen on the other CPU",
        env.gatewayd_rev, env.cpu, env.cpus, env.date_utc
    );
    plot::svg(&mpps, &mpps_refs, &cycles, &cyc_refs, &caption)
}

/// Reads a results.json written by [`write`], recomputes its testpmd
/// ratios and goals with this build's rules and writes the three files
/// into `out`.
pub fn render(json: &Path, out: &Path) -> Result<()> {
    #[derive(Deserialize)]
    struct All {
        env: Env,
        rows: Vec<Row>,
    }
    let text = std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let mut all: All = serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))?;
    add_testpmd_ratios(&mut all.rows);
    write(out, &all.rows, &all.env)
}

/// Writes results.md, results.json and plot.svg into `out`.
pub fn write(out: &Path, rows: &[Row], env: &Env) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut md = String::new();
    md.push_str("# gatewayd benchmark results\n\n");
    md.push_str(&format!(
        "Run {} with `{}` ({:.0} s). Machine: {}, {} CPUs, TSC {:.0} MHz, Linux {}, DPDK {}. gatewayd `{}`.\n\n",
        env.date_utc, env.command, env.elapsed_s, env.cpu, env.cpus, env.tsc_mhz, env.kernel, env.dpdk, env.gatewayd_rev
    ));
    md.push_str(
        "Link: two `net_memif` pairs (copy mode, no hugepages) between gw-pktgen on CPU 0 and the device under \
         test (DUT) on CPU 1. Mpps counts packets the DUT forwarded in both directions; cycles/pkt is the DUT's \
         own TSC count per received packet in polls that received something. What each column means: \
         `docs/benchmarks.md`.\n\n",
    );
    md.push_str(&machine_md(rows));
    md.push_str(&table::markdown(rows));
    md.push_str("\n## Goals\n\n");
    md.push_str(&goals_md(rows));
    md.push_str("\n![Mpps and cycles per packet against concurrent sessions](plot.svg)\n");
    std::fs::write(out.join("results.md"), md)?;
    #[derive(Serialize)]
    struct All<'a> {
        env: &'a Env,
        rows: &'a [Row],
    }
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&All { env, rows })?)?;
    std::fs::write(out.join("plot.svg"), svg(rows, env))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, dut: &str, flows: u64, mpps: f64, cycles: f64) -> Row {
        Row {
            id: id.into(),
            dut: dut.into(),
            workers: 1,
            flows,
            frames: "64".into(),
            mpps,
            cycles_per_packet: Some(cycles),
            tsc_hz: 2_600_000_000,
            ..Row::default()
        }
    }

    #[test]
    fn ratios_goals_and_files() {
        let mut rows = vec![
            row("testpmd-64", "testpmd macswap", 1000, 8.0, 100.0),
            row("testpmd-64-end", "testpmd macswap", 1000, 4.0, 200.0),
            row("fullnat-udp-1k", "gatewayd", 1000, 4.0, 250.0),
            row("fullnat-udp-10m", "gatewayd", 10_000_000, 1.0, 900.0),
        ];
        add_testpmd_ratios(&mut rows);
        assert_eq!(rows[2].vs_testpmd_mpps, Some(0.5));
        assert_eq!(rows[2].vs_testpmd_cycles, Some(2.5));
        // Against testpmd, gatewayd's figure over testpmd's phases when known.
        let mut scoped = rows.clone();
        scoped[2].cycles_testpmd_scope = Some(300.0);
        add_testpmd_ratios(&mut scoped);
        assert_eq!(scoped[2].vs_testpmd_cycles, Some(3.0));
        // Counted as testpmd counts (its bursts only), when recorded: preferred.
        scoped[2].cycles_testpmd_accounting = Some(200.0);
        add_testpmd_ratios(&mut scoped);
        assert_eq!(scoped[2].vs_testpmd_cycles, Some(2.0));
        let tp = goals(&scoped).into_iter().find(|x| x.goal.contains("at most 1.7x testpmd")).unwrap();
        assert!(
            tp.measured.contains("200 cycles counted as testpmd counts, 300 over whole polls"),
            "{}",
            tp.measured
        );
        assert_eq!(best_ceiling(&rows, "64").unwrap().id, "testpmd-64");
        let g = goals(&rows);
        assert_eq!(g[0].met, Some(true)); // 2600 / 250 = 10.4 Mpps
        assert_eq!(g[1].met, Some(false));
        assert_eq!(g.last().unwrap().met, Some(false)); // 4x cliff
        let dir = std::env::temp_dir().join(format!("gwbench-results-{}", std::process::id()));
        let env = Env::collect(Path::new("."), 2_600_000_000, 1.0, "test");
        write(&dir, &rows, &env).unwrap();
        let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
        assert!(md.contains("| goal | measured | met |"));
        assert!(md.contains("cost 100 cycles/packet at the start and 200 at the end (+100 %)"), "{md}");
        assert!(!md.contains("**Shared machine**"));
        assert!(std::fs::read_to_string(dir.join("plot.svg")).unwrap().contains("<polyline"));
        std::fs::remove_dir_all(&dir).unwrap();
        rows[3].others_cpu_pct = Some(40.0);
        rows[2].steal_pct = Some(5.0);
        rows[1].steal_pct = Some(0.5);
        let m = machine_md(&rows);
        assert!(
            m.contains("2 of 4 rows ran while other processes used more than 10 % of the CPU time or the hypervisor stole more than 2 % of the DUT's CPU (bold in the last column; their figures are depressed): `fullnat-udp-1k`, `fullnat-udp-10m`."),
            "{m}"
        );
    }

    #[test]
    fn ratios_pair_rows_of_one_cpu_link_level_and_mixed_levels_get_no_verdict() {
        let at = |mut r: Row, rtt: (f64, f64)| {
            r.cpu_link_rtt = Some(rtt);
            r
        };
        let near = (130.0, 150.0);
        let far = (950.0, 1000.0);
        let mut rows = vec![
            at(row("testpmd-64", "testpmd macswap", 1000, 20.0, 95.0), near),
            at(row("testpmd-64-end", "testpmd macswap", 1000, 10.0, 240.0), far),
            at(row("fullnat-udp-1k", "gatewayd", 1000, 8.0, 360.0), far),
            at(row("fullnat-udp-1m", "gatewayd", 1_000_000, 8.0, 380.0), far),
            at(row("fullnat-udp-10m", "gatewayd", 10_000_000, 8.0, 300.0), (900.0, 140.0)),
        ];
        add_testpmd_ratios(&mut rows);
        // The far gatewayd row against the far testpmd row, not the best one.
        assert_eq!((rows[2].vs_testpmd_cycles, rows[2].vs_testpmd_same_level), (Some(1.5), Some(true)));
        assert_eq!(rows[2].vs_testpmd_mpps, Some(0.8));
        // A row whose level moved has no testpmd row at its level: the best
        // one, flagged.
        assert_eq!(
            (rows[4].vs_testpmd_cycles, rows[4].vs_testpmd_same_level),
            (Some(300.0 / 95.0), Some(false))
        );
        let g = goals(&rows);
        let by = |what: &str| g.iter().find(|x| x.goal.contains(what)).unwrap();
        assert_eq!(by("at most 1.7x testpmd").met, Some(true));
        assert_eq!(by("1M sessions within 1.5x").met, Some(true)); // both far: 1.06
        let cliff = by("no cliff");
        assert_eq!(cliff.met, None, "1k far, 10M moved: {}", cliff.measured);
        assert!(cliff.measured.contains("different CPU link levels"), "{}", cliff.measured);
        // The testpmd goals lose their verdict when the 1k row has no
        // testpmd row at its level.
        rows[0].cpu_link_rtt = Some(far);
        rows[1].cpu_link_rtt = Some(near);
        rows[2].cpu_link_rtt = Some((140.0, 900.0));
        add_testpmd_ratios(&mut rows);
        assert_eq!(rows[2].vs_testpmd_same_level, Some(false));
        let g = goals(&rows);
        let tp = g.iter().find(|x| x.goal.contains("at most 1.7x testpmd")).unwrap();
        assert_eq!(tp.met, None);
        assert!(tp.measured.contains("another CPU link level"), "{}", tp.measured);
        // Rows without probes (older results) keep their verdicts.
        let mut old = rows.clone();
        old.iter_mut().for_each(|r| r.cpu_link_rtt = None);
        add_testpmd_ratios(&mut old);
        assert_eq!(old[2].vs_testpmd_same_level, None);
        let g = goals(&old);
        for what in
            ["at most 1.7x testpmd", "no worse than 2x testpmd", "no cliff", "1M sessions within 1.5x"]
        {
            assert!(g.iter().find(|x| x.goal.contains(what)).unwrap().met.is_some(), "{what}");
        }
    }

    #[test]
    fn render_writes_the_files_again_from_results_json() {
        let dir = std::env::temp_dir().join(format!("gwbench-render-{}", std::process::id()));
        let env = Env::collect(Path::new("."), 2_600_000_000, 1.0, "test");
        let rows = vec![
            row("testpmd-64", "testpmd macswap", 1000, 8.0, 100.0),
            row("fullnat-udp-1k", "gatewayd", 1000, 4.0, 250.0),
        ];
        write(&dir, &rows, &env).unwrap();
        std::fs::remove_file(dir.join("results.md")).unwrap();
        render(&dir.join("results.json"), &dir).unwrap();
        let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
        assert!(md.contains("| 2.50x (fullnat-udp-1k) | **no** |"), "{md}");
        assert!(render(&dir.join("nope.json"), &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
