//! Instructions per established packet, for `valgrind --tool=callgrind`:
//! a deterministic count that a noisy machine cannot blur (cycles/packet
//! from `benches/run.sh` can vary by tens of percent on a shared VM).
//!
//! `ir_per_packet N [toa|v1|v2|kernel|udp|fnat66|fnat66-udp|nat64|nat64-udp] [steer1|steer2|parsed1|parsed2|worker]`
//! opens 1,000 sessions, then runs N client->server and N server->client
//! packets through `Engine::process`. Two runs with different N give the
//! per-packet cost free of the setup: (Ir(2N) - Ir(N)) / (2N).
//!
//! - no second argument: FULLNAT TCP (IPv4), the sessions established by
//!   a three-way handshake; `udp`: FULLNAT UDP.
//! - `toa`, `v1`, `v2`: the TCP service hands the client address (`--toa`,
//!   `--proxy-protocol`); `kernel`: both ports have a kernel interface
//!   (the exception path enabled and idle).
//! - `fnat66`, `fnat66-udp` (issue 17): FULLNAT IPv6 -> IPv6, TCP
//!   (established) or UDP, all on the dual-stack port 0.
//! - `nat64`, `nat64-udp`: IPv6 clients, IPv4 servers and local address;
//!   each packet is also translated (`nat64::frame_to_ipv4`/`_ipv6`, as the
//!   worker does for `Action::Nat64To4`/`To6`), since that is part of its
//!   forwarding, in a buffer with headroom ([`Headroom`]) whose prepend and
//!   strip move its start, as an mbuf's do.
//! - the poll loop's paths (issue 14), beside any of the above: `steerW`
//!   runs each frame through `steer::owner` for W workers (what the poll
//!   loop's classify step read before parse-once) and then
//!   `Engine::process` (the frame parsed twice); `parsedW` through
//!   `steer::classify` and then `Engine::process_parsed` with its record
//!   and its lookup's inputs (`Engine::stage`: parsed and hashed once).
//!   With 2 workers classify also computes the owner; the example
//!   processes every frame whatever its owner.
//! - `worker` (issue 14): each frame goes through `Worker::handle` instead,
//!   so the count also holds the worker's output step (the next hop's MAC
//!   from the neighbour table, the MAC writes, the send) and its NAT64
//!   translation. Its I/O layer ([`PoolIo`]) counts what is sent and puts
//!   the buffer back in a free list, as a TX burst and the mempool would;
//!   the neighbours are learnt before the run, as if ARP/ND had answered.
//!
//! The poll loop's own steps around `Worker::handle` (issue 14) are
//! counted by `ir_per_poll`, a separate example (another instantiation of
//! the worker in this binary would change how LLVM inlines it here), which
//! takes this file's setup as a module.
//!
//! Frames are built by etherparse; what the engine chose (real server, local
//! address and port) is read back from the forwarded SYN by etherparse too.
//!
//!   cargo build --release -p gw-benches --example ir_per_packet
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/a target/release/examples/ir_per_packet 100000
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_benches::*;
use gw_core::engine::nat64::Pending;
use gw_core::engine::{Action, Engine};
use gw_core::nat64;
use gw_core::neigh::NeighConfig;
use gw_core::steer;
use gw_core::wire::ethernet::MacAddr;
use gw_core::worker::{Io, Learned, PacketBuf, Worker};
use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec};

/// The IPv6 VIP (any address: the services' own).
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
/// FULLNAT66 real servers and local address, on port 0's 2001:db8::/64.
const RS6: [Ipv6Addr; 2] =
    [Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa1), Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa2)];
const LIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fnat66,
    Nat64,
}

/// Client `f` of the IPv6 runs: 4096 addresses in 2001:db8:c000::/48 (off
/// link, through the default route) times source ports from 10000 up.
fn client6(f: u32) -> (Ipv6Addr, u16) {
    let ip = Ipv6Addr::from(
        u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0xc000, 0, 0, 0, 0, 0)) + u128::from(f & 0xfff) + 1,
    );
    (ip, 10_000u16.wrapping_add((f >> 12) as u16))
}

