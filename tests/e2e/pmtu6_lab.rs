//! IPv6 path MTU discovery through the gateway (issue 17): the client sits
//! behind a real Linux router whose link toward it has MTU 1280
//! (tests/lab/lab.sh up PREFIX fullnat-routed dual); the client's own link
//! keeps 1500, so its MSS invites full-size replies. A reply of 1500 bytes
//! makes the router send a real ICMPv6 Packet Too Big (MTU 1280) to the
//! reply's source, the VIP. gatewayd finds the session by the quoted
//! packet (VIP:80 -> client) and sends the error on to the real server
//! about the packet the server sent (engine/icmp6.rs):
//!
//! - FULLNAT66: as ICMPv6 from the IPv6 local address, quoting RS:port ->
//!   LIP:lport; the IPv6 server's kernel caches MTU 1280 toward the local
//!   address.
//! - NAT64: as ICMP "fragmentation needed" with MTU 1260 (RFC 7915 §5.2:
//!   1280 - 20) from the IPv4 local address, quoting RS:port -> LIP:lport;
//!   the IPv4 server's kernel caches MTU 1260.
//!
//! Also with two workers (FULLNAT66), where the error is steered to the
//! worker that owns the session. Either way the server's TCP resends smaller segments and a multi-MB
//! download arrives intact (SHA-256 compared); the server's cached path
//! MTU (`ip route get` on the server, the kernel as the independent
//! reader of the error) shows the translated error arrived and was valid.
//!
//! And the gateway's own Packet Too Big: the FULLNAT66 lab with gatewayd's
//! inside port at `mtu = 1400` (the client's link and the real servers'
//! stay at 1500, so both TCP ends announce an MSS of 1440). A 1500-byte
//! packet from the client does not fit the inside port: gatewayd answers
//! with Packet Too Big (MTU 1400) from its outside address (scapy reads
//! it on the client's link: fields, checksum, the quoted packet), and the
//! client's kernel caches MTU 1400 toward the VIP (`ip -6 route get`): a
//! 2 MB TCP upload (the server answers the SHA-256 of what it read)
//! completes with smaller segments, and a connected UDP socket gets
//! EMSGSIZE, its path MTU (`IPV6_MTU`, tests/lab/udp_big.py) drops to 1400
//! and the next too-big send fails locally.

mod common;

use common::{Lab, Topology, FULLNAT6, FULLNAT6_2W, NAT64, VIP6};

/// The download's size.
const SIZE: usize = 4 << 20;

/// The client behind the router (the IPv6 twin of 198.18.4.2).
const ROUTED_CLIENT6: &str = "2001:db8:4::2";

/// FULLNAT66 with the client behind the 1280-byte link.
const FULLNAT6_ROUTED: Topology = Topology { lab: "fullnat-routed", client: ROUTED_CLIENT6, ..FULLNAT6 };

/// The same with two workers: the error reaches the worker that owns the
/// session through the steering (`steer::classify6`), wherever it arrives.
const FULLNAT6_ROUTED_2W: Topology =
    Topology { lab: "fullnat-routed", client: ROUTED_CLIENT6, ..FULLNAT6_2W };

/// NAT64 with the client behind the 1280-byte link.
const NAT64_ROUTED: Topology = Topology { lab: "fullnat-routed", client: ROUTED_CLIENT6, ..NAT64 };

/// The route real server `rs` uses toward `laddr` (`-6` for IPv6), with
/// the path MTU it cached, if any.
fn rs_route(lab: &Lab, rs: &str, family: &str, laddr: &str) -> String {
    common::text(&lab.exec(rs, &["ip", family, "route", "get", laddr]))
}

