//! IPv6 on a dual-stack port (issue 17 groundwork): the FULLNAT lab with
//! gatewayd's outside port given `address = ["198.18.0.1/24",
//! "2001:db8::1/64"]`. The client's own kernel, a second IPv6
//! implementation, resolves the gateway with a neighbour solicitation and
//! pings it with `ping -6`: it only gets replies if gatewayd's neighbour
//! advertisement and echo replies are valid (checksums, hop limit 255 on
//! the NA, flags, target link-layer option), and it then holds the
//! gateway's port MAC in its neighbour table. An IPv6 service is refused
//! by name; IPv4 keeps working beside it.
//!
//! `ping -6 -s 3000`: the client's kernel sends each request as two
//! fragments (its link's MTU is 1500); gatewayd reassembles them (the port
//! has no kernel interface), answers, and sends the reply as fragments of
//! the port's MTU, which the client's kernel puts back together and ping
//! checks (its checksum and its 3000 bytes of pattern).

mod common;

use common::*;

const GW6: &str = "2001:db8::1";
const CLIENT6: &str = "2001:db8::2";

fn dual_stack(c: String) -> String {
    c.replace("address = \"198.18.0.1/24\"", &format!("address = [\"198.18.0.1/24\", \"{GW6}/64\"]"))
}

/// The FULLNAT lab with a dual-stack outside port, the client given
/// [`CLIENT6`] on its link.
fn up(name: &str) -> Lab {
    let lab = Lab::up_tweaked(&FULLNAT, name, dual_stack);
    // lab.sh turns IPv6 off in every namespace: turn it on for the client's
    // link only (no DAD: 2001:db8::2 is usable at once).
    for key in ["all", "default", "c0"] {
        lab.exec("client", &["sysctl", "-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=0")]);
    }
    let o = lab.exec("client", &["ip", "-6", "addr", "add", &format!("{CLIENT6}/64"), "dev", "c0", "nodad"]);
    assert!(o.status.success(), "{}", text(&o));
    lab
}

#[test]
fn ping6_to_the_gateway_port_is_answered() {
    let lab = up("ip6host");
    let o = lab.exec("client", &["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-n", GW6]);
    assert!(o.status.success(), "ping -6 failed: {}\n{}", text(&o), lab.diag());
    assert!(text(&o).contains("3 received"), "{}", text(&o));
    // The kernel took the advertisement: the gateway's port MAC, learnt.
    let gw_mac = lab.mac("gw", "gw0");
    let neigh = text(&lab.exec("client", &["ip", "-6", "neigh", "show", GW6, "dev", "c0"]));
    assert!(neigh.contains(&gw_mac), "client's neighbour entry for {GW6}: {neigh:?}, gateway port {gw_mac}");
    assert!(lab.counter("nd_solicits_answered") >= 1, "{}", lab.diag());
    assert_eq!(lab.counter("icmpv6_echo_answered"), 3, "{}", lab.diag());
    assert_eq!(lab.counter("drop_nd_invalid"), 0, "{}", lab.diag());
    // The kernel's other IPv6 (router solicitations, MLD reports) is
    // counted by name, never as an unsupported EtherType.
    assert_eq!(lab.counter("drop_unsupported_ethertype"), 0, "{}", lab.diag());
    // gwctl's IPv6 form reaches gatewayd's model, with ipvsadm's family
    // rules: an IPv4 TUN server, which gwctl lets through as ipvsadm
    // does, is refused by gatewayd (no tunnel across families).
    let vip6 = format!("[{GW6}]:80");
    lab.gwctl_ok(&["-A", "-t", &vip6, "-s", "rr"]);
    let o = lab.gwctl(&["-a", "-t", &vip6, "-r", "198.18.0.9:80", "-i"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(255), "{err}");
    assert!(err.contains("is not of the family of service"), "{err}");
    lab.gwctl_ok(&["-D", "-t", &vip6]);
    // IPv4 through the same port still works.
    lab.add_service("-t");
    lab.http();
}

#[test]
fn a_3000_byte_ping6_comes_in_fragments_and_is_answered_in_fragments() {
    let lab = up("h17x-p6");
    let o = lab.exec("client", &["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-n", "-s", "3000", GW6]);
    assert!(o.status.success(), "ping -6 -s 3000 failed: {}\n{}", text(&o), lab.diag());
    assert!(text(&o).contains("3 received"), "{}", text(&o));
    assert!(text(&o).contains("3008 bytes from"), "{}", text(&o));
    assert_eq!(lab.counter("icmpv6_echo_answered"), 3, "{}", lab.diag());
    // Two fragments each way per ping (3048 bytes of IPv6 over a 1500 link).
    assert_eq!(lab.counter("frag_reassembled"), 3, "{}", lab.diag());
    assert!(lab.counter("frag_received") >= 6, "{}", lab.diag());
    assert!(lab.counter("frag_sent") >= 6, "{}", lab.diag());
    assert_eq!(lab.counter("drop_ipv6_not_handled"), 0, "{}", lab.diag());
}
