#!/usr/bin/env python3
"""UDP bursts as fast as one socket sends them: DST DPORT COUNT BURSTS PAUSE_MS.

Sends BURSTS bursts of COUNT datagrams of 64 bytes to DST:DPORT, from one
socket (one flow), with PAUSE_MS milliseconds between bursts (long enough
for an idle worker to go to sleep, so each burst meets a sleeping worker).
Nothing is read back. Prints the number of datagrams the kernel took."""
import socket
import sys
import time

dst, dport, count, bursts, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((dst, dport))
payload = b"x" * 64
sent = 0
for b in range(bursts):
    if b:
        time.sleep(pause / 1000)
    for _ in range(count):
        try:
            s.send(payload)
            sent += 1
        except (BlockingIOError, ConnectionRefusedError, OSError):
            pass
print(sent)
