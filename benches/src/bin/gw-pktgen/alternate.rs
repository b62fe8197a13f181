//! `--alternate`: IPv4 and IPv6 phases in turn against one gateway (issue
//! 17's ratios, measured where both sides share the process and the
//! moment).
//!
//! On the benchmark VM a process's cycles per packet can jump between two
//! levels about 2x apart (docs/benchmarks.md, "Alternating phases"), so two
//! rows measured by two processes, or minutes apart, compare the levels
//! more than the code. Here one gatewayd serves an IPv4 and an IPv6 service
//! on the same ports and worker, and the generator sends each family in
//! short phases, one after the other: the two phases of a pair are
//! hundreds of milliseconds apart, and the harness takes the ratio per
//! pair. The first phase of a pair alternates (IPv4 first in even pairs),
//! so a drift within a pair does not favour one family.
//!
//! Each family's flows are opened once, before the pairs, as the main
//! measurement opens them (prime, open, SYNs sent again); each phase then
//! continues its family's flow cursor where the previous one stopped.

use anyhow::Result;
use gw_benches::traffic::frame::{L4Kind, Template};
use gw_benches::traffic::frame6::{AnyTemplate, Template6};
use gw_benches::traffic::report::GenReport;
use gw_core::wire::ethernet::MacAddr;
use gw_core::wire::tcp::flags;

use crate::args::{Args, Proto};
use crate::gen::{Flows, Gen, Traffic};
use crate::{PRIME_FLOWS, PRIME_PPS};

/// Seconds of warm-up per family before the first pair.
const WARMUP_S: f64 = 0.5;

/// The phase names the harness reads.
pub const IPV4: &str = "ipv4";
pub const IPV6: &str = "ipv6";

/// The phase counter with the worker threads' time on the CPU.
pub const WORKER_RUN_NS: &str = "worker_run_ns";

/// Nanoseconds process `pid`'s DPDK worker threads (`rte-worker-N`, or
/// `lcore-worker-N` before DPDK 22.11) have run on a CPU: the first field
/// of each one's `/proc/PID/task/TID/schedstat`, summed. `None` when the
/// process or its workers cannot be read.
fn worker_run_ns(pid: u32) -> Option<u64> {
    let mut total = None;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("rte-worker") && !comm.starts_with("lcore-worker") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
        let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
        total = Some(total.unwrap_or(0) + ns);
    }
    total
}

/// One family's templates.
struct Family {
    name: &'static str,
    open: Vec<AnyTemplate>,
    data: Vec<AnyTemplate>,
    ack: Option<AnyTemplate>,
}

/// Opens the flows of both families, warms each up, then runs the pairs.
pub fn phases(args: &Args, g: &mut Gen, gw_mac: MacAddr) -> Result<GenReport> {
    let src = g.client.mac;
    let (open_kind, data_kind) = match args.proto {
        Proto::Udp => (L4Kind::Udp, L4Kind::Udp),
        Proto::Tcp => (L4Kind::Tcp(flags::SYN), L4Kind::Tcp(flags::ACK | flags::PSH)),
    };
    let tpl = |v6: bool, kind: L4Kind, sizes: &[usize]| -> Vec<AnyTemplate> {
        sizes
            .iter()
            .map(|s| match v6 {
                false => AnyTemplate::V4(Template::new(src, gw_mac, args.vip, args.vport, kind, *s)),
                true => AnyTemplate::V6(Template6::new(src, gw_mac, args.vip6, args.vport, kind, *s)),
            })
            .collect()
    };
    let family = |v6: bool| {
        let sizes = if v6 { &args.sizes } else { &args.sizes4 };
        let smallest = [*sizes.iter().min().expect("validated non-empty")];
        Family {
            name: if v6 { IPV6 } else { IPV4 },
            open: tpl(v6, open_kind, &smallest),
            data: tpl(v6, data_kind, sizes),
            ack: (args.proto == Proto::Tcp).then(|| tpl(v6, L4Kind::Tcp(flags::ACK), &smallest).remove(0)),
        }
    };
    let fams = [family(false), family(true)];
    let mut report = GenReport {
        tsc_hz: g.hz,
        round_trip: true,
        flows: args.flows,
        frame_sizes: args.sizes.clone(),
        proto: format!("{:?}", args.proto).to_lowercase(),
        phases: vec![],
    };
    g.established = args.flows;
    for f in &fams {
        open(args, g, f, &mut report);
    }
    let pattern = args.size_pattern();
    let mut traffic: Vec<Traffic<'_>> = fams
        .iter()
        .map(|f| Traffic {
            templates: &f.data,
            pattern: &pattern,
            flows: Flows::Cycle { n: args.flows, next: 0, order: args.order.order(args.flows) },
            rate: 0.0,
            seconds: Some(WARMUP_S),
            frag: None,
        })
        .collect();
    for (f, t) in fams.iter().zip(&mut traffic) {
        report.phases.push(g.run(&format!("warmup_{}", f.name), t, None));
    }
    for pair in 0..args.pairs {
        // ABBA: IPv4 first in even pairs, IPv6 first in odd ones.
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let t = &mut traffic[i];
            t.seconds = Some(args.alternate);
            let run0 = args.dut_pid.and_then(worker_run_ns);
            let mut p = g.run(fams[i].name, t, None);
            if let (Some(a), Some(b)) = (run0, args.dut_pid.and_then(worker_run_ns)) {
                p.gw.get_or_insert_with(Default::default).insert(WORKER_RUN_NS.into(), b.saturating_sub(a));
            }
            report.phases.push(p);
        }
        if g.stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    let n = |name: &str| report.phases.iter().filter(|p| p.name == name).count();
    eprintln!("gw-pktgen: alternated {} IPv4 and {} IPv6 phases of {} s", n(IPV4), n(IPV6), args.alternate);
    Ok(report)
}

/// Opens family `f`'s flows as the main measurement does: a few slowly
/// (the gateway resolves its neighbours), then all, TCP paced with the
/// unanswered SYNs sent again.
fn open(args: &Args, g: &mut Gen, f: &Family, report: &mut GenReport) {
    let one = [0usize];
    g.ack_template = f.ack.clone();
    let mut prime = Traffic {
        templates: &f.open,
        pattern: &one,
        flows: Flows::Once { next: 0, end: PRIME_FLOWS.min(args.flows) },
        rate: PRIME_PPS,
        seconds: None,
        frag: None,
    };
    report.phases.push(g.run(&format!("prime_{}", f.name), &mut prime, None));
    let p = crate::open_flows(args, g, &f.open, &format!("open_{}", f.name));
    eprintln!("gw-pktgen: opened {} {} flows, {} answers", args.flows, f.name, p.client_rx);
    report.phases.push(p);
}
