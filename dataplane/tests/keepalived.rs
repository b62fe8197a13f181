//! A keepalived.conf through gatewayd's control plane: two virtual servers
//! (one DR, one DPVS FNAT with a local address group) applied with the
//! requests gwctl sends and listed as `gwctl -L -n` lists them; a reload of
//! an edited file applies only the difference and keeps the sessions; and
//! the gatewayd binary's `--keepalived`, `--check` and SIGHUP.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use dataplane::control::{serve, Control};
use gw_core::counters::WorkerCounters;
use gw_core::service::{Publisher, Snapshot};
use gw_proto::{Request, Response};

/// A fresh directory for one test, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("gw-keepalived-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A director's keepalived.conf: VRRP (skipped by gatewayd), a DR service on
/// VIP:81 and an FNAT service on VIP:80 with DPVS's local address group.
/// `{w}` is rs 198.18.1.3's FNAT weight, `{extra}` more FNAT real servers,
/// `{algo}` the DR service's scheduler.
/// A DPVS-style director's file. Its checkers' servers do not exist; their
/// `delay_loop` (so their warmup) of 60 s keeps them from running within a
/// test, so a server dead at its first check (keepalived's rule) never
/// leaves the listings these tests compare.
fn director(w: u32, extra: &str, algo: &str) -> String {
    format!(
        r#"! Configuration File for keepalived
global_defs {{
    router_id gw1
}}

vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {{
        198.18.0.100
    }}
}}

local_address_group laddr_g1 {{
    198.18.1.10 dpdk0
}}

virtual_server 198.18.0.100 81 {{
    delay_loop 60
    lb_algo {algo}
    lb_kind DR
    protocol TCP
    real_server 198.18.1.2 81 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 2
        }}
    }}
    real_server 198.18.1.3 81 {{
        weight 2
    }}
}}

virtual_server 198.18.0.100 80 {{
    delay_loop 60
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    real_server 198.18.1.2 8080 {{
        weight 1
        HTTP_GET {{
            url {{
                path /health
                status_code 200
            }}
        }}
    }}
    real_server 198.18.1.3 8080 {{
        weight {w}
    }}
{extra}}}
"#
    )
}

fn gwctl(sock: &Path, args: &[&str]) -> (u8, String, String) {
    let argv: Vec<&str> =
        ["gwctl", "--socket", sock.to_str().unwrap()].into_iter().chain(args.iter().copied()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run(argv, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

const LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=1000)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 rr
  -> 198.18.1.2:8080              FullNat 1      0          0         
  -> 198.18.1.3:8080              FullNat 1      0          0         
TCP  198.18.0.100:81 wrr
  -> 198.18.1.2:81                Route   1      0          0         
  -> 198.18.1.3:81                Route   2      0          0         
";

#[test]
fn a_dr_and_an_fnat_virtual_server_list_as_gwctl_lists_them() {
    let d = Dir::new("list");
    let ka = d.write("keepalived.conf", &director(1, "", "wrr"));
    let loaded = dataplane::keepalived::load(&ka).unwrap();
    let notices: Vec<String> = loaded.notices.iter().map(|n| format!("{}: {}", n.line, n.message)).collect();
    assert_eq!(
        notices,
        ["2: global_defs: not run by gatewayd - skipped", "6: vrrp_instance: not run by gatewayd - skipped"]
    );
    let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 16))));
    let counters = vec![Arc::new(WorkerCounters::new(0, 1, 8, 16))];
    let control = Arc::new(Control::new(publisher, counters, 1000, 8, 16));
    assert_eq!(control.handle(Request::Restore { requests: loaded.requests() }), Response::Ok);
    let sock = serve(control, &d.0.join("gw.sock")).unwrap();
    let (code, out, err) = gwctl(&sock, &["-L", "-n"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, LISTING);
    let (code, out, _) = gwctl(&sock, &["--get-laddr", "-t", "198.18.0.100:80"]);
    assert_eq!(code, 0);
    assert!(out.contains("198.18.1.10"), "{out}");
    assert_eq!(gwctl(&sock, &["--get-laddr", "-t", "198.18.0.100:81"]).1.matches("198.18.1.10").count(), 0);
    dataplane::control::remove_socket(&sock);
}

