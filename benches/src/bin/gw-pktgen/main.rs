//! gw-pktgen: the benchmark's traffic generator on gatewayd's own DPDK
//! layer (`gw_dpdk`). See `args.rs` for what it does and
//! `docs/benchmarks.md` for how the harness uses it.
//!
//! One lcore runs everything (the main thread): on this project's 2-core
//! benchmark machine the other core belongs to the device under test.

#![forbid(unsafe_code)]

mod alternate;
mod args;
mod gen;

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Parser;
use gw_benches::traffic::frame::{FragTemplate, L4Kind, Template};
use gw_benches::traffic::frame6::{AnyTemplate, Template6};
use gw_benches::traffic::report::{GenReport, Phase};
use gw_core::wire::ethernet::MacAddr;
use gw_core::wire::tcp::flags;
use gw_dpdk::{self as dpdk, Eal, Mempool, Port, DEFAULT_DATA_ROOM};

use args::{Args, Proto};
use gen::{Flood, Flows, Gen, Link, Traffic};

/// Flows sent slowly first, so the gateway resolves its neighbours (the
/// router, each real server) before the open phase floods it.
const PRIME_FLOWS: u64 = 64;
const PRIME_PPS: f64 = 20_000.0;
/// TCP connections are opened at this rate, not as fast as the link takes
/// them: a gateway whose ring holds a backlog of SYNs sheds some
/// (`drop_syn_shed`, gw_core::synproxy::shed). A worker makes more
/// connections per second than this.
const OPEN_TCP_PPS: f64 = 500_000.0;
/// Rounds of SYNs sent again to the flows whose SYN was not answered in
/// the open phase (as a TCP stack retransmits a SYN).
const OPEN_TCP_RETRIES: u32 = 5;

fn main() {
    let args = Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("gw-pktgen: {e}");
        std::process::exit(2);
    }
    match run(&args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("gw-pktgen: {e:#}");
            std::process::exit(1);
        }
    }
}

fn open_link(name: &str, pool: &Mempool, queues: u16) -> Result<Link> {
    let port =
        Port::by_name(name).with_context(|| format!("port {name} (is it in the EAL --vdev arguments?)"))?;
    port.configure(queues, queues, 1024, 1024, pool, port.socket_id())
        .with_context(|| format!("configuring {name}"))?;
    port.start().with_context(|| format!("starting {name}"))?;
    let mac = MacAddr(port.mac_addr().with_context(|| format!("MAC of {name}"))?);
    Ok(Link { port, mac })
}

