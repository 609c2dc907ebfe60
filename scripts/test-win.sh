#!/usr/bin/env bash
# test-win.sh [BUILD_DIR [CTEST ARGS...]] — runs the Windows build's tests (scripts/setup-win.sh
# builds them into build-win/) under wine, headless: no display, no sound card needed. ctest
# starts each test program through wine (CMAKE_CROSSCOMPILING_EMULATOR in
# cmake/mingw-w64.cmake); the DLLs come from the dependency sysroot through WINEPATH.
#
# The wine prefix lives under the cache ($FARM_WIN_CACHE/wineprefix): made once (about 10 s),
# then reused. One wineserver is kept running for the whole run, so each program starts in
# about 0.1 s instead of 1 s, and is stopped at the end.
# Example: scripts/test-win.sh build-win -R dsp
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-win}
[ $# -gt 0 ] && shift
# shellcheck source=scripts/wine-env.sh
. scripts/wine-env.sh

[ -f "$build/CTestTestfile.cmake" ] || {
  echo "test-win: no Windows build in $build/ (run scripts/setup-win.sh first)" >&2
  exit 2
}
[ -d "$sysroot/bin" ] || {
  echo "test-win: no dependency sysroot at $sysroot (run scripts/setup-win.sh first)" >&2
  exit 2
}

# wine keeps its server's socket in a directory of its own under TMPDIR (wine-XXXXXX), made by
# the first wine program and never removed: this run's goes in a temporary directory of this
# script's, removed on the way out.
wine_tmp=$(mktemp -d "${TMPDIR:-/tmp}/farm-wine.XXXXXX")
export TMPDIR=$wine_tmp
trap 'rm -rf "$wine_tmp"' EXIT
wine_prefix_ready

# The prefix is this script's own: a wineserver still there (lingering after making the prefix)
# is stopped, then the one this run keeps is started.
wineserver --kill >/dev/null 2>&1 || true
wineserver --persistent
# Stop this prefix's wineserver (and anything a failed test left running in it) on the way out,
# waiting for it to end before its directory goes.
trap 'wineserver --kill >/dev/null 2>&1 || true; wineserver -w >/dev/null 2>&1 || true
      rm -rf "$wine_tmp"' EXIT
# Start wine's own services (services.exe, winedevice.exe, ...) here, with no pipe to inherit:
# started by the first test, they would hold its output pipe open and ctest would wait forever.
wine cmd /c exit </dev/null >/dev/null 2>&1

t0=$(date +%s.%N)
status=0
ctest --test-dir "$build" --output-on-failure --timeout 600 "$@" || status=$?
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "test-win: ctest under wine took %.1f s\n", b - a }'
exit $status
