//! One-packet scheduling (`-o`) and ActiveConn, with real servers that
//! speak for themselves:
//!
//! - a DNS balancer: `dnsmasq` (Debian's `dnsmasq-base`, from
//!   scripts/install-deps.sh) on each real server answers `which.test`
//!   with that server's own address; a client asks twenty times from ONE
//!   socket (one source port: one flow), building and parsing the DNS
//!   messages with scapy (tests/lab/dns_query.py). Without `-o` the flow
//!   sticks to one server and its session stays (listed by `-L -n -c`,
//!   counted in InActConn); with `-o` (ipvsadm's `--ops`) every query is
//!   scheduled on its own (rr: the servers alternate) and no session is
//!   left once the answers are back: FULLNAT and NAT keep a one-packet
//!   session for its answer only, DR none past its datagram. `--stats`
//!   counts a connection per query.
//! - ActiveConn counts handshakes (Linux 4.7 on): a real server whose
//!   kernel drops SYNs (nftables in its namespace) holds a connection in
//!   SYN_RECV at the gateway; `-L -n` lists it under ActiveConn, so lc
//!   sends the next connections to the other server (counted as inactive
//!   it would tie with a closed connection, and lc would pick the silent
//!   server again for every second client).
//!
//! FULLNAT, NAT and DR topologies of tests/lab/lab.sh (DR: dnsmasq listens
//! on the VIP, on the real servers' lo, and answers the client directly),
//! and the DNS balancer over IPv6 too: FULLNAT66 (IPv6 servers) and NAT64
//! (an IPv6 client and VIP, IPv4 servers).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The name each real server's dnsmasq answers with its own address.
const NAME: &str = "which.test";
/// The DNS service's port at the VIP.
const DNS_PORT: u16 = 53;

/// What real server `rip` of `topo` answers for `NAME`: its own address,
/// or for an IPv6 server the IPv4 twin of the FULLNAT lab's (an A record
/// either way).
fn tag(topo: &Topology, rip: &str) -> &'static str {
    let i = topo.servers.iter().position(|(_, r)| *r == rip).expect("a real server of the lab");
    if rip.contains(':') {
        FULLNAT.servers[i].1
    } else {
        topo.servers[i].1
    }
}

/// dnsmasq on both real servers of `lab` at `port` (53 for FULLNAT; 5353
/// for NAT, which maps the port: dnsmasq takes the port for TCP too, and
/// the lab's HTTP server holds 8080), answering `NAME` with the server's
/// [`tag`]; returned once each answers from inside its namespace.
fn dnsmasq(lab: &Lab, port: u16) -> Vec<Daemon> {
    let port_s = port.to_string();
    let mut daemons = vec![];
    for (name, rip) in lab.topo.servers {
        let listen = lab.topo.server_bind.unwrap_or(rip);
        daemons.push(lab.spawn_quiet(
            name,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--user=root",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                &format!("--listen-address={listen}"),
                &format!("--port={port_s}"),
                &format!("--host-record={NAME},{}", tag(lab.topo, rip)),
            ],
        ));
    }
    for (name, rip) in lab.topo.servers {
        let listen = lab.topo.server_bind.unwrap_or(rip);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = lab.exec(
                name,
                &["python3", script("dns_query.py").to_str().unwrap(), listen, &port_s, "1", NAME],
            );
            if text(&o).starts_with(&format!("A {} ", tag(lab.topo, rip))) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq on {name} did not answer: {}{}",
                text(&o),
                String::from_utf8_lossy(&o.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    daemons
}

/// `n` queries for `NAME` to VIP:53 from one client socket: the address
/// each answer carried (which real server answered: its [`tag`]), every
/// answer checked to come from VIP:53.
fn ask(lab: &Lab, n: usize) -> Vec<String> {
    let vip = lab.topo.vip;
    let out = lab.python("client", "dns_query.py", &[vip, &DNS_PORT.to_string(), &n.to_string(), NAME]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), n + 1, "dns_query.py: {out}\n{}", lab.diag());
    assert!(lines[n].starts_with("local "), "{out}");
    lines[..n]
        .iter()
        .map(|l| {
            // "A 198.18.1.2 from 198.18.0.100:53"
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(
                f.len() == 4 && f[0] == "A" && f[2] == "from",
                "no answer: {l:?} in\n{out}\n{}",
                lab.diag()
            );
            assert_eq!(f[3], format!("{vip}:{DNS_PORT}"), "the answer came from the VIP:\n{out}");
            f[1].to_string()
        })
        .collect()
}

