#!/usr/bin/env bash
# test.sh — the whole test suite from a fresh Debian 12 machine: installs what is missing,
# then builds and runs every test in a Release build (warnings as errors), under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the rings under ThreadSanitizer; then the
# static checks. Exit status 0 only when all of it passed.
set -euo pipefail
cd "$(dirname "$0")/.."
export FARM_EXTRA_PACKAGES="clang-format cppcheck clang libclang-rt-14-dev ${FARM_EXTRA_PACKAGES:-}"

step() { printf '\n==== %s\n' "$*"; }

step "Release build and tests"
scripts/setup.sh build Release
ctest --test-dir build --output-on-failure

step "ASan + UBSan build and tests"
scripts/setup.sh build-asan Asan
ctest --test-dir build-asan --output-on-failure

step "TSan build: the rings between threads and processes"
scripts/setup.sh build-tsan Tsan
ctest --test-dir build-tsan --output-on-failure -R '^ring_stress$'

step "Fuzzing the control protocol's parser (libFuzzer, bounded)"
scripts/fuzz.sh "${FARM_FUZZ_SECONDS:-60}"

step "Static checks"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
clang-format --dry-run --Werror $files
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
  --suppress=missingIncludeSystem -I dsp -I shm -I worker -I coordinator \
  dsp shm worker coordinator ctl bench

step "all tests passed"
