#!/usr/bin/env python3
"""Sends one SYN (MSS of a 1500-byte MTU: 1460 over IPv4, 1440 over IPv6;
SACK permitted, timestamps, window scale 6) from the client's own address
to DST:DPORT with scapy and prints what answers it:
    FLAGS SRC:SPORT MSS WSCALE SACK TSVAL_LOW6 TSECR
(SRC:SPORT as [SRC]:SPORT for IPv6; a SYNPROXY gateway answers from the
VIP itself, its TSval's low bits carrying the client's window scale and
SACK as Linux's syncookies).
Then COUNT packets with FLAGS (S, A, R, F, P) to DST:DPORT, each from its
own port with random sequence and acknowledgement numbers (no valid
cookie), from the client's own address or, with --spoof NET (such as
2001:db8::5:0:0/96), from random addresses in NET that no host holds; as
fast as it can or, with --pps N, N packets a second; prints the number
sent. The family (IPv4 or IPv6) is DST's.
Usage: sp_probe.py DST DPORT COUNT FLAGS [--spoof NET] [--pps N]
(needs python3-scapy)
"""
import argparse
import ipaddress
import random
import socket
import struct
import time

from scapy.all import IP, TCP, IPv6, sr1

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("dst", type=ipaddress.ip_address)
ap.add_argument("dport", type=int)
ap.add_argument("count", type=int)
ap.add_argument("flags")
ap.add_argument("--spoof", type=ipaddress.ip_network, help="the flood's sources: random addresses in this network")
ap.add_argument("--pps", type=float, help="the flood's packets a second (default: as fast as it can)")
args = ap.parse_args()
if not set(args.flags) <= set("FSRPA"):
    ap.error(f"FLAGS {args.flags!r}: only F, S, R, P, A")
if args.spoof is not None and args.spoof.version != args.dst.version:
    ap.error(f"--spoof {args.spoof} is not of DST {args.dst}'s family")
dst, dport, count, flags, spoof = str(args.dst), args.dport, args.count, args.flags, args.spoof
v6 = args.dst.version == 6
L3 = IPv6 if v6 else IP

syn = L3(dst=dst) / TCP(
    sport=33333,
    dport=dport,
    flags="S",
    seq=1000,
    options=[
        ("MSS", 1500 - len(L3()) - len(TCP())),
        ("SAckOK", b""),
        ("Timestamp", (4242, 0)),
        ("NOP", None),
        ("WScale", 6),
    ],
)
a = sr1(syn, timeout=3, verbose=0)
if a is None or TCP not in a:
    print("none", flush=True)
else:
    o = dict((k, v) for k, v in a[TCP].options)
    ts = o.get("Timestamp", (0, 0))
    print(
        a[TCP].sprintf("%TCP.flags%"),
        ("[%s]:%d" if v6 else "%s:%d") % (a[L3].src, a[TCP].sport),
        o.get("MSS", 0),
        o.get("WScale", -1),
        int("SAckOK" in o),
        ts[0] & 0x3F,
        ts[1],
        flush=True,
    )

# The flood, packed by hand (scapy builds one in most of a millisecond) and
# sent through a raw socket of DST's family that takes the IP header as
# given (IPPROTO_RAW), source addresses included.
bits = sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[c] for c in flags)
family = socket.AF_INET6 if v6 else socket.AF_INET
dip = socket.inet_pton(family, dst)
own = socket.inet_pton(family, syn.src)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def packet(src, sport, seq, ack, ident):
    """The IP header and a 20-byte TCP segment with FLAGS, window 512."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, 512, 0, 0)
    if v6:
        pseudo = struct.pack("!16s16sIxxxB", src, dip, len(tcp), 6)
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, src, dip)
    else:
        pseudo = struct.pack("!4s4sxBH", src, dip, 6, len(tcp))
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0, 64, 6, 0, src, dip)
    return ip + tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]


sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
rnd = random.Random(7)
start = time.monotonic()
for i in range(count):
    if args.pps:
        early = start + i / args.pps - time.monotonic()
        if early > 0:
            time.sleep(early)
    src = own
    if spoof is not None:
        host = rnd.getrandbits(spoof.max_prefixlen - spoof.prefixlen)
        src = (spoof.network_address + host).packed
    sock.sendto(packet(src, 20000 + i % 40000, rnd.getrandbits(32), rnd.getrandbits(32), i & 0xFFFF), (dst, 0))
print(count, flush=True)
