#!/usr/bin/python3
"""Runs the README's examples, so that they cannot drift from the programs.

usage: readme_examples.py SOURCE_DIR BUILD_DIR

Every ```sh or ```python block of README.md comes after a marker that says what to do with it:

    <!-- test: run -->              run it; it must exit 0
    <!-- test: run with-farm -->    the same, while a farm plays (as a reader would have one)
    <!-- test: skip (REASON) -->    not run here (a JACK server, other hosts, Windows, a long
                                    run); the script says so

A block without a marker fails the test. Every block, run or not, has its farm and farmctl
options checked against the programs' own help, and its farmctl commands against CONTROL.md's.
The blocks run in a private temporary directory (with build/, python/ and examples/ linked into
it), the build's programs first on PATH, no sound card (ALSA with no device, no JACK server
started), and a private runtime directory, so the farm found by farmctl is this test's alone.
Each block and each farm runs in a process group of its own, ended whatever happens. After a
block, each sound file it names with -o or --record must exist; a WAV file must last what its
--duration says (its RIFF header read here: python's wave module knows no float WAV), a FLAC
file start with its magic.
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import struct
import tempfile
import time

BLOCK_TIMEOUT = 60  # seconds; each quick example takes a few
FARM_READY_TIMEOUT = 20
MARKER = re.compile(r"<!--\s*test:\s*(run with-farm|run|skip\s*\((.*)\))\s*-->")

groups = []  # process groups started: ended at exit, whatever happens
tmpdirs = []  # removed at exit, whatever happens


def end_groups():
    for pgid in groups:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            time.sleep(0.2)


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def start(argv, **kw):
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    groups.append(p.pid)
    return p


def blocks(readme):
    """(line, kind, reason, lang, text) for each fenced sh/python block; kind None: no marker."""
    out, lines, i, marker = [], readme.split("\n"), 0, None
    while i < len(lines):
        m = MARKER.search(lines[i])
        if m:
            marker = m
        fence = re.match(r"```(\w+)\s*$", lines[i])
        if fence:
            lang, start_line, body = fence.group(1), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if lang in ("sh", "python"):
                kind = reason = None
                if marker:
                    kind = "skip" if marker.group(1).startswith("skip") else marker.group(1)
                    reason = marker.group(2)
                out.append((start_line, kind, reason, lang, "\n".join(body) + "\n"))
            marker = None
        elif lines[i].strip() and not m:
            marker = None  # a marker belongs to the block right after it
        i += 1
    return out


def commands(text):
    """The block's command lines: continuations joined, comments and blank lines dropped."""
    joined = text.replace("\\\n", " ")
    out = []
    for line in joined.split("\n"):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if words:
            out.append(words)
    return out


def help_options(build):
    opts = {}
    for sub in ("play", "render", "mix", "devices", "probe"):
        h = subprocess.run([os.path.join(build, "farm"), "help", sub], capture_output=True,
                           text=True).stdout
        opts[sub] = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-z])\b", h))
    h = subprocess.run([os.path.join(build, "farmctl"), "--help"], capture_output=True,
                       text=True).stdout
    opts["farmctl"] = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-z])\b", h))
    return opts


def check_options(words, opts, ctl_commands):
    """Problems with one command line's farm/farmctl words; [] when it is right."""
    problems = []
    for k, w in enumerate(words):
        prog = os.path.basename(w)
        if prog not in ("farm", "farmctl", "farm.exe", "farmctl.exe") or (k and words[k - 1] in (
                "-o", "--record")):
            continue
        rest = words[k + 1:]
        if prog.startswith("farmctl"):
            known, j = opts["farmctl"], 0
            while j < len(rest) and rest[j].startswith("-"):
                if rest[j].split("=")[0] not in known:
                    problems.append(f"farmctl has no option {rest[j]}")
                j += 2 if "=" not in rest[j] else 1
            if j >= len(rest) or rest[j] not in ctl_commands:
                problems.append(f"farmctl has no command {rest[j] if j < len(rest) else '(none)'}")
            elif rest[j] == "watch":
                for r in rest[j + 1:]:
                    if r.startswith("-") and r.split("=")[0] not in known:
                        problems.append(f"farmctl watch has no option {r}")
        else:
            sub = rest[0] if rest and rest[0] in ("render", "mix", "devices", "probe") else "play"
            for r in rest:
                if r.startswith("-") and not re.match(r"-\d", r) and r.split("=")[0] not in opts[sub]:
                    problems.append(f"farm {sub} has no option {r}")
        break
    return problems


def wav_seconds(path):
    """A WAV file's length from its fmt and data chunks (PCM, float or extensible)."""
    with open(path, "rb") as f:
        riff, _, kind = struct.unpack("<4sI4s", f.read(12))
        if riff != b"RIFF" or kind != b"WAVE":
            raise ValueError("not a RIFF WAVE file")
        rate = align = None
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("no data chunk")
            cid, size = struct.unpack("<4sI", head)
            if cid == b"fmt ":
                fmt = f.read(size + (size & 1))
                _, _, rate, _, align = struct.unpack("<HHIIH", fmt[:14])
            elif cid == b"data":
                if not rate or not align:
                    raise ValueError("data before fmt")
                return size // align / rate
            else:
                f.seek(size + (size & 1), 1)


