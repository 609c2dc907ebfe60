#!/usr/bin/env bash
# scaling.sh — the CPU scaling study (issue 11): how farm's throughput grows with workers and
# cores, beside pyo's multi-process recipe, supernova and scsynth on the same workload and cores,
# how much of it survives in real time, and how the cost grows with the work. One command,
# CSVs and PNG plots in one directory; `--help` says what is measured and how.
# shellcheck disable=SC2016,SC2015,SC2013,SC2012,SC1091 # awk in single quotes; A && B || C knowingly
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/scaling.sh OUTDIR [options]
       bench/scaling.sh --plot-only DIR      plots and report.md again from DIR's CSVs
       bench/scaling.sh --self-test          checks the harness itself in a few seconds

Measures, in one run, on this machine (results, plots and a log in OUTDIR):

  offline   `farm render` for 1, 2, 4, ... workers up to the usable cores, and twice the cores
            (oversubscribed): strong scaling (a fixed total of voices) and weak scaling (a
            fixed count per worker). Wall time and the CPU time of farm and all its workers
            (getrusage of the reaped children, via bash's `time`), voice-samples per second
            and per CPU-second, speed-up and efficiency against 1 worker. Medians of --reps
            repetitions; every case of a repetition runs before the next repetition starts,
            in an order that rotates, so machine noise lands on all cases alike.
  peers     the same workload (pyo's seed: --peer-voices SineLoops, feedback 0.1, 48 kHz,
            256-frame blocks) and the same worker counts, interleaved with farm's runs:
            pyo's multi-process recipe (N python3 processes, each an offline pyo Server with
            its share), supernova -T N (SinOscFB synths in a ParGroup, NRT mode) and scsynth
            (one thread). A peer that is not installed (and cannot be) is skipped, said in the
            log. Peers' times include their start-up, as farm's do.
  realtime  the largest total voice count with no late block over --rt-seconds, at 64 and
            256 frames, per worker count: a bisection of --rt-steps steps between 0 and 1.25x
            the offline per-core throughput (strong scaling's voice-samples per CPU-second)
            times the cores the workers can use, which is also what it is compared with.
            Through jackd's dummy driver (-R, 48 kHz, its period equal to farm's) when jackd
            is installed, else farm's null sink. A count is late when the majority of up to
            --rt-confirm probes of it have a late block (one stall of the machine spoils one
            probe at any load; too many voices spoil them all); every probe is in
            realtime_runs.csv with its worker's longest render of one block. Before it,
            cyclictest (Debian rt-tests) measures the machine's own wake-up stalls: host.csv.
  cost      one worker, offline: marginal CPU per voice-sample (a render minus a 4-block
            render of the same farm) against voices per worker (1 to 200,000), block size
            (16 to 2048 frames), channels (1, 2, 8, 32) and oscillator (sineloop, sine).
  mix       the coordinator's farm_mix per callback against the worker count (bench_mix).

Options
  --quick              a short check of all of it (about 2-3 minutes on 2 cores)
  --only LIST          run only these parts: offline,realtime,cost,mix (default all; the
                       peers run with offline). realtime's bisection starts from offline.csv
                       when OUTDIR has one
  --workers LIST       worker counts (default 1,2,4,... up to the usable cores, then 2x cores)
  --reps R             repetitions of every offline case (default 5; quick 1)
  --duration S         seconds of audio per farm render (default 10; quick 1)
  --strong-voices N    total voices for strong scaling (default 10,000 per usable core, at
                       least 20,000)
  --weak-voices N      voices per worker for weak scaling (default 10,000)
  --peer-voices N      the peers' workload, total voices (default 2,000: the seed's 4 x 500)
  --peer-duration S    seconds of audio in the peers' workload (default 4; quick 0.5)
  --no-peers           farm only
  --sc-voices-per-synth K  SinOscFB voices in one synth for supernova and scsynth (default 1:
                       one synth per voice, as pyo has one object per voice; larger K saves
                       their per-node cost)
  --rt-seconds S       length of one real-time probe (default 20; quick 5)
  --rt-steps N         bisection steps per worker count and block size (default 5; quick 3)
  --rt-frames LIST     block sizes for the real-time search (default 64,256)
  --rt-ring-blocks LIST  farm's --ring-blocks for the real-time search, or "default" (farm's
                       own: the fewest blocks, at least 4, that hold 10 ms); deeper rings hide
                       longer stalls and delay control changes as long (default: default)
  --rt-confirm N       probes that decide a count, odd (default 3; quick 1)
  --rt-backend B       jack or null (default: jack when jackd is installed, else null)
  --cost-work N        voice-samples per cost point (default 2e9; quick 2e8)
  --cost-reps R        repetitions of every cost point (default 3; quick 1)
  --no-install         never install missing peers or gnuplot (default: install Debian's
                       python3-pyo, supercollider-server, supercollider-supernova, rt-tests
                       and gnuplot-nox when this user may and the package lists know them)
  -h, --help           this text

