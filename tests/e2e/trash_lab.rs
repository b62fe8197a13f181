//! The trash (issue 12 item 9): HTTP connections held open across
//! `gwctl -d` then `gwctl -a` of their real server, and across `gwctl -C`
//! then `gwctl -R` of what `gwctl -S` saved, all complete with intact
//! bodies. While their server is deleted, `-L` does not list it and new
//! connections go elsewhere; re-added, it is listed with its connections.
//! What a held connection sends meanwhile (a header line) is dropped until
//! the server is back, as IPVS with `expire_nodest_conn = 0` (the default,
//! counted as `drop_dest_unavailable`), then retransmitted and acknowledged;
//! with `[ipvs] nodest_conn = "forward"` it is acknowledged at once through
//! the trash and nothing is dropped. FULLNAT and NAT labs, and FULLNAT with
//! two workers (the steering of a deleted service's packets).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{ChildStdout, Command};

use common::*;

/// Connections held open.
const HELD: usize = 4;

/// (ActiveConn, InActConn) of real server `rip`, `None` if not listed.
fn conns_of(lab: &Lab, rip: &str) -> Option<(u64, u64)> {
    let prefix = format!("-> {}", lab.topo.rs_listed(rip));
    let listing = lab.listing();
    let line = listing.lines().find(|l| l.trim_start().starts_with(&prefix))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    // "  -> RIP:PORT  Forward  Weight ActiveConn InActConn"
    Some((f[4].parse().unwrap(), f[5].parse().unwrap()))
}

/// ActiveConn of both real servers, once the held connections are all
/// ESTABLISHED in the listing (the last ACKs may still be on their way).
fn held_per_server(lab: &Lab) -> [u64; 2] {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let a = lab.topo.servers.map(|(_, rip)| conns_of(lab, rip).map_or(0, |c| c.0));
        if a.iter().sum::<u64>() == HELD as u64 || std::time::Instant::now() > deadline {
            return a;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn expect_line(lab: &Lab, out: &mut BufReader<ChildStdout>, want: &str) {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), want, "held connections:\n{}", lab.diag());
}

/// Waits until `drop_dest_unavailable` exceeds `than` (what the held
/// connections sent while their server was deleted reached the gateway).
fn wait_dropped(lab: &Lab, than: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = lab.counter("drop_dest_unavailable");
        if n > than {
            return n;
        }
        assert!(std::time::Instant::now() < deadline, "nothing was dropped while deleted:\n{}", lab.diag());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One GET: the answering server's name.
fn get(lab: &Lab) -> String {
    let (body, _) = lab.http_get();
    body.split_whitespace().next().unwrap_or("").to_string()
}

fn held_across_delete_re_add_clear_and_restore(topo: &'static Topology, name: &str, nodest: &str) {
    let forward = nodest == "forward";
    let lab = Lab::up_tweaked(topo, name, |c| format!("{c}\n[ipvs]\nnodest_conn = \"{nodest}\"\n"));
    lab.add_service("-t");
    let vip = format!("{VIP}:{VPORT}");
    let go: Vec<String> = (1..=3).map(|k| format!("/tmp/gwe-{name}-go{k}")).collect();
    for g in &go {
        let _ = std::fs::remove_file(g);
    }
    let mut args = vec![VIP.to_string(), VPORT.to_string(), HELD.to_string()];
    args.extend(go.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut held, mut out) = lab.spawn_python("client", "held_gets.py", &args);
    expect_line(&lab, &mut out, "open");
    let per_server = held_per_server(&lab);
    assert_eq!(per_server.iter().sum::<u64>(), HELD as u64, "{}", lab.listing());
    // The server holding the most of them is the one deleted.
    let victim = if per_server[0] >= per_server[1] { 0 } else { 1 };
    let (vname, vrip) = topo.servers[victim];
    let (_, other) = topo.servers[1 - victim];
    let vdest = topo.rs_arg(vrip);

    // -d: not listed, new connections go elsewhere; its connections' data
    // waits (or, "forward", gets through).
    lab.gwctl_ok(&["-d", "-t", &vip, "-r", &vdest]);
    assert_eq!(conns_of(&lab, vrip), None, "a deleted server is not listed:\n{}", lab.listing());
    assert!(conns_of(&lab, other).is_some());
    std::fs::write(&go[0], b"go").unwrap();
    let dropped = if forward {
        expect_line(&lab, &mut out, "step 1");
        0
    } else {
        wait_dropped(&lab, 0)
    };
    for _ in 0..2 {
        assert_ne!(get(&lab), vname, "a new connection went to the deleted server");
    }
    // -a of the same server: listed again with its connections.
    lab.gwctl_ok(&["-a", "-t", &vip, "-r", &vdest, topo.forward, "-w", "1"]);
    assert_eq!(conns_of(&lab, vrip), Some((per_server[victim], 0)), "{}", lab.listing());
    if !forward {
        expect_line(&lab, &mut out, "step 1");
    }

    // -C then -R of what -S saved.
    let saved = lab.gwctl_ok(&["-S", "-n"]);
    lab.gwctl_ok(&["-C"]);
    assert!(!lab.listing().contains("TCP"), "cleared:\n{}", lab.listing());
    std::fs::write(&go[1], b"go").unwrap();
    if forward {
        expect_line(&lab, &mut out, "step 2");
    } else {
        wait_dropped(&lab, dropped);
    }
    lab.restore(&saved);
    if !forward {
        expect_line(&lab, &mut out, "step 2");
    }
    assert_eq!(lab.gwctl_ok(&["-S", "-n"]), saved);
    for (i, (_, rip)) in topo.servers.iter().enumerate() {
        assert_eq!(conns_of(&lab, rip).map(|c| c.0), Some(per_server[i]), "{}", lab.listing());
    }

    // Every held connection completes with its whole body.
    std::fs::write(&go[2], b"go").unwrap();
    expect_line(&lab, &mut out, "step 3");
    let seen_from = topo.laddr.unwrap_or(CLIENT);
    let mut answered = [0u64; 2];
    for _ in 0..HELD {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.get(..2), Some(&["200", "intact"][..]), "{line}\n{}", lab.diag());
        answered[topo.server_index(f[2])] += 1;
        assert!(f[3].starts_with(&format!("{seen_from}:")), "the server saw {}: {line}", f[3]);
    }
    assert!(held.wait().unwrap().success());
    assert_eq!(answered, per_server, "each connection was answered by its own server");
    let dropped = lab.counter("drop_dest_unavailable");
    if forward {
        assert_eq!(dropped, 0, "{}", lab.diag());
    } else {
        assert!(dropped > 0, "the data sent while deleted waited for the server:\n{}", lab.diag());
    }
    for g in &go {
        let _ = std::fs::remove_file(g);
    }
    // The gateway still serves new connections, on both servers.
    let names: Vec<String> = (0..4).map(|_| get(&lab)).collect();
    assert!(names.iter().any(|n| n == "rs1") && names.iter().any(|n| n == "rs2"), "{names:?}");
}

