#!/usr/bin/env bash
# The demo: gatewayd as a load balancer in a network-namespace lab, with real
# HTTP and UDP traffic (see tests/lab/lab.sh for the topologies).
#   ./demo.sh            FULLNAT (same as ./demo.sh fullnat)
#   ./demo.sh nat        NAT (LVS-NAT, -m): real servers route back through the gateway
#   ./demo.sh dr         DR (direct routing, -g): one segment, VIP on the real servers' lo
#   ./demo.sh tun        TUN (IP-in-IP, -i): real servers behind a router
# Needs root. Everything it creates is removed when it ends, also on failure.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-fullnat}
VIP=198.18.0.100
case $mode in
    fullnat) conf=conf/lab-fullnat.toml; rips=(198.18.1.2 198.18.1.3); rport=80; bind= ;;
    nat) conf=conf/lab-fullnat.toml; rips=(198.18.1.2 198.18.1.3); rport=8080; bind= ;;
    dr) conf=conf/lab-dr.toml; rips=(198.18.0.3 198.18.0.4); rport=80; bind=$VIP ;;
    tun) conf=conf/lab-tun.toml; rips=(198.18.2.2 198.18.2.3); rport=80; bind=$VIP ;;
    *) echo "usage: $0 [fullnat|nat|dr|tun]" >&2; exit 2 ;;
esac
scripts/install-deps.sh
cargo build --release --bins 2>&1 | tail -1

P=gwdemo
SOCK=/run/gatewayd-demo.sock
CONF=$(mktemp /tmp/gwdemo.XXXXXX.toml)
LOG=$(mktemp /tmp/gwdemo.XXXXXX.log)
TARGET=${CARGO_TARGET_DIR:-target}
GW=$TARGET/release/gatewayd
GWPID=
gwctl() { "$TARGET/release/gwctl" --socket "$SOCK" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
in_ns() { ip netns exec "$P-$1" "${@:2}"; }
counters() { gwctl --counters | grep -E "^(COUNTER|$(IFS='|'; echo "$*")) "; }

cleanup() {
    [ -n "$GWPID" ] && kill -TERM "$GWPID" 2>/dev/null || true
    sleep 0.5
    # Stops every process left in the lab's namespaces, then removes them.
    tests/lab/lab.sh down "$P"
    rm -f "$CONF" "$SOCK"
}
trap cleanup EXIT

case $mode in
    fullnat | nat) say "Lab: client 198.18.0.2 | gatewayd (DPDK af_packet) 198.18.0.1 / 198.18.1.1 | rs1 198.18.1.2, rs2 198.18.1.3" ;;
    dr) say "Lab: one segment: client 198.18.0.2, gatewayd (DPDK af_packet) 198.18.0.1, rs1 198.18.0.3, rs2 198.18.0.4 (VIP on lo)" ;;
    tun) say "Lab: client 198.18.0.2 | gatewayd 198.18.0.1 / 198.18.1.1 | router 198.18.{0.254,1.254,2.1} | rs1 198.18.2.2, rs2 198.18.2.3 (VIP on the IPIP decapsulation device)" ;;
esac
[ "$mode" = nat ] && echo "(the fullnat wiring; the real servers' default route is the gateway, 198.18.1.1)"
tests/lab/lab.sh up "$P" "$mode"
sed "s#/run/gatewayd-lab.sock#$SOCK#" "$conf" > "$CONF"
NO_COLOR=1 ip netns exec "$P-gw" "$GW" --config "$CONF" >"$LOG" 2>&1 &
GWPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$LOG"; echo "gatewayd did not start" >&2; exit 1; }
for r in 1 2; do
    in_ns "rs$r" python3 tests/lab/rs_server.py "rs$r" "$rport" $bind >/dev/null 2>&1 &
done
sleep 1

case $mode in
    fullnat) flag=-b; what="FULLNAT services (ipvsadm syntax; -b = fullnat, as in DPVS)" ;;
    nat) flag=-m; what="NAT services (-m = masquerading): VIP port 80 -> real-server port 8080" ;;
    dr) flag=-g; what="DR services (-g = gatewaying; ipvsadm uses the service port)" ;;
    tun) flag=-i; what="TUN services (-i = IP-in-IP; the port is the service port)" ;;
esac
say "Configure $what with gwctl"
for proto in -t -u; do
    run gwctl -A $proto $VIP:80 -s rr
    for rip in "${rips[@]}"; do
        case $mode in
            dr | tun) run gwctl -a $proto $VIP:80 -r "$rip" $flag -w 1 ;;
            *) run gwctl -a $proto $VIP:80 -r "$rip:$rport" $flag -w 1 ;;
        esac
    done
    [ "$mode" = fullnat ] && run gwctl --add-laddr -z 198.18.1.10 $proto $VIP:80
done
[ "$mode" = fullnat ] && run gwctl --get-laddr

say "HTTP from the client to the VIP: each line is '<server> <source address the server saw>'"
for _ in 1 2 3 4 5 6; do
    printf 'GET http://%s/ -> %s\n' "$VIP" "$(in_ns client curl -s -m 5 \
        -w '   (curl: %{local_ip}:%{local_port} -> %{remote_ip}:%{remote_port})' "http://$VIP/" | tr -d '\n')"
done

say "UDP from the client to the VIP (a new flow each time)"
in_ns client python3 tests/lab/udp_client.py $VIP 80 4 --local

case $mode in
    fullnat)
        say "The real servers saw the local address 198.18.1.10, never the client 198.18.0.2; the client saw only the VIP."
        ;;
    nat)
        say "The real servers saw the client's own address and port; the client saw only VIP:80 (the gateway mapped 8080 back to 80)."
        echo "Replies came back through the gateway: OutPkts counts them, and fwd_out_packets:"
        counters fwd_in_packets fwd_out_packets
        ;;
    dr | tun)
        say "The real servers saw the client's own address; the client saw only the VIP; the replies did not pass the gateway."
        printf "The client's ARP entry for the VIP: %s (gatewayd's gw0: %s)\n" \
            "$(ip -n "$P-client" neigh show $VIP | awk '{print $5}')" "$(in_ns gw cat /sys/class/net/gw0/address)"
        echo "OutPkts stays 0 below; the gateway's reply counter fwd_out_packets stays 0:"
        counters fwd_in_packets fwd_out_packets
        ;;
esac
if [ "$mode" = tun ]; then
    echo "Each real server's IPIP decapsulation (tests/lab/ipip_decap.py, standing in for tunl0):"
    for r in 1 2; do sed -n 1,2p "${TMPDIR:-/tmp}/$P-rs$r-ipip.log"; done
    say "A 1500-byte UDP datagram with DF does not fit in the tunnel (1500 + 20 > MTU 1500)"
    in_ns client python3 tests/lab/udp_big.py $VIP 80 1472 df
    echo "(first=error EMSGSIZE: the gateway sent ICMP fragmentation-needed; the client's route cache now says:)"
    in_ns client ip route get $VIP | sed -n 1,2p
    counters icmp_frag_needed_sent drop_tunnel_too_big
fi
run gwctl -L -n
run gwctl -L -n --stats
say "Per-worker counters (drops by reason)"
run gwctl --counters
