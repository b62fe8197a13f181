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
//!
//! `--tun-type gue` and `gre` (ipvsadm 1.31), IPv4 and IPv6 services: the
//! same lab with one real server tunnelled by GUE (UDP to port 6080, then
//! the GUE header) and the other by GRE. The decapsulation helper stands in
//! for the kernel's tunnel devices (fou/gue, gre, ip6gre), which the lab's
//! kernel lacks: it takes the GUE datagrams from a UDP socket (the kernel
//! verified the UDP checksum before) and the GRE packets from a raw
//! protocol-47 socket (it verifies a GRE checksum itself). A scapy capture
//! on each real server checks the outer headers and the client's packet
//! inside them, checksums recomputed by scapy.

mod common;

use common::{Lab, Topology, TUN, TUN6, VIP};

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

/// One server by GUE, the other by GRE, both with checksums, then both
/// without (`-e`): curl and UDP through each, the capture's view of each
/// tunnel, the listing and the saved rules; then the tunnel MTU of GUE
/// (outer IP + 12 bytes) through path-MTU discovery.
fn gue_and_gre(topo: &'static Topology, name: &str) {
    let lab = Lab::up(topo, name);
    let v6 = topo.vip.contains(':');
    let ((rs1, rip1), (rs2, rip2)) = (topo.servers[0], topo.servers[1]);
    let vip = topo.service(80);
    let gue = ["--tun-type", "gue", "--tun-port", "6080"];
    let gre = ["--tun-type", "gre"];
    let server = |cmd: &str, proto: &str, rip: &str, tun: &[&str], csum: &str| {
        let mut args = vec![cmd, proto, &vip, "-r", rip, "-i", "-w", "1"];
        args.extend_from_slice(tun);
        args.push(csum);
        lab.gwctl_ok(&args);
    };
    for proto in ["-t", "-u"] {
        lab.gwctl_ok(&["-A", proto, &vip, "-s", "rr"]);
        server("-a", proto, rip1, &gue, "--tun-csum");
        server("-a", proto, rip2, &gre, "--tun-csum");
    }
    let listing = lab.gwctl_ok(&["-L", "-n", "--tun-info"]);
    let line =
        |rip: &str, info: &str| format!("  -> {:<28} Tunnel  {info:<13} 1      ", common::hostport(rip, 80));
    for want in [line(rip1, "gue:6080:+c"), line(rip2, "gre:+c")] {
        assert!(listing.contains(&want), "no {want:?} in\n{listing}");
    }
    let rules = lab.gwctl_ok(&["-S", "-n"]);
    let rule = format!(
        "-a -t {vip} -r {} -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n",
        common::hostport(rip1, 80)
    );
    assert!(rules.contains(&rule), "no {rule:?} in\n{rules}");

    // Each server's capture: the client's packets inside the tunnel, the
    // outer header from the gateway's inside address.
    let check = |seen: Vec<common::Seen>, tunnel: &str, csum: &str| {
        assert!(seen.len() >= 4, "{tunnel}: {seen:?}");
        for p in &seen {
            assert_eq!((p.get("tunnel"), p.get("outer")), (tunnel, if v6 { "6" } else { "4" }), "{p:?}");
            assert_eq!((p.get("dst"), p.get("csum"), p.get("len")), (topo.vip, "ok", "ok"), "{p:?}");
            assert_eq!(p.get("src"), topo.client, "{p:?}");
            if tunnel == "gue" {
                assert_eq!(
                    (p.get("gue_dport"), p.get("gue_ver"), p.get("gue_hlen")),
                    ("6080", "0", "0"),
                    "{p:?}"
                );
                assert_eq!(p.get("gue_proto"), if v6 { "41" } else { "4" }, "{p:?}");
                assert_eq!(p.get("gue_csum"), csum, "{p:?}");
                let sport: u16 = p.get("gue_sport").parse().unwrap();
                assert!((32768..61000).contains(&sport), "{p:?}");
            } else {
                assert_eq!(p.get("gre_proto"), if v6 { "0x86dd" } else { "0x800" }, "{p:?}");
                assert_eq!(p.get("gre_csum"), csum, "{p:?}");
            }
        }
    };
    let exchange = |csum: &str| {
        let (c1, c2) = (lab.capture(rs1, "eth0", 80, 4, 15), lab.capture(rs2, "eth0", 80, 4, 15));
        let mut by_server = [0; 2];
        for _ in 0..6 {
            let h = lab.http();
            assert_eq!(h.remote, format!("{}:80", topo.vip), "the client talks to the VIP only");
            assert_eq!(h.peer, h.local, "the real server saw {} instead of the client {}", h.peer, h.local);
            by_server[topo.server_index(&h.server)] += 1;
        }
        assert_eq!(by_server, [3, 3], "rr alternates between the GUE and the GRE server");
        let flows = lab.udp_flows(6);
        for u in &flows {
            assert_eq!(u.from, format!("{}:80", topo.vip), "the UDP answer must come from the VIP: {u:?}");
            assert_eq!(u.peer, u.local, "{u:?}");
        }
        assert_eq!(flows.iter().filter(|u| u.server == rs1).count(), 3, "{flows:?}");
        check(c1.packets(), "gue", csum);
        check(c2.packets(), "gre", csum);
    };
    exchange("ok");
    if !v6 {
        // DF clear and too big for the tunnel: the outer packet (GUE with
        // its UDP checksum over the whole datagram, or GRE with its
        // checksum) goes as two IPv4 fragments, which the server's kernel
        // reassembles before the decapsulation helper takes it.
        let before = lab.counter("frag_sent");
        let out = lab.python("client", "udp_big.py", &[VIP, "80", TOO_BIG, "nodf"]);
        assert!(out.contains("first=reply rs") && out.contains("second=sent"), "{out}");
        assert_eq!(lab.counter("frag_sent") - before, 4, "two datagrams, two outer fragments each\n{out}");
        assert_eq!(lab.counter("drop_tunnel_too_big"), 0, "{out}");
    }
    let log = |rs: &str| {
        std::fs::read_to_string(std::env::temp_dir().join(format!("{}-{rs}-ipip.log", lab.prefix)))
            .unwrap_or_default()
    };
    let (gue_log, gre_log) = if v6 {
        ("gue6_decap: 1 packets", "gre6_decap: 1 packets csum")
    } else {
        ("gue_decap: 1 packets", "gre_decap: 1 packets csum")
    };
    assert!(log(rs1).contains(gue_log), "{rs1}: {}", log(rs1));
    assert!(log(rs2).contains(gre_log), "{rs2}: {}", log(rs2));
    assert!(!log(rs1).contains("ignored") && !log(rs2).contains("ignored"), "{}{}", log(rs1), log(rs2));
    assert_eq!(lab.counter("fwd_out_packets"), 0, "a reply went through the gateway");

    // -e: no checksums (the servers' sessions change with them, as IPVS's).
    for proto in ["-t", "-u"] {
        server("-e", proto, rip1, &gue, "--tun-nocsum");
        server("-e", proto, rip2, &gre, "--tun-nocsum");
    }
    let listing = lab.gwctl_ok(&["-L", "-n", "--tun-info"]);
    assert!(
        listing.contains(&line(rip1, "gue:6080:-c")) && listing.contains(&line(rip2, "gre:-c")),
        "{listing}"
    );
    exchange("none");

    // GUE's tunnel MTU: the port's 1500 less the outer IP header and 12
    // bytes of UDP and GUE. A TCP upload to the GUE server alone goes
    // through path-MTU discovery down to it.
    lab.gwctl_ok(&["-d", "-t", &vip, "-r", rip2]);
    let (h, got) = lab.http_post(20_000);
    assert_eq!((got, h.server.as_str()), (20_000, rs1), "the GUE server read the whole body");
    let (family, mtu, event) = if v6 {
        ("-6", "mtu 1448", "icmpv6_too_big_sent")
    } else {
        ("-4", "mtu 1468", "icmp_frag_needed_sent")
    };
    assert!(lab.counter(event) >= 1);
    let route = common::text(&lab.exec("client", &["ip", family, "route", "get", topo.vip]));
    assert!(route.contains(mtu), "the client's route cache: {route}");
}

#[test]
fn tun_gue_and_gre_carry_ipv4_clients_to_their_real_servers() {
    gue_and_gre(&TUN, "h17g-gue4");
}

#[test]
fn tun6_gue_and_gre_carry_ipv6_clients_to_their_real_servers() {
    gue_and_gre(&TUN6, "h17g-gue6");
}
