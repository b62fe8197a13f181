//! Tests of the modes on their own: what each binds, its constants, and
//! its transmit (the byte-level end-to-end checks are `dataplane/tests/`).

use std::net::Ipv4Addr;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gw_proto::{ForwardMode, Protocol as SvcProto, Scheduler, ServiceKey, TunnelEncap};

use super::*;
use crate::counters::Event;
use crate::engine::conn::{NextPort, Partition};
use crate::route::Routes;
use crate::sched::{DestConf, Prepared};
use crate::tcp_state::State;
use crate::wire::ethernet::MacAddr;
use crate::wire::ipv4::Protocol;

const CIP: u32 = 0xc612_0002; // 198.18.0.2
const VIP: u32 = 0xc612_0064; // 198.18.0.100
const RIP: u32 = 0xc612_0102; // 198.18.1.2
const LIP: u32 = 0xc612_010a; // 198.18.1.10

fn dest(mode: ForwardMode, port: u16) -> Dest {
    Dest {
        slot: 0,
        addr: std::net::IpAddr::V4(Ipv4Addr::from(RIP)),
        port,
        mode,
        weight: 1,
        upper: 0,
        lower: 0,
    }
}

fn service(d: &Dest) -> Service {
    Service {
        laddrs6: vec![],
        netmask6: u128::MAX,
        slot: 0,
        version: 1,
        key: ServiceKey { proto: SvcProto::Tcp, addr: Ipv4Addr::from(VIP).into(), port: 80 },
        scheduler: Scheduler::Rr,
        prep: Prepared::build(Scheduler::Rr, 0, &[DestConf::new(1, RIP, d.port)]),
        dests: vec![d.clone()],
        laddrs: vec![LIP],
        persistent_ms: None,
        netmask: u32::MAX,
        one_packet: false,
        sched_flags: 0,
        client_addr: gw_proto::ClientAddr::None,
        synproxy: false,
    }
}

fn iface(port: u16, last: u8, mtu: u16) -> Iface {
    Iface {
        port,
        addr: Ipv4Addr::new(198, 18, port as u8, last),
        prefix: 24,
        addr6: None,
        mac: MacAddr([2, 0, 0, 0, 0, last]),
        mtu,
        rp_filter: Default::default(),
    }
}

fn config(worker: u32, workers: u32) -> EngineConfig {
    let ifaces = vec![iface(0, 1, 1500), iface(1, 1, 1500)];
    EngineConfig {
        worker,
        workers,
        routes: Routes::new(&ifaces, &[]),
        ifaces,
        sessions: 64,
        sessions6: 16,
        lport_range: (1024, 65535),
        seed: 7,
        expire_budget: 64,
        max_services: 1,
        half_open_max: 64,
        half_open_max6: 64,
        conn_reuse: crate::engine::ConnReuse::default(),
        nodest: crate::engine::NoDest::default(),
        reject: Default::default(),
        frag: crate::frag::FragConfig { datagrams: 4, timeout_ms: 30_000 },
        kernel: vec![],
        synproxy_secret: 0x5eed,
    }
}

fn key(dport: u16) -> FlowKey {
    FlowKey { proto: Protocol::Tcp, src: CIP, sport: 40000, dst: VIP, dport }
}

/// Binds `key` to `d` with mode `mode`, as the engine does.
fn bind(
    mode: ForwardMode,
    cfg: &EngineConfig,
    sessions: &SessionTable,
    d: &Dest,
    key: &FlowKey,
) -> Result<Bound, Drop> {
    struct B<'a>(BindCx<'a>, &'a FlowKey, &'a Dest);
    impl ModeOp for B<'_> {
        type Out = Result<Bound, Drop>;
        fn run<M: Mode>(mut self) -> Self::Out {
            M::bind(&mut self.0, self.1, self.2)
        }
    }
    let svc = service(d);
    let mut st = SvcState::default();
    dispatch(
        mode,
        B(
            BindCx {
                cfg,
                lports: Partition::of(cfg),
                sessions,
                st: &mut st,
                svc: &svc,
                next: &mut [],
                held6: None,
            },
            key,
            d,
        ),
    )
}

