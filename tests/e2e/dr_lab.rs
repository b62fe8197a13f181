//! End-to-end DR lab (direct routing, `gwctl -g`, Forward `Route`): the
//! client, gatewayd's single port and both real servers share one bridged
//! segment (tests/lab/lab.sh up PREFIX dr). The real servers hold the VIP on
//! `lo` and ignore ARP for it; the gateway only rewrites the destination MAC,
//! and the real servers answer the client directly. Proof that replies
//! bypass the gateway: OutPkts stays 0 and the worker counter
//! `fwd_out_packets` stays 0 while the client gets every answer.

mod common;

use common::{Lab, DR, VIP};

#[test]
fn dr_real_servers_see_the_client_and_answer_it_directly() {
    let lab = Lab::up(&DR, "dr-both");
    lab.check_services_and_client_seen();
    // Only the gateway answered ARP for the VIP (the real servers hold it on
    // lo with arp_ignore=1).
    assert_eq!(lab.neigh("client", VIP), Some(lab.mac("gw", "gw0")), "the VIP must resolve to the gateway");

    let flows = lab.udp_flows(6);
    for u in &flows {
        assert_eq!(u.from, format!("{VIP}:80"), "the UDP answer must come from the VIP: {u:?}");
        assert_eq!(u.peer, u.local, "the UDP server saw {} instead of the client {}", u.peer, u.local);
    }
    assert_eq!(flows.iter().filter(|u| u.server == "rs1").count(), 3, "{flows:?}");

    lab.check_one_way_counters();
}

#[test]
fn dr_deleted_real_server_gets_no_new_connections() {
    let lab = Lab::up(&DR, "dr-del");
    lab.add_service("-t");
    let first: Vec<String> = (0..2).map(|_| lab.http().server).collect();
    assert!(first.contains(&"rs1".to_string()) && first.contains(&"rs2".to_string()), "{first:?}");
    lab.gwctl_ok(&["-d", "-t", &format!("{VIP}:80"), "-r", DR.servers[0].1]);
    for _ in 0..4 {
        assert_eq!(lab.http().server, "rs2");
    }
    assert!(!lab.listing().contains(DR.servers[0].1));
}
