# shellcheck shell=bash
# bench/lib.sh — the set-up the bench scripts share, sourced by them:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; bench_init NAME
# One place for where farm is, the temporary directory and what is stopped on exit, the
# machine's description and the median, so that every script reads and cleans up alike.

# bench_init NAME: NAME prefixes the messages; sets repo_root and farm_dir ($FARM_BIN, else
# build/ under the repository root: the scripts run from any directory).
bench_init() {
    bench_name=$1
    repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    farm_dir=${FARM_BIN:-$repo_root/build}
    bench_pids=()
    tmp=""
}

die() { # MESSAGE: bad input or a missing program; exit 2
    echo "$bench_name: $*" >&2
    exit 2
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 > 0)); }
# bench_uints NAME...: each variable NAME holds a positive integer, or die naming --NAME
bench_uints() {
    local v
    for v in "$@"; do
        is_uint "${!v}" || die "--$v wants a positive integer, not '${!v}'"
    done
}
# bench_outdir ARG: the one OUTDIR a script takes, into outdir; a second one dies
bench_outdir() {
    [[ -z $outdir ]] || die "only one OUTDIR may be given (got '$outdir' and '$1')"
    outdir=$1
}
is_pos() { [[ $1 =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][0-9]+)?$ ]] && awk -v x="$1" 'BEGIN { exit !(x > 0) }'; }

# ---- the temporary directory, and the processes to stop on exit ----

# bench_tmpdir [PREFIX]: sets tmp to a new directory under $TMPDIR (or /tmp), removed on exit
# with every process handed to bench_track still running stopped first. A script's own
# bench_on_exit, when it defines one, runs before both (to stop a server gently, say).
# INT and TERM exit through the same trap: without them some bash versions skip EXIT.
bench_tmpdir() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/${1:-$bench_name}.XXXXXX")
    trap bench_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_exit() {
    local rc=$? p
    if declare -F bench_on_exit >/dev/null; then bench_on_exit || true; fi
    for p in "${bench_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [[ -z $tmp ]] || rm -rf "$tmp"
    return "$rc"
}

bench_track() { bench_pids+=("$@"); } # PID...: stopped (SIGTERM) on exit

# ---- the machine ----

cpu_model() { awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true; }
physical_cores() {
    local n
    n=$(lscpu -p=SOCKET,CORE 2>/dev/null | grep -v '^#' | sort -u | wc -l || true)
    ((n > 0)) || n=$(nproc)
    ((n <= $(nproc))) || n=$(nproc)
    echo "$n"
}
load1() { cut -d' ' -f1 /proc/loadavg; }

# ---- medians ----

# median: of the numbers on stdin, one a line (the mean of the middle two for an even count)
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The same as an awk function, for scripts that take many medians in one awk program:
# awk "$median_awk"' ... median(" 1 3 2") ...'. Insertion sort: stable, and the lists are short.
# shellcheck disable=SC2034 # used by the scripts that source this file
median_awk='
function median(list,   a, k, i, j, t) {
    k = split(list, a, " ")
    for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}'
