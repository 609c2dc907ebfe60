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


if __name__ == "__main__":
    unittest.main()
