#!/usr/bin/env python3
"""Reads translated packets (one hex string a line) from stdin, parses each
with scapy, checks every checksum scapy knows how to compute (by deleting
the field and letting scapy rebuild it), and prints one line of fields per
packet for nat64::tests::scapy_reads_what_we_translate to compare.

A packet whose checksum scapy computes differently prints "BAD <layer>".
"""
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrFragment,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6DestUnreach,
    IPerror6,
)


def describe(raw):
    out = []
    if raw[0] >> 4 == 4:
        p = IP(raw)
        err = IPerror in p
        # A fragment's TCP/UDP checksum covers the whole datagram.
        frag = p.flags.MF or p.frag != 0
        for layer in (IP, TCP, UDP, ICMP):
            if layer in p and not ((err or frag) and layer in (TCP, UDP)) and not (layer is UDP and p[UDP].chksum == 0):
                q = IP(raw)
                del q[layer].chksum
                if bytes(q) != raw:
                    out.append("BAD " + layer.__name__)
        out.append(f"v4 {p.src}>{p.dst} p{p.proto} ttl{p.ttl} tos{p.tos} id{p.id} f{int(p.flags)} o{p.frag} len{p.len}")
        if TCP in p and not err:
            out.append(f"tcp {p[TCP].sport}>{p[TCP].dport}")
        if UDP in p and not err:
            out.append(f"udp {p[UDP].sport}>{p[UDP].dport}")
        if ICMP in p:
            i = p[ICMP]
            out.append(f"icmp t{i.type} c{i.code}")
            if i.type == 3 and i.code == 4:
                out.append(f"mtu{i.nexthopmtu}")
            if i.type in (0, 8):
                out.append(f"echo {i.id}/{i.seq}")
        if IPerror in p:
            e = p[IPerror]
            q = IP(raw)
            del q[IPerror].chksum
            if bytes(q) != raw:
                out.append("BAD IPerror")
            out.append(f"in {e.src}>{e.dst} p{e.proto} len{e.len}")
            if TCPerror in p:
                out.append(f"in-tcp {p[TCPerror].sport}>{p[TCPerror].dport}")
            if UDPerror in p:
                out.append(f"in-udp {p[UDPerror].sport}>{p[UDPerror].dport}")
    else:
        p = IPv6(raw)
        err = IPerror6 in p
        frag = IPv6ExtHdrFragment in p
        for layer in (TCP, UDP, ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6PacketTooBig, ICMPv6DestUnreach):
            if layer in p and not ((err or frag) and layer in (TCP, UDP)):
                q = IPv6(raw)
                delattr(q[layer], "cksum" if "cksum" in q[layer].fields else "chksum")
                if bytes(q) != raw:
                    out.append("BAD " + layer.__name__)
        out.append(f"v6 {p.src}>{p.dst} nh{p.nh} hlim{p.hlim} tc{p.tc} fl{p.fl} plen{p.plen}")
        if IPv6ExtHdrFragment in p and not err:
            f = p[IPv6ExtHdrFragment]
            out.append(f"frag o{f.offset} m{f.m} id{f.id} nh{f.nh}")
        if TCP in p and not err:
            out.append(f"tcp {p[TCP].sport}>{p[TCP].dport}")
        if UDP in p and not err:
            out.append(f"udp {p[UDP].sport}>{p[UDP].dport}")
        for layer in (ICMPv6EchoRequest, ICMPv6EchoReply):
            if layer in p:
                out.append(f"icmp6 t{p[layer].type} echo {p[layer].id}/{p[layer].seq}")
        if ICMPv6PacketTooBig in p:
            out.append(f"icmp6 t2 mtu{p[ICMPv6PacketTooBig].mtu}")
        if ICMPv6DestUnreach in p:
            out.append(f"icmp6 t1 c{p[ICMPv6DestUnreach].code}")
        if IPerror6 in p:
            e = p[IPerror6]
            out.append(f"in {e.src}>{e.dst} nh{e.nh} plen{e.plen}")
            if TCPerror in p:
                out.append(f"in-tcp {p[TCPerror].sport}>{p[TCPerror].dport}")
            if UDPerror in p:
                out.append(f"in-udp {p[UDPerror].sport}>{p[UDPerror].dport}")
    return " ".join(out)


for line in sys.stdin:
    line = line.strip()
    if line:
        print(describe(bytes.fromhex(line)))
