//! Port statistics (issue 11): frames lost before a worker saw them have a
//! number. The FULLNAT lab with a tiny af_packet receive ring (32 frames)
//! and a worker that sleeps 10 ms when idle: UDP bursts from the client
//! overflow the ring while the worker sleeps. The kernel drops what does not
//! fit and counts it on the packet socket (`PACKET_STATISTICS`); DPDK
//! 22.11's af_packet driver never reads it, so gatewayd does, and
//! `gwctl --counters` shows it as the port's `imissed`.

mod common;

use std::time::{Duration, Instant};

use common::{Lab, FULLNAT, VIP};

fn port_stat(lab: &Lab, port: &str, name: &str) -> u64 {
    lab.port_stat(port, name)
}

#[test]
fn a_full_receive_ring_is_counted_as_imissed_and_shown_by_gwctl() {
    let lab = Lab::up_tweaked(&FULLNAT, "pm-ring", |c| {
        c.replace("iface=gw0\"", "iface=gw0,framecnt=32\"")
            .replace("idle_sleep_us = 200", "idle_sleep_us = 10000")
    });
    lab.add_service("-u");
    // The table shows a port section, named as configured.
    let table = lab.gwctl_ok(&["--counters"]);
    assert!(table.contains("\nPORT "), "no port section in\n{table}");
    let header = table.lines().find(|l| l.starts_with("PORT ")).unwrap();
    assert!(header.contains("outside") && header.contains("inside"), "{header}");
    for stat in ["ipackets", "opackets", "imissed", "ierrors", "oerrors", "rx_nombuf", "q0_ipackets"] {
        assert!(table.lines().any(|l| l.split_whitespace().next() == Some(stat)), "no {stat} in\n{table}");
    }
    assert_eq!(port_stat(&lab, "outside", "imissed"), 0, "nothing lost yet");

    let sent: u64 =
        lab.python("client", "udp_blast.py", &[VIP, "80", "3000", "5", "200"]).trim().parse().unwrap();
    assert_eq!(sent, 15_000);
    // The control plane reads the ports every second: wait for a reading
    // taken after the blast (received + missed stops growing).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (u64::MAX, u64::MAX);
    loop {
        std::thread::sleep(Duration::from_millis(1200));
        let now = (port_stat(&lab, "outside", "ipackets"), port_stat(&lab, "outside", "imissed"));
        if now == last || Instant::now() > deadline {
            break;
        }
        last = now;
    }
    let (received, missed) = last;
    eprintln!("sent {sent}, outside: ipackets {received}, imissed {missed}");
    assert!(missed > 0, "the ring overflowed, yet imissed is 0 (received {received} of {sent})");
    // Every datagram is either received or counted missing (plus the few
    // ARP frames received).
    assert!(received + missed >= sent, "{received} + {missed} < {sent}: frames lost without a count");
    assert!(received + missed <= sent + 10, "{received} + {missed} > {sent}: counted twice");
    // What the port received is what the worker counted.
    assert_eq!(lab.counter("rx_packets"), received + port_stat(&lab, "inside", "ipackets"));
}

/// `workers.record_burst_cycles` (issue 14): the worker counts its bursts'
/// cycles as testpmd's `--record-core-cycles` does, a part of its busy
/// cycles; without the setting it counts none.
#[test]
fn burst_cycles_are_counted_only_when_asked_and_within_busy_cycles() {
    // 1,000 datagrams, then until the worker counted them received.
    let blast = |lab: &Lab| -> u64 {
        lab.add_service("-u");
        let sent =
            lab.python("client", "udp_blast.py", &[VIP, "80", "200", "5", "200"]).trim().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while lab.counter("rx_packets") < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        sent
    };
    let lab = Lab::up_tweaked(&FULLNAT, "pm-burst", |c| {
        c.replace("idle_sleep_us = 200", "idle_sleep_us = 200\nrecord_burst_cycles = true")
    });
    assert_eq!(blast(&lab), 1_000);
    let (bursts, busy, rx) =
        (lab.counter("burst_cycles"), lab.counter("busy_cycles"), lab.counter("rx_packets"));
    eprintln!("burst_cycles {bursts}, busy_cycles {busy}, rx_packets {rx}");
    assert!(rx >= 1_000, "rx_packets {rx}");
    assert!(bursts > 0 && bursts <= busy, "burst_cycles {bursts} against busy_cycles {busy}");
    drop(lab);
    let lab = Lab::up_tweaked(&FULLNAT, "pm-noburst", |c| c.to_string());
    assert_eq!(blast(&lab), 1_000);
    assert!(lab.counter("busy_cycles") > 0);
    assert_eq!(lab.counter("burst_cycles"), 0, "counted without workers.record_burst_cycles");
}
