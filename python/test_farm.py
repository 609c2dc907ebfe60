"""Tests of farm.py against a real farm: every method, each form of value read back with get,
at B, batches, telemetry, errors, and the examples that use the module (resynth.py, sweep.py).

    FARM_BUILD=build /usr/bin/python3 -m unittest -v test_farm     # from python/
    ctest --test-dir build -R python

Each test starts its own farm (null sink, 2 workers, 40 voices, sockets in a temporary
directory) and stops it in tearDown, checking that no process of it is left. Standard library
only; the numpy cases are skipped when numpy is not installed.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import farm  # noqa: E402

try:
    import numpy
except ImportError:
    numpy = None

BUILD = os.path.abspath(os.environ.get("FARM_BUILD", os.path.join(HERE, "..", "build")))
EXAMPLES = os.path.join(HERE, "..", "examples")
VOICES = 40
TIMEOUT = 10.0  # a reply on a loaded machine


def f32(x):
    """x as float32 reads back: what the farm stores."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def tagged(tag):
    """Pids of live processes whose environment holds FARM_TEST_TAG=tag (farm and workers)."""
    want = ("FARM_TEST_TAG=" + tag).encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as e:
                env = e.read().split(b"\0")
        except OSError:
            continue
        if want in env:  # a zombie's environ is empty: only the living count
            pids.append(int(name))
    return pids


