#!/usr/bin/env bash
# Runs every test: the packet core's unit and property tests, gwctl's tests,
# the DPDK wrapper's tests, and the end-to-end namespace labs (real DPDK
# af_packet ports, real HTTP/UDP servers). Needs root (namespaces, DPDK).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
start=$(date +%s)
cargo build --bins
target=${CARGO_TARGET_DIR:-$PWD/target}
export GATEWAYD_BIN=$target/debug/gatewayd GWCTL_BIN=$target/debug/gwctl
# The labs' helpers run `python3` and import scapy, installed for Debian's
# python3. When another python3 comes first on PATH (pyenv, a virtualenv)
# and lacks scapy, the labs get Debian's through a link put first.
if ! python3 -c 'import scapy' 2>/dev/null && /usr/bin/python3 -c 'import scapy' 2>/dev/null; then
    mkdir -p "$target/lab-python"
    ln -sf /usr/bin/python3 "$target/lab-python/python3"
    export PATH="$target/lab-python:$PATH"
fi
# The control plane builds without DPDK (the packet core never needs it).
cargo check -q -p gw-core -p gw-dataplane --no-default-features
# Tests that need root are #[ignore = "needs root ..."], so a developer's
# plain `cargo nextest run` reports them as skipped; this script runs as
# root, so it runs them too.
cargo nextest run --workspace --profile ci --run-ignored all
echo "test.sh: all tests passed in $(( $(date +%s) - start )) s"
