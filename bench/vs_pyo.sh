#!/usr/bin/env bash
# vs_pyo.sh [--voices LIST] [--duration S] [--reps R] — the seed's workload rendered offline by
# pyo (Debian's python3-pyo) and by farm with one worker, both held to CPU 0 with taskset,
# side by side in one run, interleaved, medians. Installs python3-pyo when it is missing and
# this user may (root, or sudo).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init vs_pyo
farm=$farm_dir/farm
voices_list="500,2000"
duration=10
reps=5
while (($#)); do
    case $1 in
    --voices) voices_list=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    -h | --help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vs_pyo: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$farm" ] || { echo "vs_pyo: $farm not built (scripts/setup.sh)" >&2; exit 2; }
if ! /usr/bin/python3 -c 'import pyo' >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y -qq --no-install-recommends python3-pyo >/dev/null
fi
bench_tmpdir

# pyo's offline server renders as fast as it can; start() returns when the file is written.
cat >"$tmp/pyo_seed.py" <<'PY'
import random, sys, time
from pyo import Server, SineLoop
voices, dur, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
s = Server(sr=48000, nchnls=2, buffersize=256, duplex=0, audio="offline").boot()
s.recordOptions(dur=dur, filename=out, fileformat=0, sampletype=3)
random.seed(1)
voices_alive = SineLoop(freq=[random.uniform(400, 800) for _ in range(voices)], feedback=0.1, mul=0.005).out()
t = time.perf_counter()
s.start()
print("wall %.6f" % (time.perf_counter() - t))
PY

echo "| voices | pyo median wall s | farm (1 worker) median wall s | pyo Gvoice-samples/s | farm Gvoice-samples/s | farm / pyo |"
echo "|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a vlist <<<"$voices_list"
for v in "${vlist[@]}"; do
    : >"$tmp/pyo.t"
    : >"$tmp/farm.t"
    for ((r = 0; r < reps; r++)); do
        taskset -c 0 /usr/bin/python3 "$tmp/pyo_seed.py" "$v" "$duration" "$tmp/pyo.wav" 2>/dev/null |
            awk '/^wall/ {print $2}' >>"$tmp/pyo.t"
        taskset -c 0 "$farm" render -o "$tmp/farm.wav" --workers 1 --total-voices "$v" --duration "$duration" \
            --seed 1 | awk '$1 == "wall" {print $2}' >>"$tmp/farm.t"
    done
    p=$(median <"$tmp/pyo.t")
    f=$(median <"$tmp/farm.t")
    awk -v v="$v" -v p="$p" -v f="$f" -v d="$duration" 'BEGIN {
        vs = v * d * 48000;
        printf "| %d | %.3f | %.3f | %.3f | %.3f | %.1fx |\n", v, p, f, vs / p / 1e9, vs / f / 1e9, p / f }'
done