Programs: $FARM_BIN/farm and farm-worker (default: build/ under the repository root);
bench_mix from $BENCH_BIN, $FARM_BIN or $FARM_BIN/bench. Peers from PATH; pyo from the
python named by $PYO_PYTHON (default /usr/bin/python3). On a machine that cannot install
anything (the lent 16-core device), bundle the programs (shared/tools/bundle-runtime.sh) and run
  LD_LIBRARY_PATH=$PWD/.device/lib FARM_BIN=$PWD/.device/bin bench/scaling.sh OUT
The plots need gnuplot; without it the CSVs are written and `--plot-only DIR` draws them later.
Exit status: 0 done, 1 a measurement failed, 2 bad input (nothing written), 77 (--self-test)
farm not built.
EOF
}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init scaling
self=$repo_root/bench/scaling.sh
# the summaries, the report and the plots' data (bench/report.py, standard library only)
report_py() { python3 "$repo_root/bench/report.py" "$@"; }
SR=48000

# ---- CSV headers: one place, so the self-test checks what the runs write ----
H_OFFLINE_RUNS="rep,study,engine,workers,voices,duration_s,wall_s,user_s,sys_s,voice_samples"
H_OFFLINE="study,engine,workers,voices,duration_s,reps,wall_s,cpu_s,vps,vps_per_cpu_s,speedup,efficiency"
H_COMPARE="workers,farm_vps_per_cpu_s,pyo_vps_per_cpu_s,supernova_vps_per_cpu_s,scsynth_vps_per_cpu_s,farm_over_pyo,farm_over_supernova,farm_over_scsynth,farm_vps,pyo_vps,supernova_vps"
H_RT_RUNS="backend,frames,workers,voices,seconds,late,underflows,cb_median_us,cb_p99_us,cb_max_us,ring_blocks,peak_render_pct"
H_RT="backend,frames,workers,voices,first_late,probe_s,steps,cb_median_us,cb_p99_us,offline_vps,capacity_vps,ratio,ring_blocks,confirm"
H_HOST="cpus,seconds,interval_us,median_us,p99_us,max_us,over_1333us,over_5333us,over_21333us"
H_COST_RUNS="rep,axis,oscillator,voices,frames,channels,duration_s,short_s,cpu_s,cpu_short_s,wall_s"
H_COST="axis,oscillator,voices,frames,channels,reps,ns_per_vs,ns_per_vs_with_startup"

