//! Command line of gw-pktgen.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use gw_benches::traffic::order::Order;
use gw_benches::traffic::{flows, frame6};
use gw_core::wire::ethernet::MacAddr;

/// IP MTU the fragmented datagrams are cut to (`--fragment`).
pub const FRAGMENT_MTU: usize = 1500;
/// Smallest `--fragment`: a UDP datagram that does not fit the MTU.
const MIN_FRAGMENTED: usize = FRAGMENT_MTU - 20 + 1;
/// Largest `--fragment`: its fragments fit one burst (32 x 1480 bytes).
const MAX_FRAGMENTED: usize = gw_dpdk::BURST * (FRAGMENT_MTU - 20);

/// `--order`: see [`gw_benches::traffic::order`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlowOrder {
    Table,
    Random,
    Zipf,
}

impl FlowOrder {
    pub fn order(self, n: u64) -> Order {
        let name = match self {
            FlowOrder::Table => "table",
            FlowOrder::Random => "random",
            FlowOrder::Zipf => "zipf",
        };
        Order::new(name, n).expect("a known order")
    }
}

/// Transport of the generated flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    /// UDP datagrams; the first one of a flow creates its session.
    Udp,
    /// TCP: SYN opens a flow (the servers answer SYN+ACK, the clients ACK),
    /// then ACK+PSH segments with data.
    Tcp,
}

