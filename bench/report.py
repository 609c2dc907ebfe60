#!/usr/bin/env python3
"""The scaling study's summaries, report and plot data (bench/scaling.sh), from its CSVs.

  report.py offline DIR          DIR/offline_runs.csv -> DIR/offline.csv and DIR/compare.csv
  report.py cost DIR             DIR/cost_runs.csv -> DIR/cost.csv
  report.py host OUT SECS FILE   cyclictest's histogram (-q -h) -> OUT (host.csv)
  report.py report DIR           DIR's CSVs and machine.txt -> DIR/report.md
  report.py series DIR TMP       the plots' "x y" files and TMP/info for bench/plots/*.gp
  report.py title DIR            "MODEL, N cores (P physical)" from DIR/machine.txt
  report.py options NPROC ARG... scaling.sh's command line -> shell assignments (or exit 2)
  report.py probe BACKEND FRAMES WORKERS VOICES SECS FILE
                                 farm's summary of one real-time probe -> its realtime_runs.csv
                                 row and its log line (exit 1 when the summary lacks them)
  report.py rt-majority CONFIRM [ROW...]  "probe" (ask another), else "LATE CALLBACK"
  report.py rt-next BACKEND FRAMES WORKERS SECS STEPS CONFIRM OFFLINE PLAYED [COUNT:LATE:CB...]
                                 the bisection's next count ("probe N"), else realtime.csv's row
  report.py rt-offline DIR WORKERS USABLE  the bisection's offline figure (empty: none)
  report.py headers              the CSV headers as bash assignments (H_OFFLINE_RUNS=...)
  report.py offline-cases PEERS PYO SUPERNOVA SCSYNTH WORKERS...  the offline cases, one a line
  report.py cost-points QUICK    the cost study's points, one a line
  report.py cost-durations WORK VOICES FRAMES QUICK  a cost point's render and short render, s

Standard library only. The figures were first written by awk (mawk), and runs from before
this program are redrawn with --plot-only: so numbers are turned into text the way mawk does
(awk_str), and raw CSV fields are copied as they are, so that the same CSVs give the same bytes.
"""

import os
import re
import shlex
import shutil
import sys

SR = 48000

H_OFFLINE = "study,engine,workers,voices,duration_s,reps,wall_s,cpu_s,vps,vps_per_cpu_s,speedup,efficiency"
H_COMPARE = ("workers,farm_vps_per_cpu_s,pyo_vps_per_cpu_s,supernova_vps_per_cpu_s,scsynth_vps_per_cpu_s,"
             "farm_over_pyo,farm_over_supernova,farm_over_scsynth,farm_vps,pyo_vps,supernova_vps")
H_COST = "axis,oscillator,voices,frames,channels,reps,ns_per_vs,ns_per_vs_with_startup"
H_HOST = "cpus,seconds,interval_us,median_us,p99_us,max_us,over_1333us,over_5333us,over_21333us"
# what scaling.sh writes, the raw runs and the real-time search's rows (report.py headers)
H_OFFLINE_RUNS = "rep,study,engine,workers,voices,duration_s,wall_s,user_s,sys_s,voice_samples"
H_RT_RUNS = ("backend,frames,workers,voices,seconds,late,underflows,cb_median_us,cb_p99_us,cb_max_us,"
             "ring_blocks,peak_render_pct")
H_RT = ("backend,frames,workers,voices,first_late,probe_s,steps,cb_median_us,cb_p99_us,offline_vps,"
        "capacity_vps,ratio,ring_blocks,confirm")
H_COST_RUNS = "rep,axis,oscillator,voices,frames,channels,duration_s,short_s,cpu_s,cpu_short_s,wall_s"
HEADERS = ("H_OFFLINE_RUNS", "H_OFFLINE", "H_COMPARE", "H_RT_RUNS", "H_RT", "H_HOST", "H_COST_RUNS", "H_COST")

# ---- awk's arithmetic on text ----

_NUM = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def num(s):
    """A field as awk reads it as a number: its longest numeric prefix, else 0."""
    if isinstance(s, (int, float)):
        return float(s)
    m = _NUM.match(s or "")
    return float(m.group(0)) if m else 0.0


def awk_str(x):
    """A number as mawk writes it (print, concatenation): an integer when it is one and fits
    mawk's int, else %.6g (so 3e9 prints as 3e+09)."""
    if isinstance(x, str):
        return x
    if x == int(x) and abs(x) <= 2147483647:
        return "%d" % x
    return "%.6g" % x


def awk_int(x):
    """printf's %d: truncated toward zero."""
    return int(num(x))


