//! End-to-end TUN lab (IP-in-IP, `gwctl -i`, Forward `Tunnel`): the real
//! servers sit in 198.18.2.0/24 behind a router (tests/lab/lab.sh up PREFIX
//! tun); gatewayd reaches them through its static route and wraps each
//! client packet in an outer IPv4 header 198.18.1.1 -> RIP. The lab's kernel
//! has no ipip module: tests/lab/ipip_decap.py on each real server plays
//! tunl0. The real servers answer from the VIP through the router, straight
//! to the client: OutPkts and `fwd_out_packets` stay 0.
//!
//! Packets that do not fit in the tunnel (port MTU 1500 - 20 bytes of outer
//! header): with DF the client gets ICMP "fragmentation needed" (next-hop
//! MTU 1480) and its path MTU drops; without DF the outer packet is sent as
//! fragments, as IPVS does, and the real server's kernel reassembles it.

mod common;

use common::{Lab, TUN, VIP};

/// A UDP payload that makes a 1500-byte inner packet: 1520 bytes encapsulated.
const TOO_BIG: &str = "1472";

fn decap_log(lab: &Lab, rs: &str) -> String {
    std::fs::read_to_string(std::env::temp_dir().join(format!("{}-{rs}-ipip.log", lab.prefix)))
        .unwrap_or_default()
}

fn rs_udp_in(lab: &Lab) -> u64 {
    TUN.servers.iter().map(|(n, _)| lab.snmp(n, "Udp", "InDatagrams")).sum()
}

fn route_cache_mtu(lab: &Lab) -> String {
    common::text(&lab.exec("client", &["ip", "route", "get", VIP]))
}

#[test]
fn tun_real_servers_see_the_client_and_answer_it_directly() {
    let lab = Lab::up(&TUN, "tun-both");
    lab.check_services_and_client_seen();

    let flows = lab.udp_flows(6);
    for u in &flows {
        assert_eq!(u.from, format!("{VIP}:80"), "the UDP answer must come from the VIP: {u:?}");
        assert_eq!(u.peer, u.local, "the UDP server saw {} instead of the client {}", u.peer, u.local);
    }
    assert_eq!(flows.iter().filter(|u| u.server == "rs1").count(), 3, "{flows:?}");
    // The packets came through the tunnel: each decapsulation helper took some.
    for (rs, _) in TUN.servers {
        assert!(decap_log(&lab, rs).contains("ipip_decap: 1 packets"), "{rs} decapsulated nothing");
    }

    lab.check_one_way_counters();
    assert_eq!(lab.counter("icmp_frag_needed_sent"), 0, "small packets fit in the tunnel");
}

#[test]
fn tun_udp_too_big_for_the_tunnel_goes_as_outer_fragments_and_df_gets_frag_needed() {
    let lab = Lab::up(&TUN, "tun-big");
    lab.add_service("-u");
    assert_eq!(lab.udp_flows(1).len(), 1);

    // DF clear: as IPVS, the outer packet goes out as two fragments, which
    // the real server's kernel reassembles; the datagram is answered. No
    // ICMP.
    let out = lab.python("client", "udp_big.py", &[VIP, "80", TOO_BIG, "nodf"]);
    assert!(out.contains("first=reply rs") && out.contains("mtu=1500\n"), "{out}");
    assert_eq!(lab.counter("drop_tunnel_too_big"), 0, "{out}");
    assert_eq!(lab.counter("frag_sent"), 4, "two datagrams, two outer fragments each\n{out}");
    assert_eq!(lab.counter("icmp_frag_needed_sent"), 0);
    let rs_before = rs_udp_in(&lab);

    // DF set: ICMP "fragmentation needed" with the tunnel's MTU 1480. The
    // connected socket reports EMSGSIZE, its path MTU drops to 1480, and the
    // second send fails locally: only one datagram reached the gateway.
    let out = lab.python("client", "udp_big.py", &[VIP, "80", TOO_BIG, "df"]);
    assert!(out.contains("first=error EMSGSIZE\n"), "no frag-needed reached the client:\n{out}");
    assert!(out.contains("mtu=1480\n"), "{out}");
    assert!(out.contains("second=error EMSGSIZE"), "{out}");
    assert_eq!(lab.counter("icmp_frag_needed_sent"), 1);
    let route = route_cache_mtu(&lab);
    assert!(route.contains("mtu 1480"), "the client's route cache: {route}");

    // Nothing too big reached a real server; small datagrams still flow.
    assert_eq!(rs_udp_in(&lab), rs_before, "a too-big datagram reached a real server");
    assert_eq!(lab.udp_flows(2).len(), 2);
    assert_eq!(rs_udp_in(&lab), rs_before + 2);
}

#[test]
fn tun_tcp_upload_bigger_than_the_tunnel_mtu_goes_through_path_mtu_discovery() {
    let lab = Lab::up(&TUN, "tun-pmtu");
    lab.add_service("-t");
    // Full-size client segments (1500 bytes, DF) do not fit in the tunnel:
    // the gateway answers with frag-needed, the client's TCP lowers its MSS.
    let (h, got) = lab.http_post(20_000);
    assert_eq!(got, 20_000, "the real server read the whole body");
    assert_eq!(h.remote, format!("{VIP}:80"));
    assert_eq!(h.peer, h.local);
    assert!(lab.counter("icmp_frag_needed_sent") >= 1);
    assert_eq!(lab.counter("fwd_out_packets"), 0);
    let route = route_cache_mtu(&lab);
    assert!(route.contains("mtu 1480"), "the client's route cache: {route}");
    // A second upload needs no more ICMP: the client remembers the path MTU.
    let sent = lab.counter("icmp_frag_needed_sent");
    assert_eq!(lab.http_post(20_000).1, 20_000);
    assert_eq!(lab.counter("icmp_frag_needed_sent"), sent);
}
