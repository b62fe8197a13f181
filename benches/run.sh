#!/usr/bin/env bash
# gatewayd's benchmark harness (issue 5), one command:
#
#   benches/run.sh            every scenario (~4 minutes), writes benches/results/
#   benches/run.sh --smoke    ~25 seconds: gatewayd must forward traffic (and one --ratio round, one
#                             short --alternate), else exit 1 (CI)
#   benches/run.sh --only fullnat-udp-1k,testpmd-64     some scenarios (--list shows them)
#   benches/run.sh --debug --smoke                      use debug builds (faster to build)
#   benches/run.sh --ratio issues --rounds 7            interleaved ratios (issues 14 and 17),
#       writes benches/results/ratios.md; pairs A:B of ids, a side ID@b runs --gatewayd-b BIN
#   benches/run.sh --alternate issue17 --pairs 24       IPv6/IPv4 in alternating phases of one
#       gatewayd (issue 17), writes benches/results/alternate.md
#   benches/run.sh --trace fullnat-udp-1k               cycles/packet per 100 ms over a long run
#
# Builds gatewayd, gw-pktgen and gw-benchrun, then runs gw-benchrun, which
# starts gatewayd (or dpdk-testpmd) and gw-pktgen joined by net_memif for
# each scenario. Needs root (DPDK) and Debian's DPDK packages
# (scripts/install-deps.sh). No hugepages, namespaces or NICs are used.
# Every process, scratch directory and DPDK runtime directory it creates is
# removed when it ends, also on failure or Ctrl-C. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
args=()
for a in "$@"; do
    case "$a" in
        --debug) profile=debug ;;
        *) args+=("$a") ;;
    esac
done

if ! command -v dpdk-testpmd >/dev/null || ! pkg-config --exists libdpdk; then
    echo "run.sh: DPDK is missing: run scripts/install-deps.sh first" >&2
    exit 1
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo_flags=()
[ "$profile" = release ] && cargo_flags+=(--release)
cargo build "${cargo_flags[@]}" -p gw-dataplane --bin gatewayd
cargo build "${cargo_flags[@]}" -p gw-benches --bin gw-pktgen --bin gw-benchrun
bin=$CARGO_TARGET_DIR/$profile

run_dir=$(mktemp -d /run/gwbench.XXXXXX)
runner=
cleanup() {
    local rc=$?
    if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
        # The runner stops its children on SIGTERM; give it time, then end
        # whatever is left of what it started (by pid, never by name).
        kill -TERM "$runner" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$runner" 2>/dev/null || break; sleep 0.2; done
        for pid in $(ps -o pid= --ppid "$runner" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        kill -KILL "$runner" 2>/dev/null || true
    fi
    rm -rf "$run_dir"
    [ -n "$runner" ] && rm -rf /var/run/dpdk/gwbench"$runner"-* 2>/dev/null
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$bin/gw-benchrun" --run-dir "$run_dir" --gatewayd "$bin/gatewayd" --pktgen "$bin/gw-pktgen" "${args[@]}" &
runner=$!
wait "$runner"
