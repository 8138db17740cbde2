#!/usr/bin/env bash
# Collector ingest benchmark: a release redline-collector on loopback, fed by the OTLP/gRPC
# load generator tests/examples/ingest_load.rs (many simulated agents, ~500 realistic host
# series each, one gzip batch per host per 10 s of data time, sent as fast as acknowledged).
#
# Prints: samples per second acknowledged, collector CPU seconds per million samples (ingest
# phase, and including the shutdown flush), collector peak RSS, and bytes per stored sample
# on disk (size of <data-dir>/redline.db after SIGTERM has flushed the head into compressed
# chunks, divided by the samples acknowledged).
#
# Usage: bench/collector_ingest.sh [--hosts N] [--batches N] [--series-per-host N]
#                                  [--jitter-ms N] [--max-seconds N] [--compression gzip|none]
#                                  [--keep]
# Defaults: 100 hosts x 500 series x 200 batches = 10 M samples, aligned timestamps, gzip,
# sending bounded by 300 s. --keep leaves the data directory in place and prints its path.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

hosts=100 batches=200 series=500 jitter=0 max_seconds=300 compression=gzip keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts=$2; shift 2 ;;
        --batches) batches=$2; shift 2 ;;
        --series-per-host) series=$2; shift 2 ;;
        --jitter-ms) jitter=$2; shift 2 ;;
        --max-seconds) max_seconds=$2; shift 2 ;;
        --compression) compression=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

apt_install curl

echo "==> building release binaries (redline-collector, ingest_load)" >&2
cargo build --release --quiet -p redline-collector
cargo build --release --quiet -p redline-e2e --example ingest_load
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
collector_bin=$target_dir/release/redline-collector
load_bin=$target_dir/release/examples/ingest_load

