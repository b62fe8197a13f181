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
- GUE (`--tun-type gue`, the kernel's fou module with `ip fou add port
  6080 gue` and a tunnel device on a real server): a UDP socket on
  GUE_PORT (6080 unless set in the environment) for IPv4, and one for IPv6
  with LOCAL_ADDR6, which accepts a zero UDP checksum (UDP_NO_CHECK6_RX, as
  Linux's fou sockets for IPv6 tunnels, RFC 6935); the kernel has already
  verified a non-zero checksum (a bad one never reaches the socket). The
  4-byte GUE header (draft-ietf-intarea-gue §3.1: version 0, Hlen, proto 4
  or 41) is checked and removed;
- GRE (`--tun-type gre`, the kernel's ip_gre/ip6_gre modules with a
  `gre`/`ip6gre` device on a real server): raw sockets for IP protocol 47
  (IPv4: the whole outer packet; IPv6: what follows the outer header). The
  GRE header (RFC 2784/2890: C, K, S bits, version 0, protocol 0x0800 or
  0x86DD) is checked, a present checksum verified, and removed;
- the kernel then receives the inner packet on TUN_NAME, as it would on tunl0,
  ip6tnl0, a fou or a gre device.

lab.sh creates the namespace, starts this helper, waits for TUN_NAME to
appear, then adds the VIP(s) and sets rp_filter=0. The device disappears when
the helper exits (lab.sh down kills it with the namespace).
Prints one line per 1000 packets of each family and tunnel ("ipip_decap: 1
packets", "ip6ip6_decap: 1 packets", "gue_decap: 1 packets", "gue6_decap",
"gre_decap", "gre6_decap"; GRE lines add "csum" when the packet carried a
checksum) and on errors (to the log lab.sh keeps).
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


IPPROTO_GRE = 47
SOL_UDP = 17
UDP_NO_CHECK6_RX = 102
GUE_PORT = int(os.environ.get("GUE_PORT", "6080"))


def ip_version_is(inner, proto):
    """Whether `inner` is the IP packet a tunnel header announced:
    protocol 4 / EtherType 0x0800 an IPv4 packet, 41 / 0x86DD an IPv6 one."""
    return len(inner) >= 20 and inner[0] >> 4 == {4: 4, 41: 6, 0x0800: 4, 0x86DD: 6}.get(proto)


def gue_inner(payload):
    """The inner packet of a GUE datagram's payload (variant 0), else None."""
    if len(payload) < 4 or payload[0] >> 6 != 0 or payload[0] & 0x20:
        return None  # another version, or a control message
    inner = payload[4 + (payload[0] & 0x1F) * 4:]
    return inner if ip_version_is(inner, payload[1]) else None


def rfc1071(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def gre_inner(gre):
    """(inner packet, had a checksum) of a GRE packet (from its GRE header
    on), else (None, _): version 0, a checksum that verifies."""
    if len(gre) < 4:
        return None, False
    flags, proto = struct.unpack("!HH", gre[:4])
    if flags & 0x0007:
        return None, False  # version 1 (PPTP) or other
    csum = bool(flags & 0x8000)
    hlen = 4 + 4 * (csum + bool(flags & 0x2000) + bool(flags & 0x1000))
    if csum and rfc1071(gre) != 0xFFFF:
        return None, csum
    inner = gre[hlen:]
    return (inner if ip_version_is(inner, proto) else None), csum


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
    gue = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gue.bind((sys.argv[1], GUE_PORT))
    socks[gue.fileno()] = (gue, "gue_decap", gue_inner)
    gre = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_GRE)

    def gre4(pkt):
        if len(pkt) < 20 or pkt[16:20] != local:
            return None
        return gre_inner(pkt[(pkt[0] & 0x0F) * 4:])

    socks[gre.fileno()] = (gre, "gre_decap", gre4)
    if len(sys.argv) > 3:
        gue6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        gue6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        gue6.setsockopt(SOL_UDP, UDP_NO_CHECK6_RX, 1)
        gue6.bind((sys.argv[3], GUE_PORT))
        socks[gue6.fileno()] = (gue6, "gue6_decap", gue_inner)
        gre6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_GRE)
        gre6.bind((sys.argv[3], 0))
        socks[gre6.fileno()] = (gre6, "gre6_decap", lambda p: gre_inner(p))
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
            csum = ""
            if isinstance(inner, tuple):
                inner, had = inner
                csum = " csum" if had else ""
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
                print(f"{label}: {counts[fd]} packets{csum}", flush=True)


if __name__ == "__main__":
    main()