def median(values):
    """The middle of the values (text or numbers) by numeric order: the middle one itself when
    there is an odd count, else the mean of the middle two. Nothing: 0."""
    a = sorted(values, key=num)
    k = len(a)
    if k == 0:
        return 0.0
    if k % 2:
        return a[k // 2]
    return (num(a[k // 2 - 1]) + num(a[k // 2])) / 2


def read_rows(path, skip_header=True):
    """A CSV's lines split at commas (no quoting: farm's CSVs have none)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return [Row(line.split(",")) for line in (lines[1:] if skip_header else lines)]


class Row(list):
    """Fields numbered from 1 as in awk; a field past the end is empty."""

    def __call__(self, i):
        return self[i - 1] if 0 < i <= len(self) else ""


# ---- summaries ----


def summarize_offline(runs):
    """offline_runs.csv's rows -> offline.csv's lines: medians per study, engine and workers,
    sorted by them; speed-up and efficiency against the fewest workers of that study and engine."""
    n, wall, cpu, voices, dur, vs, order = {}, {}, {}, {}, {}, {}, []
    for r in runs:
        k = (r(2), r(3), r(4))
        if k not in n:
            order.append(k)
            n[k], wall[k], cpu[k] = 0, [], []
        n[k] += 1
        wall[k].append(r(7))
        # awk kept the sums as text (%.6g), and the median of an even count averages that text
        cpu[k].append(awk_str(num(r(8)) + num(r(9))))
        voices[k], dur[k], vs[k] = r(5), r(6), r(10)
    mw, mc, vps, base = {}, {}, {}, {}
    for k in order:
        mw[k], mc[k] = median(wall[k]), median(cpu[k])
        vps[k] = num(vs[k]) / num(mw[k]) if num(mw[k]) > 0 else 0.0
        se = k[:2]
        if se not in base or num(k[2]) < num(base[se]):
            base[se] = k[2]
    order.sort(key=lambda k: (k[0] + k[1], num(k[2])))
    out = [H_OFFLINE]
    for k in order:
        b = base[k[:2]]
        bv = vps[(k[0], k[1], b)]
        s = vps[k] / bv if bv > 0 else 0.0
        per_cpu = num(vs[k]) / num(mc[k]) if num(mc[k]) > 0 else 0.0
        out.append("%s,%s,%s,%d,%.6g,%.6g,%.6g,%.6g,%.4f,%.4f" % (
            ",".join(k), voices[k], dur[k], n[k], num(mw[k]), num(mc[k]), vps[k], per_cpu,
            s, s * num(b) / num(k[2])))
    return out


def compare_peers(offline):
    """offline.csv's rows -> compare.csv's lines: the peers' workload, one line per worker count
    that farm ran, with each engine's throughput and farm's ratio to it."""
    pc, v, ws = {}, {}, []
    for r in offline:
        if r(1) != "peer":
            continue
        pc[r(2), r(3)], v[r(2), r(3)] = r(10), r(9)
        if r(3) not in ws:
            ws.append(r(3))

    def ratio(a, b):
        return "%.2f" % (num(a) / num(b)) if b and num(b) > 0 else ""

    out = [H_COMPARE]
    for w in ws:
        if ("farm", w) not in pc:
            continue
        one = num(w) == 1
        farm = pc["farm", w]
        out.append(",".join([
            w, farm, pc.get(("pyo", w), ""), pc.get(("supernova", w), ""),
            pc.get(("scsynth", "1"), "") if one else "",
            ratio(farm, pc.get(("pyo", w))), ratio(farm, pc.get(("supernova", w))),
            ratio(farm, pc.get(("scsynth", "1"))) if one else "",
            v["farm", w], v.get(("pyo", w), ""), v.get(("supernova", w), "")]))
    return out


def summarize_cost(runs):
    """cost_runs.csv's rows -> cost.csv's lines: per point, the median marginal CPU ns per
    voice-sample (the render minus its 4-block render) and the median with start-up."""
    n, marg, tot, order = {}, {}, {}, []
    for r in runs:
        k = ",".join(r[1:6])
        if k not in n:
            order.append(k)
            n[k], marg[k], tot[k] = 0, [], []
        n[k] += 1
        voices, dur, short, cpu, cpu_short = num(r(4)), num(r(7)), num(r(8)), num(r(9)), num(r(10))
        vs = voices * (dur - short) * SR
        marg[k].append(awk_str((cpu - cpu_short) * 1e9 / vs))
        tot[k].append(awk_str(cpu * 1e9 / (voices * dur * SR)))
    return [H_COST] + ["%s,%d,%.6g,%.6g" % (k, n[k], num(median(marg[k])), num(median(tot[k])))
                       for k in order]


def host_row(histogram, secs):
    """cyclictest -q -h's output -> host.csv's row: CPUs, the median, p99 and max wake-up
    latency, and how many wake-ups were later than a 64-frame block, 4 of them, 4 of 256."""
    n, total, cpus, worst = {}, 0.0, 0, 0.0
    for line in histogram.splitlines():
        f = line.split()
        if line[:1].isdigit():
            counts = [num(x) for x in f[1:]]
            us = int(num(f[0]))
            n[us] = n.get(us, 0.0) + sum(counts)
            total += sum(counts)
            cpus = max(cpus, len(f) - 1)
        if line.startswith("# Max Latencies"):
            worst = max([worst] + [num(x) for x in f[3:]])
    seen = med = p99 = o1 = o5 = o21 = 0
    for us in sorted(u for u in n if 0 <= u <= 100000):
        seen += n[us]
        # as awk had it: a median of 0 us is no median yet, the next bucket's is taken
        if not med and seen >= total * 0.5:
            med = us
        if not p99 and seen >= total * 0.99:
            p99 = us
        o1 += n[us] if us >= 1333 else 0
        o5 += n[us] if us >= 5333 else 0
        o21 += n[us] if us >= 21333 else 0
    return "%d,%d,1000,%d,%d,%d,%d,%d,%d" % (cpus, int(secs), med, p99, worst, o1, o5, o21)


# ---- machine.txt ----


def machine_field(d, key):
    """The last value of KEY in DIR/machine.txt (a run of some parts into a DIR appends)."""
    try:
        with open(os.path.join(d, "machine.txt"), encoding="utf-8") as f:
            vals = [line[len(key) + 1:] for line in f.read().splitlines() if line.startswith(key + "=")]
    except OSError:
        return ""
    return vals[-1] if vals else ""


def machine_title(d):
    m, u, p = (machine_field(d, k) for k in ("model", "usable_cores", "physical_cores"))
    return "%s, %s cores%s" % (m or "unknown CPU", u or "?", " (%s physical)" % p if p else "")


def made_by(d):
    """The command lines of the runs into DIR."""
    try:
        with open(os.path.join(d, "machine.txt"), encoding="utf-8") as f:
            runs = ["`bench/scaling.sh %s`" % line[5:] for line in f.read().splitlines()
                    if line.startswith("args=")]
    except OSError:
        return ""
    # joined with ';' and every ';' then read as a separator, as sed did
    return ";".join(runs).replace(";", ", then ")


# ---- the report ----


def _exists(d, name):
    return os.path.isfile(os.path.join(d, name))


def report_offline(d, study, title):
    if not _exists(d, "offline.csv"):
        return []
    out = []
    for r in read_rows(os.path.join(d, "offline.csv"), skip_header=False):
        if r(1) != study or r(2) != "farm":
            continue
        if not out:
            weak = study == "weak"
            out.append("### %s (%d voices %s, %s s of audio, median of %s)" % (
                title, int(num(r(4)) / num(r(3))) if weak else awk_int(r(4)),
                "per worker" if weak else "in all", r(5), r(6)))
            out.append("")
            out.append("| workers | voices | median wall s | median CPU s | cores busy (CPU / wall) |"
                       " G voice-samples/s | G per CPU-second | speed-up | efficiency |")
            out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        busy = num(r(8)) / num(r(7)) if num(r(7)) > 0 else 0.0
        out.append("| %d | %d | %.3f | %.3f | %.2f | %.3f | %.3f | %.2fx | %.2f |" % (
            awk_int(r(3)), awk_int(r(4)), num(r(7)), num(r(8)), busy, num(r(9)) / 1e9,
            num(r(10)) / 1e9, num(r(11)), num(r(12))))
    return out + [""] if out else []


def report_peers(d):
    if not (_exists(d, "compare.csv") and _exists(d, "offline.csv")):
        return []
    with open(os.path.join(d, "compare.csv"), encoding="utf-8") as f:
        if f.read().count("\n") <= 1:  # --no-peers: nothing to compare
            return []
    offline = read_rows(os.path.join(d, "offline.csv"))
    out = []
    for r in offline:
        if r(1) == "peer" and r(2) == "farm":
            out += ["### The same workload on the peers (%d voices, %s s of audio, median of %s)" % (
                awk_int(r(4)), r(5), r(6)), ""]
            break
    k = machine_field(d, "sc_voices_per_synth") or "1"
    out += ["Per core: voice-samples per CPU-second of each engine's processes (pyo: per process,",
            "supernova: per thread, farm: per worker and its coordinator), and the ratios.",
            "SuperCollider: SinOscFB, %s voice(s) per synth, 256-frame blocks; supernova's synths in one ParGroup." % k,
            "",
            "| workers / processes / threads | farm G per CPU-s | pyo recipe | supernova -T N | scsynth |"
            " farm / pyo | farm / supernova | farm / scsynth | wall G/s: farm | pyo | supernova |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def g(x):
        return "-" if x == "" else "%.4f" % (num(x) / 1e9)

    def rx(x):
        return "-" if x == "" else x + "x"

    for r in read_rows(os.path.join(d, "compare.csv")):
        out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            awk_int(r(1)), g(r(2)), g(r(3)), g(r(4)), g(r(5)), rx(r(6)), rx(r(7)), rx(r(8)),
            g(r(9)), g(r(10)), g(r(11))))
    out.append("")
    own = [r for r in offline if r(1) == "peer" and r(2) != "farm"]
    if own:
        out += ["Peers' own scaling (wall throughput against their 1 process / thread):", "",
                "| engine | workers | G voice-samples/s | G per CPU-s | speed-up | efficiency |",
                "|---|---:|---:|---:|---:|---:|"]
        out += ["| %s | %d | %.4f | %.4f | %.2fx | %.2f |" % (
            r(2), awk_int(r(3)), num(r(9)) / 1e9, num(r(10)) / 1e9, num(r(11)), num(r(12))) for r in own]
        out.append("")
    return out


def report_realtime(d):
    if not _exists(d, "realtime.csv"):
        return []
    rows = read_rows(os.path.join(d, "realtime.csv"))
    out = []
    for i, r in enumerate(rows):
        if i == 0:
            # runs before the ring depth and the majority were columns: farm's 4 blocks, 1 probe
            out += ["### Real-time capacity (no late block over %s s, 48 kHz, bisection of %s steps,"
                    " a count late when most of %s probes were)" % (r(6), r(7), r(14) or "1"), "",
                    "| output | frames | ring blocks | workers | voices | first count late |"
                    " G voice-samples/s | offline: G per CPU-s x cores used | real time / offline |"
                    " callback median / p99 us |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        voices = "none found" if r(4) == "" else ("≥ " + r(4) if r(5) == "" else r(4))
        out.append("| %s | %d | %d | %d | %s | %s | %s | %.3f | %s | %s |" % (
            "jackd dummy, -R" if r(1) == "jack" else "null sink", awk_int(r(2)),
            awk_int(r(13) or "4"), awk_int(r(3)), voices, r(5) or "-",
            "-" if r(11) == "" else "%.3f" % (num(r(11)) / 1e9), num(r(10)) / 1e9,
            "-" if r(12) == "" else "%.2f" % num(r(12)), "-" if r(8) == "" else r(8) + " / " + r(9)))
    if rows:
        out.append("")
    if any(r(5) == "" and r(4) != "" for r in rows):
        out += ["≥: no probe was late, the count is the top of the bisection's range.", ""]
    if not _exists(d, "host.csv"):
        return out
    host = read_rows(os.path.join(d, "host.csv"))
    if host:
        h = [awk_int(x) for x in host[0][:9]] + [0] * (9 - len(host[0]))
        out += ["### The machine's own stalls (cyclictest, SCHED_FIFO, %d CPUs, every %d us for %d s)"
                % (h[0], h[2], h[1]), "",
                "| wake-up late, median us | p99 us | max us | later than 1333 us (64 frames) |"
                " than 5333 us (4 x 64) | than 21333 us (4 x 256) |",
                "|---:|---:|---:|---:|---:|---:|",
                "| %d | %d | %d | %d | %d | %d |" % tuple(h[3:9]), ""]
    return out


def oscillator_order(names):
    """The order mawk's `for (o in ch)` gave the channel rows: sineloop before sine."""
    known = [o for o in ("sineloop", "sine") if o in names]
    return known + [o for o in names if o not in known]


def report_cost(d):
    if not _exists(d, "cost.csv"):
        return []
    out = ["### Cost per voice-sample, one worker, offline (marginal CPU ns; with start-up in brackets)", ""]
    v, c, fv, fc, cv, ch = [], [], [], [], [], {}
    for r in read_rows(os.path.join(d, "cost.csv")):
        if r(1) == "voices":
            v.append(" %s |" % r(3))
            c.append(" %.3f (%.3f) |" % (num(r(7)), num(r(8))))
        elif r(1) == "frames":
            fv.append(" %s |" % r(4))
            fc.append(" %.3f |" % num(r(7)))
        elif r(1) == "channels":
            ch.setdefault(r(2), []).append(" %.3f |" % num(r(7)))
            if r(2) == "sineloop":
                cv.append(" %s |" % r(5))
    if v:
        out += ["| voices per worker (256 frames, stereo) |" + "".join(v), "|---|" + "---:|" * len(v),
                "| ns per voice-sample |" + "".join(c), ""]
    if fv:
        out += ["| block size, frames (10,000 voices) |" + "".join(fv), "|---|" + "---:|" * len(fv),
                "| ns per voice-sample |" + "".join(fc), ""]
    if cv:
        out += ["| channels (10,000 voices, 256 frames) |" + "".join(cv), "|---|" + "---:|" * len(cv)]
        out += ["| %s, ns per voice-sample |%s" % (o, "".join(ch[o])) for o in oscillator_order(list(ch))]
        out.append("")
    return out


def report_mix(d):
    if not _exists(d, "mix.csv"):
        return []
    ws, fl, cell = [], [], {}
    for r in read_rows(os.path.join(d, "mix.csv")):
        if r(1) not in ws:
            ws.append(r(1))
        if r(2) not in fl:
            fl.append(r(2))
        cell[r(1), r(2)] = "%.0f (%.3f%%)" % (num(r(6)), 100 * num(r(10)))
    out = ["### The coordinator's mix per callback (farm_mix, stereo, median ns; % of the block period)", "",
           "| workers |" + "".join(" %s frames |" % f for f in fl), "|---:|" + "---:|" * len(fl)]
    out += ["| %d |" % awk_int(w) + "".join(" %s |" % cell.get((w, f), "") for f in fl) for w in ws]
    return out + [""]


def make_report(d):
    loads = "".join(", after %s %s" % (p, machine_field(d, "load_after_" + p))
                    for p in ("offline", "realtime", "cost", "mix") if machine_field(d, "load_after_" + p))
    out = ["## CPU scaling study: " + machine_title(d), "",
           "%s; farm kernel %s; %s. Load average (1 min): %s at the start%s. Made by %s." % (
               machine_field(d, "date"), machine_field(d, "kernel"), machine_field(d, "os"),
               machine_field(d, "load_start"), loads, made_by(d)), ""]
    out += report_offline(d, "strong", "Strong scaling: farm render")
    out += report_offline(d, "weak", "Weak scaling: farm render")
    out += report_peers(d)
    out += report_realtime(d)
    out += report_cost(d)
    out += report_mix(d)
    return out


# ---- the plots' data: "x y" files, one per curve, for bench/plots/*.gp ----


def series(rows, cond, xcol, y):
    """Lines "x y" of the rows where cond holds and x and y are not empty; y is a column (its
    text as it is) or a function of the row (a number, written as awk printed it)."""
    out = []
    for r in rows:
        if not cond(r) or r(xcol) == "":
            continue
        val = r(y) if isinstance(y, int) else awk_str(y(r))
        if val != "":
            out.append("%s %s\n" % (r(xcol), val))
    return "".join(out)


def worker_range(rows, col=3):
    """An x range around the worker counts, for a log axis."""
    ws = [num(r(col)) for r in rows if r(col) != ""]
    return "%g:%g" % ((min(ws) if ws else 1) / 1.15, (max(ws) if ws else 2) * 1.15)


def write_series(d, t):
    """Every curve's file in T (empty: no curve), and T/info: KEY=VALUE lines for the plots."""
    info = {"title": machine_title(d), "cores": machine_field(d, "usable_cores") or "1"}

    def put(name, text):
        with open(os.path.join(t, name), "w", encoding="utf-8") as f:
            f.write(text)

    if _exists(d, "offline.csv"):
        o = read_rows(os.path.join(d, "offline.csv"))
        for study, engine, name in [("peer", e, "peer_" + e) for e in ("farm", "pyo", "supernova", "scsynth")] + \
                                   [(s, "farm", s) for s in ("strong", "weak")]:
            def cond(r, s=study, e=engine):
                return r(1) == s and r(2) == e
            put(name + ".vps", series(o, cond, 3, lambda r: num(r(9)) / 1e9))
            put(name + ".cpu", series(o, cond, 3, lambda r: num(r(10)) / 1e9))
            put(name + ".eff", series(o, cond, 3, 12))
        info["offline_xrange"] = worker_range(o)
    if _exists(d, "realtime.csv"):
        rt = read_rows(os.path.join(d, "realtime.csv"))
        pairs = []
        for r in rt:
            p = (r(2), r(13) or "4")
            if not any(num(q[0]) == num(p[0]) and num(q[1]) == num(p[1]) for q in pairs):
                pairs.append(p)
        pairs.sort(key=lambda p: (num(p[0]), num(p[1])))
        for f, ring in pairs:
            def cond(r, f=f, ring=ring):
                return num(r(2)) == num(f) and num(r(13) or "4") == num(ring)
            k = "rt%s.%s" % (f, ring)
            put(k + ".voices", series(rt, lambda r: cond(r) and r(4) != "", 3, 4))
            put(k + ".offline", series(rt, cond, 3, lambda r: num(r(10)) / SR))
            put(k + ".ratio", series(rt, lambda r: cond(r) and r(12) != "", 3, 12))
        info["rt_pairs"] = " ".join("%s:%s" % p for p in pairs)
        info["rt_xrange"] = worker_range(rt, 3)
        backends = []
        for r in rt:
            if r(1) not in backends:
                backends.append(r(1))
        info["rt_backend"] = " / ".join("jackd dummy driver, -R" if b == "jack" else "null sink" for b in backends)
    if _exists(d, "cost.csv"):
        c = read_rows(os.path.join(d, "cost.csv"))
        put("c_voices", series(c, lambda r: r(1) == "voices", 3, 7))
        put("c_voices_all", series(c, lambda r: r(1) == "voices", 3, 8))
        put("c_frames", series(c, lambda r: r(1) == "frames", 4, 7))
        for o in ("sineloop", "sine"):
            put("c_ch_" + o, series(c, lambda r, o=o: r(1) == "channels" and r(2) == o, 5, 7))
    if _exists(d, "mix.csv"):
        m = read_rows(os.path.join(d, "mix.csv"))
        frames = []
        for r in m:
            if not any(num(f) == num(r(2)) for f in frames):
                frames.append(r(2))
        frames.sort(key=num)
        for f in frames:
            put("mix" + f, series(m, lambda r, f=f: num(r(2)) == num(f), 1, lambda r: num(r(6)) / 1000))
        info["mix_frames"] = " ".join(frames)
    put("info", "".join("%s=%s\n" % kv for kv in info.items()))


# ---- what the runs are: the offline cases and the cost points ----


def offline_cases(peers, pyo, supernova, scsynth, workers):
    """"STUDY ENGINE WORKERS" for every worker count: farm's strong and weak scaling, the peers'
    workload on farm and on each peer found ("1"); scsynth (one thread) once, at the end."""
    out = []
    for w in workers:
        out += ["strong farm " + w, "weak farm " + w]
        out += ["peer %s %s" % (e, w) for e, on in (("farm", peers), ("pyo", pyo), ("supernova", supernova))
                if on != "0"]
    return out + (["peer scsynth 1"] if scsynth != "0" else [])


def cost_points(quick):
    """"AXIS OSCILLATOR VOICES FRAMES CHANNELS": voices per worker, block size, then channels for
    each oscillator (fewer points with --quick)."""
    vl = "1 3 10 30 100 300 1000 3000 10000 30000 100000 200000".split()
    fl, cl = "16 32 64 128 256 512 1024 2048".split(), "1 2 8 32".split()
    if quick:
        vl, fl, cl = "1 100 10000 200000".split(), "16 256 2048".split(), "1 32".split()
    return (["voices sineloop %s 256 2" % v for v in vl] + ["frames sineloop 10000 %s 2" % f for f in fl]
            + ["channels %s 10000 256 %s" % (o, c) for o in ("sineloop", "sine") for c in cl])


def cost_durations(work, voices, frames, quick):
    """A cost point's render: a whole number of blocks sized for WORK voice-samples (0.5 s to
    300 s of audio, 30 s with --quick); its short render is 4 blocks, so the difference is
    rendering alone, start-up excluded. Both in seconds, "%.9f"."""
    f, q = num(frames), num(quick) != 0
    d = num(work) / (num(voices) * SR)
    d = min(max(d, 0.5), 30 if q else 300)
    blocks = int(d * SR / f + 0.999)
    return "%.9f" % (blocks * f / SR), "%.9f" % (4 * f / SR)


# ---- scaling.sh's command line: every check before anything is written ----
#
# The parsing and checks were bash; these keep its quirks on purpose (the same input is refused
# or accepted as before, with the same one-line message, exit 2): lists are split as
# `IFS=, read -a` splits them, counts are read as bash's arithmetic reads them.

HELP_OPTS = ("-h", "--help")
VALUE_OPTS = ("--plot-only", "--only", "--workers", "--reps", "--duration", "--strong-voices",
              "--weak-voices", "--peer-voices", "--peer-duration", "--sc-voices-per-synth",
              "--rt-seconds", "--rt-steps", "--rt-frames", "--rt-backend", "--cost-work",
              "--cost-reps", "--rt-ring-blocks", "--rt-confirm")
# the variable each option with a value sets (scaling.sh's names)
VAR = {"--plot-only": "plot_only", "--workers": "workers_list", "--sc-voices-per-synth": "sc_per_synth",
       "--rt-frames": "rt_frames_list", "--rt-ring-blocks": "rt_rings_list"}
PARTS = ("offline", "realtime", "cost", "mix")


class BadInput(Exception):
    """Bad input: scaling.sh says the message and exits 2."""


def bash_read_list(value):
    """`IFS=, read -r -a A <<<"$value"`: the first line, split at commas, with one empty field
    at the end dropped (so "" is no field, "," one empty field, "a,,b" three)."""
    line = value.split("\n", 1)[0]
    if line == "":
        return []
    fields = line.split(",")
    if len(fields) > 1 and fields[-1] == "":
        fields.pop()
    return fields


def bash_int(text, base10=False):
    """Digits as bash's arithmetic reads them: 64-bit, wrapping; a leading 0 means octal unless
    base10 (10#). None where bash would stop with an error (8 or 9 in an octal number)."""
    if not base10 and len(text) > 1 and text[0] == "0":
        if not re.fullmatch(r"[0-7]+", text):
            return None
        v = int(text, 8)
    else:
        v = int(text)
    v %= 1 << 64
    return v - (1 << 64) if v >= 1 << 63 else v


def is_uint(text):
    """lib.sh's is_uint: digits, and above 0 in bash's 64-bit arithmetic."""
    return re.fullmatch(r"[0-9]+", text) is not None and bash_int(text, base10=True) > 0


def is_pos(text):
    """lib.sh's is_pos: a plain decimal number (exponent allowed) above 0."""
    return re.fullmatch(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][0-9]+)?", text) is not None and float(text) > 0


def uint_list(name, value):
    """A comma-separated list of positive integers, as numbers (awk's $1 + 0), sorted, without
    repeats (sort -n -u)."""
    items = bash_read_list(value)
    if not items:
        raise BadInput("%s wants a comma-separated list, not '%s'" % (name, value))
    for v in items:
        if not is_uint(v):
            raise BadInput("%s wants positive integers, not '%s' in '%s'" % (name, v, value))
    out = []
    for v in sorted((awk_str(float(v)) for v in items), key=num):
        if not out or num(out[-1]) != num(v):
            out.append(v)
    return out


def default_workers(usable):
    """1, 2, 4, ... below the usable cores, the cores, twice the cores."""
    out, w = [], 1
    while w < usable:
        out.append(str(w))
        w *= 2
    return out + [str(usable), str(2 * usable)]


def parse_options(argv, usable):
    """scaling.sh's arguments -> its settings (a dict of text and lists); raises BadInput.
    mode is help, self-test or plot-only (the other settings as given, unchecked, as before)
    or run (defaults filled in, everything checked)."""
    o = dict(quick="0", self_test_mode="0", plot_only="", outdir="", only="offline,realtime,cost,mix",
             workers_list="", reps="", duration="", strong_voices="", weak_voices="", peer_voices="",
             peer_duration="", peers="1", sc_per_synth="1", rt_seconds="", rt_steps="",
             rt_frames_list="64,256", rt_backend="", rt_rings_list="default", rt_confirm="",
             cost_work="", cost_reps="", no_install="0")
    flags = {"--quick": "quick", "--self-test": "self_test_mode", "--no-install": "no_install"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in HELP_OPTS:
            o["mode"] = "help"
            return o
        if a in flags:
            o[flags[a]] = "1"
        elif a == "--no-peers":
            o["peers"] = "0"
        elif a in VALUE_OPTS:
            if i + 1 >= len(argv):
                raise BadInput("%s needs a value (see --help)" % a)
            o[VAR.get(a, a[2:].replace("-", "_"))] = argv[i + 1]
            i += 1
        elif a.startswith("-"):
            raise BadInput("unknown option: %s (see --help)" % a)
        else:
            if o["outdir"]:
                raise BadInput("only one OUTDIR may be given (got '%s' and '%s')" % (o["outdir"], a))
            o["outdir"] = a
        i += 1
    if o["self_test_mode"] == "1":
        o["mode"] = "self-test"
        return o
    if o["plot_only"]:
        d = o["plot_only"]
        if o["outdir"]:
            raise BadInput("--plot-only takes its directory and no OUTDIR")
        if not os.path.isdir(d):
            raise BadInput("--plot-only: no directory %s" % d)
        if not any(_exists(d, f) for f in ("offline.csv", "realtime.csv", "cost.csv", "mix.csv")):
            raise BadInput("--plot-only: %s holds none of offline.csv, realtime.csv, cost.csv, mix.csv" % d)
        o["mode"] = "plot-only"
        return o
    check_run_options(o, usable)
    o["mode"] = "run"
    return o


def check_run_options(o, usable):
    """A run's defaults (--quick's where it differs) and checks, in the order bash made them."""
    if not o["outdir"]:
        raise BadInput("an OUTDIR is needed (see --help)")
    quick = o["quick"] == "1"
    for k, full, short in (("reps", "5", "1"), ("duration", "10", "1"), ("peer_duration", "4", "0.5"),
                           ("rt_seconds", "20", "5"), ("rt_steps", "5", "3"), ("rt_confirm", "3", "1"),
                           ("cost_work", "2e9", "2e8"), ("cost_reps", "3", "1")):
        o[k] = o[k] or (short if quick else full)
    o["strong_voices"] = o["strong_voices"] or str(max(usable * 10000, 20000))
    o["weak_voices"] = o["weak_voices"] or "10000"
    o["peer_voices"] = o["peer_voices"] or "2000"
    for k in ("reps", "cost_reps", "rt_steps"):
        if not is_uint(o[k]):
            raise BadInput("--%s wants a positive integer, not '%s'" % (k.replace("_", "-"), o[k]))
    c = o["rt_confirm"]
    n = bash_int(c) if is_uint(c) else None
    if n is None or n % 2 != 1 or n > 9:
        raise BadInput("--rt-confirm wants an odd count of probes in 1..9, not '%s'" % c)
    k = o["sc_per_synth"]
    n = bash_int(k) if is_uint(k) else None
    if n is None or n > 1000:
        raise BadInput("--sc-voices-per-synth wants an integer in 1..1000, not '%s'" % k)
    for k in ("strong_voices", "weak_voices", "peer_voices"):
        if not is_uint(o[k]):
            raise BadInput("--%s wants a positive integer, not '%s'" % (k.replace("_", "-"), o[k]))
    for k in ("duration", "peer_duration", "rt_seconds", "cost_work"):
        if not is_pos(o[k]):
            raise BadInput("--%s wants a positive number, not '%s'" % (k.replace("_", "-"), o[k]))
    if o["workers_list"]:
        o["workers"] = uint_list("--workers", o["workers_list"])
    else:
        o["workers"] = default_workers(usable)
    o["rt_frames"] = uint_list("--rt-frames", o["rt_frames_list"])
    o["rt_rings"] = ["default"]
    if o["rt_rings_list"] != "default":
        o["rt_rings"] = uint_list("--rt-ring-blocks", o["rt_rings_list"])
        for v in o["rt_rings"]:
            n = int(num(v))
            if not (2 <= n <= 64 and n & (n - 1) == 0):
                raise BadInput("--rt-ring-blocks wants powers of two in 2..64 or default, not '%s'" % v)
    for p in bash_read_list(o["only"]):
        if p not in PARTS:
            raise BadInput("--only wants offline, realtime, cost or mix, not '%s'" % p)
    b = o["rt_backend"] or "auto"
    if b == "auto":
        o["rt_backend"] = "jack" if shutil.which("jackd") else "null"
    elif b not in ("jack", "null"):
        raise BadInput("--rt-backend wants jack or null, not '%s'" % o["rt_backend"])


def shell_assignments(o):
    """The settings as bash assignments for scaling.sh to eval: every value quoted (shlex), so
    nothing in an argument is run; lists become arrays."""
    out = []
    for k, v in o.items():
        if isinstance(v, list):
            out.append("%s=(%s)" % (k, " ".join(shlex.quote(x) for x in v)))
        else:
            out.append("%s=%s" % (k, shlex.quote(v)))
    return "".join(x + "\n" for x in out)


# ---- real time: one probe's summary, the majority of probes, the bisection ----


def _sed_first(pattern, lines):
    """`sed -n 's/PATTERN/.../p' | head -n 1`: the groups of the first line that matches (the
    patterns start with .*, so the last occurrence on that line, as sed's longest match)."""
    for line in lines:
        m = re.match(pattern, line)
        if m:
            return m.groups()
    return None


def _sort_g_key(s):
    """sort -g's order: non-numbers first, then by value; ties by their bytes."""
    m = _NUM.match(s)
    return (0, 0.0, s) if not m else (1, float(m.group(0)), s)


def probe_row(backend, frames, workers, voices, secs, text):
    """farm's summary of one real-time probe -> (its realtime_runs.csv row, its log line), or
    None when it lacks the late blocks, the callback times or the ring depth."""
    lines = text.rstrip("\n").split("\n")
    late = _sed_first(r".*late blocks ([0-9]*)", lines)
    under = _sed_first(r".*underflows ([0-9]*)", lines)
    cb = _sed_first(r".*median ([0-9.]*) us, p99 ([0-9.]*) us, max ([0-9.]*) us", lines)
    # the depth as played: farm's own default is sized by the block (10 ms)
    ring = _sed_first(r".*lowest ring fill [0-9]*/([0-9]*)", lines)
    # A worker's longest render of one block, in % of the period: one block's work is fixed, so
    # far above its load this is time the worker's core was taken from it, not load.
    peaks = [re.sub(r"[^0-9.]", "", p) for p in re.findall(r"peak *[0-9.]*%", text)]
    peak = max(peaks, key=_sort_g_key) if peaks else ""
    if not (late and re.fullmatch(r"[0-9]+", late[0]) and cb and ring and ring[0]):
        return None
    late, under, cb, ring = late[0], under[0] if under else "", ",".join(cb), ring[0]
    row = "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s" % (backend, frames, workers, voices, secs, late, under or "0",
                                             cb, ring, peak)
    log = ("realtime %-4s %4d frames  ring %2s  workers %3d  %8d voices  late %5d  underflows %4s"
           "  peak render %6s%%  callback median,p99,max %s us") % (
        backend, int(frames), ring, int(workers), int(voices), int(late), under or "?", peak or "?", cb)
    return row, log


def rt_majority(confirm, rows):
    """A count is late when most of up to CONFIRM probes of it are: ROWS, its probes so far
    (realtime_runs.csv rows), ask for another ("probe") only while the majority is undecided.
    One stall of the machine (a vCPU taken by the host for longer than the ring holds) spoils
    one probe of 20 s at any load; too many voices spoil them all. Decided: "LATE CALLBACK",
    LATE 1 or 0 and CALLBACK the last clean probe's median,p99,max (empty when none was)."""
    majority = (int(confirm) + 1) // 2
    clean = late = 0
    cb = ""
    for r in rows:
        f = r.split(",")
        if int(f[5]) == 0:
            clean += 1
            cb = ",".join(f[7:10])
        else:
            late += 1
    if clean < majority and late < majority:
        return "probe"
    return "%d %s" % (late >= majority, cb)


def rt_next(backend, frames, workers, secs, steps, confirm, offline, played, decided):
    """The bisection for the largest count with no late block: STEPS halvings between 0 and
    1.25x OFFLINE (voice-samples per second) in voices, never below one voice per worker.
    DECIDED: "COUNT:LATE:CALLBACK" of the counts decided so far, in order. Returns "probe N"
    for the next count to decide, or, when done, realtime.csv's row (PLAYED: the ring depth
    the last probe played)."""
    w = int(workers)
    lo, hi = 0, int(1.25 * num(offline) / SR + 1)
    best = first_late = ""
    cb = ",,"
    for s in range(int(steps)):
        mid = max((lo + hi) // 2, w)
        if s >= len(decided):
            return "probe %d" % mid
        count, late, d_cb = decided[s].split(":", 2)
        if int(count) != mid:
            raise ValueError("decided %s where the bisection asked for %d" % (count, mid))
        if int(late) == 0:
            lo = best = mid
            cb = d_cb
        else:
            hi = first_late = mid
            if mid <= w:
                break  # late with one voice per worker: nothing lower to try
    cap = ratio = ""
    if best != "":
        cap = "%.6g" % (best * SR)
        ratio = "%.4f" % (num(cap) / num(offline) if num(offline) > 0 else 0)
    return ",".join(str(x) for x in (backend, frames, workers, best, first_late, secs, steps,
                                     cb.rsplit(",", 1)[0], offline, cap, ratio, played, confirm))


def offline_vps(d, workers, usable):
    """What the offline render does on the cores these workers can use: strong scaling's
    voice-samples per CPU-second at this worker count times min(workers, cores), "%.6g"; empty
    without such a row. CPU time, not wall time, so that other tenants' load at the offline runs
    does not shrink the bracket or flatter the ratio."""
    if not _exists(d, "offline.csv"):
        return ""
    eff = min(int(workers), int(usable))
    return "".join("%.6g" % (num(r(10)) * eff) for r in read_rows(os.path.join(d, "offline.csv"), skip_header=False)
                   if r(1) == "strong" and r(2) == "farm" and r(3) != "" and num(r(3)) == num(workers))

# ---- command line ----


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if cmd == "offline" and len(args) == 1:
        d = args[0]
        write_lines(os.path.join(d, "offline.csv"), summarize_offline(read_rows(os.path.join(d, "offline_runs.csv"))))
        write_lines(os.path.join(d, "compare.csv"), compare_peers(read_rows(os.path.join(d, "offline.csv"))))
    elif cmd == "cost" and len(args) == 1:
        d = args[0]
        write_lines(os.path.join(d, "cost.csv"), summarize_cost(read_rows(os.path.join(d, "cost_runs.csv"))))
    elif cmd == "host" and len(args) == 3:
        with open(args[2], encoding="utf-8", errors="replace") as f:
            write_lines(args[0], [H_HOST, host_row(f.read(), args[1])])
    elif cmd == "report" and len(args) == 1:
        write_lines(os.path.join(args[0], "report.md"), make_report(args[0]))
    elif cmd == "series" and len(args) == 2:
        write_series(args[0], args[1])
    elif cmd == "title" and len(args) == 1:
        print(machine_title(args[0]))
    elif cmd == "options" and len(args) >= 1:
        try:
            sys.stdout.write(shell_assignments(parse_options(args[1:], int(args[0]))))
        except BadInput as e:
            sys.stderr.write("scaling: %s\n" % e)
            return 2
    elif cmd == "probe" and len(args) == 6:
        with open(args[5], encoding="utf-8", errors="replace") as f:
            got = probe_row(*args[:5], text=f.read())
        if got is None:
            return 1
        print("%s\n%s" % got)
    elif cmd == "rt-majority" and len(args) >= 1:
        print(rt_majority(args[0], args[1:]))
    elif cmd == "rt-next" and len(args) >= 8:
        print(rt_next(*args[:8], decided=args[8:]))
    elif cmd == "headers" and not args:
        sys.stdout.write(shell_assignments({h: globals()[h] for h in HEADERS}))
    elif cmd == "offline-cases" and len(args) >= 4:
        sys.stdout.write("".join(c + "\n" for c in offline_cases(*args[:4], workers=args[4:])))
    elif cmd == "cost-points" and len(args) == 1:
        sys.stdout.write("".join(p + "\n" for p in cost_points(args[0] == "1")))
    elif cmd == "cost-durations" and len(args) == 4:
        print("%s %s" % cost_durations(*args))
    elif cmd == "rt-offline" and len(args) == 3:
        sys.stdout.write(offline_vps(args[0], args[1], args[2]))
        print()
    else:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
