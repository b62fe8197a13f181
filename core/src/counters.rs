//! Per-worker counters.
//!
//! Every counter has exactly one writer: the worker that owns it. The worker
//! bumps it with a relaxed load + store (no locked instruction, no shared
//! cache line written by two cores); the control plane reads all workers'
//! blocks and sums them. Zeroing (`gwctl -Z`) is done by the reader keeping a
//! baseline, never by writing into a worker's block.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Emits a counter enum from one list of `Variant = "name", "meaning"` rows:
/// the enum (the meaning is each variant's doc), `ALL` in declaration order,
/// `name()` (what `gwctl --counters` prints) and `meaning()` (the text of
/// the README's table). Adding a counter is adding a row; nothing else can
/// drift.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident { $($variant:ident = $name:literal, $meaning:literal,)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum $ty {
            $(#[doc = $meaning] $variant,)*
        }

        impl $ty {
            /// Every counter, in declaration (and slot) order.
            pub const ALL: [$ty; [$($ty::$variant),*].len()] = [$($ty::$variant),*];

            /// The counter's name as `gwctl --counters` prints it.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }

            /// What the counter counts, as the README's table says it.
            pub fn meaning(self) -> &'static str {
                match self {
                    $($ty::$variant => $meaning,)*
                }
            }
        }
    };
}

