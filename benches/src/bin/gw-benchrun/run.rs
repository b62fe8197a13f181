//! Running one scenario: start the device under test, run the generator
//! against it, collect the figures, stop everything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gw_benches::traffic::report::{self, GenReport};
use gw_benches::traffic::table::{self, Row};

use crate::cpulink;
use crate::procs::{self, Proc};
use crate::scenarios::{self, fragment_frames, Dut, Endpoints, Scenario};

/// MACs of the generator's ports and of the DUT's (gatewayd's config uses
/// the same for its ports).
const GEN_CLIENT_MAC: &str = "02:c0:00:00:00:fe";
const GEN_SERVER_MAC: &str = "02:aa:00:00:00:02";
const DUT_OUTSIDE_MAC: &str = "02:00:00:00:00:01";
const DUT_INSIDE_MAC: &str = "02:00:00:00:01:01";
/// The CPU the DUT's worker (gatewayd's, testpmd's forwarding lcore) runs on.
pub const DUT_CPU: usize = 1;
/// The CPU the generator runs on.
pub const GEN_CPU: usize = 0;

/// Keeps the harness (and what it starts, until a process pins its own
/// threads) off the DUT's CPU: pins the calling thread to [`GEN_CPU`].
/// Called first thing, so every thread and child inherits it. Left to the
/// scheduler, the harness's own wake-ups (its polls of the children, then
/// every 20 ms) landed on the DUT's CPU in gatewayd's runs and not in
/// testpmd's: a tracefs record of CPU 1 showed gatewayd's worker away 1.9 %
/// of a second, 48 times 139 µs of it gw-benchrun, testpmd's 0.1 %. That
/// is the same share as the worker's stalls behind issue 14's p99 at half
/// load. The generator's CPU carries the harness for both DUTs alike. False
/// if the kernel refused (the harness runs on unpinned).
pub fn keep_off_the_dut_cpu() -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: GEN_CPU })
}

/// What the DUT's CPU went through around one run, read before and after
/// it: the CPU link's round trip ([`cpulink`]: the host's placement of the
/// two vCPUs) and the hypervisor's steal.
pub struct Around {
    link0: Option<f64>,
    steal0: Option<(u64, u64)>,
}

impl Around {
    pub fn start() -> Around {
        Around { link0: cpulink::round_trip(GEN_CPU, DUT_CPU), steal0: procs::cpu_steal_ticks(DUT_CPU) }
    }

    /// The round trips before and after, TSC cycles, and the percent of the
    /// DUT's CPU stolen.
    pub fn end(self) -> (Option<(f64, f64)>, Option<f64>) {
        let steal = self.steal0.zip(procs::cpu_steal_ticks(DUT_CPU)).map(|(a, b)| procs::steal_pct(a, b));
        (self.link0.zip(cpulink::round_trip(GEN_CPU, DUT_CPU)), steal)
    }
}

/// How often the harness looks at its children while the generator runs.
const POLL_DURING_RUN: Duration = Duration::from_millis(100);

/// What every scenario of one harness run shares.
#[derive(Clone)]
pub struct Ctx {
    /// Scratch directory for configs, logs and socket names; removed at the end.
    pub dir: PathBuf,
    /// Unique per harness run: DPDK file prefixes start with it.
    pub tag: String,
    pub conf_dir: PathBuf,
    pub gatewayd: PathBuf,
    pub pktgen: PathBuf,
    pub testpmd: PathBuf,
    pub stop: &'static AtomicBool,
    /// Seconds to wait, per scenario, for other processes to leave the CPUs.
    pub quiet_wait: f64,
}

impl Ctx {
    fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }

    pub fn endpoints(&self, id: &str) -> Endpoints {
        // memif sockets are abstract (DPDK's default): names, not files.
        Endpoints {
            outside_sock: format!("{}/{id}-outside.sock", self.dir.display()),
            inside_sock: format!("{}/{id}-inside.sock", self.dir.display()),
            control_sock: format!("{}/{id}-control.sock", self.dir.display()),
        }
    }

    /// Waits (up to `quiet_wait`) until other processes use under 25 % of
    /// the CPUs; returns how busy the machine was when we went ahead.
    pub fn wait_quiet(&self) -> f64 {
        let until = Instant::now() + Duration::from_secs_f64(self.quiet_wait);
        loop {
            let busy = procs::busy_now(Duration::from_millis(500));
            if busy < 25.0 || Instant::now() >= until || self.stopped() {
                return busy;
            }
            eprintln!("gw-benchrun: machine {busy:.0} % busy with other work, waiting");
        }
    }
}

