#!/usr/bin/env bash
# setup.sh [BUILD_DIR [BUILD_TYPE]] — installs what farm needs on Debian 12 (only what is
# missing), then configures and builds. Safe to run again: it rebuilds what changed.
# Root runs apt-get directly; anyone else goes through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
type=${2:-Release}

packages=(build-essential cmake pkg-config libsndfile1-dev libcriterion-dev libcjson-dev
          portaudio19-dev libnng-dev liblo-dev jackd2 libjack-jackd2-dev libhwloc-dev
          iproute2 parallel)
if [ -n "${FARM_EXTRA_PACKAGES:-}" ]; then
  read -r -a extra <<<"$FARM_EXTRA_PACKAGES"
  packages+=("${extra[@]}")
fi
scripts/install-packages.sh "${packages[@]}"

# Warnings are errors wherever this script builds: what CI accepts is what every build accepts.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_COMPILE_WARNING_AS_ERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
