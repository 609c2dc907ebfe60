#!/usr/bin/env python3
"""kernel_roofline.py - the kernel's hot loop counted from the built objects, and the bound it
allows in voice-samples per cycle.

For every kernel CMake built (dsp/CMakeLists.txt builds dsp/kernel.c once per instruction set,
into <build>/dsp/CMakeFiles/dsp_kernel_<isa>.dir/kernel.c.o), this disassembles the object with
objdump and finds the natural loops of its functions (a back edge to a block that dominates it).
A kernel loop converts one phase per vector of a group from integer to float (DSP_GROUP / width
conversions per frame) and is mostly packed floating-point arithmetic; where the loop over a
group's vectors stayed rolled, the frame loop around it counts, with the inner loop repeated.
Among the kernel loops, the stereo path without ramps (the hottest) is the smallest that stores
two accumulator vectors outside the stack per frame.

It classifies that loop's instructions per vector-frame, and computes for a model of a few cores
the fewest cycles an iteration can take:
- on the ports: each instruction may go to any port of its set, so the bound is the largest,
  over every set of ports S, of the work that can only run on S divided by |S|; or the front
  end's width;
- through the dependencies: the iteration's chains (registers, and stores read back) followed
  over 40 iterations with unlimited ports; for a loop that is one straight run of code only.
The bound in voice-samples per cycle is DSP_GROUP x frames per iteration over the larger. It
leaves out the per-block work (clearing and reducing the accumulator, the bookkeeping).

Nothing is hard-coded about the loop: when the kernel changes, the counts follow. When no loop
fits, it says what it saw and exits 1.

    bench/kernel_roofline.py [--build DIR] [--bench FILE]... [--model NAME] [--check] [-v]

--bench takes bench_kernel's output (its markdown table, or its --csv file); several are
combined by their median. The port models and their sources are in docs/kernels.md (Roofline).
"""
import argparse
import glob
import itertools
import os
import re
import statistics
import subprocess
import sys

# ---- the port models ----
#
# Each maps a class of instruction and a vector width to (set of ports, cost in port-cycles).
# Loads and stores have their own ports. "fe" is the front end's width in instructions per cycle
# (a loop cannot issue faster, whatever its ports). Sources: docs/kernels.md, Roofline.

INTEL_SKYLAKE = {
    "name": "Intel Skylake(-SP) / Cascade Lake",
    "fe": 4,
    # latency in cycles, per class (width None: any); a store read back costs "forward"
    "lat": {"fma": 4, "mul": 4, "add": 4, "cvt": 4, "int": 1, "shuffle": 3, "load": 6,
            "scalar": 1, "vmove": 0, "store": 0, "forward": 5},
    "ports": {
        # class: {width: (ports, cost)}; width None: any
        "fma": {"zmm": ("p0 p5", 1), None: ("p0 p1", 1)},
        "mul": {"zmm": ("p0 p5", 1), None: ("p0 p1", 1)},
        "add": {"zmm": ("p0 p5", 1), None: ("p0 p1", 1)},
        "cvt": {"zmm": ("p0 p5", 1), None: ("p0 p1", 1)},
        "int": {"zmm": ("p0 p5", 1), None: ("p0 p1 p5", 1)},
        "shuffle": {None: ("p5", 1)},
        "scalar": {None: ("p0 p1 p5 p6", 1)},
        "load": {None: ("L2 L3", 1)},
        "store": {None: ("S4", 1)},
    },
}

INTEL_GOLDEN_COVE = {
    "name": "Intel Golden Cove (Sapphire Rapids)",
    "fe": 6,
    # the fast adders (ports 1 and 5, up to 256 bits) take 2 cycles; 512-bit adds 4
    "lat": {"fma": 4, "mul": 4, "add": {"zmm": 4, None: 2}, "cvt": 4, "int": 1, "shuffle": 3,
            "load": 6, "scalar": 1, "vmove": 0, "store": 0, "forward": 5},
    "ports": {
        "fma": {"zmm": ("p0 p5", 1), None: ("p0 p1", 1)},
        "mul": {"zmm": ("p0 p5", 1), None: ("p0 p1", 1)},
        # Golden Cove's fast adders are on ports 1 and 5, for 128/256 bits. (LLVM's Sapphire
        # Rapids model has these adds on ports 0/1 with 4 cycles, and 512-bit FP on port 0 alone;
        # measured on a Sapphire Rapids VM, docs/kernels.md: 1.89 zmm FMAs per cycle, a ymm add
        # in 2 cycles, a ymm FMA and a ymm add together every 0.69 cycles.)
        "add": {"zmm": ("p0 p5", 1), None: ("p1 p5", 1)},
        "cvt": {"zmm": ("p0 p5", 1), None: ("p0 p1", 1)},
        "int": {"zmm": ("p0 p5", 1), None: ("p0 p1 p5", 1)},
        "shuffle": {None: ("p5", 1)},
        "scalar": {None: ("p0 p1 p5 p6 p10", 1)},
        "load": {"zmm": ("L2 L3", 1), None: ("L2 L3 L11", 1)},
        "store": {"zmm": ("S4", 1), None: ("S4 S9", 1)},
    },
}

