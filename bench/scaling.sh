#!/usr/bin/env bash
# scaling.sh — the CPU scaling study (issue 11): how farm's throughput grows with workers and
# cores, beside pyo's multi-process recipe, supernova and scsynth on the same workload and cores,
# how much of it survives in real time, and how the cost grows with the work. One command,
# CSVs and PNG plots in one directory; `--help` says what is measured and how.
# shellcheck disable=SC2016,SC2015,SC2013,SC2012,SC1091,SC2154 # awk in single quotes; A && B || C
# knowingly; the settings come from report.py options (eval)
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init scaling
self=$repo_root/bench/scaling.sh
# the summaries, the report and the plots' data (bench/report.py, standard library only)
report_py() { python3 "$repo_root/bench/report.py" "$@"; }
SR=48000

# The CSV headers (H_OFFLINE_RUNS, H_RT, ...): report.py holds them, one place for the runs, the
# summaries and the self-test.
eval "$(report_py headers)"

log() { # to the terminal and the log
    echo "$*" >&2
    [[ -z ${logfile:-} ]] || echo "$*" >>"$logfile"
}

# timed CMD... : runs it with its output in $tmp/cmd.out and .err; sets T_WALL T_USER T_SYS (s)
# from bash's `time`, which reads getrusage(RUSAGE_CHILDREN): the command and every descendant
# it reaped (farm reaps its workers), to the millisecond.
timed() {
    local TIMEFORMAT='%3R %3U %3S' rc=0
    { time "$@" >"$tmp/cmd.out" 2>"$tmp/cmd.err"; } 2>"$tmp/cmd.time" || rc=$?
    read -r T_WALL T_USER T_SYS <"$tmp/cmd.time" || true
    return "$rc"
}

fail_cmd() { # WHAT: a measurement failed: say what it printed, stop
    echo "scaling: $1 failed:" >&2
    tail -n 20 "$tmp/cmd.err" >&2 || true
    [[ -z ${logfile:-} ]] || { echo "scaling: $1 failed" && tail -n 20 "$tmp/cmd.err"; } >>"$logfile"
    exit 1
}

# A sound file of at least SECONDS of stereo float frames: a peer that ran but wrote nothing
# (supernova can abort and exit 0) must not pass as a fast one.
check_wav() { # FILE SECONDS WHAT
    local size want
    size=$(stat -c %s "$1" 2>/dev/null || echo 0)
    # The peers render whole 256-frame blocks, and may stop at the last whole one.
    want=$(awk -v s="$2" -v sr="$SR" 'BEGIN { printf "%d", int(s * sr / 256) * 256 * 8 }')
    ((size >= want)) || {
        echo "scaling: $3 wrote $size bytes to $1, expected at least $want (see the log)" >&2
        [[ -z ${logfile:-} ]] || { echo "scaling: $3 wrote $size bytes" && tail -n 20 "$tmp/cmd.err"; } >>"$logfile"
        exit 1
    }
}

# ---- the engines: each one render of a workload, timed ----

farm_render() { # WORKERS VOICE-ARGS DURATION [extra farm args]
    local w=$1 vargs=$2 dur=$3
    shift 3
    # shellcheck disable=SC2086 # vargs is two words on purpose
    timed "$farm" render -o "$tmp/farm.wav" --workers "$w" $vargs --duration "$dur" --seed 1 "$@" ||
        fail_cmd "farm render --workers $w $vargs --duration $dur $*"
    local re='wall [0-9.]+ s, .* ([0-9]+) voices on ([0-9]+) workers, kernel ([A-Za-z0-9_]+)'
    [[ $(<"$tmp/cmd.out") =~ $re ]] || fail_cmd "parsing farm's summary"
    ((BASH_REMATCH[2] == w)) || fail_cmd "farm ran ${BASH_REMATCH[2]} workers, not $w"
    FARM_KERNEL=${BASH_REMATCH[3]}
}

