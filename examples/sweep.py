#!/usr/bin/env python3
"""sweep.py - glide every voice of a running farm from LOW up to HIGH and back, in steps (each
step a linear ramp), then give every voice its own starting frequency back.

It uses python/farm.py, which speaks farm's control protocol (CONTROL.md) over NNG with nothing
but the Python standard library: ctypes over libnng.so.1 (Debian's libnng1, which farm itself
needs). The voices go back in one binary `setv` message (a float32 per voice).

    examples/sweep.py [--url URL] [--low 300] [--high 900] [--steps 12] [--step-time 0.25]

Exit status: 0 done; 1 the farm refused a request or did not answer; 2 bad usage.
"""

import argparse
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from farm import Farm, FarmError  # noqa: E402  (python/farm.py: NNG through ctypes)

# ---- the voices' starting frequencies, as farm derives them (dsp/dsp.c) ----

MASK64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def default_freq(seed, index, freq_min, freq_max):
    r = splitmix64(splitmix64(seed) ^ index)
    u = float(r >> 11) * (1.0 / 9007199254740992.0)
    return freq_min + u * (freq_max - freq_min)


# ---- the sweep ----


def main():
    p = argparse.ArgumentParser(
        description="Glide all voices of a running farm from --low up to --high and back, in "
        "steps that are linear ramps, then ramp every voice back to its own starting "
        "frequency (which farm derives from its --seed, uniform in --freq-min..--freq-max). "
        "Ctrl-C during the sweep, or a refused step, restores too.",
        epilog="example: build/farm --null-sink --workers 2 --voices 100 & examples/sweep.py "
        "--low 200 --high 2000 --steps 40 --step-time 0.1",
    )
    p.add_argument("--url", help="the farm's control socket (default: $FARM_CONTROL, or the "
                   "one farm running as you, found like farmctl does)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply (2)")
    p.add_argument("--low", type=float, default=300.0, help="bottom of the sweep in Hz (300)")
    p.add_argument("--high", type=float, default=900.0, help="top of the sweep in Hz (900)")
    p.add_argument("--steps", type=int, default=12, help="steps each way (12)")
    p.add_argument("--step-time", type=float, default=0.25,
                   help="seconds per step, the ramp of each (0.25)")
    p.add_argument("--freq-min", type=float,
                   help="the farm's --freq-min (default: as its status reports, else 400)")
    p.add_argument("--freq-max", type=float,
                   help="the farm's --freq-max (default: as its status reports, else 800)")
    p.add_argument("--restore-ramp", type=float, default=1.0,
                   help="seconds each voice takes to glide back (1)")
    p.add_argument("--no-restore", action="store_true", help="leave the voices at --low")
    a = p.parse_args()
    if a.steps < 1 or a.step_time <= 0 or a.timeout <= 0 or a.restore_ramp < 0:
        p.error("--steps, --step-time and --timeout must be above 0, --restore-ramp at least 0")

    try:
        farm = Farm(a.url, a.timeout)
        config = farm.config
        before = farm.get("all", "freq")  # what to put back if the seed is not exact
    except FarmError as e:
        sys.exit("sweep.py: %s" % e)
    voices = int(config["voices"])
    first = int(config.get("first_voice", 0))  # a part of a bigger farm numbers its voices so
    seed = config["seed"]
    freq_min = a.freq_min if a.freq_min is not None else config.get("freq_min", 400.0)
    freq_max = a.freq_max if a.freq_max is not None else config.get("freq_max", 800.0)

    def restore():
        # JSON numbers are doubles: a seed above 2**53 may arrive rounded.
        if isinstance(seed, int) and seed < 2**53:
            freqs = [default_freq(seed, first + i, freq_min, freq_max) for i in range(voices)]
            what = "their own frequencies"
        else:
            freqs = before
            what = "the frequencies they had before the sweep (the farm's seed, %r, is not " \
                   "exact in its status reply)" % (seed,)
        print("sweep.py: ramping %d voices back to %s over %g s" % (voices, what, a.restore_ramp))
        # One setv carries up to 262,000-odd voices; more go in several, all from one block.
        chunk = 200000
        at = farm.at() if voices > chunk else None
        for lo in range(0, voices, chunk):
            hi = min(voices, lo + chunk)
            farm.setv(range(first + lo, first + hi), "freq", freqs[lo:hi], ramp=a.restore_ramp,
                      at=at)
        time.sleep(a.restore_ramp)

    # SIGTERM as Ctrl-C: restore, then leave.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print("sweep.py: %d voices, %g Hz -> %g Hz -> %g Hz in %d steps of %g s each way"
          % (voices, a.low, a.high, a.low, a.steps, a.step_time))
    freqs = [a.low + (a.high - a.low) * k / a.steps for k in range(a.steps + 1)]
    freqs += freqs[-2::-1]
    status = 0
    try:
        try:
            for f in freqs:
                print("sweep.py: %8.2f Hz" % f, flush=True)
                farm.set("all", "freq", round(f, 6), ramp=a.step_time)
                time.sleep(a.step_time)
        except KeyboardInterrupt:
            print("\nsweep.py: interrupted", file=sys.stderr)
            status = 130
        except FarmError as e:  # a refused step: still put the voices back
            print("sweep.py: '%s': %s" % (e.request, e) if e.request else "sweep.py: %s" % e,
                  file=sys.stderr)
            status = 1
        if not a.no_restore:
            restore()
    except FarmError as e:
        print("sweep.py: %s" % e, file=sys.stderr)
        return 1
    if status:
        return status
    print("sweep.py: done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # a second Ctrl-C, while restoring
        print("\nsweep.py: interrupted", file=sys.stderr)
        sys.exit(130)
