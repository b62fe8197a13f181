//! The scenarios of issue 5 and the per-scenario gatewayd configuration.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// gatewayd's forwarding mode under test; names its `conf/bench-*.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    FullNat,
    Nat,
    Dr,
    Tun,
    /// FULLNAT IPv6 -> IPv6 (issue 17): IPv6 clients, VIP, local addresses
    /// and real servers.
    FullNat6,
    /// NAT64 (issue 17): IPv6 clients and VIP, IPv4 local addresses and
    /// real servers.
    Nat64,
}

impl Mode {
    pub fn conf_name(self) -> &'static str {
        match self {
            Mode::FullNat => "bench-fullnat.toml",
            Mode::Nat => "bench-nat.toml",
            Mode::Dr => "bench-dr.toml",
            Mode::Tun => "bench-tun.toml",
            Mode::FullNat6 => "bench-fullnat6.toml",
            Mode::Nat64 => "bench-nat64.toml",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Mode::FullNat => "FULLNAT",
            Mode::Nat => "NAT",
            Mode::Dr => "DR",
            Mode::Tun => "TUN",
            Mode::FullNat6 => "FULLNAT6",
            Mode::Nat64 => "NAT64",
        }
    }
    /// The clients speak IPv6 (`gw-pktgen --ipv6`).
    pub fn ipv6(self) -> bool {
        matches!(self, Mode::FullNat6 | Mode::Nat64)
    }
    /// DR and TUN servers answer the client directly, not through the
    /// gateway: the generator counts at the servers.
    pub fn one_way(self) -> bool {
        matches!(self, Mode::Dr | Mode::Tun)
    }
}

/// The device under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dut {
    Gatewayd {
        mode: Mode,
        workers: u32,
    },
    /// `dpdk-testpmd --forward-mode=macswap` on the same memif link: the ceiling.
    Testpmd,
}

/// One row of the results.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub dut: Dut,
    pub proto: &'static str,
    pub sizes: Vec<usize>,
    pub mix: Vec<usize>,
    pub flows: u64,
    /// Every measured packet opens a new flow.
    pub new_flows: bool,
    pub duration: f64,
    pub warmup: f64,
    pub half_load: f64,
    /// gatewayd's session capacity (per worker).
    pub sessions: usize,
    pub note: String,
    /// SYN-flood measurement (issue 7): established flows at `rate` client
    /// packets/s, `syn_flood` s of SYN flood, `ack_flood` s of ACK flood.
    pub syn_flood: f64,
    pub ack_flood: f64,
    pub rate: f64,
    /// Seconds of SYN flood at `flood_rate` before the full-rate one.
    pub paced_flood: f64,
    pub flood_rate: f64,
    /// UDP datagrams of this many bytes sent as IPv4 fragments instead of
    /// `sizes` (`gw-pktgen --fragment`); 0: off.
    pub fragment: usize,
    /// The order established flows are visited in (`gw-pktgen --order`):
    /// "random" for every row unless the row says otherwise.
    pub order: &'static str,
    /// The clients speak IPv6 (`gw-pktgen --ipv6`, issue 17).
    pub ipv6: bool,
    /// The TCP service is a SYNPROXY one (`-j enable`, issue 16;
    /// `gw-pktgen --synproxy`): written to `synproxy_flood.md`.
    pub synproxy: bool,
    /// Answer pacing (`gw-pktgen --window`): client packets in flight at
    /// most during the warm-up and the measurement; 0: as fast as the link
    /// takes them.
    pub window: u64,
    /// New TCP sessions without the handshake's last ACK (`gw-pktgen
    /// --syn-only`): SYN and SYN+ACK, 2 packets per session.
    pub syn_only: bool,
}

/// The TCP new-session rows' `--window`: a burst and a half. Each client
/// packet crosses the gateway twice (its SYN or ACK on the outside port,
/// the answer on the inside one), so a saturated gateway holds about 24 of
/// them on each port's ring: its bursts come back short, never the two
/// full ones in a row that make it shed SYNs (`gw_core::synproxy::shed`),
/// while the generator already has the next half-burst of answers to turn
/// round (with 32 the two would take turns, see docs/benchmarks.md).
pub const NEW_TCP_WINDOW: u64 = 48;

