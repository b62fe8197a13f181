//! IPv6 neighbour discovery and routes (issue 17), the DR lab with the
//! client behind a router (lab.sh `dr-routed`), IPv6 added:
//!
//! ```text
//! client c0 2001:db8:4::2/64 -- rc 2001:db8:4::1 (router) r0 2001:db8::fe -- br0 -- gw0 2001:db8::1/64
//! ```
//!
//! gatewayd's port is dual-stack and has `[[route]] dest =
//! "2001:db8:4::/64" via = "2001:db8::fe"`. `ping -6` from the client to
//! the gateway's address is only answered if the gateway routes the reply
//! (the client is off-link) and resolves the router with a neighbour
//! solicitation the router's kernel, a second implementation, accepts; and,
//! once the router forgets the gateway, if the gateway answers the router's
//! solicitation. A flood of solicitations from made-up neighbours
//! (tests/lab/neigh6_flood.py, its own checksums) stays within the
//! neighbour table (`neigh_evicted`), one from off-link sources is refused
//! by name (`drop_nd_invalid`), unsolicited advertisements make no entry,
//! and the client is still answered after it all. A static IPv6 neighbour
//! (`gwctl --add-neighbour 2001:db8::fe`) overrides what was learnt.

mod common;

use common::*;

const GW6: &str = "2001:db8::1";
const ROUTER6: &str = "2001:db8::fe";
const CLIENT6: &str = "2001:db8:4::2";

fn dual_stack(c: String) -> String {
    let c = c.replace("address = \"198.18.0.1/24\"", &format!("address = [\"198.18.0.1/24\", \"{GW6}/64\"]"));
    format!(
        "{c}\n[[route]]\ndest = \"2001:db8:4::/64\"\nvia = \"{ROUTER6}\"\n\n[neighbours]\ncapacity = 32\n"
    )
}