/// Runs scenario `s`; the returned row lacks the testpmd ratios.
pub fn scenario(ctx: &Ctx, s: &Scenario) -> Result<Row> {
    let busy_before = ctx.wait_quiet();
    let ep = ctx.endpoints(&s.id);
    let prefix = |what: &str| format!("{}-{}-{what}", ctx.tag, s.id);
    let around = Around::start();
    let t0 = procs::machine_ticks();
    let result = match s.dut {
        Dut::Gatewayd { .. } => run_gatewayd(ctx, s, &ep, &prefix("gw"), &prefix("gen")),
        Dut::Testpmd => run_testpmd(ctx, s, &ep, &prefix("tp"), &prefix("gen")),
    };
    for p in ["gw", "gen", "tp"] {
        procs::remove_dpdk_runtime(&prefix(p));
    }
    let (report, dut, ours) = result?;
    // Before the link probe: its spin is not the machine's other work.
    let t1 = procs::machine_ticks();
    let mut row = to_row(s, &report, &dut)?;
    (row.cpu_link_rtt, row.steal_pct) = around.end();
    if let (Some(a), Some(b)) = (t0, t1) {
        row.others_cpu_pct = Some(procs::others_pct(a, b, ours));
    }
    let others = row.others_cpu_pct.unwrap_or(0.0);
    let preempt = row.dut_preemptions_per_s.unwrap_or(0.0);
    // Two workers on one CPU preempt each other by design (see the row's note).
    let n = if others > table::NOISY_OTHERS_PCT {
        Some(format!(
            "machine shared: other processes used {others:.0} % of the CPU time ({busy_before:.0} % just before), the DUT worker was preempted {preempt:.0} times/s: figures are depressed"
        ))
    } else if preempt > 200.0 && s.workers() == 1 {
        Some(format!("the DUT worker was preempted {preempt:.0} times/s: figures may be depressed"))
    } else {
        None
    };
    let steal = row.steal_pct.unwrap_or(0.0);
    let n = match n {
        Some(n) if steal > table::NOISY_STEAL_PCT => {
            Some(format!("{n}; the hypervisor stole {steal:.1} % of the DUT's CPU"))
        }
        None if steal > table::NOISY_STEAL_PCT => Some(format!(
            "the hypervisor stole {steal:.1} % of the DUT's CPU (steal time): figures are depressed"
        )),
        n => n,
    };
    if let Some(n) = n {
        row.note = if row.note.is_empty() { n } else { format!("{}; {n}", row.note) };
    }
    Ok(row)
}

/// Below this share of busy cycles the DUT was not saturated: the
/// generator (slow in about one run in seven on this machine) or the
/// machine set the rate, and cycles per packet are not the DUT's cost at
/// saturation.
pub const SATURATED_BUSY_PCT: f64 = 90.0;
/// Runs of a scenario whose DUT was not saturated, at most.
const MAX_REPEATS: u32 = 2;