fn run(args: &Args) -> Result<()> {
    let stop = dpdk::stop_on_signals().context("installing signal handlers")?;
    let eal = Eal::init(&args.eal).context("EAL initialisation")?;
    let hz = dpdk::tsc_hz();
    let pool =
        Mempool::new("pktgen", args.mbufs, 256, DEFAULT_DATA_ROOM, eal.socket_id()).context("mbuf pool")?;
    let client = open_link(&args.client_port, &pool, args.queues)?;
    let server = open_link(&args.server_port, &pool, args.queues)?;
    eprintln!(
        "gw-pktgen: client port {} {}, server port {} {}, TSC {hz} Hz",
        args.client_port, client.mac, args.server_port, server.mac
    );

    let mut g = Gen::new(
        client,
        server,
        pool,
        hz,
        args.one_way,
        args.gw_ip,
        args.gw_mac,
        args.gw_socket.clone(),
        stop,
        args.queues,
    );
    g.backoff_ticks = args.backoff_ns * hz / 1_000_000_000;
    let result = phases(args, &mut g).map(|report| {
        let json = serde_json::to_string(&report).expect("the report serialises");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{json}");
        let _ = out.flush();
    });
    if args.hold && result.is_ok() {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    for l in [client, server] {
        if let Err(e) = l.port.close() {
            eprintln!("gw-pktgen: closing port {}: {e}", l.port.id());
        }
    }
    drop(g);
    drop(eal);
    result
}

fn phases(args: &Args, g: &mut Gen) -> Result<GenReport> {
    if !g.wait_links(args.link_timeout) {
        bail!("links not up after {} s (is the peer running?)", args.link_timeout);
    }
    let Some(gw_mac) = g.resolve_gateway(args.link_timeout) else {
        bail!("no ARP answer from the gateway {} within {} s", args.gw_ip, args.link_timeout);
    };
    eprintln!("gw-pktgen: gateway {} is at {gw_mac}", args.gw_ip);
    if args.alternate > 0.0 {
        return alternate::phases(args, g, gw_mac);
    }

    let make = |kind: L4Kind, sizes: &[usize]| -> Vec<AnyTemplate> {
        let (src, vport) = (g.client.mac, args.vport);
        sizes
            .iter()
            .map(|s| match args.ipv6 {
                false => AnyTemplate::V4(Template::new(src, gw_mac, args.vip, vport, kind, *s)),
                true => AnyTemplate::V6(Template6::new(src, gw_mac, args.vip6, vport, kind, *s)),
            })
            .collect()
    };
    let smallest = [*args.sizes.iter().min().expect("validated non-empty")];
    let (open_kind, data_kind) = match args.proto {
        Proto::Udp => (L4Kind::Udp, L4Kind::Udp),
        Proto::Tcp => (L4Kind::Tcp(flags::SYN), L4Kind::Tcp(flags::ACK | flags::PSH)),
    };
    let open_tpl = make(open_kind, &smallest);
    // SYNPROXY: from the open phase on, the cookie handshake.
    g.synproxy = args.synproxy;
    g.established = args.flows;
    if args.proto == Proto::Tcp {
        g.ack_template = make(L4Kind::Tcp(flags::ACK), &smallest).pop();
    }
    let pattern = args.size_pattern();
    // New flows open with every packet: SYNs for TCP.
    let data_tpl = make(if args.new_flows { open_kind } else { data_kind }, &args.sizes);
    // Fragmented datagrams: the flows are opened with small datagrams
    // (above), then carry only fragmented ones.
    let frag_tpl = (args.fragment > 0).then(|| {
        FragTemplate::new(g.client.mac, gw_mac, args.vip, args.vport, args.fragment, args::FRAGMENT_MTU)
    });
    let one = [0usize];
    let floods = [
        make(L4Kind::Tcp(flags::SYN), &smallest).remove(0),
        make(L4Kind::Tcp(flags::ACK), &smallest).remove(0),
    ];

    let mut report = GenReport {
        tsc_hz: g.hz,
        round_trip: !args.one_way,
        flows: args.flows,
        frame_sizes: args.sizes.clone(),
        proto: format!("{:?}", args.proto).to_lowercase(),
        phases: vec![],
    };
    let mut prime = Traffic {
        templates: &open_tpl,
        pattern: &one,
        flows: Flows::Once { next: 0, end: PRIME_FLOWS.min(args.flows) },
        rate: PRIME_PPS,
        seconds: None,
        frag: None,
    };
    report.phases.push(g.run("prime", &mut prime, None));
    if !args.no_open {
        let p = open_flows(args, g, &open_tpl, "open");
        eprintln!(
            "gw-pktgen: opened {} flows in {:.2} s ({:.0}/s), {} answers",
            args.flows,
            p.seconds,
            args.flows as f64 / p.seconds.max(1e-9),
            p.client_rx
        );
        report.phases.push(p);
    }
    let flows = if args.new_flows {
        Flows::Fresh { next: args.flows }
    } else {
        Flows::Cycle { n: args.flows, next: 0, order: args.order.order(args.flows) }
    };
    // From the warm-up on: answer pacing, and half-open new connections.
    // (Not the open phase: paced by the answers, its 1 M handshakes took
    // 45 s when other builds shared the machine, against 15 s at the fixed
    // rate with retransmissions.)
    g.window = gen::Window::new(args.window, args.window_timeout_ms);
    g.complete_handshakes = !args.syn_only;
    let mut t = Traffic {
        templates: &data_tpl,
        pattern: &pattern,
        flows,
        rate: args.rate,
        seconds: Some(args.warmup),
        frag: frag_tpl.as_ref(),
    };
    if args.warmup > 0.0 {
        report.phases.push(g.run("warmup", &mut t, None));
    }
    if args.syn_flood > 0.0 {
        syn_flood(args, g, &mut t, [&floods[0], &floods[1]], &mut report);
        return Ok(report);
    }
    t.seconds = Some(args.duration);
    let m = g.run("measure", &mut t, Some(args.sample));
    let delivered = if args.one_way { m.server_rx } else { m.client_rx } as f64 / m.seconds.max(1e-9);
    eprintln!(
        "gw-pktgen: measure {:.2} s: client tx {} (refused {}), server rx {}, client rx {}, fragments rx {}, server tx refused {}, {:.3} Mpps forwarded, p50 {:?} us p99 {:?} us",
        m.seconds,
        m.client_tx,
        m.client_tx_refused,
        m.server_rx,
        m.client_rx,
        m.rx_fragments,
        m.server_tx_refused,
        m.forwarded_pps() / 1e6,
        m.latency.p50_us,
        m.latency.p99_us
    );
    report.phases.push(m);
    if args.half_load > 0.0 && delivered > 0.0 {
        t.rate = delivered / 2.0;
        t.seconds = Some(args.half_load);
        let h = g.run("half_load", &mut t, None);
        eprintln!(
            "gw-pktgen: half load {:.0} pps: p50 {:?} us p99 {:?} us",
            t.rate, h.latency.p50_us, h.latency.p99_us
        );
        // The generator's own stalls, whatever the DUT (issue 14).
        let own: Vec<String> = h.gen_loops.iter().map(u64::to_string).collect();
        eprintln!(
            "gw-pktgen: half load: gw-pktgen's own loops by TSC cycles <4k/<16k/<64k/<256k/<1M/more: {}",
            own.join("/")
        );
        if h.gw.is_some() {
            // The worker's own stalls beside the latency (issue 14).
            let loops: Vec<String> =
                gw_core::counters::LOOP_BUCKETS.iter().map(|(e, _)| h.gw(e.name()).to_string()).collect();
            eprintln!(
                "gw-pktgen: half load: gatewayd poll loops by TSC cycles <4k/<16k/<64k/<256k/<1M/more: {}",
                loops.join("/")
            );
        }
        report.phases.push(h);
    }
    Ok(report)
}

/// The SYN-flood measurement (issue 7): the established flows at a fixed
/// rate, before, during (paced, then as fast as possible) and after a SYN
/// flood from never-seen spoofed tuples, then during and after an ACK flood
/// of tuples without a session.
fn syn_flood(
    args: &Args,
    g: &mut Gen,
    t: &mut Traffic<'_>,
    floods: [&AnyTemplate; 2],
    report: &mut GenReport,
) {
    g.split_flood = true;
    let [syn, ack] = floods;
    let mut next_spoofed = args.flows;
    let mut next_legit = gw_benches::traffic::synproxy::LEGIT_BASE;
    let phases: [(&str, f64, Option<&AnyTemplate>, f64); 6] = [
        ("before", args.duration, None, 0.0),
        ("syn_flood_paced", args.paced_flood, Some(syn), args.flood_rate),
        ("syn_flood", args.syn_flood, Some(syn), 0.0),
        ("after", args.duration, None, 0.0),
        ("ack_flood", args.ack_flood, Some(ack), 0.0),
        ("after_ack", args.duration, None, 0.0),
    ];
    for (name, secs, flood, rate) in phases {
        if secs <= 0.0 || (name == "after_ack" && args.ack_flood <= 0.0) {
            continue;
        }
        g.flood = flood.map(|tpl| Flood {
            template: tpl.clone(),
            flows: Flows::Fresh { next: next_spoofed },
            rate,
        });
        // Under SYNPROXY, legitimate new connections during the floods.
        g.legit = (args.synproxy && flood.is_some()).then(|| Flood {
            template: syn.clone(),
            flows: Flows::Fresh { next: next_legit },
            rate: args.legit_rate,
        });
        t.seconds = Some(secs);
        let p = g.run(name, t, Some(args.sample));
        if let Some(Flood { flows: Flows::Fresh { next }, .. }) = g.flood.take() {
            next_spoofed = next;
        }
        if let Some(Flood { flows: Flows::Fresh { next }, .. }) = g.legit.take() {
            next_legit = next;
        }
        let gw = |k: &str| p.gw.as_ref().and_then(|c| c.get(k).copied()).unwrap_or(0);
        eprintln!(
            "gw-pktgen: {name} {:.2} s: established tx {} rx {} (refused {}), flood tx {} (refused {}) at servers {}, p50 {:?} p99 {:?} us, gw sessions_live {} half_open {} drop_half_open_limit {} drop_no_session_not_syn {}",
            p.seconds,
            p.client_tx,
            p.client_rx,
            p.client_tx_refused,
            p.flood_tx,
            p.flood_tx_refused,
            p.flood_server_rx,
            p.latency.p50_us,
            p.latency.p99_us,
            gw("sessions_live"),
            gw("sessions_half_open"),
            gw("drop_half_open_limit"),
            gw("drop_no_session_not_syn"),
        );
        if args.synproxy {
            eprintln!(
                "gw-pktgen: {name}: SYNs at servers {}, cookies at clients {}, legitimate SYNs {} ACKs {}, gw synproxy_syn_acks_sent {} synproxy_conns_opened {} drop_synproxy_bad_cookie {}",
                p.server_syn_rx,
                p.cookies_rx,
                p.legit_syn_tx,
                p.legit_acks,
                gw("synproxy_syn_acks_sent"),
                gw("synproxy_conns_opened"),
                gw("drop_synproxy_bad_cookie"),
            );
        }
        report.phases.push(p);
    }
}

/// Opens flows 0..`args.flows` with `templates` (one packet each, phase
/// `name`, returned): TCP at [`OPEN_TCP_PPS`] with each flow's SYN
/// tracked and the unanswered ones sent again, at most
/// [`OPEN_TCP_RETRIES`] rounds (phases `open_again`, not reported), so no
/// flow starts the measurement unopened; UDP as fast as the link takes
/// them. Used by the measurement and by `--alternate` for each family.
fn open_flows(args: &Args, g: &mut Gen, templates: &[AnyTemplate], name: &str) -> Phase {
    let one = [0usize];
    let tcp = args.proto == Proto::Tcp;
    let mut open = Traffic {
        templates,
        pattern: &one,
        flows: Flows::Once { next: 0, end: args.flows },
        rate: if tcp { OPEN_TCP_PPS } else { 0.0 },
        seconds: None,
        frag: None,
    };
    if tcp {
        g.answered = vec![false; args.flows as usize];
    }
    let p = g.run(name, &mut open, None);
    for round in 1..=OPEN_TCP_RETRIES {
        let missing: Vec<u64> =
            (0..args.flows).filter(|f| g.answered.get(*f as usize) == Some(&false)).collect();
        if missing.is_empty() {
            break;
        }
        eprintln!("gw-pktgen: {} flows' SYN unanswered, sent again (round {round})", missing.len());
        let mut again = Traffic {
            templates,
            pattern: &one,
            flows: Flows::List { flows: missing, next: 0 },
            rate: OPEN_TCP_PPS,
            seconds: None,
            frag: None,
        };
        g.run("open_again", &mut again, None);
    }
    g.answered = vec![];
    p
}