/// The simple IMIX: 7 x 64 B, 4 x 512 B, 1 x 1514 B (a 1500-byte IP packet).
pub const IMIX_SIZES: [usize; 3] = [64, 512, 1514];
pub const IMIX_MIX: [usize; 3] = [7, 4, 1];
/// The IPv6 rows' frame: the IPv4 rows' 64 bytes (TCP header + stamp) plus
/// the 20 bytes an IPv6 header is longer.
pub const IPV6_FRAME: usize = 84;

impl Scenario {
    /// The frame sizes as the table shows them.
    pub fn frames(&self) -> String {
        if self.fragment > 0 {
            let f: Vec<String> = fragment_frames(self.fragment).iter().map(|s| s.to_string()).collect();
            format!("{} ({} B datagrams)", f.join("+"), self.fragment)
        } else if self.sizes.len() == 1 {
            self.sizes[0].to_string()
        } else {
            let s: Vec<String> = self.sizes.iter().map(|s| s.to_string()).collect();
            let m: Vec<String> = self.mix.iter().map(|s| s.to_string()).collect();
            format!("{} ({})", s.join("/"), m.join(":"))
        }
    }

    pub fn workers(&self) -> u32 {
        match self.dut {
            Dut::Gatewayd { workers, .. } => workers,
            Dut::Testpmd => 1,
        }
    }

    /// Upper bound of the scenario's run time, for time-outs.
    pub fn budget_s(&self) -> f64 {
        // Opening runs at ~300k flows/s on a 2-CPU machine, more when it is
        // quiet, but under 100k/s when other builds share it (10M flows
        // missed a 100k/s budget): allow for 50k/s.
        let open = self.flows as f64 / 50_000.0;
        let floods = if self.syn_flood > 0.0 {
            3.0 * self.duration + self.paced_flood + self.syn_flood + self.ack_flood
        } else {
            0.0
        };
        30.0 + open + self.warmup + self.duration + self.half_load + floods
    }
}

/// Frame lengths of the fragments of a `udp_len`-byte UDP datagram cut to a
/// 1500-byte IP MTU (1480 bytes of data per fragment), as gw-pktgen sends
/// them and gatewayd fragments on output.
pub fn fragment_frames(udp_len: usize) -> Vec<usize> {
    const STEP: usize = 1480;
    (0..udp_len).step_by(STEP).map(|o| 14 + 20 + STEP.min(udp_len - o)).collect()
}

