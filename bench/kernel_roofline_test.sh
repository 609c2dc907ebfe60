#!/bin/sh
# kernel_roofline_test.sh PYTHON OBJDUMP BUILD ISAS [BENCH_KERNEL] — bench/kernel_roofline.py
# against a build: it finds the stereo loop of every kernel in ISAS (comma-separated) with a
# plausible count, and it refuses loudly (exit 1, naming the loops it saw) an object without a
# kernel loop. With BENCH_KERNEL, it also reads a tiny run's table and CSV (--bench) and gives a
# row per kernel the CPU ran with its % of the bound. Nothing timed is checked.
set -eu
py=$1 objdump=$2 build=$3 isas=$4 bk=${5:-}
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" "$here/kernel_roofline.py" --build "$build" --objdump "$objdump" --check --expect "$isas"

# An object that is no kernel (the dsp library's bookkeeping) in a kernel's place.
other=$(find "$build" -path '*dsp.dir*' -name 'dsp.c.o' | head -1)
[ -n "$other" ] || { echo "FAIL: no dsp.c.o under $build"; exit 1; }
mkdir -p "$tmp/dsp/CMakeFiles/dsp_kernel_fake.dir"
cp "$other" "$tmp/dsp/CMakeFiles/dsp_kernel_fake.dir/kernel.c.o"
if "$py" "$here/kernel_roofline.py" --build "$tmp" --objdump "$objdump" >"$tmp/out" 2>&1; then
  echo "FAIL: a build without a kernel loop passed:"
  cat "$tmp/out"
  exit 1
fi
grep -q 'fake: no stereo sineloop loop found' "$tmp/out" || { echo "FAIL: unclear refusal:"; cat "$tmp/out"; exit 1; }
echo "ok: an object without a kernel loop is refused: $(head -1 "$tmp/out" | cut -c1-100)..."
if [ -n "$bk" ] && "$bk" --voices 64 --trials 1 --seconds 0.01 --csv "$tmp/k.csv" >"$tmp/k.md" 2>/dev/null &&
  grep -q '^# core clock before' "$tmp/k.md"; then
  for f in "$tmp/k.md" "$tmp/k.csv"; do
    "$py" "$here/kernel_roofline.py" --build "$build" --objdump "$objdump" --bench "$f" >"$tmp/out"
    # the kernels this CPU ran (an avx512 object is built everywhere, run only where it can)
    for isa in $(awk -F, 'NR > 1 && $1 != "auto" && $1 != "naive" { print $1 }' "$tmp/k.csv"); do
      grep -qE "^\| $isa \| 64 \| [0-9.]+ \| [0-9.]+ \| [0-9]+% \|$" "$tmp/out" ||
        { echo "FAIL: no measured row for $isa from $(basename "$f"):"; cat "$tmp/out"; exit 1; }
    done
    echo "ok: --bench $(basename "$f"): a measured row for each kernel this CPU ran"
  done
fi
echo "kernel_roofline_test passed"
