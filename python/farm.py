"""farm.py - play a running farm from Python, as you would play a pyo Server's objects.

farm (this project) plays thousands of SineLoop voices in worker processes and listens for
requests on an NNG socket (CONTROL.md is the protocol's reference). This module speaks that
protocol with nothing but the standard library: ctypes over Debian's libnng.so.1 (package
libnng1, which farm itself needs). numpy is used when it is installed, never required.

    import farm                                # put this file's folder on sys.path

    f = farm.Farm()                            # the one farm running as you, as farmctl finds it
    f.set("all", "freq", 440, ramp=2)          # every voice glides to 440 Hz over 2 s
    f.set(range(0, 8), "freq", farm.harmonic(110))     # voices 0-7: 110, 220, ... 880 Hz
    f.set("worker:1", "amp", farm.exp(0.01, 0.0001))   # a spread over worker 1's voices
    f.set(range(4), "pan", [0, 0.33, 0.66, 1])         # one value per voice
    f.setv("all", "freq", numpy_array_or_list)         # one float32 per voice, in binary
    f.get(range(4), "freq")                    # -> [110.0, 220.0, 330.0, 440.0]
    f.voice(range(10, 20), False, ramp=1)      # voices 10-19 fade out over a second
    f.gain(0.5, ramp=3)

    b = f.at(0.5)                              # a stream block about half a second ahead
    f.set("all", "amp", 0, ramp=0.1, at=b)     # every worker starts the fade in that block
    f.set("all", "amp", 0.005, ramp=0.1, at=b + 100)

    with f.batch() as b:                       # one message: all of it or nothing,
        b.set("all", "freq", 220)              # from the same block
        b.voice("worker:0", "stop")
    print(b.from_block, b.results)

    for stats in f.watch(count=3):             # telemetry, a few times a second
        print(stats["stream"]["block"], [w["load"] for w in stats["workers"]])

If pyo is what you know: a `set` is `obj.setFreq(...)` reaching hundreds of voices at once,
`ramp` is a SigTo glide built into every command, and `at` is a sample-exact start time, in
blocks of `config.buffersize` frames counted from the start of the stream.

Selectors name voices: an int (one voice), a range or slice of voice numbers (range(10, 20) is
voices 10 to 19; slices are Python's, so [-10:] are the last ten), "all", "worker:K" (the
voices of worker K), or the protocol's own "N" and "A-B" (A to B inclusive). Numbers are
global: a farm that plays voices K.. of a bigger one (farm --first-voice K) names them K to
K + voices - 1 (f.first_voice, f.voices), and a slice counts its own voices from its first.

Every method that changes something returns the farm's reply as a dict: `from_block` (the
stream block the change starts in), `latency_ms` (how far ahead of the listener that is),
`id`, `voices`, `workers`, `ramp_s`. A refusal raises FarmError with the farm's own message;
nothing changed then.
"""

import array
import ctypes
import ctypes.util
import json
import math
import numbers
import os
import stat
import sys
import threading

try:  # optional: setv packs numpy arrays directly, and takes any array as values
    import numpy
except ImportError:  # pragma: no cover - the module works without it
    numpy = None

__all__ = [
    "Farm",
    "FarmError",
    "Batch",
    "Spread",
    "lin",
    "exp",
    "harmonic",
    "find_url",
    "runtime_dir",
    "REQUEST_MAX",
    "MESSAGE_MAX",
    "BATCH_MAX",
]

#: The longest request text the farm reads (a line, or a batch of lines), in bytes.
REQUEST_MAX = 65536
#: The longest message NNG lets through to the farm (a setv with its values), in bytes.
MESSAGE_MAX = 1 << 20
#: The most lines in one batch.
BATCH_MAX = 256

PARAMS = ("freq", "feedback", "amp", "pan")


class FarmError(Exception):
    """The farm refused a request (nothing changed), or could not be reached.

    str(e) is the farm's message, e.g. "freq: 30000 is out of range (0 to 24000)", or a line
    saying why nothing answered. `e.error` is the farm's message (None when nothing answered),
    `e.request` the request that was sent (its first line), `e.reply` the whole reply dict."""

    def __init__(self, message, request=None, reply=None, error=None):
        super().__init__(message)
        self.request = request
        self.reply = reply
        self.error = error