/// keepalived's IPv6 forms: NAT, DR and TUN real servers behind IPv6
/// virtual servers, a DPVS FNAT66 service with an IPv6 local address group
/// and a NAT64 one (IPv6 VIP, IPv4 real server and local address).
const KEEPALIVED6: &str = "\
local_address_group l6 {
    2001:db8:2::10-11 dpdk0
}
local_address_group l4 {
    198.18.2.10 dpdk0
}
virtual_server 2001:db8::1 80 {
    lb_algo rr
    lvs_method NAT
    protocol TCP
    persistence_timeout 60
    persistence_granularity 64
    real_server 2001:db8:1::2 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 2001:db8:1::3 80 {
        weight 2
    }
}
virtual_server 2001:db8::1 81 {
    lb_algo wrr
    lvs_method DR
    protocol TCP
    real_server 2001:db8:1::2 81 { }
}
virtual_server 2001:db8::1 82 {
    lb_algo wrr
    lvs_method TUN
    protocol UDP
    real_server 2001:db8:1::4 82 { }
}
virtual_server 2001:db8::2 80 {
    lb_algo rr
    lvs_method FNAT
    protocol TCP
    laddr_group_name l6
    real_server 2001:db8:1::2 8080 { }
}
virtual_server 2001:db8::3 80 {
    lb_algo rr
    lvs_method FNAT
    protocol TCP
    laddr_group_name l4
    real_server 198.18.1.2 8080 { }
}
";

const LISTING6: &str = "\
IP Virtual Server version 1.2.1 (size=1000)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  [2001:db8::1]:80 rr persistent 60 mask 64
  -> [2001:db8:1::2]:80           Masq    1      0          0         
  -> [2001:db8:1::3]:80           Masq    2      0          0         
TCP  [2001:db8::1]:81 wrr
  -> [2001:db8:1::2]:81           Route   1      0          0         
TCP  [2001:db8::2]:80 rr
  -> [2001:db8:1::2]:8080         FullNat 1      0          0         
TCP  [2001:db8::3]:80 rr
  -> 198.18.1.2:8080              FullNat 1      0          0         
UDP  [2001:db8::1]:82 wrr
  -> [2001:db8:1::4]:82           Tunnel  1      0          0         
";