/// The lab of this file: IPv6 on in the router (forwarding) and the
/// client, the client's default route through the router.
fn ipv6_lab(name: &str, tweak: impl Fn(String) -> String) -> Lab {
    let lab = Lab::up_tweaked(&DR_ROUTED, name, |c| tweak(dual_stack(c)));
    ipv6_on(&lab, "router", &[("r0", "2001:db8::fe/64"), ("rc", "2001:db8:4::1/64")]);
    lab.exec("router", &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    ipv6_on(&lab, "client", &[("c0", &format!("{CLIENT6}/64"))]);
    let o = lab.exec("client", &["ip", "-6", "route", "add", "default", "via", "2001:db8:4::1"]);
    assert!(o.status.success(), "{}", text(&o));
    lab
}

/// Turns IPv6 on (lab.sh turns it off everywhere) for `devs` in namespace
/// `n` and gives them `addrs`, without duplicate address detection.
fn ipv6_on(lab: &Lab, n: &str, devs: &[(&str, &str)]) {
    let keys = ["all", "default"].into_iter().chain(devs.iter().map(|(d, _)| *d));
    for key in keys {
        lab.exec(n, &["sysctl", "-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=0")]);
    }
    for (dev, addr) in devs {
        let o = lab.exec(n, &["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
        assert!(o.status.success(), "{n}: ip -6 addr add {addr} dev {dev}: {}", text(&o));
    }
}

fn ping6(lab: &Lab, n: u32) {
    let count = n.to_string();
    let o = lab.exec("client", &["ping", "-6", "-c", &count, "-i", "0.2", "-W", "2", "-n", GW6]);
    assert!(o.status.success(), "ping -6 {GW6} failed: {}\n{}", text(&o), lab.diag());
    assert!(text(&o).contains(&format!("{n} received")), "{}", text(&o));
}

#[test]
fn the_gateway_and_a_router_resolve_each_other_and_a_flood_stays_bounded() {
    let lab = ipv6_lab("h17n-nd6", |c| c);
    let gw_mac = lab.mac("gw", "gw0");

    // 1. The router knows the gateway (a permanent entry: it never
    // solicits it), so the only way back for the reply is the gateway's
    // route and its own solicitation of the router.
    let o = lab.exec(
        "router",
        &["ip", "-6", "neigh", "replace", GW6, "lladdr", &gw_mac, "dev", "r0", "nud", "permanent"],
    );
    assert!(o.status.success(), "{}", text(&o));
    ping6(&lab, 3);
    assert_eq!(lab.counter("icmpv6_echo_answered"), 3, "{}", lab.diag());
    assert!(lab.counter("nd_solicits_sent") >= 1, "{}", lab.diag());
    assert!(lab.counter("nd_adverts_learned") >= 1, "{}", lab.diag());
    assert_eq!(lab.counter("nd_solicits_answered"), 0, "the router never asked: {}", lab.diag());
    assert_eq!(lab.counter("drop_no_route") + lab.counter("drop_neigh_unresolved"), 0, "{}", lab.diag());

    // 2. The router forgets the gateway: it solicits it, the gateway
    // answers and the router's kernel takes the gateway's port MAC.
    lab.exec("router", &["ip", "-6", "neigh", "del", GW6, "dev", "r0"]);
    ping6(&lab, 2);
    assert!(lab.counter("nd_solicits_answered") >= 1, "{}", lab.diag());
    assert_eq!(lab.neigh("router", GW6).as_deref(), Some(gw_mac.as_str()), "the router's entry for {GW6}");
    assert_eq!(lab.counter("drop_nd_invalid"), 0, "{}", lab.diag());

    // 3. 1000 solicitations from made-up neighbours on the prefix: each is
    // answered or lost at the receive ring, the 32-entry table evicts its
    // stalest entries, it never grows.
    let answered = lab.counter("nd_solicits_answered");
    lab.python("router", "neigh6_flood.py", &["r0", "ns", GW6, "1000", "2001:db8::1:0"]);
    let lost = lab.port_stat("lan", "imissed");
    let flood_answered = lab.counter("nd_solicits_answered") - answered;
    assert!(
        flood_answered > 0 && flood_answered + lost >= 1000,
        "answered {flood_answered}, lost {lost}\n{}",
        lab.diag()
    );
    assert!(lab.counter("neigh_evicted") > 0, "{}", lab.diag());
    // 500 from off-link sources: refused by name, none learnt.
    lab.python("router", "neigh6_flood.py", &["r0", "ns", GW6, "500", "2001:db9::"]);
    let refused = lab.counter("drop_nd_invalid");
    let lost = lab.port_stat("lan", "imissed");
    assert!(refused > 0 && refused + lost >= 500, "refused {refused}, lost {lost}\n{}", lab.diag());
    // 300 unsolicited advertisements from strangers: no entry made.
    let learnt = lab.counter("nd_adverts_learned");
    lab.python("router", "neigh6_flood.py", &["r0", "na", GW6, "300", "2001:db8::2:0"]);
    assert_eq!(lab.counter("nd_adverts_learned"), learnt, "{}", lab.diag());

    // 4. The client is still answered: the gateway resolves the router
    // again if the flood took its entry.
    ping6(&lab, 3);
    assert_eq!(lab.neigh("router", GW6).as_deref(), Some(gw_mac.as_str()));

    // 5. A static IPv6 neighbour (gwctl, at run time) takes the place of the
    // learnt entry and is used as given: a wrong MAC for the router loses
    // the replies. Deleted, the gateway solicits the router again.
    let wrong = "02:00:00:00:00:99";
    lab.gwctl_ok(&["--add-neighbour", ROUTER6, "--mac", wrong, "--port", "lan"]);
    let list = lab.gwctl_ok(&["--list-neighbours"]);
    assert!(list.contains(ROUTER6) && list.contains(wrong), "{list}");
    let o = lab.exec("client", &["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-n", GW6]);
    assert!(text(&o).contains("0 received"), "replies went to the static MAC: {}", text(&o));
    let solicited = lab.counter("nd_solicits_sent");
    lab.gwctl_ok(&["--del-neighbour", ROUTER6, "--port", "lan"]);
    ping6(&lab, 2);
    assert!(lab.counter("nd_solicits_sent") > solicited, "{}", lab.diag());
}

/// With a kernel interface on the port (the exception path), the kernel
/// gets the IPv6 route and resolves the router itself through the port:
/// its solicitation leaves through the dataplane, the router's
/// advertisement reaches it too, and the client's echo replies to the
/// kernel's ping (not the dataplane's business) go to the kernel.
#[test]
fn the_kernel_interface_gets_the_ipv6_route_and_resolves_through_the_port() {
    let lab = ipv6_lab("h17n-nd6k", |c| {
        // lab.sh turns IPv6 off in every namespace; gatewayd gives the
        // kernel interface it creates the port's IPv6 address, so the
        // gateway's namespace needs it on for new interfaces (this runs
        // after lab.sh, before gatewayd starts).
        let o = run(std::process::Command::new("ip").args([
            "netns",
            "exec",
            "gwe-h17n-nd6k-gw",
            "sysctl",
            "-qw",
            "net.ipv6.conf.default.disable_ipv6=0",
        ]));
        assert!(o.status.success(), "{}", text(&o));
        c.replace("name = \"lan\"", "name = \"lan\"\nkernel = \"gwk-lan\"")
    });
    let route = text(&lab.exec("gw", &["ip", "-6", "route", "show", "2001:db8:4::/64"]));
    assert!(route.contains(&format!("via {ROUTER6} dev gwk-lan")), "{route:?}\n{}", lab.diag());
    let o = lab.exec("gw", &["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-n", CLIENT6]);
    assert!(o.status.success() && text(&o).contains("3 received"), "{}\n{}", text(&o), lab.diag());
    let router_mac = lab.mac("router", "r0");
    assert_eq!(lab.neigh("gw", ROUTER6).as_deref(), Some(router_mac.as_str()), "the kernel's entry");
    assert!(lab.counter("kernel_punted") >= 3, "{}", lab.diag());
}
