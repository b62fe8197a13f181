//! Static neighbours in the FULLNAT lab: both real servers stop answering
//! ARP (`arp_ignore=8`, as a traffic generator that never answers it) and
//! never ask (a permanent entry for the gateway's local address), so gatewayd can reach them only through static neighbours:
//! rs2's from the configuration (`[[neighbour]]`), rs1's added at run time
//! with `gwctl --add-neighbour`. HTTP through the VIP then reaches both;
//! after `gwctl --del-neighbour` rs1 is unreachable again.
//!
//! Needs root, the Debian DPDK packages and built binaries (see fullnat_lab.rs).

mod common;

use common::{text, Lab, FULLNAT, VIP};

const RS2_MAC: &str = "02:00:00:00:01:03";
const LIP: &str = "198.18.1.10";

fn mac_of(lab: &Lab, ns: &str, dev: &str) -> String {
    let o = lab.exec(ns, &["cat", &format!("/sys/class/net/{dev}/address")]);
    text(&o).trim().to_string()
}

fn ok(lab: &Lab, ns: &str, args: &[&str]) {
    let o = lab.exec(ns, args);
    assert!(o.status.success(), "{args:?} in {ns}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn real_servers_that_never_answer_arp_are_reached_through_static_neighbours() {
    let lab = Lab::up_tweaked(&FULLNAT, "sn", |c| {
        format!("{c}\n[[neighbour]]\naddress = \"198.18.1.3\"\nmac = \"{RS2_MAC}\"\nport = \"inside\"\n")
    });
    let gw_mac = mac_of(&lab, "gw", "gw1");
    ok(&lab, "rs2", &["ip", "link", "set", "dev", "eth0", "address", RS2_MAC]);
    for rs in ["rs1", "rs2"] {
        // The servers know the gateway's local address without ARP (so they
        // never ask, which would teach gatewayd their MAC), and answer no ARP.
        ok(&lab, rs, &["ip", "neigh", "replace", LIP, "lladdr", &gw_mac, "dev", "eth0", "nud", "permanent"]);
        ok(&lab, rs, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=8"]);
        ok(&lab, rs, &["sysctl", "-qw", "net.ipv4.conf.eth0.arp_ignore=8"]);
    }
    let rs1_mac = mac_of(&lab, "rs1", "eth0");
    lab.gwctl_ok(&["--add-neighbour", "198.18.1.2", "--mac", &rs1_mac, "--port", "inside"]);
    let list = lab.gwctl_ok(&["--list-neighbours"]);
    assert_eq!(
        list,
        format!(
            "Address          HWaddress          Port\n\
             198.18.1.2       {rs1_mac:<18} inside\n\
             198.18.1.3       {RS2_MAC:<18} inside\n"
        )
    );
    // Refused: a duplicate, a port that does not exist.
    let dup = lab.gwctl(&["--add-neighbour", "198.18.1.3", "--mac", RS2_MAC, "--port", "inside"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already a static neighbour"));
    let bad = lab.gwctl(&["--add-neighbour", "198.18.1.9", "--mac", RS2_MAC, "--port", "nope"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no port named \"nope\""));

    lab.add_service("-t");
    let mut by_server = [0; 2];
    for _ in 0..4 {
        let h = lab.http();
        assert_eq!(h.remote, format!("{VIP}:80"));
        by_server[if h.server == "rs1" { 0 } else { 1 }] += 1;
    }
    assert_eq!(by_server, [2, 2], "both servers reached without ARP");
    assert_eq!(lab.counter("drop_neigh_unresolved"), 0);
    assert_eq!(lab.counter("arp_replies_learned"), 0, "nothing was learnt from the servers");

    // Without its static entry rs1 cannot be reached: of the next two
    // connections (rr: one per server) only rs2's succeeds.
    lab.gwctl_ok(&["--del-neighbour", "198.18.1.2", "--port", "inside"]);
    assert!(!lab.gwctl_ok(&["--list-neighbours"]).contains("198.18.1.2 "));
    let url = format!("http://{VIP}:80/");
    let answered: Vec<String> = (0..2)
        .filter_map(|_| {
            let o = lab.exec("client", &["curl", "-s", "-m", "3", &url]);
            o.status.success().then(|| text(&o))
        })
        .collect();
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert!(answered[0].starts_with("rs2 "), "{answered:?}");
}