#[test]
fn ipv6_virtual_servers_list_save_and_restore_as_gwctl_does() {
    let d = Dir::new("ipv6");
    let ka = d.write("keepalived.conf", KEEPALIVED6);
    let loaded = dataplane::keepalived::load(&ka).unwrap();
    let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 16))));
    let counters = vec![Arc::new(WorkerCounters::new(0, 1, 8, 16))];
    let control = Arc::new(Control::new(publisher, counters, 1000, 8, 16));
    assert_eq!(control.handle(Request::Restore { requests: loaded.requests() }), Response::Ok);
    let sock = serve(control.clone(), &d.0.join("gw.sock")).unwrap();
    let (code, out, err) = gwctl(&sock, &["-L", "-n"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, LISTING6);
    let (code, out, _) = gwctl(&sock, &["--get-laddr", "-t", "[2001:db8::2]:80"]);
    assert_eq!(code, 0);
    assert!(out.contains("2001:db8:2::10\n") && out.contains("2001:db8:2::11\n"), "{out}");
    let (_, out, _) = gwctl(&sock, &["--get-laddr", "-t", "[2001:db8::3]:80"]);
    assert!(out.contains("198.18.2.10\n"), "{out}");
    // -S, cleared, -R: the same listing.
    let (code, saved, _) = gwctl(&sock, &["-S", "-n"]);
    assert_eq!(code, 0);
    assert!(saved.contains("-A -t [2001:db8::1]:80 -s rr -p 60 -M 64\n"), "{saved}");
    assert_eq!(gwctl(&sock, &["-C"]).0, 0);
    let argv = ["gwctl", "--socket", sock.to_str().unwrap(), "-R"];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run_with_input(
        argv,
        &mut saved.as_bytes(),
        &mut out,
        &mut err,
        std::time::Duration::from_secs(10),
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    assert_eq!(gwctl(&sock, &["-L", "-n"]).1, LISTING6);
    // The local addresses of either family came back with --add-laddr lines.
    assert!(saved.contains("--add-laddr -z 2001:db8:2::11 -t [2001:db8::2]:80\n"), "{saved}");
    let (_, out, _) = gwctl(&sock, &["--get-laddr", "-t", "[2001:db8::2]:80"]);
    assert!(out.contains("2001:db8:2::10\n") && out.contains("2001:db8:2::11\n"), "{out}");
    let (_, out, _) = gwctl(&sock, &["--get-laddr", "-t", "[2001:db8::3]:80"]);
    assert!(out.contains("198.18.2.10\n"), "{out}");
    dataplane::control::remove_socket(&sock);
}

/// A minimal gatewayd configuration (a reload reads it again).
fn gw_toml(d: &Dir) -> PathBuf {
    d.write("gw.toml", "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n")
}

#[test]
fn a_reload_of_an_edited_file_applies_only_the_difference_and_keeps_sessions() {
    let d = Dir::new("reload");
    let conf = gw_toml(&d);
    let ka = d.write("keepalived.conf", &director(1, "", "wrr"));
    let mut lab = LabConfig::default().build();
    let desired = dataplane::keepalived::reload_requests(&conf, None, Some(&ka)).unwrap();
    assert_eq!(lab.control.sync(desired), Response::Ok);
    lab.worker.engine.set_snapshot(lab.publisher.current());
    lab.learn_neighbours();

    // A connection to the FNAT service: SYN, then data, to one real server.
    let flow = |lab: &mut Lab, syn: bool| {
        let out = lab.rx(0, tcp(CLIENT_MAC, GW_OUT, (CLIENT, 40000), (VIP, 80), syn, !syn));
        assert_eq!(out.len(), 1, "one frame to the real server");
        let (port, f) = &out[0];
        check_sent(*port, f, true);
        let (_, dmac, src, dst, _) = inspect(f);
        assert_eq!((*port, src.0), (1, LIP));
        (dmac, src, dst)
    };
    let first = flow(&mut lab, true);
    let (server_mac, local, server) = first;
    assert_eq!(lab.rx(1, tcp(server_mac, GW_IN, server, local, true, true)).len(), 1, "the server's SYN-ACK");
    let generation = lab.publisher.current().generation;

    // Edited: 198.18.1.3's weight, a third FNAT server, the DR scheduler.
    let extra = "    real_server 198.18.1.4 8080 {\n        weight 1\n    }\n";
    d.write("keepalived.conf", &director(5, extra, "rr"));
    let desired = dataplane::keepalived::reload_requests(&conf, None, Some(&ka)).unwrap();
    assert_eq!(lab.control.sync(desired.clone()), Response::Ok);
    assert_eq!(lab.publisher.current().generation, generation + 1, "one change, one snapshot");
    lab.worker.engine.set_snapshot(lab.publisher.current());
    assert_eq!(flow(&mut lab, false), first, "the session stays on its server, local address and port");

    let Response::Services { services, .. } = lab.control.query(Request::List { service: None }) else {
        panic!("no listing")
    };
    let fnat = services.iter().find(|s| s.spec.key.port == 80).unwrap();
    let dests: Vec<(Ipv4Addr, u32)> =
        fnat.dests.iter().map(|d| (gw_proto::v4(d.spec.addr).unwrap(), d.spec.weight)).collect();
    let ip = |l| Ipv4Addr::new(198, 18, 1, l);
    // The list as IPVS's: each server added goes first (.4, the edit's,
    // then the file's .2 and .3 last to first).
    assert_eq!(dests, [(ip(4), 1), (ip(3), 5), (ip(2), 1)]);
    let sessions: u64 = fnat.dests.iter().map(|d| d.active_conns + d.inactive_conns).sum();
    assert_eq!(sessions, 1, "the session is still counted");
    let dr = services.iter().find(|s| s.spec.key.port == 81).unwrap();
    assert_eq!(dr.spec.scheduler, gw_proto::Scheduler::Rr);

    // The same file again: nothing to do, no new snapshot.
    assert_eq!(lab.control.sync(desired), Response::Ok);
    assert_eq!(lab.publisher.current().generation, generation + 1);

    // A broken edit is refused with its line and changes nothing.
    d.write("keepalived.conf", &director(1, "    lb_algo nope\n", "rr"));
    let e = dataplane::keepalived::reload_requests(&conf, None, Some(&ka)).unwrap_err().to_string();
    assert_eq!(e, format!("keepalived file {0}: ({0}: Line 54) Invalid lvs_scheduler 'nope'", ka.display()));
}

#[test]
fn a_service_has_one_source() {
    let d = Dir::new("overlap");
    let conf = d.write(
        "gw.toml",
        "[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n\
         [[service]]\nrules = \"-A -t 198.18.0.100:81 -s rr\"\n",
    );
    let ka = d.write("keepalived.conf", &director(1, "", "wrr"));
    let e = dataplane::keepalived::reload_requests(&conf, None, Some(&ka)).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "keepalived file {0}: ({0}: Line 20) virtual server TCP 198.18.0.100:81 is also defined by a \
             [[service]] section or the rules file; a service has one source",
            ka.display()
        )
    );
    // Other services from both sources are fine together.
    let rules = d.write("rules", "-A -u 198.18.0.100:53 -s rr\n");
    let conf = gw_toml(&d);
    let all = dataplane::keepalived::reload_requests(&conf, Some(&rules), Some(&ka)).unwrap();
    assert_eq!(all.iter().filter(|r| matches!(r, Request::AddService { .. })).count(), 3);
}

