//! The gatewayd binary refuses, before it touches DPDK, a configuration that
//! would break it: `--check` names the field, and a `[control] socket` that
//! names a regular file refuses the start and keeps the file.
#![cfg(feature = "dpdk")]

use std::path::{Path, PathBuf};
use std::process::Command;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("gw-refuses-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

/// Runs gatewayd on a config of `body` (after one port); returns (status, stderr).
fn gatewayd(dir: &Path, body: &str, check: bool) -> (Option<i32>, String) {
    let conf = dir.join("gw.toml");
    let text = format!("[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n{body}");
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatewayd"));
    cmd.arg("--config").arg(&conf);
    if check {
        cmd.arg("--check");
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn check_refuses_each_guarded_value_with_its_field() {
    let d = dir("check");
    let cases = [
        ("[timeouts]\nestablished = 0", "timeouts.established: 0 is not within 1..=2678400 seconds"),
        ("[timeouts]\nudp = 4294967295", "timeouts.udp: 4294967295 is not within"),
        ("[workers]\nsessions = 4294967294", "workers.sessions: must be between 1 and 2147483648"),
        ("[workers]\nsessions6 = 0", "workers.sessions6: must be between 1 and 2147483648"),
        ("[workers]\nsessions6 = 4294967294", "workers.sessions6: must be between 1 and 2147483648"),
        ("[workers]\nmax_dests = 1099511627776", "workers.max_dests: must be between 1 and 65536"),
        ("[workers]\nmax_services = 1099511627776", "workers.max_services: must be between 1 and"),
        ("[workers]\nmbufs = 1073741824", "workers.mbufs: needs 2304.0 GiB"),
        ("[workers]\nidle_sleep_us = 3600000000", "workers.idle_sleep_us: 3600000000 is above 10000"),
        ("[neighbours]\nreachable_s = 9223372036854775807", "neighbours.reachable_s: must be between 1"),
        ("[ipvs]\nreply_rate = 0", "ipvs.reply_rate: 0 is not within 1..=1000000 replies per second"),
        ("[ipvs]\nreply_burst = 2000000", "ipvs.reply_burst: 2000000 is not within 1..=1000000"),
        ("[[neighbour]]\naddress = \"198.18.0.9\"\nmac = \"02:00:00:00:00:09\"\nport = \"nope\"", "neighbour[0].port: no port named \"nope\" (ports: port0)"),
        ("[[neighbour]]\naddress = \"198.18.1.9\"\nmac = \"02:00:00:00:00:09\"\nport = \"port0\"", "neighbour[0].address: 198.18.1.9 is not on port \"port0\"'s subnet 198.18.0.0/24"),
        ("[[neighbour]]\naddress = \"198.18.0.9\"\nmac = \"02:00:00:00:09\"\nport = \"port0\"", "neighbour[0].mac: \"02:00:00:00:09\" is not a MAC address"),
        ("[[neighbour]]\naddress = \"198.18.0.9\"\nmac = \"01:00:5e:00:00:09\"\nport = \"port0\"", "neighbour[0].mac: 01:00:5e:00:00:09 is not a unicast MAC address"),
        ("[[neighbour]]\naddress = \"198.18.0\"\nmac = \"02:00:00:00:00:09\"\nport = \"port0\"", "neighbour[0].address: \"198.18.0\" is not an IPv4 or IPv6 address"),
        ("[[neighbour]]\naddress = \"2001:db8::9\"\nmac = \"02:00:00:00:00:09\"\nport = \"port0\"", "neighbour[0].address: 2001:db8::9 is IPv6 and port \"port0\" has no IPv6 address"),
        ("[[neighbour]]\naddress = \"198.18.0.9\"\nmac = \"02:00:00:00:00:09\"\nport = \"port0\"\n[[neighbour]]\naddress = \"198.18.0.9\"\nmac = \"02:00:00:00:00:0a\"\nport = \"port0\"", "neighbour[1].address: 198.18.0.9 on port \"port0\" is already neighbour[0]"),
        ("[metrics]\nlisten = \"localhost\"", "metrics.listen: \"localhost\" is not an address:port"),
        ("[metrics]\nlisten = \"127.0.0.1:0\"", "metrics.listen: the port must be 1..=65535"),
        (
            "[metrics]\nbackend_labels = \"local_port,vip,proto\"",
            "metrics.backend_labels: unknown IPVS backend labels: \"vip\"",
        ),
        (
            "[metrics]\nlisten = \"127.0.0.1:70000\"",
            "metrics.listen: \"127.0.0.1:70000\" is not an address:port",
        ),
        (
            "[[service]]\nrules = \"-A -t 198.18.0.100:80\"\n[[service]]\nrules = \"-A -t 198.18.0.100:80\"",
            "service[1].rules: line 1: TCP 198.18.0.100:80 is already defined in service[0]",
        ),
        // A real server on the port's own address, a local address on its
        // subnet's broadcast address, a loopback VIP: the control plane's
        // refusals, with the ports --check reads.
        (
            "[[service]]\nrules = \"-A -t 198.18.0.100:80\\n-a -t 198.18.0.100:80 -r 198.18.0.1:80 -m\"",
            "service[0].rules: line 2: refused: Invalid argument (bad real server 198.18.0.1:80: it is port \"port0\"'s own address)",
        ),
        (
            "[[service]]\nrules = \"-A -t 198.18.0.100:80\\n--add-laddr -t 198.18.0.100:80 -z 198.18.0.255\"",
            "service[0].rules: line 2: refused: Invalid argument (198.18.0.255 cannot be a local address: it is the broadcast address of port \"port0\"'s subnet 198.18.0.0/24)",
        ),
        (
            "[[service]]\nrules = \"-A -u 127.0.0.1:53\"",
            "service[0].rules: line 1: refused: Invalid argument (127.0.0.1 cannot be a virtual service address: it is loopback (127.0.0.0/8))",
        ),
        ("[workers]\ncores = [1, 1]", "workers.cores: lcore 1 is listed twice (at 1)"),
        ("[workers]\ncores = [4294967295]", "workers.cores: lcore 4294967295 is not below 128"),
        ("[workers]\nidle_sleep_us = 0", "workers.idle_sleep_us: must be 1..=10000 with idle = \"sleep\""),
        ("[workers]\ncores = [1, 2]\nlport_min = 65535", "workers.lport_min: 65535..=65535 holds 1 local port(s) for 2 workers"),
        ("[[route]]\ndest = \"0.0.0.0/0\"\nvia = \"198.18.0.1\"", "route[0].via: 198.18.0.1 is port[0] (\"port0\")'s own address"),
        // What the start refuses late (after EAL and the ports), --check
        // refuses too.
        ("[control]\nsocket = \"\"", "control.socket: must not be empty"),
    ];
    for (body, want) in cases {
        let (code, err) = gatewayd(&d.0, body, true);
        assert_eq!(code, Some(2), "{body}: {err}");
        assert!(err.starts_with(&format!("gatewayd: {want}")), "{body}: {err}");
    }
    // The host's state (the start refuses it before EAL, below): --check
    // warns, and the file passes; the host may change before the start (a
    // RuntimeDirectory, a group the package makes).
    for (body, want) in [
        (
            "[control]\nsocket = \"/nonexistent-gw-dir/gw.sock\"",
            "control.socket: directory /nonexistent-gw-dir: No such file",
        ),
        ("[control]\nsocket = \"/tmp\"", "control.socket: /tmp exists and is not a socket"),
        ("[control]\ngroup = \"gw-no-such-group-x\"", "control.group: no group \"gw-no-such-group-x\""),
        (
            "[metrics]\nlisten = \"192.0.2.1:9120\"",
            "metrics.listen: 192.0.2.1:9120: 192.0.2.1 is not an address of this host",
        ),
    ] {
        let (code, err) = gatewayd(&d.0, body, true);
        assert_eq!(code, Some(0), "{body}: {err}");
        assert!(err.starts_with(&format!("gatewayd: warning: {want}")), "{body}: {err}");
    }
    // A rules file whose requests the control plane refuses (a real server
    // added twice): --check applies them as the start does, so it fails
    // where the start would, with the start's words.
    let rules = d.0.join("rules");
    let dup = "-a -t 198.18.0.100:80 -r 198.18.0.2:80 -m";
    std::fs::write(&rules, format!("-A -t 198.18.0.100:80 -s rr\n{dup}\n{dup}\n")).unwrap();
    let (code, err) = gatewayd(&d.0, &format!("[control]\nrules = {:?}", rules.display().to_string()), true);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!("gatewayd: rules file {}: rule 3: 198.18.0.2:80", rules.display())),
        "{err}"
    );
    // Not a number of sessions at all: refused, naming the key.
    let (code, err) = gatewayd(&d.0, "[workers]\nsessions6 = -1", true);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("gatewayd: ") && err.contains("sessions6"), "{err}");
    let (code, err) = gatewayd(&d.0, "[workers]\nsessions6 = 1", true);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = gatewayd(&d.0, "[timeouts]\nestablished = 2678400", true);
    assert_eq!(code, Some(0), "{err}");
    let ok = "[[neighbour]]\naddress = \"198.18.0.9\"\nmac = \"02:00:00:00:00:09\"\nport = \"port0\"";
    let (code, err) = gatewayd(&d.0, ok, true);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = gatewayd(&d.0, "[metrics]\nlisten = \"[::1]:9120\"", true);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_start_refuses_before_eal_what_check_refuses_on_this_host() {
    let d = dir("host");
    for (body, want) in [
        ("[control]\ngroup = \"gw-no-such-group-x\"", "control.group: no group \"gw-no-such-group-x\""),
        (
            "[metrics]\nlisten = \"192.0.2.1:9120\"",
            "metrics.listen: 192.0.2.1:9120: 192.0.2.1 is not an address of this host",
        ),
    ] {
        let (code, err) = gatewayd(&d.0, body, false);
        assert_eq!(code, Some(2), "{body}: {err}");
        assert!(err.starts_with(&format!("gatewayd: {want}")), "{body}: {err}");
        assert!(!err.contains("EAL"), "refused before EAL: {err}");
    }
}

#[test]
fn a_fifo_or_a_device_as_a_file_is_refused_not_waited_on() {
    let d = dir("fifo");
    let fifo = d.0.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let conf = d.0.join("gw.toml");
    std::fs::write(&conf, "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n").unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gatewayd")).arg("--check").args(args).output().unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let (f, c) = (fifo.as_os_str(), conf.as_os_str());
    for (args, want) in [
        (vec!["--config".as_ref(), f], format!("cannot read {}: not a regular file (a FIFO)", fifo.display())),
        (vec!["--config".as_ref(), "/dev/zero".as_ref()], "cannot read /dev/zero: not a regular file (a character device)".into()),
        (vec!["--config".as_ref(), c, "--rules".as_ref(), f], format!("rules file {}: not a regular file (a FIFO)", fifo.display())),
        (
            vec!["--config".as_ref(), c, "--keepalived".as_ref(), "/dev/zero".as_ref()],
            "keepalived file /dev/zero: (/dev/zero) Unable to read configuration file /dev/zero: not a regular file (a character device)".into(),
        ),
    ] {
        let (code, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err, format!("gatewayd: {want}\n"), "{args:?}");
    }
}

#[test]
fn a_regular_file_at_the_socket_path_refuses_the_start_and_is_kept() {
    let d = dir("sockfile");
    let sock = d.0.join("precious");
    std::fs::write(&sock, "keep me").unwrap();
    let (code, err) = gatewayd(&d.0, &format!("[control]\nsocket = {:?}", sock.to_str().unwrap()), false);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("exists and is not a socket; not removed"), "{err}");
    assert!(err.contains(&format!("control.socket: {}", sock.display())), "{err}");
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "keep me");
}