uint_list() { # OPTION VALUE ARRAY: ARRAY becomes the list, sorted, without repeats; or dies
    local name=$1 value=$2 v
    local -n into=$3
    local -a list
    IFS=, read -r -a list <<<"$value"
    ((${#list[@]})) || die "$name wants a comma-separated list, not '$value'"
    for v in "${list[@]}"; do
        is_uint "$v" || die "$name wants positive integers, not '$v' in '$value'"
    done
    # shellcheck disable=SC2034 # into is a nameref: this fills the caller's array
    mapfile -t into < <(printf '%s\n' "${list[@]}" | awk '{ print $1 + 0 }' | sort -n -u)
}

log() { # to the terminal and the log
    echo "$*" >&2
    [[ -z ${logfile:-} ]] || echo "$*" >>"$logfile"
}

# The CPU model and counts, for every table and plot title.
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

pyo_script() {
    cat >"$tmp/pyo_part.py" <<'PY'
import random, sys
from pyo import Server, SineLoop
voices, dur, out, part = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = Server(sr=48000, nchnls=2, buffersize=256, duplex=0, audio="offline").boot()
s.recordOptions(dur=dur, filename=out, fileformat=0, sampletype=3)
rng = random.Random(1000 + part)
voices_alive = SineLoop(freq=[rng.uniform(400, 800) for _ in range(voices)], feedback=0.1, mul=0.005).out()
s.start()
PY
}

# pyo's recipe: N processes at once, each its own offline server with its share of the voices.
pyo_group() { # N VOICES DURATION
    local n=$1 voices=$2 dur=$3 i share bad=0
    local -a pids=()
    for ((i = 0; i < n; i++)); do
        share=$((voices / n + (i < voices % n ? 1 : 0)))
        "$pyo_python" "$tmp/pyo_part.py" "$share" "$dur" "$tmp/pyo$i.wav" "$i" >"$tmp/pyo$i.log" 2>&1 &
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

offline_cases() { # one case per line: STUDY ENGINE WORKERS
    local w
    for w in "${workers[@]}"; do
        echo "strong farm $w"
        echo "weak farm $w"
        ((peers == 0)) || echo "peer farm $w"
        ((have_pyo == 0)) || echo "peer pyo $w"
        ((have_supernova == 0)) || echo "peer supernova $w"
    done
    ((have_scsynth == 0)) || echo "peer scsynth 1"
}

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
    log "$(printf 'rep %d/%d  %-6s %-9s workers %3d  %7d voices  wall %8.3f s  cpu %8.3f s  %7.3f G/s  %7.3f G/cpu-s' \
        "$rep" "$reps" "$study" "$engine" "$w" "$voices" "$T_WALL" "$(awk -v u="$T_USER" -v s="$T_SYS" 'BEGIN { print u + s }')" \
        "$(awk -v x="$vs" -v t="$T_WALL" 'BEGIN { print (t > 0 ? x / t / 1e9 : 0) }')" \
        "$(awk -v x="$vs" -v u="$T_USER" -v s="$T_SYS" 'BEGIN { print (u + s > 0 ? x / (u + s) / 1e9 : 0) }')")"
}

summarize_offline() { report_py offline "$outdir"; } # offline_runs.csv -> offline.csv and compare.csv

phase_offline() {
    log "== offline: workers ${workers[*]}; strong $strong_voices voices, weak $weak_voices per worker," \
        "$duration s; peers $peer_voices voices, $peer_duration s; $reps reps; load $(load1)"
    ((have_pyo == 0)) || pyo_script
    echo "sc_voices_per_synth=$sc_per_synth" >>"$outdir/machine.txt"
    echo "$H_OFFLINE_RUNS" >"$outdir/offline_runs.csv"
    local -a cases
    mapfile -t cases < <(offline_cases)
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

rt_probe() { # FRAMES WORKERS VOICES SECONDS [RING] -> sets P_LATE P_UNDER P_CB (median,p99,max) P_PEAK P_RING
    local frames=$1 w=$2 v=$3 secs=$4 ring=${5:-default} sink=() depth=()
    # JACK named, not found: with ALSA's JACK plugin installed (libasound2-plugins), PortAudio's
    # default output can be ALSA's "jack" PCM, a second buffer between farm and jackd.
    if [[ $rt_backend == null ]]; then sink=(--null-sink); else sink=(--host jack); fi
    [[ $ring == default ]] || depth=(--ring-blocks "$ring")
    timed "$farm" "${sink[@]}" --buffersize "$frames" --duration "$secs" --rt-priority 70 \
        --workers "$w" --total-voices "$v" "${depth[@]}" || fail_cmd "farm playing $v voices on $w workers at $frames frames"
    local out
    out=$(<"$tmp/cmd.out")
    P_LATE=$(sed -n 's/.*late blocks \([0-9]*\).*/\1/p' <<<"$out" | head -n 1)
    P_UNDER=$(sed -n 's/.*underflows \([0-9]*\).*/\1/p' <<<"$out" | head -n 1)
    P_CB=$(sed -n 's/.*median \([0-9.]*\) us, p99 \([0-9.]*\) us, max \([0-9.]*\) us.*/\1,\2,\3/p' <<<"$out" | head -n 1)
    # A worker's longest render of one block, in % of the period: one block's work is fixed, so
    # far above its load this is time the worker's core was taken from it, not load.
    P_PEAK=$(grep -o 'peak *[0-9.]*%' <<<"$out" | tr -dc '0-9.\n' | sort -g | tail -n 1 || true)
    # the depth as played: farm's own default is sized by the block (10 ms)
    P_RING=$(sed -n 's/.*lowest ring fill [0-9]*\/\([0-9]*\).*/\1/p' <<<"$out" | head -n 1)
    [[ $P_LATE =~ ^[0-9]+$ && -n $P_CB && -n $P_RING ]] || fail_cmd "parsing farm's summary (late blocks, callback, ring)"
    echo "$rt_backend,$frames,$w,$v,$secs,$P_LATE,${P_UNDER:-0},$P_CB,$P_RING,$P_PEAK" >>"$outdir/realtime_runs.csv"
}

# What the offline render does on the cores these workers can use: its voice-samples per
# CPU-second (strong scaling, same worker count) times min(workers, cores). CPU time, not wall
# time, so that other tenants' load at the offline runs does not shrink the bracket or flatter
# the ratio; this is "the offline per-core throughput" the real-time capacity is held against.
offline_vps() { # WORKERS -> voice-samples per second (or a guess)
    local v="" eff=$(($1 < usable ? $1 : usable))
    [[ -f $outdir/offline.csv ]] &&
        v=$(awk -F, -v w="$1" -v e="$eff" '$1 == "strong" && $2 == "farm" && $3 == w { printf "%.6g", $10 * e }' "$outdir/offline.csv")
    if [[ -z $v ]]; then
        v=$((eff * 2500000000)) # about one AVX2 core of this kernel: only a starting bracket
        log "no offline figure for $1 workers: the bisection starts from a guess of $v voice-samples/s"
    fi
    echo "$v"
}

# A count is late when most of up to --rt-confirm probes of it are: a probe is asked for only
# while the majority is undecided. One stall of the machine (a vCPU taken by the host for longer
# than the ring holds) spoils one probe of 20 s at any load; too many voices spoil them all.
rt_decide() { # FRAMES WORKERS VOICES RING -> sets D_LATE (0 or 1), D_CB (a clean probe's callback)
    local majority=$(((rt_confirm + 1) / 2)) clean=0 late=0
    D_CB=""
    while ((clean < majority && late < majority)); do
        rt_probe "$1" "$2" "$3" "$rt_seconds" "$4"
        log "$(printf 'realtime %-4s %4d frames  ring %2s  workers %3d  %8d voices  late %5d  underflows %4s  peak render %6s%%  callback median,p99,max %s us' \
            "$rt_backend" "$1" "$P_RING" "$2" "$3" "$P_LATE" "${P_UNDER:-?}" "${P_PEAK:-?}" "$P_CB")"
        if ((P_LATE == 0)); then
            clean=$((clean + 1))
            D_CB=$P_CB
        else
            late=$((late + 1))
        fi
    done
    D_LATE=$((late >= majority))
}

rt_search() { # FRAMES WORKERS RING -> one row of realtime.csv
    local frames=$1 w=$2 ring=$3 off lo=0 hi mid best="" first_late="" s cb=",," ratio="" cap="" played=""
    off=$(offline_vps "$w")
    hi=$(awk -v o="$off" -v sr="$SR" 'BEGIN { printf "%d", 1.25 * o / sr + 1 }')
    for ((s = 0; s < rt_steps; s++)); do
        mid=$(((lo + hi) / 2))
        ((mid >= w)) || mid=$w
        rt_decide "$frames" "$w" "$mid" "$ring"
        played=$P_RING
        if ((D_LATE == 0)); then
            lo=$mid best=$mid cb=$D_CB
        else
            hi=$mid first_late=$mid
            ((mid > w)) || break # late with one voice per worker: nothing lower to try
        fi
    done
    if [[ -n $best ]]; then
        cap=$(awk -v v="$best" -v sr="$SR" 'BEGIN { printf "%.6g", v * sr }')
        ratio=$(awk -v c="$cap" -v o="$off" 'BEGIN { printf "%.4f", (o > 0 ? c / o : 0) }')
    fi
    echo "$rt_backend,$frames,$w,$best,$first_late,$rt_seconds,$rt_steps,${cb%,*},$off,$cap,$ratio,$played,$rt_confirm" >>"$outdir/realtime.csv"
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

cost_points() { # AXIS OSCILLATOR VOICES FRAMES CHANNELS, one per line
    local v f c o
    local vl="1 3 10 30 100 300 1000 3000 10000 30000 100000 200000" fl="16 32 64 128 256 512 1024 2048"
    local cl="1 2 8 32"
    ((quick == 0)) || { vl="1 100 10000 200000" && fl="16 256 2048" && cl="1 32"; }
    for v in $vl; do echo "voices sineloop $v 256 2"; done
    for f in $fl; do echo "frames sineloop 10000 $f 2"; done
    for o in sineloop sine; do for c in $cl; do echo "channels $o 10000 256 $c"; done; done
}

run_cost_point() { # REP AXIS OSCILLATOR VOICES FRAMES CHANNELS -> a line of cost_runs.csv
    local rep=$1 axis=$2 osc=$3 v=$4 f=$5 c=$6 dur short
    # A whole number of blocks, sized for --cost-work voice-samples (0.5 s to 300 s of audio);
    # the short render is 4 blocks, so the difference is rendering alone, start-up excluded.
    dur=$(awk -v w="$cost_work" -v v="$v" -v f="$f" -v sr="$SR" -v q="$quick" 'BEGIN {
        d = w / (v * sr); if (d < 0.5) d = 0.5; if (d > (q ? 30 : 300)) d = (q ? 30 : 300)
        b = int(d * sr / f + 0.999); printf "%.9f", b * f / sr }')
    short=$(awk -v f="$f" -v sr="$SR" 'BEGIN { printf "%.9f", 4 * f / sr }')
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
    mapfile -t pts < <(cost_points)
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

quick=0 self_test_mode=0 plot_only="" outdir="" only="offline,realtime,cost,mix"
workers_list="" reps="" duration="" strong_voices="" weak_voices="" peer_voices=""
peer_duration="" peers=1 sc_per_synth=1 rt_seconds="" rt_steps="" rt_frames_list="64,256" rt_backend=""
rt_rings_list=default rt_confirm=""
cost_work="" cost_reps="" no_install=0 logfile=""
args=("$@")
while (($#)); do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --quick) quick=1 ;;
    --self-test) self_test_mode=1 ;;
    --no-peers) peers=0 ;;
    --no-install) no_install=1 ;;
    --plot-only | --only | --workers | --reps | --duration | --strong-voices | --weak-voices | \
        --peer-voices | --peer-duration | --sc-voices-per-synth | --rt-seconds | --rt-steps | --rt-frames | --rt-backend | --cost-work | --cost-reps | \
        --rt-ring-blocks | --rt-confirm)
        (($# >= 2)) || die "$1 needs a value (see --help)"
        case $1 in
        --plot-only) plot_only=$2 ;;
        --only) only=$2 ;;
        --workers) workers_list=$2 ;;
        --reps) reps=$2 ;;
        --duration) duration=$2 ;;
        --strong-voices) strong_voices=$2 ;;
        --weak-voices) weak_voices=$2 ;;
        --peer-voices) peer_voices=$2 ;;
        --peer-duration) peer_duration=$2 ;;
        --sc-voices-per-synth) sc_per_synth=$2 ;;
        --rt-seconds) rt_seconds=$2 ;;
        --rt-steps) rt_steps=$2 ;;
        --rt-frames) rt_frames_list=$2 ;;
        --rt-ring-blocks) rt_rings_list=$2 ;;
        --rt-confirm) rt_confirm=$2 ;;
        --rt-backend) rt_backend=$2 ;;
        --cost-work) cost_work=$2 ;;
        --cost-reps) cost_reps=$2 ;;
        esac
        shift
        ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *)
        [[ -z $outdir ]] || die "only one OUTDIR may be given (got '$outdir' and '$1')"
        outdir=$1
        ;;
    esac
    shift
