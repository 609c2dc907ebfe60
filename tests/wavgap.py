#!/usr/bin/env python3
"""wavgap.py FILE.wav HIT MAX_GAP_S LATE: what a farm played while the worker of channel HIT was
killed and replaced (voice K, on worker K, plays a plain sine on channel K). LATE is the workers'
late blocks as farm's report counted them, one number per worker, comma separated ("7,0").

A late block is farm's documented behaviour, not a fault (engine/engine.c, take_block): the
missing worker's last block is played backwards fading out, then silence until it returns, then a
fade in over one block. Whether a worker is late is the machine's business (a stalled core, or the
killed worker's replacement starting); that each silence is counted is farm's. So:
- a channel whose worker was never late is never silent (1 ms at most) and has no click, no step
  larger than its own sine's steepest one (x 1.01, as tests/test_heal.c checks on Linux);
- a channel whose worker was late is silent for at most (its late blocks + 2) blocks (256 frames)
  in one stretch, HIT's for at most MAX_GAP_S too, and its fades make no step larger than 1.1 x
  its sine's steepest;
HIT's worker is not required to be late: a replacement that takes over before its ring runs
dry leaves no gap, and its channel is then held to the first rule.
The steepest step is measured on the first 0.4 s past the start's fade, before any kill.
Prints one line; exit 0 when it holds. Standard library only."""
import sys

from wavcompare import longest_silence, read

BLOCK = 256  # farm's default block, which the test plays with


def largest_step(x):
    return max(abs(b - a) for a, b in zip(x, x[1:]))


def main():
    path, hit, max_gap_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    late = [int(n) for n in sys.argv[4].split(",")]
    channels, samples = read(path)
    if len(late) != channels:
        sys.exit(f"{len(late)} late counts for {channels} channels")
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
        if late[c] == 0:
            allowed, click = sr / 1000, 1.01
        else:
            allowed, click = (late[c] + 2) * BLOCK, 1.1
            if c == hit:
                allowed = min(allowed, max_gap_s * sr)
        if steepest < 1e-3:
            sys.exit(f"channel {c}: no sine at the start")
        if gap > allowed:
            sys.exit(f"channel {c}: silent for {1e3 * gap / sr:.1f} ms, {1e3 * allowed / sr:.1f} "
                     f"ms allowed ({late[c]} late blocks of its worker)")
        if step > steepest * click:
            sys.exit(f"channel {c}: a click, a step of {step:.4g} where its sine's is "
                     f"{steepest:.4g} ({late[c]} late blocks of its worker)")
        found.append(f"channel {c}: late {late[c]}, longest silence {1e3 * gap / sr:.1f} ms, "
                     f"largest step {step / steepest:.3f} of the sine's")
    print(f"{frames} frames; " + "; ".join(found))


main()