#[test]
fn each_mode_says_whether_it_routes_and_which_tcp_table_it_uses() {
    struct Table;
    impl ModeOp for Table {
        type Out = (bool, Dir);
        fn run<M: Mode>(self) -> (bool, Dir) {
            (M::ROUTED, M::IN_TABLE)
        }
    }
    // IPVS: NAT-like modes see both directions (INPUT/OUTPUT), DR and TUN
    // only the client's (INPUT-ONLY).
    for (mode, want) in [
        (ForwardMode::FullNat, (true, Dir::Input)),
        (ForwardMode::Masq, (true, Dir::Input)),
        (ForwardMode::Route, (false, Dir::InputOnly)),
        (ForwardMode::Tunnel, (false, Dir::InputOnly)),
    ] {
        assert_eq!(dispatch(mode, Table), want, "{mode:?}");
        assert_eq!(routed(mode), want.0, "{mode:?}");
        assert_eq!(replies_to_client(mode), mode == ForwardMode::Masq, "{mode:?}");
    }
}

#[test]
fn fullnat_binds_a_free_local_port_of_this_workers_partition() {
    let cfg = config(1, 4);
    let mut sessions = SessionTable::new(64, 1, 0);
    let d = dest(ForwardMode::FullNat, 8080);
    let b = bind(ForwardMode::FullNat, &cfg, &sessions, &d, &key(80)).unwrap();
    assert_eq!(b.rs, (RIP, 8080));
    assert_eq!(b.local.0, LIP);
    assert_eq!(b.local.1 % 4, 1, "a port worker 1 owns");
    assert_eq!(b.flags, Flags::NONE, "replies come back: a reply key");
    // While a session holds that port toward the same server, it is skipped.
    let s = Session::new(
        Protocol::Tcp,
        (CIP, 1),
        (VIP, 80),
        b.rs,
        b.local,
        State::None,
        ForwardMode::FullNat,
        0,
        0,
    );
    sessions.insert(s, 0, 1000).unwrap();
    let again = bind(ForwardMode::FullNat, &cfg, &sessions, &d, &key(80)).unwrap();
    assert_ne!(again.local, b.local);
    assert_eq!(again.local.1 % 4, 1);
    // A port-0 real server takes the packet's port.
    let b = bind(ForwardMode::FullNat, &cfg, &sessions, &dest(ForwardMode::FullNat, 0), &key(443)).unwrap();
    assert_eq!(b.rs, (RIP, 443));
}

#[test]
fn fullnat_finds_the_free_ports_of_a_crowded_range() {
    // 16 local ports; any mix of them held toward this server and toward
    // another one (whose holds count in the reply-port counts too): the
    // bind takes a port free toward this server, whether the first
    // candidate, a port no server uses or one only the other server uses,
    // and is exhausted only when this server holds all 16.
    let mut cfg = config(0, 1);
    cfg.lport_range = (2000, 2015);
    let d = dest(ForwardMode::FullNat, 8080);
    let other = (RIP + 1, 8080);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..300u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (mine, theirs) = if round < 2 { (0xffff, 0) } else { (x as u16, (x >> 16) as u16) };
        let mut sessions = SessionTable::new(64, u64::from(round), 0);
        for (held, rs) in [(mine, (RIP, 8080)), (theirs, other)] {
            for p in (0..16).filter(|p| held & 1 << p != 0) {
                let s = Session::new(
                    Protocol::Tcp,
                    (CIP, 1 + p + u16::from(rs == other) * 16),
                    (VIP, 80),
                    rs,
                    (LIP, 2000 + p),
                    State::None,
                    ForwardMode::FullNat,
                    0,
                    0,
                );
                sessions.insert(s, 0, 1000).unwrap();
            }
        }
        match bind(ForwardMode::FullNat, &cfg, &sessions, &d, &key(80 + round as u16)) {
            Ok(b) => {
                let p = b.local.1 - 2000;
                assert!(p < 16 && mine & 1 << p == 0, "round {round}: port {} is held", b.local.1);
            }
            Err(e) => assert_eq!((e, mine), (Drop::LaddrExhausted, 0xffff), "round {round}"),
        }
    }
}