done

farm=$farm_dir/farm
pyo_python=${PYO_PYTHON:-/usr/bin/python3}
sc_python=python3
bench_mix=""
for b in "${BENCH_BIN:-}" "$farm_dir" "$farm_dir/bench"; do
    [[ -n $b && -x $b/bench_mix ]] && { bench_mix=$b/bench_mix && break; }
done
usable=$(nproc)
jackd_pid=""
bench_on_exit() { stop_jackd; }
bench_tmpdir scaling

if ((self_test_mode)); then
    # shellcheck source=bench/scaling_selftest.sh
    . "$repo_root/bench/scaling_selftest.sh"
    self_test
    exit 0
fi

if [[ -n $plot_only ]]; then
    [[ -z $outdir ]] || die "--plot-only takes its directory and no OUTDIR"
    [[ -d $plot_only ]] || die "--plot-only: no directory $plot_only"
    [[ -f $plot_only/offline.csv || -f $plot_only/realtime.csv || -f $plot_only/cost.csv || -f $plot_only/mix.csv ]] ||
        die "--plot-only: $plot_only holds none of offline.csv, realtime.csv, cost.csv, mix.csv"
    # The summaries again from the raw runs, so that a fix to a summary applies to old runs too.
    outdir=$plot_only
    [[ ! -f $outdir/offline_runs.csv ]] || summarize_offline
    [[ ! -f $outdir/cost_runs.csv ]] || summarize_cost
    make_report "$plot_only"
    make_plots "$plot_only"
    exit 0