/// An Ethernet/IPv6 frame `s -> d` (TCP ACK or SYN, or UDP) with 10 bytes of
/// payload: 84 bytes, the IPv4 data frame plus IPv6's 20.
fn frame6(s: (Ipv6Addr, u16), d: (Ipv6Addr, u16), tcp: Option<bool>) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0).ipv6(s.0.octets(), d.0.octets(), 64);
    let mut out = Vec::with_capacity(256);
    match tcp {
        Some(true) => b.tcp(s.1, d.1, 1000, 64000).syn().write(&mut out, &[]),
        Some(false) => b.tcp(s.1, d.1, 1000, 64000).ack(1).write(&mut out, b"0123456789"),
        None => b.udp(s.1, d.1).write(&mut out, &[0x5a; 22]),
    }
    .expect("etherparse writes to a Vec");
    out
}

/// An IPv6 service on [`VIP6`]:[`VPORT`] for `proto`: FULLNAT66 to [`RS6`]
/// with [`LIP6`], or NAT64 to the IPv4 [`RS`] with [`LIP`].
fn engine6(mode: Mode) -> Engine {
    let mut lab =
        LabConfig { sessions: 4096 * 4, seed: 0x5eed_1234_abcd_0001, ..LabConfig::default() }.build();
    for proto in [Protocol::Tcp, Protocol::Udp] {
        let key = ServiceKey { proto, addr: IpAddr::V6(VIP6), port: VPORT };
        lab.ok(Request::AddService { spec: ServiceSpec::new(key, Scheduler::Rr) });
        let (dests, laddr): (Vec<IpAddr>, IpAddr) = match mode {
            Mode::Fnat66 => (RS6.iter().map(|a| (*a).into()).collect(), LIP6.into()),
            Mode::Nat64 => {
                (RS.iter().map(|a| Ipv4Addr::from(*a).into()).collect(), Ipv4Addr::from(LIP).into())
            }
        };
        for rs in dests {
            lab.ok(Request::AddDest {
                service: key,
                dest: DestSpec::new(rs, RPORT, ForwardMode::FullNat, 1),
            });
        }
        lab.ok(Request::AddLaddr { service: key, addr: laddr });
    }
    lab.into_engine()
}

/// A packet buffer with 128 bytes of headroom: `prepend` and `adj` move the
/// start of the data, as DPDK's `rte_pktmbuf_prepend`/`_adj` do (a `Vec`
/// would move the bytes).
pub(crate) struct Headroom {
    buf: [u8; 384],
    start: usize,
    len: usize,
}

impl Headroom {
    const HEADROOM: usize = 128;
    pub(crate) fn new() -> Headroom {
        Headroom { buf: [0; 384], start: Self::HEADROOM, len: 0 }
    }
    /// Resets the buffer to hold `frame` after the headroom.
    pub(crate) fn fill(&mut self, frame: &[u8]) {
        self.start = Self::HEADROOM;
        self.len = frame.len();
        self.buf[self.start..self.start + self.len].copy_from_slice(frame);
    }
}

