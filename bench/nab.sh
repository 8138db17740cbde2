#!/usr/bin/env bash
# NAB benchmark: runs Redline's production anomaly detector over the Numenta Anomaly Benchmark
# dev set with a release redline-collector (`detect nab`), scores the results the way NAB's
# official scorer does (`detect nab-score`, thresholds optimized on the scored files), and
# prints the three normalised scores next to the published detectors' scores on the same
# 45 dev files (SCORING.md §11 of the NAB folder).
#
# Prints: the scorer's table (threshold, raw and normalised score, TP/FP/FN/TN rows per
# profile), the comparison table sorted by the standard score, and how long the detector run
# and the scoring took.
#
# Usage: bench/nab.sh [--per-file] [--keep]
#   --per-file  also print per-file raw scores and row counts per profile (CSV)
#   --keep      keep the results directory and print its path
# Environment: NAB_DIR (default /work/shared/nab) holding data/, labels/windows.json.
set -euo pipefail

cd "$(dirname "$0")/.."

nab=${NAB_DIR:-/work/shared/nab}
per_file=0 keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --per-file) per_file=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
windows=$nab/labels/windows.json
if [ ! -d "$nab/data" ] || [ ! -f "$windows" ]; then
    echo "error: no NAB data set in $nab (expected data/ and labels/windows.json; set NAB_DIR)" >&2
    exit 1
fi

echo "==> building release redline-collector" >&2
cargo build --release --quiet -p redline-collector --bin redline-collector
bin=target/release/redline-collector

out=$(mktemp -d "${TMPDIR:-/tmp}/redline-nab.XXXXXX")
cleanup() {
    if [ "$keep" -eq 1 ]; then
        echo "results kept in $out" >&2
    else
        rm -rf "$out"
    fi
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "==> detect nab $nab/data" >&2
t0=$(now)
"$bin" detect nab "$nab/data" "$out" --windows "$windows" >&2
t1=$(now)

echo "==> detect nab-score" >&2
score_args=("$out" --windows "$windows")
[ "$per_file" -eq 1 ] && score_args+=(--per-file)
"$bin" detect nab-score "${score_args[@]}" >"$out/scores.txt" 2>"$out/score.log" || {
    cat "$out/score.log" >&2
    exit 1
}
t2=$(now)
cat "$out/scores.txt"
echo

# The scorer's summary lines: profile threshold raw normalized TP FP FN TN.
read -r std fp fn < <(awk '
    $1 == "standard" { s = $4 } $1 == "reward_low_FP_rate" { p = $4 } $1 == "reward_low_FN_rate" { n = $4 }
    END { print s, p, n }' "$out/scores.txt")

# Published NAB detectors' result files scored on the 45 dev files only (92 windows), thresholds
# optimized on them: SCORING.md §11. Not the full-corpus NAB leaderboard.
{
    printf '%s\t%s\t%s\t%s\n' "redline (this build)" "$std" "$fp" "$fn"
    printf '%s\t%s\t%s\t%s\n' \
        "ARTime" 74.92 65.62 80.02 \
        "numenta (HTM)" 68.03 61.81 72.17 \
        "contextOSE" 67.01 64.53 69.98 \
        "knncad" 55.85 39.92 62.96 \
        "twitterADVec" 45.52 31.62 51.72 \
        "windowedGaussian" 41.39 24.37 48.27 \
        "rolling z-score baseline" 32.32 21.28 44.74 \
        "random" 19.69 8.44 29.79 \
        "null (never fires)" 0.00 0.00 0.00
} | sort -t $'\t' -k2,2 -g -r | awk -F '\t' '
    BEGIN { printf "%-26s %9s %14s %14s\n", "NAB dev set (45 files)", "standard", "reward_low_FP", "reward_low_FN" }
    { mark = ($1 ~ /this build/) ? "  <--" : ""; printf "%-26s %9.2f %14.2f %14.2f%s\n", $1, $2, $3, $4, mark }'
echo
echo "detector run: $(elapsed "$t0" "$t1") s (release, $(nproc) cores); scoring: $(elapsed "$t1" "$t2") s ($(tail -n 1 "$out/score.log"))"
