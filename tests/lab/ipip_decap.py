#!/usr/bin/env python3
"""IP-in-IP decapsulation for a TUN-mode real server: LOCAL_ADDR TUN_NAME.

The lab's kernel has no `ipip` module. On a normal Linux real server,
`modprobe ipip` plus the VIP on `tunl0` (`ip addr add VIP/32 dev tunl0;
ip link set tunl0 up`, with rp_filter relaxed on tunl0 and `all`) is all LVS-TUN
needs. Here this helper stands in for tunl0:

- an AF_INET raw socket for IP protocol 4 receives every IPIP packet
  delivered to this host (the kernel passes the whole outer packet, already
  reassembled; because a raw socket takes protocol 4, the kernel does not
  answer "protocol unreachable");
- packets whose outer destination is LOCAL_ADDR and whose payload is an IPv4
  packet lose their outer header and are written into the TUN device
  TUN_NAME (IFF_TUN | IFF_NO_PI), which tests/lab/lab.sh gives the VIP;
- the kernel then receives the inner packet on TUN_NAME, as it would on tunl0.

lab.sh creates the namespace, starts this helper, waits for TUN_NAME to
appear, then adds the VIP and sets rp_filter=0. The device disappears when
the helper exits (lab.sh down kills it with the namespace).
Prints one line per 1000 packets and on errors (to the log lab.sh keeps).
"""
import fcntl
import os
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4


def main():
    local, name = socket.inet_aton(sys.argv[1]), sys.argv[2]
    # The socket first: once the device exists (lab.sh's readiness signal),
    # every IPIP packet is taken.
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    print(f"ipip_decap: {sys.argv[1]} -> {name}", flush=True)
    n = 0
    while True:
        pkt = raw.recv(65535)
        if len(pkt) < 20:
            continue
        ihl = (pkt[0] & 0x0F) * 4
        inner = pkt[ihl:]
        if pkt[16:20] != local or len(inner) < 20 or inner[0] >> 4 != 4:
            print(f"ipip_decap: ignored {len(pkt)} bytes to {socket.inet_ntoa(pkt[16:20])}", flush=True)
            continue
        try:
            os.write(tun, inner)
        except OSError as e:
            print(f"ipip_decap: write: {e}", flush=True)
            continue
        n += 1
        if n % 1000 == 1:
            print(f"ipip_decap: {n} packets", flush=True)


if __name__ == "__main__":
    main()