/// The `-L -n -c` lines of the DNS service's connections.
fn dns_sessions(lab: &Lab) -> Vec<String> {
    let vip = format!("{} ", lab.topo.service(DNS_PORT));
    lab.gwctl_ok(&["-L", "-n", "-c"]).lines().filter(|l| l.contains(&vip)).map(str::to_string).collect()
}

/// (ActiveConn, InActConn) of real server `rip` in `-L -n` under service
/// `proto` VIP:`port` (the lines after the service's, up to the next one).
fn conns(lab: &Lab, proto: &str, port: u16, rip: &str, rport: u16) -> (u64, u64) {
    let listing = lab.listing();
    let svc = format!("{proto}  {} ", lab.topo.service(port));
    let rs = format!("  -> {} ", hostport(rip, rport));
    let line = listing
        .lines()
        .skip_while(|l| !l.starts_with(&svc))
        .skip(1)
        .take_while(|l| l.starts_with("  -> "))
        .find(|l| l.starts_with(&rs))
        .unwrap_or_else(|| panic!("no {rs:?} under {svc:?} in\n{listing}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[4].parse().unwrap(), f[5].parse().unwrap())
}

/// A DNS service over `topo`'s real servers, first without `-o`, then with.
fn one_packet_dns(topo: &'static Topology, name: &str) {
    let lab = Lab::up(topo, name);
    let rport = match topo.forward {
        "-m" => 5353,
        _ => DNS_PORT,
    };
    let _dns = dnsmasq(&lab, rport);
    let vip = topo.service(DNS_PORT);
    lab.gwctl_ok(&["-A", "-u", &vip, "-s", "rr"]);
    for (_, rip) in topo.servers {
        lab.gwctl_ok(&["-a", "-u", &vip, "-r", &hostport(rip, rport), topo.forward]);
    }
    if let Some(lip) = topo.laddr {
        lab.gwctl_ok(&["--add-laddr", "-z", lip, "-u", &vip]);
    }
    let tags: Vec<&str> = topo.servers.iter().map(|(_, rip)| tag(topo, rip)).collect();

    // Without -o: one socket is one flow, on one server, and its session stays.
    let sticky = ask(&lab, 6);
    assert!(sticky.iter().all(|a| *a == sticky[0]), "one flow went to several servers: {sticky:?}");
    assert!(tags.contains(&sticky[0].as_str()), "{sticky:?}");
    let held = dns_sessions(&lab);
    assert_eq!(held.len(), 1, "one UDP session for the flow:\n{held:?}\n{}", lab.diag());
    let server = topo.servers.iter().find(|(_, rip)| tag(topo, rip) == sticky[0]).unwrap().1;
    assert_eq!(conns(&lab, "UDP", DNS_PORT, server, rport), (0, 1), "the session counts as inactive");

    // With -o (ipvsadm -E ... --ops): each query is scheduled on its own.
    lab.gwctl_ok(&["-E", "-u", &vip, "-s", "rr", "-o"]);
    let listing = lab.listing();
    assert!(listing.contains(&format!("UDP  {vip} rr ops\n")), "{listing}");
    let before = lab.stats().service_at("UDP", DNS_PORT).conns;
    let answers = ask(&lab, 20);
    for pair in answers.windows(2) {
        assert_ne!(pair[0], pair[1], "rr alternates per datagram with -o: {answers:?}");
    }
    for t in &tags {
        assert_eq!(answers.iter().filter(|a| a == t).count(), 10, "{answers:?}");
    }
    // No session is left of the twenty: only the first flow's, from before.
    assert_eq!(dns_sessions(&lab), held, "one-packet sessions are gone once answered:\n{}", lab.diag());
    for (_, rip) in topo.servers {
        let (active, inactive) = conns(&lab, "UDP", DNS_PORT, rip, rport);
        assert_eq!(active, 0, "{}", lab.listing());
        assert_eq!(inactive, u64::from(rip == server), "{}", lab.listing());
    }
    let stats = lab.stats();
    assert_eq!(
        stats.service_at("UDP", DNS_PORT).conns - before,
        20,
        "a connection per query:\n{}",
        stats.text
    );
    // NAT and FULLNAT: the answers went back through the gateway, one
    // reply counted per query; DR: straight to the client.
    let replies = if topo.forward == "-g" { 0 } else { 26 };
    assert_eq!(stats.service_at("UDP", DNS_PORT).outpkts, replies, "{}", stats.text);
}

#[test]
fn fullnat_one_packet_dns_schedules_every_query_and_keeps_no_session() {
    one_packet_dns(&FULLNAT, "ops-fn");
}

#[test]
fn nat_one_packet_dns_schedules_every_query_and_keeps_no_session() {
    one_packet_dns(&NAT, "ops-nat");
}

#[test]
fn fullnat66_one_packet_dns_schedules_every_query_and_keeps_no_session() {
    one_packet_dns(&FULLNAT6, "ops-fn6");
}

#[test]
fn nat64_one_packet_dns_schedules_every_query_and_keeps_no_session() {
    one_packet_dns(&NAT64, "ops-n64");
}

#[test]
fn dr_one_packet_dns_schedules_every_query_and_keeps_no_session() {
    one_packet_dns(&DR, "ops-dr");
}

#[test]
fn a_server_that_leaves_syns_unanswered_is_active_and_lc_avoids_it() {
    let lab = Lab::up(&FULLNAT, "ops-act");
    let [(_, rs1), (_, rs2)] = FULLNAT.servers;
    let vip = FULLNAT.service(VPORT);
    lab.gwctl_ok(&["-A", "-t", &vip, "-s", "lc"]);
    // rs2 at weight 0 takes nothing: the first client goes to rs1.
    for (rip, w) in [(rs1, "1"), (rs2, "0")] {
        lab.gwctl_ok(&["-a", "-t", &vip, "-r", &FULLNAT.rs_arg(rip), "-b", "-w", w]);
    }
    lab.gwctl_ok(&["--add-laddr", "-z", FULLNAT.laddr.unwrap(), "-t", &vip]);
    lab.drop_syns("rs1", &[VPORT]);
    // A client whose SYNs rs1 drops: the gateway's session waits in SYN_RECV.
    let url = format!("http://{vip}/");
    let _silent = lab.spawn_quiet("client", &["curl", "-s", "-m", "30", &url]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.syns_dropped("rs1") == [0] {
        assert!(Instant::now() < deadline, "no SYN reached rs1:\n{}", lab.diag());
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.gwctl_ok(&["-e", "-t", &vip, "-r", &FULLNAT.rs_arg(rs2), "-b", "-w", "1"]);
    let held = lab.gwctl_ok(&["-L", "-n", "-c"]);
    assert!(held.contains("SYN_RECV"), "{held}");
    assert_eq!(conns(&lab, "TCP", VPORT, rs1, VPORT), (1, 0), "a handshake is active:\n{}", lab.listing());
    // lc: rs1 weighs 256 (one active), rs2 at most its closed connections.
    for _ in 0..4 {
        let h = lab.http();
        assert_eq!(h.server, "rs2", "lc sent a client to the server holding a handshake:\n{}", lab.diag());
    }
    let (active, inactive) = conns(&lab, "TCP", VPORT, rs2, VPORT);
    assert_eq!(active, 0, "{}", lab.listing());
    assert!(inactive >= 1, "rs2's closed connections are inactive:\n{}", lab.listing());
    assert_eq!(conns(&lab, "TCP", VPORT, rs1, VPORT), (1, 0), "{}", lab.listing());
}
