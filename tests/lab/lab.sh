#!/usr/bin/env bash
# The FULLNAT lab topology, in network namespaces this script creates and removes.
#
#   client ns             gw ns (gatewayd, DPDK af_packet)        sw ns (bridge)     rs1 / rs2 ns
#   c0 198.18.0.2/24 ---- gw0 [port 0 198.18.0.1/24]
#                         gw1 [port 1 198.18.1.1/24] ------------ br0 -------------- eth0 198.18.1.2/24
#                                                                     '------------- eth0 198.18.1.3/24
#   VIP 198.18.0.100 (answered by gatewayd), LIP 198.18.1.10
#
# Usage: lab.sh up PREFIX | lab.sh down PREFIX
# PREFIX keeps several labs apart (namespace names are PREFIX-client, PREFIX-gw, ...).
# The gateway's veths carry no IP address: the kernel in the gw namespace stays
# out of the way and gatewayd owns the wire through af_packet.
set -euo pipefail

cmd=${1:?usage: lab.sh up|down PREFIX}
P=${2:?usage: lab.sh up|down PREFIX}

ns() { ip netns exec "$P-$1" "${@:2}"; }

down() {
    for n in client gw sw rs1 rs2; do
        ip netns pids "$P-$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$P-$n" 2>/dev/null || true
    done
}

up() {
    down
    for n in client gw sw rs1 rs2; do
        ip netns add "$P-$n"
        ns "$n" ip link set lo up
    done
    # client <-> gateway port 0
    ip link add c0 netns "$P-client" type veth peer name gw0 netns "$P-gw"
    # gateway port 1 and the real servers on one bridged segment
    ns sw ip link add br0 type bridge
    ns sw ip link set br0 up
    ip link add gw1 netns "$P-gw" type veth peer name p-gw netns "$P-sw"
    for r in rs1 rs2; do
        ip link add eth0 netns "$P-$r" type veth peer name "p-$r" netns "$P-sw"
    done
    for p in p-gw p-rs1 p-rs2; do
        ns sw ip link set "$p" master br0
        ns sw ip link set "$p" up
    done
    for i in gw0 gw1; do
        ns gw sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
        ns gw ip link set "$i" up
    done
    ns client sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ns client ip addr add 198.18.0.2/24 dev c0
    ns client ip link set c0 up
    # veths hand af_packet frames with partial L4 checksums unless TX
    # checksum offload is off on the sending side.
    ns client ethtool -K c0 tx off >/dev/null
    local n=2
    for r in rs1 rs2; do
        ns "$r" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ns "$r" ip addr add "198.18.1.$n/24" dev eth0
        ns "$r" ip link set eth0 up
        ns "$r" ethtool -K eth0 tx off >/dev/null
        n=$((n + 1))
    done
}

case $cmd in
    up) up ;;
    down) down ;;
    *) echo "usage: lab.sh up|down PREFIX" >&2; exit 2 ;;
esac
