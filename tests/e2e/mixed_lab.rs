//! IPv4 and IPv6 at once (issue 17): one gatewayd with two workers on two
//! dual-stack ports (the FULLNAT lab dual-stack, conf/lab-fullnat-2w.toml
//! made dual-stack), TCP and UDP services on 198.18.0.100:80 and
//! [2001:db8::100]:80 to the same real servers (each listening on `::`,
//! both families), each family with its own local address. Downloads,
//! HTTP requests and UDP flows of both families run at the same time; every
//! answer must be right (the real server saw the local address of the
//! request's family, the bytes keep their SHA-256), both workers hold
//! sessions, and the hand-off between workers loses nothing.

mod common;

use common::{Lab, Udp, CLIENT, CLIENT6, FULLNAT6_2W, FULLNAT_2W, VIP, VIP6};

/// The local address of each family.
const LIP: &str = "198.18.1.10";
const LIP6: &str = "2001:db8:1::10";
const MB: usize = 1 << 20;

fn traffic(lab: &Lab, vip: &str, client: &str, lip: &str) {
    let d = lab.download_from(vip, 20 * MB, "120");
    assert_eq!((d.size, &d.received), (20 * MB, &d.announced), "{vip}: {d:?}");
    for _ in 0..10 {
        let h = lab.http_to(vip);
        assert!(h.local.starts_with(&format!("{client}:")), "{h:?}");
        // An IPv4 peer of a server on `::` reads as ::ffff:198.18.1.10.
        let peer = h.peer.strip_prefix("::ffff:").unwrap_or(&h.peer);
        assert!(peer.starts_with(&format!("{lip}:")), "{vip}: the real server saw {}", h.peer);
    }
    let flows: Vec<Udp> = lab.udp_flows_to(vip, 20);
    for u in &flows {
        assert_eq!(u.from, format!("{vip}:80"), "{u:?}");
        let peer = u.peer.strip_prefix("::ffff:").unwrap_or(&u.peer);
        assert!(peer.starts_with(&format!("{lip}:")), "{vip}: the UDP server saw {}", u.peer);
    }
}

#[test]
fn ipv4_and_ipv6_services_share_the_ports_and_both_workers_at_once() {
    let lab = Lab::up(&FULLNAT6_2W, "h17l-mixed");
    for proto in ["-t", "-u"] {
        lab.add_service_of(&FULLNAT_2W, proto);
        lab.add_service(proto);
    }
    let listing = lab.listing();
    for svc in ["TCP  198.18.0.100:80 rr\n", "TCP  [2001:db8::100]:80 rr\n", "UDP  198.18.0.100:80 rr\n"] {
        assert!(listing.contains(svc), "no {svc:?} in\n{listing}");
    }

    std::thread::scope(|s| {
        s.spawn(|| traffic(&lab, VIP, CLIENT, LIP));
        s.spawn(|| traffic(&lab, VIP6, CLIENT6, LIP6));
    });

    let stats = lab.stats();
    for vip in [VIP, VIP6] {
        assert_eq!(stats.service_of("TCP", vip, 80).conns, 11, "{}", stats.text);
        assert_eq!(stats.service_of("UDP", vip, 80).conns, 20, "{}", stats.text);
    }
    let created = lab.worker_counters("sessions_created");
    assert_eq!(created.len(), 2, "two workers: {created:?}");
    assert!(created.iter().all(|&n| n > 0), "a worker held no session: {created:?}");
    assert_eq!(created.iter().sum::<u64>(), 62, "{created:?}");
    assert_eq!(lab.counter("redirect_out_packets"), lab.counter("redirect_in_packets"));
    assert_eq!(lab.counter("drop_redirect_full"), 0);
}
