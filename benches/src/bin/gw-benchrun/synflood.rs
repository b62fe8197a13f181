//! The SYN-flood measurement of issue 7: one table row per phase (before,
//! during and after a SYN flood, during and after an ACK flood), written
//! to `synflood.md` and `synflood.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use gw_benches::traffic::report::{GenReport, Phase};

use crate::results::Env;
use crate::scenarios::Scenario;

/// The gatewayd counters each row shows (gauges at the end of the phase,
/// counters over the phase).
const GW_COLUMNS: [&str; 7] = [
    "sessions_live",
    "sessions_half_open",
    "sessions_created",
    "drop_half_open_limit",
    "drop_table_full",
    "drop_no_session_not_syn",
    "drop_syn_shed",
];

fn phase_title(name: &str) -> &str {
    match name {
        "before" => "before",
        "syn_flood_paced" => "SYN flood, paced",
        "syn_flood" => "SYN flood, full rate",
        "after" => "after the SYN flood",
        "ack_flood" => "ACK flood (no sessions)",
        "after_ack" => "after the ACK flood",
        n => n,
    }
}

fn us(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

/// The markdown table of the phases.
pub fn table(r: &GenReport) -> String {
    let mut t = String::from(
        "| phase | s | est. Mpps fwd | est. lost % | est. refused % | est. lat p50/p99 µs | flood Mpps sent (refused %) | flood at servers | sessions_live | sessions_half_open | sessions_created | drop_half_open_limit | drop_table_full | drop_no_session_not_syn | drop_syn_shed |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    const PHASES: [&str; 6] = ["before", "syn_flood_paced", "syn_flood", "after", "ack_flood", "after_ack"];
    for p in r.phases.iter().filter(|p| PHASES.contains(&p.name.as_str())) {
        row(&mut t, p);
    }
    t
}

/// A flood phase's two "offered" cells, over `s` seconds: the share of
/// the established flows' packets the full ring refused (%), and the flood
/// sent in Mpps with the share refused ("–" without a flood).
pub fn offered_cells(p: &Phase, s: f64) -> (f64, String) {
    let offered = p.client_tx + p.client_tx_refused;
    let refused_pct = if offered > 0 { 100.0 * p.client_tx_refused as f64 / offered as f64 } else { 0.0 };
    let flood_offered = p.flood_tx + p.flood_tx_refused;
    let flood = if flood_offered > 0 {
        format!(
            "{:.2} ({:.0} %)",
            p.flood_tx as f64 / s / 1e6,
            100.0 * p.flood_tx_refused as f64 / flood_offered as f64
        )
    } else {
        "–".into()
    };
    (refused_pct, flood)
}

fn row(t: &mut String, p: &Phase) {
    let s = p.seconds.max(1e-9);
    let (refused_pct, flood) = offered_cells(p, s);
    let gw = |k: &str| p.gw.as_ref().and_then(|c| c.get(k).copied()).map_or("–".into(), |v| v.to_string());
    let _ = write!(
        t,
        "| {} | {:.1} | {:.3} | {:.3} | {:.2} | {} / {} | {} | {} |",
        phase_title(&p.name),
        p.seconds,
        p.forwarded_pps() / 1e6,
        100.0 * p.loss(true),
        refused_pct,
        us(p.latency.p50_us),
        us(p.latency.p99_us),
        flood,
        p.flood_server_rx,
    );
    for k in GW_COLUMNS {
        let _ = write!(t, " {} |", gw(k));
    }
    t.push('\n');
}

/// Writes `synflood.md` and `synflood.json` into `out`.
pub fn write(out: &Path, s: &Scenario, r: &GenReport, others_pct: Option<f64>, env: &Env) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let half_open_cap = (s.sessions * 50).div_ceil(100);
    let mut md = String::from("# SYN flood against established FULLNAT TCP flows (issue 7)\n\n");
    let _ = writeln!(md, "{}", env.flood_header());
    let _ = writeln!(
        md,
        "gatewayd: 1 worker, `sessions = {}` per worker, `half_open_percent = 50` (cap {half_open_cap} half-open sessions), `[timeouts] syn_recv = 60` s (defaults). {} established TCP flows send ACK+PSH 64 B at {:.0} client packets/s (each answered by the server: {:.2} Mpps forwarded when nothing is lost). SYN flood from never-seen spoofed client tuples (one new tuple per SYN): first {:.0} s paced at {:.1} M SYN/s, then {:.0} s as fast as the link takes them; the real servers answer SYN+ACK, the spoofed clients never ACK. ACK flood: {:.0} s of bare ACKs from tuples without a session.\n",
        s.sessions,
        s.flows,
        s.rate,
        2.0 * s.rate / 1e6,
        s.paced_flood,
        s.flood_rate / 1e6,
        s.syn_flood,
        s.ack_flood
    );
    md.push_str(&table(r));
    md.push_str(
        "\nColumns: *est.* are the established flows only (segments with PSH and without SYN, both directions, as in results.md's Mpps fwd); *lost %*: of the established packets the link took, those whose answer never came back; *refused %*: established packets the full memif ring refused (backpressure: on a NIC they would be `imissed`, i.e. lost before the gateway sees them); latency is the round trip. *flood at servers*: flood packets gatewayd forwarded to the real servers (a half-open session each). gatewayd's `sessions_live` and `sessions_half_open` are gauges at the end of the phase; the other counters are over the phase. An established flow whose session was evicted would show up as `drop_no_session_not_syn` outside the ACK flood and as lost packets.\n",
    );
    if let Some(o) = others_pct {
        let _ = writeln!(md, "\nOther processes used {o:.0} % of the machine's CPU time during the run.");
    }
    std::fs::write(out.join("synflood.md"), &md).with_context(|| format!("writing {}", out.display()))?;
    let json = serde_json::json!({ "scenario": s.id, "sessions": s.sessions, "rate": s.rate,
        "flood_rate": s.flood_rate,
        "others_cpu_pct": others_pct, "command": env.command, "date_utc": env.date_utc,
        "gatewayd_rev": env.gatewayd_rev, "report": r });
    std::fs::write(out.join("synflood.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    Ok(())
}
