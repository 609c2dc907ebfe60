#!/usr/bin/env bash
# realtime.sh [OUTDIR] [--quick] — the real-time benchmarks: farm playing through jackd's dummy
# driver in real-time mode at 48 kHz (shared/docs/headless-audio.md), each case with its own
# private jackd whose period equals farm's buffer size.
#
#   1. --workers 4 --voices 500 at 256 frames for 60 s: late blocks and underflows (target: 0)
#   2. 2 workers x 5,000 voices at 64 frames for 60 s: the same, beside a baseline of one voice
#      (underflows there are the machine's and JACK's, not farm's)
#   3. at 64, 128 and 256 frames: the largest total voice count (on as many workers as cores)
#      with no late block over 20 s, by bisection, and the callback's duration there
#
# Prints markdown tables; with OUTDIR also writes them and every run's summary there.
# --quick shortens every run (10 s, 5 s) to check the script itself.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init realtime
farm=$farm_dir/farm
outdir=""
long=60
probe=20
while (($#)); do
    case $1 in
    --quick) long=10; probe=5; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "realtime: unknown option $1" >&2; exit 2 ;;
    *) outdir=$1; shift ;;
    esac
done
[ -x "$farm" ] || { echo "realtime: $farm not built (scripts/setup.sh)" >&2; exit 2; }
command -v jackd >/dev/null || { echo "realtime: needs jackd (apt-get install jackd2)" >&2; exit 2; }
jackd_pid=""
bench_on_exit() { [ -z "$jackd_pid" ] || { kill "$jackd_pid" 2>/dev/null && wait "$jackd_pid" 2>/dev/null; }; }
bench_tmpdir
[ -n "$outdir" ] && mkdir -p "$outdir"
cores=$(nproc)
export JACK_NO_START_SERVER=1

start_jackd() { # PERIOD
    [ -n "$jackd_pid" ] && { kill "$jackd_pid"; wait "$jackd_pid" 2>/dev/null || true; }
    export JACK_DEFAULT_SERVER="farm-bench-$$-$1"
    jackd -n "$JACK_DEFAULT_SERVER" -R -P 70 --port-max 64 -d dummy -r 48000 -p "$1" \
        >"$tmp/jackd.log" 2>&1 &
    jackd_pid=$!
    for _ in $(seq 250); do jack_lsp >/dev/null 2>&1 && return 0; sleep 0.02; done
    echo "realtime: jackd did not start:" >&2
    cat "$tmp/jackd.log" >&2
    exit 1
}

# run NAME FRAMES SECONDS farm-args... -> leaves the summary in $tmp/NAME.txt
# (farm's stream thread is JACK's, at jackd's priority 70; the workers ask for 69)
run() {
    local name=$1 frames=$2 secs=$3
    shift 3
    "$farm" --buffersize "$frames" --duration "$secs" --rt-priority 70 "$@" \
        >"$tmp/$name.txt" 2>"$tmp/$name.err" || {
        echo "realtime: farm failed in $name:" >&2
        cat "$tmp/$name.err" >&2
        exit 1
    }
    [ -n "$outdir" ] && cat "$tmp/$name.err" "$tmp/$name.txt" >"$outdir/$name.txt"
    return 0
}

field() { # FILE LABEL -> the number after LABEL
    sed -n "s/.*$2\([0-9.]*\).*/\1/p" "$1" | head -n 1
}

cb() { # FILE -> "median | p99 | max" in us
    sed -n 's/.*median \([0-9.]*\) us, p99 \([0-9.]*\) us, max \([0-9.]*\) us.*/\1 | \2 | \3/p' "$1"
}

{
    echo "## Sustained runs (jackd dummy driver, -R, 48 kHz; machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $cores cores)"
    echo
    echo "| case | frames | seconds | late blocks | underflows | callback median / p99 / max (us) |"
    echo "|---|---:|---:|---:|---:|---|"
} | tee "$tmp/sustained.md"
start_jackd 256
run seed256 256 "$long" --workers 4 --voices 500
echo "| --workers 4 --voices 500 | 256 | $long | $(field "$tmp/seed256.txt" 'late blocks ') | $(field "$tmp/seed256.txt" 'underflows ') | $(cb "$tmp/seed256.txt" | tr '|' '/') |" | tee -a "$tmp/sustained.md"
start_jackd 64
run big64 64 "$long" --workers 2 --voices 5000
echo "| --workers 2 --voices 5000 | 64 | $long | $(field "$tmp/big64.txt" 'late blocks ') | $(field "$tmp/big64.txt" 'underflows ') | $(cb "$tmp/big64.txt" | tr '|' '/') |" | tee -a "$tmp/sustained.md"
# The same stream with one voice: underflows here are the machine's and JACK's, not the load's.
run base64 64 "$long" --workers 1 --total-voices 1
echo "| baseline: --workers 1 --total-voices 1 | 64 | $long | $(field "$tmp/base64.txt" 'late blocks ') | $(field "$tmp/base64.txt" 'underflows ') | $(cb "$tmp/base64.txt" | tr '|' '/') |" | tee -a "$tmp/sustained.md"

{
    echo
    echo "## Largest voice count with no late block over $probe s ($cores workers, bisection to 2%)"
    echo
    echo "| frames | voices | late blocks there | callback median / p99 / max (us) | first count that was late |"
    echo "|---:|---:|---:|---|---:|"
} | tee "$tmp/search.md"
for frames in 64 128 256; do
    start_jackd "$frames"
    lo=0
    hi=400000 # beyond what one core can do times the cores here; shrinks fast
    best=""
    first_late=""
    while [ $((hi - lo)) -gt $((hi / 50)) ]; do
        mid=$(((lo + hi) / 2))
        [ "$mid" -lt "$cores" ] && mid=$cores
        run "s$frames-$mid" "$frames" "$probe" --workers "$cores" --total-voices "$mid"
        late=$(field "$tmp/s$frames-$mid.txt" 'late blocks ')
        if [ "$late" = "0" ]; then
            lo=$mid
            best=$mid
        else
            hi=$mid
            first_late=$mid
        fi
    done
    if [ -n "$best" ]; then
        echo "| $frames | $best | 0 | $(cb "$tmp/s$frames-$best.txt" | tr '|' '/') | ${first_late:--} |" | tee -a "$tmp/search.md"
    else
        echo "| $frames | none found | - | - | ${first_late:--} |" | tee -a "$tmp/search.md"
    fi
done
if [ -n "$outdir" ]; then
    cat "$tmp/sustained.md" "$tmp/search.md" >"$outdir/realtime.md"
fi