def check_outputs(text, cwd):
    """Each file a block writes with -o or --record: there, and as long as --duration says."""
    problems, durations = [], []
    for words in commands(text):
        d = None
        for k, w in enumerate(words[:-1]):
            if w == "--duration":
                d = float(words[k + 1])
        if d is not None:
            durations.append(d)
        for k, w in enumerate(words[:-1]):
            if w not in ("-o", "--output", "--record") or "{" in words[k + 1]:
                continue  # {}: GNU parallel's, one file per job
            path = os.path.join(cwd, words[k + 1])
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                problems.append(f"{words[k + 1]} was not written")
                continue
            want = d if d is not None else (max(durations) if durations else None)
            if path.endswith(".wav"):
                try:
                    seconds = wav_seconds(path)
                except ValueError as e:
                    problems.append(f"{words[k + 1]}: {e}")
                    continue
                # a render is exact; a recording ends with the stop's fade, a block or so either way
                slack = 0.001 if w != "--record" else 0.25
                if want is not None and abs(seconds - want) > slack:
                    problems.append(f"{words[k + 1]} lasts {seconds:.3f} s, not {want} s")
                elif seconds <= 0:
                    problems.append(f"{words[k + 1]} is empty")
            elif path.endswith(".flac"):
                with open(path, "rb") as f:
                    if f.read(4) != b"fLaC":
                        problems.append(f"{words[k + 1]} is not FLAC")
    return problems


def start_farm(build, env, cwd):
    log = open(os.path.join(cwd, "farm.log"), "w")
    farm = start([os.path.join(build, "farm"), "--workers", "2", "--voices", "100",
                  "--duration", "60"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + FARM_READY_TIMEOUT
    while time.monotonic() < deadline:
        if farm.poll() is not None:
            break
        r = subprocess.run([os.path.join(build, "farmctl"), "status"], cwd=cwd, env=env,
                           capture_output=True, text=True)
        if r.returncode == 0 and '"ok":true' in r.stdout.replace(" ", ""):
            return farm
        time.sleep(0.1)
    raise RuntimeError("the farm did not start:\n" + open(os.path.join(cwd, "farm.log")).read())


def stop_farm(farm, build, env, cwd):
    subprocess.run([os.path.join(build, "farmctl"), "quit"], cwd=cwd, env=env,
                   capture_output=True, timeout=10)
    try:
        rc = farm.wait(timeout=15)
    except subprocess.TimeoutExpired:
        return "the farm did not stop on quit"
    return None if rc == 0 else f"the farm exited {rc}"


def main():
    src, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    readme = open(os.path.join(src, "README.md")).read()
    control = open(os.path.join(src, "CONTROL.md")).read()
    ctl_commands = set(re.findall(r"^### (\w+)", control, re.M)) | {"watch"}
    opts = help_options(build)
    found = blocks(readme)
    failures, ran, skipped = [], 0, 0

    tmp = tempfile.mkdtemp(prefix="farm-readme-")
    tmpdirs.append(tmp)
    run_dir = os.path.join(tmp, "run")
    os.mkdir(run_dir, 0o700)
    for name, target in (("build", build), ("python", os.path.join(src, "python")),
                         ("examples", os.path.join(src, "examples"))):
        os.symlink(target, os.path.join(tmp, name))
    env = dict(os.environ)
    for k in ("JACK_DEFAULT_SERVER", "FARM_CONTROL", "DISPLAY"):
        env.pop(k, None)
    env.update(PATH=build + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
               ALSA_CONFIG_PATH=os.path.join(src, "tests", "alsa-none.conf"),
               JACK_NO_START_SERVER="1", XDG_RUNTIME_DIR=run_dir, TMPDIR=tmp,
               PYTHONDONTWRITEBYTECODE="1")

    for line, kind, reason, lang, text in found:
        first = text.strip().split("\n")[0]
        where = f"README.md:{line}"
        if kind is None:
            failures.append(f"{where}: a ```{lang} block with no <!-- test: ... --> marker")
            continue
        if lang == "sh":
            for words in commands(text):
                for p in check_options(words, opts, ctl_commands):
                    failures.append(f"{where}: {p}: {' '.join(words)}")
        if kind == "skip":
            skipped += 1
            print(f"not run  {where}  ({reason}): {first}")
            continue
        script = os.path.join(tmp, f"block{line}.{'sh' if lang == 'sh' else 'py'}")
        with open(script, "w") as f:
            f.write(text)
        argv = ["bash", "-e", script] if lang == "sh" else ["/usr/bin/python3", script]
        farm, p, t0 = None, None, time.monotonic()
        try:
            if kind == "run with-farm":
                farm = start_farm(build, env, tmp)
            p = start(argv, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      text=True)
            try:
                out, _ = p.communicate(timeout=BLOCK_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                out, _ = p.communicate()
                failures.append(f"{where}: still running after {BLOCK_TIMEOUT} s\n{out}")
                continue
            problems = []
            if p.returncode != 0:
                problems.append(f"exit status {p.returncode}")
            if '"ok":false' in out.replace(" ", "") or "Traceback" in out:
                problems.append("a request was refused")
            problems += check_outputs(text, tmp) if lang == "sh" else []
            if farm is not None:
                msg = stop_farm(farm, build, env, tmp)
                farm = None
                if msg:
                    problems.append(msg)
            if problems:
                failures.append(f"{where}: " + "; ".join(problems) + "\n" + out)
            else:
                ran += 1
                print(f"ran ok   {where}  ({time.monotonic() - t0:.1f} s): {first}")
        except RuntimeError as e:
            failures.append(f"{where}: {e}")
        finally:
            if farm is not None and farm.poll() is None:
                os.killpg(farm.pid, signal.SIGKILL)
                farm.wait()
            if p is not None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)  # anything the block left in the background
                except ProcessLookupError:
                    pass

    if not found or ran == 0:
        failures.append("README.md: no examples found to run")
    for f in failures:
        print("FAILED  " + f, file=sys.stderr)
    print(f"readme examples: {ran} run, {skipped} not run, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sys.exit(main())
    finally:
        end_groups()
        for d in tmpdirs:
            shutil.rmtree(d, ignore_errors=True)