/// The gatewayd binary on a null device (no NIC, no hugepages).
#[cfg(feature = "dpdk")]
mod binary {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    const EAL: &str =
        "[eal]\nargs = [\"-l\", \"0,1\", \"--no-huge\", \"-m\", \"256\", \"--no-shconf\", \"--no-pci\", \
                       \"--no-telemetry\", \"--log-level=*:warning\"]\n";

    fn conf(d: &Dir, extra: &str) -> PathBuf {
        let socket = d.0.join("gw.sock");
        d.write(
            "gw.toml",
            &format!(
                "{EAL}[[port]]\ndevice = \"net_null0\"\naddress = \"198.18.0.1/24\"\n\
                 [workers]\nsessions = 1000\nmbufs = 2048\n[control]\nsocket = {:?}\n{extra}",
                socket.to_str().unwrap()
            ),
        )
    }

    #[test]
    fn check_validates_the_keepalived_file() {
        let d = Dir::new("check");
        let ka = d.write("keepalived.conf", &director(1, "", "wrr"));
        let conf = conf(&d, &format!("keepalived = {:?}\n", ka.to_str().unwrap()));
        let out = Command::new(env!("CARGO_BIN_EXE_gatewayd"))
            .arg("--config")
            .arg(&conf)
            .arg("--check")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stdout.contains(&format!("{}: ok (2 services, 2 notices)", ka.display())), "{stdout}");
        assert!(
            stderr.contains(&format!(
                "keepalived: ({}: Line 6) vrrp_instance: not run by gatewayd - skipped",
                ka.display()
            )),
            "{stderr}"
        );
        // `--keepalived` overrides the file named in [control].
        let bad = d.write("bad.conf", "virtual_server 198.18.0.100 80 {\n  protocol TCP\n  lb_kind XX\n}\n");
        let out = Command::new(env!("CARGO_BIN_EXE_gatewayd"))
            .arg("--config")
            .arg(&conf)
            .arg("--keepalived")
            .arg(&bad)
            .arg("--check")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            format!(
                "gatewayd: keepalived file {0}: ({0}: Line 3) PARSER : unknown [XX] routing method for virtual server.",
                bad.display()
            )
        );
    }

    struct Daemon(Child);

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
            let _ = self.0.wait();
        }
    }

    /// Waits (bounded) until `f` holds; the daemon exiting ends the wait.
    fn wait_until(daemon: &mut Daemon, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            if let Some(status) = daemon.0.try_wait().unwrap() {
                panic!("gatewayd exited ({status}) while waiting for {what}");
            }
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn gatewayd_runs_a_keepalived_file_and_reloads_it_on_sighup() {
        let d = Dir::new("daemon");
        let ka = d.write("keepalived.conf", &director(1, "", "wrr"));
        let conf = conf(&d, "");
        let log = d.0.join("gatewayd.log");
        let child = Command::new(env!("CARGO_BIN_EXE_gatewayd"))
            .arg("--config")
            .arg(&conf)
            .arg("--keepalived")
            .arg(&ka)
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let mut daemon = Daemon(child);
        let sock = d.0.join("gw.sock");
        wait_until(&mut daemon, "the control socket", || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
        assert_eq!(gwctl(&sock, &["-L", "-n"]).1, LISTING);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.matches("vrrp_instance: not run by gatewayd - skipped").count(), 1, "{text}");

        let hup = |d: &Daemon| Command::new("kill").arg("-HUP").arg(d.0.id().to_string()).status().unwrap();
        d.write("keepalived.conf", &director(5, "", "rr"));
        assert!(hup(&daemon).success());
        let want = LISTING
            .replace("1.3:8080              FullNat 1", "1.3:8080              FullNat 5")
            .replace("81 wrr", "81 rr");
        wait_until(&mut daemon, "the reload", || gwctl(&sock, &["-L", "-n"]).1 == want);

        // A broken edit is refused with its line; the running services stay.
        d.write("keepalived.conf", &director(5, "    weight 1 2\n", "rr"));
        assert!(hup(&daemon).success());
        wait_until(&mut daemon, "the refusal", || {
            std::fs::read_to_string(&log)
                .unwrap()
                .contains("reload failed; the running configuration is kept")
        });
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("Line 54) 'weight': unexpected '2'"), "{text}");
        assert_eq!(gwctl(&sock, &["-L", "-n"]).1, want);
    }
}
