//! Hostile traffic while real traffic flows (FULLNAT lab, a small session
//! table): malformed frames and a SYN flood from spoofed sources during a
//! burst of real HTTP requests, which must all succeed; ACK floods that
//! never create sessions; and a SYN flood past the half-open cap, which is
//! counted while an already-established connection goes on untouched.

mod common;

use std::io::BufRead;

use common::*;

/// 8192 sessions per worker: at most 4096 half-open (workers.half_open_percent = 50).
fn small_table(c: String) -> String {
    c.replace("sessions = 65536", "sessions = 8192")
}

#[test]
fn real_requests_all_succeed_through_malformed_frames_and_floods() {
    let lab = Lab::up_tweaked(&FULLNAT, "hostile", small_table);
    lab.add_service("-t");
    lab.http();
    let gw_mac = lab.neigh("client", VIP).expect("the client resolved the VIP");
    let url = format!("http://{VIP}:{VPORT}/");

    // 1. Malformed frames and 2000 spoofed SYNs, while 60 real requests run.
    let (mut flood, _flood_out) = lab.spawn_python("client", "tcp_flood.py", &[VIP, "80", "2000", "S"]);
    let (mut junk, _junk_out) = lab.spawn_python("client", "inject.py", &["c0", &gw_mac, CLIENT, VIP, "50"]);
    let out = lab.python("client", "http_burst.py", &[&url, "60", "4"]);
    assert!(flood.wait().unwrap().success() && junk.wait().unwrap().success());
    let failed = out.lines().filter(|l| l.starts_with("error")).count();
    assert_eq!(failed, 0, "real requests failed during the attack:\n{out}\n{}", lab.log_text());
    assert_eq!(out.lines().count(), 60);
    assert!(lab.counter("sessions_half_open") <= 4096, "the flood stays within its share");
    // Counted by reason (exact counts are the unit tests' and fullnat_lab's
    // job). During the flood the frames may all be lost before gatewayd
    // (a full af_packet ring, counted as imissed), so the same frames go
    // again with the link quiet and must raise both counters.
    let malformed = lab.counter("drop_ipv4_malformed");
    let bad_checksum = lab.counter("drop_ipv4_bad_checksum");
    lab.python("client", "inject.py", &["c0", &gw_mac, CLIENT, VIP, "5"]);
    // A request after them through the same ring: they have been read.
    let (body, _) = lab.http_get();
    assert!(body.starts_with("rs"), "{body}");
    assert!(lab.counter("drop_ipv4_malformed") > malformed, "malformed frames are counted");
    assert!(lab.counter("drop_ipv4_bad_checksum") > bad_checksum, "bad checksums are counted");

    // 2. ACK, RST and FIN floods never create a session.
    let before = lab.counter("sessions_created");
    let not_syn = lab.counter("drop_no_session_not_syn");
    for (flags, base) in [("A", "100"), ("R", "110"), ("FA", "120")] {
        lab.python("client", "tcp_flood.py", &[VIP, "80", "1000", flags, base]);
    }
    assert_eq!(lab.counter("sessions_created"), before, "a non-SYN created a session");
    assert!(lab.counter("drop_no_session_not_syn") > not_syn);

    // 3. Past the half-open cap: counted, and an established connection lives on.
    let go = std::env::temp_dir().join("gwe-hostile-go");
    let _ = std::fs::remove_file(&go);
    let (mut held, mut held_out) =
        lab.spawn_python("client", "held_get.py", &[VIP, "80", go.to_str().unwrap()]);
    let mut line = String::new();
    held_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "open");
    // Batches of 2000 until the cap is hit (a burst may overflow the
    // af_packet ring on a busy machine; those packets never reach gatewayd).
    for batch in 0..10 {
        let base = (130 + batch * 10).to_string();
        lab.python("client", "tcp_flood.py", &[VIP, "80", "2000", "S", &base]);
        if lab.counter("drop_half_open_limit") > 0 {
            break;
        }
    }
    assert!(lab.counter("drop_half_open_limit") > 0, "the cap was reached and counted");
    assert!(lab.counter("sessions_half_open") <= 4096);
    std::fs::write(&go, b"go").unwrap();
    line.clear();
    held_out.read_line(&mut line).unwrap();
    assert!(held.wait().unwrap().success());
    assert_eq!(line.trim(), "HTTP/1.0 200 OK", "the established connection was disturbed");
    let _ = std::fs::remove_file(&go);
    // The daemon still answers and has its rules.
    assert!(lab.listing().contains("TCP  198.18.0.100:80 rr"));
}

/// A UDP flood from spoofed sources to a UDP service whose real servers do
/// not answer it (no listener: their kernels send port unreachable, not a
/// datagram) fills at most the share of the table `half_open_percent`
/// gives such flows: counted past it, the table never full, and new TCP
/// connections (real HTTP requests) still open.
#[test]
fn a_udp_flood_stays_within_its_share_and_tcp_goes_on() {
    let lab = Lab::up_tweaked(&FULLNAT, "hostudp", small_table);
    lab.add_service("-t");
    lab.http();
    // UDP VIP:9 to the real servers' port 9, where nothing listens (the
    // lab's servers answer UDP on their HTTP port).
    let vip = FULLNAT.service(9);
    lab.gwctl_ok(&["-A", "-u", &vip, "-s", "rr"]);
    for (_, rip) in FULLNAT.servers {
        lab.gwctl_ok(&["-a", "-u", &vip, "-r", &format!("{rip}:9"), FULLNAT.forward, "-w", "1"]);
    }
    lab.gwctl_ok(&["--add-laddr", "-z", FULLNAT.laddr.unwrap(), "-u", &vip]);
    let port = "9".to_string();
    // Batches of 2000 until the share is reached (a burst may overflow the
    // af_packet ring on a busy machine; those packets never reach gatewayd).
    for batch in 0..10 {
        let base = (200 + batch * 10).to_string();
        lab.python("client", "tcp_flood.py", &[VIP, &port, "2000", "U", &base]);
        if lab.counter("drop_udp_unreplied_limit") > 0 {
            break;
        }
    }
    assert!(
        lab.counter("drop_udp_unreplied_limit") > 0,
        "the share was reached and counted:\n{}",
        lab.gwctl_ok(&["--counters"])
    );
    assert!(lab.counter("sessions_udp_unreplied") <= 4096, "the flood stays within its share");
    assert_eq!(lab.counter("drop_table_full"), 0, "the table never filled");
    let url = format!("http://{VIP}:{VPORT}/");
    let out = lab.python("client", "http_burst.py", &[&url, "20", "4"]);
    let failed = out.lines().filter(|l| l.starts_with("error")).count();
    assert_eq!(failed, 0, "real requests failed after the UDP flood:\n{out}\n{}", lab.log_text());
    assert_eq!(out.lines().count(), 20);
}
