//! TUN for IPv6 end to end (IPv6-in-IPv6, `gwctl -i`, Forward `Tunnel`,
//! issue 17): the TUN lab dual-stack (tests/lab/lab.sh up PREFIX tun dual).
//! gatewayd reaches the real servers in 2001:db8:2::/64 through its IPv6
//! route via the router and wraps each client packet in an outer IPv6
//! header (next header 41) from its inside address 2001:db8:1::1. The lab's
//! kernel has no ip6_tunnel module: tests/lab/ipip_decap.py on each real
//! server takes the IPv6-in-IPv6 packets from a raw socket and hands the
//! inner packet to the TUN device that holds the VIP (as ip6tnl0 would). A
//! capture on a real server read by scapy shows the outer header and the
//! client's inner packet untouched; the real servers answer from the VIP
//! through the router straight to the client.

mod common;

use common::{Lab, CLIENT6, TUN6, VIP6};

fn decap_log(lab: &Lab, rs: &str) -> String {
    std::fs::read_to_string(std::env::temp_dir().join(format!("{}-{rs}-ipip.log", lab.prefix)))
        .unwrap_or_default()
}

#[test]
fn tun6_real_servers_see_the_client_and_answer_it_directly() {
    let lab = Lab::up(&TUN6, "h17l-tun6");
    let cap = lab.capture("rs1", "eth0", 80, 4, 10);
    lab.check_services_and_client_seen();
    let seen = cap.packets();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for p in &seen {
        assert_eq!(
            (p.get("outer"), p.get("outer_src"), p.get("outer_dst")),
            ("6", "2001:db8:1::1", "2001:db8:2::2")
        );
        // The router decremented the outer hop limit once on the way.
        assert_eq!(p.get("outer_hlim"), "63", "{p:?}");
        assert_eq!((p.get("ip"), p.get("src"), p.get("dst")), ("6", CLIENT6, VIP6), "{p:?}");
        assert_eq!((p.get("csum"), p.get("len"), p.get("hlim")), ("ok", "ok", "64"), "{p:?}");
    }

    let flows = lab.udp_flows(6);
    for u in &flows {
        assert_eq!(u.from, format!("{VIP6}:80"), "the UDP answer must come from the VIP: {u:?}");
        assert_eq!(u.peer, u.local, "the UDP server saw {} instead of the client {}", u.peer, u.local);
    }
    assert_eq!(flows.iter().filter(|u| u.server == "rs1").count(), 3, "{flows:?}");
    for (rs, _) in TUN6.servers {
        assert!(decap_log(&lab, rs).contains("ip6ip6_decap: 1 packets"), "{rs} decapsulated nothing");
    }
    lab.check_one_way_counters();

    let d = lab.download(50 << 20, "120");
    assert_eq!((d.size, &d.received), (50 << 20, &d.announced), "{d:?}");
}
