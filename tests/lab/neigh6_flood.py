#!/usr/bin/env python3
"""Floods IFACE with IPv6 neighbour discovery from made-up neighbours:
IFACE MODE TARGET COUNT BASE. Each frame comes from a new MAC and a new
IPv6 address BASE+i (e.g. BASE 2001:db8::1:0 for neighbours on the
gateway's prefix, 2001:db9:: for off-link ones).

MODE ns: a neighbour solicitation for TARGET (to its solicited-node group,
hop limit 255, with the sender's source link-layer option).
MODE na: an unsolicited advertisement of BASE+i to all-nodes (ff02::1,
override flag, target link-layer option); TARGET is unused.

The ICMPv6 checksum is computed here (RFC 4443 §2.3 over the RFC 8200 §8.1
pseudo header), independently of gatewayd. Prints the frames sent."""
import ipaddress
import socket
import struct
import sys

iface, mode, target, count, base = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
base = int(ipaddress.IPv6Address(base))


def checksum(src, dst, body):
    pseudo = src + dst + struct.pack("!I3xB", len(body), 58)
    data = pseudo + body + (b"\0" if len(body) % 2 else b"")
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


for i in range(count):
    mac = bytes([0x02, 0xbc, 0, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
    src = ipaddress.IPv6Address(base + i).packed
    if mode == "ns":
        t = ipaddress.IPv6Address(target).packed
        dst = bytes.fromhex("ff0200000000000000000001ff") + t[13:]
        body = struct.pack("!BBHI", 135, 0, 0, 0) + t + bytes([1, 1]) + mac
    else:
        dst = ipaddress.IPv6Address("ff02::1").packed
        body = struct.pack("!BBHI", 136, 0, 0, 0x20 << 24) + src + bytes([2, 1]) + mac
    body = body[:2] + struct.pack("!H", checksum(src, dst, body)) + body[4:]
    ip = struct.pack("!IHBB", 6 << 28, len(body), 58, 255) + src + dst
    eth = b"\x33\x33" + dst[12:] + mac + b"\x86\xdd"
    sock.send(eth + ip + body)
print(count)
