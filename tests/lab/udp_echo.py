#!/usr/bin/env python3
"""UDP echo of large datagrams, for the fragment labs.

    udp_echo.py serve BIND PORT
        echoes every datagram (up to 65,507 bytes) back to its sender, byte
        for byte, from BIND:PORT (DR and TUN real servers bind the VIP so the
        echo leaves from the VIP)
    udp_echo.py send HOST PORT [df|nodf] SIZE...
        for each SIZE: sends SIZE random bytes to HOST:PORT (DF as given; the
        kernel fragments a DF-clear datagram over the path MTU), waits 2 s
        for the echo, up to 3 tries; prints one line per size:
            ok SIZE TRIES | bad SIZE <what came back> | timeout SIZE
        and exits 1 unless every line is "ok".
"""
import os
import socket
import sys

IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)


def serve(bind, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((bind, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def send(host, port, df, sizes):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.settimeout(2)
    s.connect((host, port))
    good = True
    for size in sizes:
        data = os.urandom(size)
        result = f"timeout {size}"
        for tries in range(1, 4):
            try:
                s.send(data)
                got = s.recv(65535)
            except socket.timeout:
                continue
            result = f"ok {size} {tries}" if got == data else f"bad {size} {len(got)} bytes"
            break
        good = good and result.startswith("ok")
        print(result, flush=True)
    sys.exit(0 if good else 1)


if sys.argv[1] == "serve":
    serve(sys.argv[2], int(sys.argv[3]))
else:
    send(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "df", [int(x) for x in sys.argv[5:]])
