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
Inside GRE (scapy's GRE layer, RFC 2784) or GUE (UDP to GUE_PORT, 6080
unless set in the environment, then the 4-byte GUE header decoded here
after draft-ietf-intarea-gue §3.1) it also prints `tunnel=gre|gue|ipip`,
for GRE `gre_proto=0x800|0x86dd gre_csum=ok|bad|none` (scapy recomputes
the checksum), for GUE `gue_sport= gue_dport= gue_ver= gue_hlen=
gue_proto= gue_csum=ok|bad|none` (the outer UDP checksum, recomputed by
scapy over the outer pseudo header).
Exits after COUNT packets or TIMEOUT seconds; prints "ready" once the
capture runs.
Usage: ip_capture.py IFACE PORT COUNT TIMEOUT   (needs python3-scapy)
"""
import os
import sys

from scapy.all import GRE, IP, TCP, UDP, IPv6, raw

from capture import capture

iface, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])


GUE_PORT = int(os.environ.get("GUE_PORT", "6080"))


def gue_inner(udp):
    """The inner IP packet of a GUE datagram (variant 0), else None."""
    b = bytes(udp.payload)
    if len(b) < 4 or b[0] >> 6 != 0:
        return None
    body = b[4 + (b[0] & 0x1F) * 4:]
    if b[1] == 4 and body[:1] and body[0] >> 4 == 4:
        return IP(body)
    if b[1] == 41 and body[:1] and body[0] >> 4 == 6:
        return IPv6(body)
    return None


def innermost(p):
    """(outer IP layer or None, the IP layer that carries TCP/UDP, tunnel
    words)."""
    ip = p.getlayer(IPv6) or p.getlayer(IP)
    if ip is None:
        return None, None, []
    inner = ip.payload
    if isinstance(inner, (IPv6, IP)):
        return ip, inner, ["tunnel=ipip"]
    if isinstance(inner, GRE) and isinstance(inner.payload, (IPv6, IP)):
        gre = inner
        if gre.chksum_present:
            again = GRE(raw(gre))
            del again.chksum
            ok = "ok" if GRE(raw(again)).chksum == gre.chksum else "bad"
        else:
            ok = "none"
        return ip, gre.payload, ["tunnel=gre", f"gre_proto={hex(gre.proto)}", f"gre_csum={ok}"]
    if isinstance(inner, UDP) and inner.dport == GUE_PORT:
        body = gue_inner(inner)
        if body is not None:
            b = bytes(inner.payload)
            if inner.chksum == 0:
                ok = "none"
            else:
                again = type(ip)(raw(ip))
                del again.payload.chksum
                ok = "ok" if type(ip)(raw(again)).payload.chksum == inner.chksum else "bad"
            words = ["tunnel=gue", f"gue_sport={inner.sport}", f"gue_dport={inner.dport}",
                     f"gue_ver={b[0] >> 6}", f"gue_hlen={b[0] & 0x1F}", f"gue_proto={b[1]}",
                     f"gue_csum={ok}"]
            return ip, body, words
    return None, ip, []


def l4_of(ip):
    for cls in (TCP, UDP):
        if isinstance(ip.payload, cls):
            return ip.payload
    return None


def keep(p):
    _, ip, _ = innermost(p)
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
    outer, ip, tunnel = innermost(p)
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
                  f"outer_hlim={outer.hlim if ov == 6 else outer.ttl}"] + tunnel
    return " ".join(words)


for p in capture(iface, keep, count, timeout):
    print(describe(p), flush=True)
