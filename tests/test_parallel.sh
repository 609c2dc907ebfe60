#!/usr/bin/env bash
# test_parallel.sh FARM SOURCE_DIR — the GNU parallel recipe of docs/several-machines.md, run for
# real on this machine (-j, no ssh): four parts by count rendered side by side, and their mix
# equal to one `farm render` of the whole within 1e-6; a part already there is not rendered
# again when the recipe is run a second time. Exit 77 (skipped) without GNU parallel.
# shellcheck disable=SC2015 # "A && B || fail": fail exits
set -euo pipefail
farm=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
if ! parallel --version 2>/dev/null | grep -q "GNU parallel"; then
  echo "test_parallel: skipped: GNU parallel is not installed (Debian: parallel)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-parallel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_parallel: FAILED: $*" >&2; exit 1; }
cd "$tmp"
PATH=$(dirname "$farm"):$PATH
export PATH

# The recipe, as documented (with -j 2 and no -S: the local machine).
render() {
  parallel -j 2 --halt now,fail=1 \
    farm render -o part-{}-of-4.wav --part {}/4 --total-voices 2000 --seed 7 --duration 2 \
    ::: 0 1 2 3
}
render 2>parallel.err || fail "parallel: $(cat parallel.err)"
farm mix -o out.wav part-{0,1,2,3}-of-4.wav -q || fail "farm mix"
farm render -o whole.wav --total-voices 2000 --seed 7 --duration 2 -q
python3 "$src/tests/wavcompare.py" whole.wav out.wav 96000 2 0.01 || fail "the mix is not the whole"

# Again: every part is there, whole: none is rendered again.
before=$(stat -c '%i %y' part-*-of-4.wav)
render 2>parallel.err || fail "parallel, again: $(cat parallel.err)"
[ "$(grep -c "already holds part" parallel.err)" = 4 ] || fail "run again: $(cat parallel.err)"
[ "$(stat -c '%i %y' part-*-of-4.wav)" = "$before" ] || fail "parts were written again"
echo "test_parallel: passed"