/// A running gatewayd on a null device (no NIC, no hugepages), stopped with
/// SIGTERM on drop.
struct Daemon {
    child: std::process::Child,
    socket: PathBuf,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let socket = dir.join("gw.sock");
        let conf = dir.join("gw.toml");
        let text = format!(
            "[eal]\nargs = [\"-l\", \"0,1\", \"--no-huge\", \"-m\", \"256\", \"--no-shconf\", \"--no-pci\", \
             \"--no-telemetry\", \"--log-level=*:warning\"]\n\
             [[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n\
             [workers]\nsessions = 1024\nmbufs = 2048\n[control]\nsocket = {:?}\n",
            socket.to_str().unwrap()
        );
        std::fs::write(&conf, text).unwrap();
        // Under umask 000, as in the report: the socket must still never be
        // reachable with more than mode 0600.
        let child = Command::new("sh")
            .args(["-c", "umask 000 && exec \"$0\" --config \"$1\"", env!("CARGO_BIN_EXE_gatewayd")])
            .arg(&conf)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut d = Daemon { child, socket };
        // Up when the socket answers (bounded: the daemon exiting ends the wait).
        while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!("gatewayd exited: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        d
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// gwctl's whole run with its own default timeout.
fn gwctl(sock: &Path, args: &[&str]) -> (u8, String, String) {
    let argv: Vec<&str> =
        ["gwctl", "--socket", sock.to_str().unwrap()].into_iter().chain(args.iter().copied()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run(argv, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn sixty_four_trickling_clients_do_not_keep_gwctl_from_answering() {
    use std::io::Write;
    let d = dir("slow");
    let daemon = Daemon::start(&d.0);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&daemon.socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // 64 clients, each one byte into its request and then silent (a client
    // trickling a byte every 20 s), holding every control slot.
    let slow: Vec<_> = (0..dataplane::control::MAX_CLIENTS)
        .map(|_| {
            let mut c = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
            c.write_all(&[0]).unwrap();
            c
        })
        .collect();
    for _ in 0..3 {
        let (code, out, err) = gwctl(&daemon.socket, &["-L", "-n"]);
        assert_eq!(code, 0, "gwctl did not answer: {err}");
        assert!(out.starts_with("IP Virtual Server version 1.2.1 (size=1024)"), "{out}");
    }
    // A second daemon on the same socket is refused before it starts EAL.
    let out = Command::new(env!("CARGO_BIN_EXE_gatewayd"))
        .arg("--config")
        .arg(d.0.join("gw.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is in use: is another gatewayd running?"));
    assert_eq!(gwctl(&daemon.socket, &["-L", "-n"]).0, 0, "the first one still answers");
    drop(slow);
    let socket = daemon.socket.clone();
    drop(daemon);
    assert!(!socket.exists(), "gatewayd removes its own socket at SIGTERM");
}

/// systemd's readiness protocol (gatewayd.service is Type=notify): with
/// NOTIFY_SOCKET set, gatewayd sends READY=1 once it serves (its ports are
/// up and its control socket answers by then), and STOPPING=1 on SIGTERM.
#[test]
fn readiness_is_signalled_to_systemd_once_the_ports_are_up_and_stopping_on_sigterm() {
    use std::os::unix::net::{UnixDatagram, UnixStream};
    use std::time::Duration;
    let d = dir("notify");
    let notify = d.0.join("notify.sock");
    let rx = UnixDatagram::bind(&notify).unwrap();
    // A generous bound so a hung daemon fails the test instead of hanging it.
    rx.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let socket = d.0.join("gw.sock");
    let conf = d.0.join("gw.toml");
    let text = format!(
        "[eal]\nargs = [\"-l\", \"0,1\", \"--no-huge\", \"-m\", \"256\", \"--no-shconf\", \"--no-pci\", \
         \"--no-telemetry\", \"--log-level=*:warning\"]\n\
         [[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n\
         [workers]\nsessions = 1024\nmbufs = 2048\n[control]\nsocket = {:?}\n",
        socket.to_str().unwrap()
    );
    std::fs::write(&conf, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatewayd"))
        .arg("--config")
        .arg(&conf)
        .env("NOTIFY_SOCKET", &notify)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = rx.recv(&mut buf).expect("no readiness notification from gatewayd");
    assert_eq!(&buf[..n], b"READY=1\nSTATUS=forwarding");
    // Ready means serving: the control socket answers already.
    assert!(UnixStream::connect(&socket).is_ok());
    assert!(child.try_wait().unwrap().is_none());
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let n = rx.recv(&mut buf).expect("no STOPPING=1 from gatewayd");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(child.wait().unwrap().success());
}
