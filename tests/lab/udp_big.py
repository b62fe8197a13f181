#!/usr/bin/env python3
"""Path-MTU probe: HOST PORT SIZE df|nodf (HOST IPv4 or IPv6).

Sends one UDP datagram of SIZE payload bytes to HOST:PORT from a connected
socket, with DF set (IP_PMTUDISC_DO) or clear (IP_PMTUDISC_DONT), waits for
an answer, then sends the same datagram again. Prints key=value lines:
    first=reply <answer> | first=timeout | first=error <ERRNO>
    mtu=<the socket's path MTU (IP_MTU) after the first send>
    second=sent | second=error <ERRNO>
A gateway that answers a too-big DF datagram with ICMP "fragmentation
needed" makes the first receive fail with EMSGSIZE (a connected UDP socket
reports it), lowers the path MTU in the client's route cache, and makes
the second send fail locally with EMSGSIZE."""
import errno
import socket
import sys

IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DONT = getattr(socket, "IP_PMTUDISC_DONT", 0)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
IP_MTU = getattr(socket, "IP_MTU", 14)

# IPv6 (an address with a colon): IPV6_MTU_DISCOVER and IPV6_MTU, the same
# values; a Packet Too Big does to the connected socket what "fragmentation
# needed" does to an IPv4 one.
IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
IPV6_MTU = getattr(socket, "IPV6_MTU", 24)

host, port, size, df = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "df"
v6 = ":" in host
level, discover, mtu_opt = (
    (socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_MTU) if v6 else (socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_MTU)
)
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(level, discover, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
s.settimeout(1.5)
s.connect((host, port))
payload = b"x" * size


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


try:
    s.send(payload)
    print(f"first=reply {s.recv(2048).decode().strip()}", flush=True)
except socket.timeout:
    print("first=timeout", flush=True)
except OSError as e:
    print(f"first=error {name(e)}", flush=True)
print(f"mtu={s.getsockopt(level, mtu_opt)}", flush=True)
try:
    s.send(payload)
    print("second=sent", flush=True)
except OSError as e:
    print(f"second=error {name(e)}", flush=True)
