#!/usr/bin/python3
"""Hostile IPv6 fragments toward a VIP, built with scapy (for frag6_lab).

    frag6_attack.py IFACE DST_MAC SRC DST PORT

Sends, out IFACE to DST_MAC, from SRC to DST:
  - an overlap (RFC 5722): a first UDP fragment of 16 bytes (offset 0, M
    set) and a last one at offset 8 that rewrites its second half;
  - a tiny first fragment (RFC 7112): a TCP first fragment holding only 8
    bytes of the 20-byte TCP header, then the rest of the header.
Prints the number of frames sent."""
import sys

from scapy.all import IPv6, IPv6ExtHdrFragment, Ether, Raw, UDP, TCP, sendp, raw

iface, dst_mac, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
frames = []

udp = raw(UDP(sport=40001, dport=port, len=8 + 32) / Raw(b"A" * 32))
frames.append(Ether(dst=dst_mac) / IPv6(src=src, dst=dst) /
              IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=0x1234) / Raw(udp[:16]))
frames.append(Ether(dst=dst_mac) / IPv6(src=src, dst=dst) /
              IPv6ExtHdrFragment(nh=17, offset=1, m=0, id=0x1234) / Raw(b"B" * 32))

tcp = raw(TCP(sport=40002, dport=port, flags="S") / Raw(b"C" * 16))
frames.append(Ether(dst=dst_mac) / IPv6(src=src, dst=dst) /
              IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=0x5678) / Raw(tcp[:8]))
frames.append(Ether(dst=dst_mac) / IPv6(src=src, dst=dst) /
              IPv6ExtHdrFragment(nh=6, offset=1, m=0, id=0x5678) / Raw(tcp[8:]))

sendp(frames, iface=iface, verbose=False)
print(len(frames))