fn capacity_for(flows: u64) -> usize {
    // Room for the flows plus a quarter, rounded up to a power of two (the
    // bucket arrays are a power of two anyway).
    ((flows + flows / 4).max(65_536) as usize).next_power_of_two()
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{}m", n / 1_000_000),
        n if n >= 1_000 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn gw(
    mode: Mode,
    proto: &'static str,
    flows: u64,
    workers: u32,
    sizes: &[usize],
    mix: &[usize],
    title: &str,
    half: f64,
) -> Scenario {
    let frames = if sizes.len() > 1 { "-imix" } else { "" };
    let w = if workers > 1 { format!("-{workers}w") } else { String::new() };
    Scenario {
        id: format!("{}-{proto}{frames}-{}{w}", mode.label().to_lowercase(), count(flows)),
        title: title.to_string(),
        dut: Dut::Gatewayd { mode, workers },
        proto,
        sizes: sizes.to_vec(),
        mix: mix.to_vec(),
        flows,
        new_flows: false,
        duration: 3.0,
        warmup: 0.5,
        half_load: half,
        sessions: capacity_for(flows),
        note: String::new(),
        syn_flood: 0.0,
        ack_flood: 0.0,
        rate: 0.0,
        paced_flood: 0.0,
        flood_rate: 0.0,
        fragment: 0,
        order: "random",
        ipv6: mode.ipv6(),
        synproxy: false,
        window: 0,
        syn_only: false,
    }
}

fn testpmd(id: &str, sizes: &[usize], mix: &[usize]) -> Scenario {
    Scenario {
        id: id.to_string(),
        title: "ceiling: same memif link".to_string(),
        dut: Dut::Testpmd,
        proto: "udp",
        sizes: sizes.to_vec(),
        mix: mix.to_vec(),
        flows: 1000,
        new_flows: false,
        duration: 3.0,
        warmup: 0.5,
        half_load: 1.5,
        sessions: 0,
        note: String::new(),
        syn_flood: 0.0,
        ack_flood: 0.0,
        rate: 0.0,
        paced_flood: 0.0,
        flood_rate: 0.0,
        fragment: 0,
        order: "random",
        ipv6: false,
        synproxy: false,
        window: 0,
        syn_only: false,
    }
}

/// Every scenario of issue 5, ceilings first.
pub fn full() -> Vec<Scenario> {
    let mut v = vec![testpmd("testpmd-64", &[64], &[]), testpmd("testpmd-imix", &IMIX_SIZES, &IMIX_MIX)];
    for proto in ["udp", "tcp"] {
        let what = if proto == "udp" { "FULLNAT UDP established" } else { "FULLNAT TCP ACK established" };
        for flows in [1_000, 100_000, 1_000_000, 10_000_000] {
            v.push(gw(Mode::FullNat, proto, flows, 1, &[64], &[], what, 1.5));
        }
    }
    // IPv6 (issue 17): FULLNAT66 and NAT64 beside the IPv4 1k rows, and the ceiling
    // with IPv6 frames (the IPv4 rows' 64 bytes plus the 20 bytes IPv6's
    // header adds).
    let mut t = testpmd("testpmd-84-ipv6", &[IPV6_FRAME], &[]);
    t.title = "ceiling: same memif link, IPv6 clients".into();
    t.ipv6 = true;
    v.push(t);
    for (mode, proto, title) in [
        (Mode::FullNat6, "udp", "FULLNAT IPv6 -> IPv6 UDP established"),
        (Mode::FullNat6, "tcp", "FULLNAT IPv6 -> IPv6 TCP ACK established"),
        (Mode::Nat64, "udp", "NAT64 (IPv6 clients, IPv4 servers) UDP established"),
        (Mode::Nat64, "tcp", "NAT64 (IPv6 clients, IPv4 servers) TCP ACK established"),
    ] {
        v.push(gw(mode, proto, 1_000, 1, &[IPV6_FRAME], &[], title, 1.5));
    }
    // The same 10M sessions with a skewed mix: a few hot flows, a long tail.
    let mut z =
        gw(Mode::FullNat, "udp", 10_000_000, 1, &[64], &[], "FULLNAT UDP established, Zipf (s = 0.99)", 0.0);
    z.id.push_str("-zipf");
    z.order = "zipf";
    v.push(z);
    for (id, proto, title) in [
        ("fullnat-udp-new", "udp", "FULLNAT new UDP flows, 1M live"),
        ("fullnat-tcp-syn", "tcp", "FULLNAT new TCP sessions (SYN, SYN+ACK), 1M live"),
        ("fullnat-tcp-new", "tcp", "FULLNAT new TCP connections, 1M live"),
    ] {
        let mut s = gw(Mode::FullNat, proto, 1_000_000, 1, &[64], &[], title, 0.0);
        s.id = id.into();
        s.new_flows = true;
        s.duration = 2.0;
        s.warmup = 0.2;
        // 1M live plus a few million new ones.
        s.sessions = 1 << 24;
        s.note = match id {
            "fullnat-udp-new" => "new flows: the first packet and the server's answer, 2 packets each".into(),
            "fullnat-tcp-syn" => format!("new sessions: the SYN and the server's SYN+ACK, 2 packets each (the client never ACKs: half-open), at most {NEW_TCP_WINDOW} packets in flight"),
            _ => format!("new connections: SYN, SYN+ACK, the client's ACK (with data) and the server's echo, 4 packets each, at most {NEW_TCP_WINDOW} packets in flight"),
        };
        if proto == "tcp" {
            s.window = NEW_TCP_WINDOW;
            s.syn_only = id == "fullnat-tcp-syn";
        }

        v.push(s);
    }
    for mode in [Mode::Nat, Mode::Dr, Mode::Tun] {
        let title = format!("{} UDP established", mode.label());
        let mut s = gw(mode, "udp", 100_000, 1, &[64], &[], &title, 1.5);
        if mode.one_way() {
            s.note = "one way: the real servers answer the clients directly; Mpps counts client -> server only, latency is one way".into();
        }
        v.push(s);
    }
    v.push(gw(
        Mode::FullNat,
        "udp",
        100_000,
        1,
        &IMIX_SIZES,
        &IMIX_MIX,
        "FULLNAT UDP established, IMIX",
        1.5,
    ));
    // Fragmented UDP (issue 11): every datagram is reassembled by gatewayd
    // and fragmented again on output, in both directions.
    let mut s = gw(Mode::FullNat, "udp", 1_000, 1, &[64], &[], "FULLNAT UDP, fragmented datagrams", 1.5);
    s.id = "fullnat-udp-frag".into();
    s.fragment = 3000;
    v.push(s);
    for flows in [1_000, 1_000_000] {
        let mut s = gw(Mode::FullNat, "udp", flows, 2, &[64], &[], "FULLNAT UDP established", 1.5);
        s.note = "2 workers on ONE CPU (the machine has 2; the other runs the generator): oversubscribed, shows the hand-off path works, not a scaling figure".into();
        v.push(s);
    }
    // The ceiling again: on a shared machine the same run can be twice as
    // fast minutes later, so the ratios use the better of the two.
    let mut end = testpmd("testpmd-64-end", &[64], &[]);
    end.title = "ceiling again, at the end".into();
    v.push(end);
    v
}

/// Scenarios outside the default run (`--only` picks them): the SYN-flood
/// measurement of issue 7, written to `synflood.md` / `synflood.json`.
pub fn extra() -> Vec<Scenario> {
    let mut s =
        gw(Mode::FullNat, "tcp", 10_000, 1, &[64], &[], "FULLNAT TCP established under a SYN flood", 0.0);
    s.id = "synflood".into();
    s.duration = 3.0;
    s.warmup = 0.5;
    // 1M sessions: the half-open cap (half_open_percent 50) is 524288.
    s.sessions = 1 << 20;
    s.rate = 200_000.0;
    s.paced_flood = 4.0;
    s.flood_rate = 1_000_000.0;
    s.syn_flood = 5.0;
    s.ack_flood = 3.0;
    // Issue 16: the same established flows through a SYNPROXY service (the
    // cookie handshake), a SYN flood at the generator's full rate and an
    // ACK flood, legitimate new connections during both.
    let mut p = s.clone();
    p.id = "synproxy-flood".into();
    p.title = "FULLNAT TCP established through SYNPROXY under a SYN flood".into();
    p.synproxy = true;
    p.paced_flood = 0.0;
    vec![s, p]
}

/// The CI smoke run: one short FULLNAT scenario.
pub fn smoke() -> Vec<Scenario> {
    let mut s = gw(Mode::FullNat, "udp", 1_000, 1, &[64], &[], "FULLNAT UDP established (smoke)", 0.0);
    s.duration = 1.0;
    s.warmup = 0.2;
    vec![s]
}

/// Where the scenario's processes meet: sockets and DPDK file prefixes.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub outside_sock: String,
    pub inside_sock: String,
    pub control_sock: String,
}

