#!/usr/bin/env python3
"""The scaling study's summaries, report and plot data (bench/scaling.sh), from its CSVs.

  report.py offline DIR          DIR/offline_runs.csv -> DIR/offline.csv and DIR/compare.csv
  report.py cost DIR             DIR/cost_runs.csv -> DIR/cost.csv
  report.py host OUT SECS FILE   cyclictest's histogram (-q -h) -> OUT (host.csv)
  report.py report DIR           DIR's CSVs and machine.txt -> DIR/report.md
  report.py series DIR TMP       the plots' "x y" files and TMP/info for bench/plots/*.gp
  report.py title DIR            "MODEL, N cores (P physical)" from DIR/machine.txt

Standard library only. The figures were first written by awk (mawk), and runs from before
this program are redrawn with --plot-only: so numbers are turned into text the way mawk does
(awk_str), and raw CSV fields are copied as they are, so that the same CSVs give the same bytes.
"""

import os
import re
import sys

SR = 48000

H_OFFLINE = "study,engine,workers,voices,duration_s,reps,wall_s,cpu_s,vps,vps_per_cpu_s,speedup,efficiency"
H_COMPARE = ("workers,farm_vps_per_cpu_s,pyo_vps_per_cpu_s,supernova_vps_per_cpu_s,scsynth_vps_per_cpu_s,"
             "farm_over_pyo,farm_over_supernova,farm_over_scsynth,farm_vps,pyo_vps,supernova_vps")
H_COST = "axis,oscillator,voices,frames,channels,reps,ns_per_vs,ns_per_vs_with_startup"
H_HOST = "cpus,seconds,interval_us,median_us,p99_us,max_us,over_1333us,over_5333us,over_21333us"

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
    else:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
