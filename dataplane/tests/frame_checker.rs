//! The fuzz target's checker of emitted frames (`testing::check_sent`)
//! accepts what the gateway really sends and refuses each kind of damage,
//! so a clean fuzz run means something; `fix_checksums` makes frames pass.

mod common;

use common::*;
use gw_proto::Scheduler;

fn refuses(port: u16, frame: &[u8], what: &str) {
    let r = std::panic::catch_unwind(|| check_sent(port, frame, true));
    assert!(r.is_err(), "the checker took a frame with {what}");
}

/// A FULLNAT TCP frame as the gateway sends it to a real server on port 1.
fn forwarded() -> Vec<u8> {
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    lab.learn_neighbours();
    let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 1);
    out.into_iter().next().unwrap().1
}

#[test]
fn what_the_gateway_sends_passes() {
    check_sent(1, &forwarded(), true);
    let mut lab = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
    for (port, f) in lab.rx(0, arp_request(CLIENT_MAC, CLIENT, VIP)) {
        check_sent(port, &f, true);
    }
}

#[test]
fn each_kind_of_damage_is_caught() {
    let good = forwarded();
    refuses(0, &good, "the other port's source MAC");
    let mut f = good.clone();
    f[12] = 0x86;
    refuses(1, &f, "an unknown EtherType");
    let mut f = good.clone();
    f[14 + 10] ^= 1;
    refuses(1, &f, "a wrong IPv4 checksum");
    let mut f = good.clone();
    f[14 + 2] = 0x05;
    refuses(1, &f, "a total length beyond the frame");
    let mut f = good.clone();
    f[14 + 20 + 16] ^= 1;
    refuses(1, &f, "a wrong TCP checksum");
    check_sent(1, &f, false);
    let mut f = good.clone();
    f[14 + 8] = 0;
    fix_checksums(&mut f);
    refuses(1, &f, "TTL 0");
}

#[test]
fn fixing_checksums_makes_damaged_frames_whole() {
    let good = forwarded();
    let mut f = good.clone();
    f[14 + 10] ^= 0x55;
    f[14 + 20 + 16] ^= 0x55;
    fix_checksums(&mut f);
    assert_eq!(f, good);
    let mut u = udp(CLIENT_MAC, GW_OUT, (CLIENT, 5000), (VIP, 80));
    let sum = u[14 + 20 + 6..14 + 20 + 8].to_vec();
    u[14 + 20 + 6] ^= 0x0f;
    fix_checksums(&mut u);
    assert_eq!(u[14 + 20 + 6..14 + 20 + 8], sum[..]);
}