/// gatewayd's config for a scenario: `conf/bench-*.toml` with the run's
/// sockets, file prefix, lcores and session capacity.
/// gatewayd config `conf` without `workers.record_burst_cycles`, for a
/// build that predates it.
pub fn without_burst_cycles(conf: &str) -> Result<String> {
    let mut t: toml::Table = conf.parse().context("parsing gatewayd's config")?;
    if let Some(w) = t.get_mut("workers").and_then(|w| w.as_table_mut()) {
        w.remove("record_burst_cycles");
    }
    Ok(toml::to_string(&t)?)
}

pub fn gatewayd_config(conf_dir: &Path, s: &Scenario, ep: &Endpoints, prefix: &str) -> Result<String> {
    let Dut::Gatewayd { mode, workers } = s.dut else { bail!("{} is not a gatewayd scenario", s.id) };
    let path = conf_dir.join(mode.conf_name());
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut t: toml::Table = text.parse().with_context(|| format!("parsing {}", path.display()))?;
    // EAL: our file prefix; lcore 0 (control) on CPU 0 with the generator,
    // every worker on CPU 1.
    let lcores = (1..=workers).map(|w| format!("{w}@1")).collect::<Vec<_>>().join(",");
    let args = vec![
        "--lcores".to_string(),
        format!("0@0,{lcores}"),
        "--no-huge".into(),
        "-m".into(),
        "512".into(),
        "--file-prefix".into(),
        prefix.to_string(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        "--log-level".into(),
        "*:warning".into(),
    ];
    let eal = t.entry("eal").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    eal.as_table_mut().context("[eal] is not a table")?.insert("args".into(), args.into());
    let ports = t.get_mut("port").and_then(|p| p.as_array_mut()).context("no [[port]]")?;
    for (p, sock) in ports.iter_mut().zip([&ep.outside_sock, &ep.inside_sock]) {
        let p = p.as_table_mut().context("[[port]] is not a table")?;
        let dev = p.get("device").and_then(|d| d.as_str()).context("port without device")?;
        let dev: Vec<String> = dev
            .split(',')
            .map(|kv| if kv.starts_with("socket=") { format!("socket={sock}") } else { kv.to_string() })
            .collect();
        p.insert("device".into(), dev.join(",").into());
    }
    let w = t.entry("workers").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let w = w.as_table_mut().context("[workers] is not a table")?;
    w.insert("cores".into(), (1..=i64::from(workers)).map(toml::Value::from).collect::<Vec<_>>().into());
    w.insert("sessions".into(), (s.sessions as i64).into());
    w.insert("idle".into(), "busy".into());
    // Count as testpmd counts too (`burst_cycles`), for the ratios to it.
    w.insert("record_burst_cycles".into(), true.into());
    let c = t.entry("control").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    c.as_table_mut()
        .context("[control] is not a table")?
        .insert("socket".into(), ep.control_sock.clone().into());
    if s.synproxy {
        synproxy_services(&mut t)?;
    }
    Ok(toml::to_string(&t)?)
}

/// Turns SYNPROXY on for every TCP service of the config (`-j enable` on
/// its `-A -t` rule line).
fn synproxy_services(t: &mut toml::Table) -> Result<()> {
    let services = t.get_mut("service").and_then(|s| s.as_array_mut()).context("no [[service]]")?;
    let mut n = 0;
    for sv in services.iter_mut() {
        let sv = sv.as_table_mut().context("[[service]] is not a table")?;
        let Some(rules) = sv.get("rules").and_then(|r| r.as_str()) else { continue };
        let rules: Vec<String> = rules
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("-A -t ") {
                    n += 1;
                    format!("{l} -j enable")
                } else {
                    l.to_string()
                }
            })
            .collect();
        sv.insert("rules".into(), (rules.join("\n") + "\n").into());
    }
    if n == 0 {
        bail!("no TCP service (-A -t) to turn SYNPROXY on for");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_ids_are_unique_and_readable() {
        let v = full();
        let mut ids: Vec<_> = v.iter().map(|s| s.id.clone()).collect();
        assert!(ids.contains(&"fullnat-udp-10m".to_string()), "{ids:?}");
        assert!(ids.contains(&"fullnat-tcp-1k".to_string()));
        assert!(ids.contains(&"fullnat-udp-1k-2w".to_string()));
        assert!(ids.contains(&"fullnat-udp-imix-100k".to_string()));
        assert!(ids.contains(&"fullnat-udp-frag".to_string()));
        // New TCP sessions are paced by the answers, never a flood the
        // gateway sheds; the SYN-only row counts sessions as UDP's does.
        let tcp_new: Vec<_> = v.iter().filter(|s| s.new_flows && s.proto == "tcp").collect();
        assert_eq!(tcp_new.len(), 2);
        assert!(tcp_new.iter().all(|s| s.window > 0));
        assert!(v.iter().filter(|s| s.syn_only).all(|s| s.id == "fullnat-tcp-syn" && s.new_flows));
        for id in ["fullnat6-udp-1k", "fullnat6-tcp-1k", "nat64-udp-1k", "nat64-tcp-1k"] {
            assert!(ids.contains(&id.to_string()), "{id}");
        }
        assert!(v.iter().filter(|s| s.ipv6).all(|s| s.sizes == [IPV6_FRAME]));
        assert_eq!(fragment_frames(3000), [1514, 1514, 74]);
        assert_eq!(fragment_frames(2960), [1514, 1514]);
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert_eq!(capacity_for(10_000_000), 1 << 24);
        assert_eq!(capacity_for(1_000), 65_536);
        // The whole run fits the 10 minutes with room to spare.
        let budget: f64 =
            v.iter().map(|s| s.warmup + s.duration + s.half_load + s.flows as f64 / 1e6 + 6.0).sum();
        assert!(budget < 400.0, "{budget}");
    }

    #[test]
    fn the_syn_flood_scenario_is_apart_and_reaches_the_cap() {
        let x = extra();
        assert!(x.iter().all(|s| s.syn_flood > 0.0 && s.rate > 0.0 && s.proto == "tcp"));
        assert!(full().iter().all(|s| s.syn_flood == 0.0 && x.iter().all(|e| e.id != s.id)));
        // The paced flood alone offers more SYNs than the half-open cap (50 %).
        let s = &x[0];
        assert!(s.paced_flood * s.flood_rate > s.sessions as f64 / 2.0);
    }

    #[test]
    fn configs_are_rewritten_for_the_run() {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
        let ep = Endpoints {
            outside_sock: "/run/gwbench.x/o.sock".into(),
            inside_sock: "/run/gwbench.x/i.sock".into(),
            control_sock: "/run/gwbench.x/c.sock".into(),
        };
        for s in full().iter().chain(extra().iter()).filter(|s| s.dut != Dut::Testpmd) {
            let text = gatewayd_config(&conf, s, &ep, "gwbench-x-gw").unwrap();
            let c = dataplane::config::Config::parse(&text, Path::new("x.toml")).unwrap();
            assert_eq!(c.workers.cores.len() as u32, s.workers());
            assert_eq!(c.workers.sessions, s.sessions);
            assert!(c.workers.record_burst_cycles, "{}", s.id);
            // For a build from before the setting: the same config without it.
            let older = without_burst_cycles(&text).unwrap();
            assert!(!older.contains("record_burst_cycles"), "{older}");
            let c2 = dataplane::config::Config::parse(&older, Path::new("x.toml")).unwrap();
            assert!(!c2.workers.record_burst_cycles);
            assert_eq!((c2.workers.sessions, c2.ports.len()), (c.workers.sessions, c.ports.len()));
            assert!(c.ports[0].device.contains("socket=/run/gwbench.x/o.sock,"), "{}", c.ports[0].device);
            assert!(c.eal.args.contains(&"gwbench-x-gw".to_string()));
            assert_eq!(c.control.socket, Path::new("/run/gwbench.x/c.sock"));
            // SYNPROXY on the TCP service of the issue-16 flood only.
            assert_eq!(text.contains("-A -t 198.18.0.100:80 -s rr -j enable"), s.synproxy, "{}", s.id);
        }
    }
}
