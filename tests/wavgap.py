#!/usr/bin/env python3
"""wavgap.py FILE.wav HIT MAX_GAP_S: what a farm played while the worker of channel HIT was
killed and replaced (voice K, on worker K, plays a plain sine on channel K): channel HIT was
silent for at most MAX_GAP_S seconds in one stretch, every other channel never, and no channel
has a click, a step larger than its own sine's steepest one (as tests/test_heal.c checks on
Linux). The steepest step is measured on the first 0.4 s past the start's fade, before any kill.
Prints one line; exit 0 when it holds. Standard library only."""
import sys

from wavcompare import read


def longest_silence(x):
    best = run = 0
    for v in x:
        run = run + 1 if abs(v) < 1e-6 else 0
        best = max(best, run)
    return best


def largest_step(x):
    return max(abs(b - a) for a, b in zip(x, x[1:]))


def main():
    path, hit, max_gap_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    channels, samples = read(path)
    sr = 48000  # farm's default rate, which the test plays at
    frames = len(samples) // channels
    edge = sr // 20  # away from the start's and the end's fades
    if frames < 4 * edge + int(0.4 * sr):
        sys.exit(f"{path}: only {frames} frames")
    found = []
    for c in range(channels):
        x = samples[c::channels][edge:frames - edge]
        steepest = largest_step(x[:int(0.4 * sr)])
        step, gap = largest_step(x), longest_silence(x)
        allowed = max_gap_s * sr if c == hit else sr / 1000
        if steepest < 1e-3:
            sys.exit(f"channel {c}: no sine at the start")
        if gap > allowed:
            sys.exit(f"channel {c}: silent for {1e3 * gap / sr:.1f} ms")
        if step > steepest * (1.1 if c == hit else 1.01):
            sys.exit(f"channel {c}: a click, a step of {step:.4g} where its sine's is {steepest:.4g}")
        found.append(f"channel {c}: longest silence {1e3 * gap / sr:.1f} ms, "
                     f"largest step {step / steepest:.3f} of the sine's")
    print(f"{frames} frames; " + "; ".join(found))


main()
