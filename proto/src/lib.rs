//! The control protocol spoken over gatewayd's unix socket.
//!
//! Both `gatewayd` and `gwctl` use these types, so the two sides cannot drift.
//! A frame is a 4-byte big-endian body length followed by a JSON body of at most
//! [`MAX_FRAME`] bytes. One request gets exactly one response on the same
//! connection; a client may send several requests on one connection.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Largest frame body either side accepts (a listing of 10,000 services fits).
pub const MAX_FRAME: usize = 64 << 20;

/// Local addresses one service takes at most (`--add-laddr`, a keepalived
/// `local_address_group`): each gives a FULLNAT service a worker's share of
/// the local port range toward each real server (a DPVS director uses a few
/// to tens), and a request's duplicate check and every publish walk them.
pub const MAX_LADDRS: usize = 1024;

/// Layer-4 protocol of a virtual service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number (RFC 790).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
    /// The name ipvsadm prints in listings: `TCP` or `UDP`.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// A virtual service: protocol, VIP (either family) and virtual port.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub proto: Protocol,
    pub addr: IpAddr,
    pub port: u16,
}

impl ServiceKey {
    /// The VIP if it is IPv4 (the only family gatewayd's dataplane carries
    /// today; the daemon refuses IPv6 services before they reach it).
    pub fn v4(&self) -> Option<Ipv4Addr> {
        v4(self.addr)
    }
}

impl fmt::Display for ServiceKey {
    /// `TCP 198.18.0.1:80` or `TCP [2001:db8::1]:80`, as ipvsadm writes
    /// an address and port.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.proto.label(), AddrPort(self.addr, self.port))
    }
}

/// An address and port written as ipvsadm writes them
/// (`addrport_to_anyname` with `-n`): `a.b.c.d:port`, `[v6]:port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrPort(pub IpAddr, pub u16);

impl fmt::Display for AddrPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{}]:{}", Ntop(IpAddr::V6(a)), self.1),
        }
    }
}

/// An address as glibc's `inet_ntop` writes it, which ipvsadm prints: for
/// IPv6 the longest run of two or more zero groups compressed (RFC 5952, as
/// Rust's `Display`), except that an IPv4-compatible (`::a.b.c.d`, the
/// first six groups zero and the seventh not) or IPv4-mapped
/// (`::ffff:a.b.c.d`) address ends in dotted decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ntop(pub IpAddr);

impl fmt::Display for Ntop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => {
                let s = a.segments();
                let o = a.octets();
                let compat = s[..6] == [0; 6] && s[6] != 0;
                if compat || s[..6] == [0, 0, 0, 0, 0, 0xffff] {
                    let v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
                    let head = if compat { "::" } else { "::ffff:" };
                    write!(f, "{head}{v4}")
                } else {
                    write!(f, "{a}")
                }
            }
        }
    }
}

/// `addr` if it is IPv4.
pub fn v4(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// ipvsadm's persistence granularity of an IPv6 service when `-M` is not
/// given: the whole address.
pub const FULL_PREFIX6: u8 = 128;

fn full_prefix6() -> u8 {
    FULL_PREFIX6
}

fn is_full_prefix6(p: &u8) -> bool {
    *p == FULL_PREFIX6
}

/// Scheduling algorithm of a service (`-s`), named as ipvsadm names them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin, with the kernel's gcd-stepping sequence.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (ipvsadm's default).
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Maglev hashing.
    Mh,
    /// Weighted failover.
    Fo,
    /// Weighted overflow (`ip_vs_ovf.c`).
    Ovf,
}

impl Scheduler {
    pub const ALL: [Scheduler; 13] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Mh,
        Scheduler::Fo,
        Scheduler::Ovf,
    ];
    /// ipvsadm's default when `-s` is absent.
    pub const DEFAULT: Scheduler = Scheduler::Wlc;
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Mh => "mh",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheduler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scheduler::ALL.into_iter().find(|x| x.name() == s).ok_or_else(|| format!("Scheduler not found: {s}"))
    }
}

/// Packet forwarding method of a real server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMode {
    /// `-b`: SNAT to a local address and DNAT to the real server (DPVS's FULLNAT).
    FullNat,
    /// `-m`: DNAT only; real servers route replies back through the gateway.
    Masq,
    /// `-g`: direct routing, only the destination MAC changes.
    Route,
    /// `-i`: IP-in-IP tunnelling to the real server.
    Tunnel,
}

