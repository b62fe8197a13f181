//! Instructions per established FULLNAT packet, for `valgrind --tool=callgrind`:
//! a deterministic count that a noisy machine cannot blur (cycles/packet
//! from `benches/run.sh` can vary by tens of percent on a shared VM).
//!
//! `ir_per_packet N [toa|v1|v2|kernel|udp|steer1|steer2|parsed1|parsed2]...`
//! opens 1,000 TCP sessions, then runs N client->server
//! and N server->client packets through `Engine::process`. Two runs with
//! different N give the per-packet cost free of the setup:
//! (Ir(2N) - Ir(N)) / (2N). `kernel`: both ports have a kernel interface
//! (the exception path enabled and idle). `udp`: UDP sessions instead.
//! The poll loop's paths (issue 14): `steerW` runs each frame through
//! `steer::owner` for W workers (what the poll loop's classify step read
//! before parse-once: owner and flow key, no checksum) and then
//! `Engine::process` (the frame parsed twice); `parsedW` through `steer::classify`
//! and then `Engine::process_parsed` with its record (parsed once). With 2
//! workers classify also computes the owner (the service lookup); the
//! example processes every frame as its owner would.
//!
//!   cargo build --release -p gw-benches --example ir_per_packet
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/a target/release/examples/ir_per_packet 100000
use gw_benches::*;
use gw_core::steer;

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let words: Vec<String> = std::env::args().skip(2).collect();
    let has = |w: &str| words.iter().any(|a| a == w);
    let flows = 1000u32;
    // The service's client address (toa, v1, v2).
    let ca = if has("toa") {
        gw_proto::ClientAddr::Toa
    } else if has("v1") {
        gw_proto::ClientAddr::ProxyV1
    } else if has("v2") {
        gw_proto::ClientAddr::ProxyV2
    } else {
        gw_proto::ClientAddr::None
    };
    let kernel = if has("kernel") { vec![0, 1] } else { vec![] };
    // How frames reach the engine: (workers classify steers for, parsed).
    let path = ["steer1", "steer2", "parsed1", "parsed2"]
        .iter()
        .position(|w| has(w))
        .map(|i| (1 + (i as u32 & 1), i >= 2));
    let udp = has("udp");
    let mut engine = fullnat_engine_kernel(4096, Default::default(), 0, ca, kernel);
    let mut to_rs = vec![];
    let mut to_client = vec![];
    for f in 0..flows {
        let (rs, local) = if udp { open_udp(&mut engine, f) } else { establish(&mut engine, 0, f) };
        let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs.0).unwrap()];
        if udp {
            to_rs.push(udp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT)));
            to_client.push(udp_frame(rs_mac, GW_IN, rs, local));
        } else {
            to_rs.push(tcp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT), Tcp::AckData));
            to_client.push(tcp_frame(rs_mac, GW_IN, rs, local, Tcp::AckData));
        }
    }
    // Each frame's owner among the path's workers, found once.
    let owner = |f: &[u8]| match steer::owner(engine.snapshot(), path.map_or(1, |p| p.0), f) {
        steer::Owner::Worker(w) => w,
        steer::Owner::Here => 0,
    };
    let owners: Vec<[u32; 2]> = to_rs.iter().zip(&to_client).map(|(a, b)| [owner(a), owner(b)]).collect();
    let mut buf = Vec::with_capacity(FRAME_LEN);
    let mut ok = 0u32;
    for i in 0..n {
        let k = (i % flows) as usize;
        for (port, frame) in [(0u16, &to_rs[k]), (1, &to_client[k])] {
            buf.clear();
            buf.extend_from_slice(frame);
            let action = match path {
                None => engine.process(1, port, &mut buf),
                Some((workers, true)) => {
                    // As on the frame's owner (the worker that processes it).
                    let me = owners[k][port as usize];
                    let p = std::hint::black_box(steer::classify(engine.snapshot(), workers, me, &buf));
                    engine.process_parsed(1, port, &mut buf, p.l4.as_ref())
                }
                Some((workers, false)) => {
                    std::hint::black_box(steer::owner(engine.snapshot(), workers, &buf));
                    engine.process(1, port, &mut buf)
                }
            };
            ok += forwarded(action) as u32;
        }
    }
    assert_eq!(ok, 2 * n, "every packet forwarded");
}

/// Opens a UDP session of flow `f`; returns its real-server and local sides.
fn open_udp(engine: &mut gw_core::engine::Engine, f: u32) -> (Endpoint, Endpoint) {
    let mut first = udp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT));
    assert!(forwarded(engine.process(0, 0, &mut first)), "first datagram of flow {f}");
    // The rewritten datagram: LIP:lport -> RIP:rport.
    let ip = &first[L3..];
    let (src, dst) = (<[u8; 4]>::try_from(&ip[12..16]).unwrap(), <[u8; 4]>::try_from(&ip[16..20]).unwrap());
    let port = |o: usize| u16::from_be_bytes([ip[20 + o], ip[21 + o]]);
    ((dst, port(2)), (src, port(0)))
}
