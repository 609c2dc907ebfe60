# Cross-compiling farm (and its dependencies) for 64-bit Windows with Debian's mingw-w64, the
# winpthreads ("-posix") thread model: C11 threads and pthreads need it, the win32 model lacks them.
# scripts/setup-win.sh uses this file for every CMake build and passes FARM_WIN_SYSROOT, where the
# dependencies (PortAudio, libsndfile, NNG, cJSON, Criterion, mbedTLS) are installed.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(mingw_prefix x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${mingw_prefix}-gcc-posix)
set(CMAKE_CXX_COMPILER ${mingw_prefix}-g++-posix)
set(CMAKE_RC_COMPILER ${mingw_prefix}-windres)
set(CMAKE_AR ${mingw_prefix}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${mingw_prefix}-ranlib CACHE FILEPATH "")

# The sysroot comes from the command line or the environment; CMake reads this file again for
# its try_compile projects, which see only the variables named here.
if(NOT FARM_WIN_SYSROOT AND DEFINED ENV{FARM_WIN_SYSROOT})
  set(FARM_WIN_SYSROOT $ENV{FARM_WIN_SYSROOT})
endif()
set(FARM_WIN_SYSROOT "${FARM_WIN_SYSROOT}" CACHE PATH "Where the Windows dependencies are installed")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES FARM_WIN_SYSROOT)

set(CMAKE_FIND_ROOT_PATH /usr/${mingw_prefix} ${FARM_WIN_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must see the Windows .pc files only, never the machine's own.
if(FARM_WIN_SYSROOT)
  set(ENV{PKG_CONFIG_LIBDIR} "${FARM_WIN_SYSROOT}/lib/pkgconfig:${FARM_WIN_SYSROOT}/share/pkgconfig")
  set(ENV{PKG_CONFIG_PATH} "")
endif()

# ctest runs the test programs under wine (scripts/test-win.sh sets WINEPREFIX and WINEPATH).
find_program(FARM_WINE wine)
if(FARM_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FARM_WINE})
endif()
