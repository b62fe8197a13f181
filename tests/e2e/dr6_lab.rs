//! DR for IPv6 end to end (`gwctl -g`, Forward `Route`, issue 17): the DR
//! segment dual-stack (tests/lab/lab.sh up PREFIX dr dual). The real servers
//! hold 2001:db8::100 on `lo`; Linux answers neighbour solicitations only for
//! addresses of the receiving interface, so only gatewayd answers for the
//! VIP. The gateway changes only the destination MAC: a capture on a real
//! server read by scapy shows the client's packet untouched (hop limit 64,
//! checksums valid); the real servers answer the client directly, so
//! OutPkts and `fwd_out_packets` stay 0.

mod common;

use common::{Lab, CLIENT6, DR6, VIP6};

#[test]
fn dr6_real_servers_see_the_client_and_answer_it_directly() {
    let lab = Lab::up(&DR6, "h17l-dr6");
    let cap = lab.capture("rs1", "eth0", 80, 4, 10);
    lab.check_services_and_client_seen();
    let seen = cap.packets();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for p in &seen {
        assert_eq!((p.get("ip"), p.get("src"), p.get("dst")), ("6", CLIENT6, VIP6), "{p:?}");
        assert_eq!((p.get("csum"), p.get("len"), p.get("hlim")), ("ok", "ok", "64"), "{p:?}");
    }
    // Only the gateway answered the solicitation for the VIP.
    let neigh = common::text(&lab.exec("client", &["ip", "-6", "neigh", "show", VIP6]));
    assert!(neigh.contains(&lab.mac("gw", "gw0")), "the VIP must resolve to the gateway: {neigh}");

    let flows = lab.udp_flows(6);
    for u in &flows {
        assert_eq!(u.from, format!("{VIP6}:80"), "the UDP answer must come from the VIP: {u:?}");
        assert_eq!(u.peer, u.local, "the UDP server saw {} instead of the client {}", u.peer, u.local);
    }
    assert_eq!(flows.iter().filter(|u| u.server == "rs1").count(), 3, "{flows:?}");
    lab.check_one_way_counters();

    let d = lab.download(50 << 20, "120");
    assert_eq!((d.size, &d.received), (50 << 20, &d.announced), "{d:?}");
}