// Always inline, as `Mbuf`'s accessors are in the worker: a call here
// would be the harness's cost, not the worker's.
impl AsRef<[u8]> for Headroom {
    #[inline(always)]
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl AsMut<[u8]> for Headroom {
    #[inline(always)]
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl PacketBuf for Headroom {
    fn set_len(&mut self, len: usize) -> bool {
        let ok = self.start + len <= self.buf.len();
        if ok {
            self.len = len;
        }
        ok
    }
    fn prepend(&mut self, n: usize) -> bool {
        let ok = n <= self.start;
        if ok {
            self.start -= n;
            self.len += n;
        }
        ok
    }
    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
    fn adj(&mut self, n: usize) -> bool {
        let ok = n <= self.len;
        if ok {
            self.start += n;
            self.len -= n;
        }
        ok
    }
}

/// Runs `frame` through `engine` on `port`, translating it as the worker
/// does for a NAT64 verdict; whether it is forwarded.
fn run(engine: &mut Engine, port: u16, frame: &mut impl PacketBuf) -> bool {
    run_by(engine, port, frame, None)
}

/// [`run`] by one of the poll loop's paths (issue 14): `Some((workers,
/// false))` runs `steer::owner` for `workers` first (what the classify step
/// read before parse-once) and then `Engine::process` (the frame parsed
/// twice); `Some((workers, true))` runs `steer::classify` and hands its
/// record to `Engine::process_parsed` (parsed once).
fn run_by(engine: &mut Engine, port: u16, frame: &mut impl PacketBuf, path: Option<(u32, bool)>) -> bool {
    let action = match path {
        None => engine.process(1, port, frame.as_mut()),
        Some((workers, true)) => {
            let p = std::hint::black_box(steer::classify(engine.snapshot(), workers, 0, frame.as_ref()));
            let s = p.l4.map(|l4| engine.stage(l4));
            engine.process_parsed(1, port, frame.as_mut(), s.as_ref())
        }
        Some((workers, false)) => {
            std::hint::black_box(steer::owner(engine.snapshot(), workers, frame.as_ref()));
            engine.process(1, port, frame.as_mut())
        }
    };
    match action {
        Action::Forward { .. } | Action::Forward6 { .. } => true,
        Action::Nat64To4 { .. } | Action::Nat64To6 { .. } => match engine.pending_nat64() {
            Pending::To4(p) => nat64::frame_to_ipv4(frame, p).is_ok(),
            Pending::To6(p) => nat64::frame_to_ipv6(frame, p).is_ok(),
        },
        _ => false,
    }
}

/// The source and destination (address, port) of a forwarded frame, read
/// by etherparse.
fn ends(frame: &[u8]) -> ((IpAddr, u16), (IpAddr, u16)) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses the forwarded frame");
    let (s, d): (IpAddr, IpAddr) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
        Some(NetSlice::Ipv6(ip)) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
        _ => panic!("not IP"),
    };
    let (sp, dp) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        _ => panic!("not TCP/UDP"),
    };
    ((s, sp), (d, dp))
}

/// The reply frame of the real server `rs` to the local `local` (either
/// family), a TCP ACK with data (SYN+ACK if `synack`) or UDP.
fn reply(rs: (IpAddr, u16), local: (IpAddr, u16), tcp: bool, synack: bool) -> (u16, Vec<u8>) {
    let mut out = Vec::with_capacity(256);
    let b = match (rs.0, local.0) {
        (IpAddr::V6(r), IpAddr::V6(l)) => {
            PacketBuilder::ethernet2([2, 0xaa, 0, 0, 0, 0xa1], GW_OUT.0).ipv6(r.octets(), l.octets(), 64)
        }
        (IpAddr::V4(r), IpAddr::V4(l)) => {
            let mac = RS_MAC[RS.iter().position(|a| *a == r.octets()).expect("a configured real server")];
            PacketBuilder::ethernet2(mac, GW_IN.0).ipv4(r.octets(), l.octets(), 64)
        }
        _ => panic!("mixed families"),
    };
    let port = if rs.0.is_ipv4() { 1 } else { 0 };
    match (tcp, synack) {
        (true, true) => b.tcp(rs.1, local.1, 5000, 64000).syn().ack(1001).write(&mut out, &[]),
        (true, false) => b.tcp(rs.1, local.1, 5001, 64000).ack(1001).write(&mut out, b"0123456789"),
        _ => b.udp(rs.1, local.1).write(&mut out, &[0x5a; 22]),
    }
    .expect("etherparse writes to a Vec");
    (port, out)
}

