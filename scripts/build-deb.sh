#!/usr/bin/env bash
# Builds the Debian package (gatewayd, gwctl, gatewayd.service, conffiles
# under /etc/gatewayd, man pages): target/debian/gatewayd_<version>_<arch>.deb.
#
#   scripts/build-deb.sh            release build, then the package
#   PROFILE=dev scripts/build-deb.sh  package the debug binaries as they are
#                                    (no build: what tests/e2e/package_test.rs uses)
#
# Needs cargo-deb (scripts/install-deps.sh installs it) and dpkg-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
target=${CARGO_TARGET_DIR:-$PWD/target}
case $profile in
    release) dir=release; cargo build --release --bins ;;
    dev) dir=debug ;;
    *) echo "PROFILE must be release or dev" >&2; exit 2 ;;
esac
for b in gatewayd gwctl; do
    [[ -x $target/$dir/$b ]] || { echo "no $target/$dir/$b: cargo build --bins first" >&2; exit 1; }
done

# Man pages: each command's own --help text, so they never drift from it.
man=$target/$dir/man
rm -rf "$man" && mkdir -p "$man"
manpage() { # name section summary help-text-file
    local date
    date=$(git log -1 --format=%cs 2>/dev/null || date +%F)
    {
        printf '.TH %s %s "%s" "gatewayd %s" "System Administration"\n' \
            "${1^^}" "$2" "$date" "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
        printf '.SH NAME\n%s \\- %s\n' "$1" "$3"
        printf '.SH DESCRIPTION\nThe text of \\fB%s \\-\\-help\\fR:\n.PP\n.nf\n' "$1"
        # Escape backslashes, and lines that would start a troff request.
        sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" "$4"
        printf '.fi\n'
        [[ -n ${5:-} ]] && printf '%s\n' "$5"
        printf '.SH FILES\n'
        printf '/etc/gatewayd/gatewayd.toml, /etc/gatewayd/rules, /etc/default/gatewayd\n'
        printf '.SH SEE ALSO\n\\fBgatewayd\\fR(8), \\fBgwctl\\fR(8), \\fBipvsadm\\fR(8);\n'
        printf '/usr/share/doc/gatewayd/README.md\n'
    } > "$man/$1.$2"
    gzip -9n "$man/$1.$2"
}
"$target/$dir/gatewayd" --help > "$man/gatewayd.txt"
manpage gatewayd 8 "a DPDK layer-4 load balancer driven by gwctl (ipvsadm syntax)" "$man/gatewayd.txt"
# gwctl prints ipvsadm's usage under the name it was called by.
(cd "$target/$dir" && ./gwctl --help | sed 's|\./gwctl|gwctl|g') > "$man/gwctl.txt"
manpage gwctl 8 "administer gatewayd's virtual services (ipvsadm's command line)" "$man/gwctl.txt" \
'.SH EXTENSIONS
Beyond ipvsadm (see /usr/share/doc/gatewayd/README.md):
.TP
\fB\-\-add\-laddr\fR, \fB\-\-del\-laddr\fR, \fB\-\-get\-laddr\fR
FULLNAT local addresses of a service (DPVS).
.TP
\fB\-\-counters\fR [\fB\-\-json\fR]
Per-worker counters (drop reasons) and port statistics.
.TP
\fB\-\-add\-neighbour\fR \fIADDRESS\fR \fB\-\-mac\fR \fIMAC\fR \fB\-\-port\fR \fIPORT\fR
A static neighbour: never evicted, never changed by ARP.
.TP
\fB\-\-del\-neighbour\fR \fIADDRESS\fR \fB\-\-port\fR \fIPORT\fR, \fB\-\-list\-neighbours\fR [\fB\-\-json\fR]
Remove or list static neighbours.
.TP
\fB\-\-socket\fR \fIPATH\fR
gatewayd'"'"'s control socket (default /run/gatewayd.sock).'
rm "$man"/*.txt

args=(-p gw-dataplane --no-build)
[[ $profile == dev ]] && args+=(--profile dev)
cargo deb "${args[@]}" "$@"
