#!/usr/bin/env bash
# render_scaling.sh — how `farm render` scales with the number of worker processes.
#
# A fixed total number of voices is shared out over 1, 2, ... N workers, so perfect scaling
# halves the wall time when the workers double. Worker counts are interleaved within each
# repetition (and the starting count rotates), so a burst of machine noise or a slow first run
# lands on all counts alike instead of on one; medians are reported.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/render_scaling.sh [OUTDIR] [options] [-- FARM_RENDER_ARGS...]

Times `farm render` for several worker counts at a fixed total voice count and prints a
markdown table of median wall time, throughput, speed-up and efficiency.

  OUTDIR               also write OUTDIR/scaling.csv (summary), OUTDIR/scaling_runs.csv
                       (every run) and OUTDIR/scaling.md (the table); created if missing
  --workers LIST       comma-separated worker counts (default 1..nproc, here 1..NPROC)
  --total-voices V     voices in all, shared over the workers (default 20000)
  --duration D         seconds of audio per render (default 10)
  --reps R             repetitions of every worker count (default 5)
  --csv FILE           also write the summary as CSV to FILE
  -h, --help           this text
  -- ARGS...           passed on to every `farm render` (e.g. -- --feedback 0.2)

The farm binary is $FARM_BIN/farm when FARM_BIN is set, else build/farm under the repository
root; farm-worker must sit beside it. Renders go to a temporary directory, removed on exit.
Speed-up is against the smallest worker count in the list (1 by default).
EOF
}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init render_scaling
nproc_n=$(nproc)

workers_list=""
total_voices=20000
duration=10
reps=5
csv=""
outdir=""
farm_args=()

while (($#)); do
    case $1 in
    -h | --help)
        usage | sed "s/NPROC/$nproc_n/"
        exit 0
        ;;
    --workers | --total-voices | --duration | --reps | --csv)
        (($# >= 2)) || die "$1 needs a value (see --help)"
        case $1 in
        --workers) workers_list=$2 ;;
        --total-voices) total_voices=$2 ;;
        --duration) duration=$2 ;;
        --reps) reps=$2 ;;
        --csv) csv=$2 ;;
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

