#!/usr/bin/env bash
# control_latency.sh [REQUESTS] — control latency while playing: farm --workers 2 --voices 500
# into the null sink at 256 frames per block (ring depth 4, the default), 64 frames (8, the
# default: 10 ms) and 64 frames with 4 blocks, REQUESTS `set all freq` requests each (default
# 300). Target: at most the ring depth plus one block.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init control_latency
bin=$farm_dir
n=${1:-300}
farm_pid=""
bench_on_exit() { [ -z "$farm_pid" ] || { kill "$farm_pid" 2>/dev/null && wait "$farm_pid" 2>/dev/null; }; }
bench_tmpdir
for case in 256:4 64:8 64:4; do
    frames=${case%:*} ring=${case#*:}
    "$bin/farm" --null-sink --workers 2 --voices 500 --buffersize "$frames" --ring-blocks "$ring" -q \
        --control "ipc://$tmp/c.ipc" --telemetry "ipc://$tmp/t.ipc" 2>"$tmp/err" &
    farm_pid=$!
    for _ in $(seq 200); do [ -S "$tmp/c.ipc" ] && break; sleep 0.02; done
    echo
    echo "### $frames frames per block ($(awk -v f="$frames" 'BEGIN {printf "%.2f", f / 48}') ms), ring depth $ring, $n requests"
    echo
    echo "| figure | median | p99 | max |"
    echo "|---|---:|---:|---:|"
    "$bin/bench/control_latency" --url "ipc://$tmp/c.ipc" --requests "$n"
    kill "$farm_pid"
    wait "$farm_pid" 2>/dev/null || true
    farm_pid=""
done