fi

# Everything is checked before anything is written.
[[ -n $outdir ]] || die "an OUTDIR is needed (see --help)"
((quick)) && def() { echo "$2"; } || def() { echo "$1"; }
reps=${reps:-$(def 5 1)}
duration=${duration:-$(def 10 1)}
strong_voices=${strong_voices:-$((usable * 10000 > 20000 ? usable * 10000 : 20000))}
weak_voices=${weak_voices:-10000}
peer_voices=${peer_voices:-2000}
peer_duration=${peer_duration:-$(def 4 0.5)}
rt_seconds=${rt_seconds:-$(def 20 5)}
rt_steps=${rt_steps:-$(def 5 3)}
rt_confirm=${rt_confirm:-$(def 3 1)}
cost_work=${cost_work:-$(def 2e9 2e8)}
cost_reps=${cost_reps:-$(def 3 1)}
is_uint "$reps" || die "--reps wants a positive integer, not '$reps'"
is_uint "$cost_reps" || die "--cost-reps wants a positive integer, not '$cost_reps'"
is_uint "$rt_steps" || die "--rt-steps wants a positive integer, not '$rt_steps'"
is_uint "$rt_confirm" && ((rt_confirm % 2 == 1 && rt_confirm <= 9)) ||
    die "--rt-confirm wants an odd count of probes in 1..9, not '$rt_confirm'"
