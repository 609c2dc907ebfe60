#!/usr/bin/env bash
# submit.sh --parts N --out OUT.wav [--dir SHARED] [--cpus-per-task C] [--resume] [--wait]
#           -- RENDER OPTIONS...
#
# Renders on a Slurm cluster what `farm render -o OUT.wav RENDER OPTIONS...` renders on one
# machine: a job array of N parts (render.sbatch, farm render --part K/N) writing into SHARED,
# then a job that mixes them into OUT.wav (mix.sbatch, farm mix), run only when every part
# succeeded (--dependency=afterok). Prints both job ids. The render options are those of farm
# render without -o, with --total-voices naming the whole; --gain, --format and --sample-type
# go to the mix, as they apply to the whole.
#
#   --parts N          how many parts (array tasks)
#   --out OUT.wav      the mix, where every node and this host see it
#   --dir SHARED       where the parts go, on a file system every node sees (default:
#                      OUT.wav.parts beside OUT.wav)
#   --cpus-per-task C  CPUs for each part (its farm's workers); default: Slurm's
#   --resume           SHARED holds parts of this render already: say how many remain, and
#                      render only those (a part whole with the same options is done)
#   --wait             return when the mix has finished: 0 with OUT.wav in place, non-zero
#                      naming the job that failed
#
# Slurm's own settings come from its environment variables (SBATCH_PARTITION, SBATCH_ACCOUNT,
# SBATCH_TIMELIMIT, ...). FARM: the farm program (default: farm on the PATH), on a path every
# node sees. A failed part is requeued (render.sbatch). Exit 2 for bad usage, 1 otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() {
  echo "submit.sh: $*; usage: submit.sh --parts N --out OUT.wav [--dir SHARED]" \
    "[--cpus-per-task C] [--resume] [--wait] -- RENDER OPTIONS..." >&2
  exit 2
}
fail() { echo "submit.sh: $*" >&2; exit 1; }

parts='' out='' dir='' cpus='' resume=0 wait=0
while [ $# -gt 0 ]; do
  case "$1" in
    --parts) [ $# -ge 2 ] || usage "--parts needs a count"; parts=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage "--out needs a file"; out=$2; shift 2 ;;
    --dir) [ $# -ge 2 ] || usage "--dir needs a directory"; dir=$2; shift 2 ;;
    --cpus-per-task) [ $# -ge 2 ] || usage "--cpus-per-task needs a count"; cpus=$2; shift 2 ;;
    --resume) resume=1; shift ;;
    --wait) wait=1; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,27s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) usage "unknown option '$1' (the render options go after --)" ;;
  esac
done
[[ "$parts" =~ ^[1-9][0-9]*$ ]] || usage "--parts: a count of parts, 1 or more"
[ -n "$out" ] || usage "--out: where the mix goes"
[ -z "$cpus" ] || [[ "$cpus" =~ ^[1-9][0-9]*$ ]] || usage "--cpus-per-task $cpus: a count"
# The render's options: the mix's own to the mix, the rest to every part.
render=() mix=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o | --output | --output=* | -o*) usage "the render options go without -o: --out names the mix" ;;
    --part | --part=* | --first-voice | --first-voice=*) usage "$1: submit.sh cuts the parts" ;;
    --gain | --format | --sample-type)
      [ $# -ge 2 ] || usage "$1 needs a value"; mix+=("$1" "$2"); shift 2 ;;
    --gain=* | --format=* | --sample-type=*) mix+=("$1"); shift ;;
    *) render+=("$1"); shift ;;
  esac
done
command -v sbatch >/dev/null || fail "sbatch is not on the PATH: run this where Slurm's commands are (a login node)"
farm=${FARM:-$(command -v farm || true)}
if [ -z "$farm" ] || [ ! -x "$farm" ]; then
  fail "farm not found: put it on the PATH or name it with FARM=..."
fi
farm=$(cd "$(dirname "$farm")" && pwd)/$(basename "$farm")
export FARM=$farm