/// [`scenario`], run again (at most [`MAX_REPEATS`] times) while one
/// worker of gatewayd was busy less than [`SATURATED_BUSY_PCT`] of the
/// measurement; the row is the run with the busiest DUT, and says how many
/// runs it took. Two-worker rows (two workers on one CPU) and testpmd are
/// taken as they come.
pub fn scenario_saturated(ctx: &Ctx, s: &Scenario) -> Result<Row> {
    let mut best = scenario(ctx, s)?;
    let busy = |r: &Row| r.dut_busy_pct.unwrap_or(100.0);
    if !matches!(s.dut, Dut::Gatewayd { .. }) || s.workers() > 1 {
        return Ok(best);
    }
    let mut runs = vec![busy(&best)];
    while busy(&best) < SATURATED_BUSY_PCT && (runs.len() as u32) <= MAX_REPEATS && !ctx.stop.load(Relaxed) {
        eprintln!(
            "gw-benchrun: {}: the DUT was busy {:.0} % of the measurement (< {SATURATED_BUSY_PCT:.0} %): not saturated, running it again",
            s.id,
            busy(&best)
        );
        let row = scenario(ctx, s)?;
        runs.push(busy(&row));
        if busy(&row) > busy(&best) {
            best = row;
        }
    }
    best.repeats = runs.len() as u32 - 1;
    if best.repeats > 0 {
        let list = runs.iter().map(|b| format!("{b:.0} %")).collect::<Vec<_>>().join(", ");
        let n = format!(
            "ran {} times: the DUT was busy {list} of the measurements (saturated at >= {SATURATED_BUSY_PCT:.0} %); the row is the busiest run",
            runs.len()
        );
        best.note = if best.note.is_empty() { n } else { format!("{}; {n}", best.note) };
    }
    Ok(best)
}

/// Runs a SYN-flood scenario (gatewayd only); returns the generator's report
/// (one phase per step) and how much CPU other processes took, in percent.
pub fn flood_scenario(ctx: &Ctx, s: &Scenario) -> Result<(GenReport, Option<f64>)> {
    let _ = ctx.wait_quiet();
    let ep = ctx.endpoints(&s.id);
    let prefix = |what: &str| format!("{}-{}-{what}", ctx.tag, s.id);
    let t0 = procs::machine_ticks();
    let result = run_gatewayd(ctx, s, &ep, &prefix("gw"), &prefix("gen"));
    for p in ["gw", "gen"] {
        procs::remove_dpdk_runtime(&prefix(p));
    }
    let (report, _dut, ours) = result?;
    let others = match (t0, procs::machine_ticks()) {
        (Some(a), Some(b)) => Some(procs::others_pct(a, b, ours)),
        _ => None,
    };
    Ok((report, others))
}

/// What the DUT reported besides the generator.
#[derive(Default)]
struct DutFigures {
    rss_mib: Option<f64>,
    /// testpmd's own cycles per packet.
    cycles: Option<f64>,
    /// Preemptions of the DUT's workers while the generator ran, per second.
    preemptions_per_s: Option<f64>,
}

/// Counts the DUT workers' preemptions from now on.
struct PreemptMeter {
    pid: u32,
    start: Option<u64>,
    t0: Instant,
}

impl PreemptMeter {
    fn start(pid: u32) -> PreemptMeter {
        PreemptMeter { pid, start: procs::worker_preemptions(pid), t0: Instant::now() }
    }
    fn per_s(&self) -> Option<f64> {
        let end = procs::worker_preemptions(self.pid)?;
        Some(end.saturating_sub(self.start?) as f64 / self.t0.elapsed().as_secs_f64().max(1e-3))
    }
}

