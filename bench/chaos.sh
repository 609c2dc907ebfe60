#!/usr/bin/env bash
# chaos.sh [OUTDIR] [--seconds N] [--every S] [--quick] — fault injection while playing: farm
# --workers 4 --voices 500 through jackd's dummy driver (real time, 48 kHz, 256 frames) for 60 s
# while a random worker is killed with SIGKILL every 2 s. Reports, per kill, how soon a new
# process stood in its place and how many blocks its voices missed (from farm's own fault
# lines, which count the late blocks of that worker); then underflows and late blocks of the
# whole run, and the resident memory of every process at the start and at the end.
#
# Prints markdown tables; with OUTDIR also writes them and farm's output there.
# --quick: 12 s, a kill every 2 s, to check the script itself.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init chaos
build=$farm_dir
farm=$build/farm
outdir=""
seconds=60
every=2
while (($#)); do
    case $1 in
    --quick) seconds=12; shift ;;
    --seconds) seconds=$2; shift 2 ;;
    --every) every=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "chaos: unknown option $1" >&2; exit 2 ;;
    *) outdir=$1; shift ;;
    esac
done
[ -x "$farm" ] || { echo "chaos: $farm not built (scripts/setup.sh)" >&2; exit 2; }
command -v jackd >/dev/null || { echo "chaos: needs jackd (apt-get install jackd2)" >&2; exit 2; }
jackd_pid=""
farm_pid=""
bench_on_exit() {
    [ -z "$farm_pid" ] || { kill "$farm_pid" 2>/dev/null && wait "$farm_pid" 2>/dev/null; }
    [ -z "$jackd_pid" ] || { kill "$jackd_pid" 2>/dev/null && wait "$jackd_pid" 2>/dev/null; }
}
bench_tmpdir
[ -n "$outdir" ] && mkdir -p "$outdir"
export JACK_NO_START_SERVER=1 JACK_DEFAULT_SERVER="farm-chaos-$$"
jackd -n "$JACK_DEFAULT_SERVER" -R -P 70 --port-max 64 -d dummy -r 48000 -p 256 \
    >"$tmp/jackd.log" 2>&1 &
jackd_pid=$!
for _ in $(seq 500); do jack_lsp >/dev/null 2>&1 && break; sleep 0.02; done
jack_lsp >/dev/null 2>&1 || { echo "chaos: jackd did not start" >&2; cat "$tmp/jackd.log" >&2; exit 1; }

workers() { pgrep -P "$farm_pid" -x farm-worker | sort -n || true; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo "-"; }
rss_table() { # LABEL
    echo "| $1 | farm $(rss "$farm_pid") kB | $(for p in $(workers); do printf 'worker pid %s: %s kB; ' "$p" "$(rss "$p")"; done) |"
}

# The kills are deliberate and come faster than --max-restarts' default tolerates (5 within
# 60 s, then a worker is left dead): lift it, so that every kill is healed and measured.
"$farm" --workers 4 --voices 500 --buffersize 256 --rt-priority 70 --duration "$seconds" \
    --max-restarts 64 >"$tmp/farm.out" 2>"$tmp/farm.err" &
farm_pid=$!
for _ in $(seq 500); do grep -q "farm: control" "$tmp/farm.err" 2>/dev/null && break; sleep 0.02; done
sleep 1
rss_start=$(rss_table start)
start=$(date +%s.%N)
: >"$tmp/kills"
kills=$(((seconds - 3) / every))
for n in $(seq "$kills"); do
    sleep "$every"
    mapfile -t pids < <(workers)
    [ "${#pids[@]}" -gt 0 ] || continue
    victim=${pids[RANDOM % ${#pids[@]}]}
    t_kill=$(date +%s.%N)
    kill -9 "$victim" 2>/dev/null || continue
    # how soon a new worker process stands in its place
    new=""
    for _ in $(seq 1000); do
        new=$(comm -13 <(printf '%s\n' "${pids[@]}" | sort) <(workers) | head -n 1)
        [ -n "$new" ] && break
        sleep 0.001
    done
    t_new=$(date +%s.%N)
    printf '%s %s %s %s\n' "$n" "$(echo "$t_kill - $start" | bc)" "$victim" \
        "$(echo "($t_new - $t_kill) * 1000" | bc)" >>"$tmp/kills"
done
sleep 0.5
rss_end=$(rss_table end)
wait "$farm_pid" || { echo "chaos: farm failed:" >&2; cat "$tmp/farm.err" >&2; exit 1; }
farm_pid=""

{
    echo "## Chaos: a random worker killed (SIGKILL) every $every s for $seconds s"
    echo
    echo "farm --workers 4 --voices 500 --max-restarts 64, jackd dummy -R, 48 kHz, 256 frames (5.33 ms), ring 4 blocks;"
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(date -u +%F)."
    echo
    echo "| kill | at s | pid killed | replacement rendering after ms | blocks its voices missed | gap ms |"
    echo "|---:|---:|---:|---:|---:|---:|"
    while read -r n at victim _; do
        line=$(grep "(pid $victim) was killed" "$tmp/farm.err" | head -n 1)
        back=$(sed -n 's/.*rendering \([0-9.]*\) ms after.*/\1/p' <<<"$line")
        missed=$(sed -n 's/.*missed \([0-9]*\) blocks (\([0-9.]*\) ms).*/\1/p' <<<"$line")
        gap=$(sed -n 's/.*missed \([0-9]*\) blocks (\([0-9.]*\) ms).*/\2/p' <<<"$line")
        printf '| %s | %.2f | %s | %s | %s | %s |\n' "$n" "$at" "$victim" "${back:--}" \
            "${missed:--}" "${gap:--}"
    done <"$tmp/kills"
    echo
    echo "| stream | $(grep -o 'callbacks [0-9]*, underflows [0-9]*, late blocks [0-9]*' "$tmp/farm.out") |"
    echo "|---|---|"
    echo "$rss_start"
    echo "$rss_end"
} | tee "$tmp/chaos.md"
if [ -n "$outdir" ]; then
    cp "$tmp/chaos.md" "$outdir/chaos.md"
    cat "$tmp/farm.err" "$tmp/farm.out" >"$outdir/chaos-farm.txt"
fi