/// The lab's router has the narrow link and forwards IPv6; the real
/// servers do path MTU discovery and have learnt nothing yet.
fn check_before(lab: &Lab, family: &str, laddr: &str) {
    let mtu = common::text(&lab.exec("router", &["cat", "/sys/class/net/rc/mtu"]));
    assert_eq!(mtu.trim(), "1280", "the router's link toward the client");
    let fwd = common::text(&lab.exec("router", &["sysctl", "-n", "net.ipv6.conf.all.forwarding"]));
    assert_eq!(fwd.trim(), "1", "the router forwards IPv6");
    for (rs, _) in lab.topo.servers {
        let route = rs_route(lab, rs, family, laddr);
        assert!(!route.contains("mtu"), "{rs} already has a path MTU toward {laddr}: {route}");
    }
}

/// A download through the VIP that completes only because the router's
/// Packet Too Big reached the real server, translated; then the server's
/// cached path MTU toward the local address is `want`.
fn download_through_the_narrow_link(lab: &Lab, family: &str, laddr: &str, want: &str) {
    check_before(lab, family, laddr);
    let d = lab.download(SIZE, "60");
    assert_eq!(d.size, SIZE, "the whole download arrived: {d:?}");
    assert_eq!(d.received, d.announced, "the bytes arrived intact: {d:?}");
    let route = rs_route(lab, &d.server, family, laddr);
    assert!(route.contains(want), "{} has no {want} toward {laddr}: {route}", d.server);
    assert!(lab.counter("icmp_errors_translated") >= 1, "the gateway translated no ICMPv6 error");
    assert_eq!(lab.counter("drop_icmp_unknown_flow"), 0);
    assert_eq!(lab.counter("drop_icmp_unhandled"), 0);
    // A second download needs no more errors from that server.
    let before = lab.counter("icmp_errors_translated");
    let again = lab.download(SIZE, "60");
    assert_eq!((again.size, &again.received), (SIZE, &again.announced), "{again:?}");
    if again.server == d.server {
        assert_eq!(lab.counter("icmp_errors_translated"), before, "{} forgot its path MTU", d.server);
    }
}

#[test]
fn fullnat66_download_through_a_1280_byte_link_completes_by_translated_packet_too_big() {
    let lab = Lab::up(&FULLNAT6_ROUTED, "h17i-pm6");
    lab.add_service("-t");
    download_through_the_narrow_link(&lab, "-6", "2001:db8:1::10", "mtu 1280");
}

#[test]
fn fullnat66_with_two_workers_the_packet_too_big_reaches_the_sessions_worker() {
    let lab = Lab::up(&FULLNAT6_ROUTED_2W, "h17i-pm6w");
    lab.add_service("-t");
    download_through_the_narrow_link(&lab, "-6", "2001:db8:1::10", "mtu 1280");
}

#[test]
fn nat64_download_through_a_1280_byte_link_completes_by_frag_needed_to_the_ipv4_server() {
    let lab = Lab::up(&NAT64_ROUTED, "h17i-pm64");
    lab.add_service("-t");
    download_through_the_narrow_link(&lab, "-4", "198.18.1.10", "mtu 1260");
}

/// FULLNAT66 with gatewayd's inside port (toward the real servers) at
/// `mtu = 1400`, the client's side at 1500.
fn narrow_inside(c: String) -> String {
    let inside = "address = [\"198.18.1.1/24\", \"2001:db8:1::1/64\"]";
    assert!(c.contains(inside), "the inside port's line in {c}");
    c.replace(inside, &format!("{inside}\nmtu = 1400"))
}

/// The client's route toward the VIP, with the path MTU it cached, if any.
fn client_route(lab: &Lab) -> String {
    common::text(&lab.exec("client", &["ip", "-6", "route", "get", VIP6]))
}

