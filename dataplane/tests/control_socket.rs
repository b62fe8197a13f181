//! gatewayd's control socket against hostile local clients, with gwctl's own
//! run: the socket path is never taken from something that is not a stale
//! socket of ours, and clients that connect and trickle bytes cannot keep
//! `gwctl -L -n` from answering within gwctl's own timeout; and `gwctl -L -c`
//! of a worker's IPv6 (NAT64) session through the worker's mailbox.

mod common;

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;

use dataplane::control::{serve, Control, MAX_CLIENTS};
use gw_core::counters::WorkerCounters;
use gw_core::service::{Publisher, Snapshot};

fn control() -> Arc<Control> {
    let publisher = Arc::new(Publisher::new(Arc::new(Snapshot::new(0, vec![], 16))));
    let counters = vec![Arc::new(WorkerCounters::new(0, 1, 8, 16))];
    Arc::new(Control::new(publisher, counters, 1000, 8, 16))
}

/// A fresh directory for one test, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("gw-ctlsock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// gwctl's whole run with its default timeout: (exit status, stdout, stderr).
fn gwctl(sock: &std::path::Path, args: &[&str]) -> (u8, String, String) {
    let argv: Vec<&str> =
        ["gwctl", "--socket", sock.to_str().unwrap()].into_iter().chain(args.iter().copied()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = gwctl::run(argv, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn a_regular_file_at_the_socket_path_is_kept_and_the_start_refused() {
    let dir = Dir::new("file");
    let path = dir.0.join("gatewayd.sock");
    std::fs::write(&path, "precious").unwrap();
    let e = serve(control(), &path).unwrap_err().to_string();
    assert_eq!(e, format!("{} exists and is not a socket; not removed", path.display()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    // A symlink (even to a socket) and a directory are not removed either.
    let link = dir.0.join("link.sock");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(serve(control(), &link).is_err());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(serve(control(), &dir.0).is_err());
    assert!(dir.0.is_dir());
    // Nothing was left behind in the directory but what was there.
    let mut names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["gatewayd.sock", "link.sock"]);
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = Dir::new("stale");
    let path = dir.0.join("gatewayd.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_socket(), "a stale socket");
    serve(control(), &path).unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let (code, out, err) = gwctl(&path, &["-L", "-n"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("IP Virtual Server"), "{out}");
    // A second daemon on the same path is refused; the first keeps serving.
    let e = serve(control(), &path).unwrap_err().to_string();
    assert!(e.contains("is in use"), "{e}");
    assert_eq!(gwctl(&path, &["-L", "-n"]).0, 0);
    let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["gatewayd.sock"], "no private directory left behind");
}

#[test]
fn slow_clients_holding_every_slot_do_not_lock_gwctl_out() {
    let dir = Dir::new("slow");
    let path = dir.0.join("gatewayd.sock");
    serve(control(), &path).unwrap();
    // Every slot taken by a client that sent one byte of its length prefix
    // and then nothing (as one trickling a byte every 20 s).
    let slow: Vec<UnixStream> = (0..MAX_CLIENTS)
        .map(|_| {
            let mut c = UnixStream::connect(&path).unwrap();
            c.write_all(&[0]).unwrap();
            c
        })
        .collect();
    for _ in 0..3 {
        let (code, out, err) = gwctl(&path, &["-L", "-n"]);
        assert_eq!(code, 0, "gwctl did not answer: {err}");
        assert!(out.starts_with("IP Virtual Server"), "{out}");
    }
    drop(slow);
}

/// `gwctl -lnc` of a NAT64 session, end to end: an IPv6 SYN (built by
/// etherparse) makes the worker open the session in its IPv6 table; gwctl
/// asks over the socket, the control plane asks the worker through its
/// mailbox (served here between "bursts", as the poll loop does), and the
/// line shows the IPv6 client and VIP in brackets, the IPv4 local address
/// and real server as IPv4.
#[test]
fn gwctl_lists_a_workers_nat64_session() {
    use common::*;
    use gw_proto::{DestSpec, ForwardMode, Protocol, Request, Scheduler, ServiceKey, ServiceSpec};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    let client6 = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 9);
    let vip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);
    let key6 = ServiceKey { proto: Protocol::Tcp, addr: IpAddr::V6(vip6), port: 80 };
    let mut lab = LabConfig::default().build();
    assert_eq!(lab.rx(1, arp_request(RS_MAC[0], RS[0], GW_IN_ADDR)).len(), 1);
    lab.ok(Request::AddService { spec: ServiceSpec::new(key6, Scheduler::Rr) });
    let dest = DestSpec::new(Ipv4Addr::from(RS[0]), 8080, ForwardMode::FullNat, 1);
    lab.ok(Request::AddDest { service: key6, dest });
    lab.ok(Request::AddLaddr { service: key6, addr: Ipv4Addr::from(LIP).into() });
    let mut syn = vec![];
    etherparse::PacketBuilder::ethernet2(ROUTER_MAC, GW_OUT.0)
        .ipv6(client6.octets(), vip6.octets(), 60)
        .tcp(40000, 80, 1000, 64000)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let out = lab.rx(0, syn);
    assert_eq!(out.len(), 1, "the SYN leaves translated to IPv4");
    let p = etherparse::SlicedPacket::from_ethernet(&out[0].1).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let Some(etherparse::TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
    let (lip, lport) = (ip.header().source_addr(), t.source_port());
    assert_eq!(lip, Ipv4Addr::from(LIP));

    let Lab { worker, control, now, .. } = lab;
    let (to_control, to_worker) = gw_core::mailbox::mailbox();
    let d = Dir::new("conns6");
    let sock = serve(Arc::new(control.with_mailboxes(vec![to_control])), &d.0.join("gw.sock")).unwrap();
    let ask = |args: &'static [&'static str]| {
        let sock = sock.clone();
        let asking = std::thread::spawn(move || gwctl(&sock, args));
        while !asking.is_finished() {
            to_worker.serve(|q| worker.engine.dump(now, q));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        asking.join().unwrap()
    };
    let (code, out, err) = ask(&["-L", "-c", "-n"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "IPVS connection entries");
    assert_eq!(
        lines[1],
        "pro expire state       source             virtual            local              destination        worker"
    );
    assert_eq!(lines.len(), 3, "{out}");
    // "%-3s %-6s %-11s " then each address column "%-18s " (overflowed by
    // the long IPv6 client, as ipvsadm's), the worker last.
    let local = format!("{lip}:{lport}");
    let want_tail =
        format!("SYN_RECV    [2001:db8:77::9]:40000 [2001:db8::50]:80  {local:<18} 198.18.1.2:8080    0");
    assert!(lines[2].starts_with("TCP 00:") || lines[2].starts_with("TCP 01:00"), "{}", lines[2]);
    assert_eq!(&lines[2][11..], want_tail);
    // One service's connections: that service's family and VIP only.
    let (_, out, _) = ask(&["-L", "-c", "-n", "-t", "[2001:db8::50]:80"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let (_, out, _) = ask(&["-L", "-c", "-n", "--json"]);
    assert!(out.contains("\"2001:db8:77::9\"") && out.contains("\"198.18.1.2\""), "{out}");
    dataplane::control::remove_socket(&sock);
}
