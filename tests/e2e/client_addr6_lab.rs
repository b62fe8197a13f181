//! End-to-end lab of the IPv6 client's address (issue 17: `gwctl
//! --proxy-protocol v1|v2`, `--toa` on an IPv6 service), through FULLNAT66
//! (IPv6 real servers) and NAT64 (IPv4 real servers), with real servers
//! from Debian: nginx (`listen ... proxy_protocol`, logging and answering
//! `$proxy_protocol_addr:$proxy_protocol_port`) and HAProxy (`bind ...
//! accept-proxy`, answering `%ci:%cp`) must see the IPv6 client's address
//! and port for every request, v1 and v2; a UDP server
//! (tests/lab/uoa_server.py) learns it from the v2 DGRAM header on a
//! session's first datagram; a 32 MiB download from nginx
//! through PROXY keeps its sha256 through the shifted sequence numbers; a
//! capture at the real server read with scapy (tests/lab/toa_capture.py)
//! shows DPVS's IPv6 TOA (kind 254, length 20, the client's port and IPv6
//! address) on the SYN and the handshake's ACK, over IPv6 or, through
//! NAT64, over IPv4, and the SYN's MSS lowered by 20. The same with
//! SYNPROXY (`-j enable`): nginx behind PROXY v2 and HAProxy behind v1 see
//! the IPv6 client through the cookie handshake, the 32 MiB download keeps
//! its sha256 through the splice and the PROXY shift together, and the
//! capture shows the IPv6 TOA on the SYN the gateway opens with and on the
//! handshake ACK it makes of the server's SYN-ACK; a request carried by
//! the cookie ACK itself (scapy) reaches nginx after the v2 header.
//!
//! The FULLNAT lab of tests/lab/lab.sh, dual-stack, under `gwe-h17p-*`;
//! nginx, haproxy and python3-scapy come from scripts/install-deps.sh.

mod common;

use std::path::PathBuf;

use common::proxy::{
    early_data, early_neighbour, haproxy_cfg, nginx_conf, nginx_logged, servers_name_the_client, service,
    sha256_of, toa_seen, udp_server_learns, wait_listening, write_random,
};
use common::{hostport, script, Lab, Topology, CLIENT6, FULLNAT6, NAT64, VIP6};

/// The download through PROXY: 32 MiB.
const BIG: usize = 32 << 20;

