#!/usr/bin/env bash
# test.sh [--repeat N] [--stress] — the whole test suite from a fresh Debian 12 machine: installs
# what is missing, then builds and runs every test in a Release build (warnings as errors), twice,
# the second time beside a CPU hog; under AddressSanitizer + UndefinedBehaviorSanitizer; the
# rings under ThreadSanitizer; the fuzzer; the static checks; the Windows build under wine. Then
# it checks itself: nothing it started may still run, and nothing of its servers or farms may
# be left in /dev/shm or in the temporary directory. Exit status 0 only when all of it passed.
#
#   --repeat N   only the Release build's tests, N times in a row (stops at the first failure):
#                a way to shake out tests that pass by luck
#   --stress     with --repeat: every run beside `stress-ng --cpu 1` (a busy machine)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }
repeat=0
repeat_given=0
stress=0
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=${2:-} repeat_given=1; shift $(($# > 1 ? 2 : 1)) ;;
    --repeat=*) repeat=${1#--repeat=} repeat_given=1; shift ;;
    --stress) stress=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "test.sh: unknown option '$1' (test.sh --help lists them)" >&2; exit 2 ;;
  esac
done
if ! [[ "$repeat" =~ ^[0-9]+$ ]] || [[ "$repeat" =~ ^0+$ && $repeat_given = 1 ]] ||
  { [ "$stress" = 1 ] && [ "$repeat_given" = 0 ]; }; then
  echo "test.sh: --repeat takes a count of runs (1 or more); --stress goes with --repeat" >&2
  exit 2
fi

# rt-tests and gnuplot-nox: the scaling harness's self-test measures stalls and draws its plots;
# stress-ng: the CPU hog; libasound2-plugins: ALSA's JACK plugin, which a playing test bypasses;
# slurm-wlm and munge: the local Slurm cluster of the slurm test (scripts/slurm-local.sh)
export FARM_EXTRA_PACKAGES="clang-format cppcheck clang libclang-rt-14-dev rt-tests gnuplot-nox stress-ng libasound2-plugins slurm-wlm munge ${FARM_EXTRA_PACKAGES:-}"

step() { printf '\n==== %s\n' "$*"; }

# shellcheck source=scripts/suite-check.sh
. scripts/suite-check.sh
suite_begin
trap 'suite_end $?' EXIT

# Every test command runs tagged, so that whatever it starts can be found at the end.
tagged() { env "FARMTEST_SUITE=$suite_id" "$@"; }

hog_pid=
hog_start() {
  stress-ng --cpu 1 --timeout 3h --quiet &
  hog_pid=$!
}
hog_stop() {
  [ -n "$hog_pid" ] || return 0
  kill "$hog_pid" 2>/dev/null || true
  wait "$hog_pid" 2>/dev/null || true
  hog_pid=
}

release_tests() { # $1: "hog" to run beside the CPU hog
  [ "${1:-}" = hog ] && hog_start
  local rv=0
  tagged ctest --test-dir build --output-on-failure || rv=$?
  hog_stop
  return "$rv"
}

if [ "$repeat_given" = 1 ]; then
  step "Release build"
  scripts/setup.sh build Release
  for i in $(seq "$repeat"); do
    step "Release tests, run $i of $repeat$([ "$stress" = 1 ] && echo ', beside stress-ng --cpu 1')"
    release_tests "$([ "$stress" = 1 ] && echo hog)"
  done
  step "$repeat runs passed"
  exit 0
fi

step "Release build and tests"
scripts/setup.sh build Release
release_tests

step "Release tests again, beside a CPU hog (stress-ng --cpu 1)"
release_tests hog

step "ASan + UBSan build and tests"
scripts/setup.sh build-asan Asan
tagged ctest --test-dir build-asan --output-on-failure

step "TSan build: the rings between threads and processes"
scripts/setup.sh build-tsan Tsan
tagged ctest --test-dir build-tsan --output-on-failure -R '^ring_stress'

step "Fuzzing the control protocol's parser (libFuzzer, bounded)"
tagged scripts/fuzz.sh "${FARM_FUZZ_SECONDS:-60}"

step "Static checks"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
modules="base plat proto dsp shm worker engine audio outfile placement supervisor nodes control coordinator ctl"
clang-format --dry-run --Werror $files
includes="$(for m in $modules; do printf -- '-I %s ' "$m"; done) -I shm/internal"
# The tests beside the modules are Criterion's macros, which cppcheck cannot expand.
skip=$(for f in $(git ls-files '*_test.c' 'proto/fuzz_request.c'); do printf -- '-i %s ' "$f"; done)
# shellcheck disable=SC2086
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
  --suppress=missingIncludeSystem $includes $skip $modules bench
# No function in the product over 80 lines (tests and benchmarks aside).
# plat_win.c and outfile's path_win.c are not in this build's compilation database: the Windows
# build checks them (setup-win).
product=$(for m in $modules; do git ls-files "$m/*.c"; done | grep -v '_test\.c$' | grep -v fuzz_ |
  grep -v '_win\.c$')
# shellcheck disable=SC2086
clang-tidy --quiet -p build --checks='-*,readability-function-size' \
  --config='{CheckOptions: [{key: readability-function-size.LineThreshold, value: 80}]}' \
  --warnings-as-errors='*' $product

# The Windows build (issue 12): cross-built with mingw-w64 from Debian's sources, its tests run
# under wine. FARM_SKIP_WINDOWS=1 leaves it out (a quick local run).
if [ -z "${FARM_SKIP_WINDOWS:-}" ]; then
  step "Windows build (mingw-w64) and its tests under wine"
  scripts/setup-win.sh
  tagged scripts/test-win.sh
fi
