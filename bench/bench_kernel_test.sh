#!/bin/sh
# bench_kernel_test.sh BENCH_KERNEL — bench_kernel's bad input and its output's shape, in a
# second: a voice count of 0 and a CPU it cannot pin to are refused in one line with a non-zero
# exit; a tiny run reports the core clock and voice-samples per cycle in the table and the CSV,
# timed by wall time and by --cpu-time.
# No timing is checked.
set -eu
bk=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

# refused ARGS...: exits non-zero, one line on stderr, nothing on stdout.
refused() {
  if "$bk" "$@" >"$tmp/out" 2>"$tmp/err"; then
    fail "bench_kernel $* exited 0"
  fi
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "bench_kernel $*: not one line on stderr: $(cat "$tmp/err")"
  [ ! -s "$tmp/out" ] || fail "bench_kernel $*: wrote to stdout: $(cat "$tmp/out")"
  echo "ok: bench_kernel $* refused: $(cat "$tmp/err")"
}
refused --voices 0
refused --voices 500,0
refused --cpu 1023 # parses (PLAT_CPU_SETSIZE is 1024) but no machine here has it
refused --cpu -1
refused --cpu nine

"$bk" --voices 64 --trials 1 --seconds 0.01 --csv "$tmp/k.csv" >"$tmp/out" 2>"$tmp/err" ||
  fail "a tiny run failed: $(cat "$tmp/err")"
cat "$tmp/out"
grep -q '^| isa | voices | median Gvoice-samples/s | voice-samples per cycle |' "$tmp/out" ||
  fail "no per-cycle column in the table"
head -1 "$tmp/k.csv" | grep -q ',kernel,clock_ghz,vs_per_cycle$' || fail "CSV header: $(head -1 "$tmp/k.csv")"
case $(uname -m) in
x86_64 | amd64 | i?86)
  grep -q '^# core clock before the trials: [0-9.]* GHz' "$tmp/out" || fail "no clock before"
  grep -q '^# core clock after the trials: [0-9.]* GHz' "$tmp/out" || fail "no clock after"
  # Every row has a clock and a per-cycle figure; a sane clock is 0.5 to 7 GHz.
  awk -F, 'NR > 1 && (NF != 12 || $11 < 0.5 || $11 > 7 || $12 <= 0) { print; bad = 1 }
           END { exit bad }' "$tmp/k.csv" || fail "CSV rows without a clock or a per-cycle figure"
  ;;
*)
  grep -q '^# core clock: not measured' "$tmp/out" || fail "no word on the clock"
  ;;
esac
"$bk" --voices 64 --trials 1 --seconds 0.01 --cpu-time >"$tmp/out" 2>"$tmp/err" ||
  fail "a tiny --cpu-time run failed: $(cat "$tmp/err")"
grep -q "s each of the thread's CPU time, median" "$tmp/out" || fail "--cpu-time: not in the header"
echo "bench_kernel_test passed"
