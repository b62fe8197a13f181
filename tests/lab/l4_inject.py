#!/usr/bin/env python3
"""Sends hand-made TCP or UDP packets with chosen addresses and ports:
PROTO SRC SPORT DST DPORT [COUNT] [TCP_FLAGS].

PROTO is tcp or udp; TCP_FLAGS is a string of S, A, F, R, P (default "SA",
a SYN-ACK). The packets go out through a raw socket with IP_HDRINCL, so the
source port may be one a local server already holds, e.g. a NAT real server
"answering" from its service port to a client that has no session. The
kernel routes them as usual (NAT real servers: via the gateway). Prints the
number of packets sent. An IPv6 SRC (it has a colon) sends IPv6: a raw
IPPROTO_RAW socket of AF_INET6 takes the whole IPv6 header as well (hop
limit 64, no extension header)."""
import socket
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


proto, src, sport, dst, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
count = int(sys.argv[6]) if len(sys.argv) > 6 else 1
flag_names = sys.argv[7] if len(sys.argv) > 7 else "SA"
v6 = ":" in src
fam = socket.AF_INET6 if v6 else socket.AF_INET
sip, dip = socket.inet_pton(fam, src), socket.inet_pton(fam, dst)
payload = b"no session here"
if proto == "udp":
    num = 17
    l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    check_at = 6
elif proto == "tcp":
    num = 6
    bits = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
    flags = sum(bits[c] for c in flag_names)
    # seq, ack, data offset 5 words, flags, window, checksum, urgent
    l4 = struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000 if flags & 0x10 else 0, 5 << 4, flags, 65535, 0, 0)
    check_at = 16
else:
    sys.exit(f"unknown protocol {proto}")
if v6:
    # RFC 8200 §8.1: the upper-layer length and next header, 32 bits each.
    pseudo = sip + dip + struct.pack("!IxxxB", len(l4), num)
else:
    pseudo = sip + dip + struct.pack("!BBH", 0, num, len(l4))
c = csum(pseudo + l4)
l4 = l4[:check_at] + struct.pack("!H", c or 0xFFFF) + l4[check_at + 2:]
if v6:
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(l4), num, 64, sip, dip)
else:
    # IPv4 header: the kernel fills in the checksum (and the ID when 0).
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, num, 0, sip, dip)
s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(count):
    s.sendto(ip + l4, (dst, 0))
print(count)