AMD_ZEN = {
    "name": "AMD Zen 2/3 (zmm: Zen 4, 2 passes)",
    "fe": 6,
    "lat": {"fma": {"zmm": 4, None: 5}, "mul": 3, "add": 3, "cvt": 3, "int": 1, "shuffle": 3,
            "load": 7, "scalar": 1, "vmove": 0, "store": 0, "forward": 7},
    "ports": {
        # Zen 2/3: 256-bit pipes, FP0/FP1 multiply and FMA, FP2/FP3 add; vector integer on all
        # four. Zen 4 runs a 512-bit operation through a 256-bit pipe twice.
        "fma": {"zmm": ("F0 F1", 2), None: ("F0 F1", 1)},
        "mul": {"zmm": ("F0 F1", 2), None: ("F0 F1", 1)},
        "add": {"zmm": ("F2 F3", 2), None: ("F2 F3", 1)},
        "cvt": {"zmm": ("F2 F3", 2), None: ("F2 F3", 1)},
        "int": {"zmm": ("F0 F1 F2 F3", 2), None: ("F0 F1 F2 F3", 1)},
        "shuffle": {"zmm": ("F1 F2", 2), None: ("F1 F2", 1)},
        "scalar": {None: ("A0 A1 A2 A3", 1)},
        "load": {"zmm": ("L0 L1", 2), None: ("L0 L1", 1)},
        "store": {"zmm": ("S0", 2), None: ("S0", 1)},
    },
}

MODELS = {"skylake": INTEL_SKYLAKE, "goldencove": INTEL_GOLDEN_COVE, "zen": AMD_ZEN}

# ---- disassembly ----

INSN = re.compile(r"^\s*([0-9a-f]+):\s+(.*)$")
FUNC = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
PREFIXES = {"notrack", "bnd", "rep", "repz", "repnz", "repe", "repne", "lock", "data16", "cs", "ds"}


