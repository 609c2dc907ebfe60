#!/usr/bin/env bash
# win_control.sh FARM_EXE FARMCTL_EXE [WINE] — farm.exe's control end to end under wine: a farm
# playing into its null sink on its default sockets (named pipes), found by farmctl.exe through
# its discovery file in %LOCALAPPDATA%\farm; status, set then get, watch --once (telemetry over
# its pipe); OSC over UDP from this machine's python3; a second farm makes farmctl ask for --url;
# quit removes the discovery file; a farm ended by TerminateProcess leaves a stale one that
# farmctl skips and the next farm removes; an exposed --osc is refused (one line, exit 2).
# Exit 77 (skipped) where farm.exe cannot play ("not yet on Windows": a build without audio/).
# Registered in the Windows build (tests/CMakeLists.txt).
set -uo pipefail
farm=$1 ctlexe=$2 wine=${3:-wine}
dir=$(mktemp -d /tmp/farm-win-control.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "win_control: FAILED: $*"
  for f in "$dir"/farm*.out; do [ -f "$f" ] && sed "s/^/  $(basename "$f"): /" "$f"; done
  exit 1
}
# A generous reply timeout: wine starts slowly on a busy machine.
ctl() { "$wine" "$ctlexe" --timeout 10 "$@" 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }

# wine's own services start with the first program: started here with no pipe to inherit, or
# they would hold the output of the first $(...) below open (scripts/test-win.sh does the same).
"$wine" cmd /c exit </dev/null >/dev/null 2>&1
out=$("$wine" "$farm" play --null-sink --workers 1 --voices 2 --duration 0.1 2>&1 | tr -d '\r')
case $out in *"not yet on Windows"*)
  echo "win_control: farm.exe cannot play yet ($out): skipped"
  exit 77 ;;
esac

# Where the discovery files are, as a path on this machine.
local_app=$("$wine" cmd /c 'echo %LOCALAPPDATA%' 2>/dev/null | tr -d '\r')
runtime=$(winepath -u "$local_app\\farm" 2>/dev/null)
[ -n "$runtime" ] || fail "cannot find %LOCALAPPDATA% in the wine prefix"

# start_farm N ARGS...: farm.exe play (2 workers x 8 voices) in the background, its stderr in farmN.out; waits for the
# line naming its sockets and sets url (and osc when --osc was given).
start_farm() {
  local n=$1
  shift
  "$wine" "$farm" play --null-sink --workers 2 --voices 8 --duration 300 "$@" \
    >"$dir/farm$n.out" 2>&1 &
  pids+=($!)
  url=
  for _ in $(seq 300); do
    url=$(tr -d '\r' <"$dir/farm$n.out" | sed -n 's/^farm: control \([^ ]*\) .*/\1/p')
    [ -n "$url" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || fail "farm $n exited before listening"
    sleep 0.1
  done
  [ -n "$url" ] || fail "farm $n named no control socket within 30 s"
  osc=$(tr -d '\r' <"$dir/farm$n.out" | sed -n 's/.* osc \(osc[^ ]*\).*/\1/p')
}

start_farm 1 --osc osc.udp://127.0.0.1:0
pid=$(echo "$url" | sed -n 's|^ipc://farm-\([0-9]*\)\.control$|\1|p')
[ -n "$pid" ] || fail "the default control URL is $url, not ipc://farm-PID.control"
record=$runtime/$pid.farm
# (Written in text mode on Windows: CRLF line ends.)
tr -d '\r' <"$record" 2>/dev/null | grep -qx "control $url" || fail "$record does not name $url"
echo "farm $pid on $url, discovery file $record"

out=$(ctl status) || fail "status: exit $?: $out"
case $out in *'"ok":true'*'"voices":16'*) ;; *) fail "status: $out" ;; esac
out=$(ctl set 0-3 freq 440 ramp 0) || fail "set: exit $?: $out"
out=$(ctl get 0-3 freq) || fail "get: exit $?: $out"
case $out in *'"values":[440,440,440,440]'*) ;; *) fail "get after set: $out" ;; esac
out=$(ctl watch --once) || fail "watch --once: exit $?: $out"
rows=$(printf '%s\n' "$out" | grep -cE '^ +[01] +[0-9]+ .*running')
[ "$rows" -eq 2 ] || fail "watch --once: $rows running workers in: $out"
echo "farmctl.exe without --url: status, set, get, watch"

port=${osc##*:}
reply=$(python3 - "$port" <<'EOF'
import socket, struct, sys
def s(x):
    b = x.encode() + b"\0"
    return b + b"\0" * (-len(b) % 4)
msg = s("/farm/set") + s(",ssf") + s("4-5") + s("freq") + struct.pack(">f", 220.0)
k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
k.settimeout(5)
k.sendto(msg, ("127.0.0.1", int(sys.argv[1])))
data = k.recv(65536)
print(data[16:].rstrip(b"\0").decode())
EOF
) || fail "no OSC reply from $osc"
case $reply in *'"ok":true'*) ;; *) fail "OSC set: $reply" ;; esac
out=$(ctl get 4-5 freq)
case $out in *'"values":[220,220]'*) ;; *) fail "get after OSC set: $out" ;; esac
echo "OSC over UDP at $osc: $reply"

start_farm 2
out=$(ctl status)
rc=$?
[ $rc -eq 2 ] || fail "two farms: exit $rc: $out"
case $out in *"several farms are running"*) ;; *) fail "two farms: $out" ;; esac
out=$(ctl --url "$url" status) || fail "--url with two farms: $out"
echo "two farms: farmctl asks for --url"

# The second one ended by TerminateProcess: its record stays, and is skipped.
pid2=$(echo "$url" | sed -n 's|^ipc://farm-\([0-9]*\)\.control$|\1|p')
"$wine" taskkill /f /pid "$pid2" >/dev/null 2>&1
for _ in $(seq 100); do
  out=$(ctl status) && break
  sleep 0.1
done
[ -f "$runtime/$pid2.farm" ] || fail "a terminated farm left no record (it could not remove it)"
case $out in *'"voices":16'*) ;; *) fail "with a stale record: $out" ;; esac
echo "terminated farm: its stale record skipped"

ctl --url "ipc://farm-$pid.control" quit >/dev/null || fail "quit"
wait "${pids[0]}"
rc=$?
[ $rc -eq 0 ] || fail "farm 1 ended with status $rc after quit"
[ ! -e "$record" ] || fail "$record left after quit"
out=$(ctl status)
rc=$?
[ $rc -eq 3 ] || fail "no farm: exit $rc: $out"
case $out in *"only 1 left by farms that died"*) ;; *) fail "no farm: $out" ;; esac
echo "quit: discovery file gone; farmctl: $out"

start_farm 3
[ ! -e "$runtime/$pid2.farm" ] || fail "the next farm kept the stale record"
ctl quit >/dev/null || fail "quit farm 3"
wait
echo "the next farm removed the stale record"

# (--rt-priority 0 --no-mlock: no warning that wine has no MMCSS before the refusal.)
"$wine" "$farm" play --null-sink --duration 1 --rt-priority 0 --no-mlock \
  --osc osc.udp://0.0.0.0:0 >/dev/null 2>"$dir/err"
rc=$?
tr -d '\r' <"$dir/err" >"$dir/err1"
lines=$(wc -l <"$dir/err1")
if [ $rc -ne 2 ] || [ "$lines" -ne 1 ]; then
  fail "exposed --osc: exit $rc, $lines lines: $(cat "$dir/err1")"
fi
echo "bad input: exit 2, $(cat "$dir/err1")"
echo "win_control: passed"
