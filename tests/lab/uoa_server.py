#!/usr/bin/env python3
"""A UDP real server that reads UOA as gatewayd sends it: the PROXY v2
header (haproxy's proxy-protocol.txt, AF_INET/DGRAM, or AF_INET6/DGRAM for
an IPv6 client) before the payload of a session's first datagram. It
remembers the client per peer address (gatewayd's local address:port) and
answers every datagram with "CIP:CPORT PAYLOAD" (or "- PAYLOAD" for a peer
it never learned; an IPv6 CIP without brackets). Prints "ready" once bound.
Usage: uoa_server.py PORT [BIND]   (BIND: 0.0.0.0 by default, :: for IPv6)
"""
import socket
import struct
import sys

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
bind = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"
s = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((bind, int(sys.argv[1])))
print("ready", flush=True)
clients = {}
while True:
    data, peer = s.recvfrom(65535)
    if data.startswith(SIG) and len(data) >= 28:
        ver_cmd, fam, ln = struct.unpack("!BBH", data[12:16])
        if ver_cmd == 0x21 and fam == 0x12 and ln >= 12:
            src, _dst, sport, _dport = struct.unpack("!4s4sHH", data[16:28])
            clients[peer] = "%s:%d" % (socket.inet_ntoa(src), sport)
            data = data[16 + ln :]
        elif ver_cmd == 0x21 and fam == 0x22 and ln >= 36 and len(data) >= 52:
            src, _dst, sport, _dport = struct.unpack("!16s16sHH", data[16:52])
            clients[peer] = "%s:%d" % (socket.inet_ntop(socket.AF_INET6, src), sport)
            data = data[16 + ln :]
    s.sendto(("%s %s" % (clients.get(peer, "-"), data.decode(errors="replace"))).encode(), peer)
