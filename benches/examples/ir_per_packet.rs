//! Instructions per established FULLNAT packet, for `valgrind --tool=callgrind`:
//! a deterministic count that a noisy machine cannot blur (cycles/packet
//! from `benches/run.sh` can vary by tens of percent on a shared VM).
//!
//! `ir_per_packet N [toa|v1|v2|kernel]` opens 1,000 TCP sessions, then runs N client->server
//! and N server->client packets through `Engine::process`. Two runs with
//! different N give the per-packet cost free of the setup:
//! (Ir(2N) - Ir(N)) / (2N). `kernel`: both ports have a kernel interface
//! (the exception path enabled and idle).
//!
//!   cargo build --release -p gw-benches --example ir_per_packet
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/a target/release/examples/ir_per_packet 100000
use gw_benches::*;

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let flows = 1000u32;
    // A second argument: the service's client address (toa, v1, v2).
    let ca = match std::env::args().nth(2).as_deref() {
        Some("toa") => gw_proto::ClientAddr::Toa,
        Some("v1") => gw_proto::ClientAddr::ProxyV1,
        Some("v2") => gw_proto::ClientAddr::ProxyV2,
        _ => gw_proto::ClientAddr::None,
    };
    let kernel = if std::env::args().nth(2).as_deref() == Some("kernel") { vec![0, 1] } else { vec![] };
    let mut engine = fullnat_engine_kernel(4096, Default::default(), 0, ca, kernel);
    let mut to_rs = vec![];
    let mut to_client = vec![];
    for f in 0..flows {
        let (rs, local) = establish(&mut engine, 0, f);
        to_rs.push(tcp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT), Tcp::AckData));
        let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs.0).unwrap()];
        to_client.push(tcp_frame(rs_mac, GW_IN, rs, local, Tcp::AckData));
    }
    let mut buf = Vec::with_capacity(FRAME_LEN);
    let mut ok = 0u32;
    for i in 0..n {
        let k = (i % flows) as usize;
        for (port, frame) in [(0u16, &to_rs[k]), (1, &to_client[k])] {
            buf.clear();
            buf.extend_from_slice(frame);
            ok += forwarded(engine.process(1, port, &mut buf)) as u32;
        }
    }
    assert_eq!(ok, 2 * n, "every packet forwarded");
}