mkdir -p "$(dirname "$out")" || fail "cannot make the directory of $out"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
[ -n "$dir" ] || dir=$out.parts
mkdir -p "$dir" || fail "cannot make $dir"
dir=$(cd "$dir" && pwd)

# Which parts to render: all of them, or with --resume those not already whole in dir.
todo=()
for ((k = 0; k < parts; k++)); do
  part=$dir/part-$k-of-$parts.wav
  if [ "$resume" = 1 ] && [ -e "$part" ]; then
    state=$("$farm" render -o "$part" --part "$k/$parts" "${render[@]}" --check) ||
      fail "farm render --check refused the render options (above)"
    [ "$state" = "done" ] && continue
  fi
  todo+=("$k")
done
if [ "$resume" = 0 ]; then
  shopt -s nullglob
  old=("$dir"/part-*-of-*.wav)
  [ ${#old[@]} -eq 0 ] || fail "$dir already holds parts (${#old[@]}): --resume to finish" \
    "that render, or remove them"
else
  echo "resume: ${#todo[@]} of $parts parts remain${todo:+ (${todo[*]})}"
fi

slurm_id() { local id; id=$(cat); echo "${id%%;*}"; } # sbatch --parsable: JOBID[;CLUSTER]
cpu_opt=()
[ -z "$cpus" ] || cpu_opt=(--cpus-per-task "$cpus")
array_job=
dep=()
if [ ${#todo[@]} -gt 0 ]; then
  list=$(IFS=,; echo "${todo[*]}")
  array_job=$(sbatch --parsable --array="$list" "${cpu_opt[@]}" \
    --output="$dir/part-%a-of-$parts.log" \
    "$here/render.sbatch" "$dir" "$parts" "${render[@]}" | slurm_id) ||
    fail "sbatch refused the parts' job array (above)"
  echo "parts: job $array_job (array $list), logs in $dir/part-K-of-$parts.log"
  dep=(--dependency="afterok:$array_job" --kill-on-invalid-dep=yes)
fi
mix_job=$(sbatch --parsable "${dep[@]}" --output="$dir/mix.log" \
  "$here/mix.sbatch" "$dir" "$parts" "$out" "${mix[@]}" | slurm_id) ||
  fail "sbatch refused the mix job (above)"
echo "mix: job $mix_job, ${array_job:+after job $array_job, }into $out (log $dir/mix.log)"
[ "$wait" = 1 ] || exit 0

# --wait: until the mix has ended. A part that failed for good makes the mix never run.
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p"; }
failed_part() { # the first task of the array that ended other than COMPLETED, named
  [ -n "$array_job" ] || return 1
  scontrol -o show job "$array_job" 2>/dev/null | while read -r line; do
    local state task
    state=$(echo " $line" | field JobState)
    task=$(echo " $line" | field ArrayTaskId)
    case "$state" in
      FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
        echo "part $task (job ${array_job}_$task) $state, exit $(echo " $line" | field ExitCode):" \
          "see $dir/part-$task-of-$parts.log"
        return 0 ;;
    esac
  done
}
while :; do
  line=$(scontrol -o show job "$mix_job" 2>/dev/null) || fail "mix job $mix_job: Slurm no longer knows it"
  state=$(echo " $line" | field JobState)
  reason=$(echo " $line" | field Reason)
  case "$state" in
    COMPLETED)
      [ -f "$out" ] || fail "mix job $mix_job completed but $out is not there: see $dir/mix.log"
      echo "done: $out"
      exit 0 ;;
    PENDING | CONFIGURING | RUNNING | COMPLETING | REQUEUED | RESIZING | SUSPENDED)
      if [ "$reason" = DependencyNeverSatisfied ]; then
        why=$(failed_part || true)
        scancel "$mix_job" 2>/dev/null || true
        fail "mix job $mix_job will not run: ${why:-a part failed}"
      fi ;;
    *)
      why=$(failed_part || true)
      [ -n "$why" ] || why="exit $(echo " $line" | field ExitCode), see $dir/mix.log"
      fail "mix job $mix_job $state: $why" ;;
  esac
  sleep 2
done
