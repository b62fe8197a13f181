//! Shared helpers for the packet-core benchmarks: frame builders (with the
//! independent `etherparse` crate), a FULLNAT engine from the shared lab
//! (`dataplane::testing`, configured through the same control-plane code
//! gatewayd runs), synthetic sessions and a small deterministic PRNG.
//!
//! Invariants the benchmarks rely on:
//! - Every frame built here is a valid Ethernet/IPv4 frame with correct IPv4
//!   and L4 checksums, [`FRAME_LEN`] bytes long (data frames) or padded to the
//!   Ethernet minimum of 60 bytes (SYNs), as it would sit in an mbuf.
//! - Flow `f` of [`client`] has a distinct (address, port) for every
//!   `f < 2^24`, so frames pre-generated for many flows never collide.
//! - [`synthetic_session`] gives distinct client-side *and* reply-side keys
//!   for every `i < 2^24`.

use etherparse::PacketBuilder;
use gw_core::route::Route;
use gw_core::session::{FlowKey, Session};
use gw_core::tcp_state::{State, Timeouts};
use gw_core::wire::ethernet::MacAddr;
use gw_core::wire::ipv4::Protocol as IpProto;
use gw_core::worker::Io;
use gw_proto::{ForwardMode, Scheduler};

pub use dataplane::testing::{
    inspect, Endpoint, LabConfig, GW_IN, GW_OUT, LIP, ROUTER, ROUTER_MAC, RS, RS_MAC, VIP, VPORT,
};
use gw_core::engine::Engine;

/// Length of the data frames the benchmarks feed: the classic "64-byte
/// packet" (Ethernet 14 + IPv4 20 + TCP 20 + 10 bytes payload, without FCS).
pub const FRAME_LEN: usize = 64;
/// Ethernet minimum frame length without FCS (IEEE 802.3 clause 3.2.8).
pub const MIN_FRAME_LEN: usize = 60;
/// Offset of the IPv4 header in an untagged Ethernet frame.
pub const L3: usize = 14;

/// Real-server port.
pub const RPORT: u16 = 8080;

/// Payload of data frames, sized so a TCP frame is [`FRAME_LEN`] bytes.
const PAYLOAD: [u8; 10] = *b"0123456789";

/// Client address and port of flow `f`: 4096 addresses in 100.64.0.0/10
/// (routed through [`ROUTER`]) times source ports from 10000 up.
pub fn client(f: u32) -> Endpoint {
    let ip = 0x6440_0001u32 + (f & 0xfff);
    (ip.to_be_bytes(), 10_000u16.wrapping_add((f >> 12) as u16))
}

/// TCP flags of a built frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tcp {
    /// A bare SYN, no payload, padded to [`MIN_FRAME_LEN`].
    Syn,
    /// SYN+ACK, no payload, padded to [`MIN_FRAME_LEN`].
    SynAck,
    /// ACK with 10 bytes of data: a [`FRAME_LEN`]-byte frame.
    AckData,
}

/// An Ethernet/IPv4/TCP frame `s -> d` with TTL 64.
pub fn tcp_frame(
    src_mac: [u8; 6],
    dst_mac: MacAddr,
    s: ([u8; 4], u16),
    d: ([u8; 4], u16),
    kind: Tcp,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac.0).ipv4(s.0, d.0, 64).tcp(s.1, d.1, 1000, 64000);
    let mut out = Vec::with_capacity(FRAME_LEN);
    match kind {
        Tcp::Syn => b.syn().write(&mut out, &[]),
        Tcp::SynAck => b.syn().ack(1).write(&mut out, &[]),
        Tcp::AckData => b.ack(1).write(&mut out, &PAYLOAD),
    }
    .expect("etherparse writes to a Vec");
    out.resize(out.len().max(MIN_FRAME_LEN), 0);
    out
}

/// An Ethernet/IPv4/UDP frame `s -> d` with TTL 64, [`FRAME_LEN`] bytes.
pub fn udp_frame(src_mac: [u8; 6], dst_mac: MacAddr, s: Endpoint, d: Endpoint) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_LEN);
    // 14 + 20 + 8 + 22 = 64.
    PacketBuilder::ethernet2(src_mac, dst_mac.0)
        .ipv4(s.0, d.0, 64)
        .udp(s.1, d.1)
        .write(&mut out, &[0x5a; 22])
        .expect("etherparse writes to a Vec");
    out
}

/// An ARP request from `mac`/`ip` for `target`, padded to [`MIN_FRAME_LEN`].
pub fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = dataplane::testing::arp_request(mac, ip, target);
    f.resize(MIN_FRAME_LEN, 0);
    f
}

/// An engine with a TCP and a UDP service on [`VIP`]:[`VPORT`], each with the
/// two FULLNAT real servers [`RS`]:[`RPORT`] (round robin) and local address
/// [`LIP`], configured through the control plane (the shared lab's
/// `with_mode`), behind a default route via [`ROUTER`]. The clock starts at
/// `now_ms`.
pub fn fullnat_engine(sessions: usize, timeouts: Timeouts, now_ms: u64) -> Engine {
    fullnat_engine_with(sessions, timeouts, now_ms, gw_proto::ClientAddr::None)
}

/// [`fullnat_engine`] whose TCP service hands the client address as `ca`
/// (`--toa`, `--proxy-protocol`).
pub fn fullnat_engine_with(
    sessions: usize,
    timeouts: Timeouts,
    now_ms: u64,
    ca: gw_proto::ClientAddr,
) -> Engine {
    fullnat_engine_kernel(sessions, timeouts, now_ms, ca, vec![])
}

