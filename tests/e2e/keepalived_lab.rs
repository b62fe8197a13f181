//! gatewayd started with a keepalived.conf (`[control] keepalived`) on the
//! DR lab (tests/lab/lab.sh up gwe-ka dr): the file's VRRP instance is
//! skipped with a notice, its two DR virtual servers (TCP and UDP on
//! VIP:80) serve real curl requests and UDP flows, and an edited file
//! applied with SIGHUP changes only what differs: a download in flight
//! across the reload completes intact, and the statistics of the servers
//! that stay are kept.
//!
//! The checkers run (gatewayd's health checks) and always succeed: this lab
//! has no kernel interface for TCP or HTTP checks to reach the real servers,
//! whose daemons bind only the VIP; tests/e2e/health_lab.rs checks real
//! daemons through the exception path.
//!
//! A second test runs the FULLNAT lab dual-stack from an IPv6 keepalived.conf
//! (an FNAT66 virtual server, IPv6 real servers, an IPv6 local address
//! group; `alpha` TCP_CHECK and HTTP_GET over IPv6 from a kernel interface
//! on the inside port must bring the servers up): real `curl -6` requests, `gwctl -L -c -n` listing the IPv6
//! connections, and `/metrics` labelling the IPv6 service and servers as
//! node_exporter does.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A DR director's keepalived.conf for the lab; `{w2}` is rs2's weight,
/// `{udp}` the UDP virtual server (or nothing).
fn keepalived_conf(w2: u32, udp: bool) -> String {
    let udp = if udp {
        "virtual_server 198.18.0.100 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol UDP\n    \
         real_server 198.18.0.3 80 { }\n    real_server 198.18.0.4 80 { }\n}\n"
    } else {
        ""
    };
    format!(
        r#"! keepalived.conf of the DR lab
global_defs {{
    router_id gwe-ka
}}

vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {{
        198.18.0.100/24 dev eth0
    }}
}}

virtual_server 198.18.0.100 80 {{
    delay_loop 3
    lb_algo rr
    lb_kind DR
    protocol TCP

    real_server 198.18.0.3 80 {{
        weight 1
        MISC_CHECK {{
            misc_path /bin/true
        }}
    }}
    real_server 198.18.0.4 80 {{
        weight {w2}
        MISC_CHECK {{
            misc_path "/bin/sh -c 'exit 0'"
            misc_timeout 2
        }}
    }}
}}
{udp}"#
    )
}

