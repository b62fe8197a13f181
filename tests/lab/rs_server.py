#!/usr/bin/env python3
"""A real server for the labs: HTTP and UDP echo on one port.

Both answer with the server's name and the peer address they saw, so a test
can tell which real server answered and what source address reached it:
    HTTP GET /        ->  "rs1 198.18.1.10:5000\n"
    HTTP POST / (N B) ->  "rs1 198.18.1.10:5000 N\n" (reads the whole body)
    HTTP GET /bytes/N ->  N pseudo-random bytes (seeded by N), with headers
                          X-Server (the name) and X-Sha256 (of the body)
    UDP "x"           ->  "rs1 198.18.1.10:5000\n"
Usage: rs_server.py NAME PORT [BIND] (BIND defaults to 0.0.0.0; DR and TUN
real servers bind the VIP so that UDP answers leave from the VIP). An IPv6
BIND (e.g. "::", the IPv6 labs) listens on IPv6; "::" takes IPv4 too, whose
peers then read as IPv4-mapped (::ffff:198.18.1.10). Addresses are printed
without brackets, as curl's %{local_ip}:%{local_port} prints them.
Python's http.server (ThreadingHTTPServer) is the HTTP server.
"""
import hashlib
import random
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])
BIND = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
FAMILY = socket.AF_INET6 if ":" in BIND else socket.AF_INET


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        if self.path.startswith("/bytes/"):
            n = int(self.path[len("/bytes/"):])
            body = random.Random(n).randbytes(n)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.send_header("X-Server", NAME)
            self.send_header("X-Sha256", hashlib.sha256(body).hexdigest())
            self.end_headers()
            self.wfile.write(body)
            return
        body = f"{NAME} {self.client_address[0]}:{self.client_address[1]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        body = f"{NAME} {self.client_address[0]}:{self.client_address[1]} {len(data)}"
        # POST /sha256 also answers the SHA-256 of what was read.
        if self.path == "/sha256":
            body += f" {hashlib.sha256(data).hexdigest()}"
        body = f"{body}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def udp_echo():
    s = socket.socket(FAMILY, socket.SOCK_DGRAM)
    s.bind((BIND, PORT))
    while True:
        _, peer = s.recvfrom(2048)
        s.sendto(f"{NAME} {peer[0]}:{peer[1]}\n".encode(), peer)


class Server(ThreadingHTTPServer):
    address_family = FAMILY


threading.Thread(target=udp_echo, daemon=True).start()
Server((BIND, PORT), Handler).serve_forever()