counters! {
    /// Why a packet was not forwarded. Every variant is a named counter that
    /// `gwctl --counters` shows; the README's "Drop counters" table is
    /// [`Drop::readme_table`] (a test keeps them equal).
    pub enum Drop {
        EthTruncated = "drop_eth_truncated", "frame shorter than an Ethernet header",
        NotOurMac = "drop_not_our_mac",
            "destination MAC is neither the port's, broadcast, nor (on a dual-stack port) a solicited-node \
             group or all-nodes (ports run promiscuous)",
        UnsupportedEthertype = "drop_unsupported_ethertype",
            "not IPv4, ARP or IPv6 (VLAN tags, ...); IPv6 on a port without an IPv6 address",
        Ipv6Malformed = "drop_ipv6_malformed",
            "IPv6 header or extension headers malformed or beyond the frame, or an ICMPv6 checksum is wrong",
        Ipv6RoutingHeader = "drop_ipv6_routing_header",
            "an IPv6 packet with a routing header whose segments left is not 0: the address it was sent \
             to is not its last (RFC 8200 4.4; type 0 is deprecated, RFC 5095)",
        Ipv6NotHandled = "drop_ipv6_not_handled",
            "IPv6 the dataplane does not handle yet: not neighbour discovery, echo for the gateway's \
             IPv6 addresses, or TCP/UDP of an IPv6 service; or, on an IPv6 service, NAT64 before its \
             translation; IPv6 fragments neither of an IPv6 \
             service nor to a port's own address (without a kernel interface)",
        NdInvalid = "drop_nd_invalid",
            "a neighbour solicitation or advertisement failing RFC 4861 §7.1 (hop limit ≠ 255, code ≠ 0, \
             multicast target, bad option, the solicited flag on a multicast advertisement), from a source \
             neither link-local nor in the port's IPv6 subnet, an advertisement for an off-link target or \
             without a unicast target link-layer address, or a solicitation from :: for one of our \
             addresses (duplicate address detection: static addresses do not defend)",
        ArpMalformed = "drop_arp_malformed", "ARP that is not Ethernet/IPv4, or has a bad sender",
        ArpNotForUs = "drop_arp_not_for_us", "ARP for an address that is not ours on that port",
        ArpOffSubnet = "drop_arp_off_subnet",
            "ARP from a sender outside the receiving port's subnet (never learnt)",
        Ipv4Malformed = "drop_ipv4_malformed",
            "IPv4 header too short, version ≠ 4, IHL < 5 or beyond the frame, total length below the header",
        Ipv4Truncated = "drop_ipv4_truncated",
            "IPv4 total length beyond the received frame; on an af_packet port, a datagram the kernel \
             reassembled (DPDK's PACKET_FANOUT_FLAG_DEFRAG) larger than the ring frame (`workers.mbuf_size`)",
        Ipv4BadChecksum = "drop_ipv4_bad_checksum", "wrong IPv4 header checksum",
        BadSourceAddr = "drop_bad_source_addr", "source is 0.0.0.0, broadcast, loopback or multicast (IPv6: multicast; for TCP/UDP also in ::/64, IPv4-mapped among them)",
        ReversePath = "drop_reverse_path",
            "the route back to the source does not leave through the port the packet came in on \
             (`rp_filter`, strict per port by default; `loose`: no route back at all)",
        Fragment = "drop_fragment",
            "an IPv4 fragment not addressed to a VIP, a local address or from a NAT real server, \
             or reassembly is off (`fragments.datagrams = 0`)",
        FragMalformed = "drop_frag_malformed",
            "a fragment that is empty, not a multiple of 8 bytes before the last, or past the end \
             the last fragment gave (the datagram is dropped with it in the last case)",
        FragOversized = "drop_frag_oversized", "a fragment that would make the datagram exceed 65,535 bytes",
        FragOverlap = "drop_frag_overlap",
            "a fragment overlapping data already received: the whole datagram is dropped (RFC 5722's rule)",
        FragHeaderChain = "drop_frag_header_chain",
            "an IPv6 first fragment without the whole header chain up to the TCP/UDP header (RFC 7112): \
             dropped with its datagram",
        FragDuplicate = "drop_frag_duplicate", "an exact duplicate of a fragment already received",
        FragEvicted = "drop_frag_evicted",
            "an incomplete datagram evicted (oldest first) because every reassembly slot was in use \
             (`fragments.datagrams`; a flood of fragments shows here)",
        FragTimeout = "drop_frag_timeout",
            "an incomplete datagram dropped after `fragments.timeout_s` (as `ipfrag_time`)",
        L4Malformed = "drop_l4_malformed", "TCP/UDP header truncated or inconsistent, or port 0",
        IcmpUnhandled = "drop_icmp_unhandled",
            "ICMP to us that is neither a valid echo request nor an error about a session, or an ICMP error \
             with a bad checksum",
        // ICMP errors are unreachable, time exceeded and the like.
        IcmpUnknownFlow = "drop_icmp_unknown_flow", "an ICMP error quoting a flow with no session",
        UnsupportedProto = "drop_unsupported_proto",
            "IP protocol other than TCP, UDP, ICMP to one of our addresses",
        NotForUs = "drop_not_for_us", "destination is not our address and matches no session",
        NoService = "drop_no_service", "destination is our address or a VIP, but no service has that port",
        UnknownReply = "drop_unknown_reply",
            "packet to a local address (LIP), or from a NAT real server, that matches no session",
        TcpRstOutOfWindow = "drop_tcp_rst_out_of_window",
            "FULLNAT/NAT: a RST whose sequence number is more than one 64 KiB unit from what its receiver \
             expects (RFC 5961; a spoofed RST cannot close the session)",
        TcpOutOfWindow = "drop_tcp_out_of_window",
            "FULLNAT/NAT: a TCP segment more than 16 MiB from what its receiver expects (moves no state)",
        TcpBeforeServer = "drop_tcp_before_server",
            "FULLNAT/NAT: a client's ACK or FIN before the real server answered its SYN (forged: it would take \
             the session out of the half-open count)",
        NoSessionNotSyn = "drop_no_session_not_syn",
            "TCP without a session that is not a plain SYN (no session is created)",
        NoDest = "drop_no_dest", "the service has no real server with weight > 0",
        NoLaddr = "drop_no_laddr", "FULLNAT service without a local address",
        LaddrExhausted = "drop_laddr_exhausted", "every local address:port toward that real server is in use",
        TableFull = "drop_table_full", "the worker's session table is full (existing sessions keep working)",
        PersistFull = "drop_persist_full",
            "a persistence template already controls 65535 connections, as many as its count holds",
        ProxyHeaderNoRoom = "drop_proxy_header_no_room",
            "a client's first segment could not grow by its PROXY header (over the MTU, or a buffer without tailroom)",
        SynproxyBadCookie = "drop_synproxy_bad_cookie",
            "SYNPROXY: an ACK without a session whose acknowledgement is no valid SYN cookie, \
             or a RST/FIN without a session (never reaches a real server)",
        SynproxyPending = "drop_synproxy_pending",
            "SYNPROXY: a client segment while the real server's handshake is under way \
             (the client retransmits it)",
        SynproxyMode = "drop_synproxy_mode",
            "SYNPROXY: the service scheduled a DR/TUN real server (SYNPROXY needs FULLNAT or NAT)",
        SynproxyServerAck = "drop_synproxy_server_ack",
            "SYNPROXY: a real server's SYN-ACK or RST that does not acknowledge the gateway's SYN \
             (spoofed or stale; the handshake goes on)",
        SynproxyNoRoom = "drop_synproxy_no_room",
            "SYNPROXY: a SYN too short to be turned into the SYN-ACK with its options (IPv6: a buffer \
             without room for the frame SYNPROXY wrote)",
        SynShed = "drop_syn_shed",
            "a plain TCP SYN an overloaded worker (full receive bursts) shed beyond its per-burst quota \
             and its rate cap (`workers.overload_syn_rate`) before any other work (the client retransmits it)",
        // Half-open sessions are those in NONE or SYN_RECV; established
        // sessions keep their room.
        HalfOpenLimit = "drop_half_open_limit",
            "a new TCP connection while half-open sessions hold their share of the table \
             (`workers.half_open_percent`, SYN flood protection)",
        UdpUnrepliedLimit = "drop_udp_unreplied_limit",
            "a new UDP flow while flows their real server has not answered hold their share of the table \
             (`workers.half_open_percent`, as half-open TCP sessions: UDP flood protection)",
        DestUnavailable = "drop_dest_unavailable",
            "packet of a session whose real server was deleted (until it is re-added, \
             as IPVS's `expire_nodest_conn = 0`; see `[ipvs] nodest_conn`)",
        NatConflict = "drop_nat_conflict",
            "NAT: the real server already has a session with this client address:port \
             (through another service)",
        // With DF set an ICMP "fragmentation needed" goes back instead.
        TunnelTooBig = "drop_tunnel_too_big",
            "TUN: packet + outer header exceeds 65,535 bytes, or is an ICMP error with DF set over the MTU \
             (a DF-clear packet over the MTU only is sent as fragments of the outer packet)",
        NoHeadroom = "drop_no_headroom", "TUN or NAT64: no mbuf headroom for the outer or the IPv6 header",
        Nat64TooBig = "drop_nat64_too_big",
            "NAT64: the translated packet exceeds the output port's MTU and no error can tell the sender \
             (an IPv4 packet without DF, an IPv6 one of 1280 bytes or less)",
        Nat64Untranslatable = "drop_nat64_untranslatable",
            "NAT64: RFC 7915 has no translation for it (see core/src/nat64.rs), or its headers are malformed",
        NoRoute = "drop_no_route", "no route to the destination",
        TtlExceeded = "drop_ttl_exceeded", "TTL would reach 0 (the gateway decrements TTL when it forwards)",
        NeighUnresolved = "drop_neigh_unresolved",
            "the next hop did not answer ARP (packets waited, then dropped)",
        NeighQueueFull = "drop_neigh_queue_full",
            "the next hop's hold queue (8 packets) or the neighbour table is full",
        NoMbuf = "drop_no_mbuf", "no mbuf for an ARP request or an output fragment",
        CannotFragment = "drop_cannot_fragment",
            "too big for the output MTU and cannot be fragmented (MTU below 28 bytes of IP)",
        // Multi-core hand-off.
        RedirectFull = "drop_redirect_full", "the owning worker's hand-off queue was full",
        TxFull = "drop_tx_full", "the TX ring did not take the packet",
        // The exception path (issue 15): `[[port]] kernel`.
        KernelFull = "drop_kernel_full",
            "a frame for the kernel interface (`[[port]] kernel`) found the worker's ring toward the \
             kernel thread full (or the port has none)",
    }
}

