#!/usr/bin/env bash
# The demo: gatewayd as a FULLNAT load balancer in a network-namespace lab,
# with real HTTP and UDP traffic (see tests/lab/lab.sh for the topology).
#   ./demo.sh            (same as ./demo.sh fullnat)
# Needs root. Everything it creates is removed when it ends, also on failure.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-fullnat}
case $mode in
    fullnat) ;;
    *) echo "usage: $0 [fullnat]" >&2; exit 2 ;;
esac
scripts/install-deps.sh
cargo build --release --bins 2>&1 | tail -1

P=gwdemo
SOCK=/run/gatewayd-demo.sock
CONF=$(mktemp /tmp/gwdemo.XXXXXX.toml)
LOG=$(mktemp /tmp/gwdemo.XXXXXX.log)
GW=target/release/gatewayd
gwctl() { target/release/gwctl --socket "$SOCK" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

cleanup() {
    pkill -TERM -f "$GW --config $CONF" 2>/dev/null || true
    sleep 0.5
    tests/lab/lab.sh down "$P"
    rm -f "$CONF" "$SOCK"
}
trap cleanup EXIT

say "Lab: client 198.18.0.2 | gatewayd (DPDK af_packet) 198.18.0.1 / 198.18.1.1 | rs1 198.18.1.2, rs2 198.18.1.3"
tests/lab/lab.sh up "$P"
sed "s#/run/gatewayd-lab.sock#$SOCK#" conf/lab-fullnat.toml > "$CONF"
ip netns exec "$P-gw" "$GW" --config "$CONF" >"$LOG" 2>&1 &
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$LOG"; echo "gatewayd did not start" >&2; exit 1; }
for r in 1 2; do
    ip netns exec "$P-rs$r" python3 tests/lab/rs_server.py "rs$r" 80 >/dev/null 2>&1 &
done
sleep 1

say "Configure FULLNAT services with gwctl (ipvsadm syntax; -b = fullnat)"
for proto in -t -u; do
    run gwctl -A $proto 198.18.0.100:80 -s rr
    run gwctl -a $proto 198.18.0.100:80 -r 198.18.1.2:80 -b -w 1
    run gwctl -a $proto 198.18.0.100:80 -r 198.18.1.3:80 -b -w 1
    run gwctl --add-laddr -z 198.18.1.10 $proto 198.18.0.100:80
done
run gwctl --get-laddr

say "HTTP from the client to the VIP: each line is '<server> <source address the server saw>'"
for i in 1 2 3 4 5 6; do
    printf 'GET http://198.18.0.100/ -> %s' "$(ip netns exec "$P-client" curl -s -m 5 http://198.18.0.100/)"
    echo
done

say "UDP from the client to the VIP (a new flow each time)"
ip netns exec "$P-client" python3 tests/lab/udp_client.py 198.18.0.100 80 4

say "The real servers saw the local address 198.18.1.10, never the client 198.18.0.2; the client saw only the VIP."
run gwctl -L -n
run gwctl -L -n --stats
say "Per-worker counters (drops by reason)"
run gwctl --counters