# pyo's recipe: N processes at once, each its own offline server with its share of the voices.
pyo_group() { # N VOICES DURATION
    local n=$1 voices=$2 dur=$3 i share bad=0
    local -a pids=()
    for ((i = 0; i < n; i++)); do
        share=$((voices / n + (i < voices % n ? 1 : 0)))
        "$pyo_python" "$repo_root/bench/scaling_pyo_part.py" "$share" "$dur" "$tmp/pyo$i.wav" "$i" >"$tmp/pyo$i.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || { bad=1 && cat "$tmp/pyo$i.log" >&2; }
    done
    return "$bad"
}

sc_score() { # VOICES DURATION GROUP -> the score's path (made once per run)
    local dir=$tmp/sc-$1-$2-$3
    if [[ ! -f $dir/score.osc ]]; then
        mkdir -p "$dir"
        "$sc_python" "$repo_root/bench/sc_nrt_score.py" "$1" "$2" "$dir/score.osc" --group "$3" \
            --voices-per-synth "$sc_per_synth" ||
            die "cannot write the SuperCollider score (bench/sc_nrt_score.py)"
    fi
    echo "$dir/score.osc"
}

sc_render() { # PROGRAM THREADS VOICES DURATION
    local prog=$1 threads=$2 voices=$3 dur=$4 group=p_new score nodes=1024 mem targs=()
    [[ $prog == supernova ]] && targs=(-T "$threads") || group=g_new
    score=$(sc_score "$voices" "$dur" "$group")
    while ((nodes < voices + 1024)); do nodes=$((nodes * 2)); done
    mem=$((voices * 64 > 65536 ? voices * 64 : 65536)) # kB; supernova aborts when it runs short
    rm -f "$tmp/sc.wav"
    SC_SYNTHDEF_PATH=$(dirname "$score") timed "$prog" -N "$score" _ "$tmp/sc.wav" "$SR" WAV float \
        -o 2 -i 0 -z 256 -n "$nodes" -m "$mem" -R 0 -V -1 "${targs[@]}" ||
        fail_cmd "$prog -N ($voices voices, ${threads} threads)"
    check_wav "$tmp/sc.wav" "$dur" "$prog"
}

# ---- finding the peers and gnuplot ----

may_install() {
    ((no_install == 0)) && command -v apt-get >/dev/null && { [[ $(id -u) -eq 0 ]] || command -v sudo >/dev/null; }
}

