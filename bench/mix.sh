#!/usr/bin/env bash
# mix.sh — what `farm mix` costs next to the renders it sums: P parts of D seconds (each a
# `farm render --first-voice` of V voices) are rendered, then mixed into one file. Each
# repetition renders every part and mixes them once, so machine noise lands on both alike;
# medians are reported, and the ratio of a mix to the render of one part.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/mix.sh [OUTDIR] [options] [-- FARM_RENDER_ARGS...]

Times `farm render --first-voice` of each part and `farm mix` of all of them, and prints a
markdown table of medians: the render of one part, the mix, and their ratio.

  OUTDIR               also write OUTDIR/mix.md (the table) and OUTDIR/mix_runs.csv
  --parts P            parts (default 4)
  --voices V           voices per part (default 1000)
  --duration D         seconds of audio (default 60)
  --reps R             repetitions (default 5)
  --out EXT            the mix's format, by extension: wav (float, default), flac, ...
  -h, --help           this text
  -- ARGS...           passed on to every render (e.g. -- --workers 1)

The farm binary is $FARM_BIN/farm when FARM_BIN is set, else build/farm under the repository
root. Files go to a temporary directory under $TMPDIR (or /tmp), removed on exit; wall times
are the processes' own, start to exit, so the mix's includes reading the parts and putting
its file in place.
EOF
}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init mix.sh
parts=4
voices=1000
duration=60
reps=5
ext=wav
outdir=""
farm_args=()

while (($#)); do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --parts | --voices | --duration | --reps | --out)
        (($# >= 2)) || die "$1 needs a value (see --help)"
        case $1 in
        --parts) parts=$2 ;;
        --voices) voices=$2 ;;
        --duration) duration=$2 ;;
        --reps) reps=$2 ;;
        --out) ext=$2 ;;
        esac
        shift 2
        ;;
    --)
        shift
        farm_args=("$@")
        break
        ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *)
        bench_outdir "$1"
        shift
        ;;
    esac
done

bench_uints parts voices reps
if ! [[ $duration =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] ||
    ! awk -v d="$duration" 'BEGIN { exit !(d > 0) }'; then
    die "--duration wants a positive number of seconds, not '$duration'"
fi
[[ $ext =~ ^[a-z0-9]+$ ]] || die "--out wants an extension such as wav or flac, not '$ext'"

farm=$farm_dir/farm
[[ -x $farm ]] || die "no farm binary at $farm (build it, or set FARM_BIN to its directory)"
if [[ -n $outdir ]]; then
    mkdir -p "$outdir" || die "cannot create output directory $outdir"
fi

bench_tmpdir farm_mix_bench

# Runs farm with the arguments; prints its wall time in seconds, start to exit.
timed() {
    local t0 t1 rc=0
    t0=$(date +%s%N)
    "$farm" "$@" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
    t1=$(date +%s%N)
    if ((rc != 0)); then
        echo "mix.sh: farm $* failed (exit $rc):" >&2
        cat "$tmp/stderr" >&2
        exit 1
    fi
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", (b - a) / 1e9 }'
}

model=$(cpu_model)
fs=$(df -T "$tmp" 2>/dev/null | awk 'NR == 2 { print $2 }')
header="# farm mix: ${model:-unknown CPU}, nproc $(nproc); $parts parts of $voices voices,"
header+=" $duration s stereo, $reps reps, mix to .$ext, files on ${fs:-?}, $(date +%F)"
header+="${farm_args:+; extra: ${farm_args[*]}}"
echo "$header"

runs=$tmp/runs
: >"$runs"
files=()
for ((p = 0; p < parts; p++)); do
    files+=("$tmp/part$p.wav")
done
for ((r = 1; r <= reps; r++)); do
    for ((p = 0; p < parts; p++)); do
        t=$(timed render -o "${files[$p]}" --first-voice $((p * voices)) --total-voices "$voices" \
            --duration "$duration" -q "${farm_args[@]}")
        echo "$r render $t" >>"$runs"
    done
    t=$(timed mix -o "$tmp/mix.$ext" -q "${files[@]}")
    echo "$r mix $t" >>"$runs"
    printf 'rep %d/%d  mix %.3f s\n' "$r" "$reps" "$t" >&2
done

read -r render_s mix_s < <(awk "$median_awk"'
    { t[$2] = t[$2] " " $3 }
    END { print median(t["render"]), median(t["mix"]) }' "$runs")

table() {
    echo "| step | median wall s | x real time |"
    echo "|---|---:|---:|"
    awk -v r="$render_s" -v m="$mix_s" -v d="$duration" -v p="$parts" -v e="$ext" 'BEGIN {
        printf "| render of one part (%s s) | %.3f | %.0fx |\n", d, r, d / r
        printf "| mix of %d parts into .%s | %.3f | %.0fx |\n", p, e, m, d / m
        printf "| mix / one part | %.3f | |\n", m / r
    }'
}

table
if [[ -n $outdir ]]; then
    {
        echo "$header"
        echo
        table
    } >"$outdir/mix.md" || die "cannot write $outdir/mix.md"
    {
        echo "rep,step,wall_s"
        tr ' ' , <"$runs"
    } >"$outdir/mix_runs.csv" || die "cannot write $outdir/mix_runs.csv"
fi
