#!/usr/bin/env python3
"""wavtone.py REF.wav REC.wav CHANNELS SECONDS_MIN SECONDS_MAX LATE: REC (a recording of farm
playing) holds the tones of REF (a render of the same voices, one sine per channel, channel K's
voice on worker K), and lasts SECONDS_MIN to SECONDS_MAX. LATE: the workers' late blocks as farm's
report counted them, one number per worker, comma separated ("0,3").

A late block is farm's documented behaviour (engine/engine.c, take_block): the missing worker's
last block played backwards fading out, silence until it returns, then a fade in over one block,
its tone's phase moved. Whether a worker is late is the machine's business (a stalled core); that
each one is counted, and that nothing else goes wrong, is farm's. A stretch of L late blocks
touches L + 1 blocks (256 frames each) of its channel, which fall in at most 2 L of the windows
below (each over 2000 frames long). In each channel of REC, the fades (its first and last 0.25 s)
left out:
- silence: none longer than 1 ms where its worker was never late, else none longer than its
  late blocks + 2;
- the frequency: the median of the periods between upward zero crossings (interpolated) is
  REF's frequency within 0.2%;
- the spectrum, in windows of a whole number of REF's periods (about 50 ms): a window with less
  than 95% of its energy at REF's frequency is spoiled; at most 2 x its worker's late blocks are
  (none where the worker was never late);
- the level: the median of the unspoiled windows' is REF's within 10% (not judged where a worker
  late all along left none; the frequency above still needs its tone).
Prints one line; exit 0 when all hold. Standard library only."""
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavcompare import longest_silence, read  # noqa: E402  (plain, extensible, RF64 WAV)

RATE = 48000
BLOCK = 256  # farm's default block, which the tests play with


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


def check(k, want, got, late):
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
    level_want = window(want[:n], f)[1]
    spoiled = sum(s < 0.95 for s in shares)
    good = [r for s, r in zip(shares, levels) if s >= 0.95]
    gap = longest_silence(got)
    allowed = (late + 2) * BLOCK if late else RATE // 1000
    if gap > allowed:
        sys.exit(f"channel {k}: silent for {1e3 * gap / RATE:.1f} ms; its worker was late {late} "
                 f"times, which accounts for {1e3 * allowed / RATE:.1f} ms")
    if spoiled > 2 * late:
        sys.exit(f"channel {k}: {spoiled} of {len(shares)} windows have less than 95% of their "
                 f"energy at {f:.2f} Hz (median {100 * statistics.median(shares):.1f}%); its "
                 f"worker was late {late} times, which accounts for {2 * late}")
    said = f"ch{k} {f_got:.2f} Hz ({f:.2f} rendered), longest silence {1e3 * gap / RATE:.1f} ms, "
    if good:
        level = statistics.median(good)
        if abs(level - level_want) > 0.1 * level_want:
            sys.exit(f"channel {k}: level {level:.4f} RMS recorded, {level_want:.4f} rendered")
        said += f"RMS {level:.4f}/{level_want:.4f}, "
    else:  # a worker late all along: its count says so, and the level has nothing to go by
        said += "level not judged (no window unspoiled), "
    return said + f"{spoiled} of {len(shares)} windows spoiled, its worker late {late}"


def main():
    ref_path, rec_path = sys.argv[1], sys.argv[2]
    channels, lo, hi = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    late = [int(v) for v in sys.argv[6].split(",")]
    rch, ref = read(ref_path)
    ch, rec = read(rec_path)
    if rch != channels or ch != channels:
        sys.exit(f"{channels} channels expected: {ref_path} has {rch}, {rec_path} {ch}")
    seconds = len(rec) / channels / RATE
    if not lo <= seconds <= hi:
        sys.exit(f"{rec_path}: {seconds:.3f} s, not {lo:g} to {hi:g} s")
    edge = RATE // 4
    if len(late) != channels:
        sys.exit(f"{len(late)} late counts for {channels} channels")
    said = [check(k, ref[k::channels], rec[k::channels][edge:-edge], late[k])
            for k in range(channels)]
    print(f"{seconds:.3f} s; " + "; ".join(said))


if __name__ == "__main__":
    main()
