#!/usr/bin/env bash
# win-deps.sh — the recipe behind scripts/setup-win.sh (run that, not this): cross-builds farm's
# dependencies for Windows from the upstream tarballs of Debian's source packages and installs
# them into one sysroot. Input, from setup-win.sh: FARM_WIN_SRC (the downloaded source packages),
# FARM_WIN_SYSROOT, FARM_WIN_WORK (scratch, removed at the end), FARM_WIN_JOBS,
# FARM_WIN_TOOLCHAIN (cmake/mingw-w64.cmake). Libraries are DLLs in $FARM_WIN_SYSROOT/bin.
set -euo pipefail
src=$FARM_WIN_SRC
sysroot=$FARM_WIN_SYSROOT
work=$FARM_WIN_WORK
jobs=$FARM_WIN_JOBS
toolchain=$FARM_WIN_TOOLCHAIN
log=$work/log

rm -rf "$sysroot" "$work"
mkdir -p "$sysroot" "$work"

# unpack PKG: extracts PKG's upstream tarball under $work and prints the directory it made.
unpack() {
  local tarball dir
  tarball=$(find "$src" -maxdepth 1 -name "${1}_*.orig.tar.*" | sort | tail -1)
  [ -n "$tarball" ] || {
    echo "win-deps: no upstream tarball for $1 in $src" >&2
    return 1
  }
  dir=$(tar tf "$tarball" | head -1 | cut -d/ -f1)
  tar xf "$tarball" -C "$work"
  echo "$work/$dir"
}

# step NAME COMMAND...: runs a build step quietly; on failure shows the end of its log.
step() {
  local name=$1 t0=$SECONDS
  shift
  if ! nice -n 19 "$@" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "win-deps: $name failed (full log: $log)" >&2
    exit 1
  fi
  echo "win-deps: $name ($((SECONDS - t0)) s)"
}

# cmake_dep NAME SRCDIR OPTIONS...: configure, build and install one CMake project.
cmake_dep() {
  local name=$1 dir=$2
  shift 2
  step "$name configure" cmake -S "$dir" -B "$dir/_build" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DFARM_WIN_SYSROOT="$sysroot" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$sysroot" "$@"
  step "$name build" cmake --build "$dir/_build" -j"$jobs"
  step "$name install" cmake --install "$dir/_build"
}

# mbedTLS, for NNG's tls+tcp:// transport. Static: only NNG links it.
d=$(unpack mbedtls)
cmake_dep mbedtls "$d" -DENABLE_TESTING=OFF -DENABLE_PROGRAMS=OFF -DMBEDTLS_FATAL_WARNINGS=OFF \
  -DUSE_SHARED_MBEDTLS_LIBRARY=OFF -DUSE_STATIC_MBEDTLS_LIBRARY=ON

# NNG 1.5.2: later versions need the UCRT, and mingw's default C runtime is msvcrt.
d=$(unpack nng)
cmake_dep nng "$d" -DBUILD_SHARED_LIBS=ON -DNNG_TESTS=OFF -DNNG_TOOLS=OFF -DNNG_ENABLE_NNGCAT=OFF \
  -DNNG_ENABLE_TLS=ON -DMBEDTLS_ROOT_DIR="$sysroot"

# PortAudio 19.6: WASAPI and MME. Its DirectSound needs the DirectX SDK's include variable and
# WDM-KS does not build with mingw in 19.6; ASIO needs Steinberg's SDK.
# 19.6's CMakeLists turns WASAPI off for every compiler but Visual Studio's (a plain SET over the
# option, "unable to get WASAPI to compile outside of Visual Studio"), so -DPA_USE_WASAPI=ON
# alone builds MME only. MSVS=ON keeps the option; pa_win_wasapi.c then needs mingw-w64's own
# headers where it includes Visual Studio's (the condition and the names' case, as 19.7 has
# them), not the stale copies in its mingw-include/.
d=$(unpack portaudio19)
sed -i -e 's|^#if defined(_MSC_VER) && (_MSC_VER >= 1400)$|#if (defined(_MSC_VER) \&\& (_MSC_VER >= 1400)) \|\| defined(__MINGW64_VERSION_MAJOR)|' \
  -e 's|#include <Avrt.h>|#include <avrt.h>|' -e 's|#include <Audioclient.h>|#include <audioclient.h>|' \
  -e 's|#include <functiondiscoverykeys.h>|#include <functiondiscoverykeys_devpkey.h>|' \
  "$d/src/hostapi/wasapi/pa_win_wasapi.c"
sed -i 's|SET(PA_PRIVATE_INCLUDE_PATHS ${PA_PRIVATE_INCLUDE_PATHS} src/hostapi/wasapi/mingw-include)||' \
  "$d/CMakeLists.txt"
