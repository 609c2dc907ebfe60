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
          iproute2)
if [ -n "${FARM_EXTRA_PACKAGES:-}" ]; then
  read -r -a extra <<<"$FARM_EXTRA_PACKAGES"
  packages+=("${extra[@]}")
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Warnings are errors wherever this script builds: what CI accepts is what every build accepts.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_COMPILE_WARNING_AS_ERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
