//! gatewayd's TOML configuration.
//!
//! Parsing is two steps: serde reads the file into plain structs (unknown
//! keys are refused), then [`Config::validate`] checks values and turns them
//! into typed settings. Every error names the field it is about, e.g.
//! `port[1].address: "198.18.1.1" is not ADDRESS/PREFIX`.
//!
//! Services have one grammar, ipvsadm's: a `[[service]]` section holds its
//! rules as `gwctl -S` writes them (`rules = """-A -t VIP:PORT -s rr ..."""`),
//! parsed by `gw-ipvsadm` exactly as gwctl and rules files are.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use gw_ipvsadm::services::PortNames;
use gw_proto::{Request, ServiceKey};
use serde::Deserialize;

use gw_core::engine::{ConnReuse, NoDest, NoServiceReply, RejectConfig};
use gw_core::route::{Iface, Route, Route6, RouteAddr, RpFilter};
use gw_core::tcp_state::Timeouts;
use gw_core::wire::ethernet::MacAddr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: {err}")]
    Parse { path: PathBuf, err: String },
    #[error("{field}: {msg}")]
    Invalid { field: String, msg: String },
    /// A rules file cannot be read, or a line of it is refused.
    #[error("rules file {}: {msg}", path.display())]
    Rules { path: PathBuf, msg: String },
    /// A keepalived.conf cannot be read, or is refused (`msg` names file and line).
    #[error("keepalived file {}: {msg}", path.display())]
    Keepalived { path: PathBuf, msg: String },
}

pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), msg: msg.into() }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub eal: EalSection,
    #[serde(rename = "port")]
    pub ports: Vec<PortSection>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSection>,
    #[serde(default)]
    pub workers: WorkersSection,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub neighbours: NeighSection,
    #[serde(default)]
    pub fragments: FragSection,
    #[serde(default)]
    pub control: ControlSection,
    #[serde(default)]
    pub ipvs: IpvsSection,
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceSection>,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default, rename = "neighbour")]
    pub static_neighbours: Vec<NeighbourSection>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EalSection {
    /// Extra EAL arguments (cores, memory, `--no-huge`, `--in-memory`, ...).
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSection {
    /// A label for routes and logs; defaults to `port<N>`.
    pub name: Option<String>,
    /// A PCI address (`0000:03:00.0`) or a vdev string
    /// (`net_af_packet0,iface=veth0`).
    pub device: String,
    /// `ADDRESS/PREFIX`, or a list of them for a dual-stack port: exactly
    /// one IPv4 and at most one IPv6 (`["198.18.0.1/24", "2001:db8::1/64"]`).
    pub address: Addresses,
    /// Overrides the port's own MAC address.
    pub mac: Option<String>,
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// IP MTU of the link (68..=9000); TUN mode checks packets against it.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Reverse-path filter: `strict` (default), `loose` or `off`.
    #[serde(default)]
    pub rp_filter: RpFilter,
    /// A kernel interface (TAP, DPDK's `net_tap`) of this name sharing the
    /// port's address and MAC: the exception path (`crate::kernel`). None
    /// by default.
    pub kernel: Option<String>,
}

fn default_mtu() -> u16 {
    1500
}

fn default_desc() -> u16 {
    1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// `NETWORK/PREFIX`, IPv4 or IPv6, e.g. `0.0.0.0/0` or `::/0`.
    pub dest: String,
    /// Next hop of the same family; must lie in a port's subnet (IPv6: a
    /// dual-stack port's prefix), or be an IPv6 link-local address with
    /// `port` given.
    pub via: String,
    /// The output port's `name`: needed for a link-local `via`; otherwise
    /// the port whose subnet holds `via` (and if given, it must be it).
    #[serde(default)]
    pub port: Option<String>,
}

/// What a worker does when a poll receives nothing.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdlePolicy {
    /// Poll without pause (production: a dedicated core).
    Busy,
    /// Sleep `idle_sleep_us` after `idle_polls` empty polls in a row.
    #[default]
    Sleep,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersSection {
    /// EAL lcores to run workers on; empty = every lcore but the main one.
    pub cores: Vec<u32>,
    pub idle: IdlePolicy,
    pub idle_polls: u32,
    pub idle_sleep_us: u64,
    /// Count `burst_cycles`: the TSC cycles of each rx burst that received
    /// packets, from the rx call to the end of its TX, as testpmd's
    /// `--record-core-cycles` counts its own (benchmarks: a like-for-like
    /// comparison). Off by default: it reads the TSC once more per port
    /// and poll.
    pub record_burst_cycles: bool,
    /// Session-table capacity of each worker.
    pub sessions: usize,
    /// IPv6 session-table capacity of each worker (a table of its own, of
    /// 128-byte sessions); absent: a quarter of `sessions`
    /// ([`WorkersSection::sessions6`]).
    #[serde(rename = "sessions6")]
    pub sessions6_setting: Option<usize>,
    /// Local ports for FULLNAT, inclusive.
    pub lport_min: u16,
    pub lport_max: u16,
    /// Mbufs in the pool (per gateway).
    pub mbufs: u32,
    pub max_services: usize,
    pub max_dests: usize,
    /// Share of each worker's session table that half-open TCP sessions
    /// (NONE, SYN_RECV) may take, in percent (SYN flood protection); the
    /// same share for FULLNAT/NAT UDP flows no real server has answered
    /// yet (UDP flood protection).
    pub half_open_percent: u8,
    /// SYNs per second a worker answers at most while overloaded (its
    /// receive bursts come back full), beyond its per-burst quota; the
    /// rest are shed before any other work (`drop_syn_shed`,
    /// [`gw_core::synproxy::shed`]).
    pub overload_syn_rate: u32,
    /// Bytes of packet one mbuf holds at least (the data room without
    /// DPDK's 128-byte headroom); raised to the largest port MTU + 18
    /// (jumbo frames are received whole, in one mbuf). On af_packet ports
    /// it also bounds the datagrams the kernel reassembles for the driver
    /// that arrive whole (see [`Config::mbuf_size`]).
    pub mbuf_size: usize,
}

impl WorkersSection {
    /// IPv6 sessions per worker: `sessions6`, else a quarter of `sessions`
    /// (`gw_core::engine::sessions6_of`).
    pub fn sessions6(&self) -> usize {
        self.sessions6_setting.unwrap_or_else(|| gw_core::engine::sessions6_of(self.sessions))
    }
}

impl Default for WorkersSection {
    fn default() -> Self {
        WorkersSection {
            cores: vec![],
            idle: IdlePolicy::Sleep,
            idle_polls: 64,
            idle_sleep_us: 100,
            record_burst_cycles: false,
            sessions: 1 << 20,
            sessions6_setting: None,
            lport_min: 1024,
            lport_max: 65535,
            mbufs: 16383,
            max_services: 4096,
            max_dests: 65536,
            half_open_percent: 50,
            overload_syn_rate: gw_core::synproxy::shed::DEFAULT_RATE,
            mbuf_size: DEFAULT_MBUF_SIZE,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighSection {
    pub capacity: usize,
    /// Share of `capacity` one port's neighbours may hold (1..=100).
    pub per_port_percent: u8,
    pub reachable_s: u64,
    pub retry_ms: u64,
    pub max_probes: u8,
}

impl Default for NeighSection {
    fn default() -> Self {
        NeighSection { capacity: 1024, per_port_percent: 75, reachable_s: 300, retry_ms: 1000, max_probes: 3 }
    }
}

/// IPv4 reassembly, per worker (the kernel's `ipfrag_high_thresh` and
/// `ipfrag_time`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FragSection {
    /// Datagrams reassembled at once per worker, each with a preallocated
    /// 64 KiB buffer (64: 4 MiB, the kernel's `ipfrag_high_thresh`); 0
    /// turns reassembly off (fragments are dropped as `drop_fragment`).
    pub datagrams: usize,
    /// Seconds an incomplete datagram is kept (`ipfrag_time`, 30).
    pub timeout_s: u64,
}

impl Default for FragSection {
    fn default() -> Self {
        FragSection { datagrams: 64, timeout_s: 30 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSection {
    pub socket: PathBuf,
    /// A rules file in `gwctl -S` (ipvsadm) format applied at start, after
    /// the `[[service]]` sections; `gatewayd --rules` overrides it.
    pub rules: Option<PathBuf>,
    /// A keepalived.conf whose `virtual_server` blocks are applied at start,
    /// after the rules file; `gatewayd --keepalived` overrides it.
    pub keepalived: Option<PathBuf>,
    /// A group whose members may use the control socket besides root
    /// (socket mode 0660 instead of 0600).
    pub group: Option<String>,
}

/// Longest path a unix socket is bound at: `sun_path` holds 108 bytes
/// with the final NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Where the control server first binds a socket for `path` (the
/// temporary `PARENT/.NAME.PID/s` it then links into place, see
/// `control::serve_with_group`), with the longest process id Linux gives
/// (7 digits: `pid_max` is at most 2^22); `None` when `path` names no file.
fn socket_bind_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(parent.join(format!(".{}.4194304", name.to_string_lossy())).join("s"))
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection {
            socket: PathBuf::from("/run/gatewayd.sock"),
            rules: None,
            keepalived: None,
            group: None,
        }
    }
}

/// A static neighbour: `mac` is used for next hop `address` (IPv4, or IPv6
/// on a dual-stack port) on port `port` (a `[[port]] name`), never
/// evicted, never changed by ARP or neighbour discovery.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighbourSection {
    pub address: String,
    pub mac: String,
    pub port: String,
}

impl Config {
    /// The `[[neighbour]]` entries, checked against the ports (ids are the
    /// ports' indexes here; gatewayd maps them to DPDK port ids).
    pub fn static_neighbours(
        &self,
        ports: &[PortConf],
    ) -> Result<Vec<gw_proto::StaticNeighbour>, ConfigError> {
        let nports = self.neigh_ports(ports, |i| i as u16);
        let max = crate::control::MAX_STATIC_NEIGHBOURS;
        if self.static_neighbours.len() > max {
            return Err(invalid(
                "neighbour",
                format!("{} entries, at most {max}", self.static_neighbours.len()),
            ));
        }
        let mut out: Vec<gw_proto::StaticNeighbour> = vec![];
        for (i, n) in self.static_neighbours.iter().enumerate() {
            let field = |f: &str| format!("neighbour[{i}].{f}");
            let addr: IpAddr = n.address.parse().map_err(|_| {
                invalid(field("address"), format!("{:?} is not an IPv4 or IPv6 address", n.address))
            })?;
            let mac: MacAddr = n
                .mac
                .parse()
                .map_err(|_| invalid(field("mac"), format!("{:?} is not a MAC address", n.mac)))?;
            let entry = gw_proto::StaticNeighbour { addr, mac: mac.into(), port: n.port.clone() };
            crate::control::check_neighbour(&nports, &entry).map_err(|(f, msg)| invalid(field(f), msg))?;
            if let Some(j) = out.iter().position(|e| e.addr == addr && e.port == n.port) {
                return Err(invalid(
                    field("address"),
                    format!("{addr} on port {:?} is already neighbour[{j}]", n.port),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// The ports as static neighbours name them, with their ids from `id`.
    pub fn neigh_ports(
        &self,
        ports: &[PortConf],
        id: impl Fn(usize) -> u16,
    ) -> Vec<crate::control::NeighPort> {
        ports
            .iter()
            .enumerate()
            .map(|(i, p)| crate::control::NeighPort {
                name: p.name.clone(),
                id: id(i),
                addr: p.addr,
                prefix: p.prefix,
                addr6: p.addr6,
            })
            .collect()
    }
}

/// The Prometheus endpoint (`/metrics`), off unless `listen` is set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// `address:port` to serve `/metrics` on, e.g. "127.0.0.1:9120".
    pub listen: Option<String>,
    /// The labels `node_ipvs_backend_*` keep, as node_exporter's
    /// `--collector.ipvs.backend-labels` (e.g. "local_address,local_port,proto":
    /// one series per service); all six when not given.
    pub backend_labels: Option<String>,
}

impl MetricsSection {
    /// The address to serve `/metrics` on, if any (validated).
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let Some(s) = &self.listen else { return Ok(None) };
        let a: std::net::SocketAddr = s.parse().map_err(|_| {
            invalid("metrics.listen", format!("{s:?} is not an address:port (e.g. \"127.0.0.1:9120\")"))
        })?;
        if a.port() == 0 {
            return Err(invalid("metrics.listen", "the port must be 1..=65535"));
        }
        Ok(Some(a))
    }

    /// The backend labels (validated as node_exporter validates its flag).
    pub fn backend_labels(&self) -> Result<crate::control::BackendLabels, ConfigError> {
        let Some(s) = &self.backend_labels else { return Ok(Default::default()) };
        crate::control::BackendLabels::parse(s).map_err(|e| invalid("metrics.backend_labels", e))
    }
}

/// The IPVS sysctls (`net.ipv4.vs.*`) gatewayd honours, under their names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpvsSection {
    /// `conn_reuse_mode`: 0, 1 (the kernel's default) .. 3 (see
    /// `gw_core::engine::ConnReuse`).
    pub conn_reuse_mode: u8,
    /// What the packets of a deleted real server's sessions get: `drop`
    /// (until it is re-added; `expire_nodest_conn = 0`, the kernel's
    /// default), `expire` (`expire_nodest_conn = 1`), `forward` (gatewayd's
    /// own: they keep flowing while the server is in the trash).
    pub nodest_conn: NoDest,
    /// What a TCP SYN or a UDP datagram to a VIP:port with no service or
    /// no usable real server gets: `icmp` (port unreachable, IPVS's
    /// `ip_vs_leave`; the default), `rst` (a RST for TCP), `none`.
    pub no_service_reply: NoServiceReply,
    /// Whether a TCP segment with no session (after expiry or a restart)
    /// gets a RST, as the director's own stack sends under IPVS.
    pub no_session_rst: bool,
    /// Replies (RSTs, port unreachables) per second per worker, as Linux's
    /// `icmp_msgs_per_sec`.
    pub reply_rate: u32,
    /// Replies a worker may send in a burst, as `icmp_msgs_burst`.
    pub reply_burst: u32,
}

impl Default for IpvsSection {
    fn default() -> Self {
        let r = RejectConfig::default();
        IpvsSection {
            conn_reuse_mode: ConnReuse::DEFAULT.mode(),
            nodest_conn: NoDest::default(),
            no_service_reply: r.no_service,
            no_session_rst: r.no_session_rst,
            reply_rate: r.rate,
            reply_burst: r.burst,
        }
    }
}

impl IpvsSection {
    /// The workers' reply settings.
    pub fn reject(&self) -> RejectConfig {
        RejectConfig {
            no_service: self.no_service_reply,
            no_session_rst: self.no_session_rst,
            rate: self.reply_rate,
            burst: self.reply_burst,
        }
    }
}

/// One virtual service, in ipvsadm's rules syntax.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Rules as in a rules file (`gwctl -S` output): the service's `-A` line
    /// first, then only `-a` and `--add-laddr` lines for that same service.
    pub rules: String,
}

/// The requests of a rules file (`gwctl -S` output, `[control] rules`), or an
/// error naming the file and the line.
pub fn load_rules(path: &Path) -> Result<Vec<Request>, ConfigError> {
    let fail = |msg: String| ConfigError::Rules { path: path.into(), msg };
    let text = read_config_text(path).map_err(|e| fail(e.to_string()))?;
    gw_ipvsadm::parse_rules(&text).map_err(|e| fail(e.to_string()))
}

/// What a reload (SIGHUP) makes the running services equal to: the
/// `[[service]]` sections of the configuration file at `config`, then the
/// rules file `rules`. The whole configuration file is validated again.
pub fn reload_requests(config: &Path, rules: Option<&Path>) -> Result<Vec<Request>, ConfigError> {
    reload_config(config, rules).map(|r| r.requests)
}

/// What a reload reads from the configuration file and the rules file.
pub struct Reload {
    /// The file's `[timeouts]`: a reload makes the session timeouts equal
    /// to them (then a rules file's `--set` lines), as a restart would.
    pub timeouts: gw_core::tcp_state::Timeouts,
    /// [`reload_requests`]'s requests.
    pub requests: Vec<Request>,
    /// The sections it does not apply ([`restart_sections`]), from the
    /// same read of the file: what [`restart_changes`] compares.
    pub restart: toml::Table,
}

/// [`reload_requests`], with the file's `[timeouts]` and the sections a
/// reload leaves for the next start, all from one read of the file.
pub fn reload_config(config: &Path, rules: Option<&Path>) -> Result<Reload, ConfigError> {
    let (cfg, text) = Config::load_with_text(config)?;
    let mut requests = cfg.service_requests()?;
    if let Some(path) = rules {
        requests.extend(load_rules(path)?);
    }
    Ok(Reload { timeouts: cfg.timeouts, requests, restart: restart_sections(&text) })
}

/// The sections of configuration `text` that a reload does not apply, as
/// TOML values: every top-level table but `[[service]]` and `[timeouts]`
/// (ports, routes, workers, ... take effect at a start). Empty for a text
/// that does not parse (the reload then reports it).
pub fn restart_sections(text: &str) -> toml::Table {
    let mut t: toml::Table = toml::from_str(text).unwrap_or_default();
    t.remove("service");
    t.remove("timeouts");
    t
}

/// The sections in `now` (a reload's [`Reload::restart`]) that differ from
/// `running` ([`restart_sections`] of the file gatewayd started with):
/// what a reload leaves for the next start, by name (`port`, `workers`).
pub fn restart_changes(now: &toml::Table, running: &toml::Table) -> Vec<String> {
    let mut keys: Vec<&String> = now.keys().chain(running.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| now.get(*k) != running.get(*k)).cloned().collect()
}

/// The mbuf size of DPDK's default pool (`RTE_MBUF_DEFAULT_DATAROOM`), and
/// what an af_packet ring frame holds by default.
pub const DEFAULT_MBUF_SIZE: usize = 2048;
/// DPDK's mbuf headroom (`RTE_PKTMBUF_HEADROOM`).
pub const MBUF_HEADROOM: usize = 128;
/// Largest mbuf size: the data room (with the headroom) is 16 bits.
pub const MAX_MBUF_SIZE: usize = u16::MAX as usize - MBUF_HEADROOM;
/// Ethernet header and one VLAN tag: a frame is the MTU plus these.
const L2_OVERHEAD: usize = 18;
/// af_packet (TPACKET_V2, DPDK 22.11): bytes of a ring frame before the
/// packet (the frame header, aligned: `tp_mac`), and the part the driver
/// requires to fit in an mbuf beyond the packet data (`framesz - 32 <=
/// mbuf size`).
const TPACKET_MAC_OFFSET: usize = 66;
pub(crate) const TPACKET_SLACK: usize = 32;
/// Ring frames are whole pages (one frame per block).
const PAGE: usize = 4096;

impl Config {
    /// Bytes of packet each mbuf holds: `workers.mbuf_size`, at least the
    /// largest port MTU + 18. With af_packet ports and more than the
    /// default 2,048, the rings get frames of whole pages holding that
    /// (`framesz`, [`PortConf::eal_device`]) and the mbufs what the driver
    /// requires for such frames. DPDK's af_packet driver joins its sockets
    /// to a fanout group with PACKET_FANOUT_FLAG_DEFRAG: the kernel
    /// reassembles fragments before the driver sees them, and a datagram
    /// larger than the frame arrives cut (`drop_ipv4_truncated`), so this
    /// size is also the largest datagram that crosses an af_packet port.
    ///
    /// A ring frame size the operator gives in a device string
    /// (`framesz=N`) sizes the mbufs too (at least `N - 32`): the driver
    /// refuses to start a port whose frames do not fit its mbufs.
    pub fn mbuf_size(&self) -> usize {
        let need = self.mbuf_need();
        let size = match self.af_packet_frame(need) {
            Some(frame) => frame - TPACKET_SLACK,
            None => need,
        };
        size.max(self.largest_given_framesz().saturating_sub(TPACKET_SLACK))
    }

    /// The largest af_packet ring frame size a port's device string gives
    /// (`framesz=N`), 0 if none does.
    pub(crate) fn largest_given_framesz(&self) -> usize {
        self.ports.iter().filter_map(|p| given_framesz(&p.device)?.ok()).max().unwrap_or(0)
    }

    /// `workers.mbuf_size`, at least the largest port MTU + 18.
    fn mbuf_need(&self) -> usize {
        let mtu = self.ports.iter().map(|p| p.mtu as usize + L2_OVERHEAD).max().unwrap_or(0);
        mtu.max(self.workers.mbuf_size)
    }

    /// The af_packet ring frame size for `need` bytes of packet, if the
    /// driver's default does not hold them.
    fn af_packet_frame(&self, need: usize) -> Option<usize> {
        let af_packet = self.ports.iter().any(|p| p.device.starts_with("net_af_packet"));
        (af_packet && need > DEFAULT_MBUF_SIZE).then(|| (need + TPACKET_MAC_OFFSET).next_multiple_of(PAGE))
    }
}

/// The af_packet ring frame size device string `device` gives
/// (`framesz=N`), if it is an af_packet device that gives one; an error
/// names a value that is not a number.
fn given_framesz(device: &str) -> Option<Result<usize, String>> {
    if !device.starts_with("net_af_packet") {
        return None;
    }
    let v = device.split(',').find_map(|kv| kv.trim().strip_prefix("framesz="))?;
    Some(v.trim().parse::<usize>().map_err(|_| format!("framesz={v} is not a number of bytes")))
}

/// A port after validation.
#[derive(Debug, Clone)]
pub struct PortConf {
    pub name: String,
    pub device: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// A dual-stack port's IPv6 address and prefix length.
    pub addr6: Option<(std::net::Ipv6Addr, u8)>,
    pub mac: Option<MacAddr>,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: u16,
    pub rp_filter: RpFilter,
    /// af_packet ring frame size to ask for (`framesz`, `blocksz`) when the
    /// device string gives none ([`Config::mbuf_size`]).
    pub ring_frame: Option<usize>,
    /// The name of its kernel interface (exception path), if any.
    pub kernel: Option<String>,
}

impl PortConf {
    /// The EAL argument that brings up this device and the name DPDK gives it.
    pub fn eal_device(&self) -> (Vec<String>, String) {
        let name = self.device.split(',').next().unwrap_or("").to_string();
        if is_pci(&name) {
            (vec!["-a".into(), self.device.clone()], name)
        } else {
            let mut device = self.device.clone();
            if let Some(f) = self.ring_frame {
                if name.starts_with("net_af_packet") && !device.contains("framesz=") {
                    device.push_str(&format!(",framesz={f},blocksz={f}"));
                }
            }
            (vec![format!("--vdev={device}")], name)
        }
    }
    pub fn iface(&self, port: u16, mac: MacAddr) -> Iface {
        Iface {
            port,
            addr: self.addr,
            prefix: self.prefix,
            addr6: self.addr6,
            mac,
            mtu: self.mtu,
            rp_filter: self.rp_filter,
        }
    }
}

/// A Linux interface name (`dev_valid_name`): 1 to 15 bytes, no `/`,
/// `:` or white space, not `.` or `..`; here also no `,` (it goes into a
/// DPDK device string).
fn check_kernel_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("must be 1 to 15 bytes (a Linux interface name)");
    }
    if name == "."
        || name == ".."
        || name.chars().any(|c| c == '/' || c == ':' || c == ',' || c.is_whitespace())
    {
        return Err("is not a valid interface name");
    }
    Ok(())
}

fn is_pci(s: &str) -> bool {
    // DDDD:BB:DD.F or BB:DD.F
    let parts: Vec<&str> = s.split([':', '.']).collect();
    (parts.len() == 3 || parts.len() == 4)
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `address` of a port: one `ADDRESS/PREFIX` or a list of them.
#[derive(Debug, Clone)]
pub enum Addresses {
    One(String),
    Many(Vec<String>),
}

/// What `address` must be, in a refusal of any other TOML value.
const ADDRESSES_EXPECTED: &str = "\"ADDRESS/PREFIX\" or a list of them (one IPv4, at most one IPv6)";

impl<'de> Deserialize<'de> for Addresses {
    /// A string or a list of strings; anything else is refused with what
    /// `address` takes (not serde's "did not match any variant").
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Addresses, D::Error> {
        struct One(String);
        impl<'de> Deserialize<'de> for One {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<One, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = One;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an \"ADDRESS/PREFIX\" string")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<One, E> {
                        Ok(One(s.to_owned()))
                    }
                }
                d.deserialize_str(V)
            }
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Addresses;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(ADDRESSES_EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Addresses, E> {
                Ok(Addresses::One(s.to_owned()))
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Addresses, S::Error> {
                let mut all = vec![];
                while let Some(One(s)) = seq.next_element()? {
                    all.push(s);
                }
                Ok(Addresses::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

impl Addresses {
    fn list(&self) -> &[String] {
        match self {
            Addresses::One(s) => std::slice::from_ref(s),
            Addresses::Many(v) => v,
        }
    }
}

/// Parses `IPV6/N` (N in 1..=128) of a unicast address.
pub fn parse_cidr6(s: &str) -> Option<(std::net::Ipv6Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let p: u8 = p.parse().ok()?;
    let a: std::net::Ipv6Addr = a.parse().ok()?;
    ((1..=128).contains(&p) && !a.is_multicast() && !a.is_unspecified() && !a.is_loopback()).then_some((a, p))
}

/// An IPv4 address and prefix length.
type Cidr4 = (Ipv4Addr, u8);
/// An IPv6 address and prefix length.
type Cidr6 = (std::net::Ipv6Addr, u8);

/// A port's addresses: exactly one IPv4 (the dataplane is keyed by it) and
/// at most one IPv6 (answered for NS and echo, not forwarded yet).
fn port_addresses(a: &Addresses, field: &str) -> Result<(Cidr4, Option<Cidr6>), ConfigError> {
    let (mut v4, mut v6) = (None, None);
    for s in a.list() {
        if let Some(c) = parse_cidr(s) {
            if v4.replace(c).is_some() {
                return Err(invalid(
                    field,
                    "more than one IPv4 address: a port has one IPv4 and at most one IPv6",
                ));
            }
        } else if let Some(c) = parse_cidr6(s) {
            if v6.replace(c).is_some() {
                return Err(invalid(
                    field,
                    "more than one IPv6 address: a port has one IPv4 and at most one IPv6",
                ));
            }
        } else {
            return Err(invalid(
                field,
                format!("{s:?} is not ADDRESS/PREFIX (IPv4, or unicast IPv6 with a prefix of 1..=128)"),
            ));
        }
    }
    let v4 =
        v4.ok_or_else(|| invalid(field, "needs an IPv4 ADDRESS/PREFIX: the dataplane forwards IPv4 only"))?;
    if let Some(why) = not_a_host4(v4) {
        let (a, p) = v4;
        return Err(invalid(
            field,
            format!("\"{a}/{p}\" is not ADDRESS/PREFIX of a unicast IPv4 host: {why}"),
        ));
    }
    Ok((v4, v6))
}

/// Why `a`/`prefix` cannot be a port's IPv4 address, as [`parse_cidr6`]
/// refuses the IPv6 ones that cannot: an address no host has (unspecified,
/// the limited broadcast, multicast, loopback), a prefix of 0 (every
/// address would be on the link), and below /31 (RFC 3021) the subnet's
/// network and broadcast addresses.
fn not_a_host4((a, prefix): Cidr4) -> Option<String> {
    let why = if a.is_unspecified() {
        format!("{a} is the unspecified address")
    } else if a.is_broadcast() {
        format!("{a} is the broadcast address")
    } else if a.is_multicast() {
        format!("{a} is multicast")
    } else if a.is_loopback() {
        format!("{a} is loopback (127.0.0.0/8)")
    } else if prefix == 0 {
        "a prefix of 0 puts every address on the link".to_string()
    } else {
        let bits = u32::from(a);
        let edge = subnet_edge(bits, bits, prefix)?;
        format!("{a} is the {edge} address of {}/{prefix}", Ipv4Addr::from(bits & u32::mask(prefix)))
    };
    Some(why)
}

/// Which edge of the IPv4 subnet of `net`/`prefix` address `a` is: its
/// `"network"` or its `"broadcast"` address, which no host has; `None`
/// for any other address, one outside the subnet, and at /31 and /32
/// (RFC 3021), which have neither.
pub(crate) fn subnet_edge(a: u32, net: u32, prefix: u8) -> Option<&'static str> {
    let mask = u32::mask(prefix);
    if prefix >= 31 || a & mask != net & mask {
        return None;
    }
    match a & !mask {
        0 => Some("network"),
        host if host == !mask => Some("broadcast"),
        _ => None,
    }
}

/// How an error names port `i`: `port[1] ("inside")`.
fn port_label(i: usize, p: &PortConf) -> String {
    format!("port[{i}] ({:?})", p.name)
}

/// Whether `a`/`m` and `b`/`n` share an address (one holds the other).
fn overlaps<A: RouteAddr>((a, m): (A, u8), (b, n): (A, u8)) -> bool {
    let mask = A::mask(m.min(n));
    a & mask == b & mask
}

/// Whether `s` is a route destination: `A.B.C.D/N` (N up to 32) or
/// `IPV6/N` (N up to 128); host bits may be set (they are masked).
fn parse_route_dest(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let p: u8 = p.parse().ok()?;
    let a: IpAddr = a.parse().ok()?;
    (p <= if a.is_ipv4() { 32 } else { 128 }).then_some((a, p))
}

/// Parses `A.B.C.D/N`.
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let p: u8 = p.parse().ok()?;
    (p <= 32).then_some(())?;
    Some((a.parse().ok()?, p))
}

/// Most bytes of a file gatewayd reads as configuration: the config file,
/// a rules file, a keepalived file with its includes (256 MiB).
pub use gw_keepalived::reader::MAX_CONFIG_FILE;

/// The text of the configuration file at `path` (`--config`, a rules
/// file): a regular file of at most [`MAX_CONFIG_FILE`] bytes of UTF-8,
/// read as keepalived files are ([`gw_keepalived::reader::read_config_file`]):
/// a FIFO, a device or a file too large is refused, never waited on or
/// read whole.
pub fn read_config_text(path: &Path) -> std::io::Result<String> {
    let bytes = gw_keepalived::reader::read_config_file(path, MAX_CONFIG_FILE)?;
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8")
    })
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_text(path).map(|(c, _)| c)
    }

    /// [`Config::load`] with the text it read: one read of the file for
    /// the configuration and for what else its text tells
    /// ([`restart_sections`]).
    pub fn load_with_text(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = read_config_text(path).map_err(|err| ConfigError::Read { path: path.into(), err })?;
        Ok((Config::parse(&text, path)?, text))
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let c: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.into(), err: e.to_string() })?;
        c.validate()?;
        Ok(c)
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ports.is_empty() {
            return Err(invalid("port", "at least one [[port]] is required"));
        }
        let ports = self.port_confs()?;
        for (i, p) in ports.iter().enumerate() {
            self.check_port_pairs(&ports, i)?;
            if p.kernel.is_some() && ports[..i].iter().any(|q| q.kernel == p.kernel) {
                return Err(invalid(format!("port[{i}].kernel"), format!("duplicate name {:?}", p.kernel)));
            }
        }
        self.static_routes(&ports)?;
        self.static_routes6(&ports)?;
        let w = &self.workers;
        if w.lport_min == 0 || w.lport_min > w.lport_max {
            return Err(invalid("workers.lport_min", "must be >= 1 and <= workers.lport_max"));
        }
        if !w.cores.is_empty() {
            self.check_local_ports(w.cores.len())?;
        }
        self.check_control()?;
        if !(1..=100).contains(&w.half_open_percent) {
            return Err(invalid("workers.half_open_percent", "must be 1..=100"));
        }
        let syn_rate = gw_core::synproxy::shed::RATE_RANGE;
        if !syn_rate.contains(&w.overload_syn_rate) {
            let (lo, hi) = (syn_rate.start(), syn_rate.end());
            return Err(invalid(
                "workers.overload_syn_rate",
                format!("must be {lo}..={hi} (SYNs per second per worker and port)"),
            ));
        }
        if ConnReuse::new(self.ipvs.conn_reuse_mode).is_none() {
            return Err(invalid("ipvs.conn_reuse_mode", "must be 0..=3 (as net.ipv4.vs.conn_reuse_mode)"));
        }
        if !(1..=100).contains(&self.neighbours.per_port_percent) {
            return Err(invalid("neighbours.per_port_percent", "must be 1..=100"));
        }
        self.check_limits(crate::limits::mem_total())?;
        self.metrics.listen_addr()?;
        self.metrics.backend_labels()?;
        self.static_neighbours(&ports)?;
        self.service_requests()?;
        Ok(())
    }

    /// Port `i` against the ports before it: a name, a device, an address
    /// or a subnet (IPv4 or IPv6) of its own. Two ports on one subnet would
    /// leave the second unused: the first one's connected route wins every
    /// lookup, and its strict reverse-path check drops what arrives on it.
    fn check_port_pairs(&self, ports: &[PortConf], i: usize) -> Result<(), ConfigError> {
        let p = &ports[i];
        let field = |f: &str| format!("port[{i}].{f}");
        for (j, q) in ports[..i].iter().enumerate() {
            let other = port_label(j, q);
            if q.name == p.name {
                return Err(match (&self.ports[j].name, &self.ports[i].name) {
                    (Some(_), None) => invalid(
                        format!("port[{i}]"),
                        format!("its default name {:?} is taken by port[{j}].name: give it a name", p.name),
                    ),
                    (None, _) => invalid(
                        field("name"),
                        format!("duplicate name {:?} (port[{j}]'s default name)", p.name),
                    ),
                    _ => invalid(field("name"), format!("duplicate name {:?}", p.name)),
                });
            }
            if q.eal_device().1 == p.eal_device().1 {
                let msg = format!("{:?} is {other}'s device too", p.eal_device().1);
                return Err(invalid(field("device"), msg));
            }
            let v4 = |c: &PortConf| (u32::from(c.addr), c.prefix);
            let v6 = |c: &PortConf| c.addr6.map(|(a, n)| (u128::from(a), n));
            // The same subnet on two ports: the first one's connected route
            // would win every lookup. Nested subnets are fine (the longest
            // prefix wins, as in Linux).
            let same = |a, b| overlaps(a, b) && a.1 == b.1;
            let clash = if p.addr == q.addr {
                Some(format!("{} is {other}'s address too", p.addr))
            } else if same(v4(p), v4(q)) {
                Some(format!("{}/{} is {other}'s subnet {}/{} too", p.addr, p.prefix, q.addr, q.prefix))
            } else {
                match (p.addr6, q.addr6) {
                    (Some((a, _)), Some((b, _))) if a == b => Some(format!("{a} is {other}'s address too")),
                    (Some((a, m)), Some((b, n))) if overlaps(v6(p).unwrap(), v6(q).unwrap()) && m == n => {
                        Some(format!("{a}/{m} is {other}'s prefix {b}/{n} too"))
                    }
                    _ => None,
                }
            };
            if let Some(msg) = clash {
                return Err(invalid(field("address"), msg));
            }
        }
        Ok(())
    }

    /// `workers.lport_min..=lport_max` against `workers` workers: worker
    /// `w` takes the local ports `p` with `p % workers == w` (FULLNAT's
    /// partition, `gw_core::engine`), so a range of fewer ports than
    /// workers leaves some worker none, and every FULLNAT connection that
    /// reaches it is dropped (`drop_laddr_exhausted`). `--check` knows the
    /// workers when `workers.cores` lists them; the start checks again
    /// with the lcores EAL gives.
    pub fn check_local_ports(&self, workers: usize) -> Result<(), ConfigError> {
        let w = &self.workers;
        let span = usize::from(w.lport_max).saturating_sub(usize::from(w.lport_min)) + 1;
        if span < workers {
            let msg = format!(
                "{}..={} holds {span} local port(s) for {workers} workers; worker w takes the ports p with \
                 p % {workers} == w, so the range needs at least {workers}",
                w.lport_min, w.lport_max
            );
            return Err(invalid("workers.lport_min", msg));
        }
        Ok(())
    }

    /// `[control]` values the start would refuse, as far as the file alone
    /// tells: empty paths and names, and a socket path a unix socket cannot
    /// be bound at. [`Config::check_host`] looks at the machine.
    fn check_control(&self) -> Result<(), ConfigError> {
        let c = &self.control;
        for (field, path) in [("control.rules", &c.rules), ("control.keepalived", &c.keepalived)] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(invalid(field, "must not be empty (leave the key out for none)"));
            }
        }
        if c.group.as_ref().is_some_and(|g| g.is_empty()) {
            return Err(invalid("control.group", "must not be empty (leave the key out for root only)"));
        }
        let sock = &c.socket;
        if sock.as_os_str().is_empty() {
            return Err(invalid("control.socket", "must not be empty"));
        }
        let tmp = socket_bind_path(sock)
            .ok_or_else(|| invalid("control.socket", format!("{:?} names no file", sock.display())))?;
        let len = tmp.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            let msg = format!(
                "{:?} is too long: gatewayd binds the socket first at {:?} ({len} bytes with a \
                 7-digit process id), and a unix socket path holds at most {MAX_SOCKET_PATH} bytes",
                sock.display(),
                tmp.display()
            );
            return Err(invalid("control.socket", msg));
        }
        Ok(())
    }

    /// What the start would refuse on this machine, checked without
    /// touching anything (`--check`, and the start before EAL): the control
    /// socket's directory exists and nothing but a socket is at its path
    /// (the start keeps and refuses anything else), `control.group` is a
    /// group, and `metrics.listen` is an address of this host (a trial bind
    /// of port 0 on it: the port itself may be a running gatewayd's), or a
    /// port's own address, which its kernel interface takes only at the
    /// start (the exception path: scraped through the DPDK port).
    pub fn check_host(&self) -> Result<(), ConfigError> {
        use std::os::unix::fs::FileTypeExt;
        let sock = &self.control.socket;
        let dir = sock.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(invalid("control.socket", format!("{} is not a directory", dir.display()))),
            Err(e) => return Err(invalid("control.socket", format!("directory {}: {e}", dir.display()))),
        }
        if std::fs::symlink_metadata(sock).is_ok_and(|m| !m.file_type().is_socket()) {
            let msg = format!("{} exists and is not a socket; not removed", sock.display());
            return Err(invalid("control.socket", msg));
        }
        if let Some(name) = &self.control.group {
            crate::control::group_id(name).map_err(|e| invalid("control.group", e.to_string()))?;
        }
        let ports = self.port_confs()?;
        let own = |ip: IpAddr| {
            ports.iter().any(|p| {
                p.kernel.is_some()
                    && (IpAddr::V4(p.addr) == ip || p.addr6.is_some_and(|(a, _)| IpAddr::V6(a) == ip))
            })
        };
        if let Some(addr) = self.metrics.listen_addr()?.filter(|a| !own(a.ip())) {
            std::net::TcpListener::bind((addr.ip(), 0)).map_err(|e| {
                invalid(
                    "metrics.listen",
                    format!("{addr}: {} is not an address of this host ({e})", addr.ip()),
                )
            })?;
        }
        Ok(())
    }

    pub fn port_confs(&self) -> Result<Vec<PortConf>, ConfigError> {
        let ring_frame = self.af_packet_frame(self.mbuf_need());
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let field = |f: &str| format!("port[{i}].{f}");
                if p.device.trim().is_empty() {
                    return Err(invalid(field("device"), "must not be empty"));
                }
                if let Some(name) = &p.name {
                    if name.is_empty() {
                        return Err(invalid(field("name"), "must not be empty"));
                    }
                    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        let msg = format!(
                            "{name:?} holds white space or control characters \
                             (it names the port in routes, gwctl and metrics)"
                        );
                        return Err(invalid(field("name"), msg));
                    }
                }
                let ((addr, prefix), addr6) = port_addresses(&p.address, &field("address"))?;
                let mac = match &p.mac {
                    Some(m) => {
                        let mac: MacAddr = m
                            .parse()
                            .map_err(|_| invalid(field("mac"), format!("{m:?} is not a MAC address")))?;
                        // As `[[neighbour]] mac` is refused (a multicast
                        // source, or none at all, is dropped on the way).
                        if !mac.is_unicast() || mac == MacAddr::ZERO {
                            return Err(invalid(field("mac"), format!("{mac} is not a unicast MAC address")));
                        }
                        Some(mac)
                    }
                    None => None,
                };
                for (name, n) in [("rx_desc", p.rx_desc), ("tx_desc", p.tx_desc)] {
                    if n == 0 {
                        return Err(invalid(field(name), "must be above 0"));
                    }
                }
                if !(68..=9000).contains(&p.mtu) {
                    return Err(invalid(field("mtu"), format!("{} is not within 68..=9000", p.mtu)));
                }
                // IPv6 links carry at least 1280 (RFC 8200 §5): a Packet Too
                // Big never says less, so a smaller port would black-hole.
                if addr6.is_some() && p.mtu < 1280 {
                    return Err(invalid(
                        field("mtu"),
                        format!("{} is below IPv6's 1280 on a port with an IPv6 address", p.mtu),
                    ));
                }
                if let Some(k) = &p.kernel {
                    check_kernel_name(k).map_err(|why| invalid(field("kernel"), format!("{k:?} {why}")))?;
                }
                // A ring frame too small for the MTU: larger frames would
                // arrive cut (counted as truncated, never forwarded).
                if let Some(given) = given_framesz(&p.device) {
                    let f = given.map_err(|e| invalid(field("device"), e))?;
                    let frame = usize::from(p.mtu) + L2_OVERHEAD;
                    if f < frame + TPACKET_MAC_OFFSET {
                        let msg = format!(
                            "framesz={f} holds frames of at most {} bytes, below this port's mtu {} + {L2_OVERHEAD} \
                             (framesz={} or more, or leave it out and gatewayd sizes it)",
                            f.saturating_sub(TPACKET_MAC_OFFSET),
                            p.mtu,
                            frame + TPACKET_MAC_OFFSET
                        );
                        return Err(invalid(field("device"), msg));
                    }
                }
                Ok(PortConf {
                    name: p.name.clone().unwrap_or_else(|| format!("port{i}")),
                    device: p.device.clone(),
                    addr,
                    prefix,
                    addr6,
                    mac,
                    rx_desc: p.rx_desc,
                    tx_desc: p.tx_desc,
                    mtu: p.mtu,
                    rp_filter: p.rp_filter,
                    ring_frame: ring_frame.filter(|_| p.device.starts_with("net_af_packet")),
                    kernel: p.kernel.clone(),
                })
            })
            .collect()
    }

    /// The IPv4 static routes (`[[route]]` with an IPv4 `dest`); the output
    /// port is the one whose subnet holds the next hop.
    pub fn static_routes(&self, ports: &[PortConf]) -> Result<Vec<Route>, ConfigError> {
        self.routes_of(
            ports,
            "IPv4",
            |s| s.parse::<Ipv4Addr>().ok().map(u32::from),
            |p| vec![(u32::from(p.addr), p.prefix)],
        )
    }

    /// The IPv6 static routes (`[[route]]` with an IPv6 `dest`); the output
    /// port is the dual-stack port whose prefix holds the next hop, or the
    /// named `port` for a link-local next hop (`fe80::/10`).
    pub fn static_routes6(&self, ports: &[PortConf]) -> Result<Vec<Route6>, ConfigError> {
        self.routes_of(
            ports,
            "IPv6",
            |s| s.parse::<Ipv6Addr>().ok().map(u128::from),
            |p| p.addr6.map(|(a, n)| (u128::from(a), n)).into_iter().collect(),
        )
    }

    /// The `[[route]]` entries whose `dest` is of the family `parse`
    /// reads (`family`), checked; `subnets` are a port's connected
    /// prefixes in it. Each route must be one the table uses: no prefix
    /// twice (a static one or a port's connected one: the first would win
    /// every lookup), a next hop that is neither the gateway's own address
    /// nor, in IPv4, its subnet's network or broadcast address, and no
    /// more than [`gw_core::route::MAX_ROUTES`] in all.
    fn routes_of<A: RouteAddr + std::hash::Hash + std::ops::Not<Output = A>>(
        &self,
        ports: &[PortConf],
        family: &str,
        parse: impl Fn(&str) -> Option<A>,
        subnets: impl Fn(&PortConf) -> Vec<(A, u8)>,
    ) -> Result<Vec<Route<A>>, ConfigError> {
        let width = if std::mem::size_of::<A>() == 4 { 32 } else { 128 };
        let mut out = vec![];
        let mut seen: HashMap<(A, u8), usize> = HashMap::new();
        for (i, r) in self.routes.iter().enumerate() {
            let field = |f: &str| format!("route[{i}].{f}");
            let (net, prefix) = r.dest.split_once('/').unwrap_or((&r.dest, ""));
            if parse_route_dest(&r.dest).is_none() {
                return Err(invalid(field("dest"), format!("{:?} is not NETWORK/PREFIX", r.dest)));
            }
            let Some(net) = parse(net) else { continue }; // The other family's.
            let prefix: u8 = prefix.parse().expect("checked by parse_route_dest");
            if let Some(j) = seen.insert((net & A::mask(prefix), prefix), i) {
                let other = &self.routes[j].dest;
                let other = if *other == r.dest { String::new() } else { format!(" ({other:?})") };
                let msg = format!(
                    "{:?} is route[{j}]'s destination{other} too; the first route would win every lookup",
                    r.dest
                );
                return Err(invalid(field("dest"), msg));
            }
            for (j, p) in ports.iter().enumerate() {
                if subnets(p).iter().any(|&(a, n)| n == prefix && overlaps((a, n), (net, prefix))) {
                    let msg = format!(
                        "{:?} is {}'s connected subnet; the connected route wins every lookup",
                        r.dest,
                        port_label(j, p)
                    );
                    return Err(invalid(field("dest"), msg));
                }
            }
            let via = parse(&r.via).ok_or_else(|| {
                invalid(field("via"), format!("{:?} is not an address of the family of dest", r.via))
            })?;
            if let Some((j, p)) =
                ports.iter().enumerate().find(|(_, p)| subnets(p).iter().any(|s| s.0 == via))
            {
                let msg = format!("{} is {}'s own address, not a next hop", r.via, port_label(j, p));
                return Err(invalid(field("via"), msg));
            }
            let link_local = width == 128 && (A::mask(10) & via) == parse("fe80::").expect("an IPv6 address");
            let on = |p: &PortConf| subnets(p).iter().any(|&(a, n)| a & A::mask(n) == via & A::mask(n));
            let port = match &r.port {
                Some(name) => {
                    let port = ports.iter().position(|p| &p.name == name).ok_or_else(|| {
                        invalid(field("port"), format!("{name:?} is not the name of a [[port]]"))
                    })?;
                    if !link_local && !on(&ports[port]) {
                        return Err(invalid(
                            field("via"),
                            format!("{} is not in port {name:?}'s subnet", r.via),
                        ));
                    }
                    if width == 128 && ports[port].addr6.is_none() {
                        return Err(invalid(field("port"), format!("port {name:?} has no IPv6 address")));
                    }
                    port
                }
                None if link_local => {
                    return Err(invalid(
                        field("port"),
                        format!("needed for the link-local next hop {}", r.via),
                    ));
                }
                // The port whose subnet holding the next hop is the
                // longest (subnets of two ports may nest).
                None => (0..ports.len())
                    .filter(|&j| on(&ports[j]))
                    .max_by_key(|&j| {
                        let holds = |&&(a, n): &&(A, u8)| a & A::mask(n) == via & A::mask(n);
                        subnets(&ports[j]).iter().filter(holds).map(|&(_, n)| n).max()
                    })
                    .ok_or_else(|| invalid(field("via"), format!("{} is in no port's subnet", r.via)))?,
            };
            // IPv4 below /31 (RFC 3021): no host has the subnet's network or
            // broadcast address.
            if let Some(&(_, n)) = subnets(&ports[port]).iter().find(|&&(_, n)| width == 32 && n < 31) {
                let host = !A::mask(n);
                let what = if via & host == A::default() {
                    Some("network")
                } else if via & host == host {
                    Some("broadcast")
                } else {
                    None
                };
                if let Some(what) = what {
                    let p = &ports[port];
                    let msg = format!(
                        "{} is the {what} address of {}'s subnet {}/{}, not a next hop",
                        r.via,
                        port_label(port, p),
                        Ipv4Addr::from(u32::from(p.addr) & u32::mask(n)),
                        n
                    );
                    return Err(invalid(field("via"), msg));
                }
            }
            out.push(Route { net, prefix, via: Some(via), port: port as u16 });
        }
        let connected: usize = ports.iter().map(|p| subnets(p).len()).sum();
        let max = gw_core::route::MAX_ROUTES;
        if out.len() + connected > max {
            let msg = format!(
                "{} {family} routes and the ports' {connected} connected subnet(s) make {} routes, above the \
                 {max} an {family} route table holds (a session remembers its routes by 16-bit number)",
                out.len(),
                out.len() + connected
            );
            return Err(invalid("route", msg));
        }
        Ok(out)
    }

    /// The `[[service]]` sections as control requests, applied at start
    /// and on reload, each with where it came from.
    pub fn service_rules(&self) -> Result<Vec<ServiceRule>, ConfigError> {
        let names = PortNames::system();
        let mut out = vec![];
        // Where each service, real server and local address was defined
        // (section, line): a second definition is refused here, not at start.
        let mut services: HashMap<ServiceKey, usize> = HashMap::new();
        let mut dests: HashMap<(ServiceKey, std::net::IpAddr, u16), usize> = HashMap::new();
        let mut laddrs: HashMap<(ServiceKey, std::net::IpAddr), usize> = HashMap::new();
        for (i, s) in self.services.iter().enumerate() {
            let field = format!("service[{i}].rules");
            let rules =
                gw_ipvsadm::parse_rule_lines(&s.rules, &names).map_err(|e| invalid(&field, e.to_string()))?;
            let mut rules = rules.into_iter();
            let first = rules.next().ok_or_else(|| invalid(&field, "no rules: a service starts with -A"))?;
            let Request::AddService { spec } = &first.request else {
                let msg = format!("line {}: a service starts with its -A line", first.line);
                return Err(invalid(&field, msg));
            };
            let key = spec.key;
            if let Some(j) = services.insert(key, i) {
                let msg = format!("line {}: {key} is already defined in service[{j}]", first.line);
                return Err(invalid(&field, msg));
            }
            out.push(ServiceRule { section: i, line: first.line, request: first.request });
            for r in rules {
                let service = match &r.request {
                    Request::AddDest { service, .. } | Request::AddLaddr { service, .. } => *service,
                    _ => {
                        let msg = format!("line {}: only -a and --add-laddr may follow the -A line", r.line);
                        return Err(invalid(&field, msg));
                    }
                };
                if service != key {
                    let msg = format!("line {}: {service} is not this section's service ({key})", r.line);
                    return Err(invalid(&field, msg));
                }
                let again = match &r.request {
                    Request::AddDest { dest, .. } => {
                        dests.insert((key, dest.addr, dest.port), r.line).map(|l| {
                            format!("real server {}:{} is already added on line {l}", dest.addr, dest.port)
                        })
                    }
                    Request::AddLaddr { addr, .. } => laddrs
                        .insert((key, *addr), r.line)
                        .map(|l| format!("local address {addr} is already added on line {l}")),
                    _ => None,
                };
                if let Some(what) = again {
                    return Err(invalid(&field, format!("line {}: {what}", r.line)));
                }
                out.push(ServiceRule { section: i, line: r.line, request: r.request });
            }
        }
        Ok(out)
    }

    /// [`Config::service_rules`], the requests only.
    pub fn service_requests(&self) -> Result<Vec<Request>, ConfigError> {
        Ok(self.service_rules()?.into_iter().map(|r| r.request).collect())
    }
}

