#!/usr/bin/env python3
"""Floods IFACE with ARP requests for TARGET from made-up senders:
IFACE TARGET COUNT NET. Each request comes from a new MAC and a new sender
address NET.x.y (NET is the first two octets, e.g. "10.0" for senders on no
connected subnet, or "198.18" with the third octet kept at 0 for senders
inside the client subnet: 198.18.0.10-49). Prints the number of frames sent."""
import socket
import struct
import sys

iface, target, count, net = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
tpa = socket.inet_aton(target)
a, b = (int(x) for x in net.split("."))
for i in range(count):
    mac = bytes([0x02, 0xbb, 0, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
    if a == 198:
        spa = bytes([198, 18, 0, 10 + i % 40])
    else:
        spa = bytes([a, b, (i >> 8) & 0xFF, i & 0xFF])
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + spa + b"\0" * 6 + tpa
    frame = b"\xff" * 6 + mac + b"\x08\x06" + arp
    sock.send(frame + b"\0" * (60 - len(frame)))
print(count)