def disassemble(objdump, path):
    """{function: [(addr, mnemonic, operands)]} from objdump -d (Intel syntax)."""
    try:
        text = subprocess.run([objdump, "-d", "-w", "--no-show-raw-insn", "-M", "intel", path],
                              check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("kernel_roofline: %s -d %s failed: %s" % (objdump, path, e))
    funcs, cur = {}, None
    for line in text.splitlines():
        m = FUNC.match(line)
        if m:
            cur = funcs.setdefault(m.group(2), [])
            continue
        m = INSN.match(line)
        if m and cur is not None:
            parts = m.group(2).split(None, 1)
            while parts and parts[0] in PREFIXES:
                parts = parts[1].split(None, 1) if len(parts) > 1 else []
            if not parts or parts[0].startswith("("):
                continue
            cur.append((int(m.group(1), 16), parts[0].lower(), parts[1] if len(parts) > 1 else ""))
    return funcs


def branch_target(ops):
    m = re.match(r"^([0-9a-f]+)\s*(<[^>]*>)?\s*$", ops.strip())
    return int(m.group(1), 16) if m else None


def is_jump(mn):
    return mn.startswith("j")


def ends_flow(mn):
    return mn in ("ret", "retq", "ud2", "hlt") or mn.startswith("jmp")


# ---- control flow: blocks, dominators, natural loops ----


def blocks_of(insns):
    """Basic blocks as (start index, end index exclusive) and successor lists."""
    addr_ix = {a: i for i, (a, _, _) in enumerate(insns)}
    leaders = {0}
    for i, (a, mn, ops) in enumerate(insns):
        if is_jump(mn) or ends_flow(mn):
            if i + 1 < len(insns):
                leaders.add(i + 1)
            t = branch_target(ops) if is_jump(mn) else None
            if t is not None and t in addr_ix:
                leaders.add(addr_ix[t])
    starts = sorted(leaders)
    blocks = [(s, starts[k + 1] if k + 1 < len(starts) else len(insns)) for k, s in enumerate(starts)]
    bix = {s: k for k, (s, _) in enumerate(blocks)}
    succ = []
    for s, e in blocks:
        a, mn, ops = insns[e - 1]
        out = []
        if is_jump(mn):
            t = branch_target(ops)
            if t is not None and t in addr_ix:
                out.append(bix[addr_ix[t]])
        if not ends_flow(mn) and e < len(insns):
            out.append(bix[e])
        succ.append(out)
    return blocks, succ


def dominators(n, succ):
    """Iterative dominator sets from a virtual root above block 0 and every block without
    predecessors (code reached only through a jump table)."""
    preds = [[] for _ in range(n)]
    for u in range(n):
        for v in succ[u]:
            preds[v].append(u)
    roots = {0} | {v for v in range(n) if not preds[v]}
    allb = set(range(n))
    dom = [({v} if v in roots else set(allb)) for v in range(n)]
    changed = True
    while changed:
        changed = False
        for v in range(n):
            if v in roots:
                continue
            new = set(allb)
            for p in preds[v]:
                new &= dom[p]
            new = (new if preds[v] else set()) | {v}
            if new != dom[v]:
                dom[v], changed = new, True
    return dom, preds


def natural_loops(insns):
    """({header block: set of blocks} of every natural loop, the blocks)."""
    if not insns:
        return {}, []
    blocks, succ = blocks_of(insns)
    dom, preds = dominators(len(blocks), succ)
    loops = {}
    for u in range(len(blocks)):
        for h in succ[u]:
            if h in dom[u]:  # a back edge
                body, stack = {h, u}, [u]
                while stack:
                    x = stack.pop()
                    if x == h:
                        continue
                    for p in preds[x]:
                        if p not in body:
                            body.add(p)
                            stack.append(p)
                loops.setdefault(h, set()).update(body)
    return loops, blocks


# ---- classifying instructions ----

VREG = re.compile(r"\b([xyz]mm)\d+\b")
CLASSES = ["fma", "mul", "add", "cvt", "int", "shuffle", "vmove", "load", "store", "scalar"]


def operands(ops):
    out, depth, cur = [], 0, ""
    for ch in ops:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return [o for o in out if not o.startswith("{")]


def classify(mn, ops):
    """(class, vector width or None, loads, stores) of one instruction. Class "load"/"store" is a
    pure move to or from memory; any other class may also read memory (loads = 1)."""
    opl = operands(ops)
    widths = VREG.findall(ops)
    width = "zmm" if "zmm" in widths else "ymm" if "ymm" in widths else "xmm" if widths else None
    mem = [i for i, o in enumerate(opl) if "[" in o]
    if mn in ("lea", "nop", "nopw", "nopl") or mn.startswith("nop") or mn.startswith("prefetch"):
        return ("scalar", None, 0, 0)
    store = bool(mem) and mem[0] == 0 and not re.match(r"^(cmp|test|j|call|push|bt)", mn)
    load = bool(mem) and not store
    b = mn[1:] if mn.startswith("v") and width else mn
    if re.match(r"^f(n)?m(add|sub)(sub|add)?(132|213|231)?(ps|pd|ss|sd|ph)$", b):
        cls = "fma"
    elif re.match(r"^mul(ps|pd|ss|sd)$", b):
        cls = "mul"
    elif re.match(r"^(add|sub|min|max|addsub)(ps|pd|ss|sd)$", b):
        cls = "add"
    elif b.startswith("cvt"):
        cls = "cvt"
    elif re.match(r"^(mov(aps|apd|ups|upd|dqa|dqu|dqa32|dqa64|dqu8|dqu16|dqu32|dqu64|ss|sd))$", b):
        if store:
            return ("store", width, 0, 1)
        if load:
            return ("load", width, 1, 0)
        return ("vmove", width, 0, 0)
    elif re.match(r"^(p)?broadcast", b) or re.match(r"^broadcast", b):
        if load:
            return ("load", width, 1, 0)
        cls = "shuffle"
    elif re.match(r"^(shuf|unpck|perm|pshuf|palignr|extract|insert|movhlps|movlhps|movs[hl]dup|"
                  r"align|pexpand|expand|compress|pack|punpck)", b):
        cls = "shuffle"
    elif re.match(r"^(p?xor|xorp|pxor)", b) and len(opl) >= 2 and len(set(opl[-2:])) == 1 and (
            len(opl) == 2 or opl[0] == opl[1] or opl[1] == opl[2]):
        # xor of a register with itself: a zeroing idiom, no execution port
        return ("vmove", width, 0, 0)
    elif width or mn.startswith("k"):
        cls = "int"  # vector integer and logic, blends, masks, movd/movq
    else:
        cls = "scalar"
    if store and cls != "scalar":
        return (cls, width, 0, 1)
    return (cls, width, int(load), int(store))


# ---- finding the hot loop ----


def loop_stats(insns, blocks, parts):
    """Counts for one iteration of a loop made of parts [(blocks, times per iteration)]; stores
    outside the stack count in the first part only (the frame loop's own code)."""
    st = {c: 0 for c in CLASSES}
    st.update(total=0, loads=0, stores=0, acc_stores=0, fp=0, widths=set(), conv=0)
    uops = []  # (class, width) for the port model, loads and stores as their own
    ix_all = sorted(i for b in parts[0][0] for i in range(*blocks[b]))
    st["first"] = insns[ix_all[0]][0]
    # The recurrence is followed through a loop that is one straight run of code only.
    st["seq"] = [insns[i] for i in ix_all] if len(parts) == 1 and len(parts[0][0]) == 1 else None
    for part, (body, times) in enumerate(parts):
        for i in sorted(i for b in body for i in range(*blocks[b])):
            _, mn, ops = insns[i]
            for _ in range(times):
                count_insn(st, uops, mn, ops, part == 0)
    st["uops"] = uops
    return st


def count_insn(st, uops, mn, ops, own):
    cls, width, ld, sto = classify(mn, ops)
    reads, writes = bool(ld or cls == "load"), bool(sto or cls == "store")
    st["total"] += 1
    st[cls] += 1
    if width:
        st["widths"].add(width)
    st["loads"] += reads
    st["stores"] += writes
    if cls in ("fma", "mul", "add") and width and not re.search(r"s[sd]$", mn):
        st["fp"] += 1
    if re.search(r"cvtdq2ps", mn):
        st["conv"] += 1
    if own and writes and width and not re.search(r"\[(rsp|rbp|esp|ebp)\b", ops):
        st["acc_stores"] += 1
    if cls not in ("load", "store"):
        uops.append((cls, width))
    if reads:
        uops.append(("load", width))
    if writes:
        uops.append(("store", width))


def widest(widths):
    return {"zmm": 16, "ymm": 8, "xmm": 4}.get(
        "zmm" if "zmm" in widths else "ymm" if "ymm" in widths else "xmm" if widths else "", 0)


def find_hot_loop(funcs, group0, isa, verbose, kind):
    """The stereo non-ramp loop of the voice kind's kernel: (function, stats, frames per
    iteration, width, voices per call). A kernel that renders two groups per call
    (KIND_run_pair_ISA, dsp/kernel_frame.h) renders its steady groups with that loop, so it is the
    one taken where it exists. Exits 1 when there is none."""
    kernel_loops, seen = [], []
    for name, insns in funcs.items():
        if not name.startswith(kind + "_run_"):
            continue
        group = 2 * group0 if name.startswith(kind + "_run_pair_") else group0
        loops, blocks = natural_loops(insns)
        # children: the loops nested directly in each
        inside = {h: [h2 for h2 in loops if h2 != h and h2 in b and loops[h2] < b]
                  for h, b in loops.items()}
        inner_st = {h: loop_stats(insns, blocks, [(b, 1)]) for h, b in loops.items()
                    if not inside[h]}
        for h, body in loops.items():
            kids = inside[h]
            if not kids:
                st = inner_st[h]
            elif len(kids) == 1 and kids[0] in inner_st and inner_st[kids[0]]["conv"]:
                # The frame loop around a loop over the group's vectors that the compiler did
                # not unroll: the inner loop runs once per conversion it lacks.
                kid = inner_st[kids[0]]
                width = widest(kid["widths"])
                if not width or (group // width) % kid["conv"]:
                    continue
                own = body - loops[kids[0]]
                st = loop_stats(insns, blocks,
                                [(own, 1), (loops[kids[0]], group // width // kid["conv"])])
                if st["conv"] != group // width:  # the frame loop's own code converts nothing
                    continue
            else:
                continue
            seen.append((name, st))
            width = widest(st["widths"])
            # A kernel loop: an int-to-float conversion per vector (the phase), a whole group's
            # worth of them, and packed FP arithmetic for most of the work.
            if not width or st["conv"] == 0:
                continue
            k = group // width
            if st["conv"] % k or st["fp"] < 4 * st["conv"]:
                continue
            kernel_loops.append((name, st, st["conv"] // k, width, group))
    if verbose:
        for name, st in seen:
            print("#   %s loop at %s+0x%x: %d instructions, %d packed FP, %d conversions, "
                  "%d stores outside the stack" % (isa, name, st["first"], st["total"], st["fp"],
                                                    st["conv"], st["acc_stores"]), file=sys.stderr)
    stereo = [x for x in kernel_loops if x[1]["acc_stores"] == 2 * x[2]]
    if not stereo:
        lines = ["kernel_roofline: %s: no stereo %s loop found (a loop with a conversion per "
                 "vector of a %d-voice group, mostly packed FP arithmetic, and two stores outside "
                 "the stack per frame). Loops seen:" % (isa, kind, group0)]
        for name, st in seen:
            lines.append("  %s+0x%x: %d instructions, %d packed FP, %d conversions, %d stores "
                         "outside the stack" % (name, st["first"], st["total"], st["fp"],
                                                st["conv"], st["acc_stores"]))
        sys.exit("\n".join(lines))
    pairs = [x for x in stereo if x[4] > group0]
    # The ramp path does the same and more (the ramps' adds): the smallest is the one without.
    return min(pairs or stereo, key=lambda x: x[1]["total"] / x[2])


# ---- the bound ----


def port_demand(uops, model):
    """{frozenset(ports): port-cycles} for one iteration, and the front end's instruction count."""
    demand = {}
    for cls, width in uops:
        if cls == "vmove":
            continue
        table = model["ports"][cls]
        ports, cost = table.get(width, table[None])
        key = frozenset(ports.split())
        demand[key] = demand.get(key, 0) + cost
    return demand


def cycles_per_iter(st, model):
    """The fewest cycles an iteration can take on model, and what binds it."""
    demand = port_demand(st["uops"], model)
    allports = sorted(set().union(*demand)) if demand else []
    fe = (st["total"] / model["fe"], "front end (%d/cycle)" % model["fe"])
    best = fe
    groups = {}  # only unions of demand sets matter; enumerate subsets of the sets, not of ports
    keys = list(demand)
    for r in range(1, len(keys) + 1):
        for combo in itertools.combinations(keys, r):
            s = frozenset().union(*combo)
            if s in groups:
                continue
            groups[s] = sum(d for k, d in demand.items() if k <= s) / len(s)
    for s, c in groups.items():
        if c > best[0]:
            best = (c, " ".join(p for p in allports if p in s))
    return best


# ---- the recurrence: how fast the loop could go with unlimited ports ----

GPR = re.compile(r"^(r(ax|bx|cx|dx|si|di|bp|sp|[89]|1[0-5])[dwb]?|e(ax|bx|cx|dx|si|di|bp|sp)|"
                 r"(ax|bx|cx|dx|si|di|bp|sp)l?|[abcd][lh])$")


def reg_name(r):
    r = r.strip().lower()
    m = re.match(r"^[xyz]mm(\d+)$", r)
    if m:
        return "v" + m.group(1)
    if re.match(r"^k[0-7]$", r):
        return r
    if GPR.match(r):
        m = re.match(r"^r(\d+)", r)
        if m:
            return "r" + m.group(1)
        return "r" + re.sub(r"^[re]|[lhxwd]$|(?<=[sd]i)l|(?<=[sb]p)l", "", r)[:2]
    return None


def latency(model, cls, width):
    v = model["lat"][cls]
    return v.get(width, v[None]) if isinstance(v, dict) else v


def recurrence_cycles(seq, model, iterations=40):
    """Cycles per iteration of a straight-line loop when only its dependencies limit it: the
    slope of the latest result over many iterations (register and store-to-load dependencies)."""
    ready, mem, ends = {}, {}, []
    for _ in range(iterations):
        last = 0
        for _, mn, ops in seq:
            cls, width, ld, sto = classify(mn, ops)
            opl = operands(ops)
            if not opl or mn.startswith("j"):
                continue
            regs = [reg_name(o) for o in opl]
            mems = [o for o in opl if "[" in o]
            addr = set(reg_name(x) for o in mems for x in re.findall(r"[a-z0-9]+", o.split("[")[1]))
            addr.discard(None)
            dst = regs[0] if not sto and cls != "store" and not mn.startswith(("cmp", "test")) else None
            reads_dst = bool(re.match(r"^v?f(n)?m", mn)) or (
                not mn.startswith("v") and not mn.startswith(("mov", "lea", "cvt", "pshuf")))
            srcs = [r for i, r in enumerate(regs) if r and (i > 0 or reads_dst or dst is None)]
            if cls == "vmove" and not srcs[1:] and len(set(opl)) < len(opl):
                srcs = []  # a zeroing idiom
            t = max([ready.get(r, 0) for r in srcs] + [0])
            if ld or cls == "load":  # the load runs beside the register operands
                t_addr = max([ready.get(r, 0) for r in addr] + [0])
                t = max(t, max(t_addr, mem.get(mems[0], 0) + model["lat"]["forward"]) +
                        latency(model, "load", width))
            t += latency(model, cls, width) if cls not in ("load", "store") else 0
            if sto or cls == "store":
                mem[mems[0]] = t
            elif dst:
                ready[dst] = t
            last = max(last, t)
        ends.append(max([last] + list(ready.values())))
    half = iterations // 2
    return (ends[-1] - ends[half]) / (iterations - 1 - half)


# ---- bench_kernel's numbers ----


def read_bench(paths):
    """{isa: {voices: median vs/cycle}} from bench_kernel outputs (markdown or CSV)."""
    vals = {}
    for path in paths:
        with open(path) as f:
            lines = f.read().splitlines()
        if lines and lines[0].startswith("isa,") and "vs_per_cycle" in lines[0]:
            head = lines[0].split(",")
            for ln in lines[1:]:
                row = dict(zip(head, ln.split(",")))
                if row.get("vs_per_cycle"):
                    vals.setdefault(row["isa"], {}).setdefault(int(row["voices"]), []).append(
                        float(row["vs_per_cycle"]))
            continue
        head = None
        for ln in lines:
            if ln.startswith("| isa |"):
                head = [c.strip() for c in ln.strip("|").split("|")]
            elif head and ln.startswith("| ") and not ln.startswith("|---"):
                row = dict(zip(head, [c.strip() for c in ln.strip("|").split("|")]))
                pc = row.get("voice-samples per cycle", "n/a")
                if pc not in ("n/a", ""):
                    vals.setdefault(row["isa"], {}).setdefault(int(row["voices"]), []).append(
                        float(pc))
        if head is None:
            sys.exit("kernel_roofline: %s is not bench_kernel output with voice-samples per cycle"
                     % path)
    return {isa: {v: statistics.median(x) for v, x in d.items()} for isa, d in vals.items()}


def this_machine():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return None
    if "AuthenticAMD" in info:
        return "zen"
    if "GenuineIntel" in info:
        return "goldencove" if re.search(r"\b(amx_tile|avx512_fp16)\b", info) else "skylake"
    return None


def find_objects(build):
    objs = {}
    for path in sorted(glob.glob(os.path.join(build, "**", "dsp_kernel_*.dir", "**", "kernel*.o*"),
                                 recursive=True)):
        if not re.search(r"\.o(bj)?$", path):
            continue
        m = re.search(r"dsp_kernel_([A-Za-z0-9_]+)\.dir", path)
        objs[m.group(1)] = path
    return objs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the CMake build directory (default build)")
    ap.add_argument("--objdump", default=os.environ.get("OBJDUMP", "objdump"))
    ap.add_argument("--group", type=int, default=0,
                    help="voices per group (default: DSP_GROUP from dsp/dsp.h)")
    ap.add_argument("--bench", action="append", default=[],
                    help="bench_kernel output (table or CSV) to compare with; repeatable")
    ap.add_argument("--model", choices=sorted(MODELS),
                    help="the machine the --bench numbers came from (default: this one's)")
    ap.add_argument("--check", action="store_true",
                    help="self-test: a plausible loop for every kernel built, or exit 1")
    ap.add_argument("--expect", default="",
                    help="comma-separated kernels that must be there (with --check: the ones "
                         "CMake built)")
    ap.add_argument("--kind", default="sineloop", choices=("sineloop", "sine"),
                    help="the voice kind's loop (default sineloop, the benchmark's: feedback "
                         "0.1; sine is the loop of groups without feedback)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every loop seen")
    a = ap.parse_args()

    group = a.group
    if not group:
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dsp", "dsp.h")
        m = re.search(r"#define DSP_GROUP (\d+)", open(src).read())
        if not m:
            sys.exit("kernel_roofline: no DSP_GROUP in %s; pass --group" % src)
        group = int(m.group(1))
    objs = find_objects(a.build)
    if not objs:
        sys.exit("kernel_roofline: no kernel objects (dsp_kernel_*.dir/kernel.c.o) under %s: "
                 "build first" % a.build)
    order = ["avx512", "avx2", "sse2", "generic"]
    isas = sorted(objs, key=lambda i: (order.index(i) if i in order else 99, i))
    missing = [i for i in a.expect.split(",") if i and i not in objs]
    if missing:
        sys.exit("kernel_roofline: no object for %s under %s (found %s)" %
                 (", ".join(missing), a.build, ", ".join(isas)))

    found, problems = {}, []
    for isa in isas:
        name, st, frames, width, g = find_hot_loop(disassemble(a.objdump, objs[isa]), group, isa,
                                                   a.verbose, a.kind)
        found[isa] = (name, st, frames, width, g)
        vecs = g // width * frames
        per = st["total"] / vecs
        fp = (st["fma"] + st["mul"] + st["add"]) / vecs
        if a.check and not (8 <= per <= 150 and 4 <= fp <= 60):
            problems.append("%s: %.1f instructions, %.1f FP per vector-frame: implausible" %
                            (isa, per, fp))

    print("# kernel_roofline: %s; DSP_GROUP %d; the stereo %s loop without ramps of each kernel"
          % (a.build, group, a.kind))
    print("| isa | width | loop at | instructions/iteration | vectors/iteration "
          "| FMA | mul | add/sub | cvt | int/logic | shuffle | reg moves | loads | stores "
          "| scalar | total per vector-frame |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for isa in isas:
        name, st, frames, width, g = found[isa]
        vecs = g // width * frames
        f = lambda k: "%.2f" % (st[k] / vecs)  # noqa: E731
        print("| %s | %d | %s+0x%x | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |"
              % (isa, width, name, st["first"], st["total"], vecs, f("fma"), f("mul"), f("add"),
                 f("cvt"), f("int"), f("shuffle"), f("vmove"), f("loads"), f("stores"),
                 f("scalar"), f("total")))
    print()
    print("| isa | port model | ports: cycles per vector-frame | bound by | ports: voice-samples/cycle "
          "| dependencies: cycles per frame | dependencies: voice-samples/cycle | bound |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    bounds = {}
    for isa in isas:
        name, st, frames, width, g = found[isa]
        vecs = g // width * frames
        for key in ("goldencove", "skylake", "zen"):
            model = MODELS[key]
            cyc, why = cycles_per_iter(st, model)
            rec = recurrence_cycles(st["seq"], model) if st["seq"] else None
            bound = g * frames / max(cyc, rec or 0)
            bounds[(isa, key)] = bound
            print("| %s | %s | %.2f | %s | %.3f | %s | %s | %.3f |" % (
                isa, model["name"], cyc / vecs, why, g * frames / cyc,
                "%.1f" % (rec / frames) if rec else "n/a",
                "%.3f" % (g * frames / rec) if rec else "n/a", bound))

    if a.bench:
        model = a.model or this_machine()
        if model is None:
            sys.exit("kernel_roofline: which machine ran the bench? pass --model")
        meas = read_bench(a.bench)
        print()
        print("Measured (%s; median of %d file%s) against the %s bound:" %
              (", ".join(a.bench), len(a.bench), "s" if len(a.bench) > 1 else "",
               MODELS[model]["name"]))
        print()
        print("| isa | voices | measured voice-samples/cycle | bound | % of bound |")
        print("|---|---:|---:|---:|---:|")
        for isa in isas:
            for v, x in sorted(meas.get(isa, {}).items()):
                b = bounds[(isa, model)]
                print("| %s | %d | %.3f | %.3f | %.0f%% |" % (isa, v, x, b, 100 * x / b))

    if a.check:
        if problems:
            sys.exit("kernel_roofline: check failed:\n  " + "\n  ".join(problems))
        print("kernel_roofline: check passed: a stereo kernel loop for each of %s" %
              ", ".join(isas))


if __name__ == "__main__":
    main()
