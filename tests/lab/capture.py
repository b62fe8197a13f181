"""The capture step the lab's capture scripts share (ip_capture.py,
toa_capture.py, ptb6_capture.py): start scapy's sniffer on IFACE, print
"ready" once it listens (the lab waits for that line before it sends), and
return the packets kept once COUNT were kept or TIMEOUT seconds passed."""
import time

from scapy.all import AsyncSniffer


def capture(iface, keep, count, timeout):
    sn = AsyncSniffer(iface=iface, lfilter=keep, count=count, timeout=timeout, store=True)
    sn.start()
    time.sleep(0.5)
    print("ready", flush=True)
    sn.join()
    return sn.results or []
