//! End-to-end NAT lab (LVS-NAT, `gwctl -m`, Forward `Masq`): the FULLNAT
//! wiring (tests/lab/lab.sh up PREFIX nat), with the real servers' default
//! route via the gateway's inside address 198.18.1.1. The real servers
//! listen on 8080 while the VIP port is 80: the gateway maps the port both
//! ways. The real servers see the client's own address and port; the
//! client sees only VIP:80; replies pass through the gateway (OutPkts).

mod common;

use std::path::PathBuf;

use common::{read_line, Lab, CLIENT, NAT, VIP};

#[test]
fn nat_maps_vip_port_80_to_8080_and_real_servers_see_the_client() {
    let lab = Lab::up(&NAT, "nat-both");
    lab.check_services_and_client_seen();

    let flows = lab.udp_flows(6);
    for u in &flows {
        assert_eq!(
            u.from,
            format!("{VIP}:80"),
            "the UDP answer must come from VIP:80 (port 8080 mapped back): {u:?}"
        );
        assert_eq!(u.peer, u.local, "the UDP server saw {} instead of the client {}", u.peer, u.local);
    }
    assert_eq!(flows.iter().filter(|u| u.server == "rs1").count(), 3, "{flows:?}");

    let stats = lab.stats();
    let (tcp, udp) = (stats.service("TCP"), stats.service("UDP"));
    assert_eq!(tcp.conns, 6, "one connection per HTTP request:\n{}", stats.text);
    assert_eq!(udp.conns, 6, "one connection per UDP flow:\n{}", stats.text);
    // A TCP connection is at least SYN, ACK, request, FIN each way.
    assert!(tcp.inpkts >= 6 * 4 && tcp.outpkts >= 6 * 3, "{}", stats.text);
    assert_eq!((udp.inpkts, udp.outpkts), (6, 6), "one datagram each way per flow:\n{}", stats.text);
    for (_, rip) in NAT.servers {
        let d = stats.dest("TCP", &NAT.rs_listed(rip));
        assert_eq!(d.conns, 3, "{}", stats.text);
        assert!(d.outpkts > 0, "{}", stats.text);
    }
    // Replies pass through the gateway in NAT mode.
    assert_eq!(lab.counter("fwd_in_packets"), tcp.inpkts + udp.inpkts);
    assert_eq!(lab.counter("fwd_out_packets"), tcp.outpkts + udp.outpkts);
    assert_eq!(lab.counter("sessions_created"), 12);
}

#[test]
fn nat_reply_without_a_session_is_dropped_and_other_flows_go_on() {
    let lab = Lab::up(&NAT, "nat-unknown");
    lab.add_service("-t");
    lab.add_service("-u");
    lab.http();

    // A UDP flow that stays open across the disturbance.
    let gate = PathBuf::from(format!("/tmp/{}.gate", lab.prefix));
    let _ = std::fs::remove_file(&gate);
    let (mut flow, mut out) = lab.spawn_python("client", "udp_flow.py", &[VIP, "80", gate.to_str().unwrap()]);
    let first = read_line(&mut out);
    let f: Vec<&str> = first.split_whitespace().collect();
    assert!(f.len() == 4 && f[2] == "local", "the UDP flow got no answer: {first}");
    let (server, peer, local) = (f[0].to_string(), f[1].to_string(), f[3].to_string());
    assert_eq!(peer, local);
    let cport = local.rsplit_once(':').unwrap().1.to_string();
    // The other real server, which holds no session with this client port.
    let (other, other_ip) = NAT.servers[1 - NAT.server_index(&server)];

    let before = lab.counter("drop_unknown_reply");
    let udp_in = lab.snmp("client", "Udp", "InDatagrams") + lab.snmp("client", "Udp", "NoPorts");
    let rsts = lab.snmp("client", "Tcp", "OutRsts");
    // "Replies" from the real-server port 8080 that match no session: UDP to
    // the live flow's client port (from the wrong server), and TCP SYN-ACKs
    // to a client port with no connection at all. Sent raw: rs_server holds
    // port 8080.
    lab.python(other, "l4_inject.py", &["udp", other_ip, "8080", CLIENT, &cport, "3"]);
    lab.python(other, "l4_inject.py", &["tcp", other_ip, "8080", CLIENT, "40001", "2", "SA"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while lab.counter("drop_unknown_reply") < before + 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(lab.counter("drop_unknown_reply") - before, 5);

    // The live flow goes on through the same session and server.
    std::fs::write(&gate, b"").unwrap();
    let second = read_line(&mut out);
    let _ = flow.wait();
    let _ = std::fs::remove_file(&gate);
    assert_eq!(second, first, "the flow's second exchange changed");
    // Nothing injected reached the client: one datagram (the answer), no RST.
    let udp_after = lab.snmp("client", "Udp", "InDatagrams") + lab.snmp("client", "Udp", "NoPorts");
    assert_eq!(udp_after - udp_in, 1, "the client received injected datagrams");
    assert_eq!(lab.snmp("client", "Tcp", "OutRsts"), rsts, "the client saw the injected SYN-ACKs");
    let stats = lab.stats();
    assert_eq!(stats.service("UDP").conns, 1, "the flow kept its session:\n{}", stats.text);
    assert_eq!(stats.service("UDP").outpkts, 2, "{}", stats.text);
    // And new connections still work.
    for _ in 0..2 {
        lab.http();
    }
}
