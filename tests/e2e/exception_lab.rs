//! The exception path (issue 15) with real daemons: the FULLNAT lab with a
//! kernel interface on both ports (`kernel = "gwk-out"` / `"gwk-in"`), so
//! the gateway namespace's kernel shares the DPDK ports' addresses.
//!
//! - a plain TCP service (Python's `http.server`) on the gateway's inside
//!   address 198.18.1.1, reached with curl from the real server rs1;
//! - `ping` from the gateway's kernel to rs1 (the kernel resolves rs1's MAC
//!   through the port: its ARP request goes out, the reply is learnt by the
//!   dataplane and handed to the kernel);
//! - BIRD 2 in the gateway namespace announcing the VIP over BGP to BIRD in
//!   the client namespace (the upstream router's role, 198.18.0.2): the
//!   session runs over the outside DPDK port, and the VIP's route lands in
//!   the router's kernel table; the FULLNAT service keeps working meanwhile;
//! - with two workers, a 2 MiB download from the gateway's kernel arrives
//!   whole;
//! - a SYN flood to the gateway's own address (all for the kernel) while
//!   HTTP requests go through the VIP: every request succeeds, every flood
//!   frame is handed on or counted (`kernel_punted`, `drop_kernel_full`, or
//!   the port's `imissed`), and the kernel thread's counts equal the
//!   workers'.
//!
//! What is asserted is what the peers saw (curl's answer, ping's replies,
//! the router's routing table, the kernel's neighbour entry) and the
//! exception path's counters, never a time.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The lab's gatewayd configuration with a kernel interface on each port.
fn with_kernel(conf: String) -> String {
    conf.replace("name = \"outside\"", "name = \"outside\"\nkernel = \"gwk-out\"")
        .replace("name = \"inside\"", "name = \"inside\"\nkernel = \"gwk-in\"")
}

/// Waits until `f` holds (checked every 200 ms), or panics with `what` and
/// the lab's diagnostics after `secs` seconds.
fn wait_for(lab: &Lab, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what}\n{}", lab.diag());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The MAC of `dev` in namespace `ns` (before the [`Lab`] exists).
fn mac_of(ns: &str, dev: &str) -> String {
    text(&run(Command::new("ip").args([
        "netns",
        "exec",
        ns,
        "cat",
        &format!("/sys/class/net/{dev}/address"),
    ])))
    .trim()
    .to_string()
}

#[test]
fn the_kernel_serves_tcp_and_pings_through_the_dpdk_ports() {
    // rs2 is a static neighbour of the inside port: the kernel gets it too.
    let lab = Lab::up_tweaked(&FULLNAT, "exc-host", |c| {
        let mac = mac_of("gwe-exc-host-rs2", "eth0");
        with_kernel(c)
            + &format!("\n[[neighbour]]\naddress = \"198.18.1.3\"\nmac = \"{mac}\"\nport = \"inside\"\n")
    });
    // The kernel interfaces carry the ports' addresses and MACs.
    let addrs = text(&lab.exec("gw", &["ip", "-4", "-o", "addr", "show"]));
    assert!(addrs.contains("gwk-out") && addrs.contains("198.18.0.1/24"), "{addrs}");
    assert!(addrs.contains("gwk-in") && addrs.contains("198.18.1.1/24"), "{addrs}");
    // A plain TCP service on the gateway's inside address.
    let _http = lab.spawn_quiet("gw", &["python3", "-m", "http.server", "--bind", "198.18.1.1", "8022"]);
    let (_, rip) = FULLNAT.servers[0];
    let mut body = String::new();
    wait_for(&lab, 20, "the gateway's TCP service did not answer rs1", || {
        let o = lab.exec("rs1", &["curl", "-s", "-m", "2", "http://198.18.1.1:8022/"]);
        body = text(&o);
        o.status.success()
    });
    assert!(body.contains("Directory listing"), "http.server's answer: {body}");
    // The kernel pings a real server through the inside port.
    let o = lab.exec("gw", &["ping", "-c", "3", "-i", "0.2", "-W", "2", rip]);
    assert!(o.status.success(), "ping from the gateway's kernel: {}{}", text(&o), lab.diag());
    assert!(text(&o).contains("3 received"), "{}", text(&o));
    // It learnt rs1's MAC from the reply to its own ARP request.
    let rs_mac = lab.mac("rs1", "eth0");
    assert_eq!(
        lab.neigh("gw", rip).as_deref(),
        Some(rs_mac.as_str()),
        "the kernel's neighbour entry for {rip}"
    );
    // The static neighbour is a permanent entry in the kernel, and reached.
    let entry = text(&lab.exec("gw", &["ip", "neigh", "show", "198.18.1.3"]));
    assert!(entry.contains(&lab.mac("rs2", "eth0")) && entry.contains("PERMANENT"), "{entry}");
    let o = lab.exec("gw", &["ping", "-c", "1", "-W", "2", "198.18.1.3"]);
    assert!(o.status.success(), "ping rs2 from the gateway's kernel: {}", text(&o));
    // The inside kernel interface has the inside port's MAC: rs1 sees one
    // gateway.
    assert_eq!(lab.mac("gw", "gwk-in"), lab.mac("gw", "gw1"));
    assert!(lab.counter("kernel_punted") >= 6, "{}", lab.diag());
    assert!(lab.counter("kernel_sent") >= 6, "{}", lab.diag());
    assert_eq!(lab.counter("drop_kernel_full"), 0);
    // The TAP's own column in the port statistics.
    assert!(lab.port_stat("gwk-in", "to_kernel") >= 6, "{}", lab.diag());
    assert!(lab.port_stat("gwk-in", "from_kernel") >= 6, "{}", lab.diag());
    // A VIP keeps the dataplane's fail-fast answer (curl: connection refused).
    let o = lab.exec("client", &["curl", "-s", "-m", "5", &format!("http://{VIP}:8022/")]);
    assert_eq!(o.status.code(), Some(7), "refused by the dataplane, not the kernel");
}

