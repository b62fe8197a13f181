#!/usr/bin/env bash
# Installs what gatewayd needs to build, test and run its labs on Debian 12:
# DPDK 22.11 (EAL, PMDs, headers), libclang for bindgen, lab tools, and
# cargo-nextest, netbase (/etc/services). Safe to run again: it skips what is already there.
set -euo pipefail
pkgs=(dpdk dpdk-dev libdpdk-dev libclang-dev pkg-config build-essential
      iproute2 ethtool iputils-ping curl python3 procps
      netbase  # /etc/services: gwctl's port names, as ipvsadm's getservbyname
      prometheus  # metrics_lab: a real Prometheus server and promtool
      nginx-light haproxy python3-scapy  # real servers and a capture for the client-address lab
      bird2  # the exception-path lab: BGP over a DPDK port
      openssl  # SSL_GET's test peer (openssl s_server)
      nftables  # the SYNPROXY lab: a real server's side that loses a SYN; a server that leaves SYNs unanswered
      dnsmasq-base  # one_packet_lab: real DNS servers behind a one-packet (-o) service
      keepalived  # gw-keepalived's tests: keepalived's own --config-test as the reference
      dpkg-dev systemd)  # the package: dpkg-shlibdeps, systemd-analyze verify
missing=()
for p in "${pkgs[@]}"; do
    # Installed, not just known (a removed package keeps its status).
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The labs start the daemons they need in their namespaces: the
    # packages' own services (nginx on :80, keepalived, ...) are not started
    # on the host (policy-rc.d, unless the machine has its own).
    policy=/usr/sbin/policy-rc.d ours=
    if [ ! -e "$policy" ]; then
        ours=1
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get install -y -qq "${missing[@]}" >/dev/null
    if [ -n "$ours" ]; then
        rm -f "$policy"
        trap - EXIT
    fi
fi
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust (rustup) first" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
# The Debian package (scripts/build-deb.sh, tests/e2e/package.rs).
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
