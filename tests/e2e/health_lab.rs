//! Health checks (issue 15) with real daemons, driven by a keepalived.conf
//! on the DR lab (tests/lab/lab.sh up gwe-hl dr) with the exception path:
//! a kernel interface on the DPDK port carries the port's address, so the
//! checks leave from 198.18.0.1 through the DPDK port.
//!
//! Four virtual servers on the VIP:
//! - DR TCP :8081 -> nginx on rs1 and rs2 (HTTP_GET, a digest on rs1's url);
//! - FNAT TCP :9000 (one-armed, local address 198.18.0.10) -> rs_server.py
//!   on rs1 (TCP_CHECK) and rs2 (MISC_CHECK: a bash script connecting to it);
//! - FNAT UDP :9000 -> the same rs_server.py's UDP echo (UDP_CHECK with a
//!   payload and a required reply);
//! - FNAT TCP :9002, wrr -> rs_server.py :9000 on both, each checked by a
//!   `misc_dynamic` MISC_CHECK whose exit status sets its weight.
//!
//! For each checker kind a daemon is stopped under a steady curl loop: the
//! server is taken out, after that no request fails; the daemon starts
//! again and the server gets traffic again. How many requests failed during
//! detection, and how long detection took, are printed (measured, never
//! asserted). Then a broken file is refused with its line number, and a
//! SIGHUP with an edited file applies only the difference: a download in
//! flight completes and the checkers' state is kept.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const LIP: &str = "198.18.0.10";

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gwe-hl-{name}"))
}

/// The lab's keepalived.conf; `w2` is rs2's weight on the DR service.
fn keepalived_conf(w2: u32) -> String {
    let digest = md5_hex(b"rs1\n");
    let misc = tmp("misc.sh");
    format!(
        r#"! keepalived.conf of the health lab
global_defs {{
    router_id gwe-hl
}}

local_address_group laddr_g {{
    {LIP}
}}

virtual_server {VIP} 8081 {{
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP

    real_server 198.18.0.3 8081 {{
        weight 1
        HTTP_GET {{
            url {{
                path /index.html
                digest {digest}
            }}
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }}
    }}
    real_server 198.18.0.4 8081 {{
        weight {w2}
        HTTP_GET {{
            url {{
                path /index.html
                status_code 200
            }}
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }}
    }}
}}

virtual_server {VIP} 9000 {{
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g

    real_server 198.18.0.3 9000 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }}
    }}
    real_server 198.18.0.4 9000 {{
        weight 1
        MISC_CHECK {{
            misc_path "{misc}"
            misc_timeout 2
        }}
    }}
}}

virtual_server {VIP} 9000 {{
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    protocol UDP
    laddr_group_name laddr_g

    real_server 198.18.0.3 9000 {{
        UDP_CHECK {{
            payload 78
            require_reply 727331
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }}
    }}
    real_server 198.18.0.4 9000 {{
        UDP_CHECK {{
            payload 78
            require_reply 727332
            connect_timeout 1
        }}
    }}
}}
"#,
        misc = misc.display()
    ) + &dynamic_vs()
}

