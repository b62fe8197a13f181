#!/usr/bin/env python3
"""Holds N HTTP connections to HOST:PORT open across a list of events.

Opens N connections and sends the first line of a GET on each, prints
"open"; then for each GO file in turn waits until it exists, sends one more
header line on every connection, waits until the peer acknowledged all of it
(the socket's send queue is empty, so the bytes crossed the gateway) and
prints "step K"; after the last, ends the requests and prints one line per
connection in order: "<status> <body-intact> <body>", where body-intact is
"intact" when the body has exactly Content-Length bytes.
Usage: held_gets.py HOST PORT N GO1 [GO2 ...]
"""
import fcntl
import os
import socket
import struct
import sys
import termios
import time

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gos = sys.argv[4:]
conns = [socket.create_connection((host, port), timeout=30) for _ in range(n)]
for s in conns:
    s.sendall(b"GET / HTTP/1.0\r\n")


def unacked(s):
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


def drain(what):
    deadline = time.time() + 20
    while any(unacked(s) for s in conns):
        if time.time() > deadline:
            print(f"{what}: not acknowledged", flush=True)
            sys.exit(1)
        time.sleep(0.02)


drain("open")
print("open", flush=True)
for k, go in enumerate(gos, 1):
    deadline = time.time() + 120
    while not os.path.exists(go):
        if time.time() > deadline:
            print(f"step {k}: {go} never came", flush=True)
            sys.exit(1)
        time.sleep(0.05)
    for s in conns:
        s.sendall(f"X-Step: {k}\r\n".encode())
    drain(f"step {k}")
    print(f"step {k}", flush=True)
for s in conns:
    s.sendall(b"\r\n")
for s in conns:
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = lines[0].split()[1] if len(lines[0].split()) > 1 else "none"
    length = [int(v) for k, _, v in (l.partition(": ") for l in lines[1:]) if k.lower() == "content-length"]
    intact = "intact" if length and length[0] == len(body) else "broken"
    print(f"{status} {intact} {body.decode(errors='replace').strip()}", flush=True)