impl Drop {
    /// The README's "Drop counters" table (markdown), one row per counter.
    /// `cargo test -p gw-core readme` prints it when the README differs.
    pub fn readme_table() -> String {
        let mut t = String::from("| counter | meaning |\n|---|---|\n");
        for d in Drop::ALL {
            t.push_str(&format!("| `{}` | {} |\n", d.name(), d.meaning()));
        }
        t
    }
}

counters! {
    /// Non-drop events a worker counts (the README lists them under "Other
    /// counters").
    pub enum Event {
        RxPackets = "rx_packets", "Packets received from a NIC.",
        TxPackets = "tx_packets", "Packets sent.",
        FwdIn = "fwd_in_packets", "Client-to-server packets forwarded through a session.",
        FwdOut = "fwd_out_packets", "Server-to-client packets forwarded through a session.",
        SessionsCreated = "sessions_created", "Sessions created.",
        SessionsExpired = "sessions_expired", "Sessions expired.",
        SessionsReused = "sessions_reused",
            "Closing sessions ended by a new SYN from the same client port (conn_reuse_mode).",
        ArpRequestsAnswered = "arp_requests_answered", "ARP requests for our addresses answered.",
        ArpRequestsSent = "arp_requests_sent", "ARP requests sent to resolve a next hop.",
        ArpRepliesLearned = "arp_replies_learned", "ARP replies learned into the neighbour table.",
        NdAdvertsLearned = "nd_adverts_learned",
            "IPv6 neighbour advertisements learned into the neighbour table (answers to our solicitations, \
             unsolicited ones refreshing a known neighbour).",
        NdSolicitsSent = "nd_solicits_sent",
            "IPv6 neighbour solicitations sent to resolve a next hop (to its solicited-node group).",
        IcmpEchoAnswered = "icmp_echo_answered", "ICMP echo requests to our addresses answered.",
        NdSolicitsAnswered = "nd_solicits_answered",
            "IPv6 neighbour solicitations for a port's address answered with an advertisement.",
        Icmpv6EchoAnswered = "icmpv6_echo_answered", "ICMPv6 echo requests to a port's IPv6 address answered.",
        IcmpFragNeededSent = "icmp_frag_needed_sent",
            "ICMP \"fragmentation needed\" sent for packets with DF set too big for the output MTU (or the tunnel).",
        Icmpv6TooBigSent = "icmpv6_too_big_sent",
            "ICMPv6 Packet Too Big sent for IPv6 packets of a session too big for the output MTU (or the tunnel, or NAT64's IPv4 side).",
        IcmpErrorsTranslated = "icmp_errors_translated",
            "ICMP errors about a session translated and forwarded.",
        IcmpErrorsForwarded = "icmp_errors_forwarded",
            "ICMP errors about a DR or TUN session forwarded untranslated to its real server (as IPVS).",
        TcpRstSent = "tcp_rst_sent",
            "TCP RSTs sent for a segment with no session, or a SYN with no service (no_service_reply).",
        IcmpPortUnreachSent = "icmp_port_unreach_sent",
            "ICMP (or ICMPv6) port unreachable sent for a SYN or datagram to a VIP:port with no service or real server.",
        RepliesRateLimited = "replies_rate_limited",
            "RSTs and port unreachables not sent: the worker's token bucket was empty.",
        FragReceived = "frag_received", "IPv4 fragments taken into reassembly.",
        FragReassembled = "frag_reassembled", "Datagrams reassembled from fragments.",
        FragSent = "frag_sent",
            "Fragments sent: packets over the output MTU with DF clear (or reassembled) split to fit.",
        FragDatagrams = "frag_datagrams", "Datagrams being reassembled now (a gauge).",
        FragPeak = "frag_datagrams_peak",
            "Most datagrams held for reassembly at once (a gauge; never above `frag_capacity`).",
        FragCapacity = "frag_capacity", "Reassembly slots of this worker (`fragments.datagrams`).",
        FragTableBytes = "frag_table_bytes", "Bytes the reassembly table allocated at start.",
        NeighHeld = "neigh_held_packets", "Packets parked while their next hop was being resolved.",
        NeighEvicted = "neigh_evicted",
            "Neighbour entries evicted (stalest first) to make room for a new one.",
        SessionsLive = "sessions_live", "Sessions currently live (a gauge).",
        HalfOpen = "sessions_half_open", "TCP sessions in NONE or SYN_RECV (a gauge).",
        HalfOpen6 = "sessions_half_open_ipv6",
            "IPv6 TCP sessions in NONE or SYN_RECV (a gauge; also counted in `sessions_half_open`).",
        UdpUnreplied = "sessions_udp_unreplied",
            "FULLNAT/NAT UDP sessions whose real server has not answered yet (a gauge).",
        UdpUnreplied6 = "sessions_udp_unreplied_ipv6",
            "IPv6 (and NAT64) UDP sessions whose real server has not answered yet (a gauge; also counted in \
             `sessions_udp_unreplied`).",
        SessionTableBytes = "session_table_bytes",
            "Bytes the IPv4 session table allocated (slab, both indexes, timer wheel).",
        Session6TableBytes = "session6_table_bytes",
            "Bytes the IPv6 session table allocated (slab, both indexes, timer wheel).",
        SessionCapacity = "session_capacity", "Session-table capacity of this worker.",
        Session6Capacity = "session6_capacity", "IPv6 session-table capacity of this worker.",
        ToaAdded = "toa_added", "TOA options (client address, FULLNAT --toa) added to a handshake packet.",
        ToaNoRoom = "toa_no_room",
            "Handshake packets sent without TOA: no room in the TCP option space, the MTU or the buffer.",
        ProxyHeadersSent = "proxy_headers_sent",
            "PROXY protocol headers (FULLNAT --proxy-protocol) put in front of a client's first bytes.",
        SynproxySynAcks = "synproxy_syn_acks_sent", "SYNPROXY: SYN cookie SYN-ACKs sent to clients.",
        SynproxyOpened = "synproxy_conns_opened",
            "SYNPROXY: valid cookie ACKs that opened a connection to a real server.",
        SynproxySynResent = "synproxy_syn_resent",
            "SYNPROXY: SYNs sent to a real server again (no SYN-ACK yet when the client retransmitted).",
        SynproxyDataRetransmit = "synproxy_data_left",
            "SYNPROXY: client data carried by the cookie ACK, left for the client to retransmit \
             (every hold slot taken, or the frame larger than a slot).",
        SynproxyDataHeld = "synproxy_data_held",
            "SYNPROXY: client data carried by the cookie ACK, kept and sent after the real server's SYN-ACK.",
        RedirectOut = "redirect_out_packets", "Packets handed to the worker that owns them.",
        RedirectIn = "redirect_in_packets", "Packets received from other workers.",
        ToKernel = "kernel_punted",
            "Frames handed to the receiving port's kernel interface (the exception path, `[[port]] kernel`).",
        FromKernel = "kernel_sent",
            "Frames the kernel sent on a port's kernel interface, transmitted out of the port by this worker.",
        IdlePolls = "idle_polls", "Polls that received nothing (idle policy).",
        BusyCycles = "busy_cycles", "TSC cycles spent in polls that received packets.",
        // The poll loop's own stalls (issue 14): each loop's length, from one
        // rx burst of the first port to the next, sleeps left out.
        LoopCycles = "loop_cycles", "TSC cycles of all poll loops (sleeps left out): the histogram's sum.",
        LoopsUnder4k = "loops_under_4k_cycles", "Poll loops shorter than 4,096 TSC cycles.",
        LoopsUnder16k = "loops_under_16k_cycles", "Poll loops of 4,096 to 16,383 TSC cycles.",
        LoopsUnder64k = "loops_under_64k_cycles", "Poll loops of 16,384 to 65,535 TSC cycles.",
        LoopsUnder256k = "loops_under_256k_cycles", "Poll loops of 65,536 to 262,143 TSC cycles.",
        LoopsUnder1m = "loops_under_1m_cycles", "Poll loops of 262,144 to 1,048,575 TSC cycles.",
        LoopsOver1m = "loops_over_1m_cycles",
            "Poll loops of 1,048,576 TSC cycles or more (0.4 ms at 2.6 GHz: packets waited that long).",
        LoopCyclesMax = "loop_cycles_max", "The longest poll loop so far, in TSC cycles (a gauge).",
        // testpmd's `--record-core-cycles` accounting, for comparing with it
        // like for like (issue 14): only with `workers.record_burst_cycles`.
        BurstCycles = "burst_cycles",
            "TSC cycles from each rx burst that received packets to the end of its processing and TX \
             (empty polls and the poll's other work left out, as testpmd's --record-core-cycles counts); \
             counted only with workers.record_burst_cycles.",
    }
}