class FarmCase(unittest.TestCase):
    """Starts a farm for each test (ARGS after the common ones) and stops it after."""
    ARGS = ("--total-voices", str(VOICES))

    def setUp(self):
        for prog in ("farm", "farm-worker"):
            if not os.access(os.path.join(BUILD, prog), os.X_OK):
                self.fail("no %s in %s (build first, or set FARM_BUILD)" % (prog, BUILD))
        self.dir = tempfile.mkdtemp(prefix="farmpy-")
        self.control = "ipc://%s/c" % self.dir
        self.telemetry = "ipc://%s/t" % self.dir
        self.tag = "farmpy-%d-%d-%s" % (os.getpid(), id(self), self._testMethodName)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
        env.update(FARM_TEST_TAG=self.tag, FARM_WORKER=os.path.join(BUILD, "farm-worker"),
                   JACK_NO_START_SERVER="1")
        self.err_path = os.path.join(self.dir, "stderr")
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [os.path.join(BUILD, "farm"), "--null-sink", "--workers", "2", "--control",
                 self.control, "--telemetry", self.telemetry] + list(self.ARGS),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        end = time.monotonic() + 30  # bounded in time: a loaded machine starts slowly
        while time.monotonic() < end:
            if "farm: control " in self.stderr():
                break
            if self.proc.poll() is not None:
                self.fail("farm exited %d: %s" % (self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        else:
            self.fail("farm printed no control URL: %s" % self.stderr())
        self.farms = []
        self.f = self.connect()

    def stderr(self):
        with open(self.err_path, errors="replace") as e:
            return e.read()

    def connect(self, url=None, timeout=TIMEOUT):
        f = farm.Farm(url or self.control, timeout=timeout)
        self.farms.append(f)
        return f

    def tearDown(self):
        for f in getattr(self, "farms", []):
            f.close()
        proc = getattr(self, "proc", None)
        if proc is None:
            return
        quit_ok = True
        if proc.poll() is None:
            try:
                farm.Farm(self.control, timeout=TIMEOUT).quit()
            except farm.FarmError:
                quit_ok = False
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            quit_ok = False
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        left = tagged(self.tag)
        end = time.monotonic() + 10
        while left and time.monotonic() < end:
            time.sleep(0.05)
            left = tagged(self.tag)
        for pid in left:  # only our own, by their tag
            os.kill(pid, signal.SIGKILL)
        err = self.stderr()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.assertTrue(quit_ok, "farm did not stop on quit: %s" % err)
        self.assertEqual(proc.returncode, 0, "farm's exit status: %s" % err)
        self.assertEqual(left, [], "processes left behind")
        self.assertFalse(os.path.exists(self.control[6:]), "the socket file is removed")

    def run_example(self, *args, timeout=120):
        return subprocess.run([sys.executable, os.path.join(EXAMPLES, args[0])] + list(args[1:]),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)



class FarmTest(FarmCase):
    # ---- what the farm is ----

    def test_status_config_and_block(self):
        s = self.f.status()
        self.assertTrue(s["ok"])
        self.assertEqual(s["config"]["voices"], VOICES)
        self.assertEqual(s["config"]["workers"], 2)
        self.assertEqual(s["config"]["control"], self.control)
        self.assertEqual(len(s["workers"]), 2)
        self.assertEqual(self.f.voices, VOICES)
        self.assertAlmostEqual(self.f.block_seconds, 256 / 48000)
        b1 = b2 = self.f.block()
        end = time.monotonic() + 30  # a hang guard: the null sink moves on every 5.3 ms
        while b2 <= b1 and time.monotonic() < end:
            time.sleep(0.02)
            b2 = self.f.block()
        self.assertGreater(b2, b1, "the stream moves on")
        a = self.f.at(0.5)
        self.assertGreaterEqual(a, b2 + s["config"]["ring_blocks"] + 1 + 0.5 / self.f.block_seconds)
        self.assertIn("setv", self.f.request("help")["help"])

    def test_finding_the_farm(self):
        old = {k: os.environ.get(k) for k in ("FARM_CONTROL", "XDG_RUNTIME_DIR")}
        run = os.path.join(self.dir, "run")
        os.makedirs(os.path.join(run, "farm"), mode=0o700)
        socks = []
        try:
            os.environ["FARM_CONTROL"] = self.control
            f = self.connect()
            self.assertEqual(f.url, self.control)
            self.assertEqual(f.voices, VOICES)
            del os.environ["FARM_CONTROL"]
            os.environ["XDG_RUNTIME_DIR"] = run
            self.assertEqual(farm.runtime_dir(), run + "/farm")
            with self.assertRaisesRegex(farm.FarmError, "no farm is running"):
                farm.Farm()
            # a socket whose process is gone is ignored; one alive is found
            dead = subprocess.Popen(["true"])
            dead.wait()
            for pid in (dead.pid, self.proc.pid):
                s = socket.socket(socket.AF_UNIX)
                s.bind(os.path.join(run, "farm", "%d.control" % pid))
                socks.append(s)
            self.assertEqual(farm.find_url(), "ipc://%s/farm/%d.control" % (run, self.proc.pid))
            s = socket.socket(socket.AF_UNIX)
            s.bind(os.path.join(run, "farm", "%d.control" % os.getpid()))
            socks.append(s)
            with self.assertRaisesRegex(farm.FarmError, "several farms are running"):
                farm.find_url()
            os.environ["XDG_RUNTIME_DIR"] = "relative"
            self.assertEqual(farm.runtime_dir(), "/tmp/farm-%d" % os.getuid())
            # Windows' discovery files, read the same way: the live farm's control URL
            files = os.path.join(self.dir, "discovery")
            os.makedirs(files)
            for pid in (dead.pid, self.proc.pid):
                with open(os.path.join(files, "%d.farm" % pid), "w") as f:
                    f.write("pid %d\ncontrol ipc://farm-%d.control\ntelemetry x\n" % (pid, pid))
            with open(os.path.join(files, "%d.control" % os.getpid()), "w") as f:
                f.write("control ipc://not-a-discovery-file\n")
            self.assertEqual(farm._find_in(files, True), ["ipc://farm-%d.control" % self.proc.pid])
        finally:
            for s in socks:
                s.close()
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # ---- set, in every form, read back with get ----

    def test_set_number(self):
        r = self.f.set("all", "freq", 440, ramp=0.2)
        for key in ("from_block", "latency_blocks", "latency_ms", "id", "voices", "workers"):
            self.assertIn(key, r)
        self.assertEqual(r["voices"], VOICES)
        self.assertEqual(r["workers"], [0, 1])
        self.assertEqual(r["ramp_s"], 0.2)
        self.assertEqual(self.f.get("all", "freq"), [440.0] * VOICES)
        self.f.set(7, "amp", 0.1, ramp=0)
        self.assertEqual(self.f.get(range(6, 9), "amp"), [f32(0.005), f32(0.1), f32(0.005)])

    def test_set_list(self):
        vals = [0.001 * (k + 1) for k in range(10)]
        r = self.f.set(range(15, 25), "amp", vals, ramp=0.05)
        self.assertEqual(r["voices"], 10)
        self.assertEqual(r["workers"], [0, 1], "voices 15-24 span both workers")
        self.assertEqual(self.f.get(range(15, 25), "amp"), [f32(v) for v in vals])
        self.f.set(slice(0, 3), "pan", (0, 0.5, 1))  # a tuple, a slice
        self.assertEqual(self.f.get(slice(0, 3), "pan"), [0.0, 0.5, 1.0])
        with self.assertRaisesRegex(farm.FarmError, "3 values for the 4 voices"):
            self.f.set("0-3", "pan", [0, 0.5, 1])

    def check_spread(self, sel, param, spread, n):
        self.f.set(sel, param, spread)
        got = self.f.get(sel, param)
        self.assertEqual(len(got), n)
        for k, (g, want) in enumerate(zip(got, spread.values(n))):
            self.assertAlmostEqual(g, f32(want), delta=abs(want) * 1e-6, msg="voice %d" % k)
        return got

    def test_set_lin(self):
        got = self.check_spread("worker:1", "pan", farm.lin(0, 1), VOICES // 2)
        self.assertEqual((got[0], got[-1]), (0.0, 1.0))

    def test_set_exp(self):
        got = self.check_spread(range(13), "freq", farm.exp(220, 440), 13)
        self.assertEqual((got[0], got[-1]), (220.0, 440.0))
        self.assertAlmostEqual(got[6] / got[0], 2 ** 0.5, places=5)

    def test_set_harmonic(self):
        got = self.check_spread(range(10, 18), "freq", farm.harmonic(110), 8)
        self.assertEqual(got, [110.0 * (k + 1) for k in range(8)])
        with self.assertRaisesRegex(farm.FarmError, "harmonic is for freq"):
            self.f.set("all", "amp", farm.harmonic(0.01))

    def test_setv_list(self):
        vals = [100.0 + 10.5 * k for k in range(VOICES)]
        r = self.f.setv("all", "freq", vals, ramp=0.1)
        self.assertEqual(r["voices"], VOICES)
        self.assertEqual(r["applied"], "freq vector")
        self.assertEqual(self.f.get("all", "freq"), [f32(v) for v in vals])
        self.f.setv(range(3), "amp", (0.25, 0.5, 0.75))
        self.assertEqual(self.f.get("0-2", "amp"), [0.25, 0.5, 0.75])
        with self.assertRaisesRegex(farm.FarmError, "8 bytes for 3 voices"):
            self.f.setv(range(3), "amp", [0.1, 0.2])
        with self.assertRaisesRegex(farm.FarmError, "out of range"):
            self.f.setv(range(2), "amp", [0.1, 2.0])
        self.assertEqual(self.f.get("0-2", "amp"), [0.25, 0.5, 0.75], "refused: unchanged")

    @unittest.skipIf(numpy is None, "numpy is not installed (apt-get install python3-numpy)")
    def test_setv_numpy(self):
        vals = numpy.linspace(200, 300, VOICES // 2)  # float64: packed as float32 here
        self.f.setv("worker:0", "freq", vals, at=self.f.at(2.0))
        self.assertEqual(self.f.get("worker:0", "freq"),
                         vals.astype(numpy.float32).astype(float).tolist())
        amps = numpy.full(5, 0.02, dtype=numpy.float32)
        self.f.setv(range(3, 8), "amp", amps)
        self.assertEqual(self.f.get(range(3, 8), "amp"), [f32(0.02)] * 5)
        self.f.set(range(4), "pan", numpy.array([1, 0, 1, 0]))  # an array as a list, too
        self.assertEqual(self.f.get(range(4), "pan"), [1.0, 0.0, 1.0, 0.0])

    def test_selectors(self):
        self.f.set("all", "amp", 0)
        cases = [(5, [5]), ("5", [5]), ("3-6", [3, 4, 5, 6]), (range(30, 33), [30, 31, 32]),
                 (slice(-2, None), [38, 39]), ("worker:1", list(range(20, 40)))]
        for sel, voices in cases:
            self.f.set("all", "amp", 0)
            self.f.set(sel, "amp", 0.5)
            got = self.f.get("all", "amp")
            self.assertEqual([v for v in range(VOICES) if got[v]], voices, "selector %r" % (sel,))
        for bad in (range(0, 10, 2), range(3, 3), 1.5, True, "a b"):
            with self.assertRaises(ValueError, msg="selector %r" % (bad,)):
                self.f.set(bad, "amp", 0.1)
        with self.assertRaisesRegex(farm.FarmError, "voice 40 does not exist"):
            self.f.get(40, "freq")

    # ---- voices, workers, gain ----

    def test_voice_worker_gain(self):
        r = self.f.voice(range(0, 5), False, ramp=0.05)
        self.assertEqual(r["applied"], "stop")
        self.assertEqual(self.f.get(range(0, 6), "playing"), [False] * 5 + [True])
        self.f.voice(range(0, 5), "play")
        self.assertEqual(self.f.get(range(0, 6), "playing"), [True] * 6)
        r = self.f.worker(1, "stop")
        self.assertEqual((r["voices"], r["workers"]), (VOICES // 2, [1]))
        self.assertEqual(self.f.get("worker:1", "playing"), [False] * (VOICES // 2))
        self.assertEqual(self.f.get("worker:0", "playing"), [True] * (VOICES // 2))
        self.f.worker(1, True)
        self.assertEqual(self.f.get("all", "playing"), [True] * VOICES)
        r = self.f.gain(0.5, ramp=0.1)
        self.assertEqual((r["applied"], r["ramp_s"]), ("gain 0.5", 0.1))
        self.assertEqual(self.f.status()["config"]["gain"], 0.5)
        with self.assertRaises(ValueError):
            self.f.voice(0, "pause")

    # ---- at B ----

    def test_at_block(self):
        b = self.f.at(2.0)  # two seconds of headroom: accepted even on a loaded machine
        r = self.f.set("all", "freq", 330, ramp=0, at=b)
        self.assertEqual(r["from_block"], b, "applied from the block named")
        r = self.f.voice(range(2), "stop", at=b + 10)
        self.assertEqual(r["from_block"], b + 10)
        r = self.f.gain(0.9, at=b)
        self.assertEqual(r["from_block"], b)
        gone = self.f.block()  # playing already: always too soon
        with self.assertRaisesRegex(farm.FarmError, r"too soon.*the earliest is \d+") as e:
            self.f.set("all", "freq", 550, at=gone)
        earliest = int(str(e.exception).rsplit(" ", 1)[1])
        self.assertGreater(earliest, gone)
        self.assertEqual(self.f.get("all", "freq"), [330.0] * VOICES, "refused: unchanged")
        with self.assertRaises(ValueError):
            self.f.set("all", "freq", 550, at=-1)

    # ---- batches ----

    def test_batch_applies_together(self):
        with self.f.batch() as b:
            b.set(range(10), "freq", 220)
            b.set(range(10), "amp", farm.lin(0.01, 0.001), ramp=0.1)
            b.voice(range(30, 40), "stop")
            b.gain(0.8)
            i = b.get(range(10), "freq")
        self.assertEqual(len(b.results), 5)
        self.assertTrue(all(r["ok"] for r in b.results))
        self.assertEqual(b.results[i]["values"], [220.0] * 10, "a get sees the batch's changes")
        blocks = {r["from_block"] for r in b.results if "from_block" in r}
        self.assertEqual(blocks, {b.from_block}, "all from one block")
        self.assertEqual(self.f.get(range(30, 40), "playing"), [False] * 10)
        # from a list of lines, with one block named
        at = self.f.at(2.0)
        r = self.f.batch(["set 0-4 freq 110 at %d" % at, "set 5-9 freq 120"])
        self.assertEqual(r["from_block"], at)
        self.assertEqual(self.f.get(range(10), "freq"), [110.0] * 5 + [120.0] * 5)
        # one line: the same shape
        r = self.f.batch(["set 0 freq 100"])
        self.assertEqual(len(r["results"]), 1)
        self.assertEqual(r["from_block"], r["results"][0]["from_block"])

    def test_batch_with_a_bad_line_changes_nothing(self):
        before = {p: self.f.get("all", p) for p in ("freq", "amp", "playing")}
        with self.assertRaisesRegex(farm.FarmError, r"^line 3: amp: 7\.0 is out of range"):
            with self.f.batch() as b:
                b.set("all", "freq", 1000)
                b.voice("worker:0", "stop")
                b.set(range(5), "amp", 7)
                b.set("all", "freq", 2000)
        with self.assertRaisesRegex(farm.FarmError, "line 2: unknown command"):
            self.f.batch(["set all amp 0.5", "bogus"])
        with self.assertRaisesRegex(farm.FarmError, "one block"):
            at = self.f.at(1.0)
            self.f.batch(["set all amp 0.5 at %d" % at, "set all freq 500 at %d" % (at + 1)])
        after = {p: self.f.get("all", p) for p in ("freq", "amp", "playing")}
        self.assertEqual(before, after)
        # an exception inside the with block sends nothing
        with self.assertRaises(KeyError):
            with self.f.batch() as b:
                b.set("all", "freq", 1000)
                raise KeyError("no")
        self.assertIsNone(b.reply)
        self.assertEqual(self.f.get("all", "freq"), before["freq"])
        with self.assertRaises(ValueError):
            self.f.batch().setv("all", "freq", [1] * VOICES)

    # ---- telemetry ----

    def test_watch(self):
        seen = list(self.f.watch(count=3))
        self.assertEqual(len(seen), 3)
        for t in seen:
            self.assertTrue(set(t) >= {"time", "stream", "workers"}, t)
            self.assertEqual(len(t["workers"]), 2)
        self.assertLess(seen[0]["stream"]["block"], seen[2]["stream"]["block"])
        w = self.f.watch(url=self.telemetry)
        self.assertIn("stream", next(w))
        w.close()

    # ---- errors ----

    def test_errors(self):
        with self.assertRaises(farm.FarmError) as e:
            self.f.set("all", "freq", 30000)
        self.assertEqual(str(e.exception), "freq: 30000.0 is out of range (0 to 24000)")
        self.assertEqual(e.exception.error, str(e.exception))
        self.assertEqual(e.exception.request, "set all freq 30000.0")
        self.assertFalse(e.exception.reply["ok"])
        with self.assertRaisesRegex(farm.FarmError, "unknown command 'bogus'"):
            self.f.request("bogus")
        with self.assertRaisesRegex(farm.FarmError, "exp spreads between values above 0"):
            self.f.set("all", "amp", farm.exp(0, 1))
        with self.assertRaises(ValueError):
            self.f.set("all", "loudness", 1)
        with self.assertRaises(ValueError):
            self.f.set("all", "amp", ["a"] * VOICES)
        t0 = time.monotonic()
        nobody = self.connect(url="ipc://%s/nobody" % self.dir, timeout=0.3)
        with self.assertRaisesRegex(farm.FarmError, "nothing answered"):
            nobody.status()
        # 16 times the client's timeout: catches a client that ignores it, not a slow machine
        self.assertLess(time.monotonic() - t0, 5)
        self.f.close()
        with self.assertRaisesRegex(farm.FarmError, "closed"):
            self.f.status()

    def test_quit(self):
        self.assertTrue(self.f.quit()["ok"])
        self.assertEqual(self.proc.wait(20), 0)
        with self.assertRaises(farm.FarmError):
            self.connect(timeout=0.3).status()

    # ---- the examples ----

    @unittest.skipIf(numpy is None, "resynth.py needs numpy (apt-get install python3-numpy)")
    def test_resynth(self):
        r = self.run_example("resynth.py", "--url", self.control, "--frames", "6", "--hold",
                             "--timeout", str(TIMEOUT))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("6 frames played", r.stdout)
        amps, freqs = self.f.get("all", "amp"), self.f.get("all", "freq")
        self.assertGreater(sum(1 for a in amps if a > 0), 3, "several partials sound")
        self.assertLessEqual(sum(amps), 0.5 + 1e-6, "--level 0.5: the amps add up to at most it")
        loudest = freqs[amps.index(max(amps))]
        self.assertAlmostEqual(loudest, 220, delta=220 * 0.03, msg="the fundamental")

    def test_sweep(self):
        before = self.f.get("all", "freq")
        r = self.run_example("sweep.py", "--url", self.control, "--steps", "2", "--step-time",
                             "0.05", "--restore-ramp", "0.05")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("done", r.stdout)
        after = self.f.get("all", "freq")
        for v, (a, b) in enumerate(zip(before, after)):
            self.assertAlmostEqual(a, b, delta=a * 1e-6, msg="voice %d is back" % v)



class GlobalNumbersTest(FarmCase):
    """A farm that plays voices 1000-1039 of a bigger one (--first-voice 1000): every selector
    names them by those numbers, and the examples find them."""
    FIRST = 1000
    ARGS = ("--total-voices", str(VOICES), "--first-voice", str(FIRST))

    def test_status_and_selectors_use_global_numbers(self):
        self.assertEqual(self.f.status()["config"]["first_voice"], self.FIRST)
        self.assertEqual((self.f.first_voice, self.f.voices), (self.FIRST, VOICES))
        cases = [(1005, [1005]), ("1003-1004", [1003, 1004]), (range(1030, 1032), [1030, 1031]),
                 (slice(-2, None), [1038, 1039]), (slice(0, 2), [1000, 1001]),
                 ("worker:1", list(range(1020, 1040)))]
        for sel, voices in cases:
            self.f.set("all", "amp", 0)
            self.f.set(sel, "amp", 0.5)
            got = self.f.get("all", "amp")
            self.assertEqual([self.FIRST + k for k in range(VOICES) if got[k]], voices,
                             "selector %r" % (sel,))
        self.f.set(range(1000, 1003), "freq", [300, 400, 500])
        self.assertEqual(self.f.get("1000-1002", "freq"), [300, 400, 500])
        with self.assertRaisesRegex(farm.FarmError,
                                    "voice 999 is not on this farm \\(it has voices 1000-1039\\)"):
            self.f.get(999, "freq")
        with self.assertRaisesRegex(farm.FarmError, "voice 1040 is not on this farm"):
            self.f.set(1040, "freq", 440)

    def test_sweep_puts_back_the_voices_of_their_global_numbers(self):
        before = self.f.get("all", "freq")
        r = self.run_example("sweep.py", "--url", self.control, "--steps", "2", "--step-time",
                             "0.05", "--restore-ramp", "0.05")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        after = self.f.get("all", "freq")
        for v, (a, b) in enumerate(zip(before, after)):
            self.assertAlmostEqual(a, b, delta=a * 1e-6, msg="voice %d is back" % (1000 + v))


if __name__ == "__main__":
    unittest.main()