# ---- spreads: one word of the request spreads values over the selected voices ----


class Spread:
    """A value that spreads over the selected voices; make one with lin(), exp() or
    harmonic(). `text` is what the request carries; values(n) computes, here, what n voices
    get (the farm computes them itself, in double precision, and stores float32)."""

    def __init__(self, kind, a, b=None):
        self.kind, self.a, self.b = kind, float(a), None if b is None else float(b)

    @property
    def text(self):
        if self.kind == "harmonic":
            return "harmonic %s" % _num(self.a)
        return "%s %s %s" % (self.kind, _num(self.a), _num(self.b))

    def values(self, n):
        """The values voices 0..n-1 of a selection of n voices get."""
        out = []
        for k in range(n):
            x = k / (n - 1) if n > 1 else 0.0
            if self.kind == "lin":
                out.append(self.a + (self.b - self.a) * x)
            elif self.kind == "exp":
                out.append(self.a * (self.b / self.a) ** x)
            else:
                out.append(self.a * (k + 1))
        return out

    def __repr__(self):
        return "farm.%s(%s)" % (
            self.kind,
            ", ".join(repr(v) for v in (self.a, self.b) if v is not None),
        )


def lin(a, b):
    """A straight line from a (the first selected voice) to b (the last):
    f.set(range(100), "pan", lin(0, 1)) spreads 100 voices from left to right."""
    return Spread("lin", a, b)


def exp(a, b):
    """A geometric spread from a to b (both above 0), even in pitch or in decibels:
    f.set(range(12), "freq", exp(220, 440)) gives twelve voices a scale of equal steps."""
    return Spread("exp", a, b)


def harmonic(f0):
    """freq only: the k-th selected voice, counting from 0, gets f0 * (k + 1), the harmonic
    series of f0 (the farm refuses it when the top one is above half the sample rate)."""
    return Spread("harmonic", f0)


def _num(v):
    """A number as the request carries it: the shortest text that reads back exactly."""
    if isinstance(v, str):
        return v
    return repr(float(v))


# ---- NNG through ctypes ----

NNG_FLAG_ALLOC = 1
NNG_FLAG_NONBLOCK = 2
NNG_ETIMEDOUT = 5


class _Socket(ctypes.Structure):
    """nng_socket: a struct of one uint32, passed by value."""

    _fields_ = [("id", ctypes.c_uint32)]


_nng = None


