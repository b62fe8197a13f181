#!/usr/bin/env python3
"""One UDP flow in two steps: HOST PORT GATE.

Sends "one" to HOST:PORT from a connected socket and prints the answer
("rs1 198.18.0.2:5000 local 198.18.0.2:5000"), then waits until the file
GATE exists and sends "two" from the same socket (the same flow) and prints
that answer too, or "timeout"/"error ..." instead of an answer. A test
disturbs the gateway between the two steps and checks that the flow is
unaffected."""
import os
import socket
import sys
import time

host, port, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3.0)
s.connect((host, port))
local = "%s:%d" % s.getsockname()


def exchange(msg):
    try:
        s.send(msg)
        print(f"{s.recv(2048).decode().strip()} local {local}", flush=True)
    except socket.timeout:
        print("timeout", flush=True)
    except OSError as e:
        print(f"error {e}", flush=True)


exchange(b"one")
deadline = time.time() + 30
while not os.path.exists(gate) and time.time() < deadline:
    time.sleep(0.02)
exchange(b"two")
