#!/usr/bin/env python3
"""Counts, with scapy, the TCP packets (IPv4 or IPv6) toward PORT on IFACE for SECONDS:
prints "ready" once the capture runs, then "SYNS OTHERS" (SYNs without
ACK, and every other TCP packet to PORT). tests/e2e/synproxy_lab.rs counts
at the real server what a SYNPROXY service let through.
Usage: syn_count.py IFACE PORT SECONDS   (needs python3-scapy)
"""
import sys
import time

from scapy.all import IP, TCP, AsyncSniffer, IPv6

iface, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
counts = [0, 0]


def see(p):
    if (IP in p or IPv6 in p) and TCP in p and p[TCP].dport == port:
        f = int(p[TCP].flags)
        counts[0 if (f & 0x12) == 0x02 else 1] += 1


sn = AsyncSniffer(iface=iface, prn=see, store=False, timeout=secs)
sn.start()
time.sleep(0.5)
print("ready", flush=True)
sn.join()
print(counts[0], counts[1], flush=True)
