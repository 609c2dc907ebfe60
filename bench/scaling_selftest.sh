# shellcheck shell=bash
# bench/scaling_selftest.sh — `bench/scaling.sh --self-test`: the harness checks itself in a few
# seconds (arguments, CSV headers, one tiny point of each measurement, --plot-only on
# bench/fixtures/scaling). Sourced by scaling.sh, whose functions and settings it uses; not a
# program of its own.
# shellcheck disable=SC2154 # outdir, tmp, farm and the rest are scaling.sh's

st_fail() {
    echo "scaling self-test: FAILED: $*" >&2
    exit 1
}

st_expect_bad() { # MESSAGE-PATTERN ARGS...: the script must refuse with exit 2 and that message
    local pat=$1 rc=0
    shift
    "$self" "$@" >"$tmp/st.out" 2>"$tmp/st.err" || rc=$?
    ((rc == 2)) || st_fail "'scaling.sh $*' exited $rc, not 2"
    grep -q -- "$pat" "$tmp/st.err" || st_fail "'scaling.sh $*' did not say '$pat': $(cat "$tmp/st.err")"
    [[ $(wc -l <"$tmp/st.err") -eq 1 ]] || st_fail "'scaling.sh $*' said more than one line"
}

st_header() { # FILE HEADER [MIN-ROWS]: the header, and rows with as many fields
    [[ $(head -n 1 "$1") == "$2" ]] || st_fail "$1 starts '$(head -n 1 "$1")', not '$2'"
    awk -F, -v want="$(awk -F, '{ print NF }' <<<"$2")" -v min="${3:-1}" \
        'NR > 1 { if (NF != want) exit 1; rows++ } END { exit rows < min }' "$1" ||
        st_fail "$1: fewer than ${3:-1} rows, or rows whose field count is not the header's"
}

