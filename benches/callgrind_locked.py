#!/usr/bin/env python3
"""Locked instructions executed, from a callgrind profile made with
--dump-instr=yes --compress-pos=no --compress-strings=no (e.g. of
dpdk/examples/poll_claims.rs: per poll, the difference of two runs of N
and 2N polls, divided by N). For each object,
its load offset from the entry addresses of its functions (callgrind's
lowest address per function against the symbol's), then each executed
instruction looked up in the object's disassembly. Prints the executed
locked instructions (count, object, function, instruction) and the total.
usage: benches/callgrind_locked.py CALLGRIND_OUT"""
import collections, re, subprocess, sys

cost = collections.Counter()          # (ob, fn, addr) -> Ir
ob = fn = None
skip = False
npos = 1
for line in open(sys.argv[1]):
    line = line.rstrip('\n')
    if line.startswith('positions:'):
        npos = len(line.split()) - 1
    if skip:
        skip = False
        continue
    if line.startswith('ob='):
        ob = line[3:]
    elif line.startswith('fn='):
        fn = line[3:]
    elif line.startswith('calls='):
        skip = True
    elif line.startswith('0x') and ob and fn:
        f = line.split()
        cost[(ob, fn, int(f[0], 16))] += int(f[npos])

locked_re = re.compile(r'\block\b|\bxchg\s+%\w+,\S*\(|\bxchg\s+\S*\(\S*,%\w+')
total = 0
rows = []
for obj in sorted({k[0] for k in cost}):
    try:
        syms = subprocess.run(['nm', '--defined-only', obj], capture_output=True, text=True).stdout
        syms += subprocess.run(['nm', '-D', '--defined-only', obj], capture_output=True, text=True).stdout
    except FileNotFoundError:
        continue
    dem = subprocess.run(['c++filt'], input=syms, capture_output=True, text=True).stdout
    byname = {}
    for l in dem.splitlines():
        p = l.split(' ', 2)
        if len(p) == 3:
            byname.setdefault(p[2], int(p[0], 16))
    lowest = {}
    for (o, f, a) in cost:
        if o == obj:
            lowest[f] = min(a, lowest.get(f, a))
    deltas = collections.Counter(lowest[f] - byname[f] for f in lowest if f in byname)
    if not deltas:
        continue
    delta = deltas.most_common(1)[0][0]
    dis = subprocess.run(['objdump', '-d', '--no-show-raw-insn', obj], capture_output=True, text=True).stdout
    locked = {}
    for l in dis.splitlines():
        m = re.match(r'\s*([0-9a-f]+):\s+(.*)', l)
        if m and locked_re.search(m.group(2)):
            locked[int(m.group(1), 16)] = m.group(2).strip()
    for (o, f, a), c in cost.items():
        if o == obj and (a - delta) in locked:
            rows.append((c, obj.split('/')[-1], f, locked[a - delta]))
            total += c
for c, o, f, i in sorted(rows, reverse=True):
    print(f'{c:>10} {o:24.24} {f[:70]:70} {i}')
print('total', total)
