#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (run from fuzz/).

packet_path inputs are records `[port+flags][clock step][len u16][frame]`
(see dataplane/src/fuzzing.rs; the packet core is core/): valid client traffic to every service, the
real servers' replies, ARP, ping and an ICMP error, so the fuzzer starts deep in the path; one
frame goes in raw (flag 0x40) with a wrong checksum.
control inputs are length-prefixed JSON requests.
"""
import json
import os
import struct

GW_OUT = bytes([2, 0, 0, 0, 0, 1])
GW_IN = bytes([2, 0, 0, 0, 1, 1])
CLIENT_MAC = bytes([2, 0xC0, 0, 0, 0, 2])
RS_MAC = bytes([2, 0xAA, 0, 0, 0, 2])
ROUTER_MAC = bytes([2, 0xAA, 0, 0, 0, 0xFE])


def ip(a):
    return bytes(int(x) for x in a.split("."))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ttl=64, df=True):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000 if df else 0, ttl, proto, 0, ip(src), ip(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def l4(proto, src, dst, sport, dport, flags=0x02, data=b""):
    pseudo = lambda seg: struct.pack("!4s4sBBH", ip(src), ip(dst), 0, proto, len(seg))
    if proto == 6:
        seg = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0) + data
        c = csum(pseudo(seg) + seg)
        return seg[:16] + struct.pack("!H", c) + seg[18:]
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = csum(pseudo(seg) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp_seg(src, dst, sport, dport, seq, ack, flags, opts=b"", data=b""):
    """A TCP segment with sequence and acknowledgement numbers and options (padded to 4 bytes)."""
    opts += b"\1" * (-len(opts) % 4)
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (5 + len(opts) // 4) << 4, flags, 65535, 0, 0) + opts + data
    pseudo = struct.pack("!4s4sBBH", ip(src), ip(dst), 0, 6, len(seg))
    c = csum(pseudo + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def eth(dst, src, etype, payload):
    return dst + src + struct.pack("!H", etype) + payload


def arp_request(mac, sip, tip):
    return eth(b"\xff" * 6, mac, 0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x800, 6, 4, 1, mac, ip(sip), b"\0" * 6, ip(tip)))


def icmp_echo(src, dst):
    body = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"abcdefgh"
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def icmp_unreachable(src, dst, quoted):
    """Port unreachable (RFC 792) quoting the IPv4 header and 8 bytes of `quoted`."""
    body = struct.pack("!BBHI", 3, 3, 0, 0) + quoted[:28]
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    return ipv4(src, dst, 1, body)


def bad_udp_sum(seg):
    """UDP `seg` with its checksum's last bit flipped."""
    return seg[:7] + bytes([seg[7] ^ 1]) + seg[8:]


def rec(port, step, frame):
    return bytes([port, step]) + struct.pack("!H", len(frame)) + frame


C, V, L = "198.18.0.2", "198.18.0.100", "198.18.1.10"
# The client, the first real server and the router in front of the second (198.18.2.3) announce
# themselves, so traffic to either real server goes out at once instead of waiting for ARP.
learn = (rec(0, 1, arp_request(CLIENT_MAC, C, V)) + rec(1, 1, arp_request(RS_MAC, "198.18.1.2", "198.18.1.1"))
         + rec(1, 1, arp_request(ROUTER_MAC, "198.18.1.254", "198.18.1.1")))