impl ForwardMode {
    /// The word ipvsadm prints in the Forward column.
    pub fn label(self) -> &'static str {
        match self {
            ForwardMode::FullNat => "FullNat",
            ForwardMode::Masq => "Masq",
            ForwardMode::Route => "Route",
            ForwardMode::Tunnel => "Tunnel",
        }
    }
}

/// Scheduler flags (`-b` with `-A`/`-E`), IPVS's `IP_VS_SVC_F_SCHED1..3`.
pub mod sched_flags {
    /// `flag-1`: `sh-fallback` / `mh-fallback`.
    pub const FLAG1: u8 = 1;
    /// `flag-2`: `sh-port` / `mh-port`.
    pub const FLAG2: u8 = 2;
    /// `flag-3`.
    pub const FLAG3: u8 = 4;
}

/// How a FULLNAT TCP connection hands the client's address to the real
/// server, which otherwise sees only the local address.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ClientAddr {
    /// Nothing (ipvsadm's FULLNAT, DPVS with `--proxy-protocol disable`).
    #[default]
    None,
    /// `--toa`: TCP option 254 (client port and address) on the handshake's
    /// SYN and ACK, as Alibaba's TOA kernel module reads it.
    Toa,
    /// `--proxy-protocol v1`: haproxy's text header before the first byte.
    ProxyV1,
    /// `--proxy-protocol v2`: haproxy's binary header.
    ProxyV2,
}

impl ClientAddr {
    /// Whether it is [`ClientAddr::None`] (then not on the wire at all).
    pub fn is_none(&self) -> bool {
        *self == ClientAddr::None
    }
    /// The word DPVS's ipvsadm lists after the service's flags (`toa` is
    /// gwctl's), `None` for [`ClientAddr::None`].
    pub fn list_word(self) -> Option<&'static str> {
        match self {
            ClientAddr::None => None,
            ClientAddr::Toa => Some("toa"),
            ClientAddr::ProxyV1 => Some("ppv1"),
            ClientAddr::ProxyV2 => Some("ppv2"),
        }
    }
}

/// ipvsadm's persistence timeout when `-p` has no value (seconds).
pub const DEFAULT_PERSISTENCE: u32 = 360;

fn host_mask() -> Ipv4Addr {
    Ipv4Addr::BROADCAST
}

/// A service as added with `-A` or changed with `-E`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub key: ServiceKey,
    pub scheduler: Scheduler,
    /// `-p [timeout]`: persistence timeout in seconds; `None` when not persistent.
    #[serde(default)]
    pub persistent: Option<u32>,
    /// `-M netmask` of an IPv4 service: clients in one masked network share
    /// a persistence template.
    #[serde(default = "host_mask")]
    pub netmask: Ipv4Addr,
    /// `-M prefix-length` of an IPv6 service (1..=128, ipvsadm's form for
    /// IPv6; 128 when not given). Unused for IPv4 services.
    #[serde(default = "full_prefix6", skip_serializing_if = "is_full_prefix6")]
    pub prefix6: u8,
    /// `-o`: one-packet scheduling (each UDP datagram scheduled on its own).
    #[serde(default)]
    pub one_packet: bool,
    /// `-b flags`: `sched_flags::*` bits.
    #[serde(default)]
    pub sched_flags: u8,
    /// How a FULLNAT TCP connection tells the real server the client's
    /// address (`--toa`, `--proxy-protocol v1|v2`).
    #[serde(default, skip_serializing_if = "ClientAddr::is_none")]
    pub client_addr: ClientAddr,
    /// `-j enable` (DPVS's `--synproxy`): the gateway answers a TCP
    /// client's SYN with a SYN cookie and opens the connection to the real
    /// server only after the client's valid ACK (FULLNAT and NAT).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synproxy: bool,
}

impl ServiceSpec {
    /// A service with no persistence, flags or options.
    pub fn new(key: ServiceKey, scheduler: Scheduler) -> ServiceSpec {
        ServiceSpec {
            key,
            scheduler,
            persistent: None,
            netmask: host_mask(),
            prefix6: FULL_PREFIX6,
            one_packet: false,
            sched_flags: 0,
            client_addr: ClientAddr::None,
            synproxy: false,
        }
    }
}

