#!/usr/bin/env bash
# slurm.sh — what rendering through Slurm costs: the same render as one `farm render` on every
# core of this machine, and as N parts through a local Slurm cluster (scripts/slurm-local.sh,
# one node holding this machine's CPUs, so both use the same cores) submitted, waited for and
# mixed by examples/slurm/submit.sh. The difference is the scheduling's overhead. Then a
# projection for a big render on a real cluster from the measured per-core rate.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/slurm.sh [OUTDIR] [options]

Times, R times interleaved, `farm render` of the whole on $(nproc) workers and
`examples/slurm/submit.sh --parts N --cpus-per-task 1 --wait` of the same render on a local
Slurm cluster (one node, this machine's CPUs), and one-worker `farm render` for the per-core
rate; prints a markdown table of medians and a projection for 1,000,000 voices x 10 minutes on
10 and 100 nodes of 16 cores.

  OUTDIR          also write OUTDIR/slurm.md (the tables)
  --parts N       parts (array tasks; default 4)
  --voices V      voices of the whole (default 200000)
  --duration D    seconds of audio (default 2)
  --reps R        repetitions (default 3)
  -h, --help      this text

Needs root, or slurm-wlm and munge installed (scripts/slurm-local.sh). The cluster, the files
and the logs go to a temporary directory under $TMPDIR (or /tmp), stopped and removed on exit.
EOF
}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init slurm.sh
parts=4
voices=200000
duration=2
reps=3
outdir=""
while (($#)); do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --parts | --voices | --duration | --reps)
        (($# >= 2)) || die "$1 needs a value (see --help)"
        case $1 in
        --parts) parts=$2 ;;
        --voices) voices=$2 ;;
        --duration) duration=$2 ;;
        --reps) reps=$2 ;;
        esac
        shift 2
        ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *)
        bench_outdir "$1"
        shift
        ;;
    esac
done
bench_uints parts voices reps
is_pos "$duration" || die "--duration wants a positive number of seconds, not '$duration'"
farm=$farm_dir/farm
[[ -x $farm ]] || die "no farm binary at $farm (build it, or set FARM_BIN to its directory)"
[[ -z $outdir ]] || mkdir -p "$outdir" || die "cannot create output directory $outdir"

bench_tmpdir farm_slurm_bench
cluster=$tmp/cluster
bench_on_exit() { "$repo_root/scripts/slurm-local.sh" stop --dir "$cluster" >/dev/null 2>&1; }
started=$("$repo_root/scripts/slurm-local.sh" start --dir "$cluster" --nodes 1) ||
    { echo "$started" >&2; exit 1; }
eval "$(echo "$started" | tail -1)"
export FARM=$farm

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'; }
opts=(--total-voices "$voices" --seed 7 --duration "$duration" --amp 0.00001)
cores=$(nproc)
runs=$tmp/runs
: >"$runs"
for ((r = 1; r <= reps; r++)); do
    t0=$(now)
    "$farm" render -o "$tmp/whole.wav" --workers "$cores" "${opts[@]}" -q
    t1=$(now)
    echo "$r whole $(secs "$t0" "$t1")" >>"$runs"
    t0=$(now)
    "$farm" render -o "$tmp/one.wav" --workers 1 --total-voices $((voices / parts)) --seed 7 \
        --duration "$duration" -q
    t1=$(now)
    echo "$r one $(secs "$t0" "$t1")" >>"$runs"
    rm -rf "$tmp/run"
    t0=$(now)
    "$repo_root/examples/slurm/submit.sh" --parts "$parts" --out "$tmp/run/out.wav" \
        --cpus-per-task 1 --wait -- "${opts[@]}" >"$tmp/submit.out"
    t1=$(now)
    echo "$r slurm $(secs "$t0" "$t1")" >>"$runs"
    # the parts' and the mix's own wall times, from their summaries in the logs
    busy=$(awk '/^  wall / { s += $2 } END { printf "%.3f", s }' "$tmp"/run/out.wav.parts/part-*.log)
    mixw=$(awk '/^  wall / { print $2 }' "$tmp/run/out.wav.parts/mix.log")
    echo "$r parts $busy" >>"$runs"
    echo "$r mix $mixw" >>"$runs"
    printf 'rep %d/%d  whole %s s  slurm %s s\n' "$r" "$reps" \
        "$(awk -v r="$r" '$1 == r && $2 == "whole" { print $3 }' "$runs")" \
        "$(secs "$t0" "$t1")" >&2
done

read -r whole one slurm busy mixw < <(awk "$median_awk"'
    { t[$2] = t[$2] " " $3 }
    END { print median(t["whole"]), median(t["one"]), median(t["slurm"]), median(t["parts"]),
                median(t["mix"]) }' "$runs")

model=$(cpu_model)
report() {
    echo "Machine: ${model:-unknown CPU}, nproc $cores, $(date +%F); slurm-wlm" \
        "$(slurmd -V | awk '{ print $2 }'); $voices voices x $duration s, $parts parts," \
        "medians of $reps."
    echo
    echo "| step | median wall s |"
    echo "|---|---:|"
    echo "| \`farm render\` of the whole, $cores workers | $whole |"
    echo "| one part alone (\`--workers 1\`, $((voices / parts)) voices) | $one |"
    echo "| $parts parts through Slurm and the mix, end to end (\`submit.sh --wait\`) | $slurm |"
    echo "| of which the parts' farms, added up | $busy |"
    echo "| of which \`farm mix\` | $mixw |"
    awk -v w="$whole" -v s="$slurm" 'BEGIN { printf "| **scheduling overhead** (Slurm end to end − one render) | **%.2f** |\n", s - w }'
    echo
    # The projection: per-core rate from one worker alone; the render's own scaling over
    # this machine's cores as the efficiency within a node.
    awk -v v="$voices" -v p="$parts" -v d="$duration" -v one="$one" -v whole="$whole" \
        -v cores="$cores" -v over="$(awk -v w="$whole" -v s="$slurm" 'BEGIN { print s - w }')" 'BEGIN {
        rate = (v / p) * 48000 * d / one            # voice-samples/s on one core
        eff = (v * 48000 * d / whole) / (cores * rate)
        if (eff > 1) eff = 1
        work = 1e6 * 48000 * 600                     # 1,000,000 voices x 10 min at 48 kHz
        printf "Per-core rate: %.3g voice-samples/s (one worker, %d voices); efficiency over %d workers: %.2f.\n\n", rate, v / p, cores, eff
        printf "| 1,000,000 voices x 10 min, 48 kHz stereo | one 16-core node | 10 nodes | 100 nodes |\n|---|---:|---:|---:|\n"
        for (i = 0; i < 3; i++) {
            n = (i == 0) ? 1 : (i == 1 ? 10 : 100)
            t[i] = work / (n * 16 * rate * eff)
            m[i] = n * 230.4e6 / 500e6               # the mix reads n parts of 230 MB at 500 MB/s
        }
        printf "| rendering (parts in parallel), s | %.0f | %.0f | %.0f |\n", t[0], t[1], t[2]
        printf "| scheduling (as measured here), s | %.0f | %.0f | %.0f |\n", over, over, over
        printf "| mix (N parts of 230 MB read at 500 MB/s), s | %.1f | %.1f | %.1f |\n", m[0], m[1], m[2]
        printf "| **total, min** | **%.1f** | **%.1f** | **%.1f** |\n", (t[0] + over + m[0]) / 60, (t[1] + over + m[1]) / 60, (t[2] + over + m[2]) / 60
    }'
}
if [[ -n $outdir ]]; then report | tee "$outdir/slurm.md"; else report; fi
