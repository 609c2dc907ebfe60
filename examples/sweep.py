#!/usr/bin/env python3
"""sweep.py - glide every voice of a running farm from LOW up to HIGH and back, in steps (each
step a linear ramp), then give every voice its own starting frequency back.

It speaks farm's control protocol (CONTROL.md) directly over NNG, with nothing but the Python
standard library: ctypes over libnng.so.1 (Debian's libnng1, which farm itself needs).

    examples/sweep.py [--url URL] [--low 300] [--high 900] [--steps 12] [--step-time 0.25]

Exit status: 0 done; 1 the farm refused a request or did not answer; 2 bad usage.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import signal
import stat
import sys
import time

# ---- NNG through ctypes ----

NNG_FLAG_ALLOC = 1
NNG_ETIMEDOUT = 5


class NngSocket(ctypes.Structure):
    """nng_socket: a struct of one uint32, passed by value."""

    _fields_ = [("id", ctypes.c_uint32)]


class FarmError(Exception):
    """The farm refused a request, or could not be reached."""


def load_nng():
    for name in ("libnng.so.1", ctypes.util.find_library("nng")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        sys.exit("sweep.py: cannot load libnng.so.1 (on Debian: apt-get install libnng1)")
    lib.nng_req0_open.argtypes = [ctypes.POINTER(NngSocket)]
    lib.nng_dial.argtypes = [NngSocket, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.nng_socket_set_ms.argtypes = [NngSocket, ctypes.c_char_p, ctypes.c_int32]
    lib.nng_send.argtypes = [NngSocket, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.nng_recv.argtypes = [
        NngSocket,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.c_int,
    ]
    lib.nng_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.nng_free.restype = None
    lib.nng_strerror.argtypes = [ctypes.c_int]
    lib.nng_strerror.restype = ctypes.c_char_p
    return lib


class Farm:
    """One REQ socket to a farm's control URL. request() sends one line and returns the reply
    as a dict; FarmError on "ok": false or when nothing answers within the timeout."""

    def __init__(self, url, timeout):
        self.nng = load_nng()
        self.url = url
        self.timeout = timeout
        self.sock = NngSocket()
        self._check(self.nng.nng_req0_open(ctypes.byref(self.sock)), "open a REQ socket")
        ms = max(1, int(timeout * 1000))
        self._check(self.nng.nng_socket_set_ms(self.sock, b"recv-timeout", ms), "set recv-timeout")
        self._check(self.nng.nng_socket_set_ms(self.sock, b"send-timeout", ms), "set send-timeout")
        # NNG_FLAG_NONBLOCK (2): do not wait for the connection here; NNG keeps trying in the
        # background and the timeouts above bound every wait.
        self._check(self.nng.nng_dial(self.sock, url.encode(), None, 2), "dial " + url)
        # No nng_close: NNG 1.5.2 can deadlock in it (nanomsg/nng#1543); the exit closes it.

    def _check(self, rv, what):
        if rv != 0:
            raise FarmError("%s: %s" % (what, self.nng.nng_strerror(rv).decode()))

    def request(self, line):
        data = line.encode()
        rv = self.nng.nng_send(self.sock, data, len(data), 0)
        buf = ctypes.c_void_p()
        size = ctypes.c_size_t()
        if rv == 0:
            rv = self.nng.nng_recv(self.sock, ctypes.byref(buf), ctypes.byref(size), NNG_FLAG_ALLOC)
        if rv == NNG_ETIMEDOUT:
            raise FarmError(
                "nothing answered at %s within %g s: is farm running there? (farm prints its "
                "control URL when it starts)" % (self.url, self.timeout)
            )
        self._check(rv, self.url)
        try:
            text = ctypes.string_at(buf, size.value).decode()
        finally:
            self.nng.nng_free(buf, size.value)
        reply = json.loads(text)
        if not reply.get("ok"):
            raise FarmError("'%s': %s" % (line, reply.get("error", text)))
        return reply


# ---- finding the farm, as farmctl does ----


def runtime_dir():
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    return xdg + "/farm" if xdg.startswith("/") else "/tmp/farm-%d" % os.getuid()


def alive(pid):
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def default_url():
    """$FARM_CONTROL, else the one live farm's PID.control socket in the runtime directory."""
    if os.environ.get("FARM_CONTROL"):
        return os.environ["FARM_CONTROL"]
    d = runtime_dir()
    found = []
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        names = []
    for name in names:
        pid, dot, rest = name.partition(".")
        if rest != "control" or not pid.isdigit():
            continue
        path = os.path.join(d, name)
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                continue
        except OSError:
            continue
        if alive(int(pid)):
            found.append("ipc://" + path)
    if not found:
        raise FarmError("no farm is running (no control socket in %s); start one, or give --url" % d)
    if len(found) > 1:
        raise FarmError("several farms are running: %s; choose one with --url" % ", ".join(found))
    return found[0]


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
    p.add_argument("--freq-min", type=float, default=400.0, help="the farm's --freq-min (400)")
    p.add_argument("--freq-max", type=float, default=800.0, help="the farm's --freq-max (800)")
    p.add_argument("--restore-ramp", type=float, default=1.0,
                   help="seconds each voice takes to glide back (1)")
    p.add_argument("--no-restore", action="store_true", help="leave the voices at --low")
    a = p.parse_args()
    if a.steps < 1 or a.step_time <= 0 or a.timeout <= 0 or a.restore_ramp < 0:
        p.error("--steps, --step-time and --timeout must be above 0, --restore-ramp at least 0")

    try:
        farm = Farm(a.url or default_url(), a.timeout)
        config = farm.request("status")["config"]
    except FarmError as e:
        sys.exit("sweep.py: %s" % e)
    voices = int(config["voices"])
    seed = config["seed"]

    def restore():
        # JSON numbers are doubles: a seed above 2**53 may arrive rounded.
        if not isinstance(seed, int) or seed >= 2**53:
            print("sweep.py: the farm's seed (%r) is not exact in its status reply; leaving "
                  "the voices at %g Hz" % (seed, a.low), file=sys.stderr)
            return
        print("sweep.py: ramping %d voices back to their own frequencies over %g s"
              % (voices, a.restore_ramp))
        for i in range(voices):
            f = default_freq(seed, i, a.freq_min, a.freq_max)
            farm.request("set %d freq %.17g ramp %g" % (i, f, a.restore_ramp))
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
                farm.request("set all freq %.6f ramp %g" % (f, a.step_time))
                time.sleep(a.step_time)
        except KeyboardInterrupt:
            print("\nsweep.py: interrupted", file=sys.stderr)
            status = 130
        except FarmError as e:  # a refused step: still put the voices back
            print("sweep.py: %s" % e, file=sys.stderr)
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