/// A BIRD 2 configuration file for namespace `n` of the lab.
fn bird_conf(lab: &Lab, n: &str, text: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir();
    let conf = dir.join(format!("{}-bird-{n}.conf", lab.prefix));
    let sock = dir.join(format!("{}-bird-{n}.ctl", lab.prefix));
    std::fs::write(&conf, text).unwrap();
    (conf, sock)
}

#[test]
fn bird_on_the_gateway_announces_the_vip_over_bgp_through_the_dpdk_port() {
    let lab = Lab::up_tweaked(&FULLNAT, "exc-bgp", with_kernel);
    lab.add_service("-t");
    let (gw_conf, gw_sock) = bird_conf(
        &lab,
        "gw",
        r#"
router id 198.18.0.1;
protocol device {}
protocol static vips {
    ipv4;
    route 198.18.0.100/32 blackhole;
}
protocol bgp upstream {
    local 198.18.0.1 as 65001;
    neighbor 198.18.0.2 as 65000;
    connect retry time 1;
    ipv4 { import none; export where proto = "vips"; };
}
"#,
    );
    let (r_conf, r_sock) = bird_conf(
        &lab,
        "client",
        r#"
router id 198.18.0.2;
protocol device {}
protocol kernel {
    ipv4 { export all; };
}
protocol bgp lb {
    local 198.18.0.2 as 65000;
    neighbor 198.18.0.1 as 65001;
    connect retry time 1;
    ipv4 { import all; export none; };
}
"#,
    );
    let bird = |n: &str, conf: &PathBuf, sock: &PathBuf| {
        let o = lab.exec(n, &["bird", "-p", "-c", conf.to_str().unwrap()]);
        assert!(o.status.success(), "bird -p {}: {}", conf.display(), String::from_utf8_lossy(&o.stderr));
        lab.spawn_quiet(n, &["bird", "-f", "-c", conf.to_str().unwrap(), "-s", sock.to_str().unwrap()])
    };
    let _gw_bird = bird("gw", &gw_conf, &gw_sock);
    let _router_bird = bird("client", &r_conf, &r_sock);
    let mut route = String::new();
    wait_for(&lab, 60, "the VIP's route never reached the router's kernel", || {
        route = text(&lab.exec("client", &["ip", "route", "show", "198.18.0.100/32", "proto", "bird"]));
        route.contains("via 198.18.0.1")
    });
    eprintln!("router's route: {}", route.trim());
    let birdc =
        text(&lab.exec("client", &["birdc", "-s", r_sock.to_str().unwrap(), "show", "protocols", "lb"]));
    assert!(birdc.contains("Established"), "{birdc}");
    // The session ran through the dataplane's outside port.
    assert!(lab.port_stat("gwk-out", "to_kernel") > 0, "{}", lab.diag());
    assert!(lab.port_stat("gwk-out", "from_kernel") > 0, "{}", lab.diag());
    // The service works over the announced route.
    let h = lab.http();
    assert!(h.server.starts_with("rs"), "{h:?}");
    assert!(h.peer.starts_with(FULLNAT.laddr.unwrap()), "{h:?}");
    for p in [gw_conf, gw_sock, r_conf, r_sock] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn with_two_workers_a_download_from_the_gateways_kernel_arrives_whole() {
    let lab = Lab::up_tweaked(&FULLNAT_2W, "exc-2w", with_kernel);
    lab.add_service("-t");
    // 2 MiB of random bytes served by the gateway's kernel on its inside
    // address: the segments and ACKs spread over both workers' queues.
    let dir = std::env::temp_dir().join(format!("{}-www", lab.prefix));
    std::fs::create_dir_all(&dir).unwrap();
    let blob: Vec<u8> = (0..2u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.join("blob"), &blob).unwrap();
    let want = text(&run(Command::new("sha256sum").arg(dir.join("blob"))));
    let want = want.split_whitespace().next().unwrap().to_string();
    let _http = lab.spawn_quiet(
        "gw",
        &[
            "python3",
            "-m",
            "http.server",
            "--bind",
            "198.18.1.1",
            "--directory",
            dir.to_str().unwrap(),
            "8022",
        ],
    );
    wait_for(&lab, 20, "the gateway's TCP service did not answer rs2", || {
        lab.exec("rs2", &["curl", "-s", "-m", "2", "-o", "/dev/null", "http://198.18.1.1:8022/"])
            .status
            .success()
    });
    for _ in 0..3 {
        let o = lab.exec("rs2", &["sh", "-c", "curl -s -m 20 http://198.18.1.1:8022/blob | sha256sum"]);
        let got = text(&o);
        assert_eq!(
            got.split_whitespace().next(),
            Some(want.as_str()),
            "the download's digest\n{}",
            lab.diag()
        );
    }
    // The FULLNAT service is unaffected meanwhile.
    for _ in 0..4 {
        let h = lab.http();
        assert!(h.peer.starts_with(FULLNAT.laddr.unwrap()), "{h:?}");
    }
    assert_eq!(lab.counter("drop_kernel_full"), 0, "{}", lab.diag());
    assert_eq!(lab.port_stat("gwk-in", "from_kernel_dropped"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flood_to_the_gateways_own_address_is_bounded_and_counted_while_the_service_runs() {
    let lab = Lab::up_tweaked(&FULLNAT, "exc-flood", with_kernel);
    lab.add_service("-t");
    // 20,000 SYNs from spoofed sources to the outside address's BGP port:
    // all for the kernel (no service there).
    let (mut flood, _out) = lab.spawn_python("client", "tcp_flood.py", &["198.18.0.1", "179", "20000", "S"]);
    let mut served = 0;
    while flood.try_wait().unwrap().is_none() {
        let h = lab.http();
        assert!(h.peer.starts_with(FULLNAT.laddr.unwrap()), "{h:?}");
        served += 1;
    }
    assert!(flood.wait().unwrap().success());
    for _ in 0..5 {
        lab.http();
        served += 1;
    }
    eprintln!("{served} requests served during and after the flood");
    // Every flood frame was handed on or dropped at a named counter (a SYN
    // shed by an overloaded worker, `drop_syn_shed`, or lost before a worker
    // saw it: the port's imissed, the af_packet ring full on a loaded
    // machine), and what the workers handed on, the kernel thread wrote or
    // counted.
    let punted = lab.counter("kernel_punted");
    let full = lab.counter("drop_kernel_full");
    let shed = lab.counter("drop_syn_shed");
    let missed = lab.port_stat("outside", "imissed");
    assert!(
        punted + full + shed + missed >= 20_000,
        "punted {punted} + full {full} + shed {shed} + missed {missed}\n{}",
        lab.diag()
    );
    wait_for(&lab, 10, "the kernel thread's counts never matched the workers'", || {
        let thread: u64 = ["gwk-out", "gwk-in"]
            .iter()
            .map(|t| lab.port_stat(t, "to_kernel") + lab.port_stat(t, "to_kernel_dropped"))
            .sum();
        thread == lab.counter("kernel_punted")
    });
    eprintln!(
        "kernel_punted {punted}, drop_kernel_full {full}, outside imissed {missed}, gwk-out to_kernel {} dropped {}",
        lab.port_stat("gwk-out", "to_kernel"),
        lab.port_stat("gwk-out", "to_kernel_dropped")
    );
}