/// The poll-loop histogram's buckets: each one's counter and the TSC
/// cycles it stays below (powers of four; the last one is unbounded).
pub const LOOP_BUCKETS: [(Event, u64); 6] = [
    (Event::LoopsUnder4k, 1 << 12),
    (Event::LoopsUnder16k, 1 << 14),
    (Event::LoopsUnder64k, 1 << 16),
    (Event::LoopsUnder256k, 1 << 18),
    (Event::LoopsUnder1m, 1 << 20),
    (Event::LoopsOver1m, u64::MAX),
];

/// The index in [`LOOP_BUCKETS`] of a loop of `cycles`: from its bit
/// length, with no branch or search (12 bits or fewer: the first bucket,
/// then two more bits per bucket).
#[inline(always)]
pub const fn loop_bucket(cycles: u64) -> usize {
    bucket_of_leading_zeros(cycles.leading_zeros() as usize)
}

/// [`loop_bucket`] of a length with `lz` leading zero bits.
const fn bucket_of_leading_zeros(lz: usize) -> usize {
    let i = (64 - lz).saturating_sub(11) / 2;
    if i < LOOP_BUCKETS.len() - 1 {
        i
    } else {
        LOOP_BUCKETS.len() - 1
    }
}

/// The histogram's counter of a loop length with `lz` leading zero bits
/// (index `lz`): [`loop_bucket`]'s steps done once, so that counting a
/// loop is one load from this table (issue 14: it runs every poll).
const LOOP_EVENT_BY_LEADING_ZEROS: [Event; 65] = {
    let mut t = [Event::LoopsUnder4k; 65];
    let mut lz = 0;
    while lz < t.len() {
        t[lz] = LOOP_BUCKETS[bucket_of_leading_zeros(lz)].0;
        lz += 1;
    }
    t
};

