#!/usr/bin/env python3
"""Sends N UDP datagrams to HOST:PORT, each from a new socket (a new flow),
and prints one line per answer ("rs1 198.18.1.10:5000 from 198.18.0.100:80")
or "timeout". With --local, each line ends with " local ADDR:PORT", the
client socket's own address, so a test can compare it with what the real
server saw. Every socket stays open until the end, so the kernel never
hands a closed flow's port to a later one: N datagrams are N distinct
flows (N sessions at the gateway). An IPv6 HOST is reached over IPv6;
addresses are printed without brackets."""
import socket
import sys

args = [a for a in sys.argv[1:] if a != "--local"]
show_local = "--local" in sys.argv[1:]
host, port, n = args[0], int(args[1]), int(args[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
held = []
for i in range(n):
    s = socket.socket(family, socket.SOCK_DGRAM)
    held.append(s)
    s.settimeout(2.0)
    try:
        s.sendto(f"hello {i}".encode(), (host, port))
        data, peer = s.recvfrom(2048)
        line = f"{data.decode().strip()} from {peer[0]}:{peer[1]}"
        if show_local:
            # The source address the kernel chose for the datagram.
            probe = socket.socket(family, socket.SOCK_DGRAM)
            probe.connect((host, port))
            line += f" local {probe.getsockname()[0]}:{s.getsockname()[1]}"
            probe.close()
        print(line, flush=True)
    except socket.timeout:
        print("timeout", flush=True)
for s in held:
    s.close()
