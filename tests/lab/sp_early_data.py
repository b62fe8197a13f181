#!/usr/bin/env python3
"""A TCP client written with scapy whose request rides on the third ACK
of the handshake (the SYNPROXY cookie ACK), which a kernel client never
does. It speaks from SRC, an address no interface of its namespace holds
(the gateway reaches it through a static neighbour), so that the kernel
drops the answers instead of resetting them; scapy sees them on IFACE.

SYN (MSS 1460, SACK, timestamps, window scale 6), then ACK+PSH carrying
REQUEST (with "\\n" for newlines), then it acknowledges what comes back
until the server's FIN (or 10 s) and prints it (one line).
SRC and DST may be IPv6 addresses (then so is the packet).
Usage: sp_early_data.py IFACE SRC DST DPORT REQUEST   (needs python3-scapy)
"""
import sys
import time

from scapy.all import IP, TCP, AsyncSniffer, IPv6, send

iface, src, dst, dport, req = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
req = req.replace("\\n", "\n").encode()
SPORT, ISN = 34567, 5000
L3 = IPv6 if ":" in dst else IP


def ours(p):
    return L3 in p and TCP in p and p[L3].src == dst and p[L3].dst == src and p[TCP].dport == SPORT


seen_pkts = []
sn = AsyncSniffer(iface=iface, store=False, prn=seen_pkts.append)
sn.start()
time.sleep(0.5)
ip = L3(src=src, dst=dst)
opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (4242, 0)), ("NOP", None), ("WScale", 6)]
send(ip / TCP(sport=SPORT, dport=dport, flags="S", seq=ISN, window=512, options=opts), verbose=0)


def wait(pred, secs):
    end = time.time() + secs
    seen = 0
    while time.time() < end:
        got = list(seen_pkts)
        for p in got[seen:]:
            if ours(p) and pred(p):
                return p
        seen = len(got)
        time.sleep(0.05)
    return None


sa = wait(lambda p: p[TCP].flags & 0x12 == 0x12, 3)
if sa is None:
    sn.stop()
    print("no SYN-ACK; seen:", *[p.summary() for p in seen_pkts], sep="\n", file=sys.stderr)
    sys.exit(1)
cookie = sa[TCP].seq
tsval = dict(sa[TCP].options).get("Timestamp", (0, 0))[0]
nxt = cookie + 1


def tcp(flags, seq, ack, data=b"", tsv=4243):
    t = TCP(sport=SPORT, dport=dport, flags=flags, seq=seq, ack=ack, window=512,
            options=[("NOP", None), ("NOP", None), ("Timestamp", (tsv, tsval))])
    return ip / t / data if data else ip / t


# The request on the handshake's ACK.
send(tcp("PA", ISN + 1, nxt, req), verbose=0)
data, fin, fin_seq, done, seen = {}, False, None, False, 0
end = time.time() + 10
while time.time() < end and not done:
    got = list(seen_pkts)
    for p in got[seen:]:
        if not ours(p):
            continue
        t = p[TCP]
        payload = bytes(t.payload)
        if payload:
            data[t.seq] = payload
        if t.flags & 0x01:
            fin = True
            fin_seq = t.seq + len(payload)
    seen = len(got)
    # Acknowledge the contiguous bytes received.
    while nxt in data:
        nxt += len(data[nxt])
    if fin and nxt == fin_seq:
        send(tcp("FA", ISN + 1 + len(req), nxt + 1), verbose=0)
        done = True
    elif data:
        send(tcp("A", ISN + 1 + len(req), nxt), verbose=0)
    time.sleep(0.1)
sn.stop()
out, at = b"", cookie + 1
while at in data:
    out += data[at]
    at += len(data[at])
print(out.decode(errors="replace").strip(), flush=True)