/// A FULLNAT session of client port `cport` bound to `b`.
fn fullnat_session(cport: u16, b: &Bound) -> Session {
    Session::new(
        Protocol::Tcp,
        (CIP, cport),
        (VIP, 80),
        b.rs,
        b.local,
        State::None,
        ForwardMode::FullNat,
        0,
        0,
    )
}

#[test]
fn fullnat_takes_the_next_port_chosen_at_the_last_bind() {
    // Worker 1 of 2, 4 local addresses, 64 ports each in its partition:
    // 256 (address, port) pairs toward the one server.
    let mut cfg = config(1, 2);
    cfg.lport_range = (2000, 2127);
    let mut sessions = SessionTable::new(512, 3, 0);
    let d = dest(ForwardMode::FullNat, 8080);
    let mut svc = service(&d);
    svc.laddrs = (0..4).map(|i| LIP + i).collect();
    let mut st = SvcState::default();
    let mut next = [NextPort::default(); 1];
    let mut bind = |sessions: &SessionTable, svc: &Service, next: &mut [NextPort], cport: u16, proto| {
        let cx =
            BindCx { cfg: &cfg, lports: Partition::of(&cfg), sessions, st: &mut st, svc, next, held6: None };
        struct B<'a>(BindCx<'a>, FlowKey, &'a Dest);
        impl ModeOp for B<'_> {
            type Out = Result<Bound, Drop>;
            fn run<M: Mode>(mut self) -> Self::Out {
                M::bind(&mut self.0, &self.1, self.2)
            }
        }
        let key = FlowKey { proto, src: CIP, sport: cport, dst: VIP, dport: 80 };
        dispatch(ForwardMode::FullNat, B(cx, key, &svc.dests[0]))
    };
    // Every bind is a free port of the partition on one of the service's
    // addresses, and after each one the server has a next port, which the
    // next bind takes whenever it is free; all 256 pairs get used. (The
    // next port is a keyed hash's pick among all 256 pairs, so it is free
    // at about half the binds as the table fills: 127.5 expected.)
    let (mut used, mut free_next) = (std::collections::HashSet::new(), 0);
    for cport in 0..256u16 {
        let want = next[0].local();
        let b = bind(&sessions, &svc, &mut next, cport, Protocol::Tcp).unwrap();
        assert!(svc.laddrs.contains(&b.local.0), "{b:?}");
        assert!((2000..=2127).contains(&b.local.1) && b.local.1 % 2 == 1, "{b:?}");
        assert_eq!(sessions.lookup_out(&fullnat_session(cport, &b).out_key()), None, "{b:?} was free");
        assert!(next[0].local().is_some(), "a next port after bind {cport}");
        if let Some(w) = want.filter(|w| !used.contains(w)) {
            assert_eq!(b.local, w, "bind {cport} took another port than the free next one");
            free_next += 1;
        }
        assert!(used.insert(b.local), "{b:?} twice");
        sessions.insert(fullnat_session(cport, &b), 0, 1000).unwrap();
    }
    assert!(free_next > 64, "the next port was free at {free_next} of 255 binds");
    assert_eq!(bind(&sessions, &svc, &mut next, 999, Protocol::Tcp), Err(Drop::LaddrExhausted));
    // A next port of an address the service no longer has is not used.
    let mut sessions = SessionTable::new(512, 3, 0);
    bind(&sessions, &svc, &mut next, 0, Protocol::Tcp).unwrap();
    let (lip, _) = next[0].local().unwrap();
    svc.laddrs.retain(|&a| a != lip);
    for cport in 1..150 {
        let b = bind(&sessions, &svc, &mut next, cport, Protocol::Tcp).unwrap();
        assert_ne!(b.local.0, lip, "bind {cport} took a deleted local address");
        sessions.insert(fullnat_session(cport, &b), 0, 1000).unwrap();
    }
    // Nor one chosen for another protocol (its reply key's hash is that
    // protocol's): a UDP session holding the TCP bind's next port makes
    // that port taken for UDP, and a UDP bind must see it.
    let (lip, lport) = next[0].local().unwrap();
    let udp = Session::new(
        Protocol::Udp,
        (CIP, 9999),
        (VIP, 80),
        (RIP, 8080),
        (lip, lport),
        State::Udp,
        ForwardMode::FullNat,
        0,
        0,
    );
    sessions.insert(udp, 0, 1000).unwrap();
    let b = bind(&sessions, &svc, &mut next, 9998, Protocol::Udp).unwrap();
    assert_ne!(b.local, (lip, lport), "a UDP bind took a port a UDP session holds");
    // Nor one chosen toward another server (the slot moved, or a port-0
    // server met another port).
    let mut other = svc.clone();
    other.dests[0].addr = std::net::IpAddr::V4(Ipv4Addr::from(RIP + 1));
    let before = next[0].local();
    let b = bind(&sessions, &other, &mut next, 500, Protocol::Tcp).unwrap();
    assert_eq!(b.rs.0, RIP + 1);
    assert!(before.is_some());
}

