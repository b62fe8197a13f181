//! SYNPROXY (`gwctl -j enable`) on an IPv6 service end to end (issue 17):
//! FULLNAT66 (IPv6 real servers, IPv6 local address) and NAT64 (IPv4 real
//! servers, IPv4 local address), real Linux TCP stacks at both ends.
//!
//! - curl -6 through the cookie handshake, the real servers seeing the
//!   local address; a 50 MiB download keeps its SHA-256 through the splice
//!   (sequence numbers, timestamps, window scale) and an upload arrives
//!   whole;
//! - a request carried by the handshake's third ACK (scapy,
//!   tests/lab/sp_early_data.py over IPv6, from an address reached through
//!   a static neighbour) is held and delivered;
//! - scapy (tests/lab/sp_probe.py) sees the SYN-ACK come from the VIP with
//!   the client's window scale and SACK in its TSval; SYNs from spoofed
//!   IPv6 sources and ACKs with bad cookies create no session and put no
//!   packet on the real servers' wire (counted there by scapy,
//!   tests/lab/syn_count.py);
//! - the rule round-trips through `-S`/`-R`;
//! - a SYN the real servers' side loses (nftables in their namespaces,
//!   from scripts/install-deps.sh) is sent again and the request
//!   completes.
//!
//! The FULLNAT lab dual-stack (tests/lab/lab.sh up PREFIX fullnat dual),
//! one worker and, for FULLNAT66, two (conf/lab-fullnat-2w.toml), under the
//! prefixes `gwe-h17s-sp6`, `gwe-h17s-sp6w` and `gwe-h17s-sp64`; python3-scapy
//! from scripts/install-deps.sh.

mod common;

use std::io::{BufRead, Read};

use common::proxy::{early_data, early_neighbour};
use common::{hostport, script, text, Lab, Topology, FULLNAT6, FULLNAT6_2W, NAT64, VIP6};

/// Packets per flood (af_packet on veth loses some before the gateway).
const FLOOD: usize = 1000;
/// The floods' sources: addresses no host holds.
const SPOOF: &str = "2001:db8::5:0:0/96";
/// The floods' rate, packets a second: each spoofed SYN's SYN-ACK costs the
/// gateway a neighbour solicitation, and a debug build's worker sheds
/// SYNs (`drop_syn_shed`) under a faster flood.
const PPS: &str = "1000";

