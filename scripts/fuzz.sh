#!/usr/bin/env bash
# fuzz.sh [SECONDS] — fuzzes the control protocol's request parser (proto/request.c) with
# libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer for SECONDS (default 60).
# Installs clang and its libFuzzer runtime if missing (Debian 12; root runs apt-get directly,
# anyone else goes through sudo), builds proto/fuzz_request.c with the parser and base/ alone
# into build-fuzz/, copies the seed corpus proto/fuzz-corpus/ into the working corpus
# build-fuzz/corpus/ (which keeps what earlier runs found; proto/fuzz-corpus/ is never written),
# and runs. Exit status 0 only when no crash, leak, timeout or broken invariant was found;
# otherwise the failing input is left in build-fuzz/artifacts/ and shown.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]  (a positive whole number; default 60)" >&2
  exit 2
fi

out=build-fuzz
mkdir -p "$out"
cc=${FARM_FUZZ_CC:-clang}

# libFuzzer's runtime is in libclang-rt-N-dev, only a recommendation of Debian's clang: check
# that a fuzz target actually links rather than that a package is there.
fuzzer_links() {
  command -v "$cc" >/dev/null 2>&1 || return 1
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$out/probe.c"
  "$cc" -fsanitize=fuzzer,address,undefined "$out/probe.c" -o "$out/probe" >/dev/null 2>&1
}
if ! fuzzer_links; then
  echo "fuzz: installing clang and libFuzzer's runtime"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
  if ! fuzzer_links; then
    echo "fuzz: $cc cannot link a -fsanitize=fuzzer target (is libclang-rt-dev installed?)" >&2
    exit 2
  fi
fi
rm -f "$out/probe.c" "$out/probe"

# The parser is pure (no I/O, no allocation): it, base (with the platform layer base's clock
# and proto's runtime directory come from) and the target are the whole program.
"$cc" -std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Wall -Wextra \
  -I proto -I base -I plat \
  proto/fuzz_request.c proto/request.c base/base.c plat/plat_linux.c -lm -lpthread \
  -o "$out/fuzz_request"

# The words of the protocol, so mutations reach past the command.
cat >"$out/request.dict" <<'EOF'
"status"
"set"
"voice"
"worker"
"gain"
"quit"
"help"
"all"
"worker:"
"freq"
"feedback"
"amp"
"pan"
"play"
"stop"
"ramp"
"nan"
"inf"
"infinity"
"0x1p"
"e999"
"setv"
"get"
"at"
"lin"
"exp"
"harmonic"
"playing"
","
"\x0a"
"e-999"
"-"
" "
"\x09"
"\x0d\x0a"
"4294967295"
"4294967296"
"18446744073709551616"
"24000"
"60"
"1000"
EOF

mkdir -p "$out/corpus" "$out/artifacts"
cp proto/fuzz-corpus/* "$out/corpus/"
rm -f "$out/artifacts/"*

echo "fuzz: running for ${seconds}s (working corpus $out/corpus)"
log="$out/fuzz.log"
set +e
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$out/fuzz_request" "$out/corpus" -dict="$out/request.dict" -max_total_time="$seconds" \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
  >"$log" 2>&1
status=$?
set -e

# libFuzzer's summary: the last status line and the final stats.
grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)|^stat::|^Done ' "$log" || true
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$out/artifacts")" ]; then
  echo "fuzz: FAILED (exit status $status); the end of $log:" >&2
  tail -n 60 "$log" >&2
  for a in "$out/artifacts/"*; do
    [ -e "$a" ] || continue
    echo "fuzz: failing input $a:" >&2
    od -A d -c "$a" | head -n 20 >&2
  done
  exit 1
fi
echo "fuzz: no crash, leak, timeout or broken invariant in ${seconds}s"
