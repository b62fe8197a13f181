#!/usr/bin/env bash
# The lab topologies, in network namespaces this script creates and removes.
# All addresses are in 198.18.0.0/15; the VIP is 198.18.0.100 in every mode.
#
# Usage: lab.sh up PREFIX [fullnat|nat|dr|dr-routed|tun|fullnat-jumbo|fullnat-routed] [dual]   (default fullnat)
#        lab.sh down PREFIX                      (removes the namespaces of any mode)
# PREFIX keeps several labs apart (namespace names are PREFIX-client, PREFIX-gw, ...).
#
# dual: the same layout dual-stack (the IPv6 labs, issue 17). Every IPv4
# address 198.18.A.B/24 of a kernel interface gets its twin 2001:db8:A::B/64
# (the last octet's digits read as hex: 198.18.0.254 -> 2001:db8::254), every
# /32 on lo or vip0 a /128, every IPv4 route an IPv6 one; the VIP's twin is
# 2001:db8::100. IPv6 is on in every namespace but on the gateway's ports
# (gatewayd answers neighbour discovery itself), without duplicate address
# detection, so the addresses are usable at once; the routers forward IPv6.
# Without dual, IPv6 is off everywhere, as before.
# The gateway's veths carry no IP address: the kernel in the gw namespace stays
# out of the way and gatewayd owns the wire through af_packet.
#
# fullnat: two-armed, the real servers only need a route back to the LIP.
#   client ns             gw ns (gatewayd, DPDK af_packet)        sw ns (bridge)     rs1 / rs2 ns
#   c0 198.18.0.2/24 ---- gw0 [port 0 198.18.0.1/24]
#                         gw1 [port 1 198.18.1.1/24] ------------ br0 -------------- eth0 198.18.1.2/24
#                                                                     '------------- eth0 198.18.1.3/24
#   VIP 198.18.0.100 (answered by gatewayd), LIP 198.18.1.10
#
# fullnat-jumbo: the fullnat wiring with every link at MTU 9000 (jumbo frames).
#
# fullnat-routed: the fullnat wiring, but the client sits behind a router
#   (ns "router") whose link toward the client has MTU 1280, the IPv6
#   minimum (the client's own side keeps 1500, so its MSS invites full-size
#   replies): the path-MTU lab of issue 17 (pmtu6_lab.rs).
#   c0 198.18.4.2/24 (client, default via .1) ---- rc 198.18.4.1/24 mtu 1280 (router)
#   r0 198.18.0.254/24 (router) ---- gw0 [port 0 198.18.0.1/24]; port 1 as fullnat
#
# nat: the same wiring (conf/lab-fullnat.toml), plus on rs1/rs2 a default route
#   via 198.18.1.1: the classic LVS-NAT layout, replies go back through the gateway.
#
# dr: one L2 segment, bridge br0 in the sw ns:
#   c0 198.18.0.2/24 (client) -- br0 -- gw0 [gatewayd port 0 198.18.0.1/24]
#                                   |--- eth0 198.18.0.3/24 (rs1), VIP 198.18.0.100/32 on lo
#                                   '--- eth0 198.18.0.4/24 (rs2), VIP 198.18.0.100/32 on lo
#   arp_ignore=1/arp_announce=2 on the real servers: only gatewayd answers ARP
#   for the VIP; the real servers answer the client directly (same segment).
#
# dr-routed: the dr segment, but the client sits behind a router (ns "router")
#   whose link toward the client has MTU 1400 (the client's own side keeps
#   1500, so it advertises an MSS of 1460: a narrower link mid-path):
#   c0 198.18.4.2/24 (client, default via .1) ---- rc 198.18.4.1/24 mtu 1400 (router)
#   r0 198.18.0.254/24 (router) -- br0 -- gw0 [gatewayd port 0 198.18.0.1/24]
#                                     |--- eth0 198.18.0.3/24 (rs1), VIP on lo
#                                     '--- eth0 198.18.0.4/24 (rs2), VIP on lo
#   The real servers' default route is the router: a reply of 1500 bytes with
#   DF makes the router send "fragmentation needed" to its source, the VIP,
#   which only the gateway answers ARP for (path MTU discovery, see
#   tests/e2e/pmtu_lab.rs).
#
# tun: the real servers sit in another subnet, behind a router (ns "router"):
#   c0 198.18.0.2/24 (client, default via .254) -- brc -- gw0 [port 0 198.18.0.1/24]
#                                                     '-- r0 198.18.0.254/24 (router)
#   gw1 [port 1 198.18.1.1/24] --------------------------- r1 198.18.1.254/24 (router)
#   r2 198.18.2.1/24 (router) -- brs -- eth0 198.18.2.2/24 (rs1), eth0 198.18.2.3/24 (rs2)
#   gatewayd (conf/lab-tun.toml, route 198.18.2.0/24 via 198.18.1.254) sends
#   IP-in-IP (outer 198.18.1.1 -> RIP). This kernel has no ipip module, so each
#   real server runs tests/lab/ipip_decap.py: it takes the IPIP packets for its
#   address from a raw socket and writes the inner packet into the TUN device
#   vip0, which holds the VIP. On a normal Linux real server, `modprobe ipip`
#   and the VIP on tunl0 (`ip addr add VIP/32 dev tunl0; ip link set tunl0 up`,
#   rp_filter relaxed) do the same. Replies leave from the VIP through the
#   router straight to the client, never through the gateway.
set -euo pipefail

