//! End-to-end FULLNAT lab: gatewayd on DPDK `net_af_packet` ports inside a
//! network namespace, a client namespace, and two real servers running a
//! real HTTP server and a UDP echo (tests/lab/rs_server.py). All traffic
//! stays in namespaces the test creates (198.18.0.0/15); the [`Lab`] guard
//! removes them and stops gatewayd also when a test fails.
//!
//! Needs root, the Debian DPDK packages, and built `gatewayd`/`gwctl`
//! binaries (found through GATEWAYD_BIN/GWCTL_BIN, else target/release or
//! target/debug). `./test.sh` takes care of all of that.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "198.18.0.100";
const LIP: &str = "198.18.1.10";
const RS: [&str; 2] = ["198.18.1.2", "198.18.1.3"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn binary(name: &str, env: &str) -> PathBuf {
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

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One lab: namespaces PREFIX-{client,gw,sw,rs1,rs2}, gatewayd, servers.
struct Lab {
    prefix: String,
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
    gatewayd: Option<Child>,
    servers: Vec<Child>,
}

impl Lab {
    fn up(name: &str) -> Lab {
        let uid = text(&run(Command::new("id").arg("-u")));
        assert_eq!(uid.trim(), "0", "the labs create network namespaces: run as root");
        let prefix = format!("gwe-{name}");
        let tmp = std::env::temp_dir();
        let mut lab = Lab {
            socket: PathBuf::from(format!("/run/{prefix}.sock")),
            config: tmp.join(format!("{prefix}.toml")),
            log: tmp.join(format!("{prefix}.log")),
            prefix,
            gatewayd: None,
            servers: vec![],
        };
        let script = root().join("tests/lab/lab.sh");
        let o = run(Command::new("bash").arg(&script).args(["up", &lab.prefix]));
        assert!(o.status.success(), "lab.sh up: {}", String::from_utf8_lossy(&o.stderr));
        let conf = std::fs::read_to_string(root().join("conf/lab-fullnat.toml")).unwrap();
        let conf = conf.replace("/run/gatewayd-lab.sock", lab.socket.to_str().unwrap());
        std::fs::write(&lab.config, conf).unwrap();
        let log = std::fs::File::create(&lab.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("gw")])
            .arg(binary("gatewayd", "GATEWAYD_BIN"))
            .arg("--config")
            .arg(&lab.config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting gatewayd");
        lab.gatewayd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !lab.socket.exists() {
            if let Some(st) = lab.gatewayd.as_mut().unwrap().try_wait().unwrap() {
                panic!("gatewayd exited ({st}): {}", std::fs::read_to_string(&lab.log).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "gatewayd did not open its socket");
            std::thread::sleep(Duration::from_millis(100));
        }
        for (i, _) in RS.iter().enumerate() {
            let name = format!("rs{}", i + 1);
            let server = Command::new("ip")
                .args(["netns", "exec", &lab.ns(&name), "python3"])
                .arg(root().join("tests/lab/rs_server.py"))
                .args([&name, "80"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting a real server");
            lab.servers.push(server);
        }
        // Wait until both servers listen.
        for (i, rs) in RS.iter().enumerate() {
            let ns = lab.ns(&format!("rs{}", i + 1));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let o = run(Command::new("ip")
                    .args(["netns", "exec", &ns, "curl", "-s", "-m", "1"])
                    .arg(format!("http://{rs}/")));
                if o.status.success() {
                    break;
                }
                assert!(Instant::now() < deadline, "real server {rs} did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        lab
    }

    fn ns(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    /// Runs gwctl against this lab's gatewayd.
    fn gwctl(&self, args: &[&str]) -> Output {
        run(Command::new(binary("gwctl", "GWCTL_BIN")).arg("--socket").arg(&self.socket).args(args))
    }

    fn gwctl_ok(&self, args: &[&str]) -> String {
        let o = self.gwctl(args);
        assert!(o.status.success(), "gwctl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        text(&o)
    }

    /// A FULLNAT service on VIP:80 for `proto` ("-t" or "-u") with both real servers.
    fn add_service(&self, proto: &str) {
        let vip = format!("{VIP}:80");
        self.gwctl_ok(&["-A", proto, &vip, "-s", "rr"]);
        for rs in RS {
            self.gwctl_ok(&["-a", proto, &vip, "-r", &format!("{rs}:80"), "-b", "-w", "1"]);
        }
        self.gwctl_ok(&["--add-laddr", "-z", LIP, proto, &vip]);
    }

    /// One HTTP GET from the client: (body, the address curl connected to).
    fn http_get(&self) -> (String, String) {
        let o = run(Command::new("ip").args(["netns", "exec", &self.ns("client")]).args([
            "curl",
            "-s",
            "-m",
            "5",
            "-w",
            "\n%{remote_ip}:%{remote_port}",
            &format!("http://{VIP}/"),
        ]));
        assert!(o.status.success(), "curl failed: {:?}\ngatewayd log:\n{}", o, self.log_text());
        let t = text(&o);
        let (body, remote) = t.rsplit_once('\n').unwrap();
        (body.trim().to_string(), remote.trim().to_string())
    }

    /// `n` UDP exchanges, each from a new client port: lines "rs1 LIP:port from VIP:80".
    fn udp(&self, n: usize) -> Vec<String> {
        let o = run(Command::new("ip")
            .args(["netns", "exec", &self.ns("client"), "python3"])
            .arg(root().join("tests/lab/udp_client.py"))
            .args([VIP, "80", &n.to_string()]));
        assert!(o.status.success());
        text(&o).lines().map(str::to_string).collect()
    }

    /// Counter `name` summed over workers, from `gwctl --counters --json`.
    fn counter(&self, name: &str) -> u64 {
        let json = self.gwctl_ok(&["--counters", "--json"]);
        let v: serde_json_lite::Value = serde_json_lite::parse(&json);
        v.sum_counter(name)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.gatewayd.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ =
            Command::new("bash").arg(root().join("tests/lab/lab.sh")).args(["down", &self.prefix]).status();
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.config);
    }
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
            let pat = format!("\"name\":\"{name}\",\"value\":");
            let mut total = 0;
            let mut rest = self.0.as_str();
            let mut found = false;
            while let Some(i) = rest.find(&pat) {
                rest = &rest[i + pat.len()..];
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                total += digits.parse::<u64>().unwrap();
                found = true;
            }
            assert!(found, "no counter {name} in {}", self.0);
            total
        }
    }
}

#[test]
fn fullnat_tcp_and_udp_reach_both_real_servers_which_see_the_local_address() {
    let lab = Lab::up("both");
    lab.add_service("-t");
    lab.add_service("-u");
    let listing = lab.gwctl_ok(&["-L", "-n"]);
    assert!(listing.starts_with("IP Virtual Server version 1.2.1 (size=65536)\n"), "{listing}");
    assert!(listing.contains("TCP  198.18.0.100:80 rr\n"), "{listing}");
    assert!(listing.contains("  -> 198.18.1.2:80                FullNat 1      0          "), "{listing}");

    let mut by_server = [0; 2];
    for _ in 0..6 {
        let (body, remote) = lab.http_get();
        // The client talks to the VIP only.
        assert_eq!(remote, format!("{VIP}:80"));
        // "rsN LIP:lport": the real server saw the local address, not the client.
        let (server, peer) = body.split_once(' ').unwrap();
        assert!(peer.starts_with(&format!("{LIP}:")), "server saw {peer}");
        by_server[if server == "rs1" { 0 } else { 1 }] += 1;
    }
    assert_eq!(by_server, [3, 3], "rr alternates between the two real servers");

    let lines = lab.udp(6);
    assert_eq!(lines.len(), 6);
    for l in &lines {
        assert!(l.ends_with(&format!("from {VIP}:80")), "UDP reply not from the VIP: {l}");
        assert!(l.contains(&format!(" {LIP}:")), "UDP server did not see the LIP: {l}");
    }
    assert_eq!(lines.iter().filter(|l| l.starts_with("rs1 ")).count(), 3);

    let stats = lab.gwctl_ok(&["-L", "-n", "--stats"]);
    let conns = |proto: &str| -> u64 {
        let line = stats.lines().find(|l| l.starts_with(&format!("{proto}  {VIP}:80"))).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    assert_eq!(conns("TCP"), 6, "{stats}");
    assert_eq!(conns("UDP"), 6, "{stats}");
    assert_eq!(lab.counter("sessions_created"), 12);
}

#[test]
fn deleting_a_real_server_sends_new_connections_only_to_the_other() {
    let lab = Lab::up("del");
    lab.add_service("-t");
    let first: Vec<String> = (0..2).map(|_| lab.http_get().0).collect();
    assert!(first.iter().any(|b| b.starts_with("rs1 ")) && first.iter().any(|b| b.starts_with("rs2 ")));
    lab.gwctl_ok(&["-d", "-t", &format!("{VIP}:80"), "-r", &format!("{}:80", RS[0])]);
    for _ in 0..4 {
        let (body, _) = lab.http_get();
        assert!(body.starts_with("rs2 "), "{body}");
    }
    let listing = lab.gwctl_ok(&["-L", "-n"]);
    assert!(!listing.contains(RS[0]), "{listing}");
}

#[test]
fn malformed_frames_are_counted_and_dropped_while_traffic_keeps_flowing() {
    let lab = Lab::up("bad");
    lab.add_service("-t");
    lab.http_get();
    // The client learnt the gateway's MAC for the VIP through ARP.
    let neigh = text(&run(Command::new("ip").args(["-n", &lab.ns("client"), "neigh", "show", VIP])));
    let mac =
        neigh.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).expect("VIP in the neighbour table");
    let before = lab.counter("drop_ipv4_malformed");
    let o = run(Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "python3"])
        .arg(root().join("tests/lab/inject.py"))
        .args(["c0", mac, "198.18.0.2", VIP, "5"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for _ in 0..4 {
        let (body, _) = lab.http_get();
        assert!(body.starts_with("rs"), "{body}");
    }
    // IHL 4 and "total length beyond the frame" are malformed; the others
    // fail the header checksum. Five rounds of four frames each.
    assert_eq!(lab.counter("drop_ipv4_malformed") - before, 10);
    assert_eq!(lab.counter("drop_ipv4_bad_checksum"), 10);
    let up = lab.gwctl(&["-L", "-n"]);
    assert!(up.status.success(), "gatewayd still answers");
}

#[test]
fn gwctl_errors_read_like_ipvsadm_and_exit_non_zero() {
    let lab = Lab::up("err");
    lab.add_service("-t");
    let dup = lab.gwctl(&["-A", "-t", &format!("{VIP}:80")]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("Service already exists"));
    let missing = lab.gwctl(&["-D", "-t", &format!("{VIP}:81")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No such service"));
    let bad = lab.gwctl(&["-A", "-t", "300.1.1.1:80"]);
    assert!(!bad.status.success());
    let down = run(Command::new(binary("gwctl", "GWCTL_BIN")).args([
        "--socket",
        "/run/gwe-nobody.sock",
        "-L",
        "-n",
    ]));
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("/run/gwe-nobody.sock"));
    // The socket is private to root.
    let mode = std::fs::metadata(&lab.socket)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.unwrap(), 0o600);
}
