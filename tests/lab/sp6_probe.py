#!/usr/bin/env python3
"""The IPv6 twin of sp_probe.py. Sends one SYN (MSS 1440, SACK permitted,
timestamps, window scale 6) from the client's own address to DST:DPORT
with scapy and prints what answers it:
    FLAGS SRC.SPORT MSS WSCALE SACK TSVAL_LOW6 TSECR
(a SYNPROXY gateway answers from the VIP itself, its TSval's low bits
carrying the client's window scale and SACK as Linux's syncookies).
Then COUNT packets with FLAGS (S, A, R, F, P) to DST:DPORT from spoofed
sources, SPOOF plus a random 32-bit interface part (addresses no host
holds), each from its own port with random sequence and acknowledgement
numbers (no valid cookie); prints the number sent.
Usage: sp6_probe.py DST DPORT COUNT FLAGS SPOOF   (needs python3-scapy)
"""
import ipaddress
import random
import sys

from scapy.all import IPv6, TCP, send, sr1

dst, dport, count, flags, spoof = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
syn = IPv6(dst=dst) / TCP(
    sport=33333,
    dport=dport,
    flags="S",
    seq=1000,
    options=[("MSS", 1440), ("SAckOK", b""), ("Timestamp", (4242, 0)), ("NOP", None), ("WScale", 6)],
)
a = sr1(syn, timeout=3, verbose=0)
if a is None or TCP not in a:
    print("none", flush=True)
else:
    o = dict((k, v) for k, v in a[TCP].options)
    ts = o.get("Timestamp", (0, 0))
    print(
        a[TCP].sprintf("%TCP.flags%"),
        "%s.%d" % (a[IPv6].src, a[TCP].sport),
        o.get("MSS", 0),
        o.get("WScale", -1),
        int("SAckOK" in o),
        ts[0] & 0x3F,
        ts[1],
        flush=True,
    )

base = int(ipaddress.IPv6Address(spoof))
rnd = random.Random(7)
pkts = []
for i in range(count):
    src = str(ipaddress.IPv6Address(base + rnd.getrandbits(32)))
    t = TCP(sport=20000 + i % 40000, dport=dport, flags=flags, seq=rnd.getrandbits(32),
            ack=rnd.getrandbits(32), window=512)
    pkts.append(IPv6(src=src, dst=dst) / t)
send(pkts, verbose=0)
print(count, flush=True)