is_uint "$total_voices" || die "--total-voices wants a positive integer, not '$total_voices'"
is_uint "$reps" || die "--reps wants a positive integer, not '$reps'"
if ! [[ $duration =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] ||
    ! awk -v d="$duration" 'BEGIN { exit !(d > 0) }'; then
    die "--duration wants a positive number of seconds, not '$duration'"
fi

if [[ -z $workers_list ]]; then
    mapfile -t workers < <(seq 1 "$nproc_n")
else
    IFS=, read -r -a workers <<<"$workers_list"
    ((${#workers[@]})) || die "--workers wants a comma-separated list, not '$workers_list'"
    declare -A seen=()
    parsed=()
    for w in "${workers[@]}"; do
        is_uint "$w" || die "--workers wants positive integers, not '$w' in '$workers_list'"
        w=$((10#$w)) # "08" is not octal here
        [[ -z ${seen[$w]:-} ]] || die "--workers lists $w twice"
        seen[$w]=1
        parsed+=("$w")
    done
    workers=("${parsed[@]}")
fi
# Sorted, so the table reads top-down and the baseline is the smallest count.
mapfile -t workers < <(printf '%s\n' "${workers[@]}" | sort -n)
base=${workers[0]}

farm=$farm_dir/farm
[[ -x $farm ]] || die "no farm binary at $farm (build it: cmake -S $repo_root -B $repo_root/build \
&& cmake --build $repo_root/build, or set FARM_BIN to its directory)"
[[ -x $(dirname "$farm")/farm-worker ]] || die "no farm-worker beside $farm"

if [[ -n $outdir ]]; then
    mkdir -p "$outdir" || die "cannot create output directory $outdir"
fi

bench_tmpdir

# One render; prints "wall_s vps kernel" parsed from the summary. Errors end the script.
render() {
    local w=$1 dur=$2 rc=0
    "$farm" render -o "$tmp/out.wav" --workers "$w" --total-voices "$total_voices" \
        --duration "$dur" "${farm_args[@]}" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
    if ((rc != 0)); then
        echo "render_scaling: farm render --workers $w failed (exit $rc):" >&2
        cat "$tmp/stderr" >&2
        exit 1
    fi
    # farm render: 10.00 s of audio to OUT (48000 Hz, 2 ch, float)
    #   wall 6.123 s, 1.6x real time, 1.57e+09 voice-samples/s, 20000 voices on 1 workers, ...
    local out re1 re2
    out=$(<"$tmp/stdout")
    re1='render: ([0-9.]+) s of audio .* \(([0-9]+) Hz'
    re2='wall ([0-9.]+) s, .* ([0-9]+) voices on ([0-9]+) workers, kernel ([A-Za-z0-9_]+)'
    if ! [[ $out =~ $re1 ]]; then
        echo "render_scaling: cannot parse farm's summary (did -q sneak into the arguments?):" >&2
        printf '%s\n' "$out" >&2
        exit 1
    fi
    local audio_s=${BASH_REMATCH[1]} sr=${BASH_REMATCH[2]}
    [[ $out =~ $re2 ]] || {
        echo "render_scaling: cannot parse the wall-time line of farm's summary:" >&2
        printf '%s\n' "$out" >&2
        exit 1
    }
    local wall=${BASH_REMATCH[1]} voices=${BASH_REMATCH[2]} got_w=${BASH_REMATCH[3]}
    local kernel=${BASH_REMATCH[4]}
    ((got_w == w)) || {
        echo "render_scaling: asked for $w workers, farm ran $got_w" >&2
        exit 1
    }
    # farm prints voice-samples/s to 3 digits only; recompute it from the exact inputs.
    awk -v a="$audio_s" -v sr="$sr" -v v="$voices" -v t="$wall" -v k="$kernel" \
        'BEGIN { printf "%s %.6g %s\n", t, (t > 0 ? v * a * sr / t : 0), k }'
}

model=$(cpu_model)
echo "# farm render scaling: ${model:-unknown CPU}, nproc $nproc_n; $total_voices voices," \
    "$duration s of audio, $reps reps, workers ${workers[*]}${farm_args:+; extra: ${farm_args[*]}}"

# Untimed: pages the binaries in, and fails fast on bad farm arguments before the long loop.
# (Command substitution, not <(...): a failing render must stop the script under set -e.)
warm=$(render "${workers[-1]}" "$(awk -v d="$duration" 'BEGIN { print (d < 1 ? d : 1) }')")
read -r _ _ kernel <<<"$warm"
echo "# kernel $kernel" >&2

runs=$tmp/runs
: >"$runs"
n=${#workers[@]}
for ((r = 0; r < reps; r++)); do
    for ((i = 0; i < n; i++)); do
        w=${workers[$(((i + r) % n))]}
        result=$(render "$w" "$duration")
        read -r wall vps _ <<<"$result"
        echo "$((r + 1)) $w $wall $vps" >>"$runs"
        printf 'rep %d/%d  workers %3d  wall %8.3f s  %.3f Gvoice-samples/s\n' \
            "$((r + 1))" "$reps" "$w" "$wall" "$(awk -v x="$vps" 'BEGIN { print x / 1e9 }')" >&2
    done
done

# Medians per worker count, then speed-up against the baseline's median wall time.
summary=$(awk -v base="$base" "$median_awk"'
    { wall[$2] = wall[$2] " " $3; vps[$2] = vps[$2] " " $4; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
    END {
        b = median(wall[base])
        for (i = 1; i <= n; i++) { w = order[i]; mw[w] = median(wall[w]); mv[w] = median(vps[w]) }
        # sorted by worker count
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (order[j] + 0 < order[i] + 0) { t = order[i]; order[i] = order[j]; order[j] = t }
        for (i = 1; i <= n; i++) {
            w = order[i]; s = mw[w] > 0 ? b / mw[w] : 0
            printf "%d %.6g %.6g %.4f %.4f\n", w, mw[w], mv[w], s, s * base / w
        }
    }' "$runs")

table() {
    local what="speed-up vs $base worker"
    ((base == 1)) || what+="s"
    echo "| workers | median wall s | median Gvoice-samples/s | $what | efficiency (speed-up / workers) |"
    echo "|---:|---:|---:|---:|---:|"
    awk '{ printf "| %d | %.3f | %.3f | %.2fx | %.2f |\n", $1, $2, $3 / 1e9, $4, $5 }' <<<"$summary"
}

write_csv() {
    {
        echo "workers,total_voices,duration_s,reps,median_wall_s,median_vps,speedup,efficiency,kernel"
        awk -v v="$total_voices" -v d="$duration" -v r="$reps" -v k="$kernel" \
            '{ printf "%d,%d,%s,%d,%s,%s,%s,%s,%s\n", $1, v, d, r, $2, $3, $4, $5, k }' <<<"$summary"
    } >"$1" || die "cannot write $1"
}

table
if [[ -n $csv ]]; then
    write_csv "$csv"
fi
if [[ -n $outdir ]]; then
    write_csv "$outdir/scaling.csv"
    {
        echo "rep,workers,wall_s,vps"
        tr ' ' , <"$runs"
    } >"$outdir/scaling_runs.csv" || die "cannot write $outdir/scaling_runs.csv"
    table >"$outdir/scaling.md" || die "cannot write $outdir/scaling.md"
fi
