"""bench/report.py on the fixture of one --quick run (bench/fixtures/scaling): the summaries and
report.md must be the bytes the awk that report.py replaced wrote (fixtures/scaling/expected),
so that --plot-only on old runs redraws the same tables. Standard library only:
    cd bench && python3 -m unittest -v test_report
"""

import io
import os
import shutil
import tempfile
import unittest
from contextlib import redirect_stderr

import report

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "scaling")
EXPECTED = os.path.join(FIXTURE, "expected")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def lines(path):
    return read(path).splitlines()


class AwkArithmetic(unittest.TestCase):
    def test_num_reads_the_numeric_prefix(self):
        self.assertEqual(report.num("0.516"), 0.516)
        self.assertEqual(report.num("1.9917e+09"), 1.9917e9)
        self.assertEqual(report.num(" 12abc"), 12.0)
        self.assertEqual(report.num(""), 0.0)
        self.assertEqual(report.num("x1"), 0.0)

    def test_awk_str_is_mawks(self):
        self.assertEqual(report.awk_str(0.482), "0.482")
        self.assertEqual(report.awk_str(960000000.0), "960000000")
        self.assertEqual(report.awk_str(2147483647.0), "2147483647")
        # mawk writes integers beyond its int with %.6g
        self.assertEqual(report.awk_str(3e9), "3e+09")
        self.assertEqual(report.awk_str(-2147483648.0), "-2.14748e+09")
        self.assertEqual(report.awk_str(1 / 3), "0.333333")
        self.assertEqual(report.awk_str("as is"), "as is")

    def test_median(self):
        self.assertEqual(report.median(["3", "1.5", "2"]), "2")  # the text itself
        self.assertEqual(report.median(["4", "1", "3", "2"]), 2.5)
        self.assertEqual(report.median(["10", "9"]), 9.5)  # numeric order, not text order
        self.assertEqual(report.median([]), 0.0)

    def test_row_fields_from_one(self):
        r = report.Row("a,b,,d".split(","))
        self.assertEqual((r(1), r(3), r(4), r(9)), ("a", "", "d", ""))


class Summaries(unittest.TestCase):
    def test_offline_and_compare_as_awk_wrote_them(self):
        got = report.summarize_offline(report.read_rows(os.path.join(FIXTURE, "offline_runs.csv")))
        self.assertEqual(got, lines(os.path.join(EXPECTED, "offline.csv")))
        cmp = report.compare_peers(report.read_rows(os.path.join(EXPECTED, "offline.csv")))
        self.assertEqual(cmp, lines(os.path.join(EXPECTED, "compare.csv")))

    def test_offline_medians_speedup_and_order(self):
        runs = [report.Row(x.split(",")) for x in [
            "1,weak,farm,2,2000,1,1.0,1.0,0.0,96000000",
            "1,strong,farm,2,1000,1,0.5,0.9,0.1,48000000",
            "1,strong,farm,1,1000,1,1.0,0.9,0.1,48000000",
            "2,strong,farm,1,1000,1,3.0,0.9,0.1,48000000",
            "2,strong,farm,2,1000,1,0.7,0.9,0.1,48000000",
        ]]
        got = report.summarize_offline(runs)
        self.assertEqual(got[0], report.H_OFFLINE)
        # sorted by study and engine, then workers; medians of 2 reps are means
        self.assertEqual(got[1], "strong,farm,1,1000,1,2,2,1,2.4e+07,4.8e+07,1.0000,1.0000")
        self.assertEqual(got[2], "strong,farm,2,1000,1,2,0.6,1,8e+07,4.8e+07,3.3333,1.6667")
        self.assertEqual(got[3], "weak,farm,2,2000,1,1,1,1,9.6e+07,9.6e+07,1.0000,1.0000")

    def test_compare_without_peers_is_a_header(self):
        rows = [report.Row("strong,farm,1,1000,1,1,1,1,1,1,1,1".split(","))]
        self.assertEqual(report.compare_peers(rows), [report.H_COMPARE])

    def test_cost_as_awk_wrote_it(self):
        got = report.summarize_cost(report.read_rows(os.path.join(FIXTURE, "cost_runs.csv")))
        self.assertEqual(got, lines(os.path.join(EXPECTED, "cost.csv")))

    def test_host_row_from_cyclictest(self):
        row = report.host_row(read(os.path.join(FIXTURE, "cyclictest.txt")), "1")
        self.assertEqual(row, "2,1,1000,23,36,207,0,0,0")

    def test_host_counts_the_late_wakeups(self):
        hist = "\n".join(["000010 000045\t000045", "001400 000005\t000004", "006000 000001\t000000",
                          "# Max Latencies: 06000 01400"])
        self.assertEqual(report.host_row(hist, "2"), "2,2,1000,10,1400,6000,10,1,0")

    def test_host_median_of_zero_us_takes_the_next(self):
        # awk's "!med": a median of 0 us reads as none yet, as scaling.sh's awk had it
        self.assertEqual(report.host_row("000000 9\n000005 1\n", "1"), "1,1,1000,5,5,0,0,0,0")


