#!/usr/bin/env bash
# sweep.sh — glide every voice of a running farm from LOW up to HIGH and back, in steps (each
# step a linear ramp), then give every voice its own starting frequency back.
#
#   examples/sweep.sh [--url URL] [--low 300] [--high 900] [--steps 12] [--step-time 0.25]
#
# Everything goes through farmctl (build/farmctl, or farmctl on PATH); see CONTROL.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: examples/sweep.sh [options]

Glides all voices of a running farm together from --low up to --high and back down, in
--steps steps of --step-time seconds (each step is a linear ramp, so the glide is smooth),
then ramps every voice back to the frequency it started with: farm gives voice i the
frequency derived from --seed and i, uniform in --freq-min..--freq-max, and this script
computes the same numbers. Ctrl-C during the sweep, or a refused step, restores too.

Options
  --url URL          the farm's control socket (default: what farmctl finds: $FARM_CONTROL,
                     or the one farm running as you)
  --low HZ           bottom of the sweep (default 300)
  --high HZ          top of the sweep (default 900)
  --steps N          steps from low to high, and again back (default 12)
  --step-time S      seconds per step, the ramp of each (default 0.25)
  --freq-min HZ      the farm's --freq-min (default 400, farm's default)
  --freq-max HZ      the farm's --freq-max (default 800, farm's default)
  --restore-ramp S   seconds each voice takes to glide back (default 1)
  --no-restore       leave the voices at --low
  --farmctl PATH     the farmctl to use (default: build/farmctl beside this script, or PATH)
  -h, --help         this text

Restoring sends one request per voice (the protocol sets one value per request), so it takes
a moment for thousands of voices; examples/sweep.py does the same over one socket, faster.

Examples
  build/farm --null-sink --workers 2 --voices 100 &
  examples/sweep.sh
  examples/sweep.sh --url ipc:///run/user/1000/farm/4242.control --low 200 --high 2000 \
      --steps 40 --step-time 0.1
EOF
}

die() {
    echo "sweep.sh: $*" >&2
    exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
farmctl=""
url=()
low=300 high=900 steps=12 step_time=0.25
freq_min=400 freq_max=800 restore_ramp=1 restore=1

is_number() { [[ $1 =~ ^[0-9]+([.][0-9]*)?$|^[.][0-9]+$ ]]; }

while [[ $# -gt 0 ]]; do
    opt=$1
    case $opt in
        -h | --help) usage; exit 0 ;;
        --no-restore) restore=0; shift; continue ;;
        --url | --low | --high | --steps | --step-time | --freq-min | --freq-max | \
            --restore-ramp | --farmctl)
            [[ $# -ge 2 ]] || die "$opt needs a value (see --help)"
            val=$2
            shift 2 ;;
        *) die "unknown option '$opt' (see --help)" ;;
    esac
    case $opt in
        --url) url=(--url "$val") ;;
        --farmctl) farmctl=$val ;;
        --steps) [[ $val =~ ^[1-9][0-9]*$ ]] || die "--steps: '$val' is not a whole number above 0"
                 steps=$val ;;
        *) is_number "$val" || die "$opt: '$val' is not a number"
           case $opt in
               --low) low=$val ;;
               --high) high=$val ;;
               --step-time) step_time=$val ;;
               --freq-min) freq_min=$val ;;
               --freq-max) freq_max=$val ;;
               --restore-ramp) restore_ramp=$val ;;
           esac ;;
    esac
done

if [[ -z $farmctl ]]; then
    if [[ -x $here/../build/farmctl ]]; then
        farmctl=$here/../build/farmctl
    elif command -v farmctl >/dev/null; then
        farmctl=farmctl
    else
        die "no farmctl: build it (cmake --build build) or give --farmctl PATH"
    fi
fi

ctl() { "$farmctl" "${url[@]}" "$@"; }

# The farm's size and seed, from its status reply (a JSON object on one line; the config
# comes first, so the first "voices" and "seed" are the configuration's).
status=$(ctl status) || exit $?
voices=$(grep -o '"voices":[0-9]*' <<<"$status" | head -n 1 | cut -d: -f2)
first=$(grep -o '"first_voice":[0-9]*' <<<"$status" | head -n 1 | cut -d: -f2)
first=${first:-0} # a part of a bigger farm (--first-voice) numbers its voices from there
seed=$(grep -o '"seed":[^,}]*' <<<"$status" | head -n 1 | cut -d: -f2)
[[ -n $voices ]] || die "the status reply names no voice count: $status"

# Farm's voice i starts at freq_min + u * (freq_max - freq_min), u = splitmix64(splitmix64(seed)
# ^ i) >> 11 scaled to [0, 1) (dsp/dsp.c). Bash integers are 64-bit and wrap like C's uint64_t;
# only the right shifts need masking to be logical. awk does the double arithmetic, exactly
# as farm does, since r >> 11 has 53 bits.
mix() {
    local x=$(($1 + 0x9e3779b97f4a7c15))
    x=$(((x ^ ((x >> 30) & 0x3ffffffff)) * 0xbf58476d1ce4e5b9))
    x=$(((x ^ ((x >> 27) & 0x1fffffffff)) * 0x94d049bb133111eb))
    mixed=$((x ^ ((x >> 31) & 0x1ffffffff)))
}

restore_voices() {
    if [[ ! $seed =~ ^[0-9]+$ ]] || ((${#seed} > 15)); then
        echo "sweep.sh: the farm's seed ($seed) is not exact in its status reply; leaving" \
            "the voices at $low Hz" >&2
        return 1
    fi
    echo "sweep.sh: ramping $voices voices back to their own frequencies over ${restore_ramp} s"
    mix "$seed"
    local base=$mixed i
    for ((i = first; i < first + voices; i++)); do
        mix $((base ^ i))
        echo $(((mixed >> 11) & 0x1fffffffffffff))
    done |
        awk -v lo="$freq_min" -v hi="$freq_max" -v first="$first" \
            '{ printf "%d %.17g\n", first + NR - 1, lo + ($1 * (1.0 / 9007199254740992.0)) * (hi - lo) }' |
        while read -r i f; do
            ctl set "$i" freq "$f" ramp "$restore_ramp" >/dev/null
        done
}

# Interrupted (Ctrl-C, SIGTERM) or failed half-way: put the voices back on the way out.
sweeping=0
on_exit() {
    if ((sweeping && restore)); then
        sweeping=0
        restore_voices || true
    fi
}
interrupted() {
    trap - INT TERM
    echo >&2
    echo "sweep.sh: interrupted" >&2
    exit 130
}
trap on_exit EXIT
trap interrupted INT TERM

step() { # $1: frequency
    printf 'sweep.sh: %8.2f Hz\n' "$1"
    ctl set all freq "$1" ramp "$step_time" >/dev/null
    sleep "$step_time"
}

echo "sweep.sh: $voices voices, $low Hz -> $high Hz -> $low Hz in $steps steps of $step_time s each way"
freq() { awk -v a="$low" -v b="$high" -v k="$1" -v n="$steps" 'BEGIN { printf "%.6g", a + (b - a) * k / n }'; }
sweeping=1
for ((k = 0; k <= steps; k++)); do step "$(freq "$k")"; done
for ((k = steps - 1; k >= 0; k--)); do step "$(freq "$k")"; done
sweeping=0

trap - INT TERM
if ((restore)); then
    restore_voices
    sleep "$restore_ramp"
fi
echo "sweep.sh: done"