def _lib():
    """libnng.so.1, loaded once, with the signatures of the functions used here."""
    global _nng
    if _nng is not None:
        return _nng
    lib = None
    for name in ("libnng.so.1", ctypes.util.find_library("nng")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        raise FarmError("cannot load libnng.so.1 (on Debian: apt-get install libnng1)")
    S, P = _Socket, ctypes.POINTER
    lib.nng_req0_open.argtypes = [P(S)]
    lib.nng_sub0_open.argtypes = [P(S)]
    lib.nng_dial.argtypes = [S, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.nng_socket_set_ms.argtypes = [S, ctypes.c_char_p, ctypes.c_int32]
    lib.nng_socket_set_size.argtypes = [S, ctypes.c_char_p, ctypes.c_size_t]
    lib.nng_socket_set.argtypes = [S, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.nng_send.argtypes = [S, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.nng_recv.argtypes = [S, ctypes.c_void_p, P(ctypes.c_size_t), ctypes.c_int]
    lib.nng_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.nng_free.restype = None
    lib.nng_close.argtypes = [S]
    lib.nng_strerror.argtypes = [ctypes.c_int]
    lib.nng_strerror.restype = ctypes.c_char_p
    _nng = lib
    return lib


def _check(rv, what):
    if rv != 0:
        raise FarmError("%s: %s" % (what, _lib().nng_strerror(rv).decode()))


def _open(kind, url, timeout):
    """A REQ or SUB socket dialled to url, its waits bounded by timeout seconds."""
    nng = _lib()
    sock = _Socket()
    _check(getattr(nng, "nng_%s0_open" % kind)(ctypes.byref(sock)), "open a %s socket" % kind)
    ms = max(1, int(timeout * 1000))
    _check(nng.nng_socket_set_ms(sock, b"recv-timeout", ms), "set recv-timeout")
    _check(nng.nng_socket_set_ms(sock, b"send-timeout", ms), "set send-timeout")
    # The reply to a get of many voices is bigger than NNG's 1 MiB default: no limit here.
    _check(nng.nng_socket_set_size(sock, b"recv-size-max", 0), "set recv-size-max")
    if kind == "sub":
        topic = b"stats "
        _check(nng.nng_socket_set(sock, b"sub:subscribe", topic, len(topic)), "subscribe")
    # Non-blocking: NNG keeps dialling in the background and the timeouts bound every wait.
    _check(nng.nng_dial(sock, url.encode(), None, NNG_FLAG_NONBLOCK), "dial " + url)
    return sock


def _close(sock):
    """nng_close, on a helper thread given a second: NNG 1.5.2 (Debian 12) can deadlock in it
    (nanomsg/nng#1543); a socket left so goes when the process exits."""
    t = threading.Thread(target=_lib().nng_close, args=(sock,), daemon=True)
    t.start()
    t.join(1.0)


def _recv(sock):
    """(rv, bytes) of one message."""
    nng = _lib()
    buf, size = ctypes.c_void_p(), ctypes.c_size_t()
    rv = nng.nng_recv(sock, ctypes.byref(buf), ctypes.byref(size), NNG_FLAG_ALLOC)
    if rv != 0:
        return rv, None
    try:
        return 0, ctypes.string_at(buf, size.value)
    finally:
        nng.nng_free(buf, size.value)


# ---- finding the farm, as farmctl does ----


_WINDOWS = os.name == "nt"


def runtime_dir():
    """Where farms put their default sockets (Linux: $XDG_RUNTIME_DIR/farm when XDG_RUNTIME_DIR
    is an absolute path, else /tmp/farm-UID) or, on Windows, their discovery files
    (%LOCALAPPDATA%\\farm)."""
    if _WINDOWS:
        return os.path.join(os.environ.get("LOCALAPPDATA") or ".", "farm")
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    return xdg + "/farm" if xdg.startswith("/") else "/tmp/farm-%d" % os.getuid()


def _alive(pid):
    if _WINDOWS:  # os.kill(pid, 0) would terminate the process there
        k = ctypes.WinDLL("kernel32", use_last_error=True)
        h = k.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not h:
            return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: someone else's
        code = ctypes.c_ulong()
        ok = k.GetExitCodeProcess(h, ctypes.byref(code))
        k.CloseHandle(h)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def _discovery_url(path):
    """The control URL in a discovery file (lines "pid N", "control URL", ...), or None."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition(" ")
                if key == "control" and value:
                    return value
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _find_in(d, discovery):
    """The control URLs of the live farms recorded in d: PID.control sockets (Linux) or
    PID.farm discovery files naming the farm's URLs (Windows, whose named pipes leave no file)."""
    found = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        names = []
    for name in names:
        pid, _, rest = name.partition(".")
        if rest != ("farm" if discovery else "control") or not pid.isdigit():
            continue
        path = os.path.join(d, name)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue
        if not (stat.S_ISREG(mode) if discovery else stat.S_ISSOCK(mode)):
            continue
        if not _alive(int(pid)):
            continue
        url = _discovery_url(path) if discovery else "ipc://" + path
        if url:
            found.append(url)
    return found


def find_url():
    """The control URL farmctl would use: $FARM_CONTROL, else the one live farm's in
    runtime_dir(). FarmError when none or several are running."""
    if os.environ.get("FARM_CONTROL"):
        return os.environ["FARM_CONTROL"]
    d = runtime_dir()
    found = _find_in(d, _WINDOWS)
    if not found:
        raise FarmError("no farm is running (no %s in %s); start one, or give its URL"
                        % ("discovery file" if _WINDOWS else "control socket", d))
    if len(found) > 1:
        raise FarmError("several farms are running: %s; choose one by its URL"
                        % ", ".join(found))
    return found[0]


# ---- the requests, as text ----


def _options(ramp, at):
    s = ""
    if ramp is not None:
        s += " ramp " + _num(ramp)
    if at is not None:
        if isinstance(at, bool) or int(at) != at or at < 0:
            raise ValueError("at: a stream block is a whole number from 0, not %r" % (at,))
        s += " at %d" % int(at)
    return s


def _play_word(play):
    if play in ("play", "stop"):
        return play
    if isinstance(play, (bool, int)):
        return "play" if play else "stop"
    raise ValueError("play: True/False or 'play'/'stop', not %r" % (play,))


def _param(param, playing=False):
    if param in PARAMS or (playing and param == "playing"):
        return param
    raise ValueError("unknown parameter %r (%s)"
                     % (param, ", ".join(PARAMS + (("playing",) if playing else ()))))


def _flat(values):
    """A flat list of Python numbers from a list, tuple, array, numpy array or generator."""
    if hasattr(values, "tolist"):  # numpy arrays and array.array
        values = values.tolist()
    out = list(values)
    for v in out:
        if not isinstance(v, numbers.Real):
            raise ValueError("a value per voice must be a number, not %r" % (v,))
    return out


def _float32(values):
    """The values of a get as the float32 the farm holds. Its JSON carries them as doubles of
    15 significant digits when those read back within a rounding error (cJSON's choice),
    which is not always the float32's own double: rounding to float32 gets that back."""
    if values and not isinstance(values[0], bool):
        return array.array("f", values).tolist()
    return values


def _pack(values):
    """One float32 per value, little-endian, as setv carries them."""
    if isinstance(values, (bytes, bytearray, memoryview)):
        return bytes(values)  # already packed
    if numpy is not None and isinstance(values, numpy.ndarray):
        return numpy.ascontiguousarray(values, dtype="<f4").ravel().tobytes()
    a = array.array("f", _flat(values))
    if a.itemsize != 4:  # pragma: no cover - every platform Python runs on has 4-byte floats
        raise FarmError("this Python's C float is not 4 bytes")
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


class _Commands:
    """The requests, shared by Farm (which sends each at once) and Batch (which collects
    lines to send as one message). _send(line, kind) does the sending or the collecting."""

    def _voice_count(self):
        raise NotImplementedError

    def _first_voice(self):
        raise NotImplementedError

    def selector(self, sel):
        """The protocol's text for a selector: an int, a range or slice (step 1), "all",
        "worker:K", "N" or "A-B"."""
        if isinstance(sel, str):
            if not sel or any(c.isspace() for c in sel):
                raise ValueError("selector %r: all, N, A-B or worker:K" % sel)
            return sel
        if isinstance(sel, slice):  # over the farm's own voices, whatever their numbers
            first = self._first_voice()
            sel = range(*sel.indices(self._voice_count()))
            sel = range(first + sel.start, first + sel.stop, sel.step)
        if isinstance(sel, range):
            if sel.step != 1 or len(sel) == 0:
                raise ValueError("selector %r: voices are selected in runs, step 1, "
                                 "at least one" % (sel,))
            if len(sel) == 1:
                return "%d" % sel.start
            return "%d-%d" % (sel.start, sel[-1])
        if isinstance(sel, bool) or not isinstance(sel, numbers.Integral):
            raise ValueError("selector %r: an int, a range or slice, 'all' or 'worker:K'"
                             % (sel,))
        return "%d" % int(sel)

    def _set_line(self, sel, param, value, ramp, at):
        s, p = self.selector(sel), _param(param)
        if getattr(value, "ndim", None) == 0:  # a numpy scalar or 0-d array: a number
            value = value.item()
        if isinstance(value, Spread):
            text = value.text
        elif isinstance(value, (numbers.Real, str)):
            text = _num(value)
        else:
            vals = _flat(value)
            if not vals:
                raise ValueError("set %s %s: no values" % (s, p))
            text = ",".join(_num(v) for v in vals)
        return "set %s %s %s%s" % (s, p, text, _options(ramp, at))

    def set(self, sel, param, value, ramp=None, at=None):
        """Set param (freq, feedback, amp or pan) of the voices sel selects.

        value: one number for all of them; a sequence (list, tuple, numpy array) of one value
        per selected voice, in voice order; or a spread, lin(a, b), exp(a, b), harmonic(f0).
        ramp: seconds to glide there, linearly, from wherever each voice is (0: a jump at the
        block boundary; default the farm's, 5 ms). at: the stream block to start in, exact on
        every worker (see at()); default the earliest all the voices' workers can reach.

            f.set("all", "freq", 440, ramp=2)
            f.set(range(3), "amp", [0.01, 0.005, 0.0025])
            f.set("all", "pan", lin(0, 1))

        A list too long for one request line (64 KiB of text) goes as a setv instead."""
        line = self._set_line(sel, param, value, ramp, at)
        if len(line) > REQUEST_MAX - 2 and not isinstance(value, (Spread, numbers.Real, str)):
            return self._long_set(sel, param, value, ramp, at)
        return self._send(line, "set")

    def _long_set(self, sel, param, value, ramp, at):
        raise ValueError("set: %d values make a line longer than a request may be (64 KiB); "
                         "use setv" % len(_flat(value)))

    def get(self, sel, param):
        """What each selected voice is set to: a list, in voice order. param is freq,
        feedback, amp or pan (the target of any ramp under way, as float32 reads back), or
        "playing" (True/False)."""
        return self._send("get %s %s" % (self.selector(sel), _param(param, True)), "get")

    def voice(self, sel, play, ramp=None, at=None):
        """Start (play=True or "play") or silence (False or "stop") the voices sel selects,
        fading over ramp seconds. A stopped voice costs no CPU and keeps its settings."""
        return self._send("voice %s %s%s" % (self.selector(sel), _play_word(play),
                                              _options(ramp, at)), "voice")

    def worker(self, k, play, ramp=None, at=None):
        """All the voices of worker k: the same as voice("worker:K", play, ...)."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise ValueError("worker: a worker number, not %r" % (k,))
        return self._send("worker %d %s%s" % (k, _play_word(play), _options(ramp, at)),
                          "worker")

    def gain(self, value, ramp=None, at=None):
        """The master gain (0 to 1000) before farm's limiter, gliding over ramp seconds."""
        return self._send("gain %s%s" % (_num(value), _options(ramp, at)), "gain")

    def status(self):
        """The farm's configuration ("config"), its stream's counters ("stream", with
        "block", the stream block that plays next) and each worker's ("workers")."""
        return self._send("status", "status")


class Farm(_Commands):
    """One connection to a running farm's control socket.

        f = Farm()                                   # $FARM_CONTROL, or the one farm running
        f = Farm("ipc:///tmp/farm-1000/4242.control", timeout=5)
        with Farm() as f: ...                        # closed at the end

    url: any NNG URL the farm listens on (it prints it when it starts: "farm: control URL").
    timeout: seconds to wait for each reply; FarmError when nothing answers in time.
    One Farm is one REQ socket: requests from several threads take turns."""

    def __init__(self, url=None, timeout=2.0):
        if timeout <= 0:
            raise ValueError("timeout must be above 0")
        self.url = url or find_url()
        self.timeout = float(timeout)
        self._lock = threading.Lock()
        self._config = None
        self._sock = _open("req", self.url, self.timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "Farm(%r)" % self.url

    def close(self):
        """Close the socket. The farm plays on."""
        if self._sock is not None:
            sock, self._sock = self._sock, None
            _close(sock)

    # ---- the wire ----

    def request(self, text):
        """Send one request (text, or bytes for a setv) and return the reply as a dict.
        FarmError with the farm's message when it says "ok": false, or when nothing answers
        within the timeout.

            f.request("set 0-9 freq 220 ramp 0.5")
            f.request("set 0-1 amp 0.1\\nset 2-3 amp 0.2")   # two lines: a batch"""
        if self._sock is None:
            raise FarmError("this Farm is closed")
        data = text.encode() if isinstance(text, str) else bytes(text)
        head = data.split(b"\n", 1)[0].decode(errors="replace")
        if len(data) > MESSAGE_MAX:
            raise FarmError("a message of %d bytes is over the %d NNG lets through to the farm"
                            % (len(data), MESSAGE_MAX), request=head)
        nng = _lib()
        with self._lock:
            rv = nng.nng_send(self._sock, data, len(data), 0)
            if rv == 0:
                rv, reply_bytes = _recv(self._sock)
        if rv == NNG_ETIMEDOUT:
            raise FarmError("nothing answered at %s within %g s: is farm running there? (farm "
                            "prints its control URL when it starts)" % (self.url, self.timeout),
                            request=head)
        if rv != 0:
            raise FarmError("%s: %s" % (self.url, nng.nng_strerror(rv).decode()), request=head)
        reply = json.loads(reply_bytes.decode())
        if not reply.get("ok"):
            msg = reply.get("error", reply_bytes.decode())
            raise FarmError(msg, request=head, reply=reply, error=msg)
        return reply

    def _send(self, line, kind):
        reply = self.request(line)
        if kind == "get":
            return _float32(reply["values"])
        if kind == "status":
            self._config = reply["config"]
        return reply

    # ---- what the farm is ----

    @property
    def config(self):
        """The farm's configuration (status()["config"]), asked once and kept: voices,
        workers, sample_rate, buffersize, ring_blocks, channels, freq_min, ..."""
        if self._config is None:
            self.status()
        return self._config

    def _voice_count(self):
        return int(self.config["voices"])

    def _first_voice(self):
        return int(self.config.get("first_voice", 0))

    @property
    def voices(self):
        """How many voices the farm has (numbered first_voice to first_voice + voices - 1)."""
        return self._voice_count()

    @property
    def first_voice(self):
        """The number of the farm's first voice: 0, or its --first-voice when it plays its
        part of a bigger farm. Voices are named by these global numbers."""
        return self._first_voice()

    @property
    def block_seconds(self):
        """The length of one stream block in seconds (buffersize / sample_rate)."""
        return self.config["buffersize"] / self.config["sample_rate"]

    def block(self):
        """The stream block that plays next (status()["stream"]["block"]): blocks of
        buffersize frames counted from the start of the stream (block 0, where --record
        starts)."""
        return int(self.status()["stream"]["block"])

    def at(self, seconds=0.1):
        """A block to give as at=: the earliest block a change sent now can reach (the
        workers render ring_blocks ahead of the stream), plus `seconds` of headroom for the
        trip of your request and anything else your program does before sending it.

            b = f.at()                    # about 0.1 s ahead of the earliest
            f.set("all", "freq", 220, at=b)
            f.set("all", "freq", 330, at=b + round(0.5 / f.block_seconds))   # half a second on

        A block that is too soon by the time the request arrives is refused ("... the
        earliest is N"): nothing changes, and you may send it again aimed later."""
        if seconds < 0:
            raise ValueError("seconds must be 0 or more")
        cfg = self.config
        return self.block() + int(cfg["ring_blocks"]) + 1 + math.ceil(seconds /
                                                                      self.block_seconds)

    # ---- the requests that only Farm sends ----

    def setv(self, sel, param, values, ramp=None, at=None):
        """Set param of the voices sel selects to one value each, sent in binary: one
        little-endian float32 per voice after the request line. values: a list, tuple,
        array.array or numpy array of exactly as many numbers as voices selected (or bytes
        already packed). Up to 1 MiB a message: 262,000-odd voices.

            f.setv("all", "freq", [220.0 * (1 + k % 7) for k in range(f.voices)])
            f.setv(range(1000), "amp", numpy.random.uniform(0, 0.001, 1000), ramp=0.05)

        The fastest way to move many voices at once; it goes alone, never in a batch."""
        head = "setv %s %s%s\n" % (self.selector(sel), _param(param), _options(ramp, at))
        return self.request(head.encode() + _pack(values))

    def _long_set(self, sel, param, value, ramp, at):
        return self.setv(sel, param, value, ramp, at)

    def batch(self, lines=None):
        """Several requests as one message: the farm checks them all, then applies all of them
        from the same stream block, or none (the error names the line: "line 2: ...").

        With lines (request texts), sends them now and returns the reply, whose "results"
        holds one reply per line and "from_block" the block they share:

            f.batch(["set 0-9 freq 220", "voice 10-19 stop"])

        Without, returns a Batch to fill with the same methods as Farm (set, voice, worker,
        gain, get, status), sent when the with block ends (not sent if it raises):

            with f.batch() as b:
                b.set(range(10), "freq", 220)
                b.voice(range(10, 20), "stop")
                b.get(range(10), "freq")
            b.from_block, b.results[2]["values"]

        At most 256 lines and 64 KiB; a batch can name one block (at=) or none."""
        if lines is None:
            return Batch(self)
        b = Batch(self)
        b.lines.extend(lines)
        return b.send()

    def quit(self):
        """Stop the farm: it fades out over 10 ms, stops its workers and exits 0."""
        return self.request("quit")

    def watch(self, url=None, count=None, timeout=None):
        """A generator of telemetry: one dict a message (time, stream, workers; the farm
        publishes --telemetry-rate times a second, 10 by default), from now on.

            for t in f.watch():
                print(t["stream"]["block"], max(w["load"] for w in t["workers"]))

        url: the telemetry socket (default: the one the farm's status names). count: stop
        after that many. timeout: seconds without a message before checking that the farm is
        still there (status); FarmError when it is not. A subscriber that reads slowly loses
        messages, never slows the farm."""
        url = url or self.config["telemetry"]
        timeout = float(timeout or self.timeout)
        sock = _open("sub", url, timeout)
        topic = b"stats "
        try:
            n = 0
            while count is None or n < count:
                rv, msg = _recv(sock)
                if rv == NNG_ETIMEDOUT:
                    self.status()  # raises when the farm has gone
                    continue
                _check(rv, url)
                if not msg.startswith(topic):
                    continue
                yield json.loads(msg[len(topic):].decode())
                n += 1
        finally:
            _close(sock)


class Batch(_Commands):
    """Lines collected for one message; see Farm.batch(). Its set, voice, worker, gain, get
    and status add a line (and return its index in results); send() sends them all. After
    sending: reply (the farm's), results (one dict per line, "values" for a get) and
    from_block (the block the changes start in; None with no change in the batch)."""

    def __init__(self, farm):
        self.farm = farm
        self.lines = []
        self.reply = None
        self.results = None
        self.from_block = None

    def _voice_count(self):
        return self.farm._voice_count()

    def _first_voice(self):
        return self.farm._first_voice()

    def _send(self, line, kind):
        if self.reply is not None:
            raise FarmError("this batch has been sent")
        if len(self.lines) == BATCH_MAX:
            raise ValueError("a batch holds at most %d lines" % BATCH_MAX)
        self.lines.append(line)
        return len(self.lines) - 1

    def setv(self, *args, **kwargs):
        raise ValueError("setv goes alone, not in a batch: its values follow its line in the "
                         "message; send it before or after, with the same at= to land together")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.reply is None:
            self.send()

    def send(self):
        """Send the lines as one message; returns the farm's reply. An empty batch sends
        nothing."""
        if self.reply is not None:
            raise FarmError("this batch has been sent")
        if not self.lines:
            self.reply = {"ok": True, "results": []}
            self.results = []
            return self.reply
        for line in self.lines:
            if "\n" in line:
                raise ValueError("a batch line holds no newline: %r" % line)
        reply = self.farm.request("\n".join(self.lines))
        # One line is one request: its reply is that line's own. A batch of changes and
        # reads gives no from_block of its own: it is its changes'. Made alike here.
        results = reply.get("results")
        if results is None or len(self.lines) == 1:
            results = [dict(reply)]
        for r in results:
            r.setdefault("ok", True)
            if "values" in r:
                r["values"] = _float32(r["values"])
        blocks = [r["from_block"] for r in results if "from_block" in r]
        from_block = reply.get("from_block", blocks[0] if blocks else None)
        self.reply = {"ok": True, "results": results, "from_block": from_block}
        self.results = results
        self.from_block = from_block
        return self.reply
