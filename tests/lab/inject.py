#!/usr/bin/env python3
"""Injects hand-made malformed Ethernet frames on IFACE toward DST_MAC.

Used by the labs to show that bad frames are counted and dropped while real
traffic keeps flowing. Each frame is an Ethernet header plus a broken IPv4
packet: truncated header, IHL below 5, total length beyond the frame, bad
header checksum."""
import socket
import sys

iface, dst_mac, src_ip, dst_ip = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
count = int(sys.argv[5]) if len(sys.argv) > 5 else 1


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def csum(b):
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
src = sock.getsockname()[4]
eth = mac(dst_mac) + src + b"\x08\x00"
sip, dip = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)


def ip_header(ver_ihl=0x45, total=40, good_csum=True):
    h = bytes([ver_ihl, 0]) + total.to_bytes(2, "big") + b"\x00\x01\x40\x00\x40\x06\x00\x00" + sip + dip
    c = csum(h) if good_csum else 0x1234
    return h[:10] + c.to_bytes(2, "big") + h[12:]


frames = [
    eth + ip_header()[:12],                                  # truncated IPv4 header
    eth + ip_header(ver_ihl=0x44) + b"\x00" * 20,            # IHL 4
    eth + ip_header(total=1400) + b"\x00" * 20,              # total length beyond the frame
    eth + ip_header(good_csum=False) + b"\x00" * 20,         # bad header checksum
]
for _ in range(count):
    for f in frames:
        sock.send(f.ljust(60, b"\x00"))
print(len(frames) * count)
