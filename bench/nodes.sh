#!/usr/bin/env bash
# nodes.sh [--duration S] [--voices N] [--out FILE] — a master farm and two node farms on
# NetJACK2 slaves, on this machine (the rig of shared/docs/netjack2.md), inside a private network
# namespace: nothing leaves loopback. Measures what a node adds: the latency of a request for its
# voices against one for the master's own (from the master's recording), its xruns and late
# blocks, and the master's callback time with the nodes' audio against without. Needs root (or
# user namespaces) for unshare -n; writes a Markdown table to --out (default stdout).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init nodes.sh
bin=$farm_dir
duration=60
voices=1000
out=""
while (($#)); do
    case $1 in
    --duration) duration=$2; shift 2 ;;
    --voices) voices=$2; shift 2 ;;
    --out) out=$(realpath -m "$2"); shift 2 ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "nodes.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin/farm" ] || { echo "nodes.sh: $bin/farm not built (scripts/setup.sh)" >&2; exit 2; }
if [ -z "${FARM_NODES_NETNS:-}" ]; then
    flags=-n
    unshare -n true 2>/dev/null || flags=-rn
    exec env FARM_NODES_NETNS=1 unshare $flags bash "$0" --duration "$duration" --voices "$voices" \
        ${out:+--out "$out"}
fi
ip link set lo up
export JACK_NO_START_SERVER=1 JACK_NO_AUDIO_RESERVATION=1 JACK_NETJACK_MULTICAST=127.0.0.1
tmp=$(mktemp -d)
master=bench-nodes-$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${FARM_NODES_KEEP:-}" ] && echo "nodes.sh: kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

lsp() { JACK_DEFAULT_SERVER=$master jack_lsp 2>/dev/null || true; }
jackd -n "$master" -R -d dummy -r 48000 -p 256 >"$tmp/master.log" 2>&1 &
master_jackd=$!
for _ in $(seq 100); do lsp | grep -q system:playback_1 && break; sleep 0.1; done
jack_load -s "$master" -i "-a 127.0.0.1 -p 19000" netmanager >/dev/null
pids+=("$master_jackd")

ctl() { "$bin/farmctl" --url "$1" "${@:2}"; }
seconds() {
    ctl tcp://127.0.0.1:5600 status 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["stream"]["seconds"])' 2>/dev/null ||
        echo 0
}

# the master alone first: its callback without the nodes' audio
JACK_DEFAULT_SERVER=$master "$bin/farm" --host jack --workers 1 --total-voices "$voices" \
    --control tcp://127.0.0.1:5600 --duration 20 -q &
base=$!
sleep 19
ctl tcp://127.0.0.1:5600 status >"$tmp/base.json"
wait $base

for k in 1 2; do
    jackd -n "$master-s$k" -R -d net -a 127.0.0.1 -p 19000 -C 0 -P 2 -i 0 -o 0 -n "node$k" -l 2 \
        >"$tmp/slave$k.log" 2>&1 &
    pids=($! "${pids[@]}")
    for _ in $(seq 200); do lsp | grep -q "node$k:from_slave_2" && break; sleep 0.1; done
done
# A slave that has just joined may refuse clients for a moment: try again until one plays.
node_farm() {
    local k=$1 try pid
    for try in $(seq 20); do
        JACK_DEFAULT_SERVER=$master-s$k "$bin/farm" --host jack --workers 1 \
            --total-voices "$voices" --first-voice $((k * voices)) \
            --control tcp://127.0.0.1:560$k >"$tmp/node$k.out" 2>&1 &
        pid=$!
        for _ in $(seq 50); do
            ctl tcp://127.0.0.1:560$k status >/dev/null 2>&1 && { pids=("$pid" "${pids[@]}"); return; }
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        wait "$pid" 2>/dev/null || true
        sleep 0.5
    done
    echo "nodes.sh: node farm $k did not start: $(cat "$tmp/node$k.out")" >&2
    exit 1
}
node_farm 1
node_farm 2
sleep 1
JACK_DEFAULT_SERVER=$master "$bin/farm" --host jack --workers 1 --total-voices "$voices" \
    --node node1=tcp://127.0.0.1:5601 --node node2=tcp://127.0.0.1:5602 \
    --control tcp://127.0.0.1:5600 --duration "$duration" --record "$tmp/rec.wav" -q &
