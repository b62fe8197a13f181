#!/usr/bin/env python3
"""HTTP GETs to URL from THREADS threads at once, COUNT in all, each on a new
connection. Prints one line per request: the answer ("rs1 PEER") or
"error ..."; exits 0 even when some fail (the test counts)."""
import sys
import threading
import urllib.request

url, count, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
results = []
lock = threading.Lock()
todo = list(range(count))


def worker():
    while True:
        with lock:
            if not todo:
                return
            todo.pop()
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                line = r.read().decode().strip()
        except Exception as e:  # noqa: BLE001 - any failure is reported
            line = f"error {type(e).__name__} {e}"
        with lock:
            results.append(line)


ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("\n".join(results))
