//! What the end-to-end labs share (`mod common;` in each test file): the
//! [`Topology`] of each forwarding mode, the [`Lab`] guard that builds it
//! (tests/lab/lab.sh), starts gatewayd and the real servers and removes
//! everything again (also when a test fails), and the helpers that drive
//! real traffic and read gwctl's listings and counters.
//!
//! All traffic stays in namespaces the lab creates (198.18.0.0/15, and
//! 2001:db8::/32 in the dual-stack labs of issue 17: a [`Topology`] whose
//! VIP is IPv6 builds `lab.sh up PREFIX MODE dual`, where every lab address
//! 198.18.A.B has its twin 2001:db8:A::B, and gives gatewayd's ports and
//! routes their IPv6 twins through [`dual_stack`]). Needs
//! root, the Debian DPDK packages, and built `gatewayd`/`gwctl` binaries
//! (found through GATEWAYD_BIN/GWCTL_BIN, else $CARGO_TARGET_DIR or target/,
//! release before debug). `./test.sh` takes care of all of that.
//!
//! When a test panics, the guard prints gatewayd's log, its non-zero
//! counters and the `-L -n --stats` listing before tearing the lab down, so a
//! failure says where the packets went (e.g. `drop_mode_unsupported`).

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod proxy;

/// The virtual service address in every lab.
pub const VIP: &str = "198.18.0.100";
/// The client's address in every lab.
pub const CLIENT: &str = "198.18.0.2";
/// The virtual service port in every lab.
pub const VPORT: u16 = 80;
/// The IPv6 VIP of the dual-stack labs (the twin of [`VIP`]).
pub const VIP6: &str = "2001:db8::100";
/// The client's IPv6 address in the dual-stack labs.
pub const CLIENT6: &str = "2001:db8::2";

/// `addr:port` as ipvsadm and gwctl write it: `[addr]:port` for IPv6.
pub fn hostport(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// The IPv6 twin of a lab address (tests/lab/lab.sh's `v6`):
/// 198.18.A.B -> 2001:db8:A::B, 198.18.A.0/24 -> 2001:db8:A::/64,
/// 0.0.0.0/0 -> ::/0.
pub fn twin6(v4: &str) -> String {
    let (ip, len) = match v4.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (v4, None),
    };
    let o: Vec<&str> = ip.split('.').collect();
    assert_eq!(o.len(), 4, "not an IPv4 address: {v4}");
    let addr = match (o[2], o[3]) {
        _ if ip == "0.0.0.0" => "::".to_string(),
        (c, "0") => format!("2001:db8:{c}::"),
        (c, d) => format!("2001:db8:{c}::{d}"),
    };
    match len {
        None => addr,
        Some("0") => format!("{addr}/0"),
        Some("24") => format!("{addr}/64"),
        Some("32") => format!("{addr}/128"),
        Some(l) => panic!("no IPv6 twin for prefix length {l}"),
    }
}

/// gatewayd's configuration made dual-stack: every port `address =
/// "198.18.A.1/24"` becomes `["198.18.A.1/24", "2001:db8:A::1/64"]` and
/// every `[[route]]` gets an IPv6 twin after it.
pub fn dual_stack(conf: String) -> String {
    let quoted = |l: &str| l.split('"').nth(1).unwrap_or_else(|| panic!("odd line {l:?}")).to_string();
    let mut out = String::new();
    let mut dest = None;
    for line in conf.lines() {
        let t = line.trim();
        if t.starts_with("address = \"") {
            let a = quoted(t);
            out += &format!("address = [\"{a}\", \"{}\"]\n", twin6(&a));
            continue;
        }
        out += line;
        out += "\n";
        if t.starts_with("dest = ") {
            dest = Some(quoted(t));
        } else if t.starts_with("via = ") {
            let d = dest.take().expect("via after dest in a [[route]]");
            out += &format!("\n[[route]]\ndest = \"{}\"\nvia = \"{}\"\n", twin6(&d), twin6(&quoted(t)));
        }
    }
    out
}

/// One lab layout (tests/lab/lab.sh MODE) and how the services use it.
#[derive(Debug)]
pub struct Topology {
    /// lab.sh's MODE argument.
    pub lab: &'static str,
    /// The VIP; an IPv6 VIP makes the lab dual-stack.
    pub vip: &'static str,
    /// The client's address (of the VIP's family).
    pub client: &'static str,
    /// gatewayd's configuration, relative to the workspace root.
    pub config: &'static str,
    /// gwctl's forwarding flag for the real servers.
    pub forward: &'static str,
    /// The Forward column of `gwctl -L -n`.
    pub forward_label: &'static str,
    /// The real servers: (namespace suffix, address).
    pub servers: [(&'static str, &'static str); 2],
    /// The port the real servers listen on.
    pub server_port: u16,
    /// The address the real servers bind. DR and TUN bind the VIP, so that
    /// the UDP echo's replies leave from the VIP (a server bound to 0.0.0.0
    /// would answer from its own address).
    pub server_bind: Option<&'static str>,
    /// FULLNAT's local address.
    pub laddr: Option<&'static str>,
}

impl Topology {
    /// Whether the lab is dual-stack (the VIP is IPv6).
    pub fn dual(&self) -> bool {
        self.vip.contains(':')
    }

    /// The service VIP:`port` as gwctl takes and lists it.
    pub fn service(&self, port: u16) -> String {
        hostport(self.vip, port)
    }

