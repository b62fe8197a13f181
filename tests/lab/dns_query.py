#!/usr/bin/env python3
"""Asks HOST:PORT N times for the A record of NAME from ONE UDP socket (one
source port, as a resolver's forwarder or a stub with a fixed port does:
one flow at the gateway), each query waiting for its answer (2 s). The DNS
messages are built and parsed by scapy (a second implementation, not the
gateway's). Prints one line per query: "A 198.18.1.2 from 198.18.0.100:53"
(the answer's first A record and the address the answer came from),
"rcode N" for an answer without one, or "timeout"; then "local PORT".
An IPv6 HOST is reached over IPv6."""
import socket
import sys

from scapy.layers.dns import DNS, DNSQR, DNSRR



def records(an):
    """The answer section's records: a list in scapy 2.6 on, a chain of
    DNSRR layers in 2.5 (Debian 12's)."""
    if isinstance(an, list):
        return an
    out = []
    while isinstance(an, DNSRR):
        out.append(an)
        an = an.payload
    return out


host, port, n, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(2.0)
for i in range(n):
    qid = 0x4000 + i
    s.sendto(bytes(DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype="A"))), (host, port))
    try:
        while True:
            data, peer = s.recvfrom(4096)
            answer = DNS(data)
            if answer.id == qid:
                break
    except socket.timeout:
        print("timeout", flush=True)
        continue
    a = [rr.rdata for rr in records(answer.an) if rr.type == 1]
    if a:
        print(f"A {a[0]} from {peer[0]}:{peer[1]}", flush=True)
    else:
        print(f"rcode {answer.rcode}", flush=True)
print(f"local {s.getsockname()[1]}", flush=True)
s.close()