/// The IPv6 runs' frames: per flow, the client's and the server's, the
/// sessions opened (TCP: established by a handshake).
fn setup6(engine: &mut Engine, mode: Mode, tcp: bool, flows: u32) -> Vec<[(u16, Vec<u8>); 2]> {
    let mut v = vec![];
    for f in 0..flows {
        let c = client6(f);
        let mut first = frame6(c, (VIP6, VPORT), tcp.then_some(true));
        assert!(run(engine, 0, &mut first), "first packet of flow {f}");
        // The forwarded packet goes local -> rs: the reply rs -> local.
        let (local, rs) = ends(&first);
        assert_eq!(local.0.is_ipv4(), mode == Mode::Nat64, "the local address's family");
        if tcp {
            let (port, mut synack) = reply(rs, local, true, true);
            assert!(run(engine, port, &mut synack), "SYN+ACK of flow {f}");
            let mut ack = frame6(c, (VIP6, VPORT), Some(false));
            assert!(run(engine, 0, &mut ack), "ACK of flow {f}");
        }
        let to_rs = (0, frame6(c, (VIP6, VPORT), tcp.then_some(false)));
        v.push([to_rs, reply(rs, local, tcp, false)]);
    }
    v
}

/// The `worker` run's buffer: a [`Headroom`] from [`PoolIo`]'s free list
/// (moved by pointer, as an mbuf is).
pub(crate) struct Pooled(pub(crate) Box<Headroom>);

impl AsRef<[u8]> for Pooled {
    #[inline(always)]
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl AsMut<[u8]> for Pooled {
    #[inline(always)]
    fn as_mut(&mut self) -> &mut [u8] {
        (*self.0).as_mut()
    }
}

impl PacketBuf for Pooled {
    fn set_len(&mut self, len: usize) -> bool {
        self.0.set_len(len)
    }
    fn prepend(&mut self, n: usize) -> bool {
        self.0.prepend(n)
    }
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }
    fn adj(&mut self, n: usize) -> bool {
        self.0.adj(n)
    }
}

/// The `worker` run's I/O layer: buffers from a free list (a mempool's
/// cache), put back when sent (the NIC's TX completion), and counted.
pub(crate) struct PoolIo {
    pub(crate) free: Vec<Pooled>,
    pub(crate) sent: u32,
}

impl Io<Pooled> for PoolIo {
    fn alloc(&mut self) -> Option<Pooled> {
        self.free.pop()
    }
    #[inline(always)]
    fn send(&mut self, _port: u16, pkt: Pooled) {
        self.sent += 1;
        self.free.push(pkt);
    }
}

/// `engine` in a [`Worker`] whose neighbours are every next hop the frames
/// are forwarded to (found by one pass of each frame through the engine,
/// learnt with a MAC of their own), and its I/O layer.
pub(crate) fn worker_for(mut engine: Engine, frames: &[[(u16, Vec<u8>); 2]]) -> (Worker<Pooled>, PoolIo) {
    let mut hops = vec![];
    let mut buf = Headroom::new();
    for (port, frame) in frames.iter().flatten() {
        buf.fill(frame);
        let hop: (u16, IpAddr) = match engine.process(1, *port, buf.as_mut()) {
            Action::Forward { port, next_hop } | Action::Nat64To4 { port, next_hop } => {
                (port, Ipv4Addr::from(next_hop).into())
            }
            Action::Forward6 { port, next_hop } | Action::Nat64To6 { port, next_hop } => {
                (port, Ipv6Addr::from(next_hop).into())
            }
            _ => panic!("frame not forwarded"),
        };
        if !hops.contains(&hop) {
            hops.push(hop);
        }
    }
    let mut worker = Worker::new(engine, NeighConfig::default());
    let mut io = PoolIo { free: (0..64).map(|_| Pooled(Box::new(Headroom::new()))).collect(), sent: 0 };
    for (i, (port, ip)) in hops.into_iter().enumerate() {
        let mac = MacAddr([2, 0xbb, 0, 0, 0, i as u8]);
        worker.learn(1, Learned { port, ip, mac, create: true, replace: true }, &mut io);
    }
    (worker, io)
}

