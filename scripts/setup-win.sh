#!/usr/bin/env bash
# setup-win.sh [BUILD_DIR] — builds farm for 64-bit Windows on Debian 12, into build-win/.
#
# 1. Installs (only what is missing) the mingw-w64 cross compiler with the -posix thread model,
#    wine, meson and the tools below, from Debian.
# 2. Gets the dependencies as Debian *source* packages with apt, through a private sources file
#    and lists directory under the cache (the machine's apt configuration is not touched).
# 3. Cross-builds them once into a sysroot ($FARM_WIN_SYSROOT, by default
#    ~/.cache/farm-win/sysroot), stamped with a key made of the source versions, the compiler's
#    version and this recipe's version: when the key matches, nothing is fetched or rebuilt.
# 4. Configures farm with cmake/mingw-w64.cmake and builds it (scripts/test-win.sh runs the
#    tests under wine).
#
# Environment: FARM_WIN_CACHE (default ~/.cache/farm-win), FARM_WIN_SYSROOT (default
# $FARM_WIN_CACHE/sysroot), FARM_WIN_JOBS (default 2), FARM_WIN_REBUILD=1 to ignore the stamp.
# Root runs apt-get directly; anyone else goes through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
build=${1:-build-win}
cache=${FARM_WIN_CACHE:-$HOME/.cache/farm-win}
sysroot=${FARM_WIN_SYSROOT:-$cache/sysroot}
jobs=${FARM_WIN_JOBS:-2}
toolchain=$repo/cmake/mingw-w64.cmake
# Bump when the way the dependencies are built changes: the sysroot is rebuilt.
recipe=2 # 2: PortAudio with WASAPI (1 had MME only)

say() { echo "setup-win: $*"; }
die() {
  echo "setup-win: $*" >&2
  exit 1
}

# --- 1. tools from Debian ---------------------------------------------------------------------
# libasound2-plugins: the tests play farm.exe through wine's ALSA driver into a private jackd
# (an ALSA configuration whose default PCM is of type jack); 64-bit wine needs the amd64 one.
packages=(gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64
          mingw-w64-x86-64-dev mingw-w64-tools wine wine64 meson ninja-build cmake pkg-config
          python3 xz-utils bzip2 libasound2-plugins jackd2)
scripts/install-packages.sh "${packages[@]}"
cc=x86_64-w64-mingw32-gcc-posix
command -v $cc >/dev/null || die "$cc not found after installing gcc-mingw-w64-x86-64-posix"

# --- 2. Debian source packages, through a private apt configuration --------------------------
# Criterion's release tarball leaves its git submodules empty: debugbreak is a Debian source
# package of its own; klib (khash.h, kvec.h) is not packaged, and miniasm's source carries it.
sources=(mbedtls nng portaudio19 libsndfile cjson criterion boxfort nanopb nanomsg debugbreak
         miniasm)
aptdir=$cache/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/src"
# The same mirrors and suites as the machine's own Debian entries, as deb-src.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
    >"$aptdir/farm-win.sources"
else
  cat >"$aptdir/farm-win.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
apt_opts=(-o "Dir::Etc::sourcelist=$aptdir/farm-win.sources" -o Dir::Etc::sourceparts=-
          -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
          -o APT::Sandbox::User=root)
# The lists are refreshed once a day; a cache hit needs no network otherwise.
if [ -z "$(find "$aptdir/lists" -maxdepth 1 -name '*Sources*' -mmin -1440 -print -quit)" ]; then
  say "updating the source lists"
  apt-get "${apt_opts[@]}" update -qq
fi

# uris PKG: the lines "URI NAME SIZE SHA256:HASH" of the source package apt would fetch.
# (Run from the lists directory: apt leaves out files already present in the current one.)
uris() {
  (cd "$aptdir/lists" && apt-get "${apt_opts[@]}" source --print-uris "$1" 2>/dev/null) |
    grep "^'" | tr -d "'"
}
declare -A dsc
for p in "${sources[@]}"; do
  dsc[$p]=$(uris "$p" | awk '$2 ~ /\.dsc$/ {print $2}')
  [ -n "${dsc[$p]}" ] || die "no Debian source package named $p in $aptdir/farm-win.sources"
done
key=$(
  for p in "${sources[@]}"; do echo "${dsc[$p]}"; done
  echo "recipe $recipe"
  $cc -dumpfullversion
  cmake --version | head -1
  meson --version
)
key=$(echo "$key" | sha256sum | cut -c1-16)

stamp=$sysroot/.farm-win-key
if [ "${FARM_WIN_REBUILD:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  say "dependencies up to date in $sysroot (key $key)"
else
  # Only the upstream tarballs are used: Debian's packaging is for Linux builds. apt checks each
  # file it fetches against the signed index; the hashes are checked again here because apt may
  # stop early when some other file of a package (a .debian.tar) cannot be fetched.
  say "fetching ${sources[*]}"
  src=$aptdir/src
  (cd "$src" && apt-get "${apt_opts[@]}" source --download-only "${sources[@]}" >/dev/null 2>&1) || true
  for p in "${sources[@]}"; do
    while read -r _ name _ sum; do
      case $name in *.orig.tar.*) ;; *) continue ;; esac
      echo "${sum#SHA256:}  $src/$name" | sha256sum --quiet -c - ||
        die "$name: missing or damaged (apt-get source $p)"
    done < <(uris "$p")
  done
  FARM_WIN_SRC=$src FARM_WIN_SYSROOT=$sysroot FARM_WIN_JOBS=$jobs FARM_WIN_TOOLCHAIN=$toolchain \
    FARM_WIN_WORK=$cache/work bash "$repo/scripts/win-deps.sh"
  echo "$key" >"$stamp"
  say "dependencies built into $sysroot (key $key)"
fi

# --- 4. farm itself -----------------------------------------------------------------------------
# Warnings are errors here as in setup.sh.
cmake -S . -B "$build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DFARM_WIN_SYSROOT="$sysroot" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_COMPILE_WARNING_AS_ERROR=ON -DFARM_BENCH=ON >/dev/null
nice -n 19 cmake --build "$build" -j"$jobs"
say "built into $build/ (run scripts/test-win.sh)"
