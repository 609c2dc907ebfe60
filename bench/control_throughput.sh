#!/usr/bin/env bash
# control_throughput.sh [OUTDIR] [--quick] — control at scale, against farm on the null sink
# with 2 workers (bench/control_throughput.c does the requests):
#   1. round trips per second from one client, sequential `set 0 amp 0.001` / `0.002`, 3 s per
#      run, over ipc:// and tcp://127.0.0.1 (a free port), 5 runs each, interleaved
#      (--workers 2 --voices 500); median, p99 and max round trip. Target: >= 2,000/s over ipc.
#   2. `setv all amp` of 1,000 / 10,000 / 100,000 voices (--total-voices N), 10 each: message
#      size, round trip, blocks ahead, time to apply (round trip + latency_blocks block
#      periods), and whether it applied in one block with the values read back exactly; each
#      with the voices playing and again stopped (`voice all stop`: the control path alone).
#   3. `at` accuracy: --total-voices 2 --amp 0.5 --feedback 0 --record FILE (voice 0 on
#      worker 0 left, voice 1 on worker 1 right); `set all amp 0 ramp 0 at B`, B = stream.block
#      + 20, 5 times; the first silent sample of each channel must be B * buffersize.
# Prints markdown tables with the machine named; with OUTDIR also writes them to
# OUTDIR/control_throughput_<N>core_<date>.md and the raw runs beside them (_runs.txt).
# --quick: short runs, to check the script itself. Exit 1 when a check or the target fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init control_throughput
build=$farm_dir
farm=$build/farm
ct=$build/bench/control_throughput
outdir=""
quick=0
while (($#)); do
    case $1 in
    --quick) quick=1; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "control_throughput: unknown option $1" >&2; exit 2 ;;
    *) outdir=$1; shift ;;
    esac
done
[ -x "$farm" ] && [ -x "$ct" ] || { echo "control_throughput: build first (scripts/setup.sh)" >&2; exit 2; }
if ((quick)); then rtt_s=0.5 runs=1 setv_reps=2 at_reps=2; else rtt_s=3 runs=5 setv_reps=10 at_reps=5; fi

farm_pid=""
stop_farm() {
    if [ -n "$farm_pid" ]; then
        kill "$farm_pid" 2>/dev/null || true
        wait "$farm_pid" 2>/dev/null || true
        farm_pid=""
        echo >>"$tmp/farm.out" # its summary ends without a newline
    fi
}
bench_on_exit() { stop_farm; }
bench_tmpdir
# start_farm URL ARGS...: farm on the null sink, its control socket at URL; the client waits
# for the socket itself (it dials until farm listens)
start_farm() {
    local url=$1
    shift
    echo "# farm --null-sink $* --control $url" >>"$tmp/runs.txt"
    "$farm" --null-sink --control "$url" --telemetry "ipc://$tmp/t.ipc" "$@" \
        >>"$tmp/farm.out" 2>>"$tmp/farm.err" &
    farm_pid=$!
}

fail=0
cores=$(nproc)
day=$(date -u +%F)
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
{
    echo "## Control at scale"
    echo
    echo "machine: $model, $cores cores, $day$( ((quick)) && echo ' (--quick: short runs, a self-check only)')."
    echo
    echo "### Round trips from one client, sequential (\`set 0 amp 0.001\` / \`0.002\`; --workers 2 --voices 500, 256 frames; $rtt_s s per run)"
    echo
    echo "| transport, run | requests | per second | median ms | p99 ms | max ms | busy |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
} | tee "$tmp/report.md"

for run in $(seq "$runs"); do
    for transport in ipc tcp; do
        if [ "$transport" = ipc ]; then
            url="ipc://$tmp/c.ipc"
        else
            url="tcp://127.0.0.1:$("$ct" free-port)"
        fi
        start_farm "$url" --workers 2 --voices 500
        "$ct" rtt --url "$url" --seconds "$rtt_s" --label "$transport, $run" --raw "$tmp/runs.txt" \
            | tee -a "$tmp/report.md" "$tmp/rtt_$transport" || fail=1
        stop_farm
    done
done
ipc_rate=$(awk -F'|' '{print $4 + 0}' "$tmp/rtt_ipc" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
tcp_rate=$(awk -F'|' '{print $4 + 0}' "$tmp/rtt_tcp" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
verdict="met"
[ "${ipc_rate:-0}" -ge 2000 ] || { verdict="**missed**"; fail=1; }
{
    echo
    echo "Median of the runs: $ipc_rate round trips a second over ipc, $tcp_rate over tcp (target: at least 2,000 over ipc: $verdict)."
    echo
    echo "### setv: one float32 per voice (\`setv all amp ramp 0\`; --workers 2 --total-voices N, 256 frames = 5.33 ms; $setv_reps each)"
    echo
    echo "| voices | voices are | message bytes | round trip ms (median / p99 / max) | blocks ahead of the stream | request to its block playing, ms | applied in one block | late blocks meanwhile |"
    echo "|---:|---|---:|---|---|---|---|---:|"
} | tee -a "$tmp/report.md"

for n in 1000 10000 100000; do
    for stopped in "" --stopped; do
        start_farm "ipc://$tmp/c.ipc" --workers 2 --total-voices "$n"
        "$ct" setv --url "ipc://$tmp/c.ipc" --reps "$setv_reps" --raw "$tmp/runs.txt" $stopped \
            | tee -a "$tmp/report.md" || fail=1
        stop_farm
    done
done

{
    echo
    echo "### at: the block a change names, in the recording (--workers 2 --total-voices 2 --amp 0.5 --feedback 0, 256 frames)"
    echo
    echo "| rep | at block B | B × 256 | first silent sample, left (worker 0) | right (worker 1) |"
    echo "|---:|---:|---:|---:|---:|"
} | tee -a "$tmp/report.md"
start_farm "ipc://$tmp/c.ipc" --workers 2 --total-voices 2 --amp 0.5 --feedback 0 --record "$tmp/rec.wav"
"$ct" at --url "ipc://$tmp/c.ipc" --record "$tmp/rec.wav" --reps "$at_reps" --raw "$tmp/runs.txt" \
    | tee -a "$tmp/report.md" || fail=1
stop_farm

late=$(grep -o "late blocks [0-9]*" "$tmp/farm.out" | tail -n 1 | awk '{print $3 + 0}')
echo "# farm's summaries:" >>"$tmp/runs.txt"
cat "$tmp/farm.out" >>"$tmp/runs.txt"
{
    echo
    echo "Offsets: the first sample from which the channel stays silent, minus B × 256; silent means below 1e-9, not exactly 0, because equal-power panning leaves 3e-17 of the right voice on the left. Late blocks in this farm: ${late:-?}."
} | tee -a "$tmp/report.md"

if [ -n "$outdir" ]; then
    mkdir -p "$outdir"
    base="$outdir/control_throughput_${cores}core_$day"
    cp "$tmp/report.md" "$base.md"
    cp "$tmp/runs.txt" "$base"_runs.txt
    echo "control_throughput: wrote $base.md and ${base}_runs.txt" >&2
fi
exit "$fail"
