//! A neighbour-table flood (issue 10), FULLNAT lab with a 32-entry table:
//! ARP requests from ~1100 made-up senders outside every connected subnet
//! are dropped unlearnt (`drop_arp_off_subnet`), and a flood of made-up
//! senders inside the client subnet only evicts its own stale entries
//! (`neigh_evicted`); a client address never seen before is served during
//! and right after the floods.

mod common;

use common::*;

fn small_neighbour_table(c: String) -> String {
    format!("{c}\n[neighbours]\ncapacity = 32\n")
}

/// One GET from the client namespace's address `src`, which the gateway has
/// never seen: it must resolve `src` to answer.
fn get_from(lab: &Lab, src: &str) -> String {
    lab.exec("client", &["ip", "addr", "add", &format!("{src}/24"), "dev", "c0"]);
    let url = format!("http://{VIP}:{VPORT}/");
    let o = lab.exec("client", &["curl", "-s", "-S", "-m", "5", "--interface", src, &url]);
    assert!(
        o.status.success(),
        "GET from {src} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        lab.diag()
    );
    text(&o)
}

#[test]
fn a_new_client_is_served_during_and_after_a_neighbour_flood() {
    let lab = Lab::up_tweaked(&FULLNAT, "neighflood", small_neighbour_table);
    lab.add_service("-t");
    lab.http();
    // Senders on no connected subnet: never learnt.
    let (mut off, _o) = lab.spawn_python("client", "arp_flood.py", &["c0", "198.18.0.1", "1100", "10.0"]);
    let body = get_from(&lab, "198.18.0.61");
    assert!(body.starts_with("rs"), "{body}");
    assert!(off.wait().unwrap().success());
    // Every request is refused by name, or lost at the receive ring (a
    // worker starved of CPU) and counted there: none is learnt.
    let refused = lab.counter("drop_arp_off_subnet");
    let lost = lab.port_stat("outside", "imissed");
    assert!(refused > 0 && refused + lost >= 1100, "refused {refused}, lost {lost}\n{}", lab.diag());
    assert!(get_from(&lab, "198.18.0.62").starts_with("rs"));
    // Senders inside the client subnet: learnt, then evicted stalest first.
    lab.python("client", "arp_flood.py", &["c0", "198.18.0.1", "1100", "198.18"]);
    assert!(lab.counter("neigh_evicted") > 0, "{}", lab.diag());
    assert!(get_from(&lab, "198.18.0.63").starts_with("rs"));
    lab.http();
}