fn pktgen_cmd(
    ctx: &Ctx,
    s: &Scenario,
    ep: &Endpoints,
    prefix: &str,
    gw_socket: Option<&str>,
    hold: bool,
    extra: &[String],
) -> Command {
    let mut c = Command::new(&ctx.pktgen);
    c.arg("--flows").arg(s.flows.to_string()).arg("--proto").arg(s.proto);
    c.arg("--sizes").arg(s.sizes.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
    if !s.mix.is_empty() {
        c.arg("--mix").arg(s.mix.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
    }
    c.arg("--duration").arg(s.duration.to_string());
    c.arg("--warmup").arg(s.warmup.to_string());
    c.arg("--half-load").arg(s.half_load.to_string());
    if s.new_flows {
        c.arg("--new-flows");
    }
    c.arg("--order").arg(s.order);
    if s.fragment > 0 {
        c.arg("--fragment").arg(s.fragment.to_string());
    }
    if s.ipv6 {
        c.arg("--ipv6");
    }
    if s.syn_flood > 0.0 {
        c.arg("--rate").arg(s.rate.to_string());
        c.arg("--syn-flood").arg(s.syn_flood.to_string());
        c.arg("--ack-flood").arg(s.ack_flood.to_string());
        c.arg("--paced-flood").arg(s.paced_flood.to_string());
        c.arg("--flood-rate").arg(s.flood_rate.to_string());
    }
    if s.synproxy {
        c.arg("--synproxy");
    }
    if s.window > 0 {
        c.arg("--window").arg(s.window.to_string());
    }
    if s.syn_only {
        c.arg("--syn-only");
    }
    match s.dut {
        Dut::Gatewayd { mode, .. } if mode.one_way() => {
            c.arg("--one-way");
        }
        Dut::Testpmd => {
            // testpmd answers no ARP and keeps no sessions.
            c.args(["--gw-mac", DUT_OUTSIDE_MAC, "--no-open"]);
        }
        _ => {}
    }
    if let Some(sock) = gw_socket {
        c.arg("--gw-socket").arg(sock);
    }
    if hold {
        c.arg("--hold");
    }
    // A memif pair must agree on its queue count: one per gatewayd worker.
    c.arg("--queues").arg(s.workers().to_string());
    c.args(extra);
    c.arg("--");
    c.args(["--lcores", "0@0", "--no-huge", "-m", "256", "--file-prefix", prefix]);
    c.args(["--no-pci", "--no-telemetry", "--log-level", "*:warning"]);
    c.arg(format!("--vdev=net_memif0,role=client,socket={},id=0,mac={GEN_CLIENT_MAC}", ep.outside_sock));
    c.arg(format!("--vdev=net_memif1,role=client,socket={},id=0,mac={GEN_SERVER_MAC}", ep.inside_sock));
    c
}

/// Runs the generator until it reported; returns it (still running if
/// `hold`: it waits for a line on stdin), its report and its CPU ticks.
fn run_pktgen(
    ctx: &Ctx,
    s: &Scenario,
    cmd: Command,
    dut: &mut Proc,
    hold: bool,
) -> Result<(Proc, GenReport, u64)> {
    let json = ctx.dir.join(format!("{}.pktgen.json", s.id));
    let mut gen =
        Proc::spawn("gw-pktgen", cmd, &ctx.dir.join(format!("{}.pktgen.log", s.id)), Some(&json), hold)?;
    let reported = || std::fs::read_to_string(&json).is_ok_and(|t| t.ends_with("}\n"));
    let until = Instant::now() + Duration::from_secs_f64(s.budget_s());
    let mut ticks = 0;
    let status = loop {
        if let Some(t) = procs::cpu_ticks(gen.pid()) {
            ticks = t;
        }
        if hold && reported() {
            break None;
        }
        if let Some(st) = gen.try_wait() {
            break Some(st);
        }
        if let Some(st) = dut.try_wait() {
            bail!("{} exited ({st}) during the run:\n{}", dut.name, dut.log_tail(20));
        }
        if ctx.stopped() {
            bail!("interrupted");
        }
        if Instant::now() >= until {
            bail!("gw-pktgen did not finish within {:.0} s:\n{}", s.budget_s(), gen.log_tail(20));
        }
        // Seldom: each wake-up takes the generator's CPU for a while
        // (139 µs on average on the development VM).
        std::thread::sleep(POLL_DURING_RUN);
    };
    let log = gen.log_tail(12);
    if let Some(st) = status.filter(|st| !st.success()) {
        bail!("gw-pktgen failed ({st}):\n{log}");
    }
    eprintln!("{log}");
    let text = std::fs::read_to_string(&json).context("reading the generator's report")?;
    let report: GenReport = serde_json::from_str(text.trim()).context("parsing the generator's report")?;
    Ok((gen, report, ticks))
}

fn run_gatewayd(
    ctx: &Ctx,
    s: &Scenario,
    ep: &Endpoints,
    gw_prefix: &str,
    gen_prefix: &str,
) -> Result<(GenReport, DutFigures, u64)> {
    let conf = scenarios::gatewayd_config(&ctx.conf_dir, s, ep, gw_prefix)?;
    run_gatewayd_conf(ctx, s, ep, gen_prefix, conf, &|_| vec![])
}

/// Runs gatewayd with config `conf` (made for `ep` and its file prefix)
/// and the generator of scenario `s` with extra arguments (e.g.
/// `--alternate`, a shorter `--sample`) that `extra` makes from gatewayd's
/// pid; returns the generator's report and the DUT worker's preemptions
/// per second. The caller removes the DPDK runtime directories of both
/// prefixes.
pub fn gatewayd_custom(
    ctx: &Ctx,
    s: &Scenario,
    ep: &Endpoints,
    gen_prefix: &str,
    conf: String,
    extra: &dyn Fn(u32) -> Vec<String>,
) -> Result<(GenReport, Option<f64>)> {
    run_gatewayd_conf(ctx, s, ep, gen_prefix, conf, extra).map(|(r, d, _)| (r, d.preemptions_per_s))
}

/// `conf` as the build `gatewayd` accepts it, asked with `--check`: a
/// build from before `workers.record_burst_cycles` (a reference build of a
/// ratio run, `--gatewayd-b`) refuses the key, so its runs go without it
/// (no `burst_cycles`: its ratios to testpmd use the whole-poll figure).
/// Any other refusal is left for the start itself to report.
fn accepted_config(gatewayd: &Path, path: &Path, conf: String) -> Result<String> {
    std::fs::write(path, &conf)?;
    let out = Command::new(gatewayd).arg("--check").arg("--config").arg(path).output()?;
    if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("`record_burst_cycles`") {
        return Ok(conf);
    }
    eprintln!("gw-benchrun: {} predates workers.record_burst_cycles: it runs without it", gatewayd.display());
    scenarios::without_burst_cycles(&conf)
}

fn run_gatewayd_conf(
    ctx: &Ctx,
    s: &Scenario,
    ep: &Endpoints,
    gen_prefix: &str,
    conf: String,
    extra: &dyn Fn(u32) -> Vec<String>,
) -> Result<(GenReport, DutFigures, u64)> {
    let conf_path = ctx.dir.join(format!("{}.toml", s.id));
    let conf = accepted_config(&ctx.gatewayd, &conf_path, conf)?;
    std::fs::write(&conf_path, conf)?;
    let mut cmd = Command::new(&ctx.gatewayd);
    cmd.arg("--config").arg(&conf_path).env("RUST_LOG", "warn");
    let mut gw = Proc::spawn("gatewayd", cmd, &ctx.dir.join(format!("{}.gatewayd.log", s.id)), None, false)?;
    // Up when the control socket answers (the session table is allocated
    // before it opens).
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if report::gw_counters(Path::new(&ep.control_sock)).is_ok() {
            break;
        }
        if let Some(st) = gw.try_wait() {
            bail!("gatewayd exited ({st}) at start:\n{}", gw.log_tail(20));
        }
        if Instant::now() >= until || ctx.stopped() {
            bail!("gatewayd's control socket did not answer within 60 s:\n{}", gw.log_tail(20));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The generator holds its memif connections until gatewayd has stopped:
    // DPDK 22.11's memif PMD unmaps a connection's rings from its interrupt
    // thread when the peer leaves, and a worker in the middle of a burst on
    // it then faults (seen with two workers time-sliced on one CPU).
    let cmd = pktgen_cmd(ctx, s, ep, gen_prefix, Some(&ep.control_sock), true, &extra(gw.pid()));
    let preempt = PreemptMeter::start(gw.pid());
    let (mut gen, report, gen_ticks) = run_pktgen(ctx, s, cmd, &mut gw, true)?;
    let preemptions_per_s = preempt.per_s();
    let rss = procs::rss_mib(gw.pid()).map(|r| r.0);
    let gw_ticks = procs::cpu_ticks(gw.pid()).unwrap_or(0);
    let status = gw.stop(Duration::from_secs(15));
    if !status.is_some_and(|s| s.success()) {
        eprintln!("gw-benchrun: gatewayd exited with {status:?}:\n{}", gw.log_tail(10));
    }
    gen.send_line("");
    let _ = gen.wait_timeout(Duration::from_secs(10), &|| false);
    Ok((report, DutFigures { rss_mib: rss, cycles: None, preemptions_per_s }, gen_ticks + gw_ticks))
}

fn run_testpmd(
    ctx: &Ctx,
    s: &Scenario,
    ep: &Endpoints,
    tp_prefix: &str,
    gen_prefix: &str,
) -> Result<(GenReport, DutFigures, u64)> {
    let mut cmd = Command::new(&ctx.testpmd);
    cmd.args(["--lcores", "0@0,1@1", "--no-huge", "-m", "512", "--file-prefix", tp_prefix]);
    cmd.args(["--no-pci", "--no-telemetry", "--log-level", "*:warning"]);
    cmd.arg(format!("--vdev=net_memif0,role=server,socket={},id=0,mac={DUT_OUTSIDE_MAC}", ep.outside_sock));
    cmd.arg(format!("--vdev=net_memif1,role=server,socket={},id=0,mac={DUT_INSIDE_MAC}", ep.inside_sock));
    cmd.args([
        "--",
        "--forward-mode=macswap",
        "--record-core-cycles",
        "--nb-cores=1",
        "--disable-link-check",
    ]);
    cmd.args(["--total-num-mbufs=32768", "--burst=32", "--rxd=1024", "--txd=1024"]);
    let log = ctx.dir.join(format!("{}.testpmd.log", s.id));
    let mut tp = Proc::spawn("dpdk-testpmd", cmd, &log, None, true)?;
    // Ready when both memif sockets listen (testpmd's stdout is a file, so
    // block-buffered: its messages cannot tell us).
    let until = Instant::now() + Duration::from_secs(30);
    while !procs::unix_listening(&ep.outside_sock) || !procs::unix_listening(&ep.inside_sock) {
        if let Some(st) = tp.try_wait() {
            bail!("dpdk-testpmd exited ({st}) at start:\n{}", tp.log_tail(20));
        }
        if Instant::now() >= until || ctx.stopped() {
            bail!("dpdk-testpmd's memif sockets did not appear within 30 s:\n{}", tp.log_tail(20));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cmd = pktgen_cmd(ctx, s, ep, gen_prefix, None, true, &[]);
    let preempt = PreemptMeter::start(tp.pid());
    let (mut gen, report, gen_ticks) = run_pktgen(ctx, s, cmd, &mut tp, true)?;
    let preemptions_per_s = preempt.per_s();
    let rss = procs::rss_mib(tp.pid()).map(|r| r.0);
    let tp_ticks = procs::cpu_ticks(tp.pid()).unwrap_or(0);
    // "Press enter to exit": testpmd stops forwarding and prints its stats,
    // while the generator still holds the memif connections (the counters
    // testpmd reads vanish with them).
    tp.send_line("");
    let _ = tp.wait_timeout(Duration::from_secs(15), &|| false);
    tp.stop(Duration::from_secs(5));
    gen.send_line("");
    let _ = gen.wait_timeout(Duration::from_secs(10), &|| false);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let cycles = testpmd_cycles(&text);
    if cycles.is_none() {
        eprintln!("gw-benchrun: no 'CPU cycles/packet' in testpmd's output:\n{}", tp.log_tail(20));
    }
    Ok((report, DutFigures { rss_mib: rss, cycles, preemptions_per_s }, gen_ticks + tp_ticks))
}

/// testpmd's `--record-core-cycles` figure: the last "CPU cycles/packet=X".
pub fn testpmd_cycles(out: &str) -> Option<f64> {
    let at = out.rfind("CPU cycles/packet=")? + "CPU cycles/packet=".len();
    let num: String = out[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    num.parse().ok()
}

fn to_row(s: &Scenario, r: &GenReport, dut: &DutFigures) -> Result<Row> {
    let m = r.phase("measure").context("the generator reported no measurement")?;
    let half = r.phase("half_load").map(|p| p.latency);
    let gw = matches!(s.dut, Dut::Gatewayd { .. });
    let (mpps, mpps_lo, mpps_hi) = m.forwarded_pps_spread();
    // Fragmented datagrams: the rate and the cycles are per datagram; the
    // frames go into the note.
    let mut note = s.note.clone();
    let cycles_spread = if s.fragment > 0 {
        let frames = fragment_frames(s.fragment);
        note = format!(
            "Mpps and cycles per {} B UDP datagram ({} frames each way, {} B; reassembled and fragmented again by gatewayd in both directions): {:.2} M frames/s forwarded, {} cycles per frame received",
            s.fragment,
            frames.len(),
            frames.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("+"),
            m.rx_fragments as f64 / m.seconds.max(1e-9) / 1e6,
            m.gw_cycles_per_packet().map_or("–".into(), |c| format!("{c:.0}")),
        );
        m.gw_cycles_per_datagram_spread()
    } else {
        m.gw_cycles_spread()
    };
    let (cycles, cycles_range) = match (gw, cycles_spread) {
        (true, Some((c, lo, hi))) => (Some(c), Some((lo, hi))),
        (true, None) => (None, None),
        (false, _) => (dut.cycles, None),
    };
    let capacity = m.gw("session_capacity");
    // The phases testpmd's figure spans (the open phase is gatewayd's own).
    let scoped = r.phases.iter().filter(|p| matches!(p.name.as_str(), "warmup" | "measure" | "half_load"));
    let (busy, bursts, rx) = scoped.fold((0, 0, 0), |(b, c, n), p| {
        (b + p.gw("busy_cycles"), c + p.gw("burst_cycles"), n + p.gw("rx_packets"))
    });
    Ok(Row {
        id: s.id.clone(),
        scenario: s.title.clone(),
        dut: if gw { "gatewayd".into() } else { "testpmd macswap".into() },
        workers: s.workers(),
        flows: s.flows,
        frames: s.frames(),
        mpps: mpps / 1e6,
        mpps_range: Some((mpps_lo / 1e6, mpps_hi / 1e6)),
        cycles_per_packet: cycles,
        cycles_range,
        cycles_testpmd_scope: (gw && s.fragment == 0 && rx > 0).then(|| busy as f64 / rx as f64),
        cycles_testpmd_accounting: (gw && s.fragment == 0 && rx > 0 && bursts > 0)
            .then(|| bursts as f64 / rx as f64),
        tsc_hz: r.tsc_hz,
        vs_testpmd_mpps: None,
        vs_testpmd_cycles: None,
        drop_pct: m.loss(r.round_trip) * 100.0,
        gw_drops: m.gw_drops(),
        gw_drop_reasons: m
            .gw
            .iter()
            .flatten()
            .filter(|(k, v)| k.starts_with("drop_") && **v > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        latency_max_load: m.latency,
        latency_half_load: half,
        vs_testpmd_p99_half: None,
        dut_busy_pct: if gw { m.gw_busy_share(r.tsc_hz).map(|b| b * 100.0) } else { None },
        repeats: 0,
        new_sessions_per_s: s.new_flows.then(|| m.gw("sessions_created") as f64 / m.seconds.max(1e-9)),
        sessions_live: gw.then(|| m.gw("sessions_live")),
        bytes_per_session: (capacity > 0).then(|| m.gw("session_table_bytes") as f64 / capacity as f64),
        rss_mib: dut.rss_mib,
        dut_preemptions_per_s: dut.preemptions_per_s,
        others_cpu_pct: None,
        steal_pct: None,
        cpu_link_rtt: None,
        vs_testpmd_same_level: None,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_pins_itself_to_the_generators_cpu() {
        // In a thread of its own: the pin stays with the thread.
        let cpus = std::thread::spawn(|| {
            assert!(keep_off_the_dut_cpu());
            core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect::<Vec<_>>()
        });
        assert_eq!(cpus.join().unwrap(), vec![GEN_CPU]);
    }

    #[test]
    fn testpmd_cycles_are_parsed() {
        let out =
            "...\n  CPU cycles/packet=121.26 (busy cycles=100 / total macswap packets=5) at 2600 MHz Clock\n";
        assert_eq!(testpmd_cycles(out), Some(121.26));
        assert_eq!(testpmd_cycles("nothing"), None);
    }
}