usage() { echo "usage: lab.sh up PREFIX [fullnat|nat|dr|dr-routed|tun|fullnat-jumbo|fullnat-routed] [dual] | lab.sh down PREFIX" >&2; exit 2; }
cmd=${1:-}
P=${2:-}
MODE=${3:-fullnat}
DUAL=${4:-}
[ -n "$P" ] || usage
[ -z "$DUAL" ] || [ "$DUAL" = dual ] || usage
HERE=$(cd "$(dirname "$0")" && pwd)
VIP=198.18.0.100
# Every namespace any mode creates: `down` removes them all.
ALL_NS=(client gw sw router rs1 rs2)

ns() { ip netns exec "$P-$1" "${@:2}"; }

down() {
    for n in "${ALL_NS[@]}"; do
        ip netns pids "$P-$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$P-$n" 2>/dev/null || true
    done
    rm -f "${TMPDIR:-/tmp}/$P"-rs[12]-ipip.log
}

mkns() {
    for n in "$@"; do
        ip netns add "$P-$n"
        ns "$n" ip link set lo up
        if [ -n "$DUAL" ]; then
            # Interfaces created from now on take the defaults: no DAD, no
            # router advertisements, no autoconfigured addresses.
            for k in all default; do
                ns "$n" sysctl -qw "net.ipv6.conf.$k.accept_dad=0"
                ns "$n" sysctl -qw "net.ipv6.conf.$k.accept_ra=0"
                ns "$n" sysctl -qw "net.ipv6.conf.$k.autoconf=0"
            done
        else
            ns "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
            ns "$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        fi
    done
}

# The IPv6 twin of an IPv4 address of the lab (see dual above):
# 198.18.A.B/24 -> 2001:db8:A::B/64, /32 -> /128.
v6() {
    local ip=${1%/*} len=${1#*/} a b c d
    IFS=. read -r a b c d <<<"$ip"
    case $len in 24) len=64 ;; 32) len=128 ;; esac
    echo "2001:db8:$c::$d/$len"
}

# `ip addr add ADDR dev DEV` in namespace NS, and the IPv6 twin in dual labs.
addr() {
    local n=$1 a=$2 dev=$3
    ns "$n" ip addr add "$a" dev "$dev"
    [ -z "$DUAL" ] || ns "$n" ip -6 addr add "$(v6 "$a")" dev "$dev" nodad
}

# `ip route add default via GW` in namespace NS, and the IPv6 twin in dual labs.
default_via() {
    local n=$1 gw=$2
    ns "$n" ip route add default via "$gw"
    if [ -n "$DUAL" ]; then
        local g6
        g6=$(v6 "$gw/32")
        ns "$n" ip -6 route add default via "${g6%/*}"
    fi
}

# IP forwarding on in namespace NS (IPv6 too in dual labs).
forwarding() {
    ns "$1" sysctl -qw net.ipv4.ip_forward=1
    [ -z "$DUAL" ] || ns "$1" sysctl -qw net.ipv6.conf.all.forwarding=1
}

# A bridge in the sw namespace.
bridge() {
    ns sw ip link add "$1" type bridge
    ns sw ip link set "$1" up
}

