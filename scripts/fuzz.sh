#!/usr/bin/env bash
# Builds the cargo-fuzz targets (collector/fuzz, agent/fuzz) and runs each for a bounded time
# on its committed corpus. Fails if any target crashes (panic, overflow, OOM, timeout) and
# prints the path of the crashing input; exits 0 otherwise.
#
#   scripts/fuzz.sh                   CI mode: every target for FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh --long 3600       every target for 3600 s each; prints executions per target
#   scripts/fuzz.sh --runs 10000000   every target until it has run 10 M inputs (no time limit)
#   scripts/fuzz.sh promql otlp_http  only these targets (with or without --long N)
#   scripts/fuzz.sh --build-only      build, run nothing
#   scripts/fuzz.sh --no-build ...    run the binaries built last time (the tree may have moved on)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a C++ compiler (libfuzzer-sys
# builds libFuzzer). It works on a stable toolchain: the targets are built with
# `--sanitizer none`, which passes only stable flags to rustc (`-Cpasses=sancov-module`,
# `-Cllvm-args=-sanitizer-coverage-*`, `--cfg fuzzing`, `-Cdebug-assertions`). AddressSanitizer
# (cargo-fuzz's default) needs nightly's `-Zsanitizer` and buys little here: the workspace
# forbids `unsafe`. We do not use RUSTC_BOOTSTRAP to get nightly flags out of stable.
#
# Environment:
#   FUZZ_SECONDS      seconds per target in CI mode (default 20)
#   FUZZ_BUILD        release (default: optimised, with debug assertions and overflow checks)
#                     or dev (unoptimised: builds faster, runs several times slower)
#   FUZZ_CODEGEN_UNITS  codegen units of a release build (cargo-fuzz's default is 1: slowest to
#                     build, fastest to run; 16 builds much faster on CI)
#   FUZZ_TARGET_DIR   cargo's target directory (default target/fuzz, shared by both crates)
#   FUZZ_TIMEOUT      seconds one input may take before it counts as a hang (default 20)
#   FUZZ_RSS_MB       memory limit, MB (default 2048); a larger allocation is a crash
#   FUZZ_JOBS         targets run at once (default 1)
#   FUZZ_WORKERS      processes per target (default 1), sharing its work corpus (libFuzzer
#                     re-reads it to pick up the others' finds); --runs N is split between them
#                     and the table shows their sums. For a slow target on a multi-core machine.
#
# New interesting inputs go to $FUZZ_TARGET_DIR/corpus/<target> (kept between runs), not to
# the committed corpus; crashes to $FUZZ_TARGET_DIR/artifacts/<target>/. To keep a finding as
# a seed, minimise it (`<binary> -minimize_crash=1 <input>` or `-merge=1`) and copy it into
# <crate>/fuzz/corpus/<target>/.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-20}
build=${FUZZ_BUILD:-release}
target_dir=${FUZZ_TARGET_DIR:-$root/target/fuzz}
timeout=${FUZZ_TIMEOUT:-20}
rss_mb=${FUZZ_RSS_MB:-2048}
jobs=${FUZZ_JOBS:-1}
workers=${FUZZ_WORKERS:-1}
build_only=false
no_build=false
long=false
runs=
selected=()

while [ $# -gt 0 ]; do
    case "$1" in
        --long) long=true; seconds=${2:?--long needs a number of seconds}; shift 2 ;;
        --runs) long=true; runs=${2:?--runs needs a number of executions}; seconds=0; shift 2 ;;
        --build-only) build_only=true; shift ;;
        --no-build) no_build=true; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) selected+=("$1"); shift ;;
    esac
done

command -v cargo-fuzz >/dev/null || {
    echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}

crates=(collector/fuzz agent/fuzz)
case "$build" in
    release) flags=(-O -a); profile=release ;;
    dev) flags=(-D); profile=debug ;;
    *) echo "fuzz.sh: FUZZ_BUILD must be release or dev" >&2; exit 2 ;;
esac
[ -n "${FUZZ_CODEGEN_UNITS:-}" ] && flags+=(--codegen-units "$FUZZ_CODEGEN_UNITS")
host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$target_dir/$host/$profile

# Every target of a crate is a [[bin]] whose source is fuzz_targets/<name>.rs.
targets_of() { (cd "$1/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//'); }
wanted() {
    [ ${#selected[@]} -eq 0 ] && return 0
    local s
    for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

if ! $no_build; then
    printf '==> building fuzz targets (%s, %s)\n' "$build" "$(rustc --version)"
    for crate in "${crates[@]}"; do
        (cd "$crate" && cargo fuzz build --sanitizer none "${flags[@]}" --target-dir "$target_dir")
    done
fi
$build_only && exit 0

# One run: the work corpus first (libFuzzer adds new inputs to the first directory), then the
# committed seeds; with FUZZ_WORKERS > 1, that many processes on the same corpus. Prints
# "target executions exec/s seconds status artifact" (executions and rates summed).
run_one() {
    local crate=$1 name=$2
    local work=$target_dir/corpus/$name artifacts=$target_dir/artifacts/$name/
    local log=$target_dir/logs/$name.log
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    local args=(
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb"
        -artifact_prefix="$artifacts" -print_final_stats=1 -max_len=65536
    )
    [ -n "$runs" ] && args+=(-runs="$(((runs + workers - 1) / workers))")
    [ -f "$crate/dict/$name.dict" ] && args+=(-dict="$crate/dict/$name.dict")
    local start status=ok logs=() pids=() w
    start=$(date +%s)
    for ((w = 1; w <= workers; w++)); do
        local wlog=$log
        [ "$w" -gt 1 ] && wlog=${log%.log}.$w.log
        logs+=("$wlog")
        "$bin_dir/$name" "${args[@]}" "$work" "$crate/corpus/$name" >"$wlog" 2>&1 &
        pids+=($!)
    done
    for w in "${pids[@]}"; do
        wait "$w" || status=CRASH
    done
    local execs rate artifact
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${logs[@]}" | awk '{ n += $1 } END { if (NR) print n }')
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "${logs[@]}" | awk '{ n += $1 } END { if (NR) print n }')
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "${logs[@]}" | tail -1)
    printf '%-18s %12s %8s %6s %-5s %s\n' "$name" "${execs:-?}" "${rate:-?}" \
        "$(($(date +%s) - start))" "$status" "${artifact:-}"
    if [ "$status" != ok ]; then
        # The panic message and backtrace, for the CI log.
        grep -h -m1 -B2 -A25 -E "panicked at|ERROR: libFuzzer|SUMMARY: libFuzzer" "${logs[@]}" | sed 's/^/    /' >&2 || true
        echo "    full log: ${logs[*]}; reproduce: $bin_dir/$name ${artifact:-<input>}" >&2
    fi
}

if [ -n "$runs" ]; then
    printf '==> running each target for %s executions\n' "$runs"
else
    printf '==> running each target for %s s\n' "$seconds"
fi
printf '%-18s %12s %8s %6s %-5s %s\n' target executions exec/s secs status crash_input
results=$(mktemp)
trap 'rm -f "$results"' EXIT
running=0
for crate in "${crates[@]}"; do
    for name in $(targets_of "$crate"); do
        wanted "$name" || continue
        run_one "$crate" "$name" | tee -a "$results" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
            wait -n || true
            running=$((running - 1))
        fi
    done
done
wait
if grep -q ' CRASH ' "$results"; then
    echo "fuzz.sh: crashes found (inputs listed above)" >&2
    exit 1
fi
if $long; then
    awk '{ n += $2 } END { printf "==> %d targets, %d executions in total\n", NR, n }' "$results"
fi