mf=$!
# markers: voice 0 (master), voices N and 2N (the nodes) jump to loud tones in one request,
# then fall silent; the recording shows when each farm's sound changed
: >"$tmp/markers"
for t in $(seq 5 5 $((duration - 5))); do
    while [ "$(seconds | cut -d. -f1)" -lt "$t" ]; do sleep 0.05; done
    ctl tcp://127.0.0.1:5600 "set 0 freq 3000
set 0 amp 0.3
set $voices freq 4500
set $voices amp 0.3
set $((2 * voices)) freq 6000
set $((2 * voices)) amp 0.3" >/dev/null
    echo "$t" >>"$tmp/markers"
    sleep 1
    ctl tcp://127.0.0.1:5600 "set 0 amp 0
set $voices amp 0
set $((2 * voices)) amp 0" >/dev/null
done
sleep 3
ctl tcp://127.0.0.1:5600 status >"$tmp/master.json"
for k in 1 2; do ctl tcp://127.0.0.1:560$k status >"$tmp/node$k.json"; done
wait $mf
for k in 1 2; do ctl tcp://127.0.0.1:560$k quit >/dev/null; done

[ -n "$out" ] || out=/dev/stdout
python3 - "$tmp" "$duration" "$voices" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" >"$out" <<'PY'
import json, math, struct, sys, statistics
tmp, duration, voices, cores, model = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5].strip()
def readwav(p):
    b = open(p, 'rb').read(); i = 12; ch = 2
    while i < len(b):
        cid = b[i:i+4]; sz = struct.unpack('<I', b[i+4:i+8])[0]
        if cid == b'fmt ': ch = struct.unpack('<H', b[i+10:i+12])[0]
        if cid == b'data':
            return ch, b[i+8:i+8+sz]
        i += 8 + sz + (sz & 1)
ch, data = readwav(f'{tmp}/rec.wav')
def frame(k): return struct.unpack_from('<f', data, 4 * (k * ch))[0]
def tone(at, n, f):
    w = 2 * math.pi * f / 48000; c = s = 0.0
    for k in range(n):
        x = frame(at + k); c += x * math.cos(w * k); s += x * math.sin(w * k)
    return 2 * math.hypot(c, s) / n
def onset(t, f):
    at = int(t * 48000)
    for step in range(0, 48000, 32):
        if tone(at + step, 256, f) > 0.15: return (at + step + 256) / 48000
    return None
marks = [float(x) for x in open(f'{tmp}/markers')]
lat = {1: [], 2: []}
for t in marks:
    m = onset(t - 0.05, 3000)
    for k, f in ((1, 4500), (2, 6000)):
        o = onset(t - 0.05, f)
        if m is not None and o is not None: lat[k].append(1000 * (o - m))
base = json.load(open(f'{tmp}/base.json'))['stream']['callback_us']
mst = json.load(open(f'{tmp}/master.json'))
cb = mst['stream']['callback_us']
print(f'Machine: {model}, {cores} cores; jackd2 dummy driver 48 kHz, 256 frames; NetJACK2 slaves with -l 2;')
print(f'{voices} voices per farm, {duration:.0f} s, {len(marks)} markers.\n')
print('| farm | added latency (ms, median of markers) | min..max | its late blocks | its underflows (xruns) | state at the end |')
print('|---|---:|---:|---:|---:|---|')
print(f"| master | 0 (reference) | | {mst['stream']['late_blocks']:.0f} | {mst['stream']['underflows']:.0f} | |")
for n in mst.get('nodes', []):
    k = int(n['name'][-1]); own = json.load(open(f'{tmp}/node{k}.json'))['stream']
    l = lat[k]
    med = f'{statistics.median(l):.1f}' if l else 'n/a'
    rng = f'{min(l):.1f}..{max(l):.1f}' if l else ''
    print(f"| {n['name']} | {med} | {rng} | {own['late_blocks']:.0f} | {own['underflows']:.0f} | {n['state']} |")
print()
print('| master callback | median us | p99 us | max us |')
print('|---|---:|---:|---:|')
print(f"| alone, 20 s | {base['median']:.0f} | {base['p99']:.0f} | {base['max']:.0f} |")
print(f"| mixing 2 nodes' audio, {duration:.0f} s | {cb['median']:.0f} | {cb['p99']:.0f} | {cb['max']:.0f} |")
PY
grep -c 'not finished\|Process error' "$tmp/master.log" | sed 's/^/\nmaster jackd: cycles it logged as late (client not finished or process error): /' >>"$out" || true
