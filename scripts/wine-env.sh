# wine-env.sh — sourced, not run: wine set up for farm's Windows build, the same for the tests
# (scripts/test-win.sh) and the wine benchmarks (bench/wine_*.sh). Sets cache and sysroot,
# exports the prefix ($FARM_WINEPREFIX, default under $FARM_WIN_CACHE), the DLL path into the
# dependency sysroot and a headless, quiet wine; wine_prefix_ready makes the prefix when missing.
# shellcheck shell=bash
cache=${FARM_WIN_CACHE:-$HOME/.cache/farm-win}
sysroot=${FARM_WIN_SYSROOT:-$cache/sysroot}
export WINEPREFIX=${FARM_WINEPREFIX:-$cache/wineprefix}
export WINEDEBUG=-all
export WINEARCH=win64
# No Mono or Gecko: a new prefix would offer to download them (console programs need neither).
export WINEDLLOVERRIDES="mscoree=;mshtml="
export WINEPATH="$sysroot/bin"
unset DISPLAY WAYLAND_DISPLAY

wine_prefix_ready() { # made once (about 10 s), then reused
  [ -f "$WINEPREFIX/system.reg" ] && return 0
  echo "wine-env: making the wine prefix $WINEPREFIX" >&2
  mkdir -p "$WINEPREFIX"
  wineboot --init >/dev/null 2>&1
  # A new prefix says Windows 7; farm targets Windows 10 and later.
  wine reg add 'HKCU\Software\Wine' /v Version /t REG_SZ /d win10 /f >/dev/null 2>&1
  wineserver -w # the registry reaches system.reg when the prefix's wineserver ends
}
