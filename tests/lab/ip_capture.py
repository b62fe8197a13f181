#!/usr/bin/env python3
"""Captures TCP/UDP packets toward PORT on IFACE with scapy (a parser
independent of gatewayd's) and prints one line per packet, IPv4 or IPv6,
also inside IPv6-in-IPv6 or IP-in-IP (then the outer header is described
too), as key=value words:
    ip=6 src=2001:db8:1::10 dst=2001:db8:1::2 hlim=63 l4=tcp sport=40000
    dport=80 csum=ok len=ok [outer=6 outer_src=... outer_dst=... outer_hlim=64]
`hlim` is IPv6's hop limit or IPv4's TTL; `csum` is whether the TCP/UDP
checksum (and for IPv4 the header checksum) verifies, recomputed by scapy;
`len` whether the IP length fields match the bytes captured.
Exits after COUNT packets or TIMEOUT seconds; prints "ready" once the
capture runs.
Usage: ip_capture.py IFACE PORT COUNT TIMEOUT   (needs python3-scapy)
"""
import sys

from scapy.all import IP, TCP, UDP, IPv6, raw

from capture import capture

iface, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])


def innermost(p):
    """(outer IP layer or None, the IP layer that carries TCP/UDP)."""
    ip = p.getlayer(IPv6) or p.getlayer(IP)
    if ip is None:
        return None, None
    inner = ip.payload
    if isinstance(inner, (IPv6, IP)):
        return ip, inner
    return None, ip


def l4_of(ip):
    for cls in (TCP, UDP):
        if isinstance(ip.payload, cls):
            return ip.payload
    return None


def keep(p):
    _, ip = innermost(p)
    if ip is None:
        return False
    l4 = l4_of(ip)
    return l4 is not None and l4.dport == port


def checks(ip, l4):
    """(checksums verify, lengths match): scapy parses the packet's bytes
    again with the checksums deleted, so it computes them itself."""
    cls = type(ip)
    again = cls(raw(ip))
    if cls is IP:
        del again.chksum
    del again.payload.chksum
    again = cls(raw(again))
    hdr_ok = cls is IPv6 or again.chksum == ip.chksum
    if cls is IPv6:
        len_ok = ip.plen == len(raw(ip.payload))
    else:
        len_ok = ip.len == ip.ihl * 4 + len(raw(ip.payload))
    return hdr_ok and again.payload.chksum == l4.chksum, len_ok


def describe(p):
    outer, ip = innermost(p)
    l4 = l4_of(ip)
    csum_ok, len_ok = checks(ip, l4)
    version = 6 if isinstance(ip, IPv6) else 4
    hlim = ip.hlim if version == 6 else ip.ttl
    words = [
        f"ip={version}", f"src={ip.src}", f"dst={ip.dst}", f"hlim={hlim}",
        f"l4={'tcp' if isinstance(l4, TCP) else 'udp'}", f"sport={l4.sport}", f"dport={l4.dport}",
        f"csum={'ok' if csum_ok else 'bad'}", f"len={'ok' if len_ok else 'bad'}",
    ]
    if outer is not None:
        ov = 6 if isinstance(outer, IPv6) else 4
        words += [f"outer={ov}", f"outer_src={outer.src}", f"outer_dst={outer.dst}",
                  f"outer_hlim={outer.hlim if ov == 6 else outer.ttl}"]
    return " ".join(words)


for p in capture(iface, keep, count, timeout):
    print(describe(p), flush=True)
