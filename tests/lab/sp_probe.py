#!/usr/bin/env python3
"""Sends one SYN (MSS 1460, SACK permitted, timestamps, window scale 6)
to DST:DPORT with scapy and prints what answers it:
    FLAGS SRC:SPORT MSS WSCALE SACK TSVAL_LOW6 TSECR
(a SYNPROXY gateway answers from the VIP itself, its TSval's low bits
carrying the client's window scale and SACK as Linux's syncookies).
Then COUNT packets with FLAGS (S, A, R, F) from the client's own address
to DST:DPORT, each from its own port with random sequence and
acknowledgement numbers (no valid cookie); prints the number sent.
Usage: sp_probe.py DST DPORT COUNT FLAGS   (needs python3-scapy)
"""
import random
import socket
import struct
import sys

from scapy.all import IP, TCP, sr1

dst, dport, count, flags = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
syn = IP(dst=dst) / TCP(
    sport=33333,
    dport=dport,
    flags="S",
    seq=1000,
    options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (4242, 0)), ("NOP", None), ("WScale", 6)],
)
a = sr1(syn, timeout=3, verbose=0)
if a is None or TCP not in a:
    print("none", flush=True)
else:
    o = dict((k, v) for k, v in a[TCP].options)
    ts = o.get("Timestamp", (0, 0))
    print(
        a[TCP].sprintf("%TCP.flags%"),
        "%s:%d" % (a[IP].src, a[TCP].sport),
        o.get("MSS", 0),
        o.get("WScale", -1),
        int("SAckOK" in o),
        ts[0] & 0x3F,
        ts[1],
        flush=True,
    )

bits = sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[c] for c in flags)
src = socket.inet_aton(IP(dst=dst).src)
dip = socket.inet_aton(dst)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
rnd = random.Random(7)
for i in range(count):
    sport = 20000 + i % 40000
    tcp = struct.pack("!HHIIBBHHH", sport, dport, rnd.getrandbits(32), rnd.getrandbits(32), 5 << 4, bits, 512, 0, 0)
    c = csum(src + dip + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xFFFF, 0, 64, 6, 0, src, dip)
    sock.sendto(ip + tcp, (dst, 0))
print(count, flush=True)
