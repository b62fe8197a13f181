#!/usr/bin/env python3
"""A TCP connection held idle across an event, then used: shows how its end
learns that the gateway forgot it.

  hold_conn.py client HOST PORT GO  connects, sends a first line, prints
                                    "open LOCAL", waits for the file GO,
                                    sends another line, then reads
  hold_conn.py server PORT GO       listens (prints "listening"), accepts one
                                    connection, prints "accepted PEER", waits
                                    for GO, sends a line, then reads

Then prints how the read ended: "reset" (ECONNRESET: the peer, or the
gateway for it, sent a RST), "timeout" (nothing within 60 s: the socket
would have hung in retransmissions), "closed" (EOF) or "data N", followed
by the seconds it took (information only, never judged)."""
import os
import socket
import sys
import time


def wait_for(path):
    deadline = time.time() + 120
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)


def use(s, go):
    wait_for(go)
    start = time.time()
    try:
        s.sendall(b"late line\n")
        data = s.recv(4096)
        what = f"data {len(data)}" if data else "closed"
    except ConnectionResetError:
        what = "reset"
    except socket.timeout:
        what = "timeout"
    print(f"{what} {time.time() - start:.3f}", flush=True)


role = sys.argv[1]
if role == "client":
    host, port, go = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    s = socket.create_connection((host, port), timeout=60)
    s.sendall(b"first line\n")
    print(f"open {s.getsockname()[0]}:{s.getsockname()[1]}", flush=True)
    use(s, go)
else:
    port, go = int(sys.argv[2]), sys.argv[3]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    ls.settimeout(60)
    print("listening", flush=True)
    s, peer = ls.accept()
    s.settimeout(60)
    print(f"accepted {peer[0]}:{peer[1]}", flush=True)
    s.recv(4096)  # the client's first line
    use(s, go)
