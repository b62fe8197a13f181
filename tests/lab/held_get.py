#!/usr/bin/env python3
"""Opens a TCP connection to HOST:PORT, sends half an HTTP request, prints
"open", then waits until the file GO exists, sends the rest and prints the
answer's first line: an established connection held across an event."""
import os
import socket
import sys
import time

host, port, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=30)
s.sendall(b"GET / HTTP/1.0\r\n")
print("open", flush=True)
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
s.sendall(b"\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n", 1)[0].decode(), flush=True)