cmake_dep portaudio "$d" -DMSVS=ON -DPA_USE_WASAPI=ON -DPA_USE_WMME=ON -DPA_USE_DS=OFF \
  -DPA_USE_WDMKS=OFF -DPA_USE_WDMKS_DEVICE_INFO=OFF -DPA_USE_ASIO=OFF \
  -DPA_DLL_LINK_WITH_STATIC_RUNTIME=OFF
# 19.6 installs its DLL beside the import library; the loader looks in bin/.
mv "$sysroot"/lib/*portaudio*.dll "$sysroot/bin/" 2>/dev/null || true
# It installs pa_win_wasapi.h but not pa_win_waveformat.h, which that header includes.
cp "$d/include/pa_win_waveformat.h" "$sysroot/include/"
# Built with WASAPI or not at all: the DLL exports its calls (and its headers are installed).
x86_64-w64-mingw32-objdump -p "$sysroot/bin/libportaudio.dll" >"$work/portaudio.exports" &&
  grep -q PaWasapi_ "$work/portaudio.exports" && [ -f "$sysroot/include/pa_win_wasapi.h" ] || {
  echo "win-deps: PortAudio was built without WASAPI" >&2
  exit 1
}

# libsndfile without FLAC/Ogg/Opus/MPEG (they would need their own cross-builds): WAV, AIFF,
# and the other built-in formats, which is what farm writes.
d=$(unpack libsndfile)
cmake_dep libsndfile "$d" -DBUILD_SHARED_LIBS=ON -DENABLE_EXTERNAL_LIBS=OFF -DENABLE_MPEG=OFF \
  -DBUILD_PROGRAMS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_TESTING=OFF -DENABLE_CPACK=OFF \
  -DINSTALL_MANPAGES=OFF

d=$(unpack cjson)
cmake_dep cjson "$d" -DBUILD_SHARED_LIBS=ON -DENABLE_CJSON_TEST=OFF -DENABLE_CUSTOM_COMPILER_FLAGS=OFF

# Criterion 2.4 with meson. Its subprojects (BoxFort, nanomsg, nanopb) and its two header-only
# submodules (debugbreak, klib) come from their own Debian source packages. Theories (libffi) and
# diffs (libgit2) are off: farm's tests use neither.
d=$(unpack criterion)
for sub in boxfort:boxfort nanomsg:nanomsg nanopb:nanopb; do
  s=$(unpack "${sub%%:*}")
  rm -rf "$d/subprojects/${sub#*:}"
  mv "$s" "$d/subprojects/${sub#*:}"
done
s=$(unpack debugbreak)
cp "$s/debugbreak.h" "$d/dependencies/debugbreak/"
s=$(unpack miniasm)
cp "$s/khash.h" "$s/kvec.h" "$d/dependencies/klib/"
cat >"$work/meson-cross.ini" <<EOF
[binaries]
c = 'x86_64-w64-mingw32-gcc-posix'
cpp = 'x86_64-w64-mingw32-g++-posix'
ar = 'x86_64-w64-mingw32-ar'
strip = 'x86_64-w64-mingw32-strip'
windres = 'x86_64-w64-mingw32-windres'
pkgconfig = 'pkg-config'
cmake = 'cmake'

[properties]
pkg_config_libdir = '$sysroot/lib/pkgconfig'

[cmake]
CMAKE_SYSTEM_NAME = 'Windows'
CMAKE_SYSTEM_PROCESSOR = 'x86_64'

[host_machine]
system = 'windows'
cpu_family = 'x86_64'
cpu = 'x86_64'
endian = 'little'
EOF
# Criterion 2.4.1 pins a BoxFort newer than its 0.1.2 release, with two macros for choosing a
# debugger (--debug=native); with BoxFort 0.1.2 they are defined away: no fallback debugger.
step "criterion configure" meson setup "$d/_build" "$d" --cross-file "$work/meson-cross.ini" \
  --prefix "$sysroot" --libdir lib --buildtype release --wrap-mode nodownload \
  -Dtests=false -Dsamples=false -Dtheories=disabled -Ddiffs=disabled -Di18n=disabled \
  -Dboxfort:tests=false -Dboxfort:samples=false \
  "-Dc_args=['-DBXF_DBG_ENABLE_FALLBACK(d)=((void)0)','-DBXF_DBG_GET_DEBUGGER(d)=(d)']"
step "criterion build" ninja -C "$d/_build" -j"$jobs"
step "criterion install" meson install -C "$d/_build" --no-rebuild

# The compiler's own runtime DLLs, so that everything the programs load is in one place.
cp /usr/lib/gcc/x86_64-w64-mingw32/*-posix/libgcc_s_seh-1.dll \
  /usr/x86_64-w64-mingw32/lib/libwinpthread-1.dll "$sysroot/bin/"
rm -rf "$work"