/// Waits (bounded) until gatewayd's log holds `what` `n` times.
fn wait_log(lab: &Lab, what: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab.log_text().matches(what).count() < n {
        assert!(Instant::now() < deadline, "no {what:?} in gatewayd's log:\n{}", lab.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_keepalived_conf_drives_the_dr_lab_and_a_sighup_applies_only_the_difference() {
    let file = std::env::temp_dir().join("gwe-ka.keepalived.conf");
    std::fs::write(&file, keepalived_conf(1, true)).unwrap();
    let path = file.to_str().unwrap().to_owned();
    // conf/lab-dr.toml ends with its [control] section.
    let lab = Lab::up_tweaked(&DR, "ka", |c| format!("{c}keepalived = {path:?}\n"));
    let log = lab.log_text();
    assert_eq!(log.matches("vrrp_instance: not run by gatewayd - skipped").count(), 1, "{log}");
    assert!(log.contains(&format!("({path}: Line 6) vrrp_instance")), "the notice names the line: {log}");
    // keepalived's own configuration test of the same file: beside its
    // remarks on the VRRP instance (they depend on this host's interfaces)
    // it says only that the checks' scripts run as root without script
    // security; gatewayd warns the same.
    let violation = "SECURITY VIOLATION - check scripts are being executed but script_security not enabled.";
    let out = Command::new("keepalived").arg("--config-test").arg("--use-file").arg(&file).output().unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    let rest: Vec<&str> =
        report.lines().filter(|l| !l.contains("vrrp_instance") && !l.contains("interface")).collect();
    assert_eq!(rest, [violation], "keepalived's report:\n{report}");
    assert!(log.contains(violation), "{log}");

    let listing = lab.listing();
    for proto in ["TCP", "UDP"] {
        assert!(listing.contains(&format!("{proto}  {VIP}:{VPORT} rr\n")), "{listing}");
    }
    for (_, rip) in DR.servers {
        assert!(listing.contains(&DR.dest_line(rip, 1)), "{listing}");
    }
    let mut by_server = [0; 2];
    for _ in 0..6 {
        let h = lab.http();
        assert_eq!(h.remote, format!("{VIP}:{VPORT}"));
        assert_eq!(h.peer, h.local, "DR: the real server sees the client itself");
        by_server[DR.server_index(&h.server)] += 1;
    }
    assert_eq!(by_server, [3, 3], "rr over both real servers");
    let flows = lab.udp_flows(4);
    assert!(flows.iter().all(|u| u.from == format!("{VIP}:80")), "{flows:?}");

    // A download in flight across the reload (curl reads slowly).
    let body = std::env::temp_dir().join("gwe-ka-slow.bin");
    let _ = std::fs::remove_file(&body);
    let n = 1_000_000;
    let mut curl = Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "curl", "-s", "-S", "-m", "60", "--limit-rate", "200k"])
        .args(["-D", "-", "-o", body.to_str().unwrap(), &format!("http://{VIP}:{VPORT}/bytes/{n}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&body).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = lab.stats();

    // Edited: rs2's weight 1 -> 0 (quiesced), the UDP service gone.
    std::fs::write(&file, keepalived_conf(0, false)).unwrap();
    lab.sighup();
    wait_log(&lab, "reloaded", 1);
    assert!(curl.try_wait().unwrap().is_none(), "the download must still be running across the reload");
    let listing = lab.listing();
    let saved = lab.gwctl_ok(&["-S", "-n"]);
    assert!(!listing.contains("UDP"), "{listing}");
    assert!(listing.contains(&DR.dest_line(DR.servers[0].1, 1)), "{listing}");
    assert!(listing.contains(&DR.dest_line(DR.servers[1].1, 0)), "{listing}");
    let after = lab.stats();
    for (_, rip) in DR.servers {
        let rs = DR.rs_listed(rip);
        assert_eq!(
            after.dest("TCP", &rs).conns,
            before.dest("TCP", &rs).conns,
            "{rs} kept its statistics (not deleted and added again)"
        );
    }
    let o = curl.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the download failed across the reload: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let headers = String::from_utf8_lossy(&o.stdout).into_owned();
    let announced = headers.lines().find_map(|l| l.strip_prefix("X-Sha256:")).unwrap().trim().to_owned();
    let sum = text(&run(Command::new("sha256sum").arg(&body)));
    assert_eq!(sum.split_whitespace().next(), Some(announced.as_str()), "the download arrived intact");
    assert_eq!(std::fs::metadata(&body).unwrap().len(), n);
    let _ = std::fs::remove_file(&body);
    for _ in 0..4 {
        assert_eq!(lab.http().server, "rs1", "a quiesced server gets no new connections");
    }

    // A broken edit is refused with its line; the running services stay.
    std::fs::write(&file, keepalived_conf(0, false).replace("lb_algo rr", "lb_algo nope")).unwrap();
    lab.sighup();
    wait_log(&lab, "reload failed; the running configuration is kept", 1);
    assert!(
        lab.log_text().contains(&format!("({path}: Line 18) Invalid lvs_scheduler 'nope'")),
        "{}",
        lab.log_text()
    );
    assert_eq!(lab.gwctl_ok(&["-S", "-n"]), saved, "the refused reload changed nothing");

    // keepalived takes weights beyond ipvsadm's 65535 (up to INT32_MAX):
    // rs2 at 100000 under wrr takes every new connection before rs1's one.
    std::fs::write(&file, keepalived_conf(100_000, false).replace("lb_algo rr", "lb_algo wrr")).unwrap();
    lab.sighup();
    wait_log(&lab, "reloaded", 2);
    let listing = lab.listing();
    assert!(listing.contains(&format!("TCP  {VIP}:{VPORT} wrr\n")), "{listing}");
    assert!(listing.contains(&DR.dest_line(DR.servers[1].1, 100_000)), "{listing}");
    for _ in 0..4 {
        assert_eq!(lab.http().server, "rs2", "wrr: the heavier server first");
    }
    let _ = std::fs::remove_file(&file);
}

/// FNAT66 from keepalived.conf, on the FULLNAT lab dual-stack.
const KEEPALIVED6: &str = "\
local_address_group l6 {
    2001:db8:1::10 gw1
}
virtual_server 2001:db8::100 80 {
    delay_loop 3
    lb_algo rr
    lvs_method FNAT
    protocol TCP
    laddr_group_name l6
    real_server 2001:db8:1::2 80 {
        alpha
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 2001:db8:1::3 80 {
        alpha
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 2
        }
    }
}
";

/// gatewayd's metrics listener inside the lab's gateway namespace.
const METRICS6: &str = "127.0.0.1:9127";

#[test]
fn an_ipv6_keepalived_conf_serves_curl_6_and_lists_its_connections_and_metrics() {
    let file = std::env::temp_dir().join("gwe-h17g-ka6.keepalived.conf");
    std::fs::write(&file, KEEPALIVED6).unwrap();
    let path = file.to_str().unwrap().to_owned();
    // conf/lab-fullnat.toml ends with its [control] section.
    // A kernel interface on the inside port: the checks leave from its
    // IPv6 address 2001:db8:1::1 through the DPDK port.
    let lab = Lab::up_tweaked(&FULLNAT6, "h17g-ka6", |c| {
        let c = c.replace("name = \"inside\"", "name = \"inside\"\nkernel = \"gwk-ka6\"");
        format!("{c}keepalived = {path:?}\n\n[metrics]\nlisten = \"{METRICS6}\"\n")
    });
    // `alpha`: both servers start down and enter the pool only when their
    // check (TCP_CHECK, HTTP_GET over IPv6 from 2001:db8:1::1) succeeds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = lab.gwctl_ok(&["-L", "-n", "--health"]);
        let up = |rs: &str| {
            health.lines().any(|l| l.starts_with(&format!("  -> [{rs}]:80 ")) && l.ends_with(" UP"))
        };
        if up("2001:db8:1::2") && up("2001:db8:1::3") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the IPv6 checks did not bring the servers up:\n{health}\n{}",
            lab.diag()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let listing = lab.listing();
    assert!(listing.contains("TCP  [2001:db8::100]:80 rr\n"), "{listing}");
    for (_, rip) in FULLNAT6.servers {
        assert!(listing.contains(&FULLNAT6.dest_line(rip, 1)), "{listing}");
    }
    let laddrs = lab.gwctl_ok(&["--get-laddr", "-t", "[2001:db8::100]:80"]);
    assert!(laddrs.contains("2001:db8:1::10\n"), "{laddrs}");
    let mut by_server = [0; 2];
    for _ in 0..4 {
        let h = lab.http();
        assert_eq!(h.remote, format!("{VIP6}:80"), "{h:?}");
        assert!(h.peer.starts_with("2001:db8:1::10:"), "the real server saw {} instead of the LIP", h.peer);
        by_server[FULLNAT6.server_index(&h.server)] += 1;
    }
    assert_eq!(by_server, [2, 2], "rr over both real servers");

    // The four connections are closing (TIME_WAIT is 10 s in this lab): listed
    // with their IPv6 client, VIP, local address and real server.
    let conns = lab.gwctl_ok(&["-L", "-c", "-n"]);
    let lines: Vec<&str> = conns.lines().skip(2).collect();
    assert_eq!(lines.len(), 4, "{conns}");
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f[0], "TCP", "{l}");
        assert!(["TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "FIN_WAIT"].contains(&f[2]), "{l}");
        assert!(f[3].starts_with("[2001:db8::2]:"), "{l}");
        assert_eq!(f[4], "[2001:db8::100]:80", "{l}");
        assert!(f[5].starts_with("[2001:db8:1::10]:"), "{l}");
        assert!(f[6] == "[2001:db8:1::2]:80" || f[6] == "[2001:db8:1::3]:80", "{l}");
    }

    // node_exporter's labels for the IPv6 service and its servers.
    let o = lab.exec("gw", &["curl", "-s", "-S", "-m", "5", &format!("http://{METRICS6}/metrics")]);
    assert!(o.status.success(), "scraping /metrics failed: {}", String::from_utf8_lossy(&o.stderr));
    let body = text(&o);
    let svc = r#"{local_address="2001:db8::100",local_port="80",proto="TCP"}"#;
    assert!(body.contains(&format!("gatewayd_service_connections_total{svc} 4\n")), "{body}");
    for rip in ["2001:db8:1::2", "2001:db8:1::3"] {
        let labels = format!(
            r#"{{local_address="2001:db8::100",local_port="80",remote_address="{rip}",remote_port="80",proto="TCP",local_mark=""}}"#
        );
        assert!(body.contains(&format!("node_ipvs_backend_weight{labels} 1\n")), "{labels}\n{body}");
    }
    let _ = std::fs::remove_file(&file);
}