# veth IFACE in namespace NS, its peer PEER enslaved to BRIDGE in the sw namespace.
to_bridge() {
    local n=$1 ifname=$2 peer=$3 br=$4
    ip link add "$ifname" netns "$P-$n" type veth peer name "$peer" netns "$P-sw"
    ns sw ip link set "$peer" master "$br"
    ns sw ip link set "$peer" up
}

# A gateway port: no address, no IPv6, up (gatewayd binds it with af_packet).
gw_port() {
    ns gw sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1"
    ns gw ip link set "$1" up
}

# A kernel interface with an address. veths hand af_packet frames with
# partial L4 checksums unless TX checksum offload is off on the sending side,
# so it is off on every kernel interface that talks to the gateway or
# forwards toward it.
host_if() {
    local n=$1 ifname=$2 a=$3
    addr "$n" "$a" "$ifname"
    ns "$n" ip link set "$ifname" up
    ns "$n" ethtool -K "$ifname" tx off >/dev/null
}

rp_filter_off() {
    local n=$1; shift
    for i in all default "$@"; do
        ns "$n" sysctl -qw "net.ipv4.conf.$i.rp_filter=0"
    done
}

# Two-armed layout of fullnat and nat.
up_two_armed() {
    mkns client gw sw rs1 rs2
    # client <-> gateway port 0
    ip link add c0 netns "$P-client" type veth peer name gw0 netns "$P-gw"
    # gateway port 1 and the real servers on one bridged segment
    bridge br0
    to_bridge gw gw1 p-gw br0
    to_bridge rs1 eth0 p-rs1 br0
    to_bridge rs2 eth0 p-rs2 br0
    gw_port gw0
    gw_port gw1
    host_if client c0 198.18.0.2/24
    local n=2
    for r in rs1 rs2; do
        host_if "$r" eth0 "198.18.1.$n/24"
        # LVS-NAT: replies must go back through the gateway.
        [ "$MODE" = nat ] && default_via "$r" 198.18.1.1
        n=$((n + 1))
    done
    return 0
}

up_dr() {
    mkns client gw sw rs1 rs2
    bridge br0
    to_bridge client c0 p-c0 br0
    to_bridge gw gw0 p-gw br0
    to_bridge rs1 eth0 p-rs1 br0
    to_bridge rs2 eth0 p-rs2 br0
    gw_port gw0
    host_if client c0 198.18.0.2/24
    local n=3
    for r in rs1 rs2; do
        # The VIP on lo, hidden from ARP: arp_ignore=1 answers only for
        # addresses of the receiving interface, arp_announce=2 never uses the
        # VIP as the sender of our own requests.
        for i in all eth0 lo; do
            ns "$r" sysctl -qw "net.ipv4.conf.$i.arp_ignore=1" 2>/dev/null || true
            ns "$r" sysctl -qw "net.ipv4.conf.$i.arp_announce=2" 2>/dev/null || true
        done
        addr "$r" "$VIP/32" lo
        host_if "$r" eth0 "198.18.0.$n/24"
        n=$((n + 1))
    done
}

up_fullnat_routed() {
    mkns client gw sw router rs1 rs2
    ip link add c0 netns "$P-client" type veth peer name rc netns "$P-router"
    ip link add r0 netns "$P-router" type veth peer name gw0 netns "$P-gw"
    bridge br0
    to_bridge gw gw1 p-gw br0
    to_bridge rs1 eth0 p-rs1 br0
    to_bridge rs2 eth0 p-rs2 br0
    gw_port gw0
    gw_port gw1
    host_if client c0 198.18.4.2/24
    default_via client 198.18.4.1
    host_if router rc 198.18.4.1/24
    ns router ip link set rc mtu 1280
    host_if router r0 198.18.0.254/24
    forwarding router
    host_if rs1 eth0 198.18.1.2/24
    host_if rs2 eth0 198.18.1.3/24
}