install_missing() { # PACKAGE...: only those the package lists know; never fatal
    local p want=()
    for p in "$@"; do
        apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]' && want+=("$p")
    done
    ((${#want[@]})) || return 0
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    log "installing ${want[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 600 $sudo apt-get install -y -qq --no-install-recommends \
        "${want[@]}" >"$tmp/apt.log" 2>&1 || log "could not install ${want[*]} (see apt's words below)"$'\n'"$(tail -n 3 "$tmp/apt.log")"
}

find_tools() { # sets have_pyo have_supernova have_scsynth
    local need=()
    have_pyo=0 have_supernova=0 have_scsynth=0
    if ((peers)); then
        "$pyo_python" -c 'import pyo' >/dev/null 2>&1 || need+=(python3-pyo)
        command -v supernova >/dev/null || need+=(supercollider-supernova)
        command -v scsynth >/dev/null || need+=(supercollider-server)
    fi
    command -v gnuplot >/dev/null || need+=(gnuplot-nox)
    ! want realtime || command -v cyclictest >/dev/null || need+=(rt-tests)
    ((${#need[@]} == 0)) || ! may_install || install_missing "${need[@]}"
    if ((peers)); then
        "$pyo_python" -c 'import pyo' >/dev/null 2>&1 && have_pyo=1 ||
            log "skip pyo: $pyo_python cannot import pyo (Debian: python3-pyo)"
        command -v "$sc_python" >/dev/null || log "skip supernova and scsynth: no $sc_python for the score"
        if command -v "$sc_python" >/dev/null; then
            command -v supernova >/dev/null && have_supernova=1 ||
                log "skip supernova: not installed (Debian: supercollider-supernova)"
            command -v scsynth >/dev/null && have_scsynth=1 ||
                log "skip scsynth: not installed (Debian: supercollider-server)"
        fi
    fi
}

# ---- offline: strong and weak scaling, and the peers, interleaved ----

run_offline_case() { # REP STUDY ENGINE WORKERS -> one line of offline_runs.csv
    local rep=$1 study=$2 engine=$3 w=$4 voices dur
    case $study in
    strong) voices=$strong_voices dur=$duration ;;
    weak) voices=$((weak_voices * w)) dur=$duration ;;
    peer) voices=$peer_voices dur=$peer_duration ;;
    esac
    case $engine in
    farm)
        if [[ $study == weak ]]; then
            farm_render "$w" "--voices $weak_voices" "$dur"
        else
            farm_render "$w" "--total-voices $voices" "$dur"
        fi
        ;;
    pyo)
        timed pyo_group "$w" "$voices" "$dur" || fail_cmd "pyo's recipe with $w processes"
        check_wav "$tmp/pyo0.wav" "$dur" "pyo"
        ;;
    supernova | scsynth) sc_render "$engine" "$w" "$voices" "$dur" ;;
    esac
    local vs
    vs=$(awk -v v="$voices" -v d="$dur" -v sr="$SR" 'BEGIN { printf "%.0f", v * d * sr }')
    echo "$rep,$study,$engine,$w,$voices,$dur,$T_WALL,$T_USER,$T_SYS,$vs" >>"$outdir/offline_runs.csv"
    # bash's printf reads awk's figures (as long doubles): the log's rounding stays as it was
    log "$(printf 'rep %d/%d  %-6s %-9s workers %3d  %7d voices  wall %8.3f s  cpu %8.3f s  %7.3f G/s  %7.3f G/cpu-s' \
        "$rep" "$reps" "$study" "$engine" "$w" "$voices" "$T_WALL" "$(awk -v u="$T_USER" -v s="$T_SYS" 'BEGIN { print u + s }')" \
        "$(awk -v x="$vs" -v t="$T_WALL" 'BEGIN { print (t > 0 ? x / t / 1e9 : 0) }')" \
        "$(awk -v x="$vs" -v u="$T_USER" -v s="$T_SYS" 'BEGIN { print (u + s > 0 ? x / (u + s) / 1e9 : 0) }')")"
}

summarize_offline() { report_py offline "$outdir"; } # offline_runs.csv -> offline.csv and compare.csv