/// The largest weight of a real server: the kernel keeps it in an `int`
/// (`ip_vs_add_dest` refuses one below 0), and keepalived takes up to
/// `INT32_MAX` (`IPVS_WEIGHT_LIMIT`). ipvsadm's own `-w` stops at 65535.
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

/// A real server as added with `-a` or changed with `-e`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestSpec {
    pub addr: IpAddr,
    pub port: u16,
    pub mode: ForwardMode,
    /// 0 ..= [`MAX_WEIGHT`].
    pub weight: u32,
    /// `-x`: upper connection threshold (0 = none).
    #[serde(default)]
    pub upper: u32,
    /// `-y`: lower connection threshold (0 = none).
    #[serde(default)]
    pub lower: u32,
    /// `--tun-type` and its options (only for [`ForwardMode::Tunnel`]; ipip
    /// for the other modes, and left out of the JSON when ipip).
    #[serde(default, skip_serializing_if = "TunnelEncap::is_ipip")]
    pub tunnel: TunnelEncap,
}

impl DestSpec {
    /// A real server with no connection thresholds.
    pub fn new(addr: impl Into<IpAddr>, port: u16, mode: ForwardMode, weight: u32) -> DestSpec {
        DestSpec { addr: addr.into(), port, mode, weight, upper: 0, lower: 0, tunnel: TunnelEncap::Ipip }
    }
}

/// The encapsulation of a tunnelling (`-i`) real server, as IPVS holds it
/// per destination (`include/uapi/linux/ip_vs.h`: `IPVS_DEST_ATTR_TUN_TYPE`,
/// `_TUN_PORT`, `_TUN_FLAGS`) and ipvsadm 1.31 sets it with `--tun-type`,
/// `--tun-port` and one of `--tun-nocsum`, `--tun-csum`, `--tun-remcsum`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TunnelEncap {
    /// IP-in-IP (RFC 2003) or IPv6-in-IPv6 (RFC 2473): IPVS's default.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (draft-ietf-intarea-gue, variant 0): an
    /// outer UDP header to `port`, then the 4-byte GUE header.
    Gue { port: u16, csum: TunnelCsum },
    /// GRE (RFC 2784): 4 header bytes, 8 with the checksum.
    Gre { csum: TunnelCsum },
}

/// The checksum option of a GUE or GRE tunnel (IPVS's
/// `IP_VS_TUNNEL_ENCAP_FLAG_*`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TunnelCsum {
    /// `--tun-nocsum` (`IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM`, 0): the default.
    #[default]
    NoCsum,
    /// `--tun-csum` (`IP_VS_TUNNEL_ENCAP_FLAG_CSUM`, 1).
    Csum,
    /// `--tun-remcsum` (`IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM`, 2): GUE only.
    RemCsum,
}

impl TunnelCsum {
    /// IPVS's `tun_flags` value.
    pub fn flags(self) -> u16 {
        match self {
            TunnelCsum::NoCsum => 0,
            TunnelCsum::Csum => 1,
            TunnelCsum::RemCsum => 2,
        }
    }
    /// ipvsadm 1.31's `tunflags[]` word in `-L --tun-info`.
    pub fn info(self) -> &'static str {
        ["-c", "+c", "r+c"][usize::from(self.flags())]
    }
    /// ipvsadm 1.31's `tun_flags_opts[]` option in `-S`.
    pub fn option(self) -> &'static str {
        ["--tun-nocsum", "--tun-csum", "--tun-remcsum"][usize::from(self.flags())]
    }
}