/// The lab of `topo` (FULLNAT6 or NAT64): nginx on rs1 (PROXY v1 on 8081,
/// v2 on 8082), HAProxy on rs2 (8083, either version), the lab's python
/// server on rs1:80 for TOA; the services [VIP6]:81..84 and :87 (`--toa`)
/// with the local address `lip`; then every check of the module's doc.
fn client_address_lab(topo: &'static Topology, name: &str, lip: &str) {
    let lab = Lab::up(topo, name);
    let (rs1, rs2) = (topo.servers[0].1, topo.servers[1].1);
    let dir = PathBuf::from(format!("/tmp/{}-srv", lab.prefix));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    write_random(&dir.join("www/big.bin"), BIG, 0x51_7cc1_b727_220a);
    let big_sha = sha256_of(&lab, "rs1", &format!("cat {}", dir.join("www/big.bin").display()));
    let (l1, l2) = (hostport(rs1, 8081), hostport(rs1, 8082));
    let nginx_conf_path = nginx_conf(&dir, [&l1, &l2]);
    let haproxy_cfg_path = haproxy_cfg(&dir, &hostport(rs2, 8083));
    let uoa = script("uoa_server.py").display().to_string();
    let mut procs = vec![
        lab.spawn("rs1", &["nginx", "-c", &nginx_conf_path]),
        lab.spawn("rs2", &["haproxy", "-db", "-f", &haproxy_cfg_path]),
        lab.spawn("rs2", &["python3", &uoa, "5399", topo.bind(rs2)]),
    ];
    procs[2].ready();
    wait_listening(&lab, "rs1", &format!("http://{l1}/who"));
    wait_listening(&lab, "rs1", &format!("http://{l2}/who"));
    wait_listening(&lab, "rs2", &format!("http://{}/", hostport(rs2, 8083)));
    // nginx appends: its log starts over with the lab's requests.
    std::fs::write(dir.join("access.log"), "").unwrap();

    service(&lab, (VIP6, 81), lip, (rs1, 8081), &["--proxy-protocol", "v1"]);
    service(&lab, (VIP6, 82), lip, (rs1, 8082), &["--proxy-protocol", "v2"]);
    service(&lab, (VIP6, 83), lip, (rs2, 8083), &["--proxy-protocol", "v1"]);
    service(&lab, (VIP6, 84), lip, (rs2, 8083), &["--proxy-protocol", "v2"]);
    service(&lab, (VIP6, 87), lip, (rs1, 80), &["--toa"]);
    // SYNPROXY with each choice.
    service(&lab, (VIP6, 85), lip, (rs1, 8082), &["--proxy-protocol", "v2", "-j", "enable"]);
    service(&lab, (VIP6, 86), lip, (rs2, 8083), &["--proxy-protocol", "v1", "-j", "enable"]);
    service(&lab, (VIP6, 88), lip, (rs1, 80), &["--toa", "-j", "enable"]);
    let listing = lab.listing();
    assert!(listing.contains(&format!("TCP  [{VIP6}]:81 rr ppv1\n")), "{listing}");
    assert!(listing.contains(&format!("TCP  [{VIP6}]:84 rr ppv2\n")), "{listing}");
    assert!(listing.contains(&format!("TCP  [{VIP6}]:87 rr toa\n")), "{listing}");
    assert!(listing.contains(&format!("TCP  [{VIP6}]:85 rr ppv2 synproxy\n")), "{listing}");
    assert!(listing.contains(&format!("TCP  [{VIP6}]:88 rr toa synproxy\n")), "{listing}");
    let rules = lab.gwctl_ok(&["-S", "-n"]);
    assert!(rules.contains(&format!("-A -t [{VIP6}]:81 -s rr --proxy-protocol v1\n")), "{rules}");
    assert!(rules.contains(&format!("-A -t [{VIP6}]:84 -s rr --proxy-protocol v2\n")), "{rules}");
    assert!(rules.contains(&format!("-A -t [{VIP6}]:87 -s rr --toa\n")), "{rules}");
    assert!(rules.contains(&format!("-A -t [{VIP6}]:85 -s rr --proxy-protocol v2 -j enable\n")), "{rules}");
    assert!(rules.contains(&format!("-A -t [{VIP6}]:88 -s rr --toa -j enable\n")), "{rules}");

    // nginx and HAProxy see the IPv6 client's address and port.
    let targets = [(81, "/who"), (82, "/who"), (83, "/"), (84, "/"), (85, "/who"), (86, "/")];
    let mut requests = servers_name_the_client(&lab, VIP6, CLIENT6, &targets);
    nginx_logged(&dir, CLIENT6, &[(8081, 3), (8082, 6)]);
    assert!(lab.counter("synproxy_conns_opened") >= 6, "{}", lab.diag());

    // 32 MiB down through PROXY v1 and v2, and v2 with SYNPROXY's splice.
    for vport in [81, 82, 85] {
        let got = sha256_of(&lab, "client", &format!("curl -g -s -S -m 120 http://[{VIP6}]:{vport}/big.bin"));
        assert_eq!(got, big_sha, "download through [VIP6]:{vport} corrupted");
        requests += 1;
    }

    // A request on the cookie ACK itself (scapy, tests/lab/sp_early_data.py,
    // from an address reached through a static neighbour) to :85: held
    // until nginx's SYN-ACK, then sent after the PROXY v2 header, which
    // names the scapy client.
    let early = "2001:db8::77";
    early_neighbour(&lab, early);
    let held = lab.counter("synproxy_data_held");
    let t = early_data(&lab, early, VIP6, 85, "GET /who HTTP/1.0\\n\\n");
    assert_eq!(t.lines().last().unwrap_or_default().trim(), format!("{early} 34567"), "{t:?}");
    assert_eq!(lab.counter("synproxy_data_held") - held, 1);
    requests += 1;

    // UOA: a UDP service with PROXY v2 (AF_INET6, DGRAM) on each
    // session's first datagram, read by a real UDP server.
    let uvip = hostport(VIP6, 99);
    lab.gwctl_ok(&["-A", "-u", &uvip, "-s", "rr", "--proxy-protocol", "v2"]);
    lab.gwctl_ok(&["-a", "-u", &uvip, "-r", &hostport(rs2, 5399), "-b", "-w", "1"]);
    lab.gwctl_ok(&["--add-laddr", "-z", lip, "-u", &uvip]);
    udp_server_learns(&lab, VIP6, CLIENT6);
    requests += 1;

    // TOA: the real server's capture, parsed by scapy; :88 with SYNPROXY
    // (the SYN the gateway opens with, the handshake ACK it makes).
    for vport in [87, 88] {
        toa_seen(&lab, &format!("http://[{VIP6}]:{vport}/"), lip, CLIENT6);
    }

    assert!(lab.counter("proxy_headers_sent") >= requests, "a connection went without its header");
    assert_eq!(lab.counter("toa_added"), 4);
    assert_eq!(lab.counter("toa_no_room"), 0);
    assert_eq!(lab.counter("drop_proxy_header_no_room"), 0);
    assert_eq!(lab.counter("drop_ipv6_not_handled"), 0, "{}", lab.diag());
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fullnat66_real_servers_learn_the_ipv6_client_through_proxy_protocol_and_toa() {
    client_address_lab(&FULLNAT6, "h17p-pp6", "2001:db8:1::10");
}

#[test]
fn nat64_ipv4_real_servers_learn_the_ipv6_client_through_proxy_protocol_and_toa() {
    client_address_lab(&NAT64, "h17p-pp64", "198.18.1.10");
}
