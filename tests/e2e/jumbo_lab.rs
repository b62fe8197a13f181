//! Jumbo frames (issue 11): the FULLNAT lab with every link at MTU 9000.
//! gatewayd's ports say `mtu = 9000`: it sizes its mbufs and the af_packet
//! ring frames for 9,018-byte frames (DPDK's af_packet driver cannot set
//! an MTU above 1,500, so gatewayd checks the kernel interfaces', which
//! lab.sh set), and moves them whole: a
//! 1 MB HTTP download whose TCP segments are ~8,960 bytes (the MSS at
//! MTU 9000), and UDP datagrams of 8,900 bytes with DF set echoed without
//! a single fragment.

mod common;

use common::{Lab, Topology, FULLNAT, VIP};

const MB: usize = 1 << 20;

/// The FULLNAT wiring with every link at MTU 9000 (lab.sh fullnat-jumbo).
const JUMBO: Topology = Topology { lab: "fullnat-jumbo", ..FULLNAT };

#[test]
fn fullnat_moves_9000_byte_frames_whole() {
    let mut lab = Lab::up_tweaked(&JUMBO, "jumbo", |c| {
        c.replace("address = \"198.18.0.1/24\"", "address = \"198.18.0.1/24\"\nmtu = 9000")
            .replace("address = \"198.18.1.1/24\"", "address = \"198.18.1.1/24\"\nmtu = 9000")
    });
    let log = lab.log_text();
    assert!(log.contains("mbuf_size=12256"), "mbufs and ring frames sized for 9018-byte frames:\n{log}");
    lab.add_service("-t");
    lab.add_service("-u");
    // An HTTP download: the real server's segments fill 9000-byte frames.
    let d = lab.download(MB, "20");
    assert_eq!((d.size, &d.received), (MB, &d.announced), "{d:?}");
    let tcp = lab.stats().service("TCP");
    let per_packet = tcp.outbytes / tcp.outpkts.max(1);
    assert!(per_packet > 4000, "replies average {per_packet} bytes: not jumbo\n{tcp:?}");
    // UDP echo of 8,900-byte datagrams (8,928 bytes of IP) with DF set.
    lab.udp_echo_service(9000);
    let out =
        lab.python("client", "udp_echo.py", &["send", VIP, "9000", "df", "8900", "8900", "8900", "8900"]);
    assert_eq!(out.lines().filter(|l| l.starts_with("ok 8900")).count(), 4, "{out}");
    let udp = lab.stats().service_at("UDP", 9000);
    assert_eq!((udp.inpkts, udp.outpkts), (4, 4), "{udp:?}");
    assert_eq!(udp.inbytes, 4 * 8928, "whole datagrams");
    for none in
        ["frag_sent", "frag_received", "drop_ipv4_truncated", "drop_ipv4_malformed", "icmp_frag_needed_sent"]
    {
        assert_eq!(lab.counter(none), 0, "{none}");
    }
}
