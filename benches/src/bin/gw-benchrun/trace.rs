//! `--trace ID --trace-seconds S --trace-runs K`: what the VM's bimodal
//! cycles look like over time.
//!
//! Runs scenario `ID` `K` times (a new gatewayd each time), each with one
//! long measurement cut into 100 ms sub-windows, and prints gatewayd's
//! cycles per packet per sub-window. Whether one process stays at one level
//! for its whole life (memory placement, transparent huge pages) or the
//! level switches within a process (the vCPU moved between the host's
//! cores or cache complexes) decides how a ratio can be measured: see
//! docs/benchmarks.md, "Alternating phases".

use anyhow::{bail, Result};
use gw_benches::traffic::report::{spread, GenReport};

use crate::procs;
use crate::run::{self, Ctx};
use crate::scenarios::{self, Dut, Scenario};

/// The sub-window, seconds.
pub const WINDOW_S: f64 = 0.1;

/// One run's cycles per packet per window (`None`: the window saw no packet).
pub fn series(r: &GenReport) -> Vec<Option<f64>> {
    r.phase("measure").map_or(vec![], |m| m.samples.iter().map(|s| s.cycles_per_packet()).collect())
}

/// Runs the trace; prints each run's series and summary to stdout.
pub fn run(ctx: &Ctx, s: &Scenario, seconds: f64, runs: u32) -> Result<Vec<Vec<Option<f64>>>> {
    if !matches!(s.dut, Dut::Gatewayd { .. }) || s.syn_flood > 0.0 {
        bail!("--trace {}: gatewayd rows of established or new flows only", s.id);
    }
    let mut s = s.clone();
    s.duration = seconds;
    s.half_load = 0.0;
    let mut all = vec![];
    for k in 0..runs {
        if ctx.stop.load(std::sync::atomic::Ordering::Relaxed) {
            bail!("interrupted");
        }
        let _ = ctx.wait_quiet();
        let id = format!("trace{k}-{}", s.id);
        let ep = ctx.endpoints(&id);
        let prefix = |what: &str| format!("{}-{id}-{what}", ctx.tag);
        let extra = |_| vec!["--sample".to_string(), WINDOW_S.to_string()];
        let got = scenarios::gatewayd_config(&ctx.conf_dir, &s, &ep, &prefix("gw"))
            .and_then(|conf| run::gatewayd_custom(ctx, &s, &ep, &prefix("gen"), conf, &extra));
        for p in ["gw", "gen"] {
            procs::remove_dpdk_runtime(&prefix(p));
        }
        let (report, preempt) = got?;
        let v = series(&report);
        println!("{}", render(&s.id, k + 1, &v, preempt));
        all.push(v);
    }
    Ok(all)
}

/// One run: a summary line, then one line per second (ten windows).
pub fn render(id: &str, run: u32, v: &[Option<f64>], preempt: Option<f64>) -> String {
    let got: Vec<f64> = v.iter().flatten().copied().collect();
    let mut out = format!("{id} run {run}: {} windows of {:.0} ms", v.len(), WINDOW_S * 1000.0);
    if let Some((med, lo, hi)) = spread(got.clone()) {
        let mut sorted = got.clone();
        sorted.sort_by(f64::total_cmp);
        let p10 = sorted[sorted.len() / 10];
        let p90 = sorted[sorted.len() * 9 / 10];
        // The slow level: windows 1.5x or more above the run's fast tenth.
        let slow = got.iter().filter(|c| **c >= 1.5 * p10).count();
        out.push_str(&format!(
            ", cycles/pkt median {med:.0}, p10 {p10:.0}, p90 {p90:.0}, range {lo:.0}–{hi:.0}; {slow} windows ({:.0} %) at >= 1.5x the p10; level switches {}",
            100.0 * slow as f64 / got.len() as f64,
            switches(v, 1.5 * p10)
        ));
    }
    if let Some(p) = preempt {
        out.push_str(&format!("; DUT preempted {p:.0} times/s"));
    }
    for (i, sec) in v.chunks(10).enumerate() {
        let line: Vec<String> = sec.iter().map(|c| c.map_or("–".into(), |c| format!("{c:.0}"))).collect();
        out.push_str(&format!("\n  {:>3} s: {}", i, line.join(" ")));
    }
    out
}

/// How often consecutive windows cross `threshold` (fast to slow or back).
pub fn switches(v: &[Option<f64>], threshold: f64) -> usize {
    let lv: Vec<bool> = v.iter().flatten().map(|c| *c >= threshold).collect();
    lv.windows(2).filter(|w| w[0] != w[1]).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_switches() {
        let v = [Some(350.0), Some(360.0), None, Some(700.0), Some(710.0), Some(340.0), Some(345.0)];
        assert_eq!(switches(&v, 525.0), 2);
        let r = render("fullnat-udp-1k", 1, &v, Some(4.0));
        assert!(r.starts_with("fullnat-udp-1k run 1: 7 windows of 100 ms, cycles/pkt median 355"), "{r}");
        assert!(r.contains("2 windows (33 %) at >= 1.5x the p10; level switches 2; DUT preempted 4"), "{r}");
        assert!(r.ends_with("\n    0 s: 350 360 – 700 710 340 345"), "{r}");
    }
}
