//! Two workers on ports whose packets the kernel spreads over two queues by
//! its own hash (af_packet qpairs=2, PACKET_FANOUT): every reply must reach
//! the worker that owns its session, in FULLNAT and in NAT, with many
//! concurrent TCP and UDP flows. The hand-off counters show the software
//! path was taken, and the per-worker counters add up to the listing.

mod common;

use common::*;

fn many_flows(lab: &Lab) {
    lab.add_service("-t");
    lab.add_service("-u");
    let url = format!("http://{VIP}:{VPORT}/");
    let out = lab.python("client", "http_burst.py", &[&url, "120", "12"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 120);
    let failed: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error")).collect();
    assert!(
        failed.is_empty(),
        "{} of 120 HTTP requests failed: {:?}\n{}",
        failed.len(),
        failed,
        lab.log_text()
    );
    for server in ["rs1", "rs2"] {
        assert!(lines.iter().any(|l| l.starts_with(server)), "{server} got no request");
    }
    let udp = lab.udp_flows(60);
    assert!(udp.iter().all(|u| u.from == format!("{VIP}:{VPORT}")));

    // The software path was taken, both ways, and nothing was lost on it.
    let out = lab.counter("redirect_out_packets");
    let inn = lab.counter("redirect_in_packets");
    assert!(out > 0, "no packet was handed to another worker");
    assert_eq!(out, inn, "every handed-off packet arrived");
    assert_eq!(lab.counter("drop_redirect_full"), 0);
    // Both workers did work, and the per-worker counters add up to the listing.
    let json = lab.gwctl_ok(&["--counters", "--json"]);
    let workers = json.matches("\"worker\"").count();
    assert_eq!(workers, 2, "two workers expected:\n{json}");
    let stats = lab.stats();
    let conns = stats.service("TCP").conns + stats.service("UDP").conns;
    assert_eq!(conns, 180);
    assert_eq!(lab.counter("sessions_created"), 180, "the TOTAL of the workers' sessions is the listing's");
    eprintln!("hand-offs: {out} packets for 180 flows");
}

#[test]
fn fullnat_with_two_workers_delivers_every_reply_to_its_owner() {
    let lab = Lab::up(&FULLNAT_2W, "mc-fnat");
    many_flows(&lab);
}

#[test]
fn nat_with_two_workers_delivers_every_reply_to_its_owner() {
    let lab = Lab::up(&NAT_2W, "mc-nat");
    many_flows(&lab);
}
