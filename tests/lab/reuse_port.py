#!/usr/bin/env python3
"""One HTTP GET from a fixed client port: HOST PORT SRCPORT [client-first].

Prints the real server's answer ("rs1 198.18.1.10:1029"), or "error ..." /
"timeout". The real servers speak HTTP/1.0 and close after answering, so
by default the server closes first; with client-first the client sends its
FIN right after the request (a half-close), so it closes first and keeps
the port in TIME_WAIT. Binding the port again then needs SO_REUSEADDR and
net.ipv4.tcp_tw_reuse=1 (and the kernel lets a second pass first), so the
bind and connect are retried for a few seconds on EADDRINUSE/EADDRNOTAVAIL:
what goes on the wire is one SYN per connection that was accepted locally.
"""
import errno
import socket
import sys
import time

host, port, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client_first = "client-first" in sys.argv[4:]
deadline = time.time() + 5
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3.0)
    try:
        s.bind(("0.0.0.0", sport))
        s.connect((host, port))
        break
    except OSError as e:
        s.close()
        if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL) and time.time() < deadline:
            time.sleep(0.2)
            continue
        print(f"error {e}", flush=True)
        sys.exit(0)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
if client_first:
    s.shutdown(socket.SHUT_WR)
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    print("timeout", flush=True)
    sys.exit(0)
s.close()
print(data.split(b"\r\n\r\n", 1)[-1].decode().strip(), flush=True)
