//! Path MTU discovery through DR and TUN (issue 11): the real servers'
//! replies bypass the gateway and cross a real Linux router whose link
//! toward the client has MTU 1400. A full-size reply (1500 bytes, DF) makes
//! the router send ICMP "fragmentation needed" (next-hop MTU 1400) to the
//! reply's source, the VIP, so it reaches the gateway. As IPVS does
//! (`ip_vs_in_icmp` -> `ip_vs_icmp_xmit` -> the connection's transmit), the
//! gateway forwards it to the session's real server: DR with only the MACs
//! changed, TUN wrapped in IP-in-IP (decapsulated on the real server by
//! tests/lab/ipip_decap.py, as this kernel has no ipip module). The real
//! server's kernel (ip_no_pmtu_disc=0, the default) lowers its path MTU to
//! the client to 1400 and TCP resends smaller segments: a 1 MB download
//! arrives intact (SHA-256 compared).
//!
//! - DR: tests/lab/lab.sh dr-routed (the client behind the router, the
//!   real servers' default route via the router).
//! - TUN: the TUN lab, with the router's client-side link (r0) set to 1400.

mod common;

use common::{Lab, CLIENT, DR_ROUTED, TUN};

/// The download's size.
const MB: usize = 1 << 20;

/// The client of the dr-routed lab (behind the router).
const ROUTED_CLIENT: &str = "198.18.4.2";

/// The route the real server `rs` uses toward `client`, with its cached
/// path MTU if it learnt one.
fn rs_route(lab: &Lab, rs: &str, client: &str) -> String {
    common::text(&lab.exec(rs, &["ip", "route", "get", client]))
}

/// The real servers honor PMTU (Linux's default), and have learnt nothing yet.
fn check_rs_before(lab: &Lab, client: &str) {
    for (rs, _) in lab.topo.servers {
        let v = common::text(&lab.exec(rs, &["sysctl", "-n", "net.ipv4.ip_no_pmtu_disc"]));
        assert_eq!(v.trim(), "0", "{rs} must do path MTU discovery");
        let route = rs_route(lab, rs, client);
        assert!(!route.contains("mtu"), "{rs} already has a path MTU: {route}");
    }
}

/// A 1 MB download through the VIP arrives intact, and the real server that
/// sent it learnt MTU 1400 toward the client from the router's error that
/// the gateway forwarded.
fn download_through_the_narrow_link(lab: &Lab, client: &str) {
    lab.add_service("-t");
    check_rs_before(lab, client);
    let d = lab.download(MB, "20");
    assert_eq!(d.size, MB, "the whole megabyte arrived: {d:?}");
    assert_eq!(d.received, d.announced, "the bytes arrived intact: {d:?}");
    // The router's "fragmentation needed" reached the real server: its
    // kernel caches the path MTU toward the client.
    let route = rs_route(lab, &d.server, client);
    assert!(route.contains("mtu 1400"), "{} has no path MTU 1400 toward {client}: {route}", d.server);
    let icmp_in = lab.snmp(&d.server, "Icmp", "InDestUnreachs");
    assert!(icmp_in >= 1, "{} received no destination unreachable", d.server);
    assert!(lab.counter("icmp_errors_forwarded") >= 1, "the gateway forwarded no ICMP error");
    assert_eq!(lab.counter("drop_icmp_unknown_flow"), 0);
    assert_eq!(lab.counter("fwd_out_packets"), 0, "replies bypass the gateway");
    // A second download needs no more errors: the real server remembers.
    let before = lab.counter("icmp_errors_forwarded");
    let again = lab.download(MB, "20");
    assert_eq!((again.size, &again.received), (MB, &again.announced), "{again:?}");
    if again.server == d.server {
        assert_eq!(lab.counter("icmp_errors_forwarded"), before, "{} forgot its path MTU", d.server);
    }
}

#[test]
fn dr_download_through_a_narrower_router_link_completes_by_path_mtu_discovery() {
    let lab = Lab::up(&DR_ROUTED, "pm-dr");
    let mtu = common::text(&lab.exec("router", &["cat", "/sys/class/net/rc/mtu"]));
    assert_eq!(mtu.trim(), "1400", "the router's link toward the client");
    download_through_the_narrow_link(&lab, ROUTED_CLIENT);
}

#[test]
fn tun_download_through_a_narrower_router_link_completes_by_path_mtu_discovery() {
    let lab = Lab::up(&TUN, "pm-tun");
    let o = lab.exec("router", &["ip", "link", "set", "r0", "mtu", "1400"]);
    assert!(o.status.success(), "setting the router's MTU: {o:?}");
    download_through_the_narrow_link(&lab, CLIENT);
    // The errors went through the tunnel: a decapsulation helper took them.
    let decapsulated: Vec<String> = TUN
        .servers
        .iter()
        .map(|(rs, _)| {
            std::fs::read_to_string(std::env::temp_dir().join(format!("{}-{rs}-ipip.log", lab.prefix)))
                .unwrap_or_default()
        })
        .collect();
    assert!(decapsulated.iter().any(|l| !l.is_empty()), "no IP-in-IP reached the real servers");
}
