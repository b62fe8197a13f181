//! End-to-end lab of the client address at FULLNAT real servers (`gwctl
//! --proxy-protocol v1|v2`, `--toa`), with real servers from Debian: nginx
//! (`listen ... proxy_protocol`, logging `$proxy_protocol_addr`) and
//! HAProxy (`bind ... accept-proxy`, answering with `%ci %cp`) must see the
//! client's address and port for every request, v1 and v2; a python server
//! that speaks first (an SMTP-like banner, tests/lab/pp_server.py) learns
//! the client before the client says a word; 64 MiB downloads (nginx, and
//! the python server) and an upload keep their sha256 through the shifted
//! sequence numbers; a capture at the real server read with scapy
//! (tests/lab/toa_capture.py) shows a well-formed TOA option (kind 254,
//! length 8, the client's port and address) on the SYN and the handshake's
//! ACK, and the SYN's MSS lowered by 8.
//!
//! FULLNAT topology of tests/lab/lab.sh under the prefix `gwe-pp`; nginx,
//! haproxy and python3-scapy come from scripts/install-deps.sh.

mod common;

use std::path::PathBuf;

use common::proxy::{
    haproxy_cfg, nginx_conf, nginx_logged, servers_name_the_client, service, sha256_of, toa_seen,
    wait_listening, write_random,
};
use common::{script, text, Lab, CLIENT, FULLNAT, VIP};

const LIP: &str = "198.18.1.10";
const RS1: &str = "198.18.1.2";
const RS2: &str = "198.18.1.3";
/// Big transfers: 64 MiB.
const BIG: usize = 64 << 20;

#[test]
fn real_servers_learn_the_client_through_proxy_protocol_and_toa() {
    let lab = Lab::up(&FULLNAT, "pp");
    let dir = PathBuf::from(format!("/tmp/{}-srv", lab.prefix));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    // The big file nginx serves: pseudo-random bytes.
    write_random(&dir.join("www/big.bin"), BIG, 0x9e37_79b9_7f4a_7c15);
    let big_sha = sha256_of(&lab, "rs1", &format!("cat {}", dir.join("www/big.bin").display()));
    let nginx_conf_path = nginx_conf(&dir, ["8081", "8082"]);
    let haproxy_cfg_path = haproxy_cfg(&dir, ":8083");
    let pp = script("pp_server.py").display().to_string();
    let mut procs = vec![
        lab.spawn("rs1", &["nginx", "-c", &nginx_conf_path]),
        lab.spawn("rs2", &["haproxy", "-db", "-f", &haproxy_cfg_path]),
        lab.spawn("rs2", &["python3", &pp, "8085", "banner"]),
        lab.spawn("rs2", &["python3", &pp, "8086", "bulk"]),
    ];
    procs[2].ready();
    procs[3].ready();
    wait_listening(&lab, "rs1", &format!("http://{RS1}:8081/who"));
    wait_listening(&lab, "rs2", &format!("http://{RS2}:8083/"));
    // nginx appends: its log starts over with the lab's requests.
    std::fs::write(dir.join("access.log"), "").unwrap();

    service(&lab, (VIP, 81), LIP, (RS1, 8081), &["--proxy-protocol", "v1"]);
    service(&lab, (VIP, 82), LIP, (RS1, 8082), &["--proxy-protocol", "v2"]);
    service(&lab, (VIP, 83), LIP, (RS2, 8083), &["--proxy-protocol", "v1"]);
    service(&lab, (VIP, 84), LIP, (RS2, 8083), &["--proxy-protocol", "v2"]);
    service(&lab, (VIP, 85), LIP, (RS2, 8085), &["--proxy-protocol", "v1"]);
    service(&lab, (VIP, 86), LIP, (RS2, 8086), &["--proxy-protocol", "v2"]);
    service(&lab, (VIP, 87), LIP, (RS1, 80), &["--toa"]);
    let listing = lab.listing();
    assert!(listing.contains(&format!("TCP  {VIP}:81 rr ppv1\n")), "{listing}");
    assert!(listing.contains(&format!("TCP  {VIP}:82 rr ppv2\n")), "{listing}");
    assert!(listing.contains(&format!("TCP  {VIP}:87 rr toa\n")), "{listing}");
    let rules = lab.gwctl_ok(&["-S", "-n"]);
    assert!(rules.contains(&format!("-A -t {VIP}:81 -s rr --proxy-protocol v1\n")), "{rules}");
    assert!(rules.contains(&format!("-A -t {VIP}:86 -s rr --proxy-protocol v2\n")), "{rules}");
    assert!(rules.contains(&format!("-A -t {VIP}:87 -s rr --toa\n")), "{rules}");

    // nginx and HAProxy see the client's address and port, every request.
    let mut requests =
        servers_name_the_client(&lab, VIP, CLIENT, &[(81, "/who"), (82, "/who"), (83, "/"), (84, "/")]);
    nginx_logged(&dir, CLIENT, &[(8081, 3), (8082, 3)]);

    // A server that speaks first: the header came with the handshake.
    let pc = script("pp_client.py").display().to_string();
    let o = lab.exec("client", &["python3", &pc, VIP, "85", "banner"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = text(&o);
    let mut it = t.lines();
    let banner = it.next().unwrap();
    assert!(banner.starts_with(&format!("220 {CLIENT}:")) && banner.ends_with(" v1"), "{t}");
    assert_eq!(it.next(), Some("221 bye"), "{t}");

    // 64 MiB down from nginx (v1) and from the python server (v2), and up.
    let got = sha256_of(&lab, "client", &format!("curl -s -S -m 120 http://{VIP}:81/big.bin"));
    assert_eq!(got, big_sha, "download through PROXY v1 corrupted");
    let n = BIG.to_string();
    let o = lab.exec("client", &["python3", &pc, VIP, "86", "get", &n]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = text(&o);
    let (len, sha) = t.trim().split_once(' ').unwrap();
    assert_eq!(len, n, "download through PROXY v2 short");
    let o = lab.exec("client", &["python3", &pc, VIP, "86", "put", &n]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = text(&o);
    let f: Vec<&str> = t.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{t}");
    assert!(f[1].starts_with(&format!("{CLIENT}:")) && f[2] == "v2", "{t}");
    assert_eq!(f[0], f[3], "upload through PROXY v2 corrupted");
    // The server's GET bytes are seeded by N: the client's upload of N
    // bytes is the same stream, so both hashes agree.
    assert_eq!(sha, f[0], "download and upload of the same stream differ");
    requests += 4;

    // TOA: the real server's capture, parsed by scapy.
    toa_seen(&lab, &format!("http://{VIP}:87/"), LIP, CLIENT);

    assert!(lab.counter("proxy_headers_sent") >= requests, "a connection went without its header");
    assert_eq!(lab.counter("toa_added"), 2);
    assert_eq!(lab.counter("toa_no_room"), 0);
    assert_eq!(lab.counter("drop_proxy_header_no_room"), 0);
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}
