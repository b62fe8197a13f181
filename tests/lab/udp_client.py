#!/usr/bin/env python3
"""Sends N UDP datagrams to HOST:PORT, each from a new socket (a new flow),
and prints one line per answer ("rs1 198.18.1.10:5000") or "timeout"."""
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    try:
        s.sendto(f"hello {i}".encode(), (host, port))
        data, peer = s.recvfrom(2048)
        print(f"{data.decode().strip()} from {peer[0]}:{peer[1]}")
    except socket.timeout:
        print("timeout")
    finally:
        s.close()
