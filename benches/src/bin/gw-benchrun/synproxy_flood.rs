//! The SYN flood against a SYNPROXY service of issue 16 (`--only
//! synproxy-flood`): one table row per phase, written to
//! `synproxy_flood.md` and `synproxy_flood.json`.
//!
//! The SYNs that reach the real servers are counted there: under SYNPROXY
//! each is a connection whose cookie ACK the gateway accepted, so beyond
//! the legitimate clients' cookie ACKs they would be the flood's.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use gw_benches::traffic::report::{GenReport, Phase};

use crate::results::Env;
use crate::scenarios::Scenario;

fn phase_title(name: &str) -> &str {
    match name {
        "before" => "before",
        "syn_flood" => "SYN flood, full rate",
        "after" => "after the SYN flood",
        "ack_flood" => "ACK flood (no valid cookie)",
        "after_ack" => "after the ACK flood",
        n => n,
    }
}

fn gw(p: &Phase, k: &str) -> Option<u64> {
    p.gw.as_ref().and_then(|c| c.get(k).copied())
}

fn opt(v: Option<u64>) -> String {
    v.map_or("–".into(), |v| v.to_string())
}

/// The markdown table of the phases.
pub fn table(r: &GenReport) -> String {
    let mut t = String::from(
        "| phase | s | est. Mpps fwd | est. kept % | est. lost % | est. refused % | est. lat p50/p99 µs | flood Mpps sent (refused %) | cookies/s at clients | SYNs at servers | legit. SYNs sent | legit. handshakes | flood SYNs at servers | legit. conns/s | synproxy_syn_acks_sent | drop_syn_shed | synproxy_conns_opened | drop_synproxy_bad_cookie | sessions_live |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    const PHASES: [&str; 5] = ["before", "syn_flood", "after", "ack_flood", "after_ack"];
    let before = r.phases.iter().find(|p| p.name == "before").map(|p| p.forwarded_pps());
    for p in r.phases.iter().filter(|p| PHASES.contains(&p.name.as_str())) {
        row(&mut t, p, before);
    }
    t
}

/// SYNs at the servers beyond the legitimate handshakes (the flood's).
pub fn flood_syns(p: &Phase) -> i64 {
    p.server_syn_rx as i64 - p.legit_acks as i64
}

fn row(t: &mut String, p: &Phase, before: Option<f64>) {
    let s = p.seconds.max(1e-9);
    let (refused_pct, flood) = crate::synflood::offered_cells(p, s);
    let kept =
        before.filter(|b| *b > 0.0).map_or("–".into(), |b| format!("{:.1}", 100.0 * p.forwarded_pps() / b));
    let us = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
    let flooding = p.flood_tx + p.flood_tx_refused > 0;
    let _ = writeln!(
        t,
        "| {} | {:.1} | {:.3} | {} | {:.3} | {:.2} | {} / {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        phase_title(&p.name),
        p.seconds,
        p.forwarded_pps() / 1e6,
        kept,
        100.0 * p.loss(true),
        refused_pct,
        us(p.latency.p50_us),
        us(p.latency.p99_us),
        flood,
        p.cookies_rx as f64 / s,
        p.server_syn_rx,
        if flooding { p.legit_syn_tx.to_string() } else { "–".into() },
        if flooding { p.legit_acks.to_string() } else { "–".into() },
        flood_syns(p),
        if flooding { format!("{:.0}", p.legit_acks as f64 / s) } else { "–".into() },
        opt(gw(p, "synproxy_syn_acks_sent")),
        opt(gw(p, "drop_syn_shed")),
        opt(gw(p, "synproxy_conns_opened")),
        opt(gw(p, "drop_synproxy_bad_cookie")),
        opt(gw(p, "sessions_live")),
    );
}

/// Writes `synproxy_flood.md` and `synproxy_flood.json` into `out`.
pub fn write(out: &Path, s: &Scenario, r: &GenReport, others_pct: Option<f64>, env: &Env) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let mut md = String::from("# SYN flood against a SYNPROXY service with established flows (issue 16)\n\n");
    let _ = writeln!(md, "{}", env.flood_header());
    let _ = writeln!(
        md,
        "gatewayd: 1 worker, FULLNAT TCP service 198.18.0.100:80 with `-j enable` (SYNPROXY), `sessions = {}`. {} established TCP flows, opened through the cookie handshake (client SYN, the gateway's cookie SYN+ACK, the client's ACK = cookie + 1, the gateway's SYN to the real server, its SYN+ACK, the gateway's ACK), send ACK+PSH 64 B at {:.0} client packets/s (each answered by the server: {:.2} Mpps forwarded when nothing is lost). SYN flood: {:.0} s of SYNs from never-seen spoofed client tuples (one new tuple per SYN) as fast as the link takes them; the spoofed clients never answer the cookie. ACK flood: {:.0} s of bare ACKs without a valid cookie. During both floods, legitimate new connections (SYNs from other client tuples, gw-pktgen `--legit-rate`, 10,000/s) complete the cookie handshake.\n",
        s.sessions,
        s.flows,
        s.rate,
        2.0 * s.rate / 1e6,
        s.syn_flood,
        s.ack_flood
    );
    md.push_str(&table(r));
    md.push_str(
        "\nColumns: *est.* are the established flows only (segments with PSH and without SYN, both directions); *kept %*: their forwarding rate against the phase `before`; *lost %*: of the established packets the link took, those whose answer never came back; *refused %*: established packets the full memif ring refused (backpressure, `imissed` on a NIC); latency is the round trip. *cookies/s at clients*: the gateway's SYN+ACKs (cookies) that reached the generator's clients (the flood's spoofed ones and the legitimate). *SYNs at servers*: plain SYNs counted at the real servers' port; under SYNPROXY the gateway sends one only for a valid cookie ACK. *legit. SYNs sent* / *legit. handshakes*: the new legitimate connections' SYNs and the cookie ACKs their clients sent; *flood SYNs at servers* = SYNs at servers − legit. handshakes (must be 0); *legit. conns/s*: legitimate handshakes per second during the flood. A handshake whose cookie ACK left at the end of a phase reaches the server in the next one: read *flood SYNs at servers* of a flood and the phase after it together (their sum is the flood's). Established flows whose cookie SYN+ACK was lost in the open phase never opened (`sessions_live` below the flows): their data shows as `drop_synproxy_bad_cookie` outside the ACK flood. gatewayd's counters are over the phase, `sessions_live` at its end.\n",
    );
    if let Some(o) = others_pct {
        let _ = writeln!(md, "\nOther processes used {o:.0} % of the machine's CPU time during the run.");
    }
    std::fs::write(out.join("synproxy_flood.md"), &md)
        .with_context(|| format!("writing {}", out.display()))?;
    let json = serde_json::json!({ "scenario": s.id, "sessions": s.sessions, "rate": s.rate,
        "others_cpu_pct": others_pct, "command": env.command, "date_utc": env.date_utc,
        "gatewayd_rev": env.gatewayd_rev, "report": r });
    std::fs::write(out.join("synproxy_flood.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_the_flood_syns_and_the_rate_kept() {
        let before = Phase {
            name: "before".into(),
            seconds: 1.0,
            server_rx: 100,
            client_rx: 100,
            ..Default::default()
        };
        let flood = Phase {
            name: "syn_flood".into(),
            seconds: 2.0,
            server_rx: 95,
            client_rx: 95,
            flood_tx: 4_000_000,
            cookies_rx: 3_000_000,
            server_syn_rx: 20_000,
            legit_syn_tx: 20_000,
            legit_acks: 20_000,
            ..Default::default()
        };
        assert_eq!(flood_syns(&flood), 0);
        let r = GenReport { phases: vec![before, flood], ..Default::default() };
        let t = table(&r);
        let row = t.lines().find(|l| l.starts_with("| SYN flood")).unwrap();
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[4], "47.5", "{row}");
        assert_eq!(cells[9], "1500000");
        assert_eq!((cells[10], cells[13], cells[14]), ("20000", "0", "10000"));
    }
}