st_png() { # FILE WIDTH HEIGHT: a PNG of that size (its IHDR)
    local got
    got=$(od -An -tx1 -j0 -N24 "$1" 2>/dev/null | tr -d ' \n')
    [[ ${got:0:16} == 89504e470d0a1a0a ]] || st_fail "$1 is not a PNG"
    ((16#${got:32:8} == $2 && 16#${got:40:8} == $3)) ||
        st_fail "$1 is $((16#${got:32:8}))x$((16#${got:40:8})), not $2x$3"
}

self_test_parsing() {
    st_expect_bad "--reps wants" "$tmp/o1" --reps 0
    st_expect_bad "unknown option" "$tmp/o2" --bogus
    st_expect_bad "OUTDIR" --quick
    st_expect_bad "no directory" --plot-only "$tmp/none"
    st_expect_bad "--workers wants" "$tmp/o3" --workers 1,x
    st_expect_bad "--only" "$tmp/o4" --only offline,bogus
    st_expect_bad "--rt-backend" "$tmp/o5" --rt-backend alsa
    st_expect_bad "--duration wants" "$tmp/o6" --duration -1
    st_expect_bad "--rt-ring-blocks wants powers of two" "$tmp/o7" --rt-ring-blocks 4,3
    st_expect_bad "--rt-confirm wants an odd" "$tmp/o8" --rt-confirm 2
    local o
    for o in o1 o2 o3 o4 o5 o6 o7 o8; do
        [[ ! -e $tmp/$o ]] || st_fail "refused input still created $o"
    done
    "$self" --help | grep -q '^usage: bench/scaling.sh OUTDIR' || st_fail "--help has no usage line"
    echo "ok: arguments (10 refusals, exit 2, one line each, nothing created; --help)"
}

self_test_measure() {
    outdir=$tmp/m logfile=$tmp/m/log.txt
    mkdir -p "$outdir"
    : >"$outdir/machine.txt"
    strong_voices=4000 weak_voices=1000 peer_voices=20 duration=0.2 peer_duration=0.2 reps=1 peers=0
    echo "$H_OFFLINE_RUNS" >"$outdir/offline_runs.csv"
    run_offline_case 1 strong farm 1 2>/dev/null
    run_offline_case 1 weak farm 2 2>/dev/null
    st_header "$outdir/offline_runs.csv" "$H_OFFLINE_RUNS" 2
    # Far above any core's rate: a CPU time that missed the workers (only farm's own) lands here.
    awk -F, 'NR > 1 { c = $8 + $9; if (c <= 0 || $10 / c > 3e10 || $10 / c < 1e7) exit 1 }' "$outdir/offline_runs.csv" ||
        st_fail "voice-samples per CPU-second out of any plausible range: $(tail -n 2 "$outdir/offline_runs.csv")"
    summarize_offline
    st_header "$outdir/offline.csv" "$H_OFFLINE" 2
    st_header "$outdir/compare.csv" "$H_COMPARE" 0
    echo "ok: offline runs (farm render, CPU time of farm and its workers), offline.csv"

    cost_work=2e6 quick=1
    echo "$H_COST_RUNS" >"$outdir/cost_runs.csv"
    run_cost_point 1 voices sineloop 100 256 2
    run_cost_point 1 channels sine 100 64 8
    summarize_cost
    st_header "$outdir/cost.csv" "$H_COST" 2
    echo "ok: cost points, cost.csv"

    echo "$H_RT_RUNS" >"$outdir/realtime_runs.csv"
    rt_backend=null
    rt_probe 64 1 16 0.3
    if command -v jackd >/dev/null; then
        rt_backend=jack
        if start_jackd 256 2>/dev/null; then
            rt_probe 256 1 16 0.5
            stop_jackd
        else
            echo "skip: jackd would not start here (other servers?); the null sink's probe stands"
        fi
    else
        echo "skip: no jackd, the real-time probe ran on the null sink only"
    fi
    st_header "$outdir/realtime_runs.csv" "$H_RT_RUNS" 1
    # without --ring-blocks farm sizes its ring (10 ms: 8 blocks of 64 frames), and the row says so
    awk -F, 'NR == 2 { exit ($2 != 64 || $11 != 8) }' "$outdir/realtime_runs.csv" ||
        st_fail "the default ring at 64 frames was not recorded as 8 blocks: $(sed -n 2p "$outdir/realtime_runs.csv")"
    echo "ok: real-time probes ($(tail -n +2 "$outdir/realtime_runs.csv" | cut -d, -f1 | tr '\n' ' '))"

    # A majority of 3 asks for 2 probes when both agree, never for more than 3, and passes the
    # ring depth to farm (its summary names the depth: "lowest ring fill N/8").
    rt_backend=null rt_confirm=3 rt_seconds=0.3
    local before after
    before=$(wc -l <"$outdir/realtime_runs.csv")
    rt_decide 64 1 16 8 2>/dev/null
    after=$(wc -l <"$outdir/realtime_runs.csv")
    # Whatever this machine's stalls made of the probes: two that agree decide, a third only
    # when they differ, and the verdict is what most of them said.
    local want
    want=$(tail -n "$((after - before))" "$outdir/realtime_runs.csv" |
        awk -F, '{ late[NR] = ($6 > 0) } END { n = (late[1] == late[2]) ? 2 : 3; s = late[1] + late[2] + late[3]; print n, (s >= 2) }')
    [[ $want == "$((after - before)) $D_LATE" ]] ||
        st_fail "a majority of 3: asked $((after - before)) probes, verdict $D_LATE; the probes say '$want': $(tail -n 3 "$outdir/realtime_runs.csv")"
    grep -q 'ring fill [0-9]*/8' "$tmp/cmd.out" || st_fail "--ring-blocks 8 did not reach farm: $(cat "$tmp/cmd.out")"
    awk -F, 'END { if ($11 != 8 || $12 + 0 <= 0) exit 1 }' "$outdir/realtime_runs.csv" ||
        st_fail "ring depth or peak render missing: $(tail -n 1 "$outdir/realtime_runs.csv")"
    echo "ok: a count decided by the majority of 3 probes ($((after - before)) asked), ring depth passed"
    if command -v cyclictest >/dev/null && [[ $(id -u) -eq 0 ]]; then
        rt_seconds=1
        host_latency 2>/dev/null
        st_header "$outdir/host.csv" "$H_HOST" 1
        awk -F, 'NR == 2 { if ($1 < 1 || $4 < 0 || $6 < $5 || $5 < $4 || $7 < $8 || $8 < $9) exit 1 }' "$outdir/host.csv" ||
            st_fail "host.csv out of order: $(tail -n 1 "$outdir/host.csv")"
        echo "ok: the machine's stalls (cyclictest, 1 s): $(tail -n 1 "$outdir/host.csv")"
    else
        echo "skip: no cyclictest, or not root: the machine's stalls not tried"
    fi
}

self_test_tools() {
    if [[ -n $bench_mix ]]; then
        "$bench_mix" --workers 1,2 --frames 64 --trials 1 --seconds 0.002 --csv "$tmp/mix.csv" >/dev/null ||
            st_fail "bench_mix failed"
        st_header "$tmp/mix.csv" "workers,frames,channels,trials,calls_per_trial,median_ns,min_ns,max_ns,ns_per_frame,period_share" 2
        echo "ok: bench_mix"
    else
        echo "skip: bench_mix not built"
    fi
    if "$pyo_python" -c 'import pyo' >/dev/null 2>&1; then
        pyo_script
        timed pyo_group 2 10 0.2 || fail_cmd "pyo's recipe"
        check_wav "$tmp/pyo1.wav" 0.2 pyo
        echo "ok: pyo's recipe (2 processes)"
    else
        echo "skip: no pyo"
    fi
    local p
    for p in supernova scsynth; do
        if command -v "$p" >/dev/null && command -v "$sc_python" >/dev/null; then
            sc_render "$p" 2 10 0.2
            echo "ok: $p NRT score"
        else
            echo "skip: no $p"
        fi
    done
}

self_test_plots() {
    if ! command -v gnuplot >/dev/null; then
        echo "skip: no gnuplot, --plot-only not tried"
        return 0
    fi
    cp -r "$repo_root/bench/fixtures/scaling" "$tmp/fx"
    "$self" --plot-only "$tmp/fx" >"$tmp/st.out" 2>"$tmp/st.err" || st_fail "--plot-only: $(cat "$tmp/st.err")"
    st_png "$tmp/fx/throughput.png" 1400 560
    st_png "$tmp/fx/efficiency.png" 900 560
    st_png "$tmp/fx/realtime.png" 1400 560
    st_png "$tmp/fx/cost.png" 1200 900
    grep -q '^| workers | voices | median wall s' "$tmp/fx/report.md" || st_fail "report.md has no scaling table"
    grep -q "AMD EPYC" "$tmp/fx/report.md" || st_fail "report.md does not name the machine"
    grep -q "^| jackd dummy, -R | 64 | 4 | 1 | 25934 |" "$tmp/fx/report.md" ||
        st_fail "report.md: a real-time row from before the ring column is not read as farm's 4 blocks"
    grep -q "^| 37 | 226 | 1797 | 2 | 0 | 0 |" "$tmp/fx/report.md" || st_fail "report.md has no row of host.csv"
    echo "ok: --plot-only on the fixture (4 PNGs, report.md)"
}

self_test() {
    if [[ ! -x $farm || ! -x $(dirname "$farm")/farm-worker ]]; then
        echo "skip: no farm and farm-worker at $farm (build them, or set FARM_BIN)"
        exit 77
    fi
    self_test_parsing
    self_test_measure
    self_test_tools
    self_test_plots
    echo "self-test passed"
}
