#!/usr/bin/env bash
# win_play.sh WIN_FARM_EXE [WINE] — farm.exe playing under wine. Wine's ALSA driver (selected in
# the prefix's registry) plays into ALSA's default PCM, which an ALSA configuration made here
# (ALSA_CONFIG_PATH) makes one of type jack (libasound2-plugins, amd64 for 64-bit wine), into a
# private jackd with the dummy driver (paced in real time, no sound card). Checked:
# - farm.exe devices and probe (JSON) list WASAPI and MME, each with an output that opens; probe
#   answers WASAPI's exclusive mode: granted, or refused with what it means and "shared mode";
# - --host wasapi, --host mme and --exclusive play: the --record file is checked by spectrum
#   (each channel's tone at the frequency a render of the same voices has, at its level, and
#   windows with too little of their energy there only as many as the late blocks farm counted
#   for that channel's worker account for: a stall of the machine is not farm's, an uncounted
#   gap is) and length (the --duration, plus at most the stop's fade: 0.2 s); the recording
#   replaces a file that was at its path only when it is finished;
# - refusals (hosts this PortAudio lacks, JACK's options, --exclusive with another host, a
#   recording that cannot be written): one line, exit 2, nothing left behind.
# Registered in the Windows build (tests/CMakeLists.txt); scripts/test-win.sh runs it with the
# environment wine needs. Exit 77 (skipped) without jackd or ALSA's jack plugin.
set -uo pipefail
exe=$1 wine=${2:-wine}
here=$(cd "$(dirname "$0")" && pwd)
skip() {
  echo "win_play: $*: skipped"
  exit 77
}
command -v jackd >/dev/null && command -v jack_lsp >/dev/null || skip "no jackd (jackd2)"
compgen -G '/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_jack.so' >/dev/null ||
  skip "no ALSA jack plugin for amd64 (libasound2-plugins)"

dir=$(mktemp -d /tmp/farm-win-play.XXXXXX)
jackd_pid=
stop_jackd() { # SIGTERM only: a jackd killed outright leaves its shared memory behind
  if [ -n "$jackd_pid" ]; then
    kill -TERM "$jackd_pid" 2>/dev/null
    wait "$jackd_pid" 2>/dev/null
    jackd_pid=
  fi
}
trap 'stop_jackd; rm -rf "$dir"' EXIT
fail() {
  echo "win_play: FAILED: $*"
  exit 1
}
wfarm() { "$wine" "$exe" "$@"; }

# A server of our own (other jobs on the machine may run theirs), never started by a client.
export JACK_DEFAULT_SERVER=farm-winplay-$$ JACK_NO_START_SERVER=1
export ALSA_CONFIG_PATH=$dir/asound.conf
cat >"$ALSA_CONFIG_PATH" <<'CONF'
# ALSA's default PCM is the private jackd's system ports (through plug, for any format and
# rate); capture too, or wine's drivers find no input and WASAPI lists no devices at all.
pcm.!default { type plug slave.pcm "jackio" }
pcm.jackio {
  type jack
  name "farm.exe" # the program's path would be cut to 31 letters, with a warning on stderr
  playback_ports { 0 system:playback_1 1 system:playback_2 }
  capture_ports { 0 system:capture_1 1 system:capture_2 }
}
CONF
jackd -n "$JACK_DEFAULT_SERVER" -r --port-max 64 -d dummy -r 48000 -p 256 >"$dir/jackd.log" 2>&1 &
jackd_pid=$!
ready=0
for _ in $(seq 300); do # 30 s at most: a loaded machine starts jackd slowly
  jack_lsp >/dev/null 2>&1 && ready=1 && break
  kill -0 "$jackd_pid" 2>/dev/null || fail "jackd exited: $(tail -3 "$dir/jackd.log")"
  sleep 0.1
done
[ $ready = 1 ] || fail "jackd -d dummy not ready within 30 s"
echo "jackd $JACK_DEFAULT_SERVER (dummy driver, 48000 Hz, 256 frames) ready"

# Wine picks its audio driver by itself (PulseAudio first when one runs); these tests want ALSA.
"$wine" reg add 'HKCU\Software\Wine\Drivers' /v Audio /t REG_SZ /d alsa /f >/dev/null 2>&1 ||
  fail "cannot select wine's ALSA driver"

# JSON from farm.exe, checked by a Python expression over `d`, the document.
json_check() {
  local what=$1 expr=$2
  shift 2
  wfarm "$@" --json >"$dir/$what.json" 2>"$dir/$what.err" || fail "$what: exit $?: $(cat "$dir/$what.err")"
  python3 - "$dir/$what.json" "$expr" <<'PY' || fail "$what: $(cat "$dir/$what.json")"
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}
hosts='{h["short_name"]: h for h in d["hosts"]}'
json_check devices "all($hosts.get(n, {}).get('default_output', -1) >= 0 for n in ('wasapi', 'mme'))" \
  devices
echo "devices: wasapi and mme, each with a default output"
json_check probe "all($hosts[n]['output']['ok'] for n in ('wasapi', 'mme'))" probe --sr 48000
python3 - "$dir/probe.json" <<'PY' || fail "probe: exclusive mode: $(cat "$dir/probe.json")"
import json, sys
h = {h["short_name"]: h for h in json.load(open(sys.argv[1]))["hosts"]}
x = h["wasapi"]["exclusive"]
assert "exclusive" not in h["mme"], "exclusive mode is WASAPI's only"
assert x["ok"] or "shared mode" in x["error"], "a refusal must say what to do"
print("probe: wasapi and mme outputs open; wasapi exclusive:",
      "granted" if x["ok"] else "refused: " + x["error"])
