#!/usr/bin/env bash
# win_heal.sh MODE FARM_EXE WIN_KILL_EXE [WINE] — healing and process lifetime of farm.exe under
# wine; what tests/test_heal.c checks on Linux. win_kill.exe starts farm.exe and terminates its
# workers (or farm.exe itself) by their Windows process ids.
#   MODE render: a render whose workers are terminated one after the other is byte for byte the
#     undisturbed render; so is one whose worker crashes itself (FARM_TEST_CRASH_WORKER: an
#     access violation); a crash loop fails with its line, exit 1, no file, no temporary, no
#     worker left; farm.exe terminated while rendering takes its workers within a second (the
#     job object) and leaves no temporary (the system deletes it).
#   MODE play: a worker terminated while farm.exe plays into the null sink and records is
#     replaced without a click (the recording, checked by wavgap.py): the other worker's channel
#     never silent, unless the machine stalled that worker and farm counted its late blocks (then
#     silent no longer than they account for). Exit 77 (skipped) while farm.exe answers that it
#     does not play yet.
# Registered in the Windows build (tests/CMakeLists.txt); scripts/test-win.sh runs it.
set -uo pipefail
mode=$1 exe=$2 killer=$3 wine=${4:-wine}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/farm-win-heal.XXXXXX)
trap 'rm -rf "$dir"' EXIT
# A crashing worker would start wine's debugger (winedbg), which takes seconds and prints pages;
# Windows would end it at once (the worker asks for no error dialog). Wine still says one line
# of its own, "wine: Unhandled ...", which the checks below leave out.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:+$WINEDLLOVERRIDES;}winedbg.exe=d"
fail() {
  echo "win_heal: FAILED: $*"
  exit 1
}
# run NAME [ENV=VALUE...] -- WIN_KILL_OPTIONS -- FARM ARGS: farm.exe under win_kill.exe; its
# stdout (win_kill's lines and farm's) in $dir/NAME.out, its stderr less wine's own lines in
# $dir/NAME.err; sets rc. (NAME.raw and .raw2 as they came.)
run() {
  local name=$1
  shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$wine" "$killer" "$@" >"$dir/$name.raw" 2>"$dir/$name.raw2"
  rc=$?
  # Windows' C library ends lines with CR LF.
  tr -d '\r' <"$dir/$name.raw" >"$dir/$name.out"
  tr -d '\r' <"$dir/$name.raw2" | grep -v '^wine: ' >"$dir/$name.err"
  grep '^win_kill: ' "$dir/$name.out" | sed "s/^/$name: /"
}
# No temporary and nothing else beside what the test named.
only() {
  local want=$1 got="" f
  for f in "$dir"/* "$dir"/.[!.]*; do
    case $f in *.out | *.raw | *.raw2 | *.err) ;; *) [ -e "$f" ] && got+="${f##*/} " ;; esac
  done
  [ "$got" = "$want" ] || fail "files in the directory: '$got', wanted '$want'"
}

render_tests() {
  # 2 workers x 3000 voices. The undisturbed render first, then the same with 3 workers
  # terminated at 0.3 s intervals, the next one only once the last was replaced; worker 0 sleeps
  # 2 ms a block (FARM_TEST_SLOW_WORKER), so the render lasts long enough (at least 3.75 s for
  # 1875 blocks) for all three on any machine. The bytes do not depend on the pace.
  local args=(render -q --workers 2 --total-voices 3000 --duration 10)
  "$wine" "$exe" "${args[@]}" -o "Z:$dir/whole.wav" || fail "the undisturbed render"
  local t0 t1
  t0=$(date +%s.%N)
  run killed FARM_TEST_SLOW_WORKER=0:2000 -- --kill 3 --every 300 -- "$exe" "${args[@]}" \
    -o "Z:$dir/killed.wav"
  t1=$(date +%s.%N)
  [ $rc -eq 0 ] || fail "killed: exit $rc: $(cat "$dir/killed.err")"
  grep -q '^win_kill: killed 3 of 3$' "$dir/killed.out" || fail "killed: $(cat "$dir/killed.out")"
  [ "$(grep -c 'was terminated (status 137); replaced by' "$dir/killed.err")" -eq 3 ] ||
    fail "killed: three lines about the terminated workers: $(cat "$dir/killed.err")"
  cmp "$dir/whole.wav" "$dir/killed.wav" || fail "killed: the healed render differs"
  echo "killed: the same bytes as the undisturbed render; $(awk -v a="$t0" -v b="$t1" \
    'BEGIN { printf "%.1f s", b - a }') under win_kill; heal times: $(grep -o 'rendering [0-9.]* ms after' \
    "$dir/killed.err" | awk '{ printf "%s%s ms", (NR > 1 ? ", " : ""), $2 }')"

  # A worker that crashes itself half-way (block 375 of 750): an access violation.
  local short=(render -q --workers 2 --total-voices 3000 --duration 4)
  "$wine" "$exe" "${short[@]}" -o "Z:$dir/whole4.wav" || fail "the undisturbed short render"
  run crashed FARM_TEST_CRASH_WORKER=1:375:11 -- -- "$exe" "${short[@]}" -o "Z:$dir/crashed.wav"
  [ $rc -eq 0 ] || fail "crashed: exit $rc: $(cat "$dir/crashed.err")"
  grep -q '^farm: worker 1 (pid [0-9]*) crashed (exception 0xc0000005); replaced by' \
    "$dir/crashed.err" || fail "crashed: $(cat "$dir/crashed.err")"
  cmp "$dir/whole4.wav" "$dir/crashed.wav" || fail "crashed: the healed render differs"
  echo "crashed: the same bytes; $(cat "$dir/crashed.err")"

  # A crash loop: worker 0 and every replacement crash 5 blocks in; the fourth death is one too
  # many. Exit 1, the cause as the last line, no file, no temporary, no worker left.
  run loop FARM_TEST_CRASH_WORKER=0:5:11:every -- -- "$exe" "${short[@]}" --max-restarts 3 \
    -o "Z:$dir/loop.wav"
  [ $rc -eq 1 ] || fail "loop: exit $rc: $(cat "$dir/loop.err")"
  tail -1 "$dir/loop.err" | grep -q '^farm: worker 0 .*crashed.*--max-restarts 3' ||
    fail "loop: the last line: $(cat "$dir/loop.err")"
  grep -vq '^farm: ' "$dir/loop.err" && fail "loop: lines not farm's: $(cat "$dir/loop.err")"
  grep -q 'win_kill: farm.exe exited with status 1; [0-9]* workers seen, 0 left running' \
    "$dir/loop.out" || fail "loop: $(cat "$dir/loop.out")"
  echo "loop: exit 1: $(tail -1 "$dir/loop.err")"
  only "crashed.wav killed.wav whole.wav whole4.wav "

  # farm.exe terminated while rendering: its workers go with it (the job object), and the
  # temporary beside the target goes too (deleted by the system when its handle closes).
  run terminated FARM_TEST_SLOW_WORKER=0:2000 -- --terminate-farm --every 300 -- "$exe" \
    "${args[@]}" -o "Z:$dir/terminated.wav"
  [ $rc -eq 0 ] || fail "terminated: $(cat "$dir/terminated.out" "$dir/terminated.err")"
  only "crashed.wav killed.wav whole.wav whole4.wav "
  echo "terminated: no temporary left"
}

