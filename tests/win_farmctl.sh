#!/usr/bin/env bash
# win_farmctl.sh LINUX_FARM WIN_FARMCTL_EXE [WINE] — farmctl.exe under wine against a farm: the
# Linux build's farm playing into its null sink (farm.exe plays nothing yet), its control and
# telemetry on tcp://127.0.0.1 ports the kernel chooses. status, set then get (the value
# landed), $FARM_CONTROL, watch --once (a frame with both workers), bad input (one line, exit
# 2). Registered in the Windows build; exit 77 (skipped) without a Linux build.
set -uo pipefail
linux=$1 exe=$2 wine=${3:-wine}
if [ ! -x "$linux" ]; then
  echo "win_farmctl: no Linux farm at $linux (scripts/setup.sh build Release): skipped"
  exit 77
fi
dir=$(mktemp -d /tmp/farm-win-ctl.XXXXXX)
farm_pid=
stop_farm() {
  if [ -n "$farm_pid" ]; then
    kill -TERM "$farm_pid" 2>/dev/null
    wait "$farm_pid"
    farm_status=$?
    farm_pid=
  fi
}
trap 'stop_farm; rm -rf "$dir"' EXIT
fail() {
  echo "win_farmctl: FAILED: $*"
  [ -f "$dir/farm.out" ] && sed 's/^/  farm: /' "$dir/farm.out"
  exit 1
}
ctl() { "$wine" "$exe" "$@"; }

"$linux" play --null-sink --workers 2 --voices 8 --duration 300 \
  --control tcp://127.0.0.1:0 --telemetry tcp://127.0.0.1:0 >"$dir/farm.out" 2>&1 &
farm_pid=$!
# The farm names its sockets once they are bound: wait for that line (or its exit), 30 s at most.
url=
for _ in $(seq 300); do
  url=$(sed -n 's/^farm: control \(tcp:[^ ]*\) .*/\1/p' "$dir/farm.out")
  [ -n "$url" ] && break
  kill -0 "$farm_pid" 2>/dev/null || fail "the Linux farm exited before listening"
  sleep 0.1
done
[ -n "$url" ] || fail "the Linux farm named no control socket within 30 s"
echo "farm listening at $url"

out=$(ctl --url "$url" status) || fail "status: exit $?: $out"
case $out in *'"ok":true'*'"voices":16'*) ;; *) fail "status: $out" ;; esac
echo "status: ok, 16 voices"

out=$(ctl --url "$url" set 0-3 freq 440 ramp 0) || fail "set: exit $?: $out"
case $out in *'"ok":true'*) ;; *) fail "set: $out" ;; esac
out=$(FARM_CONTROL=$url ctl get 0-3 freq) || fail "get: exit $?: $out"
case $out in *'"values":[440,440,440,440]'*) ;; *) fail "get after set: $out" ;; esac
echo "set and get (through \$FARM_CONTROL): $out"

out=$(ctl --url "$url" watch --once) || fail "watch --once: exit $?: $out"
rows=$(printf '%s\n' "$out" | grep -cE '^ +[01] +[0-9]+ .*running')
[ "$rows" -eq 2 ] || fail "watch --once: $rows running workers in: $out"
echo "watch --once: a frame with both workers running"

ctl --url "$url" --timeout -1 status >/dev/null 2>"$dir/err"
rc=$?
lines=$(wc -l <"$dir/err")
if [ $rc -ne 2 ] || [ "$lines" -ne 1 ]; then
  fail "--timeout -1: exit $rc, $lines lines: $(cat "$dir/err")"
fi
echo "bad input: exit 2, $(cat "$dir/err")"

stop_farm
[ "$farm_status" -eq 143 ] || fail "the Linux farm ended with status $farm_status, not 143"
echo "win_farmctl: passed"