const N_DROPS: usize = Drop::ALL.len();
const N_EVENTS: usize = Event::ALL.len();

/// A counter with a single writer.
#[derive(Default, Debug)]
pub struct Cell(AtomicU64);

impl Cell {
    /// Adds `n`. Only the owning worker may call this (single writer).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline(always)]
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(n), Relaxed);
    }
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed)
    }
}

/// Traffic counters of one service or real server, on one worker.
/// One cache line, so two workers never share a line.
#[derive(Default, Debug)]
#[repr(align(64))]
pub struct TrafficCells {
    pub conns: Cell,
    pub inpkts: Cell,
    pub outpkts: Cell,
    pub inbytes: Cell,
    pub outbytes: Cell,
    /// Live sessions in TCP ESTABLISHED (gauge).
    pub active: Cell,
    /// Other live sessions (gauge).
    pub inactive: Cell,
    /// Live persistence templates pointing here (gauge, IPVS's PersistConn).
    pub persist: Cell,
}

impl TrafficCells {
    pub fn read(&self) -> gw_proto::Stats {
        gw_proto::Stats {
            conns: self.conns.get(),
            inpkts: self.inpkts.get(),
            outpkts: self.outpkts.get(),
            inbytes: self.inbytes.get(),
            outbytes: self.outbytes.get(),
        }
    }
}

