#!/usr/bin/env python3
"""A UDP real server that reads UOA as gatewayd sends it: the PROXY v2
header (haproxy's proxy-protocol.txt, AF_INET/DGRAM) before the payload of
a session's first datagram. It remembers the client per peer address
(gatewayd's local address:port) and answers every datagram with
"CIP:CPORT PAYLOAD" (or "- PAYLOAD" for a peer it never learned).
Prints "ready" once bound. Usage: uoa_server.py PORT
"""
import socket
import struct
import sys

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
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
    s.sendto(("%s %s" % (clients.get(peer, "-"), data.decode(errors="replace"))).encode(), peer)
