#!/usr/bin/env bash
# Side-by-side cost of host-metric collection: redline-agent against Prometheus' node_exporter
# (Debian package prometheus-node-exporter), both on loopback at the same 1 s interval.
#
# node_exporter collects when it is scraped, so this script scrapes it with curl once per
# interval; the agent collects on its own timer (--interval 1s) and exports each cycle over
# OTLP/gRPC to a real redline-collector (whose CPU is not counted). CPU comes from
# /proc/PID/stat (utime + stime, in clock ticks) before and after the measured cycles, divided
# by the cycles; peak RSS is /proc/PID/status VmHWM at the end.
#
# Prints, for each: CPU milliseconds per collection cycle, peak RSS, series per cycle; then the
# ratios agent / node_exporter (goal: CPU <= 0.25, RSS <= 1).
#
# Usage: bench/agent_vs_node_exporter.sh [--cycles N] [--warmup N]
# Defaults: 120 measured cycles after 5 warm-up cycles (about 2.5 minutes in all).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

cycles=120 warmup=5
while [ $# -gt 0 ]; do
    case "$1" in
        --cycles) cycles=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

apt_install prometheus-node-exporter curl
node_exporter=$(command -v prometheus-node-exporter || command -v node_exporter)

echo "==> building release binaries (redline-agent, redline-collector)" >&2
cargo build --release --quiet -p redline-agent -p redline-collector
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
agent_bin=$target_dir/release/redline-agent
collector_bin=$target_dir/release/redline-collector

work=$(mktemp -d /tmp/redline-vs-ne.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do stop_pid "$pid" 20; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Bound the whole run: warm-up + cycles + start-up and shutdown slack.
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep $((warmup + cycles + 120)) &
    sleeper=$!
    wait "$sleeper"
    echo "error: time bound reached" >&2
    kill -TERM $$
) &
watchdog=$!
pids+=("$watchdog")

c_grpc=$(free_port 24317)
c_http=$(free_port $((c_grpc + 1)))
c_api=$(free_port 29190)
"$collector_bin" run --data-dir "$work/data" --otlp-grpc-listen "127.0.0.1:$c_grpc" \
    --otlp-http-listen "127.0.0.1:$c_http" --http-listen "127.0.0.1:$c_api" \
    >"$work/collector.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$c_api/readyz" 30

ne_port=$(free_port 29100)
"$node_exporter" --web.listen-address="127.0.0.1:$ne_port" --no-collector.systemd \
    >"$work/node_exporter.log" 2>&1 &
ne_pid=$!
pids+=("$ne_pid")
wait_http "http://127.0.0.1:$ne_port/metrics" 30

a_metrics=$(free_port 29101)
a_grpc=$(free_port 24417)
a_http=$(free_port $((a_grpc + 1)))
"$agent_bin" run --collector "http://127.0.0.1:$c_grpc" --interval 1s \
    --listen "127.0.0.1:$a_metrics" --otlp-grpc-listen "127.0.0.1:$a_grpc" \
    --otlp-http-listen "127.0.0.1:$a_http" >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
wait_http "http://127.0.0.1:$a_metrics/metrics" 30

# scrape_ne: one node_exporter collection; prints the series it returned.
scrape_ne() {
    local text
    text=$(curl -fsS --max-time 5 "http://127.0.0.1:$ne_port/metrics")
    printf '%s\n' "$text" | grep -vc '^#' || true
}

echo "==> warm-up: $warmup cycles" >&2
for _ in $(seq "$warmup"); do scrape_ne >/dev/null; sleep 1; done

# agent_metric NAME: a sample of the agent's own /metrics (empty if absent).
agent_metric() {
    local text
    text=$(curl -fsS --max-time 5 "http://127.0.0.1:$a_metrics/metrics") || return 0
    printf '%s\n' "$text" | awk -v n="$1" '$1 == n { v = $2 } END { print v }'
}

echo "==> measuring $cycles cycles at 1 s" >&2
ag_cycles0=$(agent_metric redline_agent_collection_seconds_count)
ag_samples0=$(agent_metric redline_agent_samples_collected_total)
tck=$(getconf CLK_TCK)
ne0=$(cpu_ticks "$ne_pid")
ag0=$(cpu_ticks "$agent_pid")
start_ns=$(date +%s%N)
ne_series=0
for i in $(seq "$cycles"); do
    ne_series=$(scrape_ne)
    # Sleep to the next whole interval from the start, so scrapes do not drift.
    next_ns=$((start_ns + i * 1000000000))
    now_ns=$(date +%s%N)
    if [ "$next_ns" -gt "$now_ns" ]; then
        sleep "$(awk -v d=$((next_ns - now_ns)) 'BEGIN { printf "%.3f", d / 1e9 }')"
    fi
done
end_ns=$(date +%s%N)
ne1=$(cpu_ticks "$ne_pid")
ag1=$(cpu_ticks "$agent_pid")
ne_rss=$(vmhwm_kb "$ne_pid")
ag_rss=$(vmhwm_kb "$agent_pid")
ag_cycles1=$(agent_metric redline_agent_collection_seconds_count)
ag_samples1=$(agent_metric redline_agent_samples_collected_total)

# The agent's cycles: its own collection counter when it exposes one, else the elapsed
# seconds of its 1 s timer. Series per cycle: its collected-samples counter over the cycles.
elapsed=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
agent_cycles=$(awk -v e="$elapsed" -v c0="$ag_cycles0" -v c1="$ag_cycles1" \
    'BEGIN { if (c0 != "" && c1 != "" && c1 > c0) printf "%d", c1 - c0; else printf "%d", e + 0.5 }')
agent_series=$(awk -v n="$agent_cycles" -v s0="$ag_samples0" -v s1="$ag_samples1" \
    'BEGIN { if (s0 != "" && s1 != "" && n > 0) printf "%d", (s1 - s0) / n + 0.5; else print 0 }')

awk -v tck="$tck" -v n="$cycles" -v an="$agent_cycles" -v el="$elapsed" \
    -v ne0="$ne0" -v ne1="$ne1" -v ag0="$ag0" -v ag1="$ag1" \
    -v ners="$ne_rss" -v agrss="$ag_rss" -v nes="$ne_series" -v ags="$agent_series" '
BEGIN {
    ne_ms = (ne1 - ne0) / tck * 1000 / n
    ag_ms = (ag1 - ag0) / tck * 1000 / an
    printf "agent vs node_exporter, 1 s interval, %.1f s measured (clock tick %.0f ms)\n", el, 1000 / tck
    printf "  %-16s %8s %12s %14s %10s\n", "", "cycles", "CPU ms/cycle", "peak RSS MiB", "series"
    printf "  %-16s %8d %12.3f %14.1f %10d\n", "node_exporter", n, ne_ms, ners / 1024, nes
    printf "  %-16s %8d %12.3f %14.1f %10d\n", "redline-agent", an, ag_ms, agrss / 1024, ags
    if (ne_ms > 0) printf "  CPU ratio agent/node_exporter  %.3f (goal <= 0.25)\n", ag_ms / ne_ms
    if (ners > 0) printf "  RSS ratio agent/node_exporter  %.3f (goal <= 1)\n", agrss / ners
}'