#[test]
fn fullnat66_the_gateways_packet_too_big_lowers_the_clients_path_mtu_and_an_upload_completes() {
    let lab = Lab::up_tweaked(&FULLNAT6, "h17x-gptb", narrow_inside);
    lab.add_service("-t");
    lab.add_service("-u");
    assert!(!client_route(&lab).contains("mtu"), "no path MTU yet: {}", client_route(&lab));

    // TCP: 2 MB up, full-size segments first; the SHA-256 the real server
    // computed of what it read is the file's.
    let file = std::env::temp_dir().join(format!("{}-upload.bin", lab.prefix));
    let data: Vec<u8> = (0..2u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let sha = common::text(&std::process::Command::new("sha256sum").arg(&file).output().unwrap());
    let sha = sha.split_whitespace().next().unwrap().to_string();
    let url = format!("http://[{VIP6}]:80/sha256");
    let body = format!("@{}", file.display());
    let capture = lab.capture_ptb6("client", "c0", 1, 20);
    let o = lab.exec("client", &["curl", "-g", "-s", "-S", "-m", "60", "--data-binary", &body, &url]);
    let _ = std::fs::remove_file(&file);
    assert!(o.status.success(), "upload failed: {}\n{}", common::text(&o), lab.diag());
    let f: Vec<String> = common::text(&o).split_whitespace().map(String::from).collect();
    assert_eq!(f.len(), 4, "odd answer {f:?}");
    assert_eq!((f[2].as_str(), f[3].as_str()), (data.len().to_string().as_str(), sha.as_str()), "{f:?}");
    assert!(f[1].starts_with("[2001:db8:1::10]") || f[1].starts_with("2001:db8:1::10"), "FULLNAT66: {f:?}");
    let sent = lab.counter("icmpv6_too_big_sent");
    assert!(sent >= 1, "the gateway sent no Packet Too Big\n{}", lab.diag());
    let route = client_route(&lab);
    assert!(route.contains("mtu 1400"), "the client's route toward the VIP: {route}");
    // scapy's reading of the first one on the client's link: from the
    // gateway's outside address, MTU 1400, checksum good, quoting the
    // client's own packet to the VIP.
    let ptb = capture.packets();
    assert_eq!(ptb.len(), 1, "{ptb:?}");
    let want = [
        ("src", "2001:db8::1"),
        ("dst", common::CLIENT6),
        ("mtu", "1400"),
        ("csum", "ok"),
        ("len", "ok"),
        ("quoted_src", common::CLIENT6),
        ("quoted_dst", VIP6),
        ("quoted_dport", "80"),
    ];
    for (k, v) in want {
        assert_eq!(ptb[0].get(k), v, "{k}: {:?}", ptb[0]);
    }
    assert_eq!(lab.counter("drop_cannot_fragment"), 0);

    // A second upload needs no more: the client remembers.
    std::fs::write(&file, &data).unwrap();
    let o = lab.exec("client", &["curl", "-g", "-s", "-S", "-m", "60", "--data-binary", &body, &url]);
    let _ = std::fs::remove_file(&file);
    assert!(common::text(&o).ends_with(&format!("{sha}\n")), "{}", common::text(&o));
    assert_eq!(lab.counter("icmpv6_too_big_sent"), sent, "the client forgot its path MTU");

    // UDP of 1,452 bytes (1,500 of IPv6) with IPV6_PMTUDISC_DO, once the
    // path MTU the TCP taught is flushed (it is the same destination).
    let o = lab.exec("client", &["ip", "-6", "route", "flush", "cache"]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(!client_route(&lab).contains("mtu"), "flushed: {}", client_route(&lab));
    let out = lab.python("client", "udp_big.py", &[VIP6, "80", "1452", "df"]);
    assert!(out.contains("first=error EMSGSIZE\n"), "no Packet Too Big reached the socket:\n{out}");
    assert!(out.contains("mtu=1400\n"), "{out}");
    assert!(out.contains("second=error EMSGSIZE"), "{out}");
    assert_eq!(lab.counter("icmpv6_too_big_sent"), sent + 1);
    // A datagram that fits is echoed.
    let out = lab.python("client", "udp_big.py", &[VIP6, "80", "1000", "df"]);
    assert!(out.contains("first=reply rs"), "{out}");
}
