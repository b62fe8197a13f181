//! End-to-end lab of SYNPROXY (`gwctl -j enable`) with two workers and
//! real Linux TCP stacks at both ends: 200 MiB downloads and uploads keep
//! their sha256 through the splice (sequence numbers, timestamps, window
//! scale), alone and together with a PROXY v2 header (both offsets); a
//! scapy probe shows the SYN-ACK comes from the gateway (the VIP, its
//! TSval carrying the client's window scale and SACK as Linux's
//! syncookies); SYN, ACK, RST and FIN floods without a valid cookie put
//! zero SYNs on the real server's wire (counted there by scapy,
//! tests/lab/syn_count.py) while a legitimate connection still succeeds;
//! a request carried by the handshake's third ACK (scapy,
//! tests/lab/sp_early_data.py) is held and delivered, after a PROXY
//! header too; the rules round-trip through `-S`/`-R`. A SYN lost on the
//! real server's side (an nftables rule in its namespace, nftables from
//! scripts/install-deps.sh) is sent again, on the client's own
//! retransmission or from the session's timer (a server that speaks
//! first), and the connections complete.
//!
//! FULLNAT topology of tests/lab/lab.sh with two workers
//! (conf/lab-fullnat-2w.toml) under the prefix `gwe-syp`; python3-scapy
//! from scripts/install-deps.sh.

mod common;

use std::io::{BufRead, Read};

use common::proxy::{early_data, early_neighbour, udp_server_learns};
use common::{script, text, Lab, CLIENT, FULLNAT_2W, VIP};

const LIP: &str = "198.18.1.10";
const RS1: &str = "198.18.1.2";
const RS2: &str = "198.18.1.3";
/// Big transfers: 200 MiB.
const BIG: usize = 200 << 20;
/// Packets per flood.
const FLOOD: usize = 3000;

/// A SYNPROXY FULLNAT TCP service VIP:`vport` -> `rs`:`rport`, with `opts`.
fn service(lab: &Lab, vport: u16, rs: &str, rport: u16, opts: &[&str]) {
    let vip = format!("{VIP}:{vport}");
    let mut a = vec!["-A", "-t", &vip, "-s", "rr", "-j", "enable"];
    a.extend_from_slice(opts);
    lab.gwctl_ok(&a);
    lab.gwctl_ok(&["-a", "-t", &vip, "-r", &format!("{rs}:{rport}"), "-b", "-w", "1"]);
    lab.gwctl_ok(&["--add-laddr", "-z", LIP, "-t", &vip]);
}

