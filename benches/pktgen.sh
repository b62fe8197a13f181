#!/usr/bin/env bash
# Drives gatewayd with the real Pktgen-DPDK (docs/benchmarks.md, "Driving
# gatewayd with Pktgen-DPDK"), given a path to a Pktgen build:
#
#   benches/pktgen.sh /path/to/Pktgen-DPDK/build/app/pktgen [SECONDS] [FLOWS]
#
# Scenario: FULLNAT UDP, one way, 64-byte frames, FLOWS client address:port
# tuples (default 1000), SECONDS of measurement (default 10). Link: two veth
# pairs in a namespace of their own (gwe-pkt), both ends DPDK net_af_packet:
# Pktgen 23.03 cannot use memif (DPDK 22.11's memif refuses Pktgen's MTU
# call), af_packet accepts it. Pktgen port 0 plays the clients, port 1 the
# real servers; Pktgen answers no ARP unless it transmits on that port, so
# gatewayd knows the real servers' MAC from static neighbours
# ([[neighbour]]). CPU 0: Pktgen (display and port lcore) and gatewayd's
# control thread; CPU 1: gatewayd's worker.
#
# The rate is gatewayd's own: packets forwarded to the real servers
# (fwd_in_packets) over the measured interval, read with gwctl, plus what it
# received and what the af_packet rings dropped before it. Pktgen's own
# screen is kept in the log.
#
# Needs root, Debian's DPDK packages and a release gatewayd/gwctl (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
pktgen=${1:?usage: benches/pktgen.sh PATH/TO/pktgen [SECONDS] [FLOWS]}
secs=${2:-10}
flows=${3:-1000}
generator=${GENERATOR:-pktgen}   # or gw-pktgen: the same scenario with gw-pktgen
link=${LINK:-af_packet}          # or af_xdp
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p gw-dataplane --bin gatewayd
cargo build --release -q -p gwctl
[ "$generator" = gw-pktgen ] && cargo build --release -q -p gw-benches --bin gw-pktgen
bin=$CARGO_TARGET_DIR/release

