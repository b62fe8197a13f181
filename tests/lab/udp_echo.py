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
An IPv6 BIND or HOST uses IPv6 (df sets IPV6_DONTFRAG: the datagram is not
fragmented by the sender, nodf lets the kernel fragment it).
"""
import os
import socket
import sys

IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
IPV6_DONTFRAG = getattr(socket, "IPV6_DONTFRAG", 62)


def udp_socket(addr, df):
    """A UDP socket of ADDR's family; DF as asked (IPv4), or IPv6's
    don't-fragment (the sender never fragments; routers never do in IPv6)."""
    if ":" in addr:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1 if df else 0)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


def serve(bind, port):
    s = udp_socket(bind, False)
    s.bind((bind, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def send(host, port, df, sizes):
    s = udp_socket(host, df)
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
