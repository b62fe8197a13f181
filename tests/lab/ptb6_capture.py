#!/usr/bin/env python3
"""Captures ICMPv6 Packet Too Big messages on IFACE with scapy (a parser
independent of gatewayd's) and prints one line per message as key=value
words:
    src=2001:db8::1 dst=2001:db8::2 hlim=255 mtu=1400 csum=ok len=ok
    quoted_src=2001:db8::2 quoted_dst=2001:db8::100 quoted_dport=80
`csum` is whether the ICMPv6 checksum verifies, recomputed by scapy; `len`
whether the payload length matches the bytes captured; the `quoted_*`
fields are the quoted packet's (RFC 4443 §3.2).
Exits after COUNT messages or TIMEOUT seconds; prints "ready" once the
capture runs.
Usage: ptb6_capture.py IFACE COUNT TIMEOUT   (needs python3-scapy)
"""
import sys

from scapy.all import ICMPv6PacketTooBig, IPerror6, IPv6, raw

from capture import capture

iface, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])


def keep(p):
    return p.haslayer(IPv6) and p.haslayer(ICMPv6PacketTooBig)


def describe(p):
    ip = p[IPv6]
    ptb = ip[ICMPv6PacketTooBig]
    again = IPv6(raw(ip))
    del again[ICMPv6PacketTooBig].cksum
    again = IPv6(raw(again))
    words = [
        f"src={ip.src}", f"dst={ip.dst}", f"hlim={ip.hlim}", f"mtu={ptb.mtu}",
        f"csum={'ok' if again[ICMPv6PacketTooBig].cksum == ptb.cksum else 'bad'}",
        f"len={'ok' if ip.plen == len(raw(ip.payload)) else 'bad'}",
    ]
    if ptb.haslayer(IPerror6):
        q = ptb[IPerror6]
        words += [f"quoted_src={q.src}", f"quoted_dst={q.dst}"]
        if hasattr(q.payload, "dport"):
            words.append(f"quoted_dport={q.payload.dport}")
    return " ".join(words)


for p in capture(iface, keep, count, timeout):
    print(describe(p), flush=True)