/// [`fullnat_engine_with`] whose ports `kernel` have a kernel interface
/// (the exception path, `[[port]] kernel`).
pub fn fullnat_engine_kernel(
    sessions: usize,
    timeouts: Timeouts,
    now_ms: u64,
    ca: gw_proto::ClientAddr,
    kernel: Vec<u16>,
) -> Engine {
    let default = Route { net: 0, prefix: 0, via: Some(u32::from_be_bytes(ROUTER)), port: 0 };
    let lab = LabConfig {
        sessions,
        lports: (1024, 65535),
        routes: vec![default],
        seed: 0x5eed_1234_abcd_0001,
        timeouts,
        start_ms: now_ms,
        kernel,
        ..LabConfig::default()
    }
    .build()
    .with_mode(Scheduler::Rr, ForwardMode::FullNat, RPORT);
    let mut lab = lab;
    if ca != gw_proto::ClientAddr::None {
        let mut spec =
            gw_proto::ServiceSpec::new(dataplane::testing::key(gw_proto::Protocol::Tcp), Scheduler::Rr);
        spec.client_addr = ca;
        lab.ok(gw_proto::Request::EditService { spec });
    }
    lab.into_engine()
}

/// Opens a TCP session of flow `f` through `engine` with a full three-way
/// handshake (SYN, SYN+ACK, ACK), so it ends ESTABLISHED. Returns the
/// real-server side (RIP, rport) and local side (LIP, lport) the engine chose.
pub fn establish(engine: &mut Engine, now: u64, f: u32) -> (Endpoint, Endpoint) {
    let c = client(f);
    let mut syn = tcp_frame(ROUTER_MAC, GW_OUT, c, (VIP, VPORT), Tcp::Syn);
    assert!(sent(engine.process(now, 0, &mut syn)), "SYN of flow {f}");
    let key = FlowKey {
        proto: IpProto::Tcp,
        src: u32::from_be_bytes(c.0),
        sport: c.1,
        dst: u32::from_be_bytes(VIP),
        dport: VPORT,
    };
    let s = *engine.sessions().get(engine.sessions().lookup_in(&key).expect("session created"));
    let rs = (s.rip.to_be_bytes(), s.rport);
    let local = (s.lip.to_be_bytes(), s.lport);
    let rs_mac = RS_MAC[RS.iter().position(|r| *r == rs.0).expect("a configured real server")];
    let mut synack = tcp_frame(rs_mac, GW_IN, rs, local, Tcp::SynAck);
    assert!(forwarded(engine.process(now, 1, &mut synack)), "SYN+ACK of flow {f}");
    let mut ack = tcp_frame(ROUTER_MAC, GW_OUT, c, (VIP, VPORT), Tcp::AckData);
    assert!(sent(engine.process(now, 0, &mut ack)), "ACK of flow {f}");
    assert_eq!(engine.sessions().get(engine.sessions().lookup_in(&key).unwrap()).state(), State::Established);
    (rs, local)
}

/// Whether an engine verdict sends the frame on: forwarded, or grown
/// first (TOA, a PROXY header: [`gw_core::engine::Action::Grow`]).
fn sent(a: gw_core::engine::Action) -> bool {
    use gw_core::engine::Action;
    matches!(a, Action::Forward { .. } | Action::Grow { .. } | Action::GrowReply { .. })
}

/// Whether an engine verdict forwards the frame.
pub fn forwarded(a: gw_core::engine::Action) -> bool {
    matches!(a, gw_core::engine::Action::Forward { .. })
}

/// A session for index `i` whose both keys are distinct for `i < 2^24`:
/// client 10.(i>>16).(i>>8).i : 40000 -> VIP:80, server side
/// RS[i%2]:8080 -> LIP+(i/64512) : 1024+(i%64512).
pub fn synthetic_session(i: u32) -> Session {
    let cip = 0x0a00_0000 | (i & 0x00ff_ffff);
    let lip = u32::from_be_bytes(LIP) + i / 64_512;
    let lport = 1024 + (i % 64_512) as u16;
    let rip = u32::from_be_bytes(RS[(i & 1) as usize]);
    Session::new(
        IpProto::Tcp,
        (cip, 40_000),
        (u32::from_be_bytes(VIP), VPORT),
        (rip, RPORT),
        (lip, lport),
        State::Established,
        ForwardMode::FullNat,
        0,
        0,
    )
}

/// xorshift64* (Vigna 2016): deterministic, dependency-free, good enough to
/// shuffle benchmark inputs.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// An [`Io`] that keeps the last sent buffer so the benchmark can reuse it:
/// the measured loop moves one `Vec` around and never allocates.
#[derive(Debug, Default)]
pub struct RecycleIo {
    /// The buffer last handed to `send`, if any.
    pub slot: Option<Vec<u8>>,
    /// Port of the last `send`.
    pub port: u16,
}

impl Io<Vec<u8>> for RecycleIo {
    fn alloc(&mut self) -> Option<Vec<u8>> {
        Some(vec![0; MIN_FRAME_LEN])
    }
    fn send(&mut self, port: u16, pkt: Vec<u8>) {
        self.port = port;
        self.slot = Some(pkt);
    }
}

/// The DPDK traffic harness's pure parts (`gw-pktgen`, `gw-benchrun`).
pub mod traffic;
