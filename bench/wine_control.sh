#!/usr/bin/env bash
# wine_control.sh LINUX_BUILD WIN_BUILD [REPS [REQUESTS]] — the control server's round trip
# (bench/control_rtt: the server hosted with real workers, the engine and the null sink, a REQ
# client in the same process) on Linux and built for Windows under wine, over the default ipc://
# socket (a Unix socket file; a named pipe on Windows) and tcp://127.0.0.1, interleaved, REPS
# runs each (default 3) of REQUESTS requests per kind (default 1000). Prints a markdown table:
# the median over the runs of each run's median round trip, and of its p99.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init wine_control
lin=$1 win=$2 reps=${3:-3} n=${4:-1000}
# shellcheck source=scripts/wine-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/wine-env.sh"
wine_prefix_ready
bench_tmpdir
winworker=$(winepath -w "$win/farm-worker.exe")
for _ in $(seq "$reps"); do
  for t in ipc tcp; do
    "$lin/bench/control_rtt" "$lin/farm-worker" "$t" "$n" >>"$tmp/lin.$t"
    wine "$win/bench/control_rtt.exe" "$winworker" "$t" "$n" | tr -d '\r' >>"$tmp/win.$t"
  done
done
echo "| transport (Linux / Windows) | request | Linux median ms | wine median ms | wine / Linux | Linux p99 ms | wine p99 ms |"
echo "|---|---|---:|---:|---:|---:|---:|"
for t in ipc tcp; do
  for kind in "get 1 voice" "set all 500 voices" "status"; do
    row() { awk -F'|' -v k="$kind" -v c="$2" '$3 ~ k {gsub(/ /, "", $c); print $c}' "$tmp/$1.$t" | median; }
    ml=$(row lin 4) mw=$(row win 4) pl=$(row lin 5) pw=$(row win 5)
    name=$([ "$t" = ipc ] && echo "ipc:// (Unix socket / named pipe)" || echo "tcp://127.0.0.1")
    # shellcheck disable=SC2016 # the backquotes are markdown's
    printf '| %s | `%s` | %.3f | %.3f | %.1f | %.3f | %.3f |\n' "$name" "$kind" "$ml" "$mw" \
      "$(echo "$mw / $ml" | bc -l)" "$pl" "$pw"
  done
done
