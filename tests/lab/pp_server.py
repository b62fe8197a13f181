#!/usr/bin/env python3
"""A real server that reads a PROXY protocol header (haproxy's
proxy-protocol.txt, v1 or v2) in front of each connection, as the client
address lab (tests/e2e/client_addr_lab.rs) needs it.

Usage: pp_server.py PORT MODE [noheader]
  banner: speaks first. As soon as the header is read (gatewayd sends it
          with the handshake's ACK, before the client says anything) it
          sends "220 CIP:CPORT vN\r\n", then answers each line "QUIT" with
          "221 bye\r\n" and closes.
  bulk:   reads one line: "GET N" -> N pseudo-random bytes (seeded by N)
          then close; "PUT N" -> reads N bytes, answers
          "CIP:CPORT vN SHA256HEX\n".
A connection without a valid header is closed at once (the lab then fails).
Prints "ready" once listening.
"""
import hashlib
import random
import socket
import struct
import sys
import threading

PORT, MODE = int(sys.argv[1]), sys.argv[2]
# "noheader" as a third argument: no PROXY header expected (a SYNPROXY
# service without --proxy-protocol, tests/e2e/synproxy_lab.rs).
NOHEADER = len(sys.argv) > 3 and sys.argv[3] == "noheader"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def read_exact(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError("short read")
        b += x
    return b


def read_header(c):
    """(client address, client port, version) from the PROXY header."""
    first = read_exact(c, 12)
    if first == V2_SIG:
        ver_cmd, fam, ln = struct.unpack("!BBH", read_exact(c, 4))
        body = read_exact(c, ln)
        if ver_cmd != 0x21 or fam != 0x11 or ln < 12:
            raise ValueError("v2 header: %x %x %d" % (ver_cmd, fam, ln))
        src, _dst, sport, _dport = struct.unpack("!4s4sHH", body[:12])
        return socket.inet_ntoa(src), sport, "v2"
    line = first
    while not line.endswith(b"\r\n"):
        line += read_exact(c, 1)
        if len(line) > 107:
            raise ValueError("v1 line too long")
    f = line.decode().split()
    if f[0] != "PROXY" or f[1] != "TCP4" or len(f) != 6:
        raise ValueError("v1 header %r" % line)
    return f[2], int(f[4]), "v1"


def serve(c):
    try:
        cip, cport, ver = ("-", 0, "none") if NOHEADER else read_header(c)
        who = "%s:%d %s" % (cip, cport, ver)
        if MODE == "banner":
            c.sendall(("220 %s\r\n" % who).encode())
            f = c.makefile("rb")
            for line in f:
                if line.strip() == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
        else:
            f = c.makefile("rb")
            cmd, n = f.readline().split()
            n = int(n)
            if cmd == b"GET":
                rnd = random.Random(n)
                left = n
                while left:
                    k = min(left, 1 << 16)
                    c.sendall(rnd.randbytes(k))
                    left -= k
            else:
                h = hashlib.sha256()
                left = n
                while left:
                    x = f.read(min(left, 1 << 16))
                    if not x:
                        break
                    h.update(x)
                    left -= len(x)
                c.sendall(("%s %s\n" % (who, h.hexdigest())).encode())
    except Exception as e:  # noqa: BLE001 - any bad header ends the connection
        print("error:", e, file=sys.stderr, flush=True)
    finally:
        c.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", PORT))
s.listen(64)
print("ready", flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
