#!/usr/bin/env bash
# Checks the systemd units in systemd/: `systemd-analyze verify` must print nothing (it exits 0
# on unknown keys and misspelt values and only says so on stderr), and the exposure score of
# `systemd-analyze security --offline=true` must stay at or under each unit's budget
# (collector 1.5, agent 2.5). Prints the scores. Needs the Debian package `systemd` (for
# systemd-analyze; no running systemd, no root).
#
# verify checks that ExecStart= binaries exist, so it runs on copies of the units whose
# /usr/bin/redline-* paths point at the built binaries (REDLINE_BIN_DIR, default
# $CARGO_TARGET_DIR/debug, built here if missing). It runs with --man=no: the man pages
# named in Documentation= are installed by the package, not present in a checkout.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
command -v systemd-analyze >/dev/null || {
    echo "error: systemd-analyze not found (Debian package: systemd)" >&2
    exit 1
}

units=(redline-collector redline-agent)
declare -A budget=([redline-collector]=1.5 [redline-agent]=2.5)

bin_dir=${REDLINE_BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/debug}
if [ ! -x "$bin_dir/redline-collector" ] || [ ! -x "$bin_dir/redline-agent" ]; then
    cargo build --quiet -p redline-collector -p redline-agent --bins
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for u in "${units[@]}"; do
    sed "s|/usr/bin/$u |$bin_dir/$u |g" "systemd/$u.service" >"$tmp/$u.service"
    grep -q "$bin_dir/$u " "$tmp/$u.service" || {
        echo "error: systemd/$u.service does not run /usr/bin/$u" >&2
        exit 1
    }
done

status=0
out=$(systemd-analyze verify --man=no "$tmp"/*.service 2>&1) || status=1
if [ -n "$out" ]; then
    echo "systemd-analyze verify:" >&2
    # Name the checked-in files, not the temporary copies.
    printf '%s\n' "$out" | sed "s|$tmp/|systemd/|g" >&2
    status=1
else
    echo "systemd-analyze verify: clean"
fi

for u in "${units[@]}"; do
    report=$(systemd-analyze security --offline=true "systemd/$u.service" 2>&1) || true
    score=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    if [ -z "$score" ]; then
        printf '%s\n' "$report" >&2
        echo "error: no exposure score for $u" >&2
        status=1
        continue
    fi
    max=${budget[$u]}
    if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
        echo "$u exposure $score (budget $max): ok"
    else
        printf '%s\n' "$report" | grep '✗' >&2 || true
        echo "$u exposure $score is over its budget $max" >&2
        status=1
    fi
done
exit "$status"
