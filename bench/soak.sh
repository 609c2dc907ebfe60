#!/usr/bin/env bash
# soak.sh [OUTDIR] [--minutes N] [--quick] — a long run: farm with 2 workers x 10,000 voices
# through jackd's dummy driver (real time, 48 kHz, 256 frames) for 10 minutes, while a control
# client changes every voice's frequency every 100 ms and a telemetry subscriber (farmctl watch)
# listens throughout. The resident memory of farm and of each worker is sampled every 10 s; it
# must stay flat (growth under 1 MiB from the first sample after warm-up), and no block may be
# late.
#
# Prints a markdown table; with OUTDIR also writes it and farm's output there. Exit 1 when a
# target is missed. --quick: 1 minute, to check the script itself.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init soak
build=$farm_dir
farm=$build/farm
farmctl=$build/farmctl
outdir=""
minutes=10
while (($#)); do
    case $1 in
    --quick) minutes=1; shift ;;
    --minutes) minutes=$2; shift 2 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "soak: unknown option $1" >&2; exit 2 ;;
    *) outdir=$1; shift ;;
    esac
done
[ -x "$farm" ] && [ -x "$farmctl" ] || { echo "soak: build first (scripts/setup.sh)" >&2; exit 2; }
command -v jackd >/dev/null || { echo "soak: needs jackd (apt-get install jackd2)" >&2; exit 2; }
seconds=$((minutes * 60))
bench_tmpdir
[ -n "$outdir" ] && mkdir -p "$outdir"
export JACK_NO_START_SERVER=1 JACK_DEFAULT_SERVER="farm-soak-$$"
jackd -n "$JACK_DEFAULT_SERVER" -R -P 70 --port-max 64 -d dummy -r 48000 -p 256 \
    >"$tmp/jackd.log" 2>&1 &
bench_track $!
for _ in $(seq 500); do jack_lsp >/dev/null 2>&1 && break; sleep 0.02; done

"$farm" --workers 2 --voices 10000 --buffersize 256 --rt-priority 70 --duration "$seconds" \
    --control "ipc://$tmp/soak.control" --telemetry "ipc://$tmp/soak.telemetry" \
    >"$tmp/farm.out" 2>"$tmp/farm.err" &
farm_pid=$!
bench_track "$farm_pid"
for _ in $(seq 500); do grep -q "farm: control" "$tmp/farm.err" 2>/dev/null && break; sleep 0.02; done
url="ipc://$tmp/soak.control"

# the telemetry subscriber, for the whole run
"$farmctl" --url "$url" watch --timeout 5 >/dev/null 2>"$tmp/watch.err" &
bench_track $!
# the control client: a new frequency for every voice every 100 ms
(
    i=0
    while kill -0 "$farm_pid" 2>/dev/null; do
        "$farmctl" --url "$url" set all freq $((300 + (i * 37) % 500)) ramp 0.05 >/dev/null 2>&1 || true
        i=$((i + 1))
        sleep 0.1
    done
) &
bench_track $!

rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
echo "t_s farm_kB worker0_kB worker1_kB" >"$tmp/rss"
for t in $(seq 10 10 $((seconds - 5))); do
    sleep 10
    mapfile -t w < <(pgrep -P "$farm_pid" -x farm-worker | sort -n)
    echo "$t $(rss "$farm_pid") $(rss "${w[0]:-0}") $(rss "${w[1]:-0}")" >>"$tmp/rss"
done
wait "$farm_pid" || { echo "soak: farm failed:" >&2; cat "$tmp/farm.err" >&2; exit 1; }

late=$(sed -n 's/.*late blocks \([0-9]*\).*/\1/p' "$tmp/farm.out" | head -n 1)
under=$(sed -n 's/.*underflows \([0-9]*\).*/\1/p' "$tmp/farm.out" | head -n 1)
# growth from the first sample after a minute of warm-up (or the first, on short runs)
base_t=$((seconds >= 120 ? 60 : 10))
growth() { awk -v col="$1" -v bt="$base_t" 'NR>1 && $1>=bt {if (!seen) {b=$col; seen=1} last=$col; if ($col>m) m=$col} END{print m-b}' "$tmp/rss"; }
g_farm=$(growth 2) g_w0=$(growth 3) g_w1=$(growth 4)
{
    echo "## Soak: $minutes min of 2 x 10,000 voices through jackd, control every 100 ms, telemetry throughout"
    echo
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(date -u +%F). Resident memory (kB), sampled every 10 s:"
    echo
    echo "| t (s) | farm | worker 0 | worker 1 |"
    echo "|---:|---:|---:|---:|"
    awk 'NR>1 && ($1 % 60 == 0 || NR == 2) {printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$tmp/rss"
    echo
    echo "Growth from t = $base_t s to the largest sample after it: farm $g_farm kB, worker 0 $g_w0 kB, worker 1 $g_w1 kB (target: under 1024 kB each). Late blocks $late (target 0), underflows $under; $(grep -o 'callbacks [0-9]*' "$tmp/farm.out" | head -n 1)."
} | tee "$tmp/soak.md"
if [ -n "$outdir" ]; then
    cp "$tmp/soak.md" "$outdir/soak.md"
    cp "$tmp/rss" "$outdir/soak-rss.txt"
    cat "$tmp/farm.err" "$tmp/farm.out" >"$outdir/soak-farm.txt"
fi
[ "$late" = "0" ] && [ "$g_farm" -lt 1024 ] && [ "$g_w0" -lt 1024 ] && [ "$g_w1" -lt 1024 ]