#[test]
fn fullnat_connections_survive_delete_re_add_and_clear_restore() {
    held_across_delete_re_add_clear_and_restore(&FULLNAT, "tr-fnat", "drop");
}

#[test]
fn with_nodest_conn_forward_they_keep_flowing_while_deleted() {
    held_across_delete_re_add_clear_and_restore(&FULLNAT, "tr-fwd", "forward");
}

#[test]
fn nat_connections_survive_delete_re_add_and_clear_restore() {
    held_across_delete_re_add_clear_and_restore(&NAT, "tr-nat", "drop");
}

#[test]
fn two_workers_keep_steering_the_connections_of_a_deleted_service() {
    held_across_delete_re_add_clear_and_restore(&FULLNAT_2W, "tr-2w", "drop");
}

/// gatewayd's process id: the process named gatewayd in the lab's gw namespace.
fn gatewayd_pid(lab: &Lab) -> String {
    let o = run(Command::new("ip").args(["netns", "pids", &lab.ns("gw")]));
    text(&o)
        .split_whitespace()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "gatewayd")
        })
        .unwrap_or_else(|| panic!("no gatewayd in {}", lab.ns("gw")))
        .to_string()
}

/// Polls `gwctl -L -n` until `ok` holds (a reload is applied on the control
/// thread's next tick); panics with the listing after 10 s.
fn wait_listing(lab: &Lab, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let l = lab.listing();
        if ok(&l) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}:\n{l}\n{}", lab.log_text());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_reload_that_drops_then_re_adds_the_service_keeps_its_connections() {
    let rules_path = "/tmp/gwe-tr-hup.rules";
    let vip = format!("{VIP}:{VPORT}");
    let mut rules = format!("-A -t {vip} -s rr\n");
    for (_, rip) in FULLNAT.servers {
        rules += &format!("-a -t {vip} -r {rip}:80 -b -w 1\n");
    }
    rules += &format!("--add-laddr -z {} -t {vip}\n", FULLNAT.laddr.unwrap());
    std::fs::write(rules_path, &rules).unwrap();
    let lab = Lab::up_tweaked(&FULLNAT, "tr-hup", |c| {
        c.replace("[control]\n", &format!("[control]\nrules = \"{rules_path}\"\n"))
    });
    wait_listing(&lab, "the rules file at start", |l| l.contains("TCP"));
    let go: Vec<String> = (1..=2).map(|k| format!("/tmp/gwe-tr-hup-go{k}")).collect();
    for g in &go {
        let _ = std::fs::remove_file(g);
    }
    let (mut held, mut out) =
        lab.spawn_python("client", "held_gets.py", &[VIP, "80", &HELD.to_string(), &go[0], &go[1]]);
    expect_line(&lab, &mut out, "open");
    let per_server = held_per_server(&lab);
    assert_eq!(per_server.iter().sum::<u64>(), HELD as u64, "{}", lab.listing());
    let hup = |lab: &Lab| {
        let o = run(Command::new("kill").args(["-HUP", &gatewayd_pid(lab)]));
        assert!(o.status.success());
    };
    // A reload without the service deletes it; what its connections send
    // waits for it (IPVS's expire_nodest_conn = 0).
    std::fs::write(rules_path, "# nothing\n").unwrap();
    hup(&lab);
    wait_listing(&lab, "a reload without the service", |l| !l.contains("TCP"));
    std::fs::write(&go[0], b"go").unwrap();
    wait_dropped(&lab, 0);
    // A reload with it again takes it back, with its servers' connections.
    std::fs::write(rules_path, &rules).unwrap();
    hup(&lab);
    wait_listing(&lab, "a reload with the service again", |l| l.contains("TCP"));
    for (i, (_, rip)) in FULLNAT.servers.iter().enumerate() {
        assert_eq!(conns_of(&lab, rip).map(|c| c.0), Some(per_server[i]), "{}", lab.listing());
    }
    expect_line(&lab, &mut out, "step 1");
    std::fs::write(&go[1], b"go").unwrap();
    expect_line(&lab, &mut out, "step 2");
    for _ in 0..HELD {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("200 intact rs"), "{line}\n{}", lab.diag());
    }
    assert!(held.wait().unwrap().success());
    assert!(lab.counter("drop_dest_unavailable") > 0, "{}", lab.diag());
    for g in go.iter().map(String::as_str).chain([rules_path]) {
        let _ = std::fs::remove_file(g);
    }
}