/// Everything one worker publishes to the control plane.
#[derive(Debug)]
pub struct WorkerCounters {
    pub worker: u32,
    pub lcore: u32,
    drops: [Cell; N_DROPS],
    events: [Cell; N_EVENTS],
    /// Indexed by real-server slot.
    pub dests: Box<[TrafficCells]>,
    /// Indexed by service slot.
    pub services: Box<[TrafficCells]>,
    /// The configuration generation this worker runs with.
    pub generation: Cell,
}

impl WorkerCounters {
    pub fn new(worker: u32, lcore: u32, max_services: usize, max_dests: usize) -> Self {
        WorkerCounters {
            worker,
            lcore,
            drops: std::array::from_fn(|_| Cell::default()),
            events: std::array::from_fn(|_| Cell::default()),
            dests: (0..max_dests).map(|_| TrafficCells::default()).collect(),
            services: (0..max_services).map(|_| TrafficCells::default()).collect(),
            generation: Cell::default(),
        }
    }
    #[inline(always)]
    pub fn count_drop(&self, why: Drop) {
        self.drops[why as usize].add(1);
    }
    #[inline(always)]
    pub fn count_drops(&self, why: Drop, n: u64) {
        self.drops[why as usize].add(n);
    }
    #[inline(always)]
    pub fn event(&self, e: Event, n: u64) {
        self.events[e as usize].add(n);
    }
    #[inline(always)]
    pub fn event_cell(&self, e: Event) -> &Cell {
        &self.events[e as usize]
    }
    /// Counts one poll loop of `cycles` TSC cycles: its histogram bucket,
    /// the sum and the maximum (three stores to this worker's own lines,
    /// once per loop, not per packet).
    #[inline(always)]
    pub fn count_loop(&self, cycles: u64) {
        self.event(LOOP_EVENT_BY_LEADING_ZEROS[cycles.leading_zeros() as usize], 1);
        self.event(Event::LoopCycles, cycles);
        let max = self.event_cell(Event::LoopCyclesMax);
        if cycles > max.get() {
            max.set(cycles);
        }
    }
    pub fn drop_count(&self, why: Drop) -> u64 {
        self.drops[why as usize].get()
    }
    pub fn event_count(&self, e: Event) -> u64 {
        self.events[e as usize].get()
    }
    /// All counters by name, events first, then drops.
    pub fn snapshot(&self) -> Vec<gw_proto::Counter> {
        let ev = Event::ALL.iter().map(|e| (e.name(), self.event_count(*e)));
        let dr = Drop::ALL.iter().map(|d| (d.name(), self.drop_count(*d)));
        ev.chain(dr).map(|(name, value)| gw_proto::Counter { name: name.to_string(), value }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each loop length lands in the bucket whose bounds hold it, checked
    /// against [`LOOP_BUCKETS`]' bounds by a search, at every power of two
    /// and on both sides of it.
    #[test]
    fn loop_lengths_land_in_their_bucket() {
        let by_search = |c: u64| LOOP_BUCKETS.iter().position(|(_, below)| c < *below).unwrap();
        for b in 0..64 {
            for c in [(1u64 << b) - 1, 1 << b, (1 << b) + 1] {
                assert_eq!(loop_bucket(c), by_search(c), "{c} cycles");
            }
        }
        assert_eq!(loop_bucket(u64::MAX), LOOP_BUCKETS.len() - 1);
        for b in 0..=64 {
            let c = if b == 0 { 0 } else { 1u64 << (b - 1) };
            let e = LOOP_EVENT_BY_LEADING_ZEROS[c.leading_zeros() as usize];
            assert_eq!(e, LOOP_BUCKETS[by_search(c)].0, "{c} cycles: the table's counter");
        }
        let w = WorkerCounters::new(0, 0, 1, 1);
        for c in [100, 5_000, 5_000, 3_000_000, 70_000] {
            w.count_loop(c);
        }
        let counts: Vec<u64> = LOOP_BUCKETS.iter().map(|(e, _)| w.event_count(*e)).collect();
        assert_eq!(counts, [1, 2, 0, 1, 0, 1]);
        assert_eq!(w.event_count(Event::LoopCycles), 3_080_100);
        assert_eq!(w.event_count(Event::LoopCyclesMax), 3_000_000);
    }

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        for (i, d) in Drop::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
        let mut names: Vec<_> = Drop::ALL.iter().map(|d| d.name()).collect();
        names.extend(Event::ALL.iter().map(|e| e.name()));
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    fn readme() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        std::fs::read_to_string(path).expect("README.md at the workspace root")
    }

    #[test]
    fn readme_drop_table_is_the_one_the_enum_makes() {
        let readme = readme();
        let start = readme.find("| counter | meaning |").expect("README has the drop-counter table");
        let found: Vec<&str> = readme[start..].lines().take_while(|l| l.starts_with('|')).collect();
        let want = Drop::readme_table();
        let want: Vec<&str> = want.lines().collect();
        if found != want {
            let (i, (w, f)) = want
                .iter()
                .chain(std::iter::repeat(&"(nothing)"))
                .zip(found.iter().chain(std::iter::repeat(&"(nothing)")))
                .enumerate()
                .find(|(_, (w, f))| w != f)
                .expect("the tables differ somewhere");
            panic!(
                "README.md's drop-counter table differs from core/src/counters.rs at table line {}:\n  \
                 README: {f}\n  wanted: {w}\nReplace the README's table with:\n\n{}",
                i + 1,
                want.join("\n")
            );
        }
    }

    #[test]
    fn readme_names_every_other_counter() {
        let readme = readme();
        let start = readme.find("Other counters:").expect("README lists the other counters");
        let para = readme[start..].split("\n\n").next().unwrap();
        let mut found: Vec<&str> = para
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
            .collect();
        let mut want: Vec<&str> = Event::ALL.iter().map(|e| e.name()).collect();
        found.sort();
        found.dedup();
        want.sort();
        assert_eq!(found, want, "README.md's \"Other counters\" paragraph and the Event enum differ");
    }

    #[test]
    fn counts_are_read_back_by_name() {
        let c = WorkerCounters::new(0, 1, 4, 4);
        c.count_drop(Drop::NoRoute);
        c.count_drop(Drop::NoRoute);
        c.event(Event::RxPackets, 5);
        let snap = c.snapshot();
        let get = |n: &str| snap.iter().find(|x| x.name == n).unwrap().value;
        assert_eq!(get("drop_no_route"), 2);
        assert_eq!(get("rx_packets"), 5);
        assert_eq!(get("drop_fragment"), 0);
        assert_eq!(std::mem::size_of::<TrafficCells>(), 64);
    }
}
