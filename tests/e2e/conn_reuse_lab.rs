//! A client that reuses its source port (busy NAT gateways and load
//! generators do): a new connection while the previous one's session is
//! still in TIME_WAIT or CLOSE is scheduled anew (IPVS's conn_reuse_mode=1),
//! also after `gwctl -C` and re-adding the service. FULLNAT lab, real
//! HTTP servers, a Python client bound to a fixed port.

mod common;

use common::*;

const SPORT: &str = "41000";

/// One GET from client port [`SPORT`]: the answering server's name.
fn get(lab: &Lab, client_first: bool) -> String {
    let mut args = vec![VIP, "80", SPORT];
    if client_first {
        args.push("client-first");
    }
    let out = lab.python("client", "reuse_port.py", &args);
    let name = out.split_whitespace().next().unwrap_or("").to_string();
    assert!(name.starts_with("rs"), "GET from port {SPORT} failed: {out}\n{}", lab.diag());
    name
}

/// (ActiveConn, InActConn) of real server `rip` in `gwctl -L -n`.
fn conns_of(lab: &Lab, rip: &str) -> (u64, u64) {
    let listing = lab.listing();
    let line = listing
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("-> {rip}:")))
        .unwrap_or_else(|| panic!("{rip} not listed:\n{listing}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    // "  -> RIP:PORT  FullNat  Weight ActiveConn InActConn"
    (f[4].parse().unwrap(), f[5].parse().unwrap())
}

/// The real-server address of server `name` ("rs1"/"rs2").
fn rip(name: &str) -> &'static str {
    FULLNAT.servers.iter().find(|(n, _)| *n == name).map(|(_, r)| *r).unwrap()
}

fn reuse(lab: &Lab, client_first: bool) {
    let first = get(lab, client_first);
    let second = get(lab, client_first);
    assert_ne!(first, second, "rr: a reused port is scheduled anew, not glued to {first}");
    assert_eq!(lab.counter("sessions_reused"), 1);
    // Right afterwards: the old connection is gone from its server's
    // counts, the new one (closed, in TIME_WAIT or CLOSE) is inactive.
    assert_eq!(conns_of(lab, rip(&first)), (0, 0), "{}", lab.listing());
    assert_eq!(conns_of(lab, rip(&second)), (0, 1), "{}", lab.listing());
}

#[test]
fn a_port_reused_after_the_client_closed_first_goes_to_the_next_server() {
    let lab = Lab::up(&FULLNAT, "reuse-cf");
    // The client's own TIME_WAIT: let it reuse the port (needs timestamps).
    lab.exec("client", &["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
    lab.add_service("-t");
    reuse(&lab, true);
}

#[test]
fn a_port_reused_after_the_server_closed_first_goes_to_the_next_server() {
    let lab = Lab::up(&FULLNAT, "reuse-sf");
    lab.add_service("-t");
    reuse(&lab, false);
}

#[test]
fn a_port_reused_after_clear_and_re_adding_the_service_is_answered() {
    let lab = Lab::up(&FULLNAT, "reuse-clr");
    lab.add_service("-t");
    get(&lab, false);
    lab.gwctl_ok(&["-C"]);
    lab.add_service("-t");
    // Before conn_reuse, this SYN met the dead session and got no answer
    // until it expired (TIME_WAIT: 10 s in the lab, 120 s by default).
    get(&lab, false);
    assert_eq!(lab.counter("sessions_reused"), 1);
    assert_eq!(lab.counter("drop_dest_unavailable"), 0);
}
