#!/usr/bin/env python3
"""Sends one datagram from a connected UDP socket to HOST:PORT (IPv4 or
IPv6) and reads:
prints "refused" (ECONNREFUSED: an ICMP port unreachable came back),
"timeout" (nothing within 20 s) or "data N"."""
import socket
import sys

family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(20)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"anyone there?")
try:
    data = s.recv(2048)
    print(f"data {len(data)}", flush=True)
except ConnectionRefusedError:
    print("refused", flush=True)
except socket.timeout:
    print("timeout", flush=True)
