#!/usr/bin/env bash
# test_slurm.sh FARM SOURCE_DIR — renders through Slurm for real, on a local cluster
# (scripts/slurm-local.sh: munged, slurmctld and two slurmd on 127.0.0.1, in a private
# directory) with examples/slurm/submit.sh:
#   1. a 4-part render and its mix equal one `farm render` of the whole within 1e-6;
#   2. one part's farm killed (SIGKILL) mid-render is requeued, and the mix is still right;
#   3. one part deleted, --resume says 1 of 4 remain and renders only that one again;
#   4. submit.sh refuses, in one line: no sbatch on the PATH, parts already there without
#      --resume; a part that fails for good (bad options) makes --wait name it;
#   5. the cluster stopped, nothing of it (munged, slurmctld, slurmd, farm) is left running.
# No wall-clock assertion: every wait polls with a generous deadline. Everything started is
# stopped by the trap, whatever happens. Exit 77 (skipped) where a cluster cannot be had: not
# root (slurm-local.sh installs slurm-wlm and munge when missing, as root).
# shellcheck disable=SC2015 # "A && B || fail": fail exits
set -euo pipefail
farm=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
export FARM=$farm

if [ "$(id -u)" != 0 ]; then
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "test_slurm: skipped: slurm-wlm and munge are not installed, and installing them needs root"
  else
    echo "test_slurm: skipped: the local cluster's slurmd runs jobs as root (run the suite as root)"
  fi
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-slurm.XXXXXX")
cluster=$tmp/cluster
stop_all() {
  local rv=$?
  trap - EXIT INT TERM
  [ -n "${waiter:-}" ] && { kill "$waiter" 2>/dev/null || true; wait "$waiter" 2>/dev/null || true; }
  "$src/scripts/slurm-local.sh" stop --dir "$cluster" >/dev/null 2>&1 || rv=1
  if [ "$rv" != 0 ] && [ "$rv" != 77 ]; then
    echo "---- the cluster's logs (last lines)"
    tail -n 15 "$cluster"/*.log "$tmp"/*/*.log 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rv"
}
trap stop_all EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
fail() { echo "test_slurm: FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "a local cluster of two nodes"
started=$("$src/scripts/slurm-local.sh" start --dir "$cluster" --nodes 2) ||
  fail "slurm-local.sh start: $started"
echo "$started"
eval "$(echo "$started" | tail -1)"
[ "${SLURM_CONF:-}" = "$cluster/slurm.conf" ] || fail "start's last line: $(echo "$started" | tail -1)"

# The render: many voices, one second, so that a part takes seconds on any machine (time to
# kill it) while its file stays small. A block of 100,000 voices or more takes a starved core
# (a busy machine) seconds now and then: more than the render watchdog's default 0.5 s.
voices=400000
opts=(--total-voices "$voices" --seed 11 --duration 1 --amp 0.00002 --watchdog 30 -q)
frames=48000
"$farm" render -o "$tmp/whole.wav" --workers 2 "${opts[@]}" || fail "farm render of the whole"
same() { python3 "$src/tests/wavcompare.py" "$1" "$2" "$frames" 2 0.0005 || fail "$1 differs from $2"; }
submit() { "$src/examples/slurm/submit.sh" "$@"; }
job_of() { sed -n "s/^$1: job \([0-9]*\).*/\1/p"; }

step "1. four parts and their mix, as one render"
run1=$tmp/run1
out=$(submit --parts 4 --out "$run1/out.wav" --cpus-per-task 1 --wait -- "${opts[@]}") ||
  fail "submit.sh --wait: $out"
echo "$out"
[ -n "$(echo "$out" | job_of parts)" ] && [ -n "$(echo "$out" | job_of mix)" ] ||
  fail "submit.sh prints both job ids: $out"
same "$tmp/whole.wav" "$run1/out.wav"
# each task's farm took the CPUs Slurm gave it (--cpus-per-task 1)
grep -q -- "--part 3/4 --workers 1 " "$run1/out.wav.parts/part-3-of-4.log" ||
  fail "the part's farm was not given --workers 1: $(cat "$run1/out.wav.parts/part-3-of-4.log")"

step "2. one part's farm killed mid-render is requeued; the mix is still right"
run2=$tmp/run2
submit --parts 4 --out "$run2/out.wav" --cpus-per-task 1 --wait -- "${opts[@]}" \
  >"$tmp/submit2.out" 2>&1 &
waiter=$!
killed=
for _ in $(seq 1200); do # until a part's farm is rendering (its temporary holds audio)
  for tmpfile in "$run2"/out.wav.parts/part-*-of-4.wav.farm-*; do
    [ -s "$tmpfile" ] || continue
    part=${tmpfile##*/part-}
    part=${part%%-of-4*}
    pid=$(pgrep -f -x "$farm render -o $run2/out.wav.parts/part-$part-of-4.wav --part $part/4 .*" |
      head -1 || true)
    [ -n "$pid" ] || continue
    kill -KILL "$pid" && killed=$part
    break 2
  done
  sleep 0.1
done
[ -n "$killed" ] || fail "no part's farm was seen rendering within 120 s: $(cat "$tmp/submit2.out")"
echo "killed part $killed's farm (pid $pid) mid-render"
rv=0
wait "$waiter" || rv=$?
waiter=
cat "$tmp/submit2.out"
[ "$rv" = 0 ] || fail "submit.sh --wait after the kill: exit $rv"
log=$run2/out.wav.parts/part-$killed-of-4.log
grep -q "requeued" "$log" && grep -q "try 2" "$log" || fail "part $killed was not requeued: $(cat "$log")"
same "$tmp/whole.wav" "$run2/out.wav"

step "3. a part deleted: --resume renders only that one again"
parts=$run1/out.wav.parts
declare -A before
for k in 0 1 3; do before[$k]=$(stat -c '%i %Y.%y' "$parts/part-$k-of-4.wav"); done
rm "$parts/part-2-of-4.wav"
rm "$run1/out.wav"
out=$(submit --parts 4 --out "$run1/out.wav" --cpus-per-task 1 --wait -- "${opts[@]}" 2>&1) &&
  fail "without --resume, parts already there are refused: $out"
echo "$out" | grep -q "already holds parts (3): --resume to finish" || fail "refusal: $out"
out=$(submit --parts 4 --out "$run1/out.wav" --cpus-per-task 1 --resume --wait -- "${opts[@]}") ||
  fail "submit.sh --resume: $out"
echo "$out"
echo "$out" | grep -qx "resume: 1 of 4 parts remain (2)" || fail "--resume counts: $out"
echo "$out" | grep -q "^parts: job [0-9]* (array 2)" || fail "only part 2 is submitted: $out"
for k in 0 1 3; do
  [ "$(stat -c '%i %Y.%y' "$parts/part-$k-of-4.wav")" = "${before[$k]}" ] ||
    fail "part $k was written again"
done
[ "$(grep -c "try 1" "$parts/part-2-of-4.log")" = 2 ] || fail "part 2 rendered again: $(cat "$parts/part-2-of-4.log")"
same "$tmp/whole.wav" "$run1/out.wav"
out=$(submit --parts 4 --out "$run1/out.wav" --resume -- "${opts[@]}") || fail "$out"
echo "$out" | grep -qx "resume: 0 of 4 parts remain" || fail "nothing remains: $out"
for _ in $(seq 600); do # that mix job ends before the cluster stops
  [ -z "$(squeue -h -o %i)" ] && break
  sleep 0.2
done

step "4. refusals"
mkdir -p "$tmp/bin"
ln -s "$(command -v dirname)" "$tmp/bin/dirname"
rv=0
out=$(PATH=$tmp/bin /bin/bash "$src/examples/slurm/submit.sh" --parts 2 --out "$tmp/x.wav" \
  -- --total-voices 10 2>&1) || rv=$?
[ "$rv" != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "sbatch is not on the PATH" ||
  fail "no sbatch: exit $rv, $out"
rv=0
out=$(submit --parts 2 --out "$tmp/run4/out.wav" --wait -- --total-voices 1 --duration 0.1 2>&1) || rv=$?
echo "$out"
[ "$rv" != 0 ] &&
  echo "$out" | grep -qE "(will not run|CANCELLED): part [01] \(job [0-9]+_[01]\) FAILED, exit 2:0" ||
  fail "a part refused for good is named: exit $rv"
[ ! -e "$tmp/run4/out.wav" ] || fail "no mix after a failed part"

step "5. the cluster stopped, nothing left running"
"$src/scripts/slurm-local.sh" stop --dir "$cluster"
unset SLURM_CONF # what this script starts from now on does not carry the mark it looks for
leftover() {
  grep -lsxzF -e "SLURM_CONF=$cluster/slurm.conf" -e "FARM_SLURM_LOCAL=$cluster" \
    /proc/[0-9]*/environ 2>/dev/null | sed 's|/proc/\([0-9]*\)/environ|\1|' | { grep -vx "$$" || true; } |
    while read -r pid; do ps -o pid=,args= -p "$pid" || true; done
  return 0
}
left=$(leftover)
[ -z "$left" ] || fail "left running: $left"
! pgrep -f "$cluster" >/dev/null || fail "left running: $(pgrep -af "$cluster")"
! pgrep -f "$farm render -o $tmp" >/dev/null || fail "a farm is left: $(pgrep -af "$farm render")"
echo "test_slurm: passed"
