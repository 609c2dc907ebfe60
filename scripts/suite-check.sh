# suite-check.sh — sourced by test.sh: the suite checks that it leaves nothing behind.
#
# suite_begin gives the run a private temporary directory (TMPDIR, and XDG_RUNTIME_DIR inside it,
# where farm puts its sockets), notes what /dev/shm holds, and names the run (suite_id): test.sh
# starts every test command with FARMTEST_SUITE=$suite_id in its environment, which every farm,
# worker and JACK server the tests start inherits. suite_end, at exit, fails the run when a
# process of it still runs, or when /dev/shm or the temporary directory holds anything it left,
# and says what; then it stops and removes what it found, so the next run starts clean.

suite_begin() {
  suite_state=$(mktemp -d "${TMPDIR:-/tmp}/farm-suite-state.XXXXXX")
  suite_id="farmsuite-$$-$RANDOM$RANDOM"
  # The playing tests start private jackd servers. JACK keeps a registry of servers in shared
  # memory, and a server that was killed (not stopped) leaves its entry there: after a few such,
  # no new server starts ("Too many servers already active"). With no jackd running, nothing in
  # it is alive: clear it.
  if ! pgrep -x jackd >/dev/null 2>&1 && ! pgrep -x jackdbus >/dev/null 2>&1; then
    rm -rf /dev/shm/jack-shm-registry /dev/shm/jack_sem.* /dev/shm/jack-[0-9]* \
      /dev/shm/jack_db-* 2>/dev/null || true
  fi
  ls -A /dev/shm >"$suite_state/shm.before" 2>/dev/null || true
  suite_tmp=$(mktemp -d "${TMPDIR:-/tmp}/farm-suite.XXXXXX")
  mkdir -m 700 "$suite_tmp/run"
  export TMPDIR="$suite_tmp" XDG_RUNTIME_DIR="$suite_tmp/run"
}

# The pids of live processes (zombies aside) whose environment names this run: one grep over
# every environment, NUL-separated.
suite_processes() {
  local f pid
  grep -lsxzF "FARMTEST_SUITE=$suite_id" /proc/[0-9]*/environ 2>/dev/null | while read -r f; do
    pid=${f#/proc/}
    pid=${pid%/environ}
    [ "$pid" != "$$" ] || continue
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && continue
    [ -e "/proc/$pid" ] && echo "$pid"
  done
  return 0
}

suite_end() {
  local rv=$1 left=0 pids new
  trap - EXIT
  [ -n "${hog_pid:-}" ] && { kill "$hog_pid" 2>/dev/null || true; }
  printf '\n==== The suite checks itself: nothing left running, nothing left behind\n'
  # Processes: a few seconds' grace for any still on their way out (wine's, a fade-out).
  for _ in $(seq 50); do
    pids=$(suite_processes)
    [ -z "$pids" ] && break
    sleep 0.3
  done
  if [ -n "$pids" ]; then
    left=1
    echo "left running by the tests:"
    # shellcheck disable=SC2086
    ps -o pid,ppid,etime,args -p $(echo $pids | tr ' ' ',') || true
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    sleep 2
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
  fi
  # /dev/shm: what is new since the start. JACK's registry (jack-shm-registry, jack_db-UID) is
  # the machine's, made by the first server and kept by design; anything else new is a leak.
  new=$(ls -A /dev/shm 2>/dev/null | grep -vxF -f "$suite_state/shm.before" |
    grep -vx -e 'jack-shm-registry' -e 'jack_db-[0-9]*' || true)
  if [ -n "$new" ]; then
    left=1
    echo "left in /dev/shm by the tests:"
    echo "$new" | sed 's/^/  /'
    if ! pgrep -x jackd >/dev/null 2>&1; then
      echo "$new" | sed 's|^|/dev/shm/|' | xargs rm -rf
    fi
  fi
  # The temporary directory: only the (empty) runtime directories may remain.
  new=$(find "$suite_tmp" -mindepth 1 -not -type d 2>/dev/null; find "$suite_tmp" -mindepth 1 \
    -type d -not -path "$suite_tmp/run" -not -path "$suite_tmp/run/farm" 2>/dev/null)
  if [ -n "$new" ]; then
    left=1
    echo "left in the temporary directory by the tests:"
    echo "$new" | sed "s|^$suite_tmp|  \$TMPDIR|"
  fi
  rm -rf "$suite_tmp" "$suite_state"
  if [ "$left" = 0 ]; then
    echo "nothing left behind"
  elif [ "$rv" = 0 ]; then
    rv=1
  fi
  [ "$rv" = 0 ] && printf '\n==== all tests passed\n'
  exit "$rv"
}