play_tests() {
  # Voice K on worker K on channel K, a plain sine each; one worker terminated 0.8 s after both
  # run; 3 s played into the null sink and recorded. Without -q: the report on stdout counts
  # each worker's late blocks, which the recording is judged by.
  local args=(--null-sink --workers 2 --total-voices 2 --amp 0.5 --feedback 0 --sr 48000
    --ring-blocks 4 --duration 3)
  run played -- --kill 1 --every 800 -- "$exe" "${args[@]}" --record "Z:$dir/played.wav"
  if [ $rc -eq 2 ] && grep -q 'not yet on Windows' "$dir/played.err"; then
    echo "win_heal: $(cat "$dir/played.err"): skipped"
    exit 77
  fi
  [ $rc -eq 0 ] || fail "played: exit $rc: $(cat "$dir/played.err")"
  grep -q '^win_kill: killed 1 of 1$' "$dir/played.out" || fail "played: $(cat "$dir/played.out")"
  local hit
  hit=$(sed -n 's/^farm: worker \([01]\) (pid [0-9]*) was terminated.*missed.*/\1/p' \
    "$dir/played.err")
  [ -n "$hit" ] || fail "played: no line about the terminated worker: $(cat "$dir/played.err")"
  # Late blocks: the terminated worker's missed blocks, and any block a worker stalled by the
  # machine (for longer than its 4-block ring, 21 ms) did not deliver in time. Each is counted,
  # per worker ("  worker K  ...  late N  ...") and for the stream ("late blocks N"), and the
  # two add up; the recording may be silent on a channel only as far as its worker's count says.
  local late=() k n sum=0 stream missed
  for k in 0 1; do
    n=$(sed -n "s/^  worker $k  .*  late \([0-9]*\)  .*/\1/p" "$dir/played.out")
    [ -n "$n" ] || fail "played: no report line for worker $k: $(cat "$dir/played.out")"
    late+=("$n")
    sum=$((sum + n))
  done
  stream=$(sed -n 's/.*, late blocks \([0-9]*\),.*/\1/p' "$dir/played.out")
  [ "$stream" = "$sum" ] ||
    fail "played: stream late blocks $stream, workers' ${late[*]}: $(cat "$dir/played.out")"
  missed=$(sed -n 's/^farm: worker .*was terminated.*its voices missed \([0-9]*\) blocks.*/\1/p' \
    "$dir/played.err")
  [ -n "$missed" ] && [ "${late[$hit]}" -ge "$missed" ] ||
    fail "played: worker $hit missed ${missed:-?} blocks, yet is late ${late[$hit]}"
  local line
  line=$(python3 "$here/wavgap.py" "$dir/played.wav" "$hit" 1.0 "${late[0]},${late[1]}" 2>&1) ||
    fail "played: $line (late blocks: worker 0 ${late[0]}, worker 1 ${late[1]})"
  echo "played: $(grep '^farm: worker' "$dir/played.err")"
  echo "played: $line"
}

case $mode in
render) render_tests ;;
play) play_tests ;;
*) fail "no mode $mode (render, play)" ;;
esac
echo "win_heal $mode: passed"
