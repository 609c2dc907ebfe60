#!/usr/bin/env bash
# wine_render.sh LINUX_BUILD WIN_BUILD [REPS] — bench/ring_render on Linux against the same
# program built for Windows (scripts/setup-win.sh: build-win/) and run under wine, interleaved,
# REPS each (default 3): 10 s of 1 x 20000 and 4 x 500 voices with the avx2 kernel. Checks that
# both write the same bits; prints a markdown table of medians.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init wine_render
lin=$1 win=$2 reps=${3:-3}
# shellcheck source=scripts/wine-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/wine-env.sh"
wine_prefix_ready
bench_tmpdir
winworker=$(winepath -w "$win/farm-worker.exe")
echo "| case | Linux median s | wine median s | wine / Linux | same bits |"
echo "|---|---:|---:|---:|---|"
for c in "1 20000" "4 500"; do
    : >"$tmp/lin" && : >"$tmp/win"
    for _ in $(seq "$reps"); do
        # shellcheck disable=SC2086
        "$lin/bench/ring_render" "$lin/farm-worker" $c 1875 avx2 "$tmp/lin.f32" >>"$tmp/lin"
        # shellcheck disable=SC2086
        wine "$win/bench/ring_render.exe" "$winworker" $c 1875 avx2 "$(winepath -w "$tmp/win.f32")" |
            tr -d '\r' >>"$tmp/win"
    done
    same=no
    cmp -s "$tmp/lin.f32" "$tmp/win.f32" && same=yes
    ml=$(median <"$tmp/lin") mw=$(median <"$tmp/win")
    printf '| %s workers x %s voices, 10 s | %.3f | %.3f | %.2f | %s |\n' "${c% *}" "${c#* }" "$ml" "$mw" \
        "$(echo "$mw / $ml" | bc -l)" "$same"
done