#[test]
fn nat_binds_the_client_as_reply_end_and_refuses_a_taken_reply_key() {
    let cfg = config(0, 1);
    let mut sessions = SessionTable::new(64, 1, 0);
    let d = dest(ForwardMode::Masq, 8080);
    let b = bind(ForwardMode::Masq, &cfg, &sessions, &d, &key(80)).unwrap();
    assert_eq!((b.rs, b.local, b.flags), ((RIP, 8080), (CIP, 40000), Flags::NONE));
    let s = Session::new(
        Protocol::Tcp,
        (CIP, 40000),
        (VIP, 81),
        b.rs,
        b.local,
        State::None,
        ForwardMode::Masq,
        0,
        0,
    );
    sessions.insert(s, 0, 1000).unwrap();
    assert_eq!(bind(ForwardMode::Masq, &cfg, &sessions, &d, &key(80)), Err(Drop::NatConflict));
}

#[test]
fn dr_and_tun_bind_no_reply_key_and_keep_the_service_port() {
    let cfg = config(0, 1);
    let sessions = SessionTable::new(64, 1, 0);
    for mode in [ForwardMode::Route, ForwardMode::Tunnel] {
        let b = bind(mode, &cfg, &sessions, &dest(mode, 8080), &key(80)).unwrap();
        assert_eq!((b.rs, b.local, b.flags), ((RIP, 80), (CIP, 40000), Flags::NO_OUT), "{mode:?}");
    }
}

/// A client TCP frame CIP:40000 -> VIP:80 with `payload` bytes and DF as given.
fn frame(payload: usize, df: bool) -> Vec<u8> {
    let mut f = vec![];
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv4(CIP.to_be_bytes(), VIP.to_be_bytes(), 64)
        .tcp(40000, 80, 1, 1000)
        .write(&mut f, &vec![7; payload])
        .unwrap();
    if !df {
        f[20] &= !0x40;
        let mut ip = crate::wire::ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.fill_checksum();
    }
    f
}

/// A real server's TCP reply frame `src -> dst`.
fn reply_frame(src: (u32, u16), dst: (u32, u16)) -> Vec<u8> {
    let mut f = vec![];
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv4(src.0.to_be_bytes(), dst.0.to_be_bytes(), 64)
        .tcp(src.1, dst.1, 1, 1000)
        .write(&mut f, &[7; 10])
        .unwrap();
    f
}

fn session(mode: ForwardMode) -> Session {
    let local = if mode == ForwardMode::FullNat { (LIP, 5001) } else { (CIP, 40000) };
    Session::new(Protocol::Tcp, (CIP, 40000), (VIP, 80), (RIP, 8080), local, State::None, mode, 0, 0)
}

