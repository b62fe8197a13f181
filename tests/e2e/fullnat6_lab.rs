//! FULLNAT66 end to end (issue 17): the FULLNAT lab dual-stack
//! (tests/lab/lab.sh up PREFIX fullnat dual), an IPv6 VIP 2001:db8::100
//! answered by gatewayd's neighbour discovery, IPv6 real servers
//! (tests/lab/rs_server.py on `::`) that see the IPv6 local address
//! 2001:db8:1::10, never the client. Real curl over IPv6, a UDP echo over
//! IPv6, a 50 MB download compared by SHA-256, and a capture on a real
//! server read by scapy (an IPv6 parser independent of gatewayd's): the
//! packets are well-formed, their checksums verify and the hop limit was
//! decremented by one (the gateway routes them).

mod common;

use common::{Lab, CLIENT6, FULLNAT6, VIP6};

const LIP6: &str = "2001:db8:1::10";

#[test]
fn fullnat66_tcp_and_udp_reach_both_real_servers_which_see_the_ipv6_local_address() {
    let lab = Lab::up(&FULLNAT6, "h17l-fn6");
    lab.add_service("-t");
    lab.add_service("-u");
    let listing = lab.listing();
    assert!(listing.contains("TCP  [2001:db8::100]:80 rr\n"), "{listing}");
    assert!(listing.contains("UDP  [2001:db8::100]:80 rr\n"), "{listing}");
    for (_, rip) in FULLNAT6.servers {
        let line = FULLNAT6.dest_line(rip, 1);
        assert!(listing.contains(&line), "no {line:?} in\n{listing}");
    }

    // The real server's side, read by scapy while two requests pass.
    let cap = lab.capture("rs1", "eth0", 80, 4, 10);
    let mut by_server = [0; 2];
    for _ in 0..6 {
        let h = lab.http();
        assert_eq!(h.remote, format!("{VIP6}:80"), "the client talks to the VIP only");
        assert!(h.local.starts_with(&format!("{CLIENT6}:")), "{h:?}");
        assert!(h.peer.starts_with(&format!("{LIP6}:")), "the real server saw {} instead of the LIP", h.peer);
        by_server[FULLNAT6.server_index(&h.server)] += 1;
    }
    assert_eq!(by_server, [3, 3], "rr alternates between the two real servers");
    let seen = cap.packets();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for p in &seen {
        assert_eq!((p.get("ip"), p.get("src"), p.get("dst")), ("6", LIP6, "2001:db8:1::2"), "{p:?}");
        assert_eq!((p.get("csum"), p.get("len")), ("ok", "ok"), "{p:?}");
        assert_eq!(p.get("hlim"), "63", "the client's hop limit 64, decremented once: {p:?}");
    }

    let flows = lab.udp_flows(6);
    for u in &flows {
        assert_eq!(u.from, format!("{VIP6}:80"), "the UDP answer must come from the VIP: {u:?}");
        assert!(u.peer.starts_with(&format!("{LIP6}:")), "the UDP server saw {}", u.peer);
    }
    assert_eq!(flows.iter().filter(|u| u.server == "rs1").count(), 3, "{flows:?}");

    let stats = lab.stats();
    let (tcp, udp) = (stats.service("TCP"), stats.service("UDP"));
    assert_eq!((tcp.conns, udp.conns), (6, 6), "{}", stats.text);
    assert_eq!((udp.inpkts, udp.outpkts), (6, 6), "{}", stats.text);
    assert!(tcp.inpkts >= 6 * 4 && tcp.outpkts >= 6 * 3, "{}", stats.text);
    assert_eq!(lab.counter("fwd_in_packets"), tcp.inpkts + udp.inpkts);
    assert_eq!(lab.counter("fwd_out_packets"), tcp.outpkts + udp.outpkts);
    // The client resolved the VIP through gatewayd's neighbour advertisement.
    let neigh = common::text(&lab.exec("client", &["ip", "-6", "neigh", "show", VIP6]));
    assert!(neigh.contains(&lab.mac("gw", "gw0")), "the client's neighbour entry for the VIP: {neigh}");
}

#[test]
fn fullnat66_50_mb_download_arrives_intact() {
    let lab = Lab::up(&FULLNAT6, "h17l-fn6dl");
    lab.add_service("-t");
    let d = lab.download(50 << 20, "120");
    assert_eq!(d.size, 50 << 20, "{d:?}");
    assert_eq!(d.received, d.announced, "the bytes arrived intact: {d:?}");
    assert_eq!(lab.stats().service("TCP").conns, 1);
}
