#!/usr/bin/env bash
# compare_builds.sh OLD_BUILD NEW_BUILD [REPS] — the same renders with two builds of farm,
# interleaved (old, new, old, new, ...) so that the machine's noise falls on both alike:
# `farm render --total-voices 20000 --duration 10` on 1 and 2 workers, and the seed workload
# (4 workers x 500 voices). Prints a markdown table of median wall times and the ratio.
# For checking that a change costs nothing: a refactor, or the healing snapshots.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init compare_builds
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,6s/^# \{0,1\}//p' "$0"
    exit 0
fi
[[ $# -ge 2 ]] || die "usage: compare_builds.sh OLD_BUILD NEW_BUILD [REPS] (--help says more)"
old=$1 new=$2 reps=${3:-5}
bench_tmpdir
cases=("--workers 1 --total-voices 20000" "--workers 2 --total-voices 20000" "--workers 4 --voices 500")
wall() { # BUILD ARGS... -> seconds
    local b=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    "$b/farm" render -o "$tmp/out.wav" --duration 10 -q "$@"
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
echo "| case | old median s | new median s | new / old |"
echo "|---|---:|---:|---:|"
for c in "${cases[@]}"; do
    : >"$tmp/old" && : >"$tmp/new"
    for _ in $(seq "$reps"); do
        # shellcheck disable=SC2086
        wall "$old" $c >>"$tmp/old"
        # shellcheck disable=SC2086
        wall "$new" $c >>"$tmp/new"
    done
    mo=$(median <"$tmp/old") mn=$(median <"$tmp/new")
    printf '| `%s --duration 10` | %.3f | %.3f | %.3f |\n' "$c" "$mo" "$mn" "$(echo "$mn / $mo" | bc -l)"
done