impl TunnelEncap {
    /// True for IP-in-IP, the default.
    pub fn is_ipip(&self) -> bool {
        *self == TunnelEncap::Ipip
    }
    /// ipvsadm 1.31's `tunnames[]` word.
    pub fn name(self) -> &'static str {
        match self {
            TunnelEncap::Ipip => "ipip",
            TunnelEncap::Gue { .. } => "gue",
            TunnelEncap::Gre { .. } => "gre",
        }
    }
    /// ipvsadm 1.31's `fwd_tun_info` cell: `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS`.
    pub fn info(self) -> String {
        match self {
            TunnelEncap::Ipip => "ipip".to_owned(),
            TunnelEncap::Gue { port, csum } => format!("gue:{port}:{}", csum.info()),
            TunnelEncap::Gre { csum } => format!("gre:{}", csum.info()),
        }
    }
    /// The options after `--tun-type` in ipvsadm 1.31's `-S`
    /// (`print_tunnel_rule`), without the leading space.
    pub fn rule(self) -> String {
        match self {
            TunnelEncap::Ipip => "--tun-type ipip".to_owned(),
            TunnelEncap::Gue { port, csum } => format!("--tun-type gue --tun-port {port} {}", csum.option()),
            TunnelEncap::Gre { csum } => format!("--tun-type gre {}", csum.option()),
        }
    }
}

/// Timeouts of `--set tcp tcpfin udp` and `-L --timeout`, in seconds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeoutSet {
    /// TCP ESTABLISHED.
    pub tcp: u32,
    /// TCP FIN_WAIT (after a FIN).
    pub tcpfin: u32,
    pub udp: u32,
}

/// A request from gwctl to gatewayd.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `-A`
    AddService { spec: ServiceSpec },
    /// `-E`
    EditService { spec: ServiceSpec },
    /// `-D`
    DelService { key: ServiceKey },
    /// `-C`
    Clear,
    /// `-a`
    AddDest { service: ServiceKey, dest: DestSpec },
    /// `-e`
    EditDest { service: ServiceKey, dest: DestSpec },
    /// `-d`
    DelDest { service: ServiceKey, addr: IpAddr, port: u16 },
    /// `--add-laddr -z LIP -t|-u VIP:port`
    AddLaddr { service: ServiceKey, addr: IpAddr },
    /// `--del-laddr -z LIP -t|-u VIP:port`
    DelLaddr { service: ServiceKey, addr: IpAddr },
    /// `--get-laddr [-t|-u VIP:port]`
    GetLaddr { service: Option<ServiceKey> },
    /// `-L`/`-l`: one service or all, with statistics.
    List { service: Option<ServiceKey> },
    /// `-Z`: zero the statistics of one service or all.
    Zero { service: Option<ServiceKey> },
    /// Gateway-wide counters: per-worker drop reasons and packet counts.
    Counters,
    /// `-R`: the requests of a rules file, applied in order as one change
    /// (one snapshot); stops at the first error, keeping what came before.
    Restore { requests: Vec<Request> },
    /// `--set tcp tcpfin udp`; a 0 leaves that timeout as it is.
    SetTimeouts { timeouts: TimeoutSet },
    /// `-L --timeout`.
    GetTimeouts,
    /// `-L -c`: connections (and persistence templates) of one service or all.
    ListConns { service: Option<ServiceKey> },
    /// Static neighbours (`--add-neighbour`, `--del-neighbour`,
    /// `--list-neighbours`): a gwctl extension.
    Neighbour(NeighbourRequest),
}

/// A neighbour whose MAC is set, not learnt through ARP or neighbour
/// discovery (`[[neighbour]]`): an IPv4 address, or an IPv6 one on a
/// dual-stack port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StaticNeighbour {
    pub addr: IpAddr,
    pub mac: [u8; 6],
    /// The port's name in gatewayd's configuration.
    pub port: String,
}

/// What to do with the static neighbours.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum NeighbourRequest {
    Add(StaticNeighbour),
    Del { addr: IpAddr, port: String },
    List,
}

/// Traffic statistics of a service or real server (ipvsadm `--stats`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.conns += o.conns;
        self.inpkts += o.inpkts;
        self.outpkts += o.outpkts;
        self.inbytes += o.inbytes;
        self.outbytes += o.outbytes;
    }
}

/// Per-second rates (`--rate`), computed by the daemon over a moving window.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// A real server in a listing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DestInfo {
    pub spec: DestSpec,
    /// Sessions in TCP ESTABLISHED (IPVS's ActiveConn).
    pub active_conns: u64,
    /// All other sessions (IPVS's InActConn).
    pub inactive_conns: u64,
    /// Persistence templates pointing at this server (IPVS's PersistConn).
    #[serde(default)]
    pub persist_conns: u64,
    pub stats: Stats,
    #[serde(default)]
    pub rates: Rates,
}

