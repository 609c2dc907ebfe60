#!/usr/bin/env bash
# win_render.sh LINUX_FARM WIN_FARM_EXE [WINE] — farm.exe render under wine against the Linux
# build's farm render of the same options: the same audio (identical, or within 1e-6), checked by
# length and level too (wavcompare.py), on every kernel this CPU runs; parts and farm mix; a file
# at the path replaced whole; bad input refused with one line, exit 2, nothing left behind.
# Registered in the Windows build (tests/CMakeLists.txt); scripts/test-win.sh runs it, with the
# environment wine needs. Exit 77 (skipped) when there is no Linux build to compare with.
set -uo pipefail
linux=$1 exe=$2 wine=${3:-wine}
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$linux" ]; then
  echo "win_render: no Linux farm at $linux (scripts/setup.sh build Release): skipped"
  exit 77
fi
dir=$(mktemp -d /tmp/farm-win-render.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() {
  echo "win_render: FAILED: $*"
  exit 1
}
# Windows sees this machine's files on drive Z:.
wfarm() { "$wine" "$exe" "$@"; }

# compare NAME FRAMES CHANNELS MIN_RMS ARGS...: renders ARGS on both, then compares.
compare() {
  local name=$1 frames=$2 channels=$3 rms=$4 lrc wrc
  shift 4
  "$linux" render -q -o "$dir/$name.linux.wav" "$@" 2>"$dir/err.linux"
  lrc=$?
  wfarm render -q -o "Z:$dir/$name.win.wav" "$@" 2>"$dir/err.win"
  wrc=$?
  if [ $lrc -ne 0 ]; then
    # A kernel this CPU cannot run: both builds refuse it the same way.
    [ $wrc -eq $lrc ] || fail "$name: Linux exit $lrc ($(head -1 "$dir/err.linux")), Windows $wrc"
    echo "$name: refused by both builds (exit $lrc): $(tail -1 "$dir/err.linux")"
    return
  fi
  [ $wrc -eq 0 ] || fail "$name: farm.exe exit $wrc: $(cat "$dir/err.win")"
  local same="differing bytes"
  cmp -s "$dir/$name.linux.wav" "$dir/$name.win.wav" && same="identical bytes"
  local line
  line=$(python3 "$here/wavcompare.py" "$dir/$name.linux.wav" "$dir/$name.win.wav" \
    "$frames" "$channels" "$rms" 2>&1) || fail "$name: $line"
  echo "$name: $line ($same)"
}

# Every kernel: the same voices rendered by the same code, compiled by GCC and by mingw's GCC.
for isa in generic sse2 avx2 avx512; do
  FARM_ISA=$isa compare "kernel-$isa" 22050 2 0.005 --duration 0.5 --sr 44100 --workers 3 \
    --voices 40
done

# Sine voices, three channels, pcm24, the limiter at work (gain 40), an existing file replaced.
head -c 1000 /dev/urandom >"$dir/sine.win.wav"
compare sine 14400 3 0.05 --duration 0.3 --oscillator sine --total-voices 301 --workers 2 \
  --channels 3 --sample-type pcm24 --gain 40 --seed 9

# Parts (--first-voice, w64, float without gain) and farm mix of them, pcm16.
for part in 0 150; do
  "$linux" render -q -o "$dir/p$part.linux.w64" --duration 0.25 --first-voice $part \
    --total-voices 150 --workers 2 --seed 5 || fail "Linux part $part"
  wfarm render -q -o "Z:$dir/p$part.win.w64" --duration 0.25 --first-voice $part \
    --total-voices 150 --workers 2 --seed 5 || fail "farm.exe part $part"
done
"$linux" mix -q -o "$dir/mix.linux.wav" --sample-type pcm16 --gain 4 "$dir/p0.linux.w64" \
  "$dir/p150.linux.w64" || fail "Linux mix"
wfarm mix -q -o "Z:$dir/mix.win.wav" --sample-type pcm16 --gain 4 "Z:$dir/p0.win.w64" \
  "Z:$dir/p150.win.w64" || fail "farm.exe mix"
line=$(python3 "$here/wavcompare.py" "$dir/mix.linux.wav" "$dir/mix.win.wav" 12000 2 0.01 2>&1) ||
  fail "mix: $line"
same="differing bytes"
cmp -s "$dir/mix.linux.wav" "$dir/mix.win.wav" && same="identical bytes"
echo "parts and mix: $line ($same)"

# Nothing left beside the outputs: no temporaries.
leftover=$(find "$dir" -name '*.farm-*')
[ -z "$leftover" ] || fail "temporaries left: $leftover"

# Bad input: one line, exit 2, nothing written.
bad() {
  local what=$1 rc lines
  shift
  wfarm "$@" >/dev/null 2>"$dir/err.bad"
  rc=$?
  lines=$(wc -l <"$dir/err.bad")
  if [ $rc -ne 2 ] || [ "$lines" -ne 1 ]; then
    fail "$what: exit $rc, $lines lines: $(cat "$dir/err.bad")"
  fi
  echo "$what: exit 2, $(cat "$dir/err.bad")"
}
bad "missing directory" render -q -o "Z:$dir/missing/x.wav" --duration 0.1 --voices 4
[ ! -e "$dir/missing" ] || fail "missing directory: something was made"
bad "unknown format" render -q -o "Z:$dir/x.nosuch" --duration 0.1 --voices 4
bad "a playing option in render" render -q -o "Z:$dir/x.wav" --duration 0.1 --voices 4 --host wasapi
if compgen -G "$dir/x.*" >/dev/null; then fail "bad input left a file: $(ls "$dir")"; fi
echo "win_render: passed"
