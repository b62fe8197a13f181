//! What a flood SYN costs a SYNPROXY worker answered and shed
//! (`gw_core::synproxy::shed`), in instructions, under callgrind (a
//! measurement, not a test):
//!
//!   cargo build --release -p gw-benches --example syn_shed_cost
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.MODE \
//!       target/release/examples/syn_shed_cost MODE [N]
//!
//! MODE `none` builds N SYN frames from distinct clients and stops (the
//! baseline); `answer` runs each through the engine as a worker does for a
//! SYN it processes (the engine's full ladder, the cookie, the SYN-ACK
//! written, its options inserted); `shed` passes them in bursts of 32
//! through an overloaded worker's `Shed` (the quota down to 1: 31 of
//! each 32 shed, the one admitted not processed). (Total Ir − `none`'s) / N
//! is the cost per SYN. MODE `pass` sends ACK segments with data (an
//! established flow's) the same way, none shed: what the check costs the
//! frames it lets through; its baseline is `none N ack`. The mbuf receive and free, which a shed SYN still
//! costs in gatewayd, are not in either figure.
use std::hint::black_box;

use gw_benches::*;
use gw_core::client_addr;
use gw_core::engine::{Action, Engine};
use gw_core::synproxy::shed::Shed;
use gw_proto::{ForwardMode, Scheduler};

fn engine() -> Engine {
    let default = gw_core::route::Route { net: 0, prefix: 0, via: Some(u32::from_be_bytes(ROUTER)), port: 0 };
    let mut lab = LabConfig {
        sessions: 1 << 16,
        lports: (1024, 65535),
        routes: vec![default],
        seed: 0x5eed_1234_abcd_0001,
        start_ms: 0,
        ..LabConfig::default()
    }
    .build()
    .with_mode(Scheduler::Rr, ForwardMode::FullNat, RPORT);
    let mut spec =
        gw_proto::ServiceSpec::new(dataplane::testing::key(gw_proto::Protocol::Tcp), Scheduler::Rr);
    spec.synproxy = true;
    lab.ok(gw_proto::Request::EditService { spec });
    lab.into_engine()
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "shed".into());
    let n: u32 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    // `pass`, or a third argument `ack`: ACK segments with data instead of SYNs.
    let ack = mode == "pass" || std::env::args().nth(3).is_some_and(|a| a == "ack");
    let kind = if ack { Tcp::AckData } else { Tcp::Syn };
    let mut frames: Vec<Vec<u8>> =
        (0..n).map(|f| tcp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT), kind)).collect();
    let mut e = engine();
    match mode.as_str() {
        "none" => {}
        "answer" => {
            let mut answered = 0u32;
            for f in &mut frames {
                if let Action::GrowReply { .. } = e.process(1, 0, f) {
                    client_addr::apply(f, e.pending_insert()).expect("insert");
                    answered += 1;
                }
            }
            assert_eq!(answered, n, "every SYN answered with a cookie");
        }
        "shed" => {
            let mut shed = Shed::default();
            let (mut admitted, mut dropped) = (0usize, 0u64);
            for _ in 0..8 {
                shed.rx_burst(1, true);
            }
            for burst in frames.chunks(32) {
                shed.rx_burst(1, burst.len() == 32);
                admitted += black_box(shed.admitted(burst.iter(), &mut dropped).count());
            }
            assert_eq!(admitted as u64 + dropped, u64::from(n));
            println!("shed {dropped} of {n} SYNs (quota {})", shed.quota());
        }
        "pass" => {
            // What shedding costs the frames it lets through (issue 14):
            // ACK segments (an established flow's) in full bursts through
            // an overloaded worker's check; none is shed. Baseline: `none
            // N ack`.
            let mut shed = Shed::default();
            let (mut admitted, mut dropped) = (0usize, 0u64);
            for _ in 0..8 {
                shed.rx_burst(1, true);
            }
            for burst in frames.chunks(32) {
                shed.rx_burst(1, burst.len() == 32);
                admitted += black_box(shed.admitted(burst.iter(), &mut dropped).count());
            }
            assert_eq!((admitted, dropped), (n as usize, 0));
        }
        m => panic!("mode {m}: none, answer, shed or pass"),
    }
    black_box(&frames);
}
