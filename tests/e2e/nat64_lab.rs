//! NAT64 end to end (issue 17): an IPv6 client, the IPv6 VIP
//! [2001:db8::100], IPv4 real servers with IPv4 local address 198.18.1.10
//! (FULLNAT's wiring, dual-stack on the client side: tests/lab/lab.sh up
//! PREFIX fullnat dual). gatewayd translates the headers as RFC 7915 says.
//! The real servers are nginx (Debian's, its access log showing the IPv4
//! local address and port of every request) and tests/lab/rs_server.py
//! (HTTP and a UDP echo that answer with the peer they saw); a capture on
//! a real server read by scapy shows IPv4 packets from the local address
//! with valid checksums and the TTL one below the client's hop limit; a
//! 50 MB file from nginx arrives with its SHA-256.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{hostport, Lab, CLIENT6, NAT64, VIP6};

const LIP: &str = "198.18.1.10";
/// The nginx service: [VIP6]:81 -> RIP:8081.
const NGINX_VPORT: u16 = 81;
const NGINX_PORT: u16 = 8081;
const BIG: usize = 50 << 20;

/// nginx on both real servers (their IPv4 addresses, port 8081), serving
/// /who (the peer it saw) and /big.bin; its access log lists
/// "$remote_addr:$remote_port $request_uri $status" per request.
fn nginx(lab: &Lab, dir: &std::path::Path) -> Vec<common::Daemon> {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let mut big = vec![0u8; BIG];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(dir.join("www/big.bin"), &big).unwrap();
    let mut procs = vec![];
    for (name, rip) in NAT64.servers {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let d = d.display();
        let www = dir.join("www");
        let www = www.display();
        let conf = format!(
            "daemon off; master_process on; worker_processes 1; user root;\n\
             pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               log_format peer '$remote_addr:$remote_port $request_uri $status';\n\
               server {{\n\
                 listen {rip}:{NGINX_PORT};\n\
                 access_log {d}/access.log peer;\n\
                 root {www};\n\
                 location = /who {{ default_type text/plain; return 200 \"{name} $remote_addr:$remote_port\\n\"; }}\n\
               }}\n\
             }}\n"
        );
        let path = dir.join(format!("{name}.conf"));
        std::fs::write(&path, conf).unwrap();
        procs.push(lab.spawn_quiet(name, &["nginx", "-c", path.to_str().unwrap()]));
    }
    for (name, rip) in NAT64.servers {
        let url = format!("http://{rip}:{NGINX_PORT}/who");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lab.exec(name, &["curl", "-s", "-m", "1", &url]).status.success() {
            assert!(Instant::now() < deadline, "nginx on {name} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Only the lab's requests in the logs.
    for (name, _) in NAT64.servers {
        std::fs::write(dir.join(name).join("access.log"), "").unwrap();
    }
    procs
}

#[test]
fn nat64_ipv6_clients_reach_ipv4_servers_which_see_the_ipv4_local_address() {
    let lab = Lab::up(&NAT64, "h17l-nat64");
    let dir = PathBuf::from(format!("/tmp/{}-srv", lab.prefix));
    let _ = std::fs::remove_dir_all(&dir);
    let _nginx = nginx(&lab, &dir);

    lab.add_service("-t");
    lab.add_service("-u");
    let vip81 = hostport(VIP6, NGINX_VPORT);
    lab.gwctl_ok(&["-A", "-t", &vip81, "-s", "rr"]);
    for (_, rip) in NAT64.servers {
        lab.gwctl_ok(&["-a", "-t", &vip81, "-r", &hostport(rip, NGINX_PORT), "-b", "-w", "1"]);
    }
    lab.gwctl_ok(&["--add-laddr", "-z", LIP, "-t", &vip81]);
    let listing = lab.listing();
    assert!(listing.contains("TCP  [2001:db8::100]:80 rr\n"), "{listing}");
    assert!(listing.contains(&NAT64.dest_line("198.18.1.2", 1)), "{listing}");

    // The IPv4 side, read by scapy while requests pass.
    let cap = lab.capture("rs1", "eth0", 80, 4, 10);
    let mut by_server = [0; 2];
    for _ in 0..6 {
        let h = lab.http();
        assert_eq!(h.remote, format!("{VIP6}:80"), "the client talks to the IPv6 VIP only");
        assert!(h.local.starts_with(&format!("{CLIENT6}:")), "{h:?}");
        assert!(h.peer.starts_with(&format!("{LIP}:")), "the IPv4 server saw {}", h.peer);
        by_server[NAT64.server_index(&h.server)] += 1;
    }
    assert_eq!(by_server, [3, 3], "rr alternates between the two real servers");
    let seen = cap.packets();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for p in &seen {
        assert_eq!((p.get("ip"), p.get("src"), p.get("dst")), ("4", LIP, "198.18.1.2"), "{p:?}");
        assert_eq!((p.get("csum"), p.get("len")), ("ok", "ok"), "{p:?}");
        assert_eq!(p.get("hlim"), "63", "TTL = the client's hop limit 64 - 1: {p:?}");
    }

    let flows = lab.udp_flows(6);
    for u in &flows {
        assert_eq!(u.from, format!("{VIP6}:80"), "the UDP answer must come from the IPv6 VIP: {u:?}");
        assert!(u.peer.starts_with(&format!("{LIP}:")), "the UDP server saw {}", u.peer);
    }
    assert_eq!(flows.iter().filter(|u| u.server == "rs1").count(), 3, "{flows:?}");

    // nginx: the client's requests arrive from the IPv4 local address.
    let url = format!("http://{vip81}/who");
    let mut answers = vec![];
    for _ in 0..2 {
        let o = lab.exec("client", &["curl", "-g", "-s", "-S", "-m", "5", &url]);
        assert!(o.status.success(), "curl {url}: {}", String::from_utf8_lossy(&o.stderr));
        answers.push(common::text(&o));
    }
    let file = dir.join("big.out");
    let o = lab.exec(
        "client",
        &[
            "curl",
            "-g",
            "-s",
            "-S",
            "-m",
            "120",
            "-o",
            file.to_str().unwrap(),
            &format!("http://{vip81}/big.bin"),
        ],
    );
    assert!(o.status.success(), "50 MB from nginx: {}", String::from_utf8_lossy(&o.stderr));
    let sum =
        |p: &std::path::Path| common::text(&common::run(std::process::Command::new("sha256sum").arg(p)));
    let got = sum(&file);
    let want = sum(&dir.join("www/big.bin"));
    assert_eq!(got.split_whitespace().next(), want.split_whitespace().next(), "the 50 MB arrived intact");
    let logs: String = NAT64
        .servers
        .iter()
        .map(|(name, _)| std::fs::read_to_string(dir.join(name).join("access.log")).unwrap_or_default())
        .collect();
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 3, "two /who and one /big.bin:\n{logs}");
    for l in &lines {
        assert!(l.starts_with(&format!("{LIP}:")) && l.ends_with(" 200"), "nginx logged {l:?}");
    }
    for a in &answers {
        assert!(a.contains(&format!(" {LIP}:")), "nginx answered {a:?}");
    }

    let stats = lab.stats();
    assert_eq!(stats.service("TCP").conns, 6, "{}", stats.text);
    assert_eq!(stats.service("UDP").conns, 6, "{}", stats.text);
    assert_eq!(stats.service_at("TCP", NGINX_VPORT).conns, 3, "{}", stats.text);
    let _ = std::fs::remove_dir_all(&dir);
}
