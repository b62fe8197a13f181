//! NAT66 end to end (LVS-NAT for IPv6, `gwctl -m`, issue 17): the NAT lab
//! dual-stack (tests/lab/lab.sh up PREFIX nat dual): the real servers'
//! IPv6 default route is the gateway's inside address 2001:db8:1::1, they
//! listen on 8080 while the VIP port is 80 and see the client's own IPv6
//! address and port; the client sees only [2001:db8::100]:80. A capture on
//! a real server read by scapy checks the packets' checksums and the hop
//! limit decremented once; a 50 MB download keeps its SHA-256.

mod common;

use common::{Lab, CLIENT6, NAT6, VIP6};

#[test]
fn nat66_maps_vip_port_80_to_8080_and_real_servers_see_the_ipv6_client() {
    let lab = Lab::up(&NAT6, "h17l-nat6");
    let cap = lab.capture("rs1", "eth0", 8080, 4, 10);
    lab.check_services_and_client_seen();
    let seen = cap.packets();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for p in &seen {
        assert_eq!((p.get("ip"), p.get("src"), p.get("dst")), ("6", CLIENT6, "2001:db8:1::2"), "{p:?}");
        assert_eq!((p.get("csum"), p.get("len"), p.get("hlim")), ("ok", "ok", "63"), "{p:?}");
    }

    let flows = lab.udp_flows(6);
    for u in &flows {
        assert_eq!(
            u.from,
            format!("{VIP6}:80"),
            "the UDP answer must come from VIP:80 (8080 mapped back): {u:?}"
        );
        assert_eq!(u.peer, u.local, "the UDP server saw {} instead of the client {}", u.peer, u.local);
    }
    assert_eq!(flows.iter().filter(|u| u.server == "rs1").count(), 3, "{flows:?}");

    let stats = lab.stats();
    let (tcp, udp) = (stats.service("TCP"), stats.service("UDP"));
    assert_eq!((tcp.conns, udp.conns), (6, 6), "{}", stats.text);
    assert_eq!((udp.inpkts, udp.outpkts), (6, 6), "{}", stats.text);
    assert!(tcp.inpkts >= 6 * 4 && tcp.outpkts >= 6 * 3, "{}", stats.text);
    assert_eq!(lab.counter("fwd_in_packets"), tcp.inpkts + udp.inpkts);
    assert_eq!(lab.counter("fwd_out_packets"), tcp.outpkts + udp.outpkts);

    let d = lab.download(50 << 20, "120");
    assert_eq!((d.size, &d.received), (50 << 20, &d.announced), "{d:?}");
}