NS=gwe-pkt
run=$(mktemp -d /run/gwe-pkt.XXXXXX)
gw_pid= gen_pid=
cleanup() {
    local rc=$?
    # Each was started as the leader of its own process group (setsid):
    # the group goes, children included (script(1)'s pktgen).
    for pid in $gen_pid $gw_pid; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in $gen_pid $gw_pid; do
        for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$run" /var/run/dpdk/gwe-pkt-*
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
# pk0 (Pktgen, clients) <-> gw0 (gatewayd outside); pk1 (Pktgen, real servers) <-> gw1 (inside)
for i in 0 1; do
    in_ns ip link add "pk$i" type veth peer name "gw$i"
    in_ns ip link set "pk$i" address "02:00:00:00:1$i:01"
    in_ns ip link set "gw$i" address "02:00:00:00:0$i:01"
    for d in "pk$i" "gw$i"; do
        in_ns ethtool -K "$d" tx off >/dev/null 2>&1 || true
        in_ns ip link set "$d" up
    done
done

# gatewayd: conf/bench-fullnat.toml (5 real servers, 37 local addresses) on
# af_packet ports, with the real servers and the clients' router as static
# neighbours on Pktgen's ports.
sed -e "s|net_memif0,role=server,socket=/run/gwbench/outside.sock,id=0,mac=02:00:00:00:00:01|net_${link}0,iface=gw0|" \
    -e "s|net_memif1,role=server,socket=/run/gwbench/inside.sock,id=0,mac=02:00:00:00:01:01|net_${link}1,iface=gw1|" \
    -e "s|--file-prefix\", \"gwbench-gw\"|--file-prefix\", \"gwe-pkt-gw\"|" \
    -e "s|/run/gwbench/gatewayd.sock|$run/gatewayd.sock|" \
    conf/bench-fullnat.toml > "$run/gatewayd.toml"
{
    echo
    for rs in 2 3 4 5 6; do
        printf '[[neighbour]]\naddress = "198.18.1.%s"\nmac = "02:00:00:00:11:01"\nport = "inside"\n' "$rs"
    done
    printf '[[neighbour]]\naddress = "198.18.0.254"\nmac = "02:00:00:00:10:01"\nport = "outside"\n'
} >> "$run/gatewayd.toml"
setsid ip netns exec "$NS" "$bin/gatewayd" --config "$run/gatewayd.toml" > "$run/gatewayd.log" 2>&1 &
gw_pid=$!
for _ in $(seq 100); do [ -S "$run/gatewayd.sock" ] && break; sleep 0.1; done
[ -S "$run/gatewayd.sock" ] || { cat "$run/gatewayd.log"; exit 1; }
gwctl() { "$bin/gwctl" --socket "$run/gatewayd.sock" "$@"; }
counter() { # NAME: summed over workers
    gwctl --counters | awk -v n="$1" '$1 == n { print $NF }'
}
port_stat() { # PORT STAT
    gwctl --counters | awk -v s="$2" -v p="$1" '
        /^PORT/ { for (i = 2; i <= NF; i++) col[$i] = i; inports = 1; next }
        inports && $1 == s { print $col[p] }'
}

last_ip=$(python3 -c "import ipaddress; print(ipaddress.ip_address('198.19.0.0') + $flows - 1)")
if [ "$generator" = pktgen ]; then
    cat > "$run/cmds.pkt" <<PKT
set 0 size 64
set 0 rate 100
range 0 dst mac start 02:00:00:00:00:01
range 0 src mac start 02:00:00:00:10:01
range 0 src ip start 198.19.0.0
range 0 src ip min 198.19.0.0
range 0 src ip max $last_ip
range 0 src ip inc 0.0.0.1
range 0 dst ip start 198.18.0.100
range 0 dst ip min 198.18.0.100
range 0 dst ip max 198.18.0.100
range 0 dst ip inc 0.0.0.0
range 0 src port start 1024
range 0 src port min 1024
range 0 src port max 1024
range 0 src port inc 0
range 0 dst port start 80
range 0 dst port min 80
range 0 dst port max 80
range 0 dst port inc 0
range 0 proto udp
range 0 size start 64
range 0 size min 64
range 0 size max 64
range 0 size inc 0
enable 0 range
start 0
PKT
    # Pktgen's CLI wants a terminal: script(1) gives it one; its screen goes to the log.
    setsid ip netns exec "$NS" script -qfec "$pktgen --lcores 0@0,1@0 --no-huge -m 3072 --file-prefix gwe-pkt-pg --no-pci \
        --vdev=net_${link}0,iface=pk0 --vdev=net_${link}1,iface=pk1 \
        -- -P -T -m 1.[0-1] -f $run/cmds.pkt" "$run/pktgen.log" < /dev/null > /dev/null 2>&1 &
    gen_pid=$!
else
    setsid ip netns exec "$NS" "$bin/gw-pktgen" --client-port "net_${link}0" --server-port "net_${link}1" --one-way \
        --flows "$flows" --duration "$((secs + 6))" --warmup 1 -- \
        --lcores 0@0 --no-huge -m 1024 --file-prefix gwe-pkt-pg --no-pci \
        --vdev="net_${link}0,iface=pk0" --vdev="net_${link}1,iface=pk1" > "$run/pktgen.log" 2>&1 &
    gen_pid=$!
fi

# Warm up until gatewayd forwards, then measure over SECONDS.
for _ in $(seq 300); do
    [ "$(counter fwd_in_packets)" -gt 0 ] 2>/dev/null && break
    kill -0 "$gen_pid" 2>/dev/null || { echo "the generator exited:"; cat "$run/pktgen.log"; exit 1; }
    sleep 0.1
done
[ "$(counter fwd_in_packets)" -gt 0 ] || { echo "gatewayd forwarded nothing"; tail -50 "$run/pktgen.log"; cat "$run/gatewayd.log"; exit 1; }
sleep 2
read_all() { echo "$(date +%s.%N) $(counter fwd_in_packets) $(counter rx_packets) $(port_stat outside imissed) $(counter busy_cycles)"; }
a=$(read_all)
sleep "$secs"
b=$(read_all)
python3 - "$a" "$b" "$generator" "$flows" <<'PY'
import sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
dt = b[0] - a[0]
fwd, rx, missed, cyc = (b[i] - a[i] for i in range(1, 5))
print(f"generator={sys.argv[3]} flows={sys.argv[4]} seconds={dt:.2f}")
print(f"gatewayd forwarded {fwd / dt / 1e6:.3f} Mpps to the real servers; received {rx / dt / 1e6:.3f} Mpps;"
      f" af_packet ring drops at gatewayd {missed / dt / 1e6:.3f} Mpps;"
      f" busy cycles per received packet {cyc / rx if rx else 0:.0f}")
PY
gwctl -L -n --stats --exact | head -4