/// A fourth virtual server, FNAT TCP :9002 with wrr over rs_server.py on
/// both real servers, each checked by a `misc_dynamic` MISC_CHECK whose
/// script exits with the status in its file ([`set_status`]): keepalived's
/// rule is 0 up at the file's weight, 1 down, 2..255 up at weight
/// status - 2.
fn dynamic_vs() -> String {
    let mut s = format!(
        r#"
virtual_server {VIP} 9002 {{
    delay_loop 1
    lb_algo wrr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g
"#
    );
    for n in ["rs1", "rs2"] {
        let addr = if n == "rs1" { "198.18.0.3" } else { "198.18.0.4" };
        s += &format!(
            r#"
    real_server {addr} 9000 {{
        weight 1
        MISC_CHECK {{
            misc_path "{}"
            misc_timeout 2
            misc_dynamic
        }}
    }}
"#,
            tmp(&format!("dyn-{n}.sh")).display()
        );
    }
    s + "}\n"
}

/// The exit status `n`'s `misc_dynamic` script returns from now on
/// (written whole, then renamed over the old file: the script never reads
/// a half-written one).
fn set_status(n: &str, status: u8) {
    let (f, next) = (tmp(&format!("dyn-{n}.status")), tmp(&format!("dyn-{n}.status.new")));
    std::fs::write(&next, format!("{status}\n")).unwrap();
    std::fs::rename(&next, &f).unwrap();
}

/// Writes `n`'s `misc_dynamic` script, exiting 0 to start with.
fn write_dynamic_script(n: &str) -> PathBuf {
    set_status(n, 0);
    let script = tmp(&format!("dyn-{n}.sh"));
    let status = tmp(&format!("dyn-{n}.status"));
    std::fs::write(&script, format!("#!/bin/bash\nexit $(cat {})\n", status.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

/// Waits until real server `rs` ("198.18.0.4:9000") shows weight `weight`
/// in service `svc`'s lines of the plain listing (`gwctl -L -n`).
fn wait_weight(lab: &Lab, svc: &str, rs: &str, weight: u32) {
    wait_for(lab, 30, &format!("{rs} at weight {weight} in {svc}"), || {
        let listing = lab.listing();
        rs_line(&listing, svc, rs).and_then(|l| l.split_whitespace().nth(3)) == Some(&weight.to_string())
    });
}

/// The line of real server `rs` ("198.18.0.3:8081") under service `svc`
/// ("TCP  198.18.0.100:8081") in a `gwctl -L -n` listing, if listed.
fn rs_line<'a>(listing: &'a str, svc: &str, rs: &str) -> Option<&'a str> {
    let mut in_svc = false;
    listing.lines().find(|line| {
        if !line.starts_with("  ") {
            in_svc = line.starts_with(&format!("{svc} "));
            return false;
        }
        in_svc && line.starts_with(&format!("  -> {rs} "))
    })
}

/// MD5 of `b` in hex, from `md5sum` (a second implementation).
fn md5_hex(b: &[u8]) -> String {
    let f = tmp("md5-input");
    std::fs::write(&f, b).unwrap();
    let o = run(Command::new("md5sum").arg(&f));
    text(&o).split_whitespace().next().unwrap().to_string()
}

/// nginx on real server `n` at :8081 serving `n\n` as /index.html.
fn nginx_conf(n: &str) -> PathBuf {
    let root = tmp(&format!("{n}-www"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), format!("{n}\n")).unwrap();
    let conf = tmp(&format!("{n}-nginx.conf"));
    let t = |x: &str| tmp(&format!("{n}-nginx-{x}")).display().to_string();
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {pid};\nerror_log {err};\nevents {{ worker_connections 256; }}\n\
             http {{\n access_log off;\n client_body_temp_path {tmp1};\n proxy_temp_path {tmp2};\n \
             fastcgi_temp_path {tmp3};\n uwsgi_temp_path {tmp4};\n scgi_temp_path {tmp5};\n \
             server {{\n  listen 8081;\n  root {root};\n }}\n}}\n",
            pid = t("pid"),
            err = t("error.log"),
            tmp1 = t("body"),
            tmp2 = t("proxy"),
            tmp3 = t("fcgi"),
            tmp4 = t("uwsgi"),
            tmp5 = t("scgi"),
            root = root.display()
        ),
    )
    .unwrap();
    conf
}

fn start_nginx(lab: &Lab, n: &str) -> Daemon {
    let conf = nginx_conf(n);
    let d = lab.spawn_quiet(n, &["nginx", "-c", conf.to_str().unwrap()]);
    wait_for(lab, 10, &format!("nginx on {n}"), || {
        lab.exec(n, &["curl", "-s", "-m", "1", "http://127.0.0.1:8081/index.html"]).status.success()
    });
    d
}

/// Stops nginx as its operator would (`nginx -s stop`: master and workers).
fn stop_nginx(lab: &Lab, n: &str, d: Daemon) {
    let conf = nginx_conf(n);
    let o = lab.exec(n, &["nginx", "-c", conf.to_str().unwrap(), "-s", "stop"]);
    assert!(o.status.success(), "nginx -s stop on {n}: {}", String::from_utf8_lossy(&o.stderr));
    let mut child = d;
    let _ = child.0.wait();
}

/// rs_server.py (HTTP and UDP echo on :9000) on real server `n`.
fn start_rs9000(lab: &Lab, n: &str) -> Daemon {
    let d = lab.spawn_quiet(n, &["python3", script("rs_server.py").to_str().unwrap(), n, "9000"]);
    wait_for(lab, 10, &format!("rs_server.py on {n}"), || {
        lab.exec(n, &["curl", "-s", "-m", "1", "http://127.0.0.1:9000/"]).status.success()
    });
    d
}

fn wait_for(lab: &Lab, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what}\n{}", lab.diag());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `gwctl -L -n --health`: the health word of `rs` ("198.18.0.3:8081") in
/// service `svc` ("TCP  198.18.0.100:8081"); "OUT" when listed as taken
/// out of the pool, None when not listed at all.
fn health_of(lab: &Lab, svc: &str, rs: &str) -> Option<String> {
    let listing = lab.gwctl_ok(&["-L", "-n", "--health"]);
    let line = rs_line(&listing, svc, rs)?;
    if line.contains("(out of the pool") {
        return Some("OUT".into());
    }
    line.split_whitespace().last().map(str::to_string)
}

/// A steady request loop from the client: one curl after the other.
struct Loop {
    stop: Arc<AtomicBool>,
    results: Arc<Mutex<Vec<(bool, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Loop {
    fn start(lab: &Lab, url: &str) -> Loop {
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(vec![]));
        let (ns, url) = (lab.ns("client"), url.to_string());
        let thread = std::thread::spawn({
            let (stop, results) = (stop.clone(), results.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let o =
                        run(Command::new("ip").args(["netns", "exec", &ns, "curl", "-s", "-m", "2", &url]));
                    results.lock().unwrap().push((o.status.success(), text(&o)));
                }
            }
        });
        Loop { stop, results, thread: Some(thread) }
    }

    /// How many requests ran and how many failed so far.
    fn counts(&self) -> (usize, usize) {
        let r = self.results.lock().unwrap();
        (r.len(), r.iter().filter(|(ok, _)| !ok).count())
    }

    fn finish(mut self) -> Vec<(bool, String)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.results.lock().unwrap())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The server names that answered `n` requests to `url` (all must succeed).
fn answers(lab: &Lab, url: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let o = lab.exec("client", &["curl", "-s", "-m", "2", url]);
            assert!(o.status.success(), "a request to {url} failed after detection\n{}", lab.diag());
            text(&o).split_whitespace().next().unwrap_or_default().to_string()
        })
        .collect()
}