fn synproxy_lab(topo: &'static Topology, name: &str) {
    let lab = Lab::up(topo, name);
    let lip = topo.laddr.unwrap();
    let vip = topo.service(80);
    lab.gwctl_ok(&["-A", "-t", &vip, "-s", "rr", "-j", "enable"]);
    for (_, rip) in topo.servers {
        lab.gwctl_ok(&["-a", "-t", &vip, "-r", &topo.rs_arg(rip), "-b", "-w", "1"]);
    }
    lab.gwctl_ok(&["--add-laddr", "-z", lip, "-t", &vip]);
    let listing = lab.listing();
    assert!(listing.contains(&format!("TCP  {vip} rr synproxy\n")), "{listing}");
    let rules = lab.gwctl_ok(&["-S", "-n"]);
    assert!(rules.contains(&format!("-A -t {vip} -s rr -j enable\n")), "{rules}");
    lab.gwctl_ok(&["-C"]);
    lab.restore(&rules);
    assert_eq!(lab.gwctl_ok(&["-S", "-n"]), rules, "-S/-R round trip");

    // curl -6: every connection through the gateway's cookie handshake,
    // the real servers see the local address.
    for _ in 0..4 {
        let h = lab.http();
        assert_eq!(h.remote, format!("{VIP6}:80"), "{h:?}");
        assert!(h.peer.starts_with(&format!("{lip}:")), "the real server saw {}", h.peer);
    }
    assert_eq!(lab.counter("synproxy_conns_opened"), 4);
    assert!(lab.counter("synproxy_syn_acks_sent") >= 4);
    let d = lab.download(50 << 20, "120");
    assert_eq!(d.size, 50 << 20, "{d:?}");
    assert_eq!(d.received, d.announced, "50 MiB through the splice intact: {d:?}");
    let (h, read) = lab.http_post(5 << 20);
    assert_eq!(read, 5 << 20, "the upload arrived whole: {h:?}");

    // A request on the cookie ACK itself, from an address the client's
    // kernel does not hold (so it resets nothing), reached through a static
    // neighbour: held until the real server's SYN-ACK, then delivered.
    let early = "2001:db8::77";
    early_neighbour(&lab, early);
    let held = lab.counter("synproxy_data_held");
    let t = early_data(&lab, early, VIP6, 80, "GET / HTTP/1.0\\n\\n");
    let body = t.lines().last().unwrap_or_default();
    let f: Vec<&str> = body.split_whitespace().collect();
    assert!(f.len() == 2 && f[1].starts_with(&format!("{lip}:")), "the third ACK's request answered: {t:?}");
    assert_eq!(lab.counter("synproxy_data_held") - held, 1);

    // Floods from spoofed IPv6 sources: SYNs answered by the gateway with
    // no state, ACKs with bad cookies dropped; nothing reaches a server.
    let cnt = script("syn_count.py").display().to_string();
    let port = topo.server_port.to_string();
    let mut counters: Vec<_> = topo
        .servers
        .iter()
        .map(|(rs, _)| lab.spawn(rs, &["/usr/bin/python3", &cnt, "eth0", &port, "20"]))
        .collect();
    let mut outs: Vec<_> = counters.iter_mut().map(|c| c.ready()).collect();
    let (sessions, syn_acks, bad) = (
        lab.counter("sessions_created"),
        lab.counter("synproxy_syn_acks_sent"),
        lab.counter("drop_synproxy_bad_cookie"),
    );
    let probe = script("sp_probe.py").display().to_string();
    let n = FLOOD.to_string();
    for flags in ["S", "A", "PA"] {
        let o = lab.exec(
            "client",
            &[
                "timeout",
                "60",
                "/usr/bin/python3",
                &probe,
                VIP6,
                "80",
                &n,
                flags,
                "--spoof",
                SPOOF,
                "--pps",
                PPS,
            ],
        );
        assert!(o.status.success(), "sp_probe {flags}: {}", String::from_utf8_lossy(&o.stderr));
        let t = text(&o);
        let v: Vec<&str> = t.lines().next().unwrap_or_default().split_whitespace().collect();
        // From the VIP: MSS 1500 - 60, window scale 7, SACK, TSval low
        // bits = the client's window scale 6 | SACK (16), its TSval echoed.
        assert_eq!(v, ["SA", &hostport(VIP6, 80), "1440", "7", "1", "22", "4242"], "{t}");
    }
    for (out, (rs, _)) in outs.iter_mut().zip(topo.servers) {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        let c: Vec<u64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(c, [0, 0], "no SYN, nothing at all, reached {rs} ({l})");
    }
    drop(counters);
    assert_eq!(lab.counter("sessions_created"), sessions, "no session for a flood");
    let answered = lab.counter("synproxy_syn_acks_sent") - syn_acks;
    assert!(answered as usize > FLOOD / 2, "the spoofed SYNs answered by the gateway: {answered}");
    let dropped = lab.counter("drop_synproxy_bad_cookie") - bad;
    assert!(dropped as usize > FLOOD, "the ACK floods dropped as bad cookies: {dropped}");
    // Still serving.
    assert!(lab.http().peer.starts_with(&format!("{lip}:")));

    // A SYN lost on the real servers' side (their kernels drop SYNs to the
    // service's port, nftables, until one was lost): the gateway sends it
    // again (the client's retransmission or the session's timer,
    // `synproxy_syn_resent`) and the request completes.
    for (rs, _) in topo.servers {
        lab.drop_syns(rs, &[topo.server_port]);
    }
    let resent = lab.counter("synproxy_syn_resent");
    let url = format!("http://{}/", hostport(VIP6, 80));
    let mut curl = lab.spawn("client", &["curl", "-g", "-s", "-S", "-m", "20", &url]);
    let lost = || topo.servers.iter().any(|(rs, _)| lab.syns_dropped(rs) != [0]);
    let mut waited = 0;
    while !lost() {
        assert!(waited < 500, "no SYN reached a real server");
        std::thread::sleep(std::time::Duration::from_millis(20));
        waited += 1;
    }
    for (rs, _) in topo.servers {
        lab.stop_dropping_syns(rs);
    }
    let mut body = String::new();
    curl.0.stdout.take().unwrap().read_to_string(&mut body).unwrap();
    assert!(curl.0.wait().unwrap().success(), "curl gave up: {body:?}");
    assert!(body.contains(&format!("{lip}:")), "answered through the local address: {body:?}");
    assert!(lab.counter("synproxy_syn_resent") > resent, "the lost SYN was sent again");
}

#[test]
fn synproxy_fullnat66_cookies_splice_and_floods() {
    synproxy_lab(&FULLNAT6, "h17s-sp6");
}

/// Two workers: the cookie ACK, the server's SYN-ACK (steered by the
/// local port) and the frames SYNPROXY processes again meet on the
/// session's worker.
#[test]
fn synproxy_fullnat66_with_two_workers() {
    synproxy_lab(&FULLNAT6_2W, "h17s-sp6w");
}

#[test]
fn synproxy_nat64_cookies_splice_and_floods() {
    synproxy_lab(&NAT64, "h17s-sp64");
}
