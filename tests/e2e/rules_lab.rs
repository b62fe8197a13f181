//! An ipvsadm rules file restored with `gwctl -R`, then real traffic that
//! shows persistence and quiescing at work (NAT lab, so the real servers see
//! the client), and a gatewayd restart that brings the rules back from the
//! file.

mod common;

use common::*;

const RULES: &str = "\
# services of the rules lab
-A -t 198.18.0.100:80 -s rr -p 60
-a -t 198.18.0.100:80 -r 198.18.1.2:8080 -m -w 1
-a -t 198.18.0.100:80 -r 198.18.1.3:8080 -m -w 1
-A -u 198.18.0.100:80 -s wrr
-a -u 198.18.0.100:80 -r 198.18.1.2:8080 -m -w 3
-a -u 198.18.0.100:80 -r 198.18.1.3:8080 -m -w 1
-A -t 198.18.0.100:81 -s sh -b sh-port
-a -t 198.18.0.100:81 -r 198.18.1.2:8080 -m -x 100 -y 50
-A -t 198.18.0.100:82 -s mh -p -M 255.255.255.0
-a -t 198.18.0.100:82 -r 198.18.1.3:8080 -m -w 2
";

/// One GET from `from` (an address of the client namespace): the real server's name.
fn get_from(lab: &Lab, from: &str) -> String {
    let o =
        lab.exec("client", &["curl", "-s", "-S", "-m", "5", "--interface", from, &format!("http://{VIP}/")]);
    assert!(o.status.success(), "GET from {from} failed:\n{}", lab.log_text());
    text(&o).split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_restored_rules_file_gives_persistence_and_quiescing_and_survives_a_restart() {
    let lab = Lab::up(&NAT, "rules");
    lab.restore(RULES);
    // -S writes what -R reads: a second round trip is exact.
    let saved = lab.gwctl_ok(&["-S", "-n"]);
    assert_eq!(saved.lines().count(), RULES.lines().filter(|l| !l.starts_with('#')).count(), "{saved}");
    lab.gwctl_ok(&["-C"]);
    assert!(!lab.listing().contains("TCP"), "cleared");
    lab.restore(&saved);
    assert_eq!(lab.gwctl_ok(&["-S", "-n"]), saved);
    let listing = lab.listing();
    assert!(listing.contains("TCP  198.18.0.100:80 rr persistent 60\n"), "{listing}");
    assert!(listing.contains("TCP  198.18.0.100:82 mh persistent 360 mask 255.255.255.0\n"), "{listing}");

    // Persistence: every connection of the client goes to one real server.
    let first = get_from(&lab, CLIENT);
    for _ in 0..5 {
        assert_eq!(get_from(&lab, CLIENT), first, "persistence broke");
    }
    let conns = lab.gwctl_ok(&["-L", "-n", "-c"]);
    assert!(conns.lines().any(|l| l.contains("NONE") && l.contains("198.18.0.2:0")), "no template:\n{conns}");
    // Quiesce that server: the client keeps it (its template lives) ...
    let rip = if first == "rs1" { "198.18.1.2" } else { "198.18.1.3" };
    lab.gwctl_ok(&["-e", "-t", "198.18.0.100:80", "-r", &format!("{rip}:8080"), "-m", "-w", "0"]);
    for _ in 0..3 {
        assert_eq!(get_from(&lab, CLIENT), first, "an existing client keeps its quiesced server");
    }
    // ... but a new client gets only the other server.
    assert!(lab.exec("client", &["ip", "addr", "add", "198.18.0.5/24", "dev", "c0"]).status.success());
    for _ in 0..4 {
        assert_ne!(get_from(&lab, "198.18.0.5"), first, "a quiesced server got a new client");
    }
    let persist = lab.gwctl_ok(&["-L", "-n", "--persistent-conn"]);
    assert!(persist.contains("PersistConn"), "{persist}");

    // wrr 3:1 on UDP, one flow each.
    let udp = lab.udp_flows(8);
    let rs1 = udp.iter().filter(|u| u.server == "rs1").count();
    assert_eq!((rs1, udp.len() - rs1), (6, 2), "wrr 3:1 over 8 flows");

    // A restart with the rules file restores every service.
    let file = std::env::temp_dir().join("gwe-rules.rules");
    std::fs::write(&file, &saved).unwrap();
    drop(lab);
    let path = file.to_str().unwrap().to_string();
    let lab2 = Lab::up_tweaked(&NAT, "rules2", move |c| {
        c.replace("socket = \"", &format!("rules = \"{path}\"\nsocket = \""))
    });
    assert_eq!(lab2.gwctl_ok(&["-S", "-n"]), saved, "the restart brought the rules back");
    let again = get_from(&lab2, CLIENT);
    assert!(again == "rs1" || again == "rs2");
    let _ = std::fs::remove_file(&file);
}

/// ipvsadm's `host_to_addr` takes the first address `gethostbyname` gives;
/// `getaddrinfo` sorts a name's addresses (RFC 6724: here the one sharing
/// the longest prefix with the client namespace's 198.18.0.2/24 first).
/// With an /etc/hosts (bind-mounted in a mount namespace of its own) that
/// lists 198.19.255.7 before 198.18.0.200 for one name, glibc's
/// `getent ahostsv4` (getaddrinfo) puts 198.18.0.200 first, and gwctl in
/// the client namespace, as ipvsadm, makes the service on 198.19.255.7.
#[test]
fn a_host_name_is_its_first_gethostbyname_address_as_in_ipvsadm() {
    let lab = Lab::up(&FULLNAT, "rhost");
    /// The hosts file, removed when the test ends, also when it fails.
    struct HostsFile(std::path::PathBuf);
    impl Drop for HostsFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let hosts = HostsFile(std::env::temp_dir().join(format!("{}-hosts", lab.prefix)));
    let hosts = &hosts.0;
    let name = "vip.gw-lab.test";
    std::fs::write(hosts, format!("127.0.0.1 localhost\n198.19.255.7 {name}\n198.18.0.200 {name}\n"))
        .unwrap();
    let in_client_with_hosts = |args: &[&str]| {
        let script = format!("mount --bind {} /etc/hosts && exec \"$@\"", hosts.display());
        let argv: Vec<&str> = ["unshare", "-m", "sh", "-c", &script, "sh"]
            .iter()
            .copied()
            .chain(args.iter().copied())
            .collect();
        lab.exec("client", &argv)
    };
    let gai = in_client_with_hosts(&["getent", "ahostsv4", name]);
    assert!(text(&gai).starts_with("198.18.0.200 "), "getaddrinfo's order: {}", text(&gai));
    let gwctl = binary("gwctl", "GWCTL_BIN");
    let socket = lab.socket.to_str().unwrap();
    let vip = format!("{name}:80");
    let o =
        in_client_with_hosts(&[gwctl.to_str().unwrap(), "--socket", socket, "-A", "-t", &vip, "-s", "rr"]);
    assert!(o.status.success(), "{}{}", text(&o), String::from_utf8_lossy(&o.stderr));
    assert_eq!(lab.gwctl_ok(&["-S", "-n"]), "-A -t 198.19.255.7:80 -s rr\n");
}
