#!/usr/bin/env bash
# placement.sh — farm render with workers placed by topology (the default) against the round
# robin over the allowed CPUs that farm used before (the same as --cpus LIST-OF-ALLOWED-CPUS),
# side by side: for each worker count the two policies alternate within every repetition, and
# which goes first alternates too, so machine noise lands on both alike. Medians are reported.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/placement.sh [options] [-- FARM_RENDER_ARGS...]

  --workers LIST       comma-separated worker counts (default 1,2,NPROC)
  --voices V           voices per worker (default 2000)
  --duration D         seconds of audio per render (default 5)
  --reps R             repetitions (default 5)
  --csv FILE           also write every run as CSV
  -h, --help           this text

Prints a markdown table: median wall time and voice-samples per second of each policy, and
topology's speed over round robin. The farm binary is $FARM_BIN/farm when FARM_BIN is set, else
build/farm.
EOF
}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init placement
nproc_n=$(nproc)
workers_list="1,2,$nproc_n"
voices=2000
duration=5
reps=5
csv=""
farm_args=()
while (($#)); do
    case $1 in
    -h | --help) usage | sed "s/NPROC/$nproc_n/"; exit 0 ;;
    --workers | --voices | --duration | --reps | --csv)
        (($# >= 2)) || die "$1 needs a value (see --help)"
        case $1 in
        --workers) workers_list=$2 ;;
        --voices) voices=$2 ;;
        --duration) duration=$2 ;;
        --reps) reps=$2 ;;
        --csv) csv=$2 ;;
        esac
        shift 2 ;;
    --) shift; farm_args=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
[[ $workers_list =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--workers: '$workers_list' is not a list of counts"
[[ $voices =~ ^[1-9][0-9]*$ ]] || die "--voices: '$voices' is not a positive whole number"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps: '$reps' is not a positive whole number"
[[ $duration =~ ^[0-9]*\.?[0-9]+$ ]] || die "--duration: '$duration' is not a number of seconds"
farm="$farm_dir/farm"
[ -x "$farm" ] || die "no farm at $farm (build first, or set FARM_BIN)"

# The allowed CPUs in order: the old round robin, as a --cpus list.
allowed=$(taskset -cp $$ | sed 's/.*: //')
bench_tmpdir
runs="$tmp/runs.csv"
echo "workers,policy,rep,wall_s,vps,cpus" >"$runs"

one() { # workers policy rep
    local extra=()
    [ "$2" = roundrobin ] && extra=(--cpus "$allowed")
    local out
    out=$("$farm" render -o "$tmp/out.wav" --workers "$1" --voices "$voices" \
        --duration "$duration" "${extra[@]}" "${farm_args[@]}" 2>/dev/null)
    local wall vps cpus
    wall=$(sed -n 's/.*wall \([0-9.]*\) s.*/\1/p' <<<"$out")
    vps=$(sed -n 's/.*, \([0-9.e+]*\) voice-samples\/s.*/\1/p' <<<"$out")
    cpus=$(sed -n 's/^  worker [0-9]*  cpu \([0-9]*\).*/\1/p' <<<"$out" | paste -sd' ')
    echo "$1,$2,$3,$wall,$vps,$cpus" >>"$runs"
}

IFS=, read -r -a counts <<<"$workers_list"
for ((r = 0; r < reps; r++)); do
    for w in "${counts[@]}"; do
        if ((r % 2)); then one "$w" roundrobin "$r"; one "$w" topology "$r"
        else one "$w" topology "$r"; one "$w" roundrobin "$r"; fi
    done
done
[ -n "$csv" ] && cp "$runs" "$csv"

echo "| workers | voices each | topology: CPUs | median wall s | Gvoice-samples/s | round robin: CPUs | median wall s | Gvoice-samples/s | topology / round robin |"
echo "|---:|---:|---|---:|---:|---|---:|---:|---:|"
declare -A vps_of
for w in "${counts[@]}"; do
    row="| $w | $voices"
    for p in topology roundrobin; do
        sel=$(awk -F, -v w="$w" -v p="$p" '$1 == w && $2 == p' "$runs")
        cpus=$(cut -d, -f6 <<<"$sel" | sort | uniq -c | sort -rn | head -1 | sed 's/^ *[0-9]* //')
        wall=$(cut -d, -f4 <<<"$sel" | median)
        vps=$(cut -d, -f5 <<<"$sel" | median)
        vps_of[$p]=$vps
        row="$row | $cpus | $wall | $(awk -v v="$vps" 'BEGIN { printf "%.3f", v / 1e9 }')"
    done
    echo "$row | $(awk -v a="${vps_of[topology]}" -v b="${vps_of[roundrobin]}" 'BEGIN { printf "%.3f", a / b }') |"
done