seeds = {
    "fullnat_tcp": learn
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 40000, 80))))
    + rec(1, 1, eth(GW_IN, RS_MAC, 0x800, ipv4("198.18.1.2", L, 6, l4(6, "198.18.1.2", L, 80, 5000, 0x12))))
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 40000, 80, 0x10, b"GET /")))),
    "nat_udp": learn
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 17, l4(17, C, V, 5353, 80, data=b"hello"))))
    + rec(1, 1, eth(GW_IN, RS_MAC, 0x800, ipv4("198.18.1.2", C, 17, l4(17, "198.18.1.2", C, 8080, 5353, data=b"hi")))),
    "dr_tcp": learn + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 40001, 81)))),
    "tun_udp": learn
    + b"".join(rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 17, l4(17, C, V, p, 82, data=b"x" * 40))))
               for p in (7001, 7002)),
    "tun_udp_big": learn
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 17, l4(17, C, V, 7000, 82, data=b"x" * 700)))),
    "tun_gue_udp": learn
    + b"".join(rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 17, l4(17, C, V, 7003, 84, data=b"x" * n))))
               for n in (40, 700)),
    "tun_gre_tcp": learn + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 40002, 85)))),
    "persistent": learn
    + b"".join(rec(0, 3, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, p, 83))))
               for p in range(41000, 41004)),
    "ping": rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, icmp_echo(C, V))),
    "icmp_error": learn
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 40000, 80))))
    + rec(1, 1, eth(GW_IN, RS_MAC, 0x800, icmp_unreachable("198.18.1.2", L,
                                                           ipv4(L, "198.18.1.2", 6, l4(6, L, "198.18.1.2", 5000, 80))))),
    "raw_bad_checksum": learn
    + rec(0x40, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 17, bad_udp_sum(l4(17, C, V, 5353, 80, data=b"hello"))))),
    # No session, no service, no real server: RSTs and port unreachables (more than the fuzz lab's
    # bucket of 4 holds), a RST that gets nothing, then a FULLNAT connection whose sequence marks a
    # blind RST from the real server misses.
    "no_session": learn
    + b"".join(rec(0, 0, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, p, 80, 0x10, b"late"))))
               for p in range(42000, 42004))
    + rec(1, 0, eth(GW_IN, RS_MAC, 0x800, ipv4("198.18.1.2", L, 6, l4(6, "198.18.1.2", L, 80, 5003, 0x18, b"x"))))
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 42010, 84))))
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 17, l4(17, C, V, 5353, 85, data=b"hi"))))
    + rec(0, 5, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 42011, 80, 0x04))))
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 42012, 80))))
    + rec(1, 1, eth(GW_IN, RS_MAC, 0x800, ipv4("198.18.1.2", L, 6, l4(6, "198.18.1.2", L, 80, 5000, 0x12))))
    + rec(1, 1, eth(GW_IN, RS_MAC, 0x800, ipv4("198.18.1.2", L, 6, l4(6, "198.18.1.2", L, 80, 5000, 0x04)))),
    # The client address: a PROXY v1 service (86: header with the handshake ACK, shifted sequence
    # numbers, a server ACK with a SACK block shifted back) and a TOA service (87: SYN with options);
    # They go to the second real server (behind the router) from local ports 5014 and 5038.
    "proxy_v1": learn
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43000, 86, 100, 0, 0x02,
                                                                  struct.pack("!BBH", 2, 4, 1460) + b"\4\2"))))
    + rec(1, 1, eth(GW_IN, ROUTER_MAC, 0x800, ipv4("198.18.2.3", L, 6, tcp_seg("198.18.2.3", L, 86, 5014, 900, 101, 0x12))))
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43000, 86, 101, 901, 0x10))))
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43000, 86, 101, 901, 0x18, data=b"GET /"))))
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43000, 86, 106, 901, 0x18, data=b"more"))))
    + rec(1, 1, eth(GW_IN, ROUTER_MAC, 0x800, ipv4("198.18.2.3", L, 6, tcp_seg("198.18.2.3", L, 86, 5014, 901, 150, 0x10,
                                                                            b"\1\1" + struct.pack("!BBII", 5, 10, 150, 160))))),
    "toa": learn
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43001, 87, 100, 0, 0x02,
                                                                  struct.pack("!BBH", 2, 4, 1460) + b"\4\2\1\3\3\7"))))
    + rec(1, 1, eth(GW_IN, ROUTER_MAC, 0x800, ipv4("198.18.2.3", L, 6, tcp_seg("198.18.2.3", L, 87, 5038, 900, 101, 0x12))))
    + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43001, 87, 101, 901, 0x10)))),
    "config_change": learn + rec(0x81, 9, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, l4(6, C, V, 40002, 80)))),
    # SYNPROXY: a SYN with options answered by a cookie; the cookie ACK (control bit 0x20: the
    # harness puts the cookie in) opens the connection; data; the real server's SYN-ACK (NAT, 90:
    # from either real server to the client) becomes the handshake ACK; spliced data both ways, a
    # client SACK block and timestamps. 88 (FULLNAT) and 89 (with PROXY v2) likewise from the client
    # side, and an ACK flood without cookies.
    "synproxy": learn
    + b"".join(
        rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43100 + k, port, 100, 0, 0x02,
            opts=bytes([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 6])))))
        + rec(0x20, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43100 + k, port, 0, 0, 0x10,
            opts=bytes([1, 1, 8, 10, 0, 0, 0, 8, 0, 0, 0, 0])))))
        + rec(0, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43100 + k, port, 101, 0, 0x18,
            data=b"early"))))
        + b"".join(rec(1, 1, eth(GW_IN, mac, 0x800, ipv4(rs, C, 6, tcp_seg(rs, C, 8080, 43100 + k, 7000, 101,
            0x12, opts=bytes([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 1, 0, 0, 0, 0, 8, 1, 3, 3, 9]))))) for rs, mac in
            [("198.18.1.2", RS_MAC), ("198.18.2.3", ROUTER_MAC)])
        + rec(0x20, 1, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43100 + k, port, 0, 0, 0x18,
            opts=bytes([1, 1, 5, 10, 0, 0, 0, 9, 0, 0, 0, 19]), data=b"hello"))))
        + b"".join(rec(1, 1, eth(GW_IN, mac, 0x800, ipv4(rs, C, 6, tcp_seg(rs, C, 8080, 43100 + k, 7001, 106,
            0x18, opts=bytes([1, 1, 8, 10, 0, 0, 1, 5, 0, 0, 0, 8]), data=b"world")))) for rs, mac in
            [("198.18.1.2", RS_MAC), ("198.18.2.3", ROUTER_MAC)])
        for k, port in enumerate([90, 88, 89])
    )
    + b"".join(rec(0, 0, eth(GW_OUT, CLIENT_MAC, 0x800, ipv4(C, V, 6, tcp_seg(C, V, 43200 + p, 88, p, p * 7, 0x10))))
               for p in range(8)),
}
for name, data in seeds.items():
    with open(os.path.join("corpus/packet_path", name), "wb") as f:
        f.write(data)


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack("!I", len(body)) + body


key = {"proto": "tcp", "addr": V, "port": 80}
control = {
    "list": frame({"op": "list", "service": None}),
    "add_service": frame({"op": "add_service", "spec": {"key": {**key, "port": 90}, "scheduler": "mh"}}),
    "add_service_pp": frame({"op": "add_service", "spec": {"key": {**key, "port": 91}, "scheduler": "rr",
                                                           "client_addr": "proxyv2"}}),
    "add_dest": frame({"op": "add_dest", "service": key,
                       "dest": {"addr": "198.18.1.9", "port": 80, "mode": "masq", "weight": 2, "upper": 5}}),
    "restore": frame({"op": "restore", "requests": [{"op": "del_service", "key": key}, {"op": "clear"}]}),
    "timeouts": frame({"op": "set_timeouts", "timeouts": {"tcp": 10, "tcpfin": 0, "udp": 5}}),
    "garbage": b"\x00\x00\x00\x05hello",
}
for name, data in control.items():
    with open(os.path.join("corpus/control", name), "wb") as f:
        f.write(data)
print(len(seeds), "packet seeds,", len(control), "control seeds")