is_uint "$sc_per_synth" && ((sc_per_synth <= 1000)) ||
    die "--sc-voices-per-synth wants an integer in 1..1000, not '$sc_per_synth'"
for v in strong_voices weak_voices peer_voices; do
    is_uint "${!v}" || die "--${v//_/-} wants a positive integer, not '${!v}'"
done
for v in duration peer_duration rt_seconds cost_work; do
    is_pos "${!v}" || die "--${v//_/-} wants a positive number, not '${!v}'"
done
if [[ -n $workers_list ]]; then
    uint_list --workers "$workers_list" workers
else
    mapfile -t workers < <(w=1 && while ((w < usable)); do echo $w && w=$((w * 2)); done && echo "$usable" && echo $((2 * usable)))
fi
rt_frames=()
uint_list --rt-frames "$rt_frames_list" rt_frames
rt_rings=(default)
if [[ $rt_rings_list != default ]]; then
    uint_list --rt-ring-blocks "$rt_rings_list" rt_rings
    for v in "${rt_rings[@]}"; do
        ((v >= 2 && v <= 64 && (v & (v - 1)) == 0)) ||
            die "--rt-ring-blocks wants powers of two in 2..64 or default, not '$v'"
    done
fi
IFS=, read -r -a parts <<<"$only"
for p in "${parts[@]}"; do
    [[ $p =~ ^(offline|realtime|cost|mix)$ ]] || die "--only wants offline, realtime, cost or mix, not '$p'"
done
want() { [[ ,$only, == *",$1,"* ]]; }
case ${rt_backend:-auto} in
auto) command -v jackd >/dev/null && rt_backend=jack || rt_backend=null ;;
jack | null) ;;
*) die "--rt-backend wants jack or null, not '$rt_backend'" ;;
esac
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