    /// The address a real server at `rip` binds: the topology's, else
    /// the wildcard of `rip`'s family.
    pub fn bind(&self, rip: &'static str) -> &'static str {
        self.server_bind.unwrap_or(if rip.contains(':') { "::" } else { "0.0.0.0" })
    }

    /// `RIP[:port]` as given to `gwctl -a -r`: ipvsadm forces the service
    /// port for -g and -i, so those take no port.
    pub fn rs_arg(&self, rip: &str) -> String {
        match self.forward {
            "-g" | "-i" => rip.to_string(),
            _ => hostport(rip, self.server_port),
        }
    }

    /// `RIP:port` as gwctl lists a real server.
    pub fn rs_listed(&self, rip: &str) -> String {
        hostport(rip, self.server_port)
    }

    /// The exact `gwctl -L -n` line of real server `rip` (ipvsadm's layout).
    pub fn dest_line(&self, rip: &str, weight: u32) -> String {
        format!("  -> {:<28} {:<7} {:<6} ", self.rs_listed(rip), self.forward_label, weight)
    }

    /// The index (0 or 1) of the real server named `name` ("rs1", "rs2").
    pub fn server_index(&self, name: &str) -> usize {
        self.servers.iter().position(|(n, _)| *n == name).unwrap_or_else(|| panic!("no real server {name:?}"))
    }
}

/// FULLNAT: two-armed; the real servers see the local address.
pub const FULLNAT: Topology = Topology {
    lab: "fullnat",
    vip: VIP,
    client: CLIENT,
    config: "conf/lab-fullnat.toml",
    forward: "-b",
    forward_label: "FullNat",
    servers: [("rs1", "198.18.1.2"), ("rs2", "198.18.1.3")],
    server_port: 80,
    server_bind: None,
    laddr: Some("198.18.1.10"),
};

/// NAT (LVS-NAT, "Masq"): the FULLNAT wiring, the real servers route back
/// through the gateway, and listen on 8080 to show the port mapping.
pub const NAT: Topology = Topology {
    lab: "nat",
    vip: VIP,
    client: CLIENT,
    config: "conf/lab-fullnat.toml",
    forward: "-m",
    forward_label: "Masq",
    servers: [("rs1", "198.18.1.2"), ("rs2", "198.18.1.3")],
    server_port: 8080,
    server_bind: None,
    laddr: None,
};

/// DR ("Route"): one segment, the VIP on the real servers' lo.
pub const DR: Topology = Topology {
    lab: "dr",
    vip: VIP,
    client: CLIENT,
    config: "conf/lab-dr.toml",
    forward: "-g",
    forward_label: "Route",
    servers: [("rs1", "198.18.0.3"), ("rs2", "198.18.0.4")],
    server_port: 80,
    server_bind: Some(VIP),
    laddr: None,
};

/// DR with the client behind a router whose link toward the client has
/// MTU 1400 (lab.sh dr-routed): the real servers' replies cross it.
pub const DR_ROUTED: Topology = Topology { lab: "dr-routed", ..DR };

/// TUN ("Tunnel"): IP-in-IP through a router to another subnet.
pub const TUN: Topology = Topology {
    lab: "tun",
    vip: VIP,
    client: CLIENT,
    config: "conf/lab-tun.toml",
    forward: "-i",
    forward_label: "Tunnel",
    servers: [("rs1", "198.18.2.2"), ("rs2", "198.18.2.3")],
    server_port: 80,
    server_bind: Some(VIP),
    laddr: None,
};

/// FULLNAT with two workers: two queue pairs per af_packet port (the kernel
/// spreads packets over them with PACKET_FANOUT) and three EAL lcores on the
/// two CPUs (the main lcore and a worker share one; idle workers sleep).
pub const FULLNAT_2W: Topology = Topology { config: "conf/lab-fullnat-2w.toml", ..FULLNAT };

/// NAT with two workers (see [`FULLNAT_2W`]).
pub const NAT_2W: Topology = Topology { config: "conf/lab-fullnat-2w.toml", ..NAT };

/// FULLNAT66: the FULLNAT lab dual-stack, an IPv6 service, IPv6 real
/// servers (listening on `::`) that see the IPv6 local address.
pub const FULLNAT6: Topology = Topology {
    vip: VIP6,
    client: CLIENT6,
    servers: [("rs1", "2001:db8:1::2"), ("rs2", "2001:db8:1::3")],
    laddr: Some("2001:db8:1::10"),
    ..FULLNAT
};

/// FULLNAT66 with two workers (the mixed IPv4 + IPv6 lab).
pub const FULLNAT6_2W: Topology = Topology { config: "conf/lab-fullnat-2w.toml", ..FULLNAT6 };

/// NAT66: the NAT lab dual-stack (real servers on 8080, default routes via
/// the gateway's inside addresses).
pub const NAT6: Topology = Topology {
    vip: VIP6,
    client: CLIENT6,
    servers: [("rs1", "2001:db8:1::2"), ("rs2", "2001:db8:1::3")],
    ..NAT
};

/// DR for IPv6: the DR segment dual-stack, the IPv6 VIP on the real
/// servers' lo (Linux answers neighbour solicitations only for addresses of
/// the receiving interface, so only gatewayd answers for it).
pub const DR6: Topology = Topology {
    vip: VIP6,
    client: CLIENT6,
    servers: [("rs1", "2001:db8::3"), ("rs2", "2001:db8::4")],
    server_bind: Some(VIP6),
    ..DR
};

/// TUN for IPv6: IPv6-in-IPv6 through the router to 2001:db8:2::/64.
pub const TUN6: Topology = Topology {
    vip: VIP6,
    client: CLIENT6,
    servers: [("rs1", "2001:db8:2::2"), ("rs2", "2001:db8:2::3")],
    server_bind: Some(VIP6),
    ..TUN
};

/// NAT64: an IPv6 client and VIP, the FULLNAT lab's IPv4 real servers,
/// which see the IPv4 local address.
pub const NAT64: Topology = Topology { vip: VIP6, client: CLIENT6, ..FULLNAT };

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A lab helper script under tests/lab/.
pub fn script(name: &str) -> PathBuf {
    root().join("tests/lab").join(name)
}

pub fn binary(name: &str, env: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    for profile in ["release", "debug"] {
        let p = target.join(profile).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not built: run `cargo build --release --bins` (or set {env})");
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One HTTP exchange as the client saw it.
#[derive(Debug, Clone)]
pub struct Http {
    /// The real server that answered ("rs1").
    pub server: String,
    /// The peer address:port that real server saw.
    pub peer: String,
    /// The address:port curl connected to.
    pub remote: String,
    /// curl's own address:port.
    pub local: String,
}

/// One UDP exchange as the client saw it (tests/lab/udp_client.py).
#[derive(Debug, Clone)]
pub struct Udp {
    pub server: String,
    /// The peer address:port the real server saw.
    pub peer: String,
    /// The source address:port of the reply.
    pub from: String,
    /// The client socket's own address:port.
    pub local: String,
}

/// One download ([`Lab::download`]).
#[derive(Debug, Clone)]
pub struct Download {
    /// The real server that sent it.
    pub server: String,
    /// The SHA-256 (hex) the real server computed over what it sent.
    pub announced: String,
    /// The SHA-256 (hex) of what the client received.
    pub received: String,
    /// Bytes the client received.
    pub size: usize,
}

/// ipvsadm's `--stats` columns of one service or real server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// One service of a stats listing: ("TCP 198.18.0.100:80", its stats,
/// [("RIP:port", stats)]).
pub type ServiceStats = (String, Stats, Vec<(String, Stats)>);

/// The parsed `gwctl -L -n --stats --exact` listing.
#[derive(Debug)]
pub struct StatsListing {
    pub text: String,
    pub services: Vec<ServiceStats>,
    /// The lab's VIP.
    vip: &'static str,
}

impl StatsListing {
    fn parse(text: String, vip: &'static str) -> StatsListing {
        fn nums(fields: &[&str], text: &str) -> Stats {
            let n: Vec<u64> = fields
                .iter()
                .map(|f| f.parse().unwrap_or_else(|_| panic!("{f:?} is not a number in\n{text}")))
                .collect();
            assert_eq!(n.len(), 5, "five stats columns expected in\n{text}");
            Stats { conns: n[0], inpkts: n[1], outpkts: n[2], inbytes: n[3], outbytes: n[4] }
        }
        let mut services: Vec<ServiceStats> = vec![];
        for line in text.lines().skip_while(|l| !l.starts_with("  -> RemoteAddress:Port")).skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with("  -> ") {
                let svc =
                    services.last_mut().unwrap_or_else(|| panic!("real server before a service:\n{text}"));
                svc.2.push((f[1].to_string(), nums(&f[2..], &text)));
            } else {
                services.push((format!("{} {}", f[0], f[1]), nums(&f[2..], &text), vec![]));
            }
        }
        StatsListing { text, services, vip }
    }

    /// The stats of service `proto` ("TCP"/"UDP") VIP:80.
    pub fn service(&self, proto: &str) -> Stats {
        self.service_at(proto, VPORT)
    }

    /// The stats of service `proto` VIP:`port`.
    pub fn service_at(&self, proto: &str, port: u16) -> Stats {
        self.service_of(proto, self.vip, port)
    }

    /// The stats of service `proto` `vip`:`port`.
    pub fn service_of(&self, proto: &str, vip: &str, port: u16) -> Stats {
        let name = format!("{proto} {}", hostport(vip, port));
        self.services
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no service {name} in\n{}", self.text))
            .1
    }

    /// The stats of real server `rs` ("RIP:port") of service `proto` VIP:80.
    pub fn dest(&self, proto: &str, rs: &str) -> Stats {
        let name = format!("{proto} {}", hostport(self.vip, VPORT));
        let svc =
            self.services.iter().find(|s| s.0 == name).unwrap_or_else(|| panic!("no {name}:\n{}", self.text));
        svc.2.iter().find(|d| d.0 == rs).unwrap_or_else(|| panic!("no {rs} under {name}:\n{}", self.text)).1
    }
}

/// One lab: namespaces PREFIX-*, gatewayd, real servers.
pub struct Lab {
    pub topo: &'static Topology,
    pub prefix: String,
    pub socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
    gatewayd: Option<Child>,
    servers: Vec<Child>,
    started: Instant,
}

impl Lab {
    /// Builds the lab of `topo` under the name `name` (unique per test),
    /// starts gatewayd and both real servers, and waits until they answer.
    pub fn up(topo: &'static Topology, name: &str) -> Lab {
        Lab::up_tweaked(topo, name, |c| c)
    }

    /// [`Lab::up`] with gatewayd's configuration text passed through `tweak`
    /// (e.g. a smaller table, a rules file).
    pub fn up_tweaked(topo: &'static Topology, name: &str, tweak: impl Fn(String) -> String) -> Lab {
        let uid = text(&run(Command::new("id").arg("-u")));
        assert_eq!(uid.trim(), "0", "the labs create network namespaces: run as root");
        let prefix = format!("gwe-{name}");
        let tmp = std::env::temp_dir();
        let mut lab = Lab {
            topo,
            socket: PathBuf::from(format!("/run/{prefix}.sock")),
            config: tmp.join(format!("{prefix}.toml")),
            log: tmp.join(format!("{prefix}.log")),
            prefix,
            gatewayd: None,
            servers: vec![],
            started: Instant::now(),
        };
        let dual = if topo.dual() { "dual" } else { "" };
        let o = run(Command::new("bash").arg(script("lab.sh")).args(["up", &lab.prefix, topo.lab, dual]));
        assert!(o.status.success(), "lab.sh up {} {} {dual}: {}", lab.prefix, topo.lab, stderr(&o));
        let conf = std::fs::read_to_string(root().join(topo.config)).unwrap();
        let conf = conf.replace("/run/gatewayd-lab.sock", lab.socket.to_str().unwrap());
        let conf = if topo.dual() { dual_stack(conf) } else { conf };
        std::fs::write(&lab.config, tweak(conf)).unwrap();
        let log = std::fs::File::create(&lab.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("gw")])
            .arg(binary("gatewayd", "GATEWAYD_BIN"))
            .arg("--config")
            .arg(&lab.config)
            .env("NO_COLOR", "1") // a plain log file
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting gatewayd");
        lab.gatewayd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !lab.socket.exists() {
            if let Some(st) = lab.gatewayd.as_mut().unwrap().try_wait().unwrap() {
                panic!("gatewayd exited ({st}): {}", lab.log_text());
            }
            assert!(Instant::now() < deadline, "gatewayd did not open its socket: {}", lab.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        let port = topo.server_port.to_string();
        for (name, rip) in topo.servers {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &lab.ns(name), "python3"]).arg(script("rs_server.py")).args([
                name,
                &port,
                topo.bind(rip),
            ]);
            let server =
                cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("starting a real server");
            lab.servers.push(server);
        }
        // Wait until both servers listen (asked from inside their namespace).
        for (name, rip) in topo.servers {
            let url = format!("http://{}/", hostport(topo.server_bind.unwrap_or(rip), topo.server_port));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if lab.exec(name, &["curl", "-g", "-s", "-m", "1", &url]).status.success() {
                    break;
                }
                assert!(Instant::now() < deadline, "real server {name} ({url}) did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        lab
    }

    /// The full name of namespace `n` ("client", "gw", "rs1", ...).
    pub fn ns(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    /// Runs `args` in namespace `n`.
    pub fn exec(&self, n: &str, args: &[&str]) -> Output {
        run(Command::new("ip").args(["netns", "exec", &self.ns(n)]).args(args))
    }

    /// Runs tests/lab/`name` with python3 in namespace `n`; panics (with
    /// the diagnostics) if it fails.
    pub fn python(&self, n: &str, name: &str, args: &[&str]) -> String {
        let o = run(Command::new("ip")
            .args(["netns", "exec", &self.ns(n), "python3"])
            .arg(script(name))
            .args(args));
        assert!(o.status.success(), "{name} {args:?} in {n} failed: {}{}", text(&o), stderr(&o));
        text(&o)
    }

    /// Starts tests/lab/`name` with python3 in namespace `n`, stdout piped.
    pub fn spawn_python(&self, n: &str, name: &str, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(n), "python3"])
            .arg(script(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting a python helper");
        let out = BufReader::new(child.stdout.take().unwrap());
        (child, out)
    }

    /// Runs gwctl against this lab's gatewayd.
    pub fn gwctl(&self, args: &[&str]) -> Output {
        run(Command::new(binary("gwctl", "GWCTL_BIN")).arg("--socket").arg(&self.socket).args(args))
    }

    pub fn gwctl_ok(&self, args: &[&str]) -> String {
        let o = self.gwctl(args);
        assert!(o.status.success(), "gwctl {args:?}: {}", stderr(&o));
        text(&o)
    }

    /// A UDP echo server (tests/lab/udp_echo.py: datagrams up to 65,507
    /// bytes, echoed byte for byte) on both real servers at `port`, bound
    /// as the lab's servers bind, and the UDP service VIP:`port` to them in
    /// this lab's mode (rr, and the local address for FULLNAT). The
    /// servers stop with the lab.
    pub fn udp_echo_service(&mut self, port: u16) {
        let port_s = port.to_string();
        for (name, rip) in self.topo.servers {
            let bind = self.topo.server_bind.unwrap_or(rip);
            let child = Command::new("ip")
                .args(["netns", "exec", &self.ns(name), "python3"])
                .arg(script("udp_echo.py"))
                .args(["serve", bind, &port_s])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting the UDP echo server");
            self.servers.push(child);
        }
        // Bound once a datagram to it is answered from inside its namespace.
        for (name, rip) in self.topo.servers {
            let to = self.topo.server_bind.unwrap_or(rip);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self
                .exec(
                    name,
                    &["python3", script("udp_echo.py").to_str().unwrap(), "send", to, &port_s, "nodf", "1"],
                )
                .status
                .success()
            {
                assert!(Instant::now() < deadline, "the UDP echo on {name} did not start");
            }
        }
        let vip = self.topo.service(port);
        self.gwctl_ok(&["-A", "-u", &vip, "-s", "rr"]);
        for (_, rip) in self.topo.servers {
            let rs = match self.topo.forward {
                "-g" | "-i" => rip.to_string(),
                _ => hostport(rip, port),
            };
            self.gwctl_ok(&["-a", "-u", &vip, "-r", &rs, self.topo.forward, "-w", "1"]);
        }
        if let Some(lip) = self.topo.laddr {
            self.gwctl_ok(&["--add-laddr", "-z", lip, "-u", &vip]);
        }
    }

    /// Service VIP:80 for `proto` ("-t" or "-u"), rr, with both real servers
    /// in this lab's forwarding mode (and the local address for FULLNAT).
    pub fn add_service(&self, proto: &str) {
        self.add_service_of(self.topo, proto);
    }

    /// [`add_service`](Self::add_service) with the addresses and mode of
    /// `topo` (another family's services in a dual-stack lab).
    pub fn add_service_of(&self, topo: &Topology, proto: &str) {
        let vip = topo.service(VPORT);
        self.gwctl_ok(&["-A", proto, &vip, "-s", "rr"]);
        for (_, rip) in topo.servers {
            self.gwctl_ok(&["-a", proto, &vip, "-r", &topo.rs_arg(rip), topo.forward, "-w", "1"]);
        }
        if let Some(lip) = topo.laddr {
            self.gwctl_ok(&["--add-laddr", "-z", lip, proto, &vip]);
        }
    }

    /// One HTTP GET from the client to the VIP: (body, the address curl connected to).
    /// For the modes without source NAT (NAT, DR, TUN): TCP and UDP services
    /// with both real servers are listed in ipvsadm's layout with this
    /// mode's Forward word, and six HTTP requests alternate 3/3 between the
    /// servers, each talking to VIP:80 only, each server seeing the client's
    /// own address and port.
    pub fn check_services_and_client_seen(&self) {
        self.add_service("-t");
        self.add_service("-u");
        let listing = self.listing();
        for proto in ["TCP", "UDP"] {
            assert!(listing.contains(&format!("{proto}  {} rr\n", self.topo.service(VPORT))), "{listing}");
        }
        for (_, rip) in self.topo.servers {
            let line = self.topo.dest_line(rip, 1);
            assert!(listing.contains(&line), "no {line:?} in\n{listing}");
        }
        let mut by_server = [0; 2];
        for _ in 0..6 {
            let h = self.http();
            assert_eq!(h.remote, format!("{}:{VPORT}", self.topo.vip), "the client talks to the VIP only");
            assert!(h.local.starts_with(&format!("{}:", self.topo.client)), "{h:?}");
            assert_eq!(h.peer, h.local, "the real server saw {} instead of the client {}", h.peer, h.local);
            by_server[self.topo.server_index(&h.server)] += 1;
        }
        assert_eq!(by_server, [3, 3], "rr alternates between the two real servers");
    }

    pub fn http_get(&self) -> (String, String) {
        let h = self.http();
        (format!("{} {}", h.server, h.peer), h.remote)
    }

    /// After the six HTTP requests and six UDP flows of
    /// [`check_services_and_client_seen`](Self::check_services_and_client_seen)
    /// plus [`udp_flows`](Self::udp_flows)`(6)` in a mode whose replies
    /// bypass the gateway (DR, TUN): one connection per exchange, 3 per real
    /// server, the client's packets counted in, nothing counted out, and no
    /// reply forwarded by the gateway.
    pub fn check_one_way_counters(&self) {
        let stats = self.stats();
        let (tcp, udp) = (stats.service("TCP"), stats.service("UDP"));
        assert_eq!(tcp.conns, 6, "one connection per HTTP request:\n{}", stats.text);
        assert_eq!(udp.conns, 6, "one connection per UDP flow:\n{}", stats.text);
        // The client's SYN, ACK, request and FIN pass the gateway; no reply does.
        assert!(tcp.inpkts >= 6 * 4, "{}", stats.text);
        assert_eq!(udp.inpkts, 6, "{}", stats.text);
        assert_eq!((tcp.outpkts, udp.outpkts, tcp.outbytes, udp.outbytes), (0, 0, 0, 0), "{}", stats.text);
        for (_, rip) in self.topo.servers {
            assert_eq!(stats.dest("TCP", &self.topo.rs_listed(rip)).conns, 3, "{}", stats.text);
            assert_eq!(stats.dest("UDP", &self.topo.rs_listed(rip)).conns, 3, "{}", stats.text);
        }
        assert_eq!(self.counter("fwd_in_packets"), tcp.inpkts + udp.inpkts);
        assert_eq!(self.counter("fwd_out_packets"), 0, "a reply went through the gateway");
        assert_eq!(self.counter("sessions_created"), 12);
    }

    /// curl from the client to the VIP with `extra` arguments: the answer's
    /// body, and the addresses curl connected to and from (IPv6 ones
    /// without brackets, as "2001:db8::100:80").
    fn curl(&self, vip: &str, timeout: &str, extra: &[&str]) -> (String, String, String) {
        let url = format!("http://{}/", hostport(vip, VPORT));
        let mut args = vec!["curl", "-g", "-s", "-S", "-m", timeout];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-w", "\n%{remote_ip}:%{remote_port} %{local_ip}:%{local_port}", &url]);
        let o = self.exec("client", &args);
        assert!(o.status.success(), "HTTP through the VIP failed ({}): {}", o.status, stderr(&o).trim());
        let t = text(&o);
        let (body, addrs) = t.rsplit_once('\n').unwrap();
        let (remote, local) = addrs.trim().split_once(' ').unwrap();
        (body.to_string(), remote.to_string(), local.to_string())
    }

    /// One HTTP GET from the client to the VIP; panics with the
    /// diagnostics if it fails.
    pub fn http(&self) -> Http {
        self.http_to(self.topo.vip)
    }

    /// [`http`](Self::http) to `vip` (another family's VIP in a dual-stack lab).
    pub fn http_to(&self, vip: &str) -> Http {
        let (body, remote, local) = self.curl(vip, "5", &[]);
        let (server, peer) = body.trim().split_once(' ').unwrap_or_else(|| panic!("odd answer {body:?}"));
        Http { server: server.into(), peer: peer.into(), remote, local }
    }

    /// One HTTP POST of `n` bytes from the client to the VIP: the exchange
    /// and the number of bytes the real server read.
    pub fn http_post(&self, n: usize) -> (Http, usize) {
        let file = std::env::temp_dir().join(format!("{}-post.bin", self.prefix));
        std::fs::write(&file, vec![b'x'; n]).unwrap();
        let data = format!("@{}", file.display());
        let (body, remote, local) = self.curl(self.topo.vip, "10", &["--data-binary", &data]);
        let _ = std::fs::remove_file(&file);
        let f: Vec<&str> = body.split_whitespace().collect();
        assert_eq!(f.len(), 3, "odd answer {body:?}");
        let http = Http { server: f[0].into(), peer: f[1].into(), remote, local };
        (http, f[2].parse().unwrap())
    }

    /// A download of `n` bytes from GET /bytes/`n` (tests/lab/rs_server.py):
    /// the real server that sent it, the SHA-256 it announced, and the
    /// SHA-256 and size of what the client received (`sha256sum` of the
    /// file curl wrote); panics with the diagnostics if curl fails.
    pub fn download(&self, n: usize, timeout: &str) -> Download {
        self.download_from(self.topo.vip, n, timeout)
    }

    /// [`download`](Self::download) from `vip` (another family's VIP in a
    /// dual-stack lab; downloads from different VIPs may run at once).
    pub fn download_from(&self, vip: &str, n: usize, timeout: &str) -> Download {
        let file = std::env::temp_dir().join(format!("{}-{vip}-download.bin", self.prefix));
        let _ = std::fs::remove_file(&file);
        let url = format!("http://{}/bytes/{n}", hostport(vip, VPORT));
        let path = file.to_str().unwrap();
        let o = self.exec("client", &["curl", "-g", "-s", "-S", "-m", timeout, "-D", "-", "-o", path, &url]);
        assert!(o.status.success(), "download of {n} bytes failed ({}): {}", o.status, stderr(&o).trim());
        let headers = text(&o);
        let header = |name: &str| {
            headers
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no {name} in\n{headers}"))
        };
        let sum = text(&run(Command::new("sha256sum").arg(&file)));
        let got = std::fs::metadata(&file).map(|m| m.len() as usize).unwrap_or(0);
        let _ = std::fs::remove_file(&file);
        Download {
            server: header("X-Server:"),
            announced: header("X-Sha256:"),
            received: sum.split_whitespace().next().unwrap_or_default().to_string(),
            size: got,
        }
    }

    /// `n` UDP exchanges, each from a new client socket (a new flow), as
    /// lines "rs1 PEER from VIP:80"; panics with the diagnostics if one
    /// gets no answer.
    pub fn udp(&self, n: usize) -> Vec<String> {
        self.udp_flows(n).iter().map(|u| format!("{} {} from {}", u.server, u.peer, u.from)).collect()
    }

    /// `n` UDP exchanges, each from a new client socket (a new flow).
    pub fn udp_flows(&self, n: usize) -> Vec<Udp> {
        self.udp_flows_to(self.topo.vip, n)
    }

    /// [`udp_flows`](Self::udp_flows) to `vip` (another family's VIP in a
    /// dual-stack lab).
    pub fn udp_flows_to(&self, vip: &str, n: usize) -> Vec<Udp> {
        let out =
            self.python("client", "udp_client.py", &[vip, &VPORT.to_string(), &n.to_string(), "--local"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), n, "udp_client.py: {out}");
        assert!(!out.contains("timeout"), "UDP through the VIP got no answer:\n{out}");
        lines
            .iter()
            .map(|l| {
                // "rs1 198.18.0.2:5000 from 198.18.0.100:80 local 198.18.0.2:5000"
                let f: Vec<&str> = l.split_whitespace().collect();
                assert!(f.len() == 6 && f[2] == "from" && f[4] == "local", "odd line {l:?}");
                Udp { server: f[0].into(), peer: f[1].into(), from: f[3].into(), local: f[5].into() }
            })
            .collect()
    }

    /// Counter `name` summed over workers, from `gwctl --counters --json`.
    pub fn counter(&self, name: &str) -> u64 {
        let json = self.gwctl_ok(&["--counters", "--json"]);
        let v: serde_json_lite::Value = serde_json_lite::parse(&json);
        v.sum_counter(name)
    }

    /// Counter `name` of each worker, in order.
    pub fn worker_counters(&self, name: &str) -> Vec<u64> {
        let json = self.gwctl_ok(&["--counters", "--json"]);
        serde_json_lite::parse(&json).counter_values(name)
    }

    /// Statistic `name` of port `port` (`ipackets`, `imissed`, ...) from
    /// `gwctl --counters --json`.
    pub fn port_stat(&self, port: &str, name: &str) -> u64 {
        let json = self.gwctl_ok(&["--counters", "--json"]);
        let flat: String = json.split_whitespace().collect();
        let start = flat
            .find(&format!("\"name\":\"{port}\",\"port\":"))
            .unwrap_or_else(|| panic!("no port {port} in {json}"));
        let rest = &flat[start..];
        let rest = &rest[..rest.find("]}").unwrap_or(rest.len())];
        let pat = format!("\"name\":\"{name}\",\"value\":");
        let i = rest.find(&pat).unwrap_or_else(|| panic!("no {name} for port {port} in {json}"));
        rest[i + pat.len()..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
    }

    /// Sends SIGHUP to gatewayd (`ip netns exec` execs it: the child is gatewayd).
    pub fn sighup(&self) {
        let pid = self.gatewayd.as_ref().expect("gatewayd runs").id().to_string();
        assert!(run(Command::new("kill").args(["-HUP", &pid])).status.success(), "kill -HUP {pid}");
    }

    /// `gwctl -R` with `rules` on its standard input; panics unless it succeeds.
    pub fn restore(&self, rules: &str) {
        let mut child = Command::new(binary("gwctl", "GWCTL_BIN"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("-R")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "gwctl -R: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// `gwctl -L -n`.
    pub fn listing(&self) -> String {
        self.gwctl_ok(&["-L", "-n"])
    }

    /// `gwctl -L -n --stats --exact`, parsed.
    pub fn stats(&self) -> StatsListing {
        StatsListing::parse(self.gwctl_ok(&["-L", "-n", "--stats", "--exact"]), self.topo.vip)
    }

    /// A field of /proc/net/snmp in namespace `n`, e.g. ("Udp", "InDatagrams").
    pub fn snmp(&self, n: &str, group: &str, field: &str) -> u64 {
        let t = text(&self.exec(n, &["cat", "/proc/net/snmp"]));
        let prefix = format!("{group}:");
        let mut lines = t.lines().filter(|l| l.starts_with(&prefix));
        let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
        let i =
            names.split_whitespace().position(|f| f == field).unwrap_or_else(|| panic!("no {group} {field}"));
        values.split_whitespace().nth(i).unwrap().parse().unwrap()
    }

    /// The MAC address of interface `dev` in namespace `n`.
    pub fn mac(&self, n: &str, dev: &str) -> String {
        text(&self.exec(n, &["cat", &format!("/sys/class/net/{dev}/address")])).trim().to_string()
    }

    /// The MAC address namespace `n`'s neighbour table holds for `ip`.
    pub fn neigh(&self, n: &str, ip: &str) -> Option<String> {
        let t = text(&run(Command::new("ip").args(["-n", &self.ns(n), "neigh", "show", ip])));
        t.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).map(str::to_string)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// gatewayd's log, its non-zero counters and the stats listing (never panics).
    pub fn diag(&self) -> String {
        let counters = self.gwctl(&["--counters"]);
        let stats = self.gwctl(&["-L", "-n", "--stats", "--exact"]);
        let nonzero: String = text(&counters)
            .lines()
            .filter(|l| {
                l.split_whitespace().skip(1).any(|f| f.parse::<u64>().is_ok_and(|n| n > 0))
                    || !l.starts_with(char::is_lowercase)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        format!(
            concat!(
                "--- lab {} ({}), up {:.1} s\n",
                "--- gatewayd log:\n{}",
                "--- gwctl --counters (non-zero):\n{}{}",
                "--- gwctl -L -n --stats --exact:\n{}{}"
            ),
            self.prefix,
            self.topo.lab,
            self.started.elapsed().as_secs_f64(),
            self.log_text(),
            nonzero,
            stderr(&counters),
            text(&stats),
            stderr(&stats),
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A failing test shows where the packets went (the panic message
        // says what was expected).
        if std::thread::panicking() {
            eprintln!("=== the test failed; gatewayd's side:\n{}", self.diag());
        }
        if let Some(mut child) = self.gatewayd.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // lab.sh down stops every process left in the lab's namespaces.
        let _ = Command::new("bash").arg(script("lab.sh")).args(["down", &self.prefix]).status();
        for mut s in self.servers.drain(..) {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A process started in a lab namespace ([`Lab::spawn`]), killed and
/// reaped when dropped, also when a test fails (lab.sh down kills whatever
/// is left in the namespaces too).
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    /// Waits for the line "ready" on its stdout (the tests/lab helpers
    /// print it once they listen); the rest of its output.
    pub fn ready(&mut self) -> BufReader<ChildStdout> {
        let mut out = BufReader::new(self.0.stdout.take().expect("stdout piped: Lab::spawn"));
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "helper did not start");
        out
    }
}

impl Lab {
    /// Starts `args` in namespace `n`, stdout piped (for
    /// [`Daemon::ready`]), stderr the test's.
    pub fn spawn(&self, n: &str, args: &[&str]) -> Daemon {
        self.spawn_with(n, args, Stdio::piped(), Stdio::inherit())
    }

    /// Starts a daemon that logs (nginx, bird, a web server) in namespace
    /// `n`, its output discarded.
    pub fn spawn_quiet(&self, n: &str, args: &[&str]) -> Daemon {
        self.spawn_with(n, args, Stdio::null(), Stdio::null())
    }

    fn spawn_with(&self, n: &str, args: &[&str], out: Stdio, err: Stdio) -> Daemon {
        Daemon(
            Command::new("ip")
                .args(["netns", "exec", &self.ns(n)])
                .args(args)
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {args:?} in {n}: {e}")),
        )
    }
}

impl Lab {
    /// `nft CMD` in namespace `n` (nftables from scripts/install-deps.sh):
    /// its output; panics if it fails.
    pub fn nft(&self, n: &str, cmd: &str) -> String {
        let o = self.exec(n, &["nft", cmd]);
        assert!(o.status.success(), "nft {cmd} in {n}: {}", stderr(&o));
        text(&o)
    }

    /// Has the kernel of namespace `n` (a real server's) drop TCP SYNs to
    /// `ports`, one counting rule a port (table `inet gwsyn`): a server
    /// that loses SYNs or leaves them unanswered.
    pub fn drop_syns(&self, n: &str, ports: &[u16]) {
        self.nft(n, "add table inet gwsyn");
        self.nft(n, "add chain inet gwsyn in { type filter hook input priority 0 ; }");
        for p in ports {
            self.nft(n, &format!("add rule inet gwsyn in tcp dport {p} tcp flags syn counter drop"));
        }
    }

    /// The SYNs each of [`drop_syns`](Self::drop_syns)'s rules in `n` has
    /// dropped, in the order of its ports.
    pub fn syns_dropped(&self, n: &str) -> Vec<u64> {
        let rules = self.nft(n, "list table inet gwsyn");
        rules
            .split("counter packets ")
            .skip(1)
            .map(|t| t.split_whitespace().next().and_then(|c| c.parse().ok()))
            .collect::<Option<_>>()
            .unwrap_or_else(|| panic!("odd counters in\n{rules}"))
    }

    /// Ends [`drop_syns`](Self::drop_syns) in `n`.
    pub fn stop_dropping_syns(&self, n: &str) {
        self.nft(n, "delete table inet gwsyn");
    }
}

/// Reads one line of a helper's output, panicking on EOF.
pub fn read_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut l = String::new();
    out.read_line(&mut l).expect("reading a helper's output");
    assert!(!l.is_empty(), "the helper ended early");
    l.trim_end().to_string()
}

/// The few bits of JSON these tests read, without a JSON dependency: the
/// counters response is `{"workers":[{"counters":[{"name":..,"value":..}]}]}`.
mod serde_json_lite {
    pub struct Value(String);
    pub fn parse(s: &str) -> Value {
        Value(s.split_whitespace().collect())
    }
    impl Value {
        pub fn sum_counter(&self, name: &str) -> u64 {
            self.counter_values(name).iter().sum()
        }

        /// The values of counter `name`, one per worker, in order.
        pub fn counter_values(&self, name: &str) -> Vec<u64> {
            let pat = format!("\"name\":\"{name}\",\"value\":");
            let mut values = vec![];
            let mut rest = self.0.as_str();
            while let Some(i) = rest.find(&pat) {
                rest = &rest[i + pat.len()..];
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                values.push(digits.parse::<u64>().unwrap());
            }
            assert!(!values.is_empty(), "no counter {name} in {}", self.0);
            values
        }
    }
}

/// One packet of a capture (tests/lab/ip_capture.py): its key=value words
/// ("src", "dst", "hlim", "l4", "csum", "len", "outer_src", ...).
#[derive(Debug, Clone)]
pub struct Seen(pub std::collections::HashMap<String, String>);

impl Seen {
    /// Field `k`; panics if the capture did not print it.
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).unwrap_or_else(|| panic!("no {k} in {self:?}"))
    }
}

/// A running capture ([`Lab::capture`]).
pub struct Capture(Daemon, BufReader<ChildStdout>);

impl Capture {
    /// Waits for the capture to end (its count or timeout) and returns
    /// what it saw.
    pub fn packets(mut self) -> Vec<Seen> {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut self.1, &mut out).expect("reading the capture");
        let _ = self.0 .0.wait();
        out.lines()
            .map(|l| {
                Seen(
                    l.split_whitespace()
                        .filter_map(|w| w.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect()
    }
}

impl Lab {
    /// Starts a capture (tests/lab/ip_capture.py, scapy) of up to `count`
    /// TCP/UDP packets toward `port` on `iface` in namespace `n`, for at
    /// most `secs` seconds; returns once it runs.
    pub fn capture(&self, n: &str, iface: &str, port: u16, count: usize, secs: u32) -> Capture {
        let s = script("ip_capture.py");
        let mut d = self.spawn(
            n,
            &[
                // Debian's python3 (python3-scapy), not a python3 earlier on PATH.
                "/usr/bin/python3",
                s.to_str().unwrap(),
                iface,
                &port.to_string(),
                &count.to_string(),
                &secs.to_string(),
            ],
        );
        let out = d.ready();
        Capture(d, out)
    }

    /// Starts a capture (tests/lab/ptb6_capture.py, scapy) of up to
    /// `count` ICMPv6 Packet Too Big messages on `iface` in namespace `n`,
    /// for at most `secs` seconds; returns once it runs.
    pub fn capture_ptb6(&self, n: &str, iface: &str, count: usize, secs: u32) -> Capture {
        let s = script("ptb6_capture.py");
        let args = [s.to_str().unwrap(), iface, &count.to_string(), &secs.to_string()];
        let mut d = self.spawn(n, &[&["/usr/bin/python3"][..], &args[..]].concat());
        let out = d.ready();
        Capture(d, out)
    }
}
