#!/usr/bin/env python3
"""wavtone.py REF.wav REC.wav CHANNELS SECONDS_MIN SECONDS_MAX: REC (a recording of farm playing)
holds the tones of REF (a render of the same voices, one sine per channel), and lasts SECONDS_MIN
to SECONDS_MAX. In each channel of REC, the fades (its first and last 0.25 s) left out:
- the frequency: the median of the periods between upward zero crossings (interpolated) is
  REF's frequency within 0.2%;
- the spectrum, in windows of a whole number of REF's periods (about 50 ms): in the median
  window at least 95% of the energy is at REF's frequency, and its level is REF's within 10%.
Medians, because a block the stream played late (silence, then the tone with its phase moved)
spoils the windows it falls in and nothing else: how many windows were spoiled is reported, not
judged (it depends on how busy the machine was). Prints one line; exit 0 when all hold.
Standard library only."""
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavcompare import read  # noqa: E402  (plain, extensible and RF64 WAV files)

RATE = 48000


def crossings(x):
    return [i + x[i] / (x[i] - x[i + 1]) for i in range(len(x) - 1) if x[i] <= 0 < x[i + 1]]


def frequency(x):
    """A sine's frequency from the median period between its upward zero crossings."""
    ups = crossings(x)
    periods = [b - a for a, b in zip(ups, ups[1:])]
    return RATE / statistics.median(periods) if periods else 0.0


def window(x, f):
    """(share of the energy at f, RMS) of x, which holds a whole number of periods of f."""
    w = 2 * math.pi * f / RATE
    re = sum(v * math.cos(w * i) for i, v in enumerate(x))
    im = sum(v * math.sin(w * i) for i, v in enumerate(x))
    energy = sum(v * v for v in x)
    if energy <= 0:
        return 0.0, 0.0
    return 2 * (re * re + im * im) / len(x) / energy, math.sqrt(energy / len(x))


def check(k, want, got):
    f = frequency(want)
    f_got = frequency(got)
    if f <= 0 or abs(f_got - f) > 0.002 * f:
        sys.exit(f"channel {k}: {f_got:.2f} Hz recorded, {f:.2f} Hz rendered")
    period = RATE / f
    n = int(round(max(1, round(0.05 * f)) * period))  # ~50 ms, whole periods
    shares, levels = [], []
    for start in range(0, len(got) - n + 1, n):
        s, r = window(got[start:start + n], f)
        shares.append(s)
        levels.append(r)
    share, level = statistics.median(shares), statistics.median(levels)
    level_want = window(want[:n], f)[1]
    if share < 0.95:
        sys.exit(f"channel {k}: {100 * share:.1f}% of the energy at {f:.2f} Hz (median window)")
    if abs(level - level_want) > 0.1 * level_want:
        sys.exit(f"channel {k}: level {level:.4f} RMS recorded, {level_want:.4f} rendered")
    spoiled = sum(s < 0.95 for s in shares)
    return (f"ch{k} {f_got:.2f} Hz ({f:.2f} rendered), {100 * share:.1f}% of the energy there, "
            f"RMS {level:.4f}/{level_want:.4f}, {spoiled} of {len(shares)} windows spoiled")


def main():
    ref_path, rec_path = sys.argv[1], sys.argv[2]
    channels, lo, hi = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    rch, ref = read(ref_path)
    ch, rec = read(rec_path)
    if rch != channels or ch != channels:
        sys.exit(f"{channels} channels expected: {ref_path} has {rch}, {rec_path} {ch}")
    seconds = len(rec) / channels / RATE
    if not lo <= seconds <= hi:
        sys.exit(f"{rec_path}: {seconds:.3f} s, not {lo:g} to {hi:g} s")
    edge = RATE // 4
    said = [check(k, ref[k::channels], rec[k::channels][edge:-edge]) for k in range(channels)]
    print(f"{seconds:.3f} s; " + "; ".join(said))


if __name__ == "__main__":
    main()
