#!/usr/bin/env python3
"""wavcompare.py A.wav B.wav FRAMES CHANNELS MIN_RMS: two WAV files (PCM 16/24 or float, plain,
extensible or RF64) hold the same audio: FRAMES frames of CHANNELS channels each, a level of at
least MIN_RMS, and no sample apart by more than 1e-6. Prints one line; exit 0 when they agree.
Standard library only: the Windows tests run it beside the Linux build's farm."""
import math
import struct
import sys


def read(path):
    data = open(path, "rb").read()
    if data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        sys.exit(f"{path}: not a WAV file")
    pos, fmt, body, ds64 = 12, None, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"ds64":
            ds64 = struct.unpack_from("<Q", data, pos + 16)[0]  # the data chunk's size
        if cid == b"data" and size == 0xFFFFFFFF and ds64 is not None:
            size = ds64
        if cid == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", data, pos + 8)
            if fmt[0] == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first word
                fmt = (struct.unpack_from("<H", data, pos + 8 + 24)[0],) + fmt[1:]
        if cid == b"data":
            body = data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        sys.exit(f"{path}: no fmt or data chunk")
    tag, channels, _, _, _, bits = fmt
    if tag == 3 and bits == 32:
        samples = [v for (v,) in struct.iter_unpack("<f", body)]
    elif tag == 1 and bits == 16:
        samples = [v / 32768.0 for (v,) in struct.iter_unpack("<h", body)]
    elif tag == 1 and bits == 24:
        samples = [int.from_bytes(body[i:i + 3], "little", signed=True) / 8388608.0
                   for i in range(0, len(body) - 2, 3)]
    else:
        sys.exit(f"{path}: format {tag} with {bits} bits is not read here")
    return channels, samples


def longest_silence(x):
    """The longest run of samples of x that are silent (below 1e-6): a late block's silence."""
    best = run = 0
    for v in x:
        run = run + 1 if abs(v) < 1e-6 else 0
        best = max(best, run)
    return best


def main():
    a_path, b_path = sys.argv[1], sys.argv[2]
    frames, channels, min_rms = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    for path, (ch, s) in ((a_path, read(a_path)), (b_path, read(b_path))):
        if ch != channels or len(s) != frames * channels:
            sys.exit(f"{path}: {len(s) // max(ch, 1)} frames of {ch} channels, "
                     f"not {frames} of {channels}")
        rms = math.sqrt(sum(v * v for v in s) / len(s))
        if not rms >= min_rms:
            sys.exit(f"{path}: level {rms:.3g} RMS, below {min_rms:.3g}")
    a, b = read(a_path)[1], read(b_path)[1]
    worst = max(abs(x - y) for x, y in zip(a, b))
    if not worst <= 1e-6:
        sys.exit(f"{a_path} and {b_path} differ by up to {worst:.3g}")
    print(f"same audio: {frames} frames x {channels} channels, largest difference {worst:.3g}")


if __name__ == "__main__":  # wavgap.py and wavtone.py import read(), longest_silence()
    main()