/// A service in a listing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    pub spec: ServiceSpec,
    pub dests: Vec<DestInfo>,
    pub laddrs: Vec<IpAddr>,
    pub stats: Stats,
    #[serde(default)]
    pub rates: Rates,
    /// The health-checked real servers (keepalived checkers), in the pool
    /// or taken out; empty when the service has no checks.
    #[serde(default)]
    pub health: Vec<RsHealth>,
}

/// A health-checked real server's state (`-L --health`, `--json`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RsHealth {
    pub addr: IpAddr,
    pub port: u16,
    /// All its checkers succeed (keepalived's `alive`).
    pub up: bool,
    /// In the pool: up, or down with `inhibit_on_failure` (weight 0); false
    /// when removed (down, or quorum lost with a sorry server).
    pub in_pool: bool,
    /// The weight it returns with when it recovers.
    pub weight: u32,
    /// Its checkers (keywords) and how many of them fail now.
    pub checkers: Vec<String>,
    pub failed: u32,
    /// Up/down transitions since it was configured.
    pub transitions: u64,
    /// The last failure's reason, if any.
    #[serde(default)]
    pub last_error: String,
    /// This is the virtual server's `sorry_server`.
    #[serde(default)]
    pub sorry: bool,
}

/// One connection or persistence template (`-L -c`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The worker that owns it.
    pub worker: u32,
    pub proto: Protocol,
    /// TCP state name as ipvsadm prints it (`ESTABLISHED`, `UDP`, `NONE` for templates, ...).
    pub state: String,
    /// Milliseconds until it expires.
    pub expires_ms: u64,
    pub client: (IpAddr, u16),
    pub vip: (IpAddr, u16),
    /// FULLNAT: the local address and port; other modes: the client again.
    pub local: (IpAddr, u16),
    pub dest: (IpAddr, u16),
    pub mode: ForwardMode,
    /// A persistence template (client port 0), not a connection.
    pub template: bool,
}

/// One named counter of one worker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    pub name: String,
    pub value: u64,
}

/// Counters of one worker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkerCounters {
    pub worker: u32,
    pub lcore: u32,
    pub counters: Vec<Counter>,
}

/// Statistics of one DPDK port (`rte_eth_stats`), as the control plane
/// last read them: `ipackets`, `opackets`, `ibytes`, `obytes`, `imissed`
/// (frames the device or, for `net_af_packet`, the kernel's rx ring had no
/// room for), `ierrors`, `oerrors`, `rx_nombuf`, then per queue
/// `qN_ipackets`, `qN_opackets`, `qN_ibytes`, `qN_obytes`, `qN_errors`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PortCounters {
    /// The port's name in gatewayd's configuration.
    pub name: String,
    /// Its DPDK port id.
    pub port: u16,
    pub counters: Vec<Counter>,
}

/// Why a request failed. gwctl turns each into ipvsadm's wording.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    ServiceExists,
    NoService,
    DestExists,
    NoDest,
    LaddrExists,
    NoLaddr,
    /// The request was understood but its values are not acceptable.
    Invalid,
    /// The request could not be decoded.
    BadRequest,
    /// A configured limit (services, real servers, addresses) was reached.
    Full,
    /// gatewayd already serves as many control connections as it allows.
    Busy,
    /// A value out of the kernel's range (ERANGE: a lower threshold above the upper one).
    OutOfRange,
    /// An unknown scheduler (the kernel's ENOENT on a service change).
    NoScheduler,
    /// An address family the dataplane does not carry (IPv6 today; the
    /// kernel's EAFNOSUPPORT).
    Unsupported,
}

impl ErrorKind {
    /// ipvsadm's text for the error (libipvs `ipvs_strerror`), where it has one.
    pub fn ipvsadm_text(self) -> &'static str {
        match self {
            ErrorKind::ServiceExists => "Service already exists",
            ErrorKind::NoService => "No such service",
            ErrorKind::DestExists => "Destination already exists",
            ErrorKind::NoDest => "No such destination",
            ErrorKind::LaddrExists => "Local address already exists",
            ErrorKind::NoLaddr => "No such local address",
            ErrorKind::Invalid => "Invalid argument",
            ErrorKind::BadRequest => "Malformed request",
            ErrorKind::Full => "Memory allocation problem",
            // Not an IPVS error: ipvsadm has no text for it.
            ErrorKind::Busy => "too many control connections",
            // strerror(ERANGE): libipvs has no text of its own for it.
            ErrorKind::OutOfRange => "Numerical result out of range",
            ErrorKind::NoScheduler => "Scheduler or persistence engine not found",
            ErrorKind::Unsupported => "Operation not supported with specified address family",
        }
    }
}