work=$(mktemp -d /tmp/redline-ingest.XXXXXX)
collector_pid=
cleanup() {
    [ -n "$collector_pid" ] && stop_pid "$collector_pid" 60
    if [ "$keep" -eq 1 ]; then
        echo "data kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

grpc_port=$(free_port 24317)
http_port=$(free_port $((grpc_port + 1)))
api_port=$(free_port 29190)
"$collector_bin" run --data-dir "$work/data" \
    --otlp-grpc-listen "127.0.0.1:$grpc_port" \
    --otlp-http-listen "127.0.0.1:$http_port" \
    --http-listen "127.0.0.1:$api_port" >"$work/collector.log" 2>&1 &
collector_pid=$!
wait_http "http://127.0.0.1:$api_port/readyz" 30

tck=$(getconf CLK_TCK)
ticks0=$(cpu_ticks "$collector_pid")
echo "==> ingest_load against 127.0.0.1:$grpc_port" >&2
# The generator stops sending by itself after --max-seconds; the outer timeout is a backstop.
timeout $((max_seconds + 60)) "$load_bin" \
    --endpoint "http://127.0.0.1:$grpc_port" --hosts "$hosts" --batches "$batches" \
    --series-per-host "$series" --jitter-ms "$jitter" --max-seconds "$max_seconds" \
    --compression "$compression" >"$work/load.out"
ticks1=$(cpu_ticks "$collector_pid")
rss_ingest_kb=$(vmhwm_kb "$collector_pid")

val() { sed -n "s/^$1=//p" "$work/load.out"; }
acked=$(val samples_acked)
rate=$(val samples_per_second)
wall=$(val wall_seconds)
gen_cpu=$(val generator_cpu_seconds)
changed=$(val changed_fraction)

metrics=$(curl -fsS "http://127.0.0.1:$api_port/metrics")
gauge() { printf '%s\n' "$metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v }'; }
store_series=$(gauge redline_collector_store_series)
store_disk_before=$(gauge redline_collector_store_disk_bytes)

# SIGTERM: the collector stops its listeners and flushes its head into compressed chunks.
# Poll its CPU and peak RSS while it flushes; the last reading before it exits counts.
echo "==> SIGTERM (flush)" >&2
kill -TERM "$collector_pid"
ticks2=$ticks1 rss_kb=$rss_ingest_kb deadline=$((SECONDS + 120))
while kill -0 "$collector_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    t=$(cpu_ticks "$collector_pid" 2>/dev/null) && ticks2=$t
    r=$(vmhwm_kb "$collector_pid" 2>/dev/null) && [ -n "$r" ] && rss_kb=$r
    sleep 0.05
done
if kill -0 "$collector_pid" 2>/dev/null; then
    echo "warning: collector still running 120 s after SIGTERM; killing it" >&2
fi
stop_pid "$collector_pid" 1
collector_pid=
db_bytes=$(stat -c %s "$work/data/redline.db")
wal_bytes=$(stat -c %s "$work/data/redline.db-wal" 2>/dev/null || echo 0)
# Where the bytes are, read with Python's sqlite3 when it is there: pages SQLite holds free
# (deleted head rows not yet reused, no VACUUM), which the file size counts; and, when SQLite
# has the dbstat table, the pages of the compressed chunks and of the series index.
free_bytes=0 chunk_bytes=0 series_bytes=0
if command -v python3 >/dev/null; then
    read -r free_bytes chunk_bytes series_bytes < <(python3 -c '
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
page = c.execute("pragma page_size").fetchone()[0]
free = c.execute("pragma freelist_count").fetchone()[0] * page
chunks = series = 0
try:
    for name, size in c.execute("select name, sum(pgsize) from dbstat group by name"):
        if name == "chunks":
            chunks += size
        elif name.startswith("series") or name.startswith("sqlite_autoindex_series"):
            series += size
except sqlite3.Error:
    pass
print(free, chunks, series)
' "$work/data/redline.db" 2>/dev/null || echo 0 0 0)
fi

awk -v acked="$acked" -v rate="$rate" -v wall="$wall" -v gen="$gen_cpu" -v tck="$tck" \
    -v t0="$ticks0" -v t1="$ticks1" -v t2="$ticks2" -v rss="$rss_kb" -v rss_i="$rss_ingest_kb" \
    -v db="$db_bytes" -v wal="$wal_bytes" -v free="$free_bytes" -v chunks="$chunk_bytes" -v sbytes="$series_bytes" -v series="$store_series" -v disk0="$store_disk_before" \
    -v hosts="$hosts" -v per="$series" -v jitter="$jitter" -v comp="$compression" -v changed="$changed" '
BEGIN {
    ingest = (t1 - t0) / tck; total = (t2 - t0) / tck
    printf "collector ingest benchmark (%d hosts x %d series, %s timestamps, %s)\n", hosts, per, (jitter == 0 ? "aligned" : "jitter < " jitter " ms"), comp
    printf "  samples acknowledged        %d in %.1f s (%.0f%% changed value)\n", acked, wall, changed * 100
    printf "  samples per second          %.0f\n", rate
    if (acked > 0) {
        printf "  collector CPU s / M samples %.3f (ingest)  %.3f (incl. shutdown flush)\n", ingest / acked * 1e6, total / acked * 1e6
    }
    printf "  collector CPU seconds       %.2f ingest + %.2f flush\n", ingest, total - ingest
    printf "  generator CPU seconds       %.2f\n", gen
    printf "  collector peak RSS          %.1f MiB (%.1f MiB before the flush)\n", rss / 1024, rss_i / 1024
    printf "  series in store             %s\n", series
    printf "  redline_collector_store_disk_bytes before flush  %s\n", disk0
    printf "  redline.db after flush      %d bytes (+ %d WAL)\n", db, wal
    printf "  of which free pages         %d bytes\n", free
    if (chunks > 0 && acked > 0) printf "  of which chunks             %d bytes (%.3f per sample)\n", chunks, chunks / acked
    if (sbytes > 0 && series > 0) printf "  of which series + index     %d bytes (%.0f per series)\n", sbytes, sbytes / series
    if (acked > 0) printf "  bytes per stored sample     %.3f (file)  %.3f (live pages)\n", (db + wal) / acked, (db + wal - free) / acked
}'
