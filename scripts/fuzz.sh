#!/usr/bin/env bash
# Runs each fuzz target (fuzz/: packet path, control decoder) for SECONDS
# seconds (default 30) on its seed corpus, in a scratch copy of the corpus.
# A crash fails the run and leaves the input in fuzz/artifacts/; turn it into
# a regression by copying it to fuzz/regressions/<target>/ (cargo test
# replays those). cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP lets
# the stable toolchain provide them.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
work=$(mktemp -d /tmp/gw-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
export RUSTC_BOOTSTRAP=1
for target in packet_path control; do
    mkdir -p "$work/$target"
    cp fuzz/corpus/$target/* "$work/$target/"
    status=0
    (cd fuzz && cargo fuzz run -O "$target" "$work/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1) >"$work/$target.log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss|Done|SUMMARY)|cov: .* ft:" "$work/$target.log" | tail -4
    if [ "$status" -ne 0 ]; then
        tail -40 "$work/$target.log"
        echo "fuzz.sh: $target failed (exit $status); see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "fuzz.sh: every target ran ${secs}s without a crash"
