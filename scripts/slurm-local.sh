#!/usr/bin/env bash
# slurm-local.sh start|stop|status [--dir DIR] [--nodes N] — a whole Slurm cluster on this
# machine, on 127.0.0.1, for tests and for trying examples/slurm/: munged with a key and socket
# of its own, slurmctld, and N slurmd daemons (default 2) as nodes n1..nN, each with all of
# this machine's CPUs. Debian 12's slurm-wlm (22.05) and munge, installed when missing.
#
#   start    writes the configuration, key, logs, state and pid files in DIR (default
#            $TMPDIR/farm-slurm, printed), starts the daemons and waits until every node is
#            idle; its last line is `export SLURM_CONF=DIR/slurm.conf`, so that
#              eval "$(scripts/slurm-local.sh start --dir D | tail -1)"
#            points sbatch, squeue and scontrol at it. The ports are chosen free at random, so
#            two clusters on one machine do not collide.
#   stop     cancels its jobs, stops the daemons by their pids (SIGTERM, then SIGKILL after
#            30 s), and any process of its jobs still running; removes nothing else of DIR.
#   status   which daemons run, and sinfo.
#
# Needs root (slurmd runs jobs as their users), or slurm-wlm and munge already installed and
# then runs every daemon as you (jobs run as you). Exit 2 for bad usage, 1 when it fails.
set -euo pipefail
# This script finds its cluster's processes by their environment: it must not carry the marks.
if [ -n "${SLURM_CONF:-}${FARM_SLURM_LOCAL:-}" ]; then
  exec env -u SLURM_CONF -u FARM_SLURM_LOCAL "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "slurm-local.sh: $*" >&2; exit 1; }
usage() {
  echo "slurm-local.sh: $*; usage: slurm-local.sh start|stop|status [--dir DIR] [--nodes N]" >&2
  exit 2
}

[ $# -ge 1 ] || usage "no command"
cmd=$1
shift
case "$cmd" in start | stop | status) ;; -h | --help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) usage "unknown command '$cmd'" ;; esac
dir=${TMPDIR:-/tmp}/farm-slurm
nodes=2
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || usage "--dir needs a directory"; dir=$2; shift 2 ;;
    --nodes) [ $# -ge 2 ] || usage "--nodes needs a count"; nodes=$2; shift 2 ;;
    *) usage "unknown option '$1'" ;;
  esac
done
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || usage "--nodes $nodes: a count from 1 to 99"
[ -n "$dir" ] || usage "--dir: an empty name"
mkdir -p "$dir" 2>/dev/null || die "cannot make $dir"
dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf

# The pids of the daemons this cluster started, from their pid files: "NAME PID" per line.
daemons() {
  local f
  for f in "$dir"/munged.pid "$dir"/slurmctld.pid "$dir"/slurmd-*.pid; do
    [ -f "$f" ] || continue
    local pid
    pid=$(cat "$f" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    # only a process that is still ours: its environment names this cluster
    if grep -qsxzF "FARM_SLURM_LOCAL=$dir" "/proc/$pid/environ"; then
      echo "$(basename "$f" .pid) $pid"
    fi
  done
}

# Every live process of this cluster, zombies aside: the daemons and their slurmstepd (they carry
# FARM_SLURM_LOCAL), and the jobs' processes (a SLURM_JOB_ID, and SLURM_CONF naming it).
members() {
  local f pid
  {
    grep -lsxzF "FARM_SLURM_LOCAL=$dir" /proc/[0-9]*/environ
    grep -lsxzF "SLURM_CONF=$conf" /proc/[0-9]*/environ | xargs -r grep -lszE '^SLURM_JOB_ID='
  } 2>/dev/null | sort -u | while read -r f; do
    pid=${f#/proc/}
    pid=${pid%/environ}
    if [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ]; then continue; fi
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && continue
    echo "$pid"
  done
  return 0
}

status() {
  local list
  list=$(daemons)
  if [ -z "$list" ]; then
    echo "slurm-local: not running in $dir"
    return 3
  fi
  echo "slurm-local: $dir"
  printf '  %s\n' "${list//$'\n'/$'\n'  }"
  SLURM_CONF=$conf sinfo 2>&1 | sed 's/^/  /' || true
}

stop() {
  if [ -f "$conf" ] && [ -n "$(daemons)" ]; then
    SLURM_CONF=$conf timeout 30 scancel --quiet --user "$(id -un)" 2>/dev/null || true
    for _ in $(seq 60); do # the jobs end (KillWait=5), their steps cleaned up by slurmd
      [ -z "$(SLURM_CONF=$conf timeout 20 squeue -h -t all -o %i 2>/dev/null | head -1)" ] &&
        break
      sleep 0.5
    done
  fi
  local pids
  pids=$(members)
  [ -n "$pids" ] || { echo "slurm-local: stopped ($dir)"; return 0; }
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 150); do
    pids=$(members)
    [ -z "$pids" ] && break
    sleep 0.2
  done
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(members)" ] && break
      sleep 0.2
    done
  fi
  [ -z "$(members)" ] || die "could not stop: $(members | tr '\n' ' ')"
  rm -f "$dir"/*.pid "$dir"/munge.sock*
  echo "slurm-local: stopped ($dir)"
}

# A port no one listens on, picked at random from 20000-59999 with n free after it.
free_ports() {
  local n=$1 base p ok
  for _ in $(seq 50); do
    base=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    ok=1
    for ((p = base; p <= base + n; p++)); do
      if ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null | grep -q .; then
        ok=0
        break
      fi
    done
    [ "$ok" = 1 ] && { echo "$base"; return 0; }
  done
  die "no free ports found"
}

write_conf() {
  local ctld_port=$1 node_port=$2 host cpus user last_port
  host=$(hostname -s)
  cpus=$(nproc)
  user=$(id -un)
  last_port=$((node_port + nodes - 1))
  local ports="$node_port"
  [ "$nodes" -gt 1 ] && ports="[$node_port-$last_port]"
  cat >"$conf" <<EOF
# A local cluster from scripts/slurm-local.sh: everything on 127.0.0.1, state in $dir
ClusterName=farmlocal
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock,cred_expire=10
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool-%n
SlurmctldPidFile=$dir/slurmctld.pid.slurm
SlurmdPidFile=$dir/slurmd-%n.pid.slurm
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SlurmdParameters=config_overrides
ReturnToService=2
MessageTimeout=60
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmdTimeout=600
InactiveLimit=0
KillWait=5
MinJobAge=600
NodeName=n[1-$nodes] NodeHostname=$host NodeAddr=127.0.0.1 Port=$ports CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=n[1-$nodes] Default=YES MaxTime=INFINITE State=UP
EOF
  printf '' >"$dir/cgroup.conf"
}

# Starts NAME as a daemon in the foreground, tagged, its pid in DIR/NAME.pid.
launch() {
  local name=$1
  shift
  FARM_SLURM_LOCAL=$dir SLURM_CONF=$conf setsid "$@" </dev/null >>"$dir/$name.out" 2>&1 &
  echo $! >"$dir/$name.pid"
}

ready() { # every node idle
  local states
  states=$(SLURM_CONF=$conf timeout 20 sinfo -h -N -o '%T' 2>/dev/null) || return 1
  [ "$(echo "$states" | grep -c '^idle$')" = "$nodes" ]
}

start() {
  [ -z "$(daemons)" ] || die "already running in $dir (slurm-local.sh stop --dir $dir)"
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    [ "$(id -u)" = 0 ] || command -v sudo >/dev/null ||
      die "slurm-wlm and munge are not installed, and installing them needs root"
    "$here"/install-packages.sh slurm-wlm munge >&2
  fi
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    die "slurmctld or munged not found after installing slurm-wlm and munge"
  fi
  rm -rf "$dir/ctld" "$dir"/spool-* "$dir"/*.log "$dir"/*.out "$dir"/munge.*
  mkdir -p "$dir/ctld"
  chmod 700 "$dir"
  (umask 077 && head -c 1024 /dev/urandom >"$dir/munge.key")
  chmod 400 "$dir/munge.key"
  local ctld_port node_port
  ctld_port=$(free_ports "$nodes")
  node_port=$((ctld_port + 1))
  write_conf "$ctld_port" "$node_port"

  launch munged munged -F --force --key-file="$dir/munge.key" --socket="$dir/munge.sock" \
    --pid-file="$dir/munged.pid.munge" --log-file="$dir/munged.log" \
    --seed-file="$dir/munge.seed" --num-threads=2
  for _ in $(seq 100); do
    [ -S "$dir/munge.sock" ] && break
    sleep 0.1
  done
  [ -S "$dir/munge.sock" ] || { stop >/dev/null; die "munged did not start: $(tail -1 "$dir/munged.out" 2>/dev/null)"; }
  launch slurmctld slurmctld -D -i -f "$conf"
  local i
  for ((i = 1; i <= nodes; i++)); do
    mkdir -p "$dir/spool-n$i"
    launch "slurmd-n$i" slurmd -D -N "n$i" -f "$conf"
  done
  # A busy machine is slow to start daemons: generous, bounded in time.
  local deadline=$((SECONDS + 120))
  until ready; do
    if [ "$SECONDS" -ge "$deadline" ] || [ "$(daemons | wc -l)" -lt $((nodes + 2)) ]; then
      local why
      why=$(grep -hs -i -e error -e fatal "$dir"/slurmctld.log "$dir"/slurmd-*.log \
        "$dir"/*.out | tail -1 || true)
      stop >/dev/null || true
      die "the cluster did not come up in $dir: ${why:-no node became idle within 120 s}"
    fi
    sleep 0.5
  done
  echo "slurm-local: $nodes node(s) n1..n$nodes on 127.0.0.1, slurmctld port $ctld_port," \
    "slurmd ports $node_port-$((node_port + nodes - 1)); state in $dir"
  echo "export SLURM_CONF=$conf"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
esac
