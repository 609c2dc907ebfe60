#!/usr/bin/env bash
# install-packages.sh PACKAGE... — installs those of the Debian packages that are missing, and
# nothing else. Root runs apt-get directly; anyone else goes through sudo. Other jobs on the
# machine may hold dpkg's lock: apt waits for it (up to 10 minutes) rather than fail.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0
echo "installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