/// pp_client.py from the client: its output's fields.
fn pp(lab: &Lab, vport: u16, args: &[&str]) -> Vec<String> {
    let pc = script("pp_client.py").display().to_string();
    let port = vport.to_string();
    let mut a = vec!["timeout", "300", "python3", &pc, VIP, &port];
    a.extend_from_slice(args);
    let o = lab.exec("client", &a);
    assert!(o.status.success(), "pp_client {vport} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    text(&o).split_whitespace().map(String::from).collect()
}

#[test]
fn synproxy_splices_big_transfers_and_keeps_floods_from_the_real_servers() {
    let lab = Lab::up(&FULLNAT_2W, "syp");
    let ps = script("pp_server.py").display().to_string();
    let mut procs = vec![
        lab.spawn("rs1", &["python3", &ps, "8091", "bulk", "noheader"]),
        lab.spawn("rs1", &["python3", &ps, "8092", "bulk"]),
        lab.spawn("rs2", &["python3", &ps, "8093", "bulk", "noheader"]),
        lab.spawn("rs1", &["python3", &script("uoa_server.py").display().to_string(), "5399"]),
    ];
    for p in &mut procs {
        p.ready();
    }
    service(&lab, 91, RS1, 8091, &[]);
    service(&lab, 92, RS1, 8092, &["--proxy-protocol", "v2"]);
    service(&lab, 93, RS2, 8093, &[]);
    let listing = lab.listing();
    assert!(listing.contains(&format!("TCP  {VIP}:91 rr synproxy\n")), "{listing}");
    assert!(listing.contains(&format!("TCP  {VIP}:92 rr ppv2 synproxy\n")), "{listing}");
    let rules = lab.gwctl_ok(&["-S", "-n"]);
    assert!(rules.contains(&format!("-A -t {VIP}:91 -s rr -j enable\n")), "{rules}");
    assert!(rules.contains(&format!("-A -t {VIP}:92 -s rr --proxy-protocol v2 -j enable\n")), "{rules}");
    // UOA: a UDP service with PROXY v2 (DGRAM) on each session's first
    // datagram, read by a real UDP server.
    let uvip = format!("{VIP}:99");
    lab.gwctl_ok(&["-A", "-u", &uvip, "-s", "rr", "--proxy-protocol", "v2"]);
    lab.gwctl_ok(&["-a", "-u", &uvip, "-r", &format!("{RS1}:5399"), "-b", "-w", "1"]);
    lab.gwctl_ok(&["--add-laddr", "-z", LIP, "-u", &uvip]);
    let rules = lab.gwctl_ok(&["-S", "-n"]);
    assert!(rules.contains(&format!("-A -u {VIP}:99 -s rr --proxy-protocol v2\n")), "{rules}");
    lab.gwctl_ok(&["-C"]);
    lab.restore(&rules);
    assert_eq!(lab.gwctl_ok(&["-S", "-n"]), rules, "-S/-R round trip");

    udp_server_learns(&lab, VIP, CLIENT);

    // A request on the cookie ACK itself (scapy, tests/lab/sp_early_data.py,
    // from an address the client's kernel does not hold, reached through a
    // static neighbour): held until the server's SYN-ACK, then delivered,
    // after the PROXY header on VIP:92; the server's answer is the
    // request's sha256 (pp_server.py's PUT).
    let early = "198.18.0.77";
    early_neighbour(&lab, early);
    let held = lab.counter("synproxy_data_held");
    let want = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    for (vport, who) in [(91, "-:0".to_string()), (92, format!("{early}:34567"))] {
        let t = early_data(&lab, early, VIP, vport, "PUT 5\\nhello");
        let f: Vec<&str> = t.split_whitespace().collect();
        assert_eq!(f.len(), 3, "VIP:{vport}: {t:?}");
        assert!(f[0].starts_with(&who), "VIP:{vport}: the server saw {t:?}");
        assert_eq!(f[2], want, "VIP:{vport}: the third ACK's data reached the server whole: {t:?}");
    }
    assert_eq!(lab.counter("synproxy_data_held") - held, 2, "both requests held, none left");

    // 200 MiB down and up, SYNPROXY alone and with PROXY v2.
    let n = BIG.to_string();
    for (vport, who) in [(91, "-:0"), (92, CLIENT)] {
        let got = pp(&lab, vport, &["get", &n]);
        assert_eq!(got[0], n, "download through VIP:{vport} short");
        let put = pp(&lab, vport, &["put", &n]);
        assert_eq!(put.len(), 4, "{put:?}");
        assert!(put[1].starts_with(who), "VIP:{vport}: the server saw {put:?}");
        assert_eq!(put[0], put[3], "upload through VIP:{vport} corrupted");
        assert_eq!(got[1], put[0], "download through VIP:{vport} corrupted (same seeded stream)");
    }
    // (A request sent before the real server's SYN-ACK came back was
    // dropped, `drop_synproxy_pending`, and retransmitted by the client.)

    // Floods against VIP:93, counted on rs2's wire.
    let cnt = script("syn_count.py").display().to_string();
    let mut counter = lab.spawn("rs2", &["/usr/bin/python3", &cnt, "eth0", "8093", "25"]);
    let mut out = counter.ready();
    let before_syn_acks = lab.counter("synproxy_syn_acks_sent");
    let before_bad = lab.counter("drop_synproxy_bad_cookie");
    let probe = script("sp_probe.py").display().to_string();
    let f = FLOOD.to_string();
    for flags in ["S", "A", "R", "F", "PA"] {
        let o = lab.exec("client", &["timeout", "60", "/usr/bin/python3", &probe, VIP, "93", &f, flags]);
        assert!(o.status.success(), "sp_probe {flags}: {}", String::from_utf8_lossy(&o.stderr));
        let t = text(&o);
        let first = t.lines().next().unwrap_or_default();
        let v: Vec<&str> = first.split_whitespace().collect();
        // The gateway answers the probe's SYN itself: from the VIP, MSS,
        // its window scale 7, SACK, TSval low bits = wscale 6 | SACK.
        assert_eq!(v, ["SA", &format!("{VIP}:93"), "1460", "7", "1", "22", "4242"], "{t}");
    }
    // A legitimate connection still works during it.
    let got = pp(&lab, 93, &["get", "100000"]);
    assert_eq!(got[0], "100000");
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    let _ = counter.0.wait();
    let c: Vec<u64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(c.len(), 2, "{l:?}");
    assert_eq!(c[0], 1, "only the legitimate connection's SYN reaches the real server ({l})");
    let syn_acks = lab.counter("synproxy_syn_acks_sent") - before_syn_acks;
    // (af_packet on veth loses some of a flood before the gateway.)
    assert!(syn_acks as usize > FLOOD / 2, "the flood's SYNs answered by the gateway: {syn_acks}");
    let bad = lab.counter("drop_synproxy_bad_cookie") - before_bad;
    assert!(bad as usize >= 2 * FLOOD, "ACK/RST/FIN/PSH-ACK floods dropped as bad cookies: {bad}");
    drop(procs);
}

/// A SYN lost on the real server's side (rs2's kernel drops SYNs to 8094
/// and 8095, nftables, until each port has lost one): toward 8094 the
/// client speaks first and its retransmission has the gateway send the SYN
/// again; toward 8095 the server speaks first (a banner: the client sends
/// nothing and retransmits nothing) and the session's timer does. Both
/// connections complete (`synproxy_syn_resent`). Without the resends the
/// handshakes waited for SYN_SENT's 120 s and the clients' 30 s socket
/// timeout ended them.
#[test]
fn synproxy_sends_a_lost_syn_again() {
    let lab = Lab::up(&FULLNAT_2W, "sypl");
    let ps = script("pp_server.py").display().to_string();
    let mut servers = vec![
        lab.spawn("rs2", &["python3", &ps, "8094", "bulk", "noheader"]),
        lab.spawn("rs2", &["python3", &ps, "8095", "banner", "noheader"]),
    ];
    for s in &mut servers {
        s.ready();
    }
    service(&lab, 94, RS2, 8094, &[]);
    service(&lab, 95, RS2, 8095, &[]);
    lab.drop_syns("rs2", &[8094, 8095]);
    let resent = lab.counter("synproxy_syn_resent");
    let pc = script("pp_client.py").display().to_string();
    let mut clients = vec![
        lab.spawn("client", &["timeout", "60", "python3", &pc, VIP, "94", "get", "100000"]),
        lab.spawn("client", &["timeout", "60", "python3", &pc, VIP, "95", "banner"]),
    ];
    let mut waited = 0;
    while lab.syns_dropped("rs2").contains(&0) {
        assert!(waited < 500, "a SYN never reached rs2");
        std::thread::sleep(std::time::Duration::from_millis(20));
        waited += 1;
    }
    lab.stop_dropping_syns("rs2");
    let mut out = vec![];
    for c in &mut clients {
        let mut o = String::new();
        c.0.stdout.take().unwrap().read_to_string(&mut o).unwrap();
        assert!(c.0.wait().unwrap().success(), "a client gave up: {o:?}");
        out.push(o);
    }
    assert_eq!(out[0].split_whitespace().next(), Some("100000"), "{out:?}");
    assert!(out[1].starts_with("220 "), "the server's banner: {out:?}");
    assert!(out[1].contains("221 bye"), "{out:?}");
    assert!(lab.counter("synproxy_syn_resent") >= resent + 2, "both SYNs sent again");
}
