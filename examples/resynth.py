#!/usr/bin/env python3
"""resynth.py - analyse a sound into partials and play them on a running farm's voices.

Additive resynthesis, as pyo's PVAnal/PVAddSynth do it inside one process, here with the farm's
voices as the oscillator bank: every 50 ms frame of the sound is cut out (a Hann window two
frames long), its spectrum taken with numpy's FFT, and the N strongest peaks (N: the farm's
voice count) become N (frequency, amplitude) pairs, sorted by frequency onto the farm's voices.
Each frame goes to the farm as two `setv` messages (freq and amp, one float32 per voice),
ramped over the frame and aimed with `at B` at the stream block where that frame starts, a
little ahead of the block playing now, so every frame lands on its block on every worker
whatever the network or the scheduler did to the message on its way.

    build/farm --workers 2 --voices 100 &
    examples/resynth.py                       # a test sound: a sung-like tone with vibrato
    examples/resynth.py voice.wav --level 0.8 # any PCM WAV (8, 16, 24 or 32 bit; mono or not)

Without a file it makes a test sound (a few harmonics of 220 Hz with vibrato), writes it with
Python's wave module (--write-test FILE keeps it) and analyses that. At the end the voices fade
out (--hold leaves the last frame sounding). Needs numpy (Debian: python3-numpy) and
python/farm.py from this repository.

Exit status: 0 done; 1 the farm refused a request or did not answer; 2 bad usage or input.
"""

import argparse
import os
import sys
import tempfile
import time
import wave

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import farm  # noqa: E402  (python/farm.py)

try:
    import numpy as np
except ImportError:
    np = None

PROG = "resynth.py"


# ---- sound in ----


