#!/usr/bin/env python3
"""sc_nrt_score.py VOICES SECONDS OUT.osc [--group g_new|p_new] [--seed 1] [--channels 2]

Writes a SuperCollider non-real-time score (the binary OSC file scsynth -N and supernova -N read)
for pyo's seed workload: VOICES synths, each one SinOscFB.ar(freq, 2*pi*0.1) * 0.005 on bus
i % channels, freq uniform in [400, 800). This is pyo's SineLoop(feedback=0.1) in SuperCollider's
terms (shared/docs/sineloop.md). The SynthDef is compiled here too (SCgf version 2) and written
beside the score as farmvoice.scsyndef, so neither sclang nor a display is needed: run the server
with SC_SYNTHDEF_PATH set to the score's directory. (Sent in the score with /d_recv instead, it
made supernova 3.13 abort in NRT mode: "terminate called without an active exception". Short of
real-time memory it aborts the same way: 2,000 synths failed with the default -m 8192 (kB);
bench/scaling.sh gives 64 kB per synth.)

--group p_new puts the synths in a ParGroup, which supernova spreads over its -T threads;
scsynth, with one thread, gets a plain group (g_new). Standard library only.
"""
import argparse
import math
import os
import random
import struct

FEEDBACK_CYCLES = 0.1  # pyo's feedback is in cycles, SinOscFB's in radians
AMP = 0.005
DEF_NAME = "farmvoice"
GROUP_ID = 1000
FIRST_NODE = 2000


def osc_string(s):
    b = s.encode() + b"\0"
    return b + b"\0" * (-len(b) % 4)


def osc_message(address, *args):
    tags, data = ",", b""
    for a in args:
        if isinstance(a, bytes):
            tags += "b"
            data += struct.pack(">i", len(a)) + a + b"\0" * (-len(a) % 4)
        elif isinstance(a, int):
            tags += "i"
            data += struct.pack(">i", a)
        elif isinstance(a, float):
            tags += "f"
            data += struct.pack(">f", a)
        else:
            tags += "s"
            data += osc_string(a)
    return osc_string(address) + osc_string(tags) + data


def osc_bundle(seconds, messages):
    # NRT time tags count seconds from the score's start, 32.32 fixed point.
    out = b"#bundle\0" + struct.pack(">Q", int(round(seconds * (1 << 32))))
    for m in messages:
        out += struct.pack(">i", len(m)) + m
    return out


def pstring(s):
    return struct.pack(">B", len(s)) + s.encode()


def def_name(per_synth):
    return DEF_NAME if per_synth == 1 else "%s%d" % (DEF_NAME, per_synth)


def synthdef(per_synth=1):
    """SCgf v2 for Out.ar(out, (SinOscFB.ar(freq0, fb) + ... + SinOscFB.ar(freqK-1, fb)) * amp),
    K = per_synth. UGen inputs are (ugen index, output index); rates: 1 control, 2 audio."""
    k = per_synth
    params = [("freq%d" % i if k > 1 else "freq", 440.0) for i in range(k)]
    params += [("fb", 0.0), ("amp", AMP), ("out", 0.0)]
    fb, amp, out = k, k + 1, k + 2  # their Control outputs
    ugens = [("Control", 1, [], [1] * len(params), 0)]
    ugens += [("SinOscFB", 2, [(0, i), (0, fb)], [2], 0) for i in range(k)]
    total = 1  # the ugen holding the sum so far
    for i in range(1, k):  # special index 0: add
        ugens.append(("BinaryOpUGen", 2, [(total, 0), (1 + i, 0)], [2], 0))
        total = len(ugens) - 1
    ugens.append(("BinaryOpUGen", 2, [(total, 0), (0, amp)], [2], 2))  # special 2: multiply
    ugens.append(("Out", 2, [(0, out), (len(ugens) - 1, 0)], [], 0))
    d = pstring(def_name(k)) + struct.pack(">i", 0)  # no constants
    d += struct.pack(">i", len(params)) + b"".join(struct.pack(">f", v) for _, v in params)
    d += struct.pack(">i", len(params))
    d += b"".join(pstring(n) + struct.pack(">i", i) for i, (n, _) in enumerate(params))
    d += struct.pack(">i", len(ugens))
    for name, rate, inputs, outputs, special in ugens:
        d += pstring(name) + struct.pack(">biih", rate, len(inputs), len(outputs), special)
        d += b"".join(struct.pack(">ii", u, o) for u, o in inputs)
        d += b"".join(struct.pack(">b", r) for r in outputs)
    d += struct.pack(">h", 0)  # no variants
    return b"SCgf" + struct.pack(">ih", 2, 1) + d


def score(voices, seconds, group_cmd, seed, channels, per_synth=1):
    rng = random.Random(seed)
    fb = 2 * math.pi * FEEDBACK_CYCLES
    bundles = []
    # Bundles of a few hundred messages: the servers read each bundle into one buffer.
    msgs = [osc_message("/" + group_cmd, GROUP_ID, 0, 0)]
    synths = (voices + per_synth - 1) // per_synth
    for j in range(synths):
        k = min(per_synth, voices - j * per_synth)
        # Controls by index: freq0.. first, then fb, amp, out. A last synth with fewer voices
        # silences the rest with amp... no: it gets its own frequencies and the rest at 0 Hz,
        # which costs the same as playing, as in SuperCollider.
        args = []
        for i in range(per_synth):
            args += [i, rng.uniform(400, 800) if i < k else 0.0]
        args += [per_synth, fb, per_synth + 1, AMP, per_synth + 2, float(j % channels)]
        msgs.append(osc_message("/s_new", def_name(per_synth), FIRST_NODE + j, 1, GROUP_ID, *args))
        if len(msgs) == 500:
            bundles.append(osc_bundle(0.0, msgs))
            msgs = []
    if msgs:
        bundles.append(osc_bundle(0.0, msgs))
    # The render ends at the last bundle's time.
    bundles.append(osc_bundle(seconds, [osc_message("/c_set", 0, 0.0)]))
    return b"".join(struct.pack(">i", len(b)) + b for b in bundles)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("voices", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("out")
    p.add_argument("--group", choices=["g_new", "p_new"], default="g_new")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--channels", type=int, default=2)
    p.add_argument("--voices-per-synth", type=int, default=1)
    a = p.parse_args()
    if a.voices < 1 or not a.seconds > 0 or a.channels < 1 or not 1 <= a.voices_per_synth <= 1000:
        p.error("voices and channels must be at least 1, seconds above 0, voices per synth 1..1000")
    with open(a.out, "wb") as f:
        f.write(score(a.voices, a.seconds, a.group, a.seed, a.channels, a.voices_per_synth))
    name = def_name(a.voices_per_synth) + ".scsyndef"
    with open(os.path.join(os.path.dirname(os.path.abspath(a.out)), name), "wb") as f:
        f.write(synthdef(a.voices_per_synth))


if __name__ == "__main__":
    main()