phase_offline() {
    log "== offline: workers ${workers[*]}; strong $strong_voices voices, weak $weak_voices per worker," \
        "$duration s; peers $peer_voices voices, $peer_duration s; $reps reps; load $(load1)"
    echo "sc_voices_per_synth=$sc_per_synth" >>"$outdir/machine.txt"
    echo "$H_OFFLINE_RUNS" >"$outdir/offline_runs.csv"
    local -a cases
    local list
    list=$(report_py offline-cases "$peers" "$have_pyo" "$have_supernova" "$have_scsynth" "${workers[@]}")
    mapfile -t cases <<<"$list"
    local n=${#cases[@]} r i
    for ((r = 0; r < reps; r++)); do
        for ((i = 0; i < n; i++)); do
            # shellcheck disable=SC2086 # a case is three words
            run_offline_case $((r + 1)) ${cases[$(((i + r) % n))]}
        done
    done
    summarize_offline
}

# ---- real time: the largest voice count with no late block ----

start_jackd() { # PERIOD [TRIES]: 0 when one runs; 1 when none would start (said in the log)
    local tries=${2:-1} i k
    for ((k = 0; k < tries; k++)); do
        stop_jackd
        export JACK_DEFAULT_SERVER="farm-scaling-$$-$1" JACK_NO_START_SERVER=1
        jackd -n "$JACK_DEFAULT_SERVER" -R -P 70 --port-max 64 -d dummy -r "$SR" -p "$1" \
            >"$tmp/jackd.log" 2>&1 &
        jackd_pid=$!
        for ((i = 0; i < 250; i++)); do
            jack_lsp >/dev/null 2>&1 && return 0
            kill -0 "$jackd_pid" 2>/dev/null || break # it gave up (a full JACK registry, say)
            sleep 0.02
        done
        stop_jackd
        # JACK allows a handful of servers per machine, and other users' come and go.
        ((k + 1 == tries)) || sleep 5
    done
    log "jackd did not start after $tries tries: $(grep -v -i -E 'copyright|warranty|free software|conditions|^jackdmp' "$tmp/jackd.log" | head -n 2 | tr '\n' ' ')"
    return 1
}

stop_jackd() { # SIGTERM, never SIGKILL: a killed jackd leaves JACK's shared registry full
    if [[ -n ${jackd_pid:-} ]]; then
        kill "$jackd_pid" 2>/dev/null || true
        wait "$jackd_pid" 2>/dev/null || true
        jackd_pid=""
    fi
}

rt_probe() { # FRAMES WORKERS VOICES SECONDS [RING] -> a row of realtime_runs.csv; sets P_ROW P_LOG P_RING
    local frames=$1 w=$2 v=$3 secs=$4 ring=${5:-default} sink=() depth=() out
    # JACK named, not found: with ALSA's JACK plugin installed (libasound2-plugins), PortAudio's
    # default output can be ALSA's "jack" PCM, a second buffer between farm and jackd.
    if [[ $rt_backend == null ]]; then sink=(--null-sink); else sink=(--host jack); fi
    [[ $ring == default ]] || depth=(--ring-blocks "$ring")
    timed "$farm" "${sink[@]}" --buffersize "$frames" --duration "$secs" --rt-priority 70 \
        --workers "$w" --total-voices "$v" "${depth[@]}" || fail_cmd "farm playing $v voices on $w workers at $frames frames"
    # report.py reads farm's summary (late blocks, underflows, callback times, ring, peak render)
    out=$(report_py probe "$rt_backend" "$frames" "$w" "$v" "$secs" "$tmp/cmd.out") ||
        fail_cmd "parsing farm's summary (late blocks, callback, ring)"
    P_ROW=${out%%$'\n'*} P_LOG=${out#*$'\n'}
    IFS=, read -r _ _ _ _ _ _ _ _ _ _ P_RING _ <<<"$P_ROW"
    echo "$P_ROW" >>"$outdir/realtime_runs.csv"
}

# The bisection's bracket: report.py's figure from offline.csv, else a guess.
offline_vps() { # WORKERS -> voice-samples per second
    local v
    v=$(report_py rt-offline "$outdir" "$1" "$usable")
    if [[ -z $v ]]; then
        v=$((($1 < usable ? $1 : usable) * 2500000000)) # about one AVX2 core of this kernel: only a starting bracket
        log "no offline figure for $1 workers: the bisection starts from a guess of $v voice-samples/s"
    fi
    echo "$v"
}

# One count, probed until report.py's majority rule (rt-majority) decides it.
rt_decide() { # FRAMES WORKERS VOICES RING -> sets D_LATE (0 or 1), D_CB (a clean probe's callback)
    local rows=() v
    while :; do
        v=$(report_py rt-majority "$rt_confirm" "${rows[@]}")
        [[ $v == probe ]] || break
        rt_probe "$1" "$2" "$3" "$rt_seconds" "$4"
        log "$P_LOG"
        rows+=("$P_ROW")
    done
    D_LATE=${v%% *} D_CB=${v#* }
}

# The bisection's arithmetic is report.py's (rt-next): it names the next count, or the row.
rt_search() { # FRAMES WORKERS RING -> one row of realtime.csv
    local frames=$1 w=$2 ring=$3 off next decided=() played=""
    off=$(offline_vps "$w")
    while :; do
        next=$(report_py rt-next "$rt_backend" "$frames" "$w" "$rt_seconds" "$rt_steps" "$rt_confirm" \
            "$off" "$played" "${decided[@]}")
        [[ $next == probe\ * ]] || break
        rt_decide "$frames" "$w" "${next#probe }" "$ring"
        played=$P_RING
        decided+=("${next#probe }:$D_LATE:$D_CB")
    done
    echo "$next" >>"$outdir/realtime.csv"
}

# The machine's own scheduling stalls, before any farm runs: cyclictest's SCHED_FIFO thread on
# every CPU wakes every millisecond for --rt-seconds and counts how late. A wake-up later than a
# block period (1333 us at 64 frames) or than a ring of 4 such blocks (5333 us) is what no
# real-time program on this machine can hide at that block size.
host_latency() {
    if ! command -v cyclictest >/dev/null; then
        log "host stalls: not measured, no cyclictest (Debian: rt-tests)"
        return 0
    fi
    local secs
    secs=$(awk -v s="$rt_seconds" 'BEGIN { printf "%d", (s < 1 ? 1 : s + 0.5) }')
    if ! cyclictest -m -S -p 80 -i 1000 -D "$secs" -q -h 100000 >"$tmp/cyclictest.txt" 2>"$tmp/cyclictest.err"; then
        log "host stalls: cyclictest failed: $(head -n 1 "$tmp/cyclictest.err")"
        return 0
    fi
    report_py host "$outdir/host.csv" "$secs" "$tmp/cyclictest.txt"
    log "host stalls (cyclictest, $secs s, every CPU): $(tail -n 1 "$outdir/host.csv") ($H_HOST)"
}

phase_realtime() {
    if [[ $rt_backend == jack ]] && ! command -v jackd >/dev/null; then
        die "--rt-backend jack: jackd is not installed"
    fi
    local through="farm's null sink"
    [[ $rt_backend == null ]] || through="jackd's dummy driver (-R, $SR Hz)"
    log "== realtime through $through: frames ${rt_frames[*]}, rings ${rt_rings[*]}," \
        "workers ${workers[*]}, $rt_steps steps of $rt_seconds s, majority of $rt_confirm; load $(load1)"
    host_latency
    echo "$H_RT_RUNS" >"$outdir/realtime_runs.csv"
    echo "$H_RT" >"$outdir/realtime.csv"
    local f w ring backend=$rt_backend
    for f in "${rt_frames[@]}"; do
        rt_backend=$backend
        if [[ $backend == jack ]] && ! start_jackd "$f" 12; then
            log "realtime at $f frames: on farm's null sink instead of jackd"
            rt_backend=null
        fi
        for ring in "${rt_rings[@]}"; do
            for w in "${workers[@]}"; do rt_search "$f" "$w" "$ring"; done
        done
    done
    stop_jackd
    rt_backend=$backend
}

# ---- how the cost grows: one worker, marginal CPU per voice-sample ----

run_cost_point() { # REP AXIS OSCILLATOR VOICES FRAMES CHANNELS -> a line of cost_runs.csv
    local rep=$1 axis=$2 osc=$3 v=$4 f=$5 c=$6 dur short
    # report.py: a whole number of blocks sized for --cost-work voice-samples, and 4 blocks
    dur=$(report_py cost-durations "$cost_work" "$v" "$f" "$quick")
    short=${dur#* } dur=${dur% *}
    local args=(--total-voices "$v" --buffersize "$f" --channels "$c" --oscillator "$osc" -o /dev/null --format wav)
    timed "$farm" render --workers 1 --duration "$short" "${args[@]}" || fail_cmd "farm render (cost, short)"
    local cs
    cs=$(awk -v u="$T_USER" -v s="$T_SYS" 'BEGIN { print u + s }')
    timed "$farm" render --workers 1 --duration "$dur" "${args[@]}" || fail_cmd "farm render (cost)"
    echo "$rep,$axis,$osc,$v,$f,$c,$dur,$short,$(awk -v u="$T_USER" -v s="$T_SYS" 'BEGIN { print u + s }'),$cs,$T_WALL" >>"$outdir/cost_runs.csv"
}

summarize_cost() { report_py cost "$outdir"; } # cost_runs.csv -> cost.csv

phase_cost() {
    log "== cost: one worker, offline, ${cost_work} voice-samples per point, $cost_reps reps; load $(load1)"
    echo "$H_COST_RUNS" >"$outdir/cost_runs.csv"
    local -a pts
    local list
    list=$(report_py cost-points "$quick")
    mapfile -t pts <<<"$list"
    local r i
    for ((r = 0; r < cost_reps; r++)); do
        for ((i = 0; i < ${#pts[@]}; i++)); do
            # shellcheck disable=SC2086 # a point is five words
            run_cost_point $((r + 1)) ${pts[$(((i + r) % ${#pts[@]}))]}
        done
        log "cost rep $((r + 1))/$cost_reps done"
    done
    summarize_cost
}

phase_mix() {
    if [[ -z $bench_mix ]]; then
        log "skip mix: no bench_mix beside farm or in \$BENCH_BIN (cmake --build build --target bench_mix)"
        return 0
    fi
    local counts="" w=1 max=$((2 * usable > 64 ? 2 * usable : 64))
    while ((w <= max)); do counts+="${counts:+,}$w" && w=$((w * 2)); done
    log "== mix: farm_mix per callback, workers $counts; load $(load1)"
    local t=9 s=0.1
    ((quick == 0)) || { t=3 && s=0.02; }
    "$bench_mix" --workers "$counts" --frames 64,256 --trials "$t" --seconds "$s" --csv "$outdir/mix.csv" \
        >"$tmp/mix.md" 2>"$tmp/cmd.err" || fail_cmd "bench_mix"
    cat "$tmp/mix.md" >>"$logfile"
}

# ---- the report and the plots, from the CSVs alone (also what --plot-only redraws) ----

machine_title() { report_py title "$1"; } # DIR -> "MODEL, N cores (P physical)"

make_report() { report_py report "$1"; } # DIR -> DIR/report.md

# The plots: bench/plots/*.gp draw the curves report.py writes to a temporary directory,
# where an empty file is a curve this run did not measure.
make_plots() { # DIR
    local d=$1 t k v
    if ! command -v gnuplot >/dev/null; then
        log "no plots: gnuplot is not installed; later, where it is: bench/scaling.sh --plot-only $d"
        return 0
    fi
    t=$(mktemp -d "${TMPDIR:-/tmp}/scaling-plot.XXXXXX")
    local -A p=([rt_pairs]="" [mix_frames]="")
    report_py series "$d" "$t"
    while IFS='=' read -r k v; do p[$k]=$v; done <"$t/info"
    gp() { gnuplot -c "$repo_root/bench/plots/$1.gp" "${@:2}" 2>>"$t/gnuplot.err"; }
    {
        [[ ! -f $d/offline.csv ]] ||
            { gp throughput "$d/throughput.png" "$t" "${p[title]}" "${p[cores]}" "${p[offline_xrange]}" &&
                gp efficiency "$d/efficiency.png" "$t" "${p[title]}" "${p[cores]}" "${p[offline_xrange]}"; }
    } && {
        [[ ! -f $d/realtime.csv ]] ||
            gp realtime "$d/realtime.png" "$t" "${p[title]}" "${p[rt_xrange]}" "${p[rt_backend]}" "${p[rt_pairs]}"
    } && {
        [[ ! -f $d/cost.csv && ! -f $d/mix.csv ]] || gp cost "$d/cost.png" "$t" "${p[title]}" "${p[mix_frames]}"
    } || {
        cat "$t/gnuplot.err" >&2
        rm -rf "$t"
        echo "scaling: gnuplot failed (its words are above)" >&2
        return 1
    }
    if [[ -s $t/gnuplot.err ]]; then
        log "gnuplot said:"$'\n'"$(cat "$t/gnuplot.err")"
    fi
    rm -rf "$t"
    log "plots: $(cd "$d" && ls -- *.png 2>/dev/null | tr '\n' ' ')"
}

# ---- main ----

# report.py reads and checks the command line before anything is written: it prints the
# settings as quoted bash assignments (mode: help, self-test, plot-only or run), or says what is
# wrong in one line and exits 2.
usable=$(nproc)
args=("$@")
settings=$(report_py options "$usable" "$@") || exit $?
eval "$settings"
logfile=""
if [[ $mode == help ]]; then
    cat "$repo_root/bench/scaling.txt"
    exit 0
fi

farm=$farm_dir/farm
pyo_python=${PYO_PYTHON:-/usr/bin/python3}
sc_python=python3
bench_mix=""
for b in "${BENCH_BIN:-}" "$farm_dir" "$farm_dir/bench"; do
    [[ -n $b && -x $b/bench_mix ]] && { bench_mix=$b/bench_mix && break; }
done
jackd_pid=""
bench_on_exit() { stop_jackd; }
bench_tmpdir scaling

if [[ $mode == self-test ]]; then
    # shellcheck source=bench/scaling_selftest.sh
    . "$repo_root/bench/scaling_selftest.sh"
    self_test
    exit 0
fi

if [[ $mode == plot-only ]]; then
    # The summaries again from the raw runs, so that a fix to a summary applies to old runs too.
    outdir=$plot_only
    [[ ! -f $outdir/offline_runs.csv ]] || summarize_offline
    [[ ! -f $outdir/cost_runs.csv ]] || summarize_cost
    make_report "$plot_only"
    make_plots "$plot_only"
    exit 0
fi

want() { [[ ,$only, == *",$1,"* ]]; }
# The last checks before anything is written (report.py checked the options).
[[ -x $farm ]] || die "no farm at $farm (scripts/setup.sh builds it; or set FARM_BIN to its directory)"
[[ -x $(dirname "$farm")/farm-worker ]] || die "no farm-worker beside $farm"
[[ -e $outdir && ! -d $outdir ]] && die "OUTDIR $outdir exists and is not a directory"
mkdir -p "$outdir" || die "cannot create $outdir"

logfile=$outdir/scaling.log
# A run of some parts into a directory that holds a run adds to its description and log.
if [[ $only == offline,realtime,cost,mix || ! -f $outdir/machine.txt ]]; then
    : >"$logfile"
    : >"$outdir/machine.txt"
fi
{
    echo "model=$(cpu_model)"
    echo "usable_cores=$usable"
    echo "physical_cores=$(physical_cores)"
    echo "date=$(date -u +%Y-%m-%d)"
    echo "os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}"), $(uname -r)"
    echo "load_start=$(load1)"
    echo "args=${args[*]}"
    echo "commit=$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >>"$outdir/machine.txt"
log "scaling: $(machine_title "$outdir"); load $(load1); into $outdir"
find_tools
# Untimed: pages the binaries in, names the kernel, and fails fast on a farm that cannot run.
farm_render "${workers[-1]}" "--total-voices $strong_voices" 0.2
log "farm kernel: $FARM_KERNEL"
echo "kernel=$FARM_KERNEL" >>"$outdir/machine.txt"
started=$SECONDS
for p in offline realtime cost mix; do
    if want $p; then
        "phase_$p"
        echo "load_after_$p=$(load1)" >>"$outdir/machine.txt"
    fi
done
make_report "$outdir"
make_plots "$outdir"
cat "$outdir/report.md"
log "done in $((SECONDS - started)) s; load $(load1); results in $outdir"
