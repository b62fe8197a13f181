//! Parse once (issue 14): a frame the poll loop's classify step parsed
//! ([`gw_core::steer::classify`], then `Worker::handle_parsed`) meets the
//! same fate as through the full ladder (`Worker::handle`): the same frames
//! out, byte for byte, and the same counters, for good traffic and for
//! every kind of header fault the record must not hide. Frames are built
//! with `etherparse`.

mod common;

use common::*;
use gw_core::counters::Drop;
use gw_core::engine::L4Info;
use gw_core::steer::classify;
use gw_proto::Scheduler;

/// Both labs, fed the same frames, one through each path.
fn labs() -> (Lab, Lab) {
    let lab = || {
        let mut l = Lab::new(64, (1024, 65535)).with_services(Scheduler::Rr);
        l.learn_neighbours();
        l
    };
    (lab(), lab())
}

fn full(lab: &mut Lab, port: u16, f: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
    lab.worker.handle(lab.now, port, f, &mut lab.io);
    std::mem::take(&mut lab.io.sent)
}

#[test]
fn a_parsed_frame_meets_the_same_fate_as_a_full_parse() {
    let (mut parsed, mut ladder) = labs();
    let syn = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), true, false);
    let data = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40001), (VIP, 80));
    let mut bad_sum = data.clone();
    bad_sum[14 + 10] ^= 0x55;
    let mut zero_port = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40002), (VIP, 80));
    zero_port[14 + 20..14 + 22].copy_from_slice(&[0, 0]);
    let mut short_tcp = tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40003), (VIP, 80), false, true);
    short_tcp[14 + 20 + 12] = 0xf0; // data offset 60 > the segment
    let mut frag = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40004), (VIP, 80));
    frag[14 + 6] = 0x20; // MF
    let other_mac = udp(CLIENT_MAC, GW_IN, (CLIENT, 40005), (VIP, 80));
    let bad_src = udp(CLIENT_MAC, GW_OUT, ([127, 0, 0, 1], 40006), (VIP, 80));
    let spoofed = udp(CLIENT_MAC, GW_OUT, (RS[0], 40007), (VIP, 80));
    let no_service = udp(CLIENT_MAC, GW_OUT, (CLIENT, 40008), (VIP, 81));
    let frames = [
        (0, syn.clone()),
        (0, data.clone()),
        (0, data.clone()),
        (0, bad_sum),
        (0, zero_port),
        (0, short_tcp),
        (0, frag),
        (0, other_mac),
        (0, bad_src),
        (0, spoofed),
        (0, no_service),
        (0, syn[..40].to_vec()),
        (0, syn),
    ];
    for (i, (port, f)) in frames.into_iter().enumerate() {
        let record = classify(parsed.worker.engine.snapshot(), 1, 0, &f).l4;
        // The record is the engine's own check: present only for a frame
        // that passes every stateless check.
        assert_eq!(record, L4Info::check(&f), "frame {i}");
        let a = parsed.rx(port, f.clone());
        let b = full(&mut ladder, port, f);
        assert_eq!(a, b, "frame {i}: the same frames out");
        assert_eq!(parsed.counters.snapshot(), ladder.counters.snapshot(), "frame {i}: the same counters");
    }
    // The faults were counted as the ladder counts them, not hidden.
    for why in
        [Drop::Ipv4BadChecksum, Drop::L4Malformed, Drop::NotOurMac, Drop::BadSourceAddr, Drop::ReversePath]
    {
        assert!(parsed.counters.drop_count(why) > 0, "{why:?}");
    }
}
