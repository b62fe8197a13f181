#!/usr/bin/env python3
"""IP-in-IP decapsulation for a TUN-mode real server: LOCAL_ADDR TUN_NAME [LOCAL_ADDR6].

The lab's kernel has neither the `ipip` nor the `ip6_tunnel` module. On a
normal Linux real server, `modprobe ipip` plus the VIP on `tunl0` (`ip addr
add VIP/32 dev tunl0; ip link set tunl0 up`, with rp_filter relaxed on tunl0
and `all`) is all LVS-TUN needs; for IPv6, `modprobe ip6_tunnel` and the
IPv6 VIP on `ip6tnl0`. Here this helper stands in for both:

- an AF_INET raw socket for IP protocol 4 receives every IPIP packet
  delivered to this host (the kernel passes the whole outer packet, already
  reassembled; because a raw socket takes protocol 4, the kernel does not
  answer "protocol unreachable");
- packets whose outer destination is LOCAL_ADDR and whose payload is an IPv4
  packet lose their outer header and are written into the TUN device
  TUN_NAME (IFF_TUN | IFF_NO_PI), which tests/lab/lab.sh gives the VIP;
- with LOCAL_ADDR6 (the dual-stack labs), an AF_INET6 raw socket for next
  header 41 bound to LOCAL_ADDR6 receives the IPv6-in-IPv6 packets sent to
  it; an IPv6 raw socket hands over what follows the outer header (and its
  extension headers), which must be an IPv6 packet, written as it is into
  TUN_NAME; the TUN device tells the families apart by the version nibble;
- the kernel then receives the inner packet on TUN_NAME, as it would on tunl0
  or ip6tnl0.

lab.sh creates the namespace, starts this helper, waits for TUN_NAME to
appear, then adds the VIP(s) and sets rp_filter=0. The device disappears when
the helper exits (lab.sh down kills it with the namespace).
Prints one line per 1000 packets of each family ("ipip_decap: 1 packets",
"ip6ip6_decap: 1 packets") and on errors (to the log lab.sh keeps).
"""
import fcntl
import os
import select
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41


def inner4(pkt, local):
    """The inner IPv4 packet of an IPIP packet to `local`, else None."""
    if len(pkt) < 20:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    inner = pkt[ihl:]
    if pkt[16:20] != local or len(inner) < 20 or inner[0] >> 4 != 4:
        return None
    return inner


def inner6(payload):
    """The inner IPv6 packet of an IPv6-in-IPv6 payload, else None."""
    if len(payload) < 40 or payload[0] >> 4 != 6:
        return None
    return payload


def main():
    local, name = socket.inet_aton(sys.argv[1]), sys.argv[2]
    # The sockets first: once the device exists (lab.sh's readiness signal),
    # every tunnelled packet is taken.
    socks = {}
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    socks[raw.fileno()] = (raw, "ipip_decap", lambda p: inner4(p, local))
    if len(sys.argv) > 3:
        raw6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV6)
        raw6.bind((sys.argv[3], 0))
        socks[raw6.fileno()] = (raw6, "ip6ip6_decap", inner6)
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    print(f"ipip_decap: {' '.join(sys.argv[1:2] + sys.argv[3:])} -> {name}", flush=True)
    counts = {fd: 0 for fd in socks}
    while True:
        ready, _, _ = select.select(list(socks), [], [])
        for fd in ready:
            sock, label, inner_of = socks[fd]
            pkt = sock.recv(65535)
            inner = inner_of(pkt)
            if inner is None:
                print(f"{label}: ignored {len(pkt)} bytes", flush=True)
                continue
            try:
                os.write(tun, inner)
            except OSError as e:
                print(f"{label}: write: {e}", flush=True)
                continue
            counts[fd] += 1
            if counts[fd] % 1000 == 1:
                print(f"{label}: {counts[fd]} packets", flush=True)


if __name__ == "__main__":
    main()