up_dr_routed() {
    mkns client gw sw router rs1 rs2
    bridge br0
    to_bridge gw gw0 p-gw br0
    to_bridge router r0 p-r0 br0
    to_bridge rs1 eth0 p-rs1 br0
    to_bridge rs2 eth0 p-rs2 br0
    ip link add c0 netns "$P-client" type veth peer name rc netns "$P-router"
    gw_port gw0
    host_if client c0 198.18.4.2/24
    default_via client 198.18.4.1
    host_if router rc 198.18.4.1/24
    ns router ip link set rc mtu 1400
    host_if router r0 198.18.0.254/24
    forwarding router
    local n=3 r
    for r in rs1 rs2; do
        for i in all eth0 lo; do
            ns "$r" sysctl -qw "net.ipv4.conf.$i.arp_ignore=1" 2>/dev/null || true
            ns "$r" sysctl -qw "net.ipv4.conf.$i.arp_announce=2" 2>/dev/null || true
        done
        addr "$r" "$VIP/32" lo
        host_if "$r" eth0 "198.18.0.$n/24"
        default_via "$r" 198.18.0.254
        n=$((n + 1))
    done
}

up_tun() {
    mkns client gw sw router rs1 rs2
    bridge brc
    bridge brs
    to_bridge client c0 p-c0 brc
    to_bridge gw gw0 p-gw brc
    to_bridge router r0 p-r0 brc
    ip link add gw1 netns "$P-gw" type veth peer name r1 netns "$P-router"
    to_bridge router r2 p-r2 brs
    to_bridge rs1 eth0 p-rs1 brs
    to_bridge rs2 eth0 p-rs2 brs
    gw_port gw0
    gw_port gw1
    host_if client c0 198.18.0.2/24
    default_via client 198.18.0.254
    host_if router r0 198.18.0.254/24
    host_if router r1 198.18.1.254/24
    host_if router r2 198.18.2.1/24
    forwarding router
    # Replies from the VIP arrive on r2 although the VIP's subnet is on r0.
    rp_filter_off router r0 r1 r2
    local n=2 r
    for r in rs1 rs2; do
        local rip="198.18.2.$n"
        host_if "$r" eth0 "$rip/24"
        default_via "$r" 198.18.2.1
        # The decapsulation helper (a stand-in for the ipip module + tunl0,
        # see the top of this file). It runs until the namespace is removed.
        local rip6=
        [ -z "$DUAL" ] || rip6=$(v6 "$rip/32")
        ns "$r" setsid python3 "$HERE/ipip_decap.py" "$rip" vip0 ${rip6:+"${rip6%/*}"} \
            </dev/null >"${TMPDIR:-/tmp}/$P-$r-ipip.log" 2>&1 &
        local t
        for t in $(seq 50); do
            ns "$r" ip link show vip0 >/dev/null 2>&1 && break
            sleep 0.1
        done
        ns "$r" ip link show vip0 >/dev/null 2>&1 || {
            cat "${TMPDIR:-/tmp}/$P-$r-ipip.log" >&2
            echo "lab.sh: ipip_decap.py did not create vip0 in $P-$r" >&2
            return 1
        }
        addr "$r" "$VIP/32" vip0
        ns "$r" ip link set vip0 up
        # The inner packets come in on vip0 from a client routed via eth0.
        rp_filter_off "$r" eth0 vip0
        n=$((n + 1))
    done
}

# Every link of every namespace (but lo) to MTU $1: the jumbo layouts.
# Twice: a bridge takes a larger MTU only once its ports have it.
all_mtu() {
    local n dev pass
    for pass in 1 2; do
        for n in "${ALL_NS[@]}"; do
            ip netns pids "$P-$n" >/dev/null 2>&1 || continue
            for dev in $(ns "$n" ls /sys/class/net 2>/dev/null); do
                [ "$dev" = lo ] && continue
                ns "$n" ip link set "$dev" mtu "$1" 2>/dev/null || [ "$pass" = 1 ]
            done
        done
    done
}

up() {
    case $MODE in
        fullnat | nat | dr | dr-routed | tun | fullnat-jumbo | fullnat-routed) ;;
        *) usage ;;
    esac
    down
    # Remove what was built so far if any step fails.
    trap 'rc=$?; [ "$rc" -eq 0 ] || down; exit "$rc"' EXIT
    case $MODE in
        fullnat | nat) up_two_armed ;;
        fullnat-jumbo)
            MODE=fullnat up_two_armed
            all_mtu 9000
            ;;
        dr) up_dr ;;
        dr-routed) up_dr_routed ;;
        fullnat-routed) up_fullnat_routed ;;
        tun) up_tun ;;
    esac
}

case $cmd in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
