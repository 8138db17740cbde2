#!/usr/bin/env bash
# Quick start: builds release binaries, then runs a redline-collector with its data under
# ./data and a redline-agent reporting this host into it, both on loopback only.
# Ctrl-C (or SIGTERM) stops the agent, then the collector, each gracefully.
#
# Usage: scripts/quickstart.sh [--debug] [--data-dir DIR] [--interval DURATION]
#   --debug          build and run the debug profile (quicker to build, slower to run)
#   --data-dir DIR   collector data directory (default ./data)
#   --interval D     agent collection interval (default: the agent's, 10s)
#
# Listens on: collector OTLP 127.0.0.1:14317 (gRPC) / 14318 (HTTP), API 127.0.0.1:9190;
# agent /metrics 127.0.0.1:9101, relay OTLP 127.0.0.1:4317 (gRPC) / 4318 (HTTP).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

profile=release dir=release data_dir=./data interval=
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) profile=dev dir=debug; shift ;;
        --data-dir) data_dir=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

for port in 14317 14318 9190 9101 4317 4318; do
    if ! port_free "$port"; then
        echo "error: 127.0.0.1:$port is already in use (another Redline running?)" >&2
        exit 1
    fi
done

echo "==> cargo build --profile $profile -p redline-collector -p redline-agent" >&2
cargo build --profile "$profile" -p redline-collector -p redline-agent
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=$target_dir/$dir

collector_pid= agent_pid=
stop_all() {
    trap - INT TERM EXIT
    # The agent first, so its last batch still reaches the collector; then the collector,
    # which flushes its head into chunks before it exits.
    [ -n "$agent_pid" ] && stop_pid "$agent_pid" 30
    [ -n "$collector_pid" ] && stop_pid "$collector_pid" 60
    echo "stopped" >&2
}
trap stop_all EXIT
trap 'exit 0' INT TERM

mkdir -p "$data_dir"
"$bin/redline-collector" run --data-dir "$data_dir" \
    --otlp-grpc-listen 127.0.0.1:14317 --otlp-http-listen 127.0.0.1:14318 \
    --http-listen 127.0.0.1:9190 &
collector_pid=$!
wait_http http://127.0.0.1:9190/readyz 30

# The agent's spool (what the collector has not acknowledged yet) lives beside the data.
agent_args=(run --collector http://127.0.0.1:14317 --listen 127.0.0.1:9101
    --otlp-grpc-listen 127.0.0.1:4317 --otlp-http-listen 127.0.0.1:4318
    --spool-dir "$data_dir/agent-spool")
[ -n "$interval" ] && agent_args+=(--interval "$interval")
"$bin/redline-agent" "${agent_args[@]}" &
agent_pid=$!

cat >&2 <<EOF

Redline is running (collector data in $data_dir). Try:
  curl -s 'http://127.0.0.1:9190/api/v1/query?query=system_memory_usage_bytes'
  curl -s 'http://127.0.0.1:9190/api/v1/label/__name__/values'
  curl -s  http://127.0.0.1:9101/metrics      # the agent's own metrics
Send application telemetry to the agent's relay: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317
Ctrl-C stops both.

EOF

# Either process ending on its own ends the quick start (and stops the other).
set +e
wait -n "$collector_pid" "$agent_pid"
status=$?
set -e
echo "a Redline process exited (status $status); stopping" >&2
exit "$status"
