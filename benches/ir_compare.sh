#!/usr/bin/env bash
# Issue 17's "IPv4 rows unchanged within 3 %" as a deterministic figure:
# callgrind instructions per packet of an IPv4 FULLNAT row for two builds,
# through one and the same harness, and their ratio. Cycles cannot judge
# 3 % on this VM (docs/benchmarks.md, "Alternating phases"), and two builds
# cannot share one process.
#
#   benches/ir_compare.sh                        b2ceba3 (before IPv6 sessions) against this work tree
#   benches/ir_compare.sh --old b2ceba3 --new HEAD --rows ",toa,kernel" --n 50000
#
# Both builds run the OLD build's benches/examples/ir_per_packet.rs (copied
# into both trees as `ir_base`), so the harness's own instructions (frame
# building, copies: 50-60 per packet, and they changed over time) are the
# same on both sides and only gatewayd's code differs. That needs the old
# example to compile against the new tree (b2ceba3's does: it uses only
# `Engine::process` and the benches library); if it does not, the script
# says so. A row is that example's words after N (empty: FULLNAT TCP
# established through `Engine::process`; b2ceba3's also knows toa, v1, v2,
# kernel); a word the old example does not know is refused, since it would
# silently measure plain TCP.
#
# Each build is `git archive`d into $GW_IR_DIR/<commit> (default
# /var/tmp/gw-ir, kept: a second run only measures); `--new .` (the
# default) is this work tree's tracked files as they are (`git stash
# create`; untracked files are not part of it). Each tree has its own
# target directory: cargo hashes a workspace member by its path relative to
# the workspace root, so two trees sharing one would overwrite each other's
# crates.
#
# Per packet = (Ir(2N) - Ir(N)) / 2N, the recipe of ir_per_packet.rs: the
# setup (1,000 sessions opened) cancels out.
set -euo pipefail
cd "$(dirname "$0")/.."

old=b2ceba3
new=.
rows=""
n=50000
while [ $# -gt 0 ]; do
    case "$1" in
        --old) old=$2; shift 2 ;;
        --new) new=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --n) n=$2; shift 2 ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "ir_compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "ir_compare.sh: valgrind is missing" >&2; exit 1; }
base=${GW_IR_DIR:-/var/tmp/gw-ir}
mkdir -p "$base"

# The commit of build $1 ("." is the work tree's tracked state).
commit_of() {
    if [ "$1" = . ]; then
        local c
        c=$(git stash create)
        git rev-parse --short=12 "${c:-HEAD}"
    else
        git rev-parse --short=12 "$1^{commit}"
    fi
}

c_old=$(commit_of "$old")
c_new=$(commit_of "$new")
harness=$(git show "$c_old:benches/examples/ir_per_packet.rs") || {
    echo "ir_compare.sh: $old has no benches/examples/ir_per_packet.rs" >&2
    exit 1
}

# Unpacks commit $1 with the harness as its `ir_base` example, builds it,
# and prints the binary's path.
build() {
    local c=$1 t=$base/$1 target=$base/$1/target
    if [ ! -f "$t/Cargo.toml" ]; then
        mkdir -p "$t"
        git archive "$c" | tar -x -C "$t"
    fi
    printf '%s\n' "$harness" >"$t/benches/examples/ir_base.rs"
    echo "ir_compare.sh: building $c (harness from $c_old) ..." >&2
    if ! (cd "$t" && CARGO_TARGET_DIR=$target cargo build --release -q -p gw-benches --example ir_base) >&2; then
        echo "ir_compare.sh: $old's harness does not build against $c: compare with an older --new or a newer --old" >&2
        exit 1
    fi
    cp "$target/release/examples/ir_base" "$base/ir_base.$c"
    echo "$base/ir_base.$c"
}

# Instructions of one run: ir BIN N WORDS...
ir() {
    local bin=$1 k=$2 out
    shift 2
    out=$(mktemp "$base/cg.XXXXXX")
    # shellcheck disable=SC2068
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$k" $@ >/dev/null 2>&1
    awk '/^summary:/ {print $2}' "$out"
    rm -f "$out"
}

per_packet() {
    local a b
    a=$(ir "$1" "$n" "$2")
    b=$(ir "$1" $((2 * n)) "$2")
    awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { printf "%.2f\n", (b - a) / (2 * n) }'
}

IFS=',' read -r -a list <<<"$rows"
[ "${rows: -1}" = , ] && list+=("")
[ ${#list[@]} -eq 0 ] && list=("")
for r in "${list[@]}"; do
    for w in $r; do
        grep -q "\"$w\"" <<<"$harness" || {
            echo "ir_compare.sh: $old's harness does not know the word \"$w\"" >&2
            exit 2
        }
    done
done

b_old=$(build "$c_old")
b_new=$(build "$c_new")
label() { [ "$1" = . ] && echo "work tree ($2)" || echo "$1 ($2)"; }
echo "| row (harness words) | $(label "$old" "$c_old") Ir/packet | $(label "$new" "$c_new") Ir/packet | new / old |"
echo "|---|--:|--:|--:|"
for r in "${list[@]}"; do
    po=$(per_packet "$b_old" "$r")
    pn=$(per_packet "$b_new" "$r")
    ratio=$(awk -v o="$po" -v n="$pn" 'BEGIN { printf "%.4f", n / o }')
    echo "| ${r:-FULLNAT TCP established} | $po | $pn | $ratio |"
done
echo
echo "Harness: $old's benches/examples/ir_per_packet.rs in both builds; N = $n packets each way;"
echo "per packet = (Ir(2N) - Ir(N)) / 2N. Issue 17's goal: new / old within 0.97-1.03."