fn xmit(mode: ForwardMode, out: bool, f: &mut [u8], mtu: u16, counters: &WorkerCounters) -> Action {
    xmit_with(mode, out, f, mtu, counters, &Snapshot::default())
}

/// [`xmit`] under the services of `snap` (e.g. the server's tunnel type).
fn xmit_with(
    mode: ForwardMode,
    out: bool,
    f: &mut [u8],
    mtu: u16,
    counters: &WorkerCounters,
    snap: &Snapshot,
) -> Action {
    struct X<'a>(&'a XmitCx<'a>, &'a Session, &'a mut [u8], bool);
    impl ModeOp for X<'_> {
        type Out = Action;
        fn run<M: Mode>(self) -> Action {
            if self.3 {
                M::xmit_out(self.0, self.1, self.2)
            } else {
                M::xmit_in(self.0, self.1, self.2)
            }
        }
    }
    let ifaces = [iface(0, 1, 1500), iface(1, 1, mtu)];
    let tl = f.len() - 14;
    let dont_frag = crate::wire::ipv4::Packet::new_unchecked(&f[14..]).dont_frag();
    let s = session(mode);
    let proto = s.protocol();
    let cx = XmitCx {
        ifaces: &ifaces,
        rx: &ifaces[0],
        counters,
        port: 1,
        next_hop: RIP,
        proto,
        tl,
        dont_frag,
        snap,
    };
    dispatch(mode, X(&cx, &s, f, out))
}

fn addrs(f: &[u8]) -> ((u32, u16), (u32, u16), u8) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(TransportSlice::Tcp(t)) = p.transport else { panic!("not TCP") };
    let want = t.to_header().calc_checksum_ipv4_raw(h.source, h.destination, t.payload()).unwrap();
    assert_eq!(t.checksum(), want);
    let a = |b: [u8; 4]| u32::from_be_bytes(b);
    ((a(h.source), t.source_port()), (a(h.destination), t.destination_port()), h.time_to_live)
}

#[test]
fn the_nat_modes_rewrite_both_ways_and_dr_forwards_untouched() {
    let counters = WorkerCounters::new(0, 0, 1, 1);
    let fwd = Action::Forward { port: 1, next_hop: RIP };
    let mut f = frame(10, true);
    assert_eq!(xmit(ForwardMode::FullNat, false, &mut f, 1500, &counters), fwd);
    assert_eq!(addrs(&f), ((LIP, 5001), (RIP, 8080), 63));
    // The real server's reply, RIP:8080 -> LIP:5001.
    let mut f = reply_frame((RIP, 8080), (LIP, 5001));
    assert_eq!(xmit(ForwardMode::FullNat, true, &mut f, 1500, &counters), fwd);
    assert_eq!(addrs(&f), ((VIP, 80), (CIP, 40000), 63));
    let mut f = frame(10, true);
    assert_eq!(xmit(ForwardMode::Masq, false, &mut f, 1500, &counters), fwd);
    assert_eq!(addrs(&f), ((CIP, 40000), (RIP, 8080), 63));
    let orig = frame(10, true);
    let mut f = orig.clone();
    assert_eq!(xmit(ForwardMode::Route, false, &mut f, 1500, &counters), fwd);
    assert_eq!(f, orig, "DR leaves the packet as it is");
}