PY

# The voices: one sine per channel, their frequencies fixed by the seed; the reference render.
voices=(--sr 48000 --workers 2 --total-voices 2 --channels 2 --oscillator sine --seed 11
  --freq-min 200 --freq-max 2000 --amp 0.5)
wfarm render -q -o "Z:$dir/ref.wav" --duration 1 "${voices[@]}" 2>"$dir/ref.err" ||
  fail "render: $(cat "$dir/ref.err")"

# play NAME SECONDS ARGS...: plays, records, checks the recording against the render.
play() {
  local name=$1 seconds=$2 rc line
  shift 2
  wfarm --duration "$seconds" --ring-blocks 8 "${voices[@]}" --record "Z:$dir/$name.wav" "$@" \
    >"$dir/$name.out" 2>"$dir/$name.err"
  rc=$?
  [ $rc -eq 0 ] || fail "$name: exit $rc: $(cat "$dir/$name.err")"
  tr -d '\r' <"$dir/$name.out" >"$dir/$name.txt" # Windows' C library ends lines with CR LF
  grep -q "^farm: played" "$dir/$name.txt" || fail "$name: no summary: $(cat "$dir/$name.txt")"
  # Late blocks (a worker the machine stalled for longer than its ring): counted per worker
  # ("  worker K  ...  late N  ...") and for the stream ("late blocks N"), the two adding up;
  # the recording's channel K may be spoiled only as far as worker K's count says (wavtone.py).
  local late=() k n sum=0 stream
  for k in 0 1; do
    n=$(sed -n "s/^  worker $k  .*  late \([0-9]*\)  .*/\1/p" "$dir/$name.txt")
    [ -n "$n" ] || fail "$name: no report line for worker $k: $(cat "$dir/$name.txt")"
    late+=("$n")
    sum=$((sum + n))
  done
  stream=$(sed -n 's/.*, late blocks \([0-9]*\),.*/\1/p' "$dir/$name.txt")
  [ "$stream" = "$sum" ] ||
    fail "$name: stream late blocks $stream, workers' ${late[*]}: $(cat "$dir/$name.txt")"
  line=$(python3 "$here/wavtone.py" "$dir/ref.wav" "$dir/$name.wav" 2 "$seconds" \
    "$(awk -v s="$seconds" 'BEGIN { print s + 0.2 }')" "${late[0]},${late[1]}" 2>&1) ||
    fail "$name: $line"
  echo "$name: $(sed -n 's/^farm: played \([0-9.]* s\) on \(.*\), 48000 Hz.*/\1 on \2/p' \
    "$dir/$name.txt"), late blocks $stream (workers ${late[0]}, ${late[1]}); recorded $line"
}
head -c 1000 /dev/urandom >"$dir/wasapi.wav" # replaced, once the recording is finished
play wasapi 2 --host wasapi
play mme 2 --host mme
wfarm --duration 1 "${voices[@]}" --exclusive >"$dir/excl.out" 2>"$dir/excl.err"
rc=$?
if [ $rc -eq 0 ]; then
  grep -q "exclusive)" "$dir/excl.out" || fail "exclusive: not said: $(cat "$dir/excl.out")"
  play exclusive 1 --exclusive
else
  [ $rc -eq 2 ] && [ "$(wc -l <"$dir/excl.err")" -eq 1 ] && grep -q "shared mode" "$dir/excl.err" ||
    fail "exclusive: exit $rc: $(cat "$dir/excl.err")"
  echo "exclusive: refused: $(cat "$dir/excl.err")"
fi

# Refusals: one line, exit 2, no recording left.
bad() {
  local mentions=$1 rc lines
  shift
  wfarm --duration 1 --workers 1 --voices 4 --record "Z:$dir/bad.wav" "$@" >/dev/null \
    2>"$dir/bad.err"
  rc=$?
  lines=$(wc -l <"$dir/bad.err")
  if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$mentions" "$dir/bad.err"; then
    fail "$*: exit $rc, $lines lines, '$mentions' expected: $(cat "$dir/bad.err")"
  fi
  if compgen -G "$dir/bad.wav*" >/dev/null; then fail "$*: left $(ls "$dir"/bad.wav*)"; fi
  echo "$*: exit 2, $(cat "$dir/bad.err")"
}
for host in ds wdmks asio alsa; do
  bad "which has mme, wasapi" --host $host
done
bad "--host 'nosuch' is not one of" --host nosuch
bad "--host jack: JACK is not in this build" --host jack
bad "--jack-name: JACK is not in this build" --jack-name farm
bad "--connect: JACK is not in this build" --connect system
bad "--node (NetJACK2): JACK is not in this build" --node n1=tcp://127.0.0.1:5555
bad "--host mme has none" --host mme --exclusive
bad "--exclusive does not apply" --null-sink --exclusive
bad "cannot write" --record "Z:$dir/missing/r.wav"
leftover=$(find "$dir" -name '*.farm-*')
[ -z "$leftover" ] || fail "temporaries left: $leftover"
echo "win_play: passed"