/// gw-pktgen: a pktgen-style generator that plays both the clients and the
/// real servers of a layer-4 load balancer over two DPDK ports.
///
/// Port 0 (`--client-port`) faces the gateway's outside: it sends the
/// clients' packets to the VIP and receives the answers. Port 1
/// (`--server-port`) faces the inside: it receives what the gateway forwards
/// to the real servers and, unless `--one-way`, sends each packet back as
/// the server's answer (addresses and ports swapped, SYN answered with
/// SYN+ACK). Every packet carries the sender's TSC, so latency through the
/// gateway is measured where it arrives. It answers ARP for the router in
/// front of the clients and for the real servers.
///
/// Phases: prime (a few packets, slowly, so the gateway resolves its
/// neighbours), open (one opening packet per flow, unless --no-open), warm-up,
/// measure, and optionally half-load (latency at half the measured rate).
/// The result is one JSON object on stdout.
///
/// Usage: gw-pktgen [OPTIONS] -- [EAL ARGS]
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// DPDK name of the client-side port.
    #[arg(long, default_value = "net_memif0")]
    pub client_port: String,
    /// DPDK name of the server-side port.
    #[arg(long, default_value = "net_memif1")]
    pub server_port: String,
    /// Concurrent flows (distinct client address:port tuples), 1 to 4.2 G.
    #[arg(long, default_value_t = 1000)]
    pub flows: u64,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Proto::Udp)]
    pub proto: Proto,
    /// Frame sizes in bytes without FCS (60 to 1514), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub sizes: Vec<usize>,
    /// How many frames of each size in turn (e.g. 7,4,1 with --sizes
    /// 64,512,1514 is the simple IMIX); default one of each.
    #[arg(long, value_delimiter = ',')]
    pub mix: Vec<usize>,
    /// Client packets per second in the measurement; 0 = as fast as the
    /// link takes them.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Seconds per sub-window of the measurement: figures are also given
    /// per sub-window, so a median and a spread can be reported.
    #[arg(long, default_value_t = 0.5)]
    pub sample: f64,
    /// Seconds of warm-up before the measurement (same rate, not counted).
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// Seconds at half the measured rate, for latency at half load (0: skip).
    #[arg(long, default_value_t = 0.0)]
    pub half_load: f64,
    /// Do not open the flows before measuring.
    #[arg(long)]
    pub no_open: bool,
    /// Measure new flows: every packet of the measurement is a flow never
    /// seen (numbered after the --flows that were opened).
    #[arg(long)]
    pub new_flows: bool,
    /// The order established flows are visited in: `random` (every flow
    /// once per round, scattered over the gateway's session table),
    /// `zipf` (a few hot flows, a long tail) or `table` (in the order they
    /// were opened: sequential in the table, flattering).
    #[arg(long, value_enum, default_value_t = FlowOrder::Random)]
    pub order: FlowOrder,
    /// The servers only count (DR, TUN: real servers answer the client
    /// directly, not through the gateway); latency is client -> server.
    #[arg(long)]
    pub one_way: bool,
    /// The gateway's outside address, resolved with ARP for its MAC.
    #[arg(long, default_value_t = flows::GW_OUTSIDE)]
    pub gw_ip: Ipv4Addr,
    /// The gateway's outside MAC: skips ARP (for testpmd, which answers none).
    #[arg(long)]
    pub gw_mac: Option<MacAddr>,
    /// The virtual service.
    #[arg(long, default_value_t = flows::VIP)]
    pub vip: Ipv4Addr,
    /// The virtual port.
    #[arg(long, default_value_t = flows::VPORT)]
    pub vport: u16,
    /// The clients speak IPv6 (issue 17): flow f's client is the IPv4
    /// plan's address in the low 32 bits of 2001:db8:c000::/96, the service
    /// is --vip6. The servers' side is whatever the gateway sends (IPv6 for
    /// FULLNAT66, IPv4 for NAT64); the generator answers neighbour
    /// solicitations for the router 2001:db8::254, the clients and the IPv6
    /// real servers 2001:db8:1::2.. The gateway's MAC is still resolved with
    /// ARP for --gw-ip (its outside port is dual-stack).
    #[arg(long)]
    pub ipv6: bool,
    /// The IPv6 virtual service (with --ipv6).
    #[arg(long, default_value_t = frame6::VIP6)]
    pub vip6: Ipv6Addr,
    /// Alternating phases (issue 17's ratios on a noisy machine), with
    /// --ipv6: the flows are opened over IPv4 (--vip, frames of --sizes4)
    /// and over IPv6 (--vip6, --sizes), then a warm-up of each, then
    /// --pairs pairs of phases of this many seconds, one IPv4 (`ipv4`) and
    /// one IPv6 (`ipv6`) each, the first of a pair alternating (ABBA), all
    /// as fast as the link takes them. The gateway's counters are read at
    /// every phase boundary, so each phase has its own cycles per packet.
    /// Replaces the measure and half-load phases. 0: off.
    #[arg(long, default_value_t = 0.0)]
    pub alternate: f64,
    /// Pairs of --alternate phases.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub pairs: u32,
    /// Frame sizes of the IPv4 phases of --alternate (the IPv6 ones use
    /// --sizes; the default pair, 64 and 84, differs by the IPv6 header's
    /// extra 20 bytes, as the benchmark's rows).
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub sizes4: Vec<usize>,
    /// gatewayd's process id: with --alternate, its worker threads' time
    /// on the CPU (`/proc/PID/task/*/schedstat`) is read around every
    /// phase and added to the phase's gateway counters as `worker_run_ns`,
    /// so a phase's cycles per packet can leave out the time the worker
    /// was not running (other processes on its CPU).
    #[arg(long)]
    pub dut_pid: Option<u32>,
    /// gatewayd's control socket: its counters are read around each phase.
    #[arg(long)]
    pub gw_socket: Option<PathBuf>,
    /// Seconds to wait for both links and the gateway's ARP answer.
    #[arg(long, default_value_t = 15.0)]
    pub link_timeout: f64,
    /// After printing the report, keep the ports open until a line (or EOF)
    /// arrives on stdin: a memif peer's statistics vanish when its peer
    /// disconnects, and testpmd reads them when it stops.
    #[arg(long)]
    pub hold: bool,
    /// Rx/tx queue pairs per port. A memif pair must agree: give as many
    /// as gatewayd has workers. Generated bursts go round the queues.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub queues: u16,
    /// At "as fast as possible", how long to pause sending after the link
    /// refused a burst (its ring is full), in nanoseconds. Retrying a full
    /// memif ring at once keeps its cache lines bouncing between the two
    /// CPUs and slows the receiver down.
    #[arg(long, default_value_t = 2000)]
    pub backoff_ns: u64,
    /// Mbufs in the generator's pool.
    #[arg(long, default_value_t = 16383)]
    pub mbufs: u32,
    /// SYN-flood measurement (issue 7), TCP with --rate only: after the
    /// warm-up, phases `before` (--duration), `syn_flood_paced` (see
    /// --paced-flood), `syn_flood` (this many seconds:
    /// the established flows at --rate plus SYNs from never-seen spoofed
    /// client tuples as fast as the link takes them; the SYN+ACKs are never
    /// answered), `after` (--duration), then `ack_flood` (--ack-flood
    /// seconds of ACKs without a session) and `after_ack`. 0: off.
    #[arg(long, default_value_t = 0.0)]
    pub syn_flood: f64,
    /// Before the full-rate SYN flood, this many seconds of SYN flood at
    /// --flood-rate (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub paced_flood: f64,
    /// SYNs per second of the paced flood.
    #[arg(long, default_value_t = 1_000_000.0)]
    pub flood_rate: f64,
    /// Seconds of the ACK flood of the SYN-flood measurement (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub ack_flood: f64,
    /// The service is a SYNPROXY one (issue 16; TCP, IPv4): the clients
    /// answer the gateway's cookie SYN+ACKs (ACK = cookie + 1), the real
    /// servers acknowledge the gateway's SYNs; with --syn-flood, SYNs that
    /// reach the servers are counted (`server_syn_rx`) and legitimate new
    /// connections open during the floods at --legit-rate.
    #[arg(long)]
    pub synproxy: bool,
    /// New legitimate connections per second during each flood (with
    /// --synproxy).
    #[arg(long, default_value_t = 10_000.0)]
    pub legit_rate: f64,
    /// Send UDP datagrams of this many bytes (UDP header + payload) as IPv4
    /// fragments of at most 1500 bytes with DF clear, each datagram with its
    /// own IP identification, instead of --sizes (the flows are still opened
    /// with small datagrams). The real servers reflect each fragment;
    /// datagrams are counted when their last fragment arrives
    /// (`rx_fragments` counts the frames). 0: off.
    #[arg(long, default_value_t = 0)]
    pub fragment: usize,
    /// Answer pacing of the warm-up and the measurement when they run as
    /// fast as possible (no --rate): at most this many client packets in
    /// flight, i.e. sent and their answer not yet back (each client packet
    /// has one: a datagram's, a SYN's SYN+ACK, an ACK's echo). The
    /// generator then offers what the gateway answers rather than keeping
    /// its receive ring full, where a gateway sheds SYNs (drop_syn_shed).
    /// Packets without an answer --window-timeout-ms after the window
    /// filled are given up (`window_lost`). 0: off.
    #[arg(long, default_value_t = 0)]
    pub window: u64,
    /// How long a full --window waits for an answer before it gives up the
    /// packets in flight as lost. Longer than a CPU time slice: a gateway
    /// that was only descheduled (a shared machine) still holds them, and
    /// a new window on top would fill its ring.
    #[arg(long, default_value_t = 20)]
    pub window_timeout_ms: u64,
    /// With --new-flows and --proto tcp: the clients do not answer the
    /// SYN+ACKs of the measured connections, so each new session is a SYN
    /// forwarded to a server and its SYN+ACK returned (2 packets, like a
    /// new UDP flow's first datagram and its answer). The flows opened
    /// before are still whole handshakes.
    #[arg(long)]
    pub syn_only: bool,
    /// EAL arguments (after `--`).
    #[arg(last = true)]
    pub eal: Vec<String>,
}