#[test]
fn tun_encapsulates_what_fits_and_answers_df_packets_that_do_not() {
    let counters = WorkerCounters::new(0, 0, 1, 1);
    let orig = frame(100, true);
    let tl = orig.len() - 14;
    let mut f = orig.clone();
    let encap = Action::Encap { port: 1, next_hop: RIP, src: 0xc612_0101, dst: RIP, tun: TunnelEncap::Ipip };
    assert_eq!(xmit(ForwardMode::Tunnel, false, &mut f, (tl + OUTER) as u16, &counters), encap);
    assert_eq!(f, orig, "the frame is only changed by the worker's tun::encap");
    // One byte too big: with DF the client hears the tunnel's MTU.
    let got = xmit(ForwardMode::Tunnel, false, &mut f, (tl + OUTER - 1) as u16, &counters);
    assert!(matches!(got, Action::Reply { port: 0, .. }), "{got:?}");
    assert_eq!(counters.event_count(Event::IcmpFragNeededSent), 1);
    // Without DF it is encapsulated all the same: the worker sends the
    // outer packet as fragments, as IPVS.
    let mut f = frame(100, false);
    let got = xmit(ForwardMode::Tunnel, false, &mut f, (tl + OUTER - 1) as u16, &counters);
    assert_eq!(got, encap);
}

const OUTER: usize = tun::OUTER_LEN;

/// GUE and GRE take their header off the tunnel MTU (IPVS's
/// `__ip_vs_get_out_rt` with `IP_VS_RT_MODE_TUNNEL`): a DF packet that
/// fits ipip but not the server's tunnel hears the smaller MTU, and the
/// tunnel type rides in the action to the worker.
#[test]
fn gue_and_gre_take_their_headers_off_the_tunnel_mtu() {
    use gw_proto::TunnelCsum;
    let orig = frame(100, true);
    let tl = orig.len() - 14;
    for (tun, extra) in [
        (TunnelEncap::Gue { port: 6080, csum: TunnelCsum::Csum }, 12),
        (TunnelEncap::Gre { csum: TunnelCsum::NoCsum }, 4),
        (TunnelEncap::Gre { csum: TunnelCsum::Csum }, 8),
    ] {
        let counters = WorkerCounters::new(0, 0, 1, 1);
        let snap = Snapshot::new(0, vec![], 4).with_tunnels([(0, tun)]);
        let mut f = orig.clone();
        let mtu = (tl + OUTER + extra) as u16;
        let encap = Action::Encap { port: 1, next_hop: RIP, src: 0xc612_0101, dst: RIP, tun };
        assert_eq!(xmit_with(ForwardMode::Tunnel, false, &mut f, mtu, &counters, &snap), encap);
        let got = xmit_with(ForwardMode::Tunnel, false, &mut f, mtu - 1, &counters, &snap);
        let Action::Reply { port: 0, len } = got else { panic!("{tun:?}: {got:?}") };
        let p = SlicedPacket::from_ethernet(&f[..len]).unwrap();
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else { panic!("not ICMP") };
        match icmp.icmp_type() {
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
            ) => assert_eq!(usize::from(next_hop_mtu), tl - 1, "{tun:?}: the tunnel's MTU"),
            other => panic!("{other:?}"),
        }
        // Another server's slot is ipip: it fits.
        let snap = Snapshot::new(0, vec![], 4).with_tunnels([(1, tun)]);
        let mut f = orig.clone();
        let got = xmit_with(ForwardMode::Tunnel, false, &mut f, (tl + OUTER) as u16, &counters, &snap);
        assert!(matches!(got, Action::Encap { tun: TunnelEncap::Ipip, .. }), "{got:?}");
    }
}

#[test]
fn tun_encap_prepends_the_outer_header_and_counts_the_ident() {
    let orig = frame(10, true);
    let mut pkt = orig.clone();
    let mut ident = 41;
    tun::encap(&mut pkt, TunnelEncap::Ipip, 0xc612_0101, RIP, &mut ident).unwrap();
    assert_eq!(ident, 42);
    assert_eq!(pkt.len(), orig.len() + OUTER);
    assert_eq!(&pkt[14 + OUTER..], &orig[14..], "inner packet untouched");
    let outer = etherparse::Ipv4HeaderSlice::from_slice(&pkt[14..14 + OUTER]).unwrap().to_header();
    assert_eq!((outer.identification, outer.protocol), (42, etherparse::IpNumber(4)));
    assert_eq!((outer.source, outer.destination), ([198, 18, 1, 1], RIP.to_be_bytes()));
}