/// The `worker` run: the worker of [`worker_for`], then `n` rounds of all
/// frames through [`Worker::handle`]; how many were sent.
fn run_worker(engine: Engine, frames: &[[(u16, Vec<u8>); 2]], n: u32) -> u32 {
    let (mut worker, mut io) = worker_for(engine, frames);
    let flows = frames.len() as u32;
    for i in 0..n {
        for (port, frame) in &frames[(i % flows) as usize] {
            let mut b = io.alloc().expect("buffers come back when sent");
            b.0.fill(frame);
            worker.handle(1, *port, b, &mut io);
        }
    }
    io.sent
}

/// Per flow, the client's frame and the server's reply, each with the
/// port it arrives on.
pub(crate) type Frames = Vec<[(u16, Vec<u8>); 2]>;

/// The engine and the frames of the run `what` (the example's second
/// word: `udp`, `toa`, `fnat66`, ..., or nothing for FULLNAT TCP), with
/// `flows` sessions opened: per flow, the client's frame and the server's
/// reply, each with the port it arrives on.
pub(crate) fn setup(what: &str, flows: u32) -> (Engine, Frames) {
    match what {
        "fnat66" | "fnat66-udp" | "nat64" | "nat64-udp" => {
            let mode = if what.starts_with("fnat66") { Mode::Fnat66 } else { Mode::Nat64 };
            let tcp = !what.ends_with("-udp");
            let mut engine = engine6(mode);
            let frames = setup6(&mut engine, mode, tcp, flows);
            (engine, frames)
        }
        _ => {
            // A second argument: the service's client address (toa, v1, v2).
            let ca = match what {
                "toa" => gw_proto::ClientAddr::Toa,
                "v1" => gw_proto::ClientAddr::ProxyV1,
                "v2" => gw_proto::ClientAddr::ProxyV2,
                _ => gw_proto::ClientAddr::None,
            };
            let kernel = if what == "kernel" { vec![0, 1] } else { vec![] };
            let mut engine = fullnat_engine_kernel(4096, Default::default(), 0, ca, kernel);
            let mut frames = vec![];
            for f in 0..flows {
                if what == "udp" {
                    let mut first = udp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT));
                    assert!(run(&mut engine, 0, &mut first), "first datagram of flow {f}");
                    let ((l, lport), (r, rport)) = ends(&first);
                    frames.push([
                        (0, udp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT))),
                        reply((r, rport), (l, lport), false, false),
                    ]);
                    continue;
                }
                let (rs, local) = establish(&mut engine, 0, f);
                let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs.0).unwrap()];
                frames.push([
                    (0, tcp_frame(ROUTER_MAC, GW_OUT, client(f), (VIP, VPORT), Tcp::AckData)),
                    (1, tcp_frame(rs_mac, GW_IN, rs, local, Tcp::AckData)),
                ]);
            }
            (engine, frames)
        }
    }
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let flows = 1000u32;
    let words: Vec<String> = std::env::args().skip(2).collect();
    // How frames reach the engine: (workers classify steers for, parsed).
    let paths = ["steer1", "steer2", "parsed1", "parsed2"];
    let path = paths.iter().position(|w| words.iter().any(|a| a == w)).map(|i| (1 + (i as u32 & 1), i >= 2));
    let what =
        words.iter().find(|w| !paths.contains(&w.as_str()) && *w != "worker").cloned().unwrap_or_default();
    let (mut engine, frames) = setup(&what, flows);
    if words.iter().any(|w| w == "worker") {
        assert_eq!(run_worker(engine, &frames, n), 2 * n, "every packet sent");
        return;
    }
    let mut buf = Headroom::new();
    let mut ok = 0u32;
    for i in 0..n {
        for (port, frame) in &frames[(i % flows) as usize] {
            buf.fill(frame);
            ok += run_by(&mut engine, *port, &mut buf, path) as u32;
        }
    }
    assert_eq!(ok, 2 * n, "every packet forwarded");
}
