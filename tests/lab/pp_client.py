#!/usr/bin/env python3
"""The client side of pp_server.py (tests/e2e/client_addr_lab.rs).

Usage: pp_client.py HOST PORT banner          -> prints the banner line (read
                                                 before sending anything)
       pp_client.py HOST PORT get N           -> "N SHA256" of what came back
       pp_client.py HOST PORT put N           -> "SHA256 <server's answer>"
The bytes of GET/PUT N are pseudo-random, seeded by N (as pp_server.py).
"""
import hashlib
import random
import socket
import sys

host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = socket.create_connection((host, port), timeout=30)
if what == "banner":
    f = c.makefile("rb")
    print(f.readline().decode().strip())
    c.sendall(b"QUIT\r\n")
    print(f.readline().decode().strip())
elif what == "get":
    n = int(sys.argv[4])
    c.sendall(b"GET %d\n" % n)
    h, got = hashlib.sha256(), 0
    while True:
        x = c.recv(1 << 16)
        if not x:
            break
        h.update(x)
        got += len(x)
    print(got, h.hexdigest())
else:
    n = int(sys.argv[4])
    c.sendall(b"PUT %d\n" % n)
    rnd, h, left = random.Random(n), hashlib.sha256(), n
    while left:
        k = min(left, 1 << 16)
        b = rnd.randbytes(k)
        h.update(b)
        c.sendall(b)
        left -= k
    f = c.makefile("rb")
    print(h.hexdigest(), f.readline().decode().strip())