/// gatewayd's answer to one request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Error {
        kind: ErrorKind,
        message: String,
    },
    Services {
        /// Session-table capacity summed over workers (ipvsadm's `size=`).
        conn_table_size: u64,
        services: Vec<ServiceInfo>,
    },
    Laddrs {
        entries: Vec<(ServiceKey, Vec<IpAddr>)>,
    },
    Counters {
        workers: Vec<WorkerCounters>,
        /// Statistics of each port (absent from older daemons).
        #[serde(default)]
        ports: Vec<PortCounters>,
    },
    /// `-L --timeout`.
    Timeouts {
        timeouts: TimeoutSet,
    },
    /// `-L -c`.
    Conns {
        conns: Vec<ConnInfo>,
    },
    /// `--list-neighbours`.
    Neighbours {
        entries: Vec<StaticNeighbour>,
    },
}

impl Response {
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error { kind, message: message.into() }
    }
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME} bytes")]
    TooLarge(usize),
    #[error("malformed frame body: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Writes `msg` as one frame.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. A length above [`MAX_FRAME`] is refused before anything
/// is read; memory grows only with the bytes that arrive.
pub fn read_frame<R: Read, T: for<'de> Deserialize<'de>>(r: &mut R) -> Result<T, FrameError> {
    let len = read_frame_len(r)?;
    read_frame_body(r, len)
}

/// Reads a frame's length prefix (the first half of [`read_frame`], for a
/// server that decides whether to take a body of that size before reading
/// it). Above [`MAX_FRAME`] is an error.
pub fn read_frame_len<R: Read>(r: &mut R) -> Result<usize, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Reads and decodes a body of `len` bytes (the second half of
/// [`read_frame`]).
pub fn read_frame_body<R: Read, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    len: usize,
) -> Result<T, FrameError> {
    // Grow with what actually arrives: a peer announcing a large frame and
    // sending nothing costs nothing.
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() != len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated frame").into());
    }
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServiceKey {
        ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port: 80 }
    }

    #[test]
    fn request_round_trips_through_a_frame() {
        let req = Request::AddDest {
            service: key(),
            dest: DestSpec::new(Ipv4Addr::new(198, 18, 1, 2), 8080, ForwardMode::FullNat, 3),
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        assert_eq!(u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize, buf.len() - 4);
        let back: Request = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn oversized_length_is_refused_without_reading_the_body() {
        let buf = (MAX_FRAME as u32 + 1).to_be_bytes();
        let r: Result<Request, _> = read_frame(&mut buf.as_slice());
        assert!(matches!(r, Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn truncated_and_garbage_frames_are_errors() {
        let r: Result<Request, _> = read_frame(&mut [0u8, 0].as_slice());
        assert!(matches!(r, Err(FrameError::Closed)));
        let mut buf = 10u32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"{\"op\":");
        let r: Result<Request, _> = read_frame(&mut buf.as_slice());
        assert!(matches!(r, Err(FrameError::Io(_))));
        let mut buf = 5u32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"hello");
        let r: Result<Request, _> = read_frame(&mut buf.as_slice());
        assert!(matches!(r, Err(FrameError::Decode(_))));
    }

    #[test]
    fn scheduler_names_parse() {
        for s in Scheduler::ALL {
            assert_eq!(s.name().parse::<Scheduler>(), Ok(s));
        }
        assert!("bogus".parse::<Scheduler>().is_err());
    }

    #[test]
    fn older_frames_without_the_new_fields_still_decode() {
        let json = r#"{"op":"add_service","spec":{"key":{"proto":"tcp","addr":"1.2.3.4","port":80},"scheduler":"rr"}}"#;
        let r: Request = serde_json::from_str(json).unwrap();
        let Request::AddService { spec } = r else { panic!() };
        assert_eq!(spec, ServiceSpec::new(spec.key, Scheduler::Rr));
    }
}