def read_wav(path):
    """(samples as float64 in [-1, 1], mono, sample rate) of a PCM WAV file."""
    try:
        with wave.open(path, "rb") as w:
            channels, width, sr = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ValueError("%s: not a PCM WAV file Python's wave module reads (%s)" % (path, e))
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2") / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4") / float(1 << 31)
    else:
        raise ValueError("%s: %d-byte samples are not supported" % (path, width))
    x = x[: len(x) // channels * channels].reshape(-1, channels).mean(axis=1)
    if len(x) == 0:
        raise ValueError("%s: no samples" % path)
    return x, sr


def write_test_sound(path, seconds, sr=48000):
    """A test sound into a 16-bit mono WAV: harmonics 1 to 6 of 220 Hz at 1/k, with a 5.5 Hz
    vibrato of 1.5 % and a short fade in and out."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 220.0 * (1 + 0.015 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 7))
    env = np.minimum(1.0, np.minimum(t / 0.05, (seconds - t) / 0.1).clip(0))
    x = 0.4 * x * env / np.max(np.abs(x))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((x * 32767).astype("<i2").tobytes())


# ---- analysis ----


def analyse(x, sr, frame_s, n_peaks, floor_db):
    """A list of frames, each (freqs, amps): the n_peaks strongest spectral peaks of the 2 *
    frame_s window centred on the frame's start, sorted by frequency; amps as a sinusoid's
    amplitude. Peaks more than -floor_db below the loudest of the whole sound are dropped."""
    hop = max(1, int(round(frame_s * sr)))
    win = 2 * hop
    window = np.hanning(win)
    nfft = 1 << (2 * win - 1).bit_length()
    padded = np.concatenate([np.zeros(win // 2), x, np.zeros(win)])
    frames, loudest = [], 0.0
    for start in range(0, len(x), hop):
        mag = np.abs(np.fft.rfft(padded[start:start + win] * window, nfft))
        # local maxima, then the strongest, then a parabola through each in dB
        i = np.nonzero((mag[1:-1] > mag[:-2]) & (mag[1:-1] >= mag[2:]))[0] + 1
        i = i[np.argsort(mag[i])[::-1][:n_peaks]]
        db = 20 * np.log10(np.maximum(mag[[i - 1, i, i + 1]], 1e-12))
        den = db[0] - 2 * db[1] + db[2]
        p = np.where(den != 0, 0.5 * (db[0] - db[2]) / np.where(den != 0, den, 1), 0.0)
        freqs = (i + p) * sr / nfft
        amps = 10 ** ((db[1] - 0.25 * (db[0] - db[2]) * p) / 20) * 2 / window.sum()
        order = np.argsort(freqs)
        frames.append((freqs[order], amps[order]))
        loudest = max(loudest, float(amps.max()) if len(amps) else 0.0)
    floor = loudest * 10 ** (floor_db / 20)
    return [(f[a >= floor], a[a >= floor]) for f, a in frames]


# ---- playing ----


def main():
    p = argparse.ArgumentParser(
        description="Analyse a WAV file (or a test sound) into partials, 50 ms frames of the "
        "N strongest spectral peaks, and play them on a running farm's voices, one setv of "
        "freqs and one of amps per frame, each aimed at its stream block.",
        epilog="example: build/farm --null-sink --workers 2 --voices 50 & examples/resynth.py",
    )
    p.add_argument("file", nargs="?", help="a PCM WAV file (default: a test sound)")
    p.add_argument("--url", help="the farm's control socket (default: $FARM_CONTROL, or the "
                   "one farm running as you)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply (2)")
    p.add_argument("--voices", type=int, help="voices to use, from the farm's first (default: all)")
    p.add_argument("--frame-time", type=float, default=0.05, help="seconds per frame (0.05)")
    p.add_argument("--frames", type=int, help="play only the first N frames")
    p.add_argument("--ahead", type=float, default=0.1,
                   help="seconds of headroom: how far beyond the earliest block each frame is "
                   "aimed (0.1)")
    p.add_argument("--level", type=float, default=0.5,
                   help="the loudest frame's voices' amps add up to this (0.5)")
    p.add_argument("--floor-db", type=float, default=-60.0,
                   help="drop peaks this far below the loudest (-60)")
    p.add_argument("--hold", action="store_true", help="leave the last frame sounding")
    p.add_argument("--test-seconds", type=float, default=2.0,
                   help="length of the test sound (2)")
    p.add_argument("--write-test", metavar="FILE", help="keep the test sound in FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="a line per frame")
    a = p.parse_args()
    if np is None:
        print("%s: needs numpy (on Debian: apt-get install python3-numpy)" % PROG,
              file=sys.stderr)
        return 2
    if not (0.005 <= a.frame_time <= 10) or a.ahead < 0 or a.timeout <= 0 or a.level <= 0:
        p.error("--frame-time 0.005..10, --ahead 0 or more, --timeout and --level above 0")
    if (a.frames is not None and a.frames < 1) or (a.voices is not None and a.voices < 1):
        p.error("--frames and --voices must be at least 1")

    try:
        f = farm.Farm(a.url, a.timeout)
        cfg = f.config
    except farm.FarmError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 1
    n = min(a.voices or f.voices, f.voices, farm.MESSAGE_MAX // 4 - 64)
    nyquist = cfg["sample_rate"] / 2

    try:
        if a.file:
            x, sr = read_wav(a.file)
            name = a.file
        else:
            path = a.write_test or os.path.join(tempfile.mkdtemp(prefix="resynth-"), "test.wav")
            write_test_sound(path, a.test_seconds)
            x, sr = read_wav(path)  # as a file would be
            name = "a test sound (%s)" % path
            if not a.write_test:
                os.unlink(path)
                os.rmdir(os.path.dirname(path))
    except (OSError, ValueError) as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 2
    frames = analyse(x, sr, a.frame_time, n, a.floor_db)[: a.frames]
    loudest_sum = max(float(amps.sum()) for _, amps in frames) or 1.0
    scale = a.level / loudest_sum
    print("%s: %s, %.2f s at %d Hz: %d frames of %g s on %d voices"
          % (PROG, name, len(x) / sr, sr, len(frames), a.frame_time, n), flush=True)

    sel = range(f.first_voice, f.first_voice + n)  # the farm's first n, by their numbers
    block_s = f.block_seconds
    blocks_per_frame = a.frame_time / block_s
    freq = np.array(f.get(sel, "freq"), dtype=np.float64)  # silent voices keep theirs
    shift, reaimed, first = 0, 0, None
    try:
        f.voice(sel, True)
        b0 = f.at(a.ahead)
        t0 = time.monotonic()
        for k, (pf, pa) in enumerate(frames):
            delay = t0 + k * a.frame_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            m = len(pf)
            freq[:m] = np.clip(pf, 0, nyquist)
            amp = np.zeros(n)
            amp[:m] = np.clip(pa * scale, 0, 1)
            block = b0 + int(round(k * blocks_per_frame)) + shift
            for tries in range(2):
                try:
                    f.setv(sel, "freq", freq, ramp=a.frame_time, at=block)
                    f.setv(sel, "amp", amp, ramp=a.frame_time, at=block)
                    break
                except farm.FarmError as e:
                    # Too soon (the machine stalled us): aim this and every later frame later.
                    if tries or "the earliest is" not in str(e):
                        raise
                    earliest = int(str(e).rsplit(" ", 1)[1])
                    shift += earliest - block + int(a.ahead / block_s) + 1
                    block = b0 + int(round(k * blocks_per_frame)) + shift
                    reaimed += 1
            first = block if first is None else first
            if a.verbose:
                print("%s: frame %d at block %d: %d partials, loudest %.1f Hz"
                      % (PROG, k, block, m, pf[np.argmax(pa)] if m else 0), flush=True)
        end = block + int(round(blocks_per_frame))
        if not a.hold:
            f.set(sel, "amp", 0, ramp=0.1, at=end)
        # until the last frame (and the fade) has been heard
        wait = (end - f.block()) * block_s + (0 if a.hold else 0.1)
        time.sleep(max(0.0, wait))
    except KeyboardInterrupt:
        f.set(sel, "amp", 0, ramp=0.1)
        print("\n%s: interrupted" % PROG, file=sys.stderr)
        return 130
    except farm.FarmError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 1
    print("%s: %d frames played from block %d to %d, %d re-aimed later"
          % (PROG, len(frames), first, block, reaimed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
