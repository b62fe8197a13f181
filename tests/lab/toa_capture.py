#!/usr/bin/env python3
"""Captures the client's packets toward PORT on IFACE with scapy (a parser
independent of gatewayd's) and prints one line per TCP packet to PORT:
    FLAGS SRC:SPORT OPTIONS_HEX PAYLOAD_LEN
Exits after COUNT packets or TIMEOUT seconds; prints "ready" once the
capture runs. tests/e2e/client_addr_lab.rs finds the TOA option (kind 254,
length 8: client port and address) in OPTIONS_HEX; client_addr6_lab.rs the
IPv6 client's (length 20), over IPv6 (FULLNAT66) or IPv4 (NAT64).
Usage: toa_capture.py IFACE PORT COUNT TIMEOUT   (needs python3-scapy)
"""
import sys

from scapy.all import IP, TCP, IPv6

from capture import capture

iface, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
seen = []


def keep(p):
    return (IP in p or IPv6 in p) and TCP in p and p[TCP].dport == port


for p in capture(iface, keep, count, timeout):
    t = p[TCP]
    raw = bytes(t)
    opts = raw[20 : t.dataofs * 4]
    src = p[IP].src if IP in p else p[IPv6].src
    print(t.sprintf("%TCP.flags%"), "%s:%d" % (src, t.sport), opts.hex() or "-", len(t.payload), flush=True)