/// One detection: `stop` takes a daemon down under a request loop to
/// `url`; returns (requests, failed, seconds to detection).
fn detect(lab: &Lab, url: &str, svc: &str, rs: &str, stop: impl FnOnce()) -> (usize, usize, f64) {
    let l = Loop::start(lab, url);
    wait_for(lab, 10, "the request loop started", || l.counts().0 >= 5);
    let t0 = Instant::now();
    stop();
    wait_for(lab, 30, &format!("{rs} taken out of {svc}"), || {
        matches!(health_of(lab, svc, rs).as_deref(), Some("OUT"))
    });
    let took = t0.elapsed().as_secs_f64();
    let (n, failed) = l.counts();
    drop(l.finish());
    (n, failed, took)
}

/// The health entry of `addr:port` in a `--json` listing, whitespace removed.
fn rs_json(json: &str, addr: &str, port: u16) -> String {
    let flat: String = json.split_whitespace().collect();
    let at = flat
        .find(&format!("\"addr\":\"{addr}\",\"port\":{port},\"up\":"))
        .unwrap_or_else(|| panic!("no health entry for {addr}:{port} in {json}"));
    let rest = &flat[at..];
    rest[..rest.find('}').unwrap()].to_string()
}

#[test]
fn checks_take_dead_servers_out_and_bring_them_back() {
    let dyn_scripts = [write_dynamic_script("rs1"), write_dynamic_script("rs2")];
    let misc = tmp("misc.sh");
    std::fs::write(&misc, "#!/bin/bash\nexec 3<>/dev/tcp/198.18.0.4/9000\n").unwrap();
    std::fs::set_permissions(&misc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let file = tmp("keepalived.conf");
    std::fs::write(&file, keepalived_conf(1)).unwrap();
    let path = file.to_str().unwrap().to_owned();
    let lab = Lab::up_tweaked(&DR, "hl", |c| {
        c.replace("name = \"lan\"", "name = \"lan\"\nkernel = \"gwk-hl\"")
            + &format!("keepalived = {path:?}\n")
    });
    let mut nginx = [Some(start_nginx(&lab, "rs1")), Some(start_nginx(&lab, "rs2"))];
    let mut rs9000 = [Some(start_rs9000(&lab, "rs1")), Some(start_rs9000(&lab, "rs2"))];
    let (dr, tcp, udp) = (format!("TCP  {VIP}:8081"), format!("TCP  {VIP}:9000"), format!("UDP  {VIP}:9000"));
    let (dr_url, fnat_url) = (format!("http://{VIP}:8081/index.html"), format!("http://{VIP}:9000/"));
    // Every checked server up and in its pool.
    for (svc, rs) in [
        (&dr, "198.18.0.3:8081"),
        (&dr, "198.18.0.4:8081"),
        (&tcp, "198.18.0.3:9000"),
        (&tcp, "198.18.0.4:9000"),
        (&udp, "198.18.0.3:9000"),
        (&udp, "198.18.0.4:9000"),
    ] {
        wait_for(&lab, 30, &format!("{rs} up in {svc}"), || {
            health_of(&lab, svc, rs).as_deref() == Some("UP")
        });
    }
    // ipvsadm's table is unchanged without --health; --json carries the state.
    let plain = lab.listing();
    assert!(!plain.contains(" UP"), "{plain}");
    let json = lab.gwctl_ok(&["-L", "-n", "--json"]);
    assert!(
        json.contains("\"health\"") && json.contains("HTTP_GET") && json.contains("MISC_CHECK"),
        "{json}"
    );
    let mut by = answers(&lab, &dr_url, 4);
    by.sort();
    assert_eq!(by, ["rs1", "rs1", "rs2", "rs2"], "rr over both nginx");

    // HTTP_GET: nginx on rs1 stops.
    let d = nginx[0].take().unwrap();
    let (n, failed, took) = detect(&lab, &dr_url, &dr, "198.18.0.3:8081", || stop_nginx(&lab, "rs1", d));
    eprintln!(
        "HTTP_GET (DR, nginx): {failed} of {n} requests failed during detection, taken out after {took:.1} s"
    );
    assert!(answers(&lab, &dr_url, 10).iter().all(|s| s == "rs2"));
    nginx[0] = Some(start_nginx(&lab, "rs1"));
    wait_for(&lab, 30, "rs1 back", || health_of(&lab, &dr, "198.18.0.3:8081").as_deref() == Some("UP"));
    assert!(answers(&lab, &dr_url, 4).iter().any(|s| s == "rs1"), "rs1 gets traffic again");

    // TCP_CHECK (and UDP_CHECK): rs_server.py on rs1 stops.
    let mut d = rs9000[0].take().unwrap();
    let (n, failed, took) = detect(&lab, &fnat_url, &tcp, "198.18.0.3:9000", || {
        let _ = d.0.kill();
        let _ = d.0.wait();
    });
    eprintln!(
        "TCP_CHECK (FNAT): {failed} of {n} requests failed during detection, taken out after {took:.1} s"
    );
    assert!(answers(&lab, &fnat_url, 10).iter().all(|s| s == "rs2"));
    wait_for(&lab, 30, "UDP_CHECK takes rs1 out", || {
        health_of(&lab, &udp, "198.18.0.3:9000").as_deref() == Some("OUT")
    });
    let flows = lab.python("client", "udp_client.py", &[VIP, "9000", "4"]);
    assert!(flows.lines().all(|l| l.starts_with("rs2")), "UDP only to rs2: {flows}");
    rs9000[0] = Some(start_rs9000(&lab, "rs1"));
    wait_for(&lab, 30, "rs1 back in TCP", || {
        health_of(&lab, &tcp, "198.18.0.3:9000").as_deref() == Some("UP")
    });
    wait_for(&lab, 30, "rs1 back in UDP", || {
        health_of(&lab, &udp, "198.18.0.3:9000").as_deref() == Some("UP")
    });
    assert!(answers(&lab, &fnat_url, 4).iter().any(|s| s == "rs1"), "rs1 gets traffic again");

    // MISC_CHECK: rs_server.py on rs2 stops (the script cannot connect).
    let mut d = rs9000[1].take().unwrap();
    let (n, failed, took) = detect(&lab, &fnat_url, &tcp, "198.18.0.4:9000", || {
        let _ = d.0.kill();
        let _ = d.0.wait();
    });
    eprintln!(
        "MISC_CHECK (FNAT): {failed} of {n} requests failed during detection, taken out after {took:.1} s"
    );
    assert!(answers(&lab, &fnat_url, 10).iter().all(|s| s == "rs1"));
    rs9000[1] = Some(start_rs9000(&lab, "rs2"));
    wait_for(&lab, 30, "rs2 back", || health_of(&lab, &tcp, "198.18.0.4:9000").as_deref() == Some("UP"));
    assert!(answers(&lab, &fnat_url, 4).iter().any(|s| s == "rs2"), "rs2 gets traffic again");
    let log = lab.log_text();
    assert!(log.contains("health: real server down") && log.contains("health: real server up"), "{log}");

    // misc_dynamic: the script's exit status sets rs2's weight on :9002,
    // and wrr's real picks follow it (22 connections: two whole cycles of
    // weights 1 and 10).
    let dynamic = format!("TCP  {VIP}:9002");
    let dyn_url = format!("http://{VIP}:9002/");
    for rs in ["198.18.0.3:9000", "198.18.0.4:9000"] {
        wait_for(&lab, 30, &format!("{rs} up in {dynamic}"), || {
            health_of(&lab, &dynamic, rs).as_deref() == Some("UP")
        });
    }
    set_status("rs2", 12);
    wait_weight(&lab, &dynamic, "198.18.0.4:9000", 10);
    let by = answers(&lab, &dyn_url, 22);
    let rs2 = by.iter().filter(|s| *s == "rs2").count();
    assert_eq!((by.len() - rs2, rs2), (2, 20), "wrr at weights 1 and 10: {by:?}");
    // Exit 2: up at weight 0, quiesced (no new connection).
    set_status("rs2", 2);
    wait_weight(&lab, &dynamic, "198.18.0.4:9000", 0);
    assert!(answers(&lab, &dyn_url, 6).iter().all(|s| s == "rs1"), "weight 0 takes no new connection");
    assert_eq!(health_of(&lab, &dynamic, "198.18.0.4:9000").as_deref(), Some("UP"));
    // Exit 1: down, out of the pool; exit 0: up at the file's weight.
    set_status("rs2", 1);
    wait_for(&lab, 30, "exit 1 takes rs2 out", || {
        health_of(&lab, &dynamic, "198.18.0.4:9000").as_deref() == Some("OUT")
    });
    set_status("rs2", 0);
    wait_for(&lab, 30, "exit 0 brings rs2 back", || {
        health_of(&lab, &dynamic, "198.18.0.4:9000").as_deref() == Some("UP")
    });
    wait_weight(&lab, &dynamic, "198.18.0.4:9000", 1);
    let mut by = answers(&lab, &dyn_url, 4);
    by.sort();
    assert_eq!(by, ["rs1", "rs1", "rs2", "rs2"], "wrr at the file's weights again");

    // A broken file: refused with its line number, by --check and by SIGHUP.
    let broken = tmp("broken.conf");
    std::fs::write(
        &broken,
        keepalived_conf(1).replace("    lb_algo rr\n    lb_kind FNAT", "    lb_algo nope\n    lb_kind FNAT"),
    )
    .unwrap();
    let line = keepalived_conf(1).lines().position(|l| l.contains("lb_algo rr")).unwrap();
    let line2 = keepalived_conf(1)
        .lines()
        .enumerate()
        .skip(line + 1)
        .find(|(_, l)| l.contains("lb_algo rr"))
        .map(|(i, _)| i + 1)
        .unwrap();
    let o = run(Command::new(binary("gatewayd", "GATEWAYD_BIN"))
        .args(["--config", root().join("conf/lab-dr.toml").to_str().unwrap(), "--check", "--keepalived"])
        .arg(&broken));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "a broken file must be refused");
    assert!(err.contains(&format!("Line {line2})")), "the line ({line2}) is named: {err}");

    // SIGHUP with an edited file: rs2's weight on the DR service 1 -> 3.
    // A download through the FNAT service runs across it.
    let body = tmp("slow.bin");
    let _ = std::fs::remove_file(&body);
    let mut curl = Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "curl", "-s", "-S", "-m", "60", "--limit-rate", "200k"])
        .args(["-D", "-", "-o", body.to_str().unwrap(), &format!("http://{VIP}:9000/bytes/1000000")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&lab, 20, "the download started", || std::fs::metadata(&body).map(|m| m.len()).unwrap_or(0) > 0);
    let before = lab.gwctl_ok(&["-L", "-n", "--json"]);
    std::fs::write(&file, keepalived_conf(3)).unwrap();
    lab.sighup();
    wait_for(&lab, 20, "reloaded", || lab.log_text().contains("reloaded"));
    assert!(curl.try_wait().unwrap().is_none(), "the download must still run across the reload");
    let listing = lab.listing();
    assert!(listing.contains("  -> 198.18.0.4:8081              Route   3"), "{listing}");
    assert!(listing.contains("  -> 198.18.0.3:8081              Route   1"), "{listing}");
    let after = lab.gwctl_ok(&["-L", "-n", "--json"]);
    // The checkers kept their state: rs1's HTTP_GET entry (its transitions
    // and last error included) is the same as before the reload.
    let (b, a) = (rs_json(&before, "198.18.0.3", 8081), rs_json(&after, "198.18.0.3", 8081));
    assert!(b.contains("\"up\":true,\"in_pool\":true") && b.contains("\"transitions\":"), "{b}");
    assert_eq!(a, b);
    let o = curl.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the download failed across the reload: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let headers = String::from_utf8_lossy(&o.stdout).into_owned();
    let announced = headers.lines().find_map(|l| l.strip_prefix("X-Sha256:")).unwrap().trim().to_owned();
    let got = text(&run(Command::new("sha256sum").arg(&body)));
    assert_eq!(got.split_whitespace().next().unwrap(), announced, "the download arrived whole");
    // A broken file on SIGHUP keeps the running configuration.
    std::fs::copy(&broken, &file).unwrap();
    lab.sighup();
    wait_for(&lab, 20, "the reload refused", || lab.log_text().contains("reload failed"));
    assert!(lab.listing().contains(&format!("TCP  {VIP}:9000 rr")));
    drop(nginx);
    drop(rs9000);
    for f in [misc, file, broken, body] {
        let _ = std::fs::remove_file(f);
    }
    for n in ["rs1", "rs2"] {
        let _ = std::fs::remove_file(tmp(&format!("dyn-{n}.status")));
    }
    for f in dyn_scripts {
        let _ = std::fs::remove_file(f);
    }
}