/// One request of a `[[service]]` section: `service[section].rules`, line `line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRule {
    pub section: usize,
    pub line: usize,
    pub request: Request,
}

#[cfg(test)]
mod tests {
    use gw_proto::{DestSpec, ForwardMode, Protocol, Scheduler, ServiceKey, ServiceSpec};

    use super::*;

    const GOOD: &str = r#"
        [eal]
        args = ["-l", "0,1", "--no-huge"]
        [[port]]
        name = "outside"
        device = "net_af_packet0,iface=gw-c"
        address = "198.18.0.1/24"
        [[port]]
        device = "0000:03:00.0"
        address = "198.18.1.1/24"
        mac = "02:00:00:00:01:01"
        [[route]]
        dest = "0.0.0.0/0"
        via = "198.18.0.254"
        [workers]
        sessions = 1000
        [timeouts]
        established = 300
        [[service]]
        rules = """
        -A -t 198.18.0.100:80 -s rr
        --add-laddr -z 198.18.1.10 -t 198.18.0.100:80   # the SNAT address
        -a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -w 2
        """
    "#;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("test.toml"))
    }

    /// A reload applies `[[service]]` and `[timeouts]`; edits to any other
    /// section are named, for its warning that they wait for a start.
    #[test]
    fn a_reload_names_the_sections_it_does_not_apply() {
        let path = std::env::temp_dir().join(format!("gw-restart-sections-{}.toml", std::process::id()));
        let running = restart_sections(GOOD);
        let edited = GOOD.replace("established = 300", "established = 900").replace("-s rr", "-s wrr");
        std::fs::write(&path, &edited).unwrap();
        let r = reload_config(&path, None).unwrap();
        assert_eq!(r.timeouts.established, 900);
        assert!(r.requests.len() > 1);
        assert_eq!(
            restart_changes(&r.restart, &running),
            Vec::<String>::new(),
            "services and timeouts reload"
        );
        let edited =
            edited.replace("sessions = 1000", "sessions = 2000").replace("198.18.0.254", "198.18.0.253");
        std::fs::write(&path, edited).unwrap();
        let r = reload_config(&path, None).unwrap();
        assert_eq!(restart_changes(&r.restart, &running), ["route", "workers"]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_good_config_parses_into_typed_settings() {
        let c = parse(GOOD).unwrap();
        let ports = c.port_confs().unwrap();
        assert_eq!(
            ports[0].eal_device(),
            (vec!["--vdev=net_af_packet0,iface=gw-c".to_string()], "net_af_packet0".into())
        );
        assert_eq!(
            ports[1].eal_device(),
            (vec!["-a".to_string(), "0000:03:00.0".into()], "0000:03:00.0".into())
        );
        assert_eq!(ports[1].name, "port1");
        assert_eq!(c.static_routes(&ports).unwrap()[0].port, 0);
        assert_eq!(c.timeouts.established, 300);
        assert_eq!(c.timeouts.close, 10);
        let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 18, 0, 100).into(), port: 80 };
        let rip = Ipv4Addr::new(198, 18, 1, 2);
        assert_eq!(
            c.service_requests().unwrap(),
            [
                Request::AddService { spec: ServiceSpec::new(key, Scheduler::Rr) },
                Request::AddLaddr { service: key, addr: Ipv4Addr::new(198, 18, 1, 10).into() },
                Request::AddDest { service: key, dest: DestSpec::new(rip, 8080, ForwardMode::FullNat, 2) },
            ]
        );
        let lines: Vec<(usize, usize)> =
            c.service_rules().unwrap().iter().map(|r| (r.section, r.line)).collect();
        assert_eq!(lines, [(0, 1), (0, 2), (0, 3)], "lines count from the one after the opening quotes");
    }

    #[test]
    fn ipv6_routes_take_an_ipv6_gateway_on_a_dual_stack_port_or_a_link_local_one_with_its_port() {
        let dual = GOOD
            .replace("address = \"198.18.0.1/24\"", "address = [\"198.18.0.1/24\", \"2001:db8:0:1::1/64\"]")
            .replace("address = \"198.18.1.1/24\"", "address = [\"198.18.1.1/24\", \"2001:db8:0:2::1/64\"]");
        let with = |routes: &str| format!("{dual}\n{routes}");
        let c = parse(&with(
            "[[route]]\ndest = \"::/0\"\nvia = \"2001:db8:0:1::fe\"\n\
             [[route]]\ndest = \"2001:db8:99::/48\"\nvia = \"fe80::7\"\nport = \"port1\"",
        ))
        .unwrap();
        let ports = c.port_confs().unwrap();
        let v6 = |s: &str| u128::from(s.parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            c.static_routes6(&ports).unwrap(),
            [
                Route6 { net: 0, prefix: 0, via: Some(v6("2001:db8:0:1::fe")), port: 0 },
                Route6 { net: v6("2001:db8:99::"), prefix: 48, via: Some(v6("fe80::7")), port: 1 },
            ]
        );
        // The IPv4 list keeps only the IPv4 route, and the other way round.
        assert_eq!(c.static_routes(&ports).unwrap().len(), 1);
        let routes = gw_core::route::Routes::dual(
            &[ports[0].iface(0, MacAddr([2, 0, 0, 0, 0, 1])), ports[1].iface(1, MacAddr([2, 0, 0, 0, 0, 2]))],
            &c.static_routes(&ports).unwrap(),
            &c.static_routes6(&ports).unwrap(),
        );
        assert_eq!(routes.lookup6(v6("2001:db8:0:2::9")), Some((1, v6("2001:db8:0:2::9"))));
        assert_eq!(routes.lookup6(v6("2001:db8:99::1")), Some((1, v6("fe80::7"))));
        assert_eq!(routes.lookup6(v6("2600::1")), Some((0, v6("2001:db8:0:1::fe"))));
        for (routes, want) in [
            (
                "dest = \"::/0\"\nvia = \"198.18.0.254\"",
                "route[1].via: \"198.18.0.254\" is not an address of the family",
            ),
            ("dest = \"::/129\"\nvia = \"2001:db8:0:1::fe\"", "route[1].dest"),
            (
                "dest = \"::/0\"\nvia = \"2001:db8:5::1\"",
                "route[1].via: 2001:db8:5::1 is in no port's subnet",
            ),
            ("dest = \"::/0\"\nvia = \"fe80::1\"", "route[1].port: needed for the link-local next hop"),
            (
                "dest = \"::/0\"\nvia = \"fe80::1\"\nport = \"nope\"",
                "route[1].port: \"nope\" is not the name",
            ),
            (
                "dest = \"::/0\"\nvia = \"2001:db8:0:1::fe\"\nport = \"port1\"",
                "route[1].via: 2001:db8:0:1::fe is not in port \"port1\"'s subnet",
            ),
        ] {
            let e = err_of(&with(&format!("[[route]]\n{routes}")));
            assert!(e.starts_with(want), "{routes}: {e}");
        }
        // A port without an IPv6 address takes no IPv6 route.
        let e = err_of(&format!("{GOOD}\n[[route]]\ndest = \"::/0\"\nvia = \"fe80::1\"\nport = \"outside\""));
        assert!(e.starts_with("route[1].port: port \"outside\" has no IPv6 address"), "{e}");
    }

    #[test]
    fn a_kernel_interface_is_off_by_default_and_its_name_is_checked() {
        let c = parse(GOOD).unwrap();
        assert!(c.port_confs().unwrap().iter().all(|p| p.kernel.is_none()));
        let k = GOOD.replace("name = \"outside\"", "name = \"outside\"\nkernel = \"gw-outside\"");
        assert_eq!(parse(&k).unwrap().port_confs().unwrap()[0].kernel.as_deref(), Some("gw-outside"));
        for bad in ["", "sixteen-bytes-xx", "a b", "a/b", "a,b", ".."] {
            let k = GOOD.replace("name = \"outside\"", &format!("name = \"outside\"\nkernel = {bad:?}"));
            assert!(err_of(&k).starts_with("port[0].kernel"), "{bad:?}: {}", err_of(&k));
        }
        let twice = GOOD
            .replace("name = \"outside\"", "name = \"outside\"\nkernel = \"gw-k\"")
            .replace("mac = \"02", "kernel = \"gw-k\"\nmac = \"02");
        assert!(err_of(&twice).starts_with("port[1].kernel: duplicate"), "{}", err_of(&twice));
    }

    fn err_of(mutated: &str) -> String {
        parse(mutated).unwrap_err().to_string()
    }

    #[test]
    fn more_static_neighbours_than_the_control_plane_keeps_are_refused() {
        let max = crate::control::MAX_STATIC_NEIGHBOURS;
        let entry = |i: usize| {
            format!(
                "[[neighbour]]\naddress = \"198.18.0.{}\"\nmac = \"02:00:00:00:00:09\"\nport = \"outside\"\n",
                2 + i % 200
            )
        };
        let text: String = std::iter::once(GOOD.to_owned()).chain((0..=max).map(entry)).collect();
        assert_eq!(err_of(&text), format!("neighbour: {} entries, at most {max}", max + 1));
    }

    #[test]
    fn bad_values_name_their_field() {
        assert!(err_of(&GOOD.replace("198.18.1.1/24", "198.18.1.1")).starts_with("port[1].address"));
        assert!(err_of(&GOOD.replace("02:00:00:00:01:01", "01:00:00:00:01:01")).starts_with("port[1].mac"));
        assert!(err_of(&GOOD.replace("198.18.0.254", "10.9.9.9")).starts_with("route[0].via"));
        assert!(err_of(&GOOD.replace("sessions = 1000", "sessions = 0")).starts_with("workers.sessions"));
        let mtu = GOOD.replace("mac = \"02:00:00:00:01:01\"", "mac = \"02:00:00:00:01:01\"\nmtu = 20");
        assert!(err_of(&mtu).starts_with("port[1].mtu"));
    }

    #[test]
    fn a_port_may_have_one_ipv4_and_one_ipv6_address() {
        let dual =
            GOOD.replace("address = \"198.18.0.1/24\"", "address = [\"198.18.0.1/24\", \"2001:db8::1/64\"]");
        let small = dual.replace(
            "address = [\"198.18.0.1/24\", \"2001:db8::1/64\"]",
            "address = [\"198.18.0.1/24\", \"2001:db8::1/64\"]\nmtu = 1279",
        );
        assert!(err_of(&small).contains("below IPv6's 1280"), "{}", err_of(&small));
        let ports = parse(&dual).unwrap().port_confs().unwrap();
        assert_eq!(ports[0].addr6, Some(("2001:db8::1".parse().unwrap(), 64)));
        assert_eq!(ports[1].addr6, None);
        let iface = ports[0].iface(0, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            (iface.addr, iface.ipv6()),
            (Ipv4Addr::new(198, 18, 0, 1), Some("2001:db8::1".parse().unwrap()))
        );
        // A list with one IPv4 address is the same as the string.
        let one = GOOD.replace("address = \"198.18.0.1/24\"", "address = [\"198.18.0.1/24\"]");
        assert_eq!(parse(&one).unwrap().port_confs().unwrap()[0].addr, Ipv4Addr::new(198, 18, 0, 1));
        for (bad, why) in [
            ("[\"2001:db8::1/64\"]", "needs an IPv4 ADDRESS/PREFIX"),
            ("[\"198.18.0.1/24\", \"198.18.0.2/24\"]", "more than one IPv4 address"),
            ("[\"198.18.0.1/24\", \"2001:db8::1/64\", \"2001:db8::2/64\"]", "more than one IPv6 address"),
            ("[\"198.18.0.1/24\", \"ff02::1/64\"]", "is not ADDRESS/PREFIX"),
            ("[\"198.18.0.1/24\", \"2001:db8::1/129\"]", "is not ADDRESS/PREFIX"),
            ("[\"198.18.0.1/24\", \"2001:db8::1\"]", "is not ADDRESS/PREFIX"),
        ] {
            let e = err_of(&GOOD.replace("\"198.18.0.1/24\"", bad));
            assert!(e.starts_with("port[0].address") && e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn jumbo_ports_size_the_mbufs_and_af_packet_rings() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.mbuf_size(), 2048, "the default pool for MTU 1500");
        assert_eq!(c.port_confs().unwrap()[0].ring_frame, None, "the driver's default frame");
        // A 9000-byte MTU: the frame (9018 bytes) plus the ring frame's
        // header in whole pages (12,288), the mbufs what the driver
        // requires for such frames.
        let jumbo = GOOD.replace("address = \"198.18.0.1/24\"", "address = \"198.18.0.1/24\"\nmtu = 9000");
        let c = parse(&jumbo).unwrap();
        assert_eq!(c.mbuf_size(), 12_288 - 32);
        let ports = c.port_confs().unwrap();
        assert_eq!(ports[0].ring_frame, Some(12_288));
        assert_eq!(ports[1].ring_frame, None, "not an af_packet port");
        assert_eq!(
            ports[0].eal_device().0,
            ["--vdev=net_af_packet0,iface=gw-c,framesz=12288,blocksz=12288".to_string()]
        );
        // Given by the operator: kept, and the mbufs hold its frames (the
        // driver's rx queue setup needs framesz - 32 bytes of mbuf).
        let given = jumbo.replace("iface=gw-c", "iface=gw-c,framesz=16384,blocksz=16384");
        let c = parse(&given).unwrap();
        let dev = c.port_confs().unwrap()[0].eal_device().0;
        assert_eq!(dev, ["--vdev=net_af_packet0,iface=gw-c,framesz=16384,blocksz=16384".to_string()]);
        assert_eq!(c.mbuf_size(), 16_384 - 32);
        // Too small for the MTU (a 9018-byte frame would arrive cut), or
        // not a number: refused with the port's device.
        let small = jumbo.replace("iface=gw-c", "iface=gw-c,framesz=8192,blocksz=8192");
        assert_eq!(
            err_of(&small),
            "port[0].device: framesz=8192 holds frames of at most 8126 bytes, below this port's mtu 9000 + 18 \
             (framesz=9084 or more, or leave it out and gatewayd sizes it)"
        );
        let fits = GOOD.replace("iface=gw-c", "iface=gw-c,framesz=2048");
        assert_eq!(parse(&fits).unwrap().mbuf_size(), 2048, "1518 + 66 bytes fit a 2048-byte frame");
        let e = err_of(&GOOD.replace("iface=gw-c", "iface=gw-c,framesz=2k"));
        assert_eq!(e, "port[0].device: framesz=2k is not a number of bytes");
        let e = err_of(&GOOD.replace("iface=gw-c", "iface=gw-c,framesz=131072,blocksz=131072"));
        assert!(e.starts_with("port.device: framesz=131072 would need mbufs of 131040, above 65407"), "{e}");
        // Room for kernel-reassembled datagrams of 60,000 bytes.
        let big = GOOD.replace("sessions = 1000", "sessions = 1000\nmbuf_size = 60100\nmbufs = 1024");
        assert_eq!(parse(&big).unwrap().mbuf_size(), 61_440 - 32);
        let e = err_of(&GOOD.replace("sessions = 1000", "sessions = 1000\nmbuf_size = 61400"));
        assert!(e.starts_with("workers.mbuf_size: 61400 bytes of af_packet ring frame"), "{e}");
        let e = err_of(&GOOD.replace("sessions = 1000", "sessions = 1000\nmbuf_size = 1000"));
        assert_eq!(e, "workers.mbuf_size: 1000 is not within 2048..=65407");
    }

    #[test]
    fn service_rules_are_checked_with_gwctls_messages() {
        let e = err_of(&GOOD.replace("-s rr", "-s xx"));
        assert_eq!(e, "service[0].rules: line 1: Scheduler not found: xx");
        let e = err_of(&GOOD.replace("-w 2", "-w 70000"));
        assert_eq!(e, "service[0].rules: line 3: illegal weight specified");
        let e = err_of(&GOOD.replace("-r 198.18.1.2:8080", "-r nope"));
        assert!(e.starts_with("service[0].rules: line 3: "), "{e}");
    }

    #[test]
    fn a_service_section_holds_one_service() {
        let e = err_of(&GOOD.replace("-A -t 198.18.0.100:80 -s rr", "--set 1 2 3"));
        assert_eq!(e, "service[0].rules: line 1: a service starts with its -A line");
        let e = err_of(&GOOD.replace("-r 198.18.1.2:8080 -b -w 2", "-r 198.18.1.2:8080 -b -w 2\n-C"));
        assert_eq!(e, "service[0].rules: line 4: only -a and --add-laddr may follow the -A line");
        let e = err_of(&GOOD.replace("-a -t 198.18.0.100:80", "-a -t 198.18.0.101:80"));
        assert_eq!(
            e,
            "service[0].rules: line 3: TCP 198.18.0.101:80 is not this section's service (TCP 198.18.0.100:80)"
        );
        let e = err_of(&GOOD.replace("-A -t 198.18.0.100:80 -s rr", "-L -n"));
        assert!(e.starts_with("service[0].rules: line 1: the 'list' command cannot be restored"), "{e}");
        let empty =
            GOOD.split("[[service]]").next().unwrap().to_owned() + "[[service]]\nrules = \"# none\"\n";
        assert_eq!(err_of(&empty), "service[0].rules: no rules: a service starts with -A");
    }

    #[test]
    fn a_service_defined_twice_is_refused_with_the_section() {
        let twice = format!("{GOOD}\n[[service]]\nrules = \"-A -t 198.18.0.100:80 -s wlc\"\n");
        assert_eq!(
            err_of(&twice),
            "service[1].rules: line 1: TCP 198.18.0.100:80 is already defined in service[0]"
        );
        let udp = format!("{GOOD}\n[[service]]\nrules = \"-A -u 198.18.0.100:80 -s wlc\"\n");
        parse(&udp).unwrap();
        let e = err_of(&GOOD.replace("-s rr\n", "-s rr\n-A -t 198.18.0.100:80 -s rr\n"));
        assert_eq!(e, "service[0].rules: line 2: only -a and --add-laddr may follow the -A line");
        let dest = GOOD.replace("-b -w 2\n", "-b -w 2\n-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -b -w 1\n");
        assert_eq!(
            err_of(&dest),
            "service[0].rules: line 4: real server 198.18.1.2:8080 is already added on line 3"
        );
        let laddr = GOOD.replace("-b -w 2\n", "-b -w 2\n--add-laddr -z 198.18.1.10 -t 198.18.0.100:80\n");
        assert_eq!(
            err_of(&laddr),
            "service[0].rules: line 4: local address 198.18.1.10 is already added on line 2"
        );
    }

    #[test]
    fn the_shipped_configs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                c.service_requests().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 5, "conf/*.toml not found in {}", dir.display());
        let fullnat = Config::load(&dir.join("bench-fullnat.toml")).unwrap().service_requests().unwrap();
        // Two services (UDP, TCP), each with 37 local addresses and 5 real servers.
        assert_eq!(fullnat.len(), 2 * (1 + 37 + 5));
    }

    #[test]
    fn a_reload_reads_the_sections_then_the_rules_file() {
        let dir = std::env::temp_dir().join(format!("gw-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (conf, rules) = (dir.join("gw.toml"), dir.join("rules"));
        std::fs::write(&conf, GOOD).unwrap();
        std::fs::write(&rules, "-A -u 198.18.0.100:53 -s rr\n").unwrap();
        let all = reload_requests(&conf, Some(&rules)).unwrap();
        assert_eq!(all.len(), 4);
        assert!(matches!(&all[3], Request::AddService { spec } if spec.key.proto == Protocol::Udp));
        assert_eq!(reload_requests(&conf, None).unwrap().len(), 3);
        std::fs::write(&rules, "-A -u 198.18.0.100:53 -s rr\n-a -u 198.18.0.100:53 -r 198.18.1.2 -w x\n")
            .unwrap();
        let e = reload_requests(&conf, Some(&rules)).unwrap_err().to_string();
        assert_eq!(e, format!("rules file {}: line 2: illegal weight specified", rules.display()));
        // A reload (SIGHUP) refuses a service defined twice, naming the section.
        std::fs::write(&conf, format!("{GOOD}\n[[service]]\nrules = \"-A -t 198.18.0.100:80\"\n")).unwrap();
        let e = reload_requests(&conf, None).unwrap_err().to_string();
        assert_eq!(e, "service[1].rules: line 1: TCP 198.18.0.100:80 is already defined in service[0]");
        let missing = dir.join("missing");
        let e = load_rules(&missing).unwrap_err().to_string();
        assert!(e.starts_with(&format!("rules file {}: No such file", missing.display())), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn more_routes_than_a_route_table_numbers_are_refused() {
        let mut c = parse(GOOD).unwrap();
        let ports = c.port_confs().unwrap();
        // The two ports' subnets and the default route are 3 of the 65,535.
        let route = |k: usize| RouteSection {
            dest: format!("10.{}.{}.0/24", k >> 8, k & 255),
            via: "198.18.0.254".into(),
            port: None,
        };
        c.routes.extend((0..gw_core::route::MAX_ROUTES - 3).map(route));
        assert_eq!(c.static_routes(&ports).unwrap().len(), 65_533);
        c.routes.push(route(65_533));
        assert_eq!(
            c.static_routes(&ports).unwrap_err().to_string(),
            "route: 65534 IPv4 routes and the ports' 2 connected subnet(s) make 65536 routes, above the 65535 \
             an IPv4 route table holds (a session remembers its routes by 16-bit number)"
        );
        assert!(c.validate().unwrap_err().to_string().starts_with("route: 65534 IPv4 routes"));
    }

    #[test]
    fn a_port_ipv4_address_must_be_a_unicast_host_on_its_subnet() {
        let at = |a: &str| GOOD.replace("\"198.18.0.1/24\"", &format!("{a:?}"));
        for (addr, why) in [
            ("0.0.0.0/24", "0.0.0.0 is the unspecified address"),
            ("255.255.255.255/24", "255.255.255.255 is the broadcast address"),
            ("224.0.0.1/24", "224.0.0.1 is multicast"),
            ("127.0.0.1/8", "127.0.0.1 is loopback (127.0.0.0/8)"),
            ("198.18.0.1/0", "a prefix of 0 puts every address on the link"),
            ("198.18.0.0/24", "198.18.0.0 is the network address of 198.18.0.0/24"),
            ("198.18.0.255/24", "198.18.0.255 is the broadcast address of 198.18.0.0/24"),
            ("198.18.0.63/26", "198.18.0.63 is the broadcast address of 198.18.0.0/26"),
        ] {
            assert_eq!(
                err_of(&at(addr)),
                format!("port[0].address: \"{addr}\" is not ADDRESS/PREFIX of a unicast IPv4 host: {why}")
            );
        }
        // In a dual-stack list too.
        let e = err_of(&GOOD.replace("\"198.18.0.1/24\"", "[\"224.0.0.1/24\", \"2001:db8::1/64\"]"));
        assert!(e.starts_with("port[0].address: \"224.0.0.1/24\" is not ADDRESS/PREFIX"), "{e}");
        // /31 (RFC 3021) and /32 have no network or broadcast address.
        let p2p = at("198.18.0.0/31").replace("198.18.0.254", "198.18.0.1");
        assert_eq!(parse(&p2p).unwrap().port_confs().unwrap()[0].prefix, 31);
        parse(at("198.18.0.1/32").split("[[route]]").next().unwrap()).unwrap();
        // The port MAC: unicast, as a [[neighbour]]'s.
        let mac = |m: &str| err_of(&GOOD.replace("02:00:00:00:01:01", m));
        assert_eq!(mac("00:00:00:00:00:00"), "port[1].mac: 00:00:00:00:00:00 is not a unicast MAC address");
        assert_eq!(mac("01:00:5e:00:00:01"), "port[1].mac: 01:00:5e:00:00:01 is not a unicast MAC address");
        assert_eq!(mac("02:00:00:00:01"), "port[1].mac: \"02:00:00:00:01\" is not a MAC address");
    }

    #[test]
    fn two_ports_may_not_share_an_address_a_subnet_or_a_device() {
        let second = |a: &str| GOOD.replace("\"198.18.1.1/24\"", a);
        assert_eq!(
            err_of(&second("\"198.18.0.1/24\"")),
            "port[1].address: 198.18.0.1 is port[0] (\"outside\")'s address too"
        );
        assert_eq!(
            err_of(&second("\"198.18.0.9/24\"")),
            "port[1].address: 198.18.0.9/24 is port[0] (\"outside\")'s subnet 198.18.0.1/24 too"
        );
        // Nested subnets: the longest prefix wins, as in Linux.
        parse(&second("\"198.18.0.130/25\"")).unwrap();
        parse(&second("\"198.18.2.1/16\"")).unwrap();
        // Beside each other: fine.
        parse(&second("\"198.18.0.129/25\"").replace("198.18.0.1/24", "198.18.0.1/25")).unwrap();
        let dual = |a: &str, b: &str| {
            GOOD.replace("\"198.18.0.1/24\"", &format!("[\"198.18.0.1/24\", \"{a}\"]"))
                .replace("\"198.18.1.1/24\"", &format!("[\"198.18.1.1/24\", \"{b}\"]"))
        };
        assert_eq!(
            err_of(&dual("2001:db8::1/64", "2001:db8::1/64")),
            "port[1].address: 2001:db8::1 is port[0] (\"outside\")'s address too"
        );
        assert_eq!(
            err_of(&dual("2001:db8::1/64", "2001:db8::5/64")),
            "port[1].address: 2001:db8::5/64 is port[0] (\"outside\")'s prefix 2001:db8::1/64 too"
        );
        parse(&dual("2001:db8::1/48", "2001:db8:0:5::1/64")).unwrap();
        parse(&dual("2001:db8::1/64", "2001:db8:0:1::1/64")).unwrap();
        let dev = GOOD.replace("0000:03:00.0", "net_af_packet0,iface=gw-d");
        assert_eq!(err_of(&dev), "port[1].device: \"net_af_packet0\" is port[0] (\"outside\")'s device too");
    }

    #[test]
    fn a_static_route_must_be_one_the_table_uses() {
        let with = |route: &str| format!("{GOOD}\n[[route]]\n{route}");
        assert_eq!(
            err_of(&with("dest = \"0.0.0.0/0\"\nvia = \"198.18.1.254\"")),
            "route[1].dest: \"0.0.0.0/0\" is route[0]'s destination too; the first route would win every lookup"
        );
        let twice = with("dest = \"10.0.0.0/8\"\nvia = \"198.18.1.254\"\n[[route]]\ndest = \"10.1.2.3/8\"\nvia = \"198.18.1.253\"");
        assert_eq!(
            err_of(&twice),
            "route[2].dest: \"10.1.2.3/8\" is route[1]'s destination (\"10.0.0.0/8\") too; \
             the first route would win every lookup"
        );
        assert_eq!(
            err_of(&with("dest = \"198.18.1.0/24\"\nvia = \"198.18.0.254\"")),
            "route[1].dest: \"198.18.1.0/24\" is port[1] (\"port1\")'s connected subnet; \
             the connected route wins every lookup"
        );
        // A narrower part of a connected subnet is a route of its own.
        parse(&with("dest = \"198.18.1.128/25\"\nvia = \"198.18.0.254\"")).unwrap();
        for (via, why) in [
            ("198.18.0.1", "198.18.0.1 is port[0] (\"outside\")'s own address, not a next hop"),
            ("198.18.1.1", "198.18.1.1 is port[1] (\"port1\")'s own address, not a next hop"),
            (
                "198.18.0.0",
                "198.18.0.0 is the network address of port[0] (\"outside\")'s subnet 198.18.0.0/24, not a next hop",
            ),
            (
                "198.18.1.255",
                "198.18.1.255 is the broadcast address of port[1] (\"port1\")'s subnet 198.18.1.0/24, not a next hop",
            ),
        ] {
            assert_eq!(err_of(&with(&format!("dest = \"10.0.0.0/8\"\nvia = \"{via}\""))), format!("route[1].via: {why}"));
        }
        // IPv6: the same prefix twice, the port's own address.
        let dual = GOOD.replace("\"198.18.0.1/24\"", "[\"198.18.0.1/24\", \"2001:db8::1/64\"]");
        let v6 = |r: &str| format!("{dual}\n[[route]]\n{r}");
        let e = err_of(&v6("dest = \"::/0\"\nvia = \"2001:db8::fe\"\n[[route]]\ndest = \"::/0\"\nvia = \"fe80::1\"\nport = \"outside\""));
        assert!(e.starts_with("route[2].dest: \"::/0\" is route[1]'s destination too"), "{e}");
        assert_eq!(
            err_of(&v6("dest = \"::/0\"\nvia = \"2001:db8::1\"")),
            "route[1].via: 2001:db8::1 is port[0] (\"outside\")'s own address, not a next hop"
        );
        parse(&v6("dest = \"::/0\"\nvia = \"2001:db8::fe\"")).unwrap();
    }

    #[test]
    fn every_worker_needs_a_local_port() {
        let with = |w: &str| GOOD.replace("sessions = 1000", &format!("sessions = 1000\n{w}"));
        let e = err_of(&with("cores = [1, 2]\nlport_min = 65535\nlport_max = 65535"));
        assert_eq!(
            e,
            "workers.lport_min: 65535..=65535 holds 1 local port(s) for 2 workers; worker w takes the ports p \
             with p % 2 == w, so the range needs at least 2"
        );
        parse(&with("cores = [1, 2]\nlport_min = 65534\nlport_max = 65535")).unwrap();
        // Without `cores` the start checks with the lcores EAL gives.
        let c = parse(&with("lport_min = 65535\nlport_max = 65535")).unwrap();
        c.check_local_ports(1).unwrap();
        assert!(c.check_local_ports(3).unwrap_err().to_string().contains("1 local port(s) for 3 workers"));
    }

    #[test]
    fn unclear_values_get_messages_that_name_them() {
        let tx = GOOD.replace("mac = \"02:00:00:00:01:01\"", "mac = \"02:00:00:00:01:01\"\ntx_desc = 0");
        assert_eq!(err_of(&tx), "port[1].tx_desc: must be above 0");
        assert_eq!(err_of(&tx.replace("tx_desc", "rx_desc")), "port[1].rx_desc: must be above 0");
        let e = err_of(&GOOD.replace("\"198.18.1.1/24\"", "5"));
        assert!(
            e.ends_with(
                "invalid type: integer `5`, expected \"ADDRESS/PREFIX\" or a list of them (one IPv4, at most one IPv6)\n"
            ),
            "{e}"
        );
        let e = err_of(&GOOD.replace("\"198.18.1.1/24\"", "[[\"198.18.1.1/24\"]]"));
        assert!(e.ends_with("invalid type: sequence, expected an \"ADDRESS/PREFIX\" string\n"), "{e}");
        // Port names.
        let named = |n: &str| GOOD.replace("name = \"outside\"", &format!("name = {n:?}"));
        assert_eq!(err_of(&named("")), "port[0].name: must not be empty");
        assert_eq!(
            err_of(&named("out side")),
            "port[0].name: \"out side\" holds white space or control characters \
             (it names the port in routes, gwctl and metrics)"
        );
        assert!(err_of(&named("out\tside")).starts_with("port[0].name: \"out\\tside\" holds white space"));
        assert_eq!(
            err_of(&named("port1")),
            "port[1]: its default name \"port1\" is taken by port[0].name: give it a name"
        );
        let e = err_of(
            &GOOD.replace("name = \"outside\"\n", "").replace("mac = \"02", "name = \"port0\"\nmac = \"02"),
        );
        assert_eq!(e, "port[1].name: duplicate name \"port0\" (port[0]'s default name)");
        // Empty paths and names in [control].
        let control = |c: &str| format!("{GOOD}\n[control]\n{c}");
        assert_eq!(
            err_of(&control("rules = \"\"")),
            "control.rules: must not be empty (leave the key out for none)"
        );
        assert_eq!(
            err_of(&control("keepalived = \"\"")),
            "control.keepalived: must not be empty (leave the key out for none)"
        );
        assert_eq!(
            err_of(&control("group = \"\"")),
            "control.group: must not be empty (leave the key out for root only)"
        );
    }

    #[test]
    fn the_control_socket_path_must_be_one_a_socket_can_be_bound_at() {
        let socket = |s: &str| format!("{GOOD}\n[control]\nsocket = {s:?}");
        assert_eq!(err_of(&socket("")), "control.socket: must not be empty");
        assert_eq!(err_of(&socket("/")), "control.socket: \"/\" names no file");
        // 96 bytes: bound first as /run/.NAME.PID/s, 107 bytes.
        let fits = format!("/run/{}", "a".repeat(91));
        parse(&socket(&fits)).unwrap();
        let e = err_of(&socket(&format!("{fits}a")));
        assert_eq!(
            e,
            format!(
                "control.socket: \"{fits}a\" is too long: gatewayd binds the socket first at \"/run/.{}a.4194304/s\" \
                 (108 bytes with a 7-digit process id), and a unix socket path holds at most 107 bytes",
                &fits[5..]
            )
        );
    }

    #[test]
    fn the_host_is_checked_for_what_the_start_would_refuse() {
        let dir = std::env::temp_dir().join(format!("gw-config-host-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let host = |extra: &str| parse(&format!("{GOOD}\n{extra}")).unwrap().check_host();
        let socket = |p: &Path| format!("[control]\nsocket = {:?}", p.to_str().unwrap());
        host(&socket(&dir.join("gw.sock"))).unwrap();
        let e = host(&socket(&dir.join("missing/gw.sock"))).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "control.socket: directory {}: No such file or directory (os error 2)",
                dir.join("missing").display()
            )
        );
        std::fs::write(dir.join("file"), "").unwrap();
        let e = host(&socket(&dir.join("file/gw.sock"))).unwrap_err().to_string();
        assert_eq!(e, format!("control.socket: {} is not a directory", dir.join("file").display()));
        // Anything but a socket at the path: the start refuses it and keeps it.
        let e = host(&socket(&dir)).unwrap_err().to_string();
        assert_eq!(e, format!("control.socket: {} exists and is not a socket; not removed", dir.display()));
        let e = host(&format!("{}\ngroup = \"gw-no-such-group-x\"", socket(&dir.join("gw.sock"))))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "control.group: no group \"gw-no-such-group-x\"");
        host(&format!("{}\ngroup = \"root\"", socket(&dir.join("gw.sock")))).unwrap();
        // A metrics address of another host (TEST-NET-1) cannot be served.
        let metrics = |a: &str| host(&format!("{}\n[metrics]\nlisten = {a:?}", socket(&dir.join("gw.sock"))));
        let e = metrics("192.0.2.1:9120").unwrap_err().to_string();
        assert!(
            e.starts_with("metrics.listen: 192.0.2.1:9120: 192.0.2.1 is not an address of this host ("),
            "{e}"
        );
        metrics("127.0.0.1:9120").unwrap();
        metrics("0.0.0.0:9120").unwrap();
        // A port's own address, which its kernel interface takes at the
        // start (scraped through the DPDK port): not checked now.
        let kernel =
            GOOD.replace("address = \"198.18.0.1/24\"", "address = \"198.18.0.1/24\"\nkernel = \"gw-out\"");
        let sock = socket(&dir.join("gw.sock"));
        parse(&format!("{kernel}\n{sock}\n[metrics]\nlisten = \"198.18.0.1:9120\""))
            .unwrap()
            .check_host()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Nested port subnets: a next hop goes out the port whose subnet
    /// holding it is the longest, as Linux's connected routes choose.
    #[test]
    fn a_next_hop_goes_out_the_port_of_the_longest_subnet_holding_it() {
        let nested =
            GOOD.replace("\"198.18.1.1/24\"", "\"198.18.0.129/25\"").replace("198.18.0.254", "198.18.0.200");
        let cfg = parse(&nested).unwrap();
        let ports = cfg.port_confs().unwrap();
        let routes = cfg.static_routes(&ports).unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].port, 1, "198.18.0.200 is in port[1]'s /25 and port[0]'s /24");
    }

    #[test]
    fn config_and_rules_files_must_be_regular_files_of_bounded_size() {
        let dir = std::env::temp_dir().join(format!("gw-config-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Too large (a sparse file: nothing is written, nothing read).
        let big = dir.join("big.toml");
        std::fs::File::create(&big).unwrap().set_len(MAX_CONFIG_FILE + 1).unwrap();
        let e = Config::load(&big).unwrap_err().to_string();
        assert_eq!(e, format!("cannot read {}: 268435457 bytes, above the limit of 256 MiB", big.display()));
        let e = load_rules(&big).unwrap_err().to_string();
        assert_eq!(e, format!("rules file {}: 268435457 bytes, above the limit of 256 MiB", big.display()));
        // A FIFO (no writer: the read would wait forever), a device that
        // never ends, a directory: refused at once.
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (&dir, "a directory"),
        ] {
            let e = Config::load(path).unwrap_err().to_string();
            assert_eq!(e, format!("cannot read {}: not a regular file ({what})", path.display()));
            let e = load_rules(path).unwrap_err().to_string();
            assert_eq!(e, format!("rules file {}: not a regular file ({what})", path.display()));
        }
        // The same at a reload (SIGHUP).
        let conf = dir.join("gw.toml");
        std::fs::write(&conf, GOOD).unwrap();
        let e = reload_requests(&conf, Some(&fifo)).unwrap_err().to_string();
        assert_eq!(e, format!("rules file {}: not a regular file (a FIFO)", fifo.display()));
        assert_eq!(reload_requests(&conf, None).unwrap().len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_keys_and_type_errors_are_refused_with_the_key() {
        let e = err_of(&GOOD.replace("sessions = 1000", "sesions = 1000"));
        assert!(e.contains("sesions"), "{e}");
        let e = err_of(&GOOD.replace("sessions = 1000", "sessions = \"many\""));
        assert!(e.contains("sessions"), "{e}");
        assert!(err_of("").contains("port"));
    }

    #[test]
    fn overload_syn_rate_is_refused_out_of_range_at_start_and_reload() {
        assert_eq!(parse(GOOD).unwrap().workers.overload_syn_rate, gw_core::synproxy::shed::DEFAULT_RATE);
        let with =
            |v: &str| GOOD.replace("sessions = 1000", &format!("sessions = 1000\noverload_syn_rate = {v}"));
        assert_eq!(parse(&with("250000")).unwrap().workers.overload_syn_rate, 250_000);
        for bad in ["0", "999", "10000001"] {
            let e = err_of(&with(bad));
            assert!(e.starts_with("workers.overload_syn_rate: must be 1000..=10000000"), "{bad}: {e}");
        }
        assert!(err_of(&with("-1")).contains("overload_syn_rate"));
        let dir = std::env::temp_dir().join(format!("gw-config-syn-rate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("gw.toml");
        std::fs::write(&conf, with("0")).unwrap();
        let e = reload_requests(&conf, None).unwrap_err().to_string();
        assert!(e.contains("workers.overload_syn_rate: must be"), "a reload refuses it too: {e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rp_filter_is_strict_unless_a_port_says_loose_or_off() {
        let ports = parse(GOOD).unwrap().port_confs().unwrap();
        assert!(ports.iter().all(|p| p.rp_filter == RpFilter::Strict));
        let loose =
            GOOD.replace("mac = \"02:00:00:00:01:01\"", "mac = \"02:00:00:00:01:01\"\nrp_filter = \"loose\"");
        let ports = parse(&loose).unwrap().port_confs().unwrap();
        assert_eq!((ports[0].rp_filter, ports[1].rp_filter), (RpFilter::Strict, RpFilter::Loose));
        assert_eq!(ports[1].iface(1, MacAddr([2, 0, 0, 0, 0, 1])).rp_filter, RpFilter::Loose);
        assert!(parse(&loose.replace("\"loose\"", "\"off\"")).is_ok());
        assert!(err_of(&loose.replace("\"loose\"", "\"maybe\"")).contains("rp_filter"));
        let share = GOOD.replace("[timeouts]", "[neighbours]\nper_port_percent = 0\n[timeouts]");
        assert!(err_of(&share).starts_with("neighbours.per_port_percent"), "{}", err_of(&share));
    }
}