impl Args {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.flows == 0 || self.flows > flows::MAX_FLOWS {
            return Err(format!("--flows must be 1..={}", flows::MAX_FLOWS));
        }
        if self.sizes.is_empty() || self.sizes.iter().any(|s| !(60..=1514).contains(s)) {
            return Err("--sizes: each size must be 60..=1514".into());
        }
        if !self.mix.is_empty() && (self.mix.len() != self.sizes.len() || self.mix.iter().all(|m| *m == 0)) {
            return Err("--mix needs one count per size, not all 0".into());
        }
        if !(self.rate >= 0.0
            && self.duration > 0.0
            && self.warmup >= 0.0
            && self.half_load >= 0.0
            && self.sample > 0.0)
        {
            return Err("--rate, --warmup and --half-load must be >= 0, --duration and --sample > 0".into());
        }
        if self.fragment > 0
            && (self.proto != Proto::Udp || !(MIN_FRAGMENTED..=MAX_FRAGMENTED).contains(&self.fragment))
        {
            return Err(format!(
                "--fragment needs --proto udp and {MIN_FRAGMENTED}..={MAX_FRAGMENTED} bytes (at most a burst of fragments)"
            ));
        }
        if self.ipv6 && self.fragment > 0 {
            return Err("--fragment sends IPv4 fragments: not with --ipv6".into());
        }
        if self.alternate.is_nan() || self.alternate < 0.0 {
            return Err("--alternate must be >= 0".into());
        }
        if self.alternate > 0.0
            && (!self.ipv6
                || self.new_flows
                || self.syn_flood > 0.0
                || self.synproxy
                || self.one_way
                || self.no_open
                || !self.mix.is_empty()
                || self.sizes4.len() != self.sizes.len()
                || self.sizes4.iter().any(|s| !(60..=1514).contains(s)))
        {
            return Err("--alternate needs --ipv6 with established round-trip flows (no --new-flows, --syn-flood, --synproxy, --one-way, --no-open, --mix) and one --sizes4 (60..=1514) per --sizes".into());
        }
        if self.syn_flood > 0.0 && (self.proto != Proto::Tcp || self.rate <= 0.0 || self.new_flows) {
            return Err("--syn-flood needs --proto tcp and a --rate, and no --new-flows".into());
        }
        if self.synproxy
            && (self.proto != Proto::Tcp || self.ipv6 || self.legit_rate.is_nan() || self.legit_rate <= 0.0)
        {
            return Err("--synproxy needs --proto tcp over IPv4 and a --legit-rate above 0".into());
        }
        if self.syn_only && (self.proto != Proto::Tcp || !self.new_flows || self.synproxy) {
            return Err("--syn-only needs --proto tcp and --new-flows, and no --synproxy".into());
        }
        if !(self.syn_flood >= 0.0
            && self.ack_flood >= 0.0
            && self.paced_flood >= 0.0
            && self.flood_rate > 0.0)
        {
            return Err("--syn-flood and --ack-flood must be >= 0".into());
        }
        Ok(())
    }

    /// Which size index each packet in turn uses.
    pub fn size_pattern(&self) -> Vec<usize> {
        let mix = if self.mix.is_empty() { vec![1; self.sizes.len()] } else { self.mix.clone() };
        mix.iter().enumerate().flat_map(|(i, n)| (0..*n).map(move |_| i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn alternate_needs_ipv6_and_established_flows() {
        let ok = ["gw-pktgen", "--ipv6", "--sizes", "84", "--alternate", "0.3", "--pairs", "4"];
        let a = Args::parse_from(ok);
        a.validate().unwrap();
        assert_eq!((a.pairs, a.sizes4.clone()), (4, vec![64]));
        assert!(Args::parse_from(["gw-pktgen", "--alternate", "0.3"]).validate().is_err(), "IPv4 only");
        let new = ["gw-pktgen", "--ipv6", "--alternate", "0.3", "--new-flows"];
        assert!(Args::parse_from(new).validate().is_err());
        let sizes = ["gw-pktgen", "--ipv6", "--alternate", "0.3", "--sizes4", "64,128"];
        assert!(Args::parse_from(sizes).validate().is_err(), "one IPv4 size per IPv6 size");
        assert!(Args::parse_from(["gw-pktgen", "--ipv6", "--alternate=-1"]).validate().is_err());
        assert!(Args::try_parse_from(["gw-pktgen", "--pairs", "0"]).is_err());
    }

    #[test]
    fn sizes_and_mix() {
        let a =
            Args::parse_from(["gw-pktgen", "--sizes", "64,512,1514", "--mix", "7,4,1", "--", "--no-huge"]);
        a.validate().unwrap();
        let p = a.size_pattern();
        assert_eq!(p.len(), 12);
        assert_eq!(p.iter().filter(|i| **i == 2).count(), 1);
        assert_eq!(a.eal, vec!["--no-huge".to_string()]);
        let bad = Args::parse_from(["gw-pktgen", "--sizes", "64,512", "--mix", "1"]);
        assert!(bad.validate().is_err());
        let bad = Args::parse_from(["gw-pktgen", "--sizes", "40"]);
        assert!(bad.validate().is_err());
        let flood = ["gw-pktgen", "--proto", "tcp", "--rate", "1000", "--syn-flood", "2", "--ack-flood", "1"];
        Args::parse_from(flood).validate().unwrap();
        let sp = ["gw-pktgen", "--proto", "tcp", "--rate", "1000", "--syn-flood", "2", "--synproxy"];
        Args::parse_from(sp).validate().unwrap();
        assert!(Args::parse_from(["gw-pktgen", "--synproxy"]).validate().is_err(), "SYNPROXY is TCP");
        // A SYN flood needs TCP and a fixed rate for the established flows.
        assert!(Args::parse_from(["gw-pktgen", "--proto", "tcp", "--syn-flood", "2"]).validate().is_err());
        assert!(Args::parse_from(["gw-pktgen", "--rate", "1000", "--syn-flood", "2"]).validate().is_err());
        Args::parse_from(["gw-pktgen", "--fragment", "3000"]).validate().unwrap();
        assert!(Args::parse_from(["gw-pktgen", "--fragment", "1000"]).validate().is_err());
        assert!(Args::parse_from(["gw-pktgen", "--fragment", "60000"]).validate().is_err());
        assert!(Args::parse_from(["gw-pktgen", "--fragment", "3000", "--proto", "tcp"]).validate().is_err());
        let syn = ["gw-pktgen", "--proto", "tcp", "--new-flows", "--syn-only", "--window", "64"];
        let a = Args::parse_from(syn);
        a.validate().unwrap();
        assert_eq!(a.window, 64);
        assert!(Args::parse_from(["gw-pktgen", "--new-flows", "--syn-only"]).validate().is_err(), "TCP only");
        assert!(Args::parse_from(["gw-pktgen", "--proto", "tcp", "--syn-only"]).validate().is_err());
    }
}