class Report(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="test_report.")
        for f in os.listdir(FIXTURE):
            if f.endswith((".csv", ".txt")):
                shutil.copy(os.path.join(FIXTURE, f), self.dir)
        for f in ("offline.csv", "compare.csv", "cost.csv"):
            shutil.copy(os.path.join(EXPECTED, f), self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_report_md_as_awk_wrote_it(self):
        self.assertEqual(report.main(["report.py", "report", self.dir]), 0)
        self.assertEqual(read(os.path.join(self.dir, "report.md")), read(os.path.join(EXPECTED, "report.md")))

    def test_report_names_the_machine_and_every_run(self):
        with open(os.path.join(self.dir, "machine.txt"), "a", encoding="utf-8") as f:
            f.write("args=OUT --only mix\nload_after_mix=1.5\n")
        text = "\n".join(report.make_report(self.dir))
        self.assertIn("## CPU scaling study: AMD EPYC, 2 cores (2 physical)", text)
        self.assertIn("Made by `bench/scaling.sh /tmp/sc-q/run2 --quick`, then `bench/scaling.sh OUT --only mix`.", text)
        self.assertIn(", after mix 1.5.", text)

    def test_report_of_a_partial_run(self):
        for f in ("offline.csv", "compare.csv", "realtime.csv", "host.csv", "cost.csv", "machine.txt"):
            os.remove(os.path.join(self.dir, f))
        text = report.make_report(self.dir)
        self.assertEqual(text[0], "## CPU scaling study: unknown CPU, ? cores")
        self.assertNotIn("### Strong scaling", "\n".join(text))
        self.assertIn("| workers | 64 frames | 256 frames |", text)

    def test_realtime_top_of_the_range(self):
        with open(os.path.join(self.dir, "realtime.csv"), "w", encoding="utf-8") as f:
            f.write(report.H_HOST.replace("cpus", "x") + "\n")  # any header: it is skipped
            f.write("null,64,2,30000,,5,3,6,14,3e+09,1.44e+09,0.4800,8,3\n")
        text = report.report_realtime(self.dir)
        self.assertIn("| null sink | 64 | 8 | 2 | ≥ 30000 | - | 1.440 | 3.000 | 0.48 | 6 / 14 |", text)
        self.assertIn("≥: no probe was late, the count is the top of the bisection's range.", text)
        self.assertIn("a count late when most of 3 probes were)", text[0])


class Series(unittest.TestCase):
    def test_curves_and_info(self):
        d = tempfile.mkdtemp(prefix="test_report.")
        t = tempfile.mkdtemp(prefix="test_report_series.")
        try:
            for f in os.listdir(FIXTURE):
                if f.endswith(".csv") or f == "machine.txt":
                    shutil.copy(os.path.join(FIXTURE, f), d)
            with open(os.path.join(d, "offline.csv"), "w", encoding="utf-8") as f:
                f.writelines(x + "\n" for x in lines(os.path.join(EXPECTED, "offline.csv")) if ",pyo," not in x)
            shutil.copy(os.path.join(EXPECTED, "cost.csv"), d)
            report.write_series(d, t)
            info = dict(line.split("=", 1) for line in lines(os.path.join(t, "info")))
            self.assertEqual(info, {"title": "AMD EPYC, 2 cores (2 physical)", "cores": "2",
                                    "offline_xrange": "0.869565:4.6", "rt_pairs": "64:4 256:4",
                                    "rt_xrange": "0.869565:4.6", "rt_backend": "jackd dummy driver, -R",
                                    "mix_frames": "64 256"})
            strong = lines(os.path.join(t, "strong.vps"))
            self.assertEqual(len(strong), 3)
            self.assertEqual(strong[0].split()[0], "1")
            self.assertEqual(read(os.path.join(t, "peer_pyo.vps")), "")  # not run: no curve
            self.assertTrue(read(os.path.join(t, "rt64.4.voices")).startswith("1 25934\n"))
            self.assertEqual(lines(os.path.join(t, "mix64"))[0], "1 1.47535")
        finally:
            shutil.rmtree(d)
            shutil.rmtree(t)

    def test_worker_range(self):
        rows = [report.Row(["x", "x", w]) for w in ("1", "8", "")]
        self.assertEqual(report.worker_range(rows), "0.869565:9.2")
        self.assertEqual(report.worker_range([]), "0.869565:2.3")


class CommandLine(unittest.TestCase):
    def test_unknown_command(self):
        with redirect_stderr(io.StringIO()) as err:
            self.assertEqual(report.main(["report.py", "bogus"]), 2)
        self.assertIn("report.py offline DIR", err.getvalue())


class Options(unittest.TestCase):
    """scaling.sh's command line, as its bash read and checked it."""

    def opts(self, *argv, usable=2):
        return report.parse_options(list(argv), usable)

    def refused(self, message, *argv):
        with self.assertRaises(report.BadInput) as e:
            self.opts(*argv)
        self.assertEqual(str(e.exception), message)

    def test_defaults_and_quick(self):
        o = self.opts("OUT")
        self.assertEqual((o["mode"], o["reps"], o["duration"], o["rt_confirm"], o["cost_work"]),
                         ("run", "5", "10", "3", "2e9"))
        self.assertEqual(o["workers"], ["1", "2", "4"])
        self.assertEqual(o["strong_voices"], "20000")
        self.assertEqual((o["rt_frames"], o["rt_rings"]), (["64", "256"], ["default"]))
        q = self.opts("OUT", "--quick", usable=3)
        self.assertEqual((q["reps"], q["peer_duration"], q["rt_steps"], q["cost_work"]), ("1", "0.5", "3", "2e8"))
        self.assertEqual((q["workers"], q["strong_voices"]), (["1", "2", "3", "6"], "30000"))

    def test_lists_sorted_without_repeats(self):
        o = self.opts("OUT", "--workers", "8,02,8,1,", "--rt-ring-blocks", "16,4")
        self.assertEqual(o["workers"], ["1", "2", "8"])
        self.assertEqual(o["rt_rings"], ["4", "16"])
        self.assertEqual(o["workers_list"], "8,02,8,1,")  # the raw text stays as given

    def test_values_kept_as_given(self):
        o = self.opts("OUT", "--rt-confirm", "07", "--duration", ".5", "--only", "")
        self.assertEqual((o["rt_confirm"], o["duration"], o["only"]), ("07", ".5", ""))

    def test_refusals(self):
        self.refused("--reps wants a positive integer, not '0'", "OUT", "--reps", "0")
        self.refused("unknown option: --bogus (see --help)", "OUT", "--bogus")
        self.refused("--reps needs a value (see --help)", "OUT", "--reps")
        self.refused("an OUTDIR is needed (see --help)", "--quick")
        self.refused("only one OUTDIR may be given (got 'A' and 'B')", "A", "B")
        self.refused("--workers wants positive integers, not 'x' in '1,x'", "OUT", "--workers", "1,x")
        self.refused("--workers wants positive integers, not '' in ','", "OUT", "--workers", ",")
        self.refused("--rt-frames wants a comma-separated list, not ''", "OUT", "--rt-frames", "")
        self.refused("--only wants offline, realtime, cost or mix, not 'bogus'", "OUT", "--only", "offline,bogus")
        self.refused("--rt-backend wants jack or null, not 'alsa'", "OUT", "--rt-backend", "alsa")
        self.refused("--duration wants a positive number, not '-1'", "OUT", "--duration", "-1")
        self.refused("--cost-work wants a positive number, not '0.0'", "OUT", "--cost-work", "0.0")
        self.refused("--rt-ring-blocks wants powers of two in 2..64 or default, not '3'",
                     "OUT", "--rt-ring-blocks", "4,3")
        self.refused("--rt-confirm wants an odd count of probes in 1..9, not '2'", "OUT", "--rt-confirm", "2")
        self.refused("--rt-confirm wants an odd count of probes in 1..9, not '11'", "OUT", "--rt-confirm", "11")
        self.refused("--sc-voices-per-synth wants an integer in 1..1000, not '1001'",
                     "OUT", "--sc-voices-per-synth", "1001")
        self.refused("--peer-voices wants a positive integer, not '1.5'", "OUT", "--peer-voices", "1.5")

    def test_first_refusal_wins(self):
        # parsing before checking, and the checks in bash's order
        self.refused("unknown option: --bogus (see --help)", "OUT", "--reps", "0", "--bogus")
        self.refused("--reps wants a positive integer, not '0'", "OUT", "--only", "x", "--reps", "0")

    def test_help_self_test_and_plot_only_skip_the_checks(self):
        self.assertEqual(self.opts("OUT", "--reps", "0", "--help")["mode"], "help")
        self.assertEqual(self.opts("--self-test", "--reps", "0")["mode"], "self-test")
        self.refused("--plot-only: no directory /nonexistent/x", "--plot-only", "/nonexistent/x")
        self.refused("--plot-only takes its directory and no OUTDIR", "OUT", "--plot-only", FIXTURE)
        o = self.opts("--plot-only", FIXTURE, "--reps", "0")
        self.assertEqual((o["mode"], o["plot_only"]), ("plot-only", FIXTURE))
        with tempfile.TemporaryDirectory() as d:
            self.refused("--plot-only: %s holds none of offline.csv, realtime.csv, cost.csv, mix.csv" % d,
                         "--plot-only", d)

    def test_bash_arithmetic(self):
        self.assertEqual(report.bash_read_list("a,,"), ["a", ""])
        self.assertEqual(report.bash_read_list(",a"), ["", "a"])
        self.assertEqual(report.bash_read_list("a\nb"), ["a"])
        self.assertEqual(report.bash_read_list(""), [])
        self.assertTrue(report.is_uint("08"))  # 10#08
        self.assertFalse(report.is_uint("00"))
        self.assertFalse(report.is_uint("9223372036854775808"))  # wraps below 0 in bash
        self.assertEqual(report.bash_int("07"), 7)
        self.assertIsNone(report.bash_int("09"))
        self.assertTrue(report.is_pos("1e3") and report.is_pos(".5"))
        self.assertFalse(report.is_pos("1e") or report.is_pos("1e-3") or report.is_pos("0"))

    def test_shell_assignments_are_quoted(self):
        text = report.shell_assignments({"a": "x'; rm -rf /", "b": ["1", "2"], "c": ""})
        self.assertEqual(text, "a='x'\"'\"'; rm -rf /'\nb=(1 2)\nc=''\n")

    def test_command_line_exit_2(self):
        with redirect_stderr(io.StringIO()) as err:
            self.assertEqual(report.main(["report.py", "options", "2", "OUT", "--reps", "x"]), 2)
        self.assertEqual(err.getvalue(), "scaling: --reps wants a positive integer, not 'x'\n")


SUMMARY = """farm: 20 s, 48000 Hz, 64 frames, 2 workers
callback: median 6 us, p99 25 us, max 730.1 us; late blocks 0, underflows 38
worker 0: peak 41.5% of the period; worker 1: peak 120.25% of the period
ring: lowest ring fill 3/8
"""


class Probe(unittest.TestCase):
    def test_row_and_log_line(self):
        row, log = report.probe_row("jack", "64", "2", "13100", "20", SUMMARY)
        self.assertEqual(row, "jack,64,2,13100,20,0,38,6,25,730.1,8,120.25")
        self.assertEqual(log, "realtime jack   64 frames  ring  8  workers   2     13100 voices  late     0"
                              "  underflows   38  peak render 120.25%  callback median,p99,max 6,25,730.1 us")

    def test_missing_underflows_and_peak(self):
        text = "median 5 us, p99 20 us, max 550.8 us; late blocks 3\nlowest ring fill 0/4\n"
        row, log = report.probe_row("null", "256", "1", "26200", "0.3", text)
        self.assertEqual(row, "null,256,1,26200,0.3,3,0,5,20,550.8,4,")  # the CSV says 0, the log '?'
        self.assertIn("underflows    ?  peak render      ?%", log)

    def test_a_summary_without_the_figures(self):
        self.assertIsNone(report.probe_row("null", "64", "1", "1", "1", "late blocks x\n"))
        self.assertIsNone(report.probe_row("null", "64", "1", "1", "1", SUMMARY.replace("ring fill 3/8", "")))
        self.assertIsNone(report.probe_row("null", "64", "1", "1", "1", SUMMARY.replace("median", "mid")))

    def test_the_last_occurrence_on_the_first_line_that_has_one(self):
        text = "late blocks 1 then late blocks 2\nlate blocks 9\nmedian 1 us, p99 2 us, max 3 us\nlowest ring fill 1/4\n"
        self.assertEqual(report.probe_row("null", "64", "1", "1", "1", text)[0].split(",")[5], "2")


def probe(late, cb="6,25,730"):
    return "null,64,1,100,20,%d,0,%s,8,50" % (late, cb)


class Majority(unittest.TestCase):
    def test_one_probe_decides_alone(self):
        self.assertEqual(report.rt_majority("1", []), "probe")
        self.assertEqual(report.rt_majority("1", [probe(0)]), "0 6,25,730")
        self.assertEqual(report.rt_majority("1", [probe(4)]), "1 ")

    def test_two_that_agree_decide_three(self):
        self.assertEqual(report.rt_majority("3", [probe(0)]), "probe")
        self.assertEqual(report.rt_majority("3", [probe(0), probe(0, "5,9,9")]), "0 5,9,9")
        self.assertEqual(report.rt_majority("3", [probe(1), probe(2)]), "1 ")
        self.assertEqual(report.rt_majority("3", [probe(1), probe(0)]), "probe")
        # a stall spoils one probe: the count is still clean, with the clean probe's callback
        self.assertEqual(report.rt_majority("3", [probe(0, "1,2,3"), probe(7), probe(0, "4,5,6")]), "0 4,5,6")
        self.assertEqual(report.rt_majority("3", [probe(0), probe(7), probe(7)]), "1 6,25,730")

    def test_five(self):
        self.assertEqual(report.rt_majority("5", [probe(0), probe(1), probe(0), probe(1)]), "probe")
        self.assertEqual(report.rt_majority("5", [probe(0), probe(1), probe(0), probe(0)]), "0 6,25,730")


class Bisection(unittest.TestCase):
    ARGS = ("jack", "64", "2", "20", "3", "1", "4.8e+09")

    def run_to_end(self, capacity, args=ARGS, played="8"):
        """The bisection against a machine that plays up to CAPACITY voices: the counts it
        asked for, and its row."""
        decided, asked = [], []
        while True:
            got = report.rt_next(*args, played, decided)
            if not got.startswith("probe "):
                return asked, got
            n = int(got.split()[1])
            asked.append(n)
            decided.append("%d:%d:%s" % (n, n > capacity, "" if n > capacity else "7,%d,99" % n))

    def test_halves_between_zero_and_a_quarter_above_offline(self):
        # 4.8e9 / 48000 = 100,000 voices; hi = 125,001
        asked, row = self.run_to_end(70000)
        self.assertEqual(asked, [62500, 93750, 78125])
        self.assertEqual(row, "jack,64,2,62500,78125,20,3,7,62500,4.8e+09,3e+09,0.6250,8,1")

    def test_never_late(self):
        asked, row = self.run_to_end(10 ** 9)
        self.assertEqual(asked, [62500, 93750, 109375])
        self.assertEqual(row.split(",")[3:5], ["109375", ""])

    def test_late_at_one_voice_per_worker_stops(self):
        args = ("null", "64", "2", "20", "5", "3", "0")  # no offline figure: hi = 1
        asked, row = self.run_to_end(0, args, played="")
        self.assertEqual(asked, [2])  # never below one voice per worker, and nothing lower to try
        self.assertEqual(row, "null,64,2,,2,20,5,,,0,,,,3")

    def test_a_decision_for_another_count_is_an_error(self):
        with self.assertRaises(ValueError):
            report.rt_next(*self.ARGS, "8", ["5:0:1,2,3"])

    def test_offline_figure(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(report.offline_vps(d, "2", "2"), "")
            shutil.copy(os.path.join(EXPECTED, "offline.csv"), d)
            strong = [r for r in report.read_rows(os.path.join(d, "offline.csv"))
                      if r(1) == "strong" and r(2) == "farm"]
            w4 = [r for r in strong if r(3) == "4"][0]
            # 4 workers on 2 cores: the per-CPU-second figure times 2
            self.assertEqual(report.offline_vps(d, "4", "2"), "%.6g" % (report.num(w4(10)) * 2))
            self.assertEqual(report.offline_vps(d, "3", "2"), "")


class Plan(unittest.TestCase):
    def test_headers_as_bash_assignments(self):
        text = dict(line.split("=", 1) for line in report.shell_assignments(
            {h: getattr(report, h) for h in report.HEADERS}).splitlines())
        self.assertEqual(text["H_RT"].count(","), 13)
        self.assertEqual(text["H_OFFLINE_RUNS"], "rep,study,engine,workers,voices,duration_s,wall_s,user_s,sys_s,voice_samples")
        self.assertEqual(len(text), 8)

    def test_offline_cases(self):
        self.assertEqual(report.offline_cases("1", "1", "0", "1", ["1", "2"]), [
            "strong farm 1", "weak farm 1", "peer farm 1", "peer pyo 1",
            "strong farm 2", "weak farm 2", "peer farm 2", "peer pyo 2", "peer scsynth 1"])
        self.assertEqual(report.offline_cases("0", "0", "0", "0", ["4"]), ["strong farm 4", "weak farm 4"])

    def test_cost_points(self):
        full, quick = report.cost_points(False), report.cost_points(True)
        self.assertEqual((len(full), len(quick)), (12 + 8 + 8, 4 + 3 + 4))
        self.assertEqual(full[0], "voices sineloop 1 256 2")
        self.assertEqual(full[12], "frames sineloop 10000 16 2")
        self.assertEqual(quick[-1], "channels sine 10000 256 32")

    def test_cost_durations(self):
        # 2e9 voice-samples of 100 voices is 416 s: held to 300 s (30 s with --quick)
        self.assertEqual(report.cost_durations("2e9", "100", "256", "0"), ("300.000000000", "0.021333333"))
        self.assertEqual(report.cost_durations("2e9", "100", "256", "1"), ("30.000000000", "0.021333333"))
        # 200,000 voices: 0.2 s, held to 0.5 s, rounded up to whole blocks of 2048 frames
        self.assertEqual(report.cost_durations("2e9", "200000", "2048", "0"), ("0.512000000", "0.170666667"))
        # 10,000 voices of 64 frames: 4.1666 s, 3125 blocks
        self.assertEqual(report.cost_durations("2e9", "10000", "64", "0")[0], "4.166666667")


if __name__ == "__main__":
    unittest.main()
