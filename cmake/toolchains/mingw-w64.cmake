# SPDX-License-Identifier: MIT
# Cross toolchain: x86_64 Windows via mingw-w64 (posix threads), tests run under Wine.
#
# Usage:
#   cmake -S . -B build/mingw --toolchain cmake/toolchains/mingw-w64.cmake
#   ctest --test-dir build/mingw            (CTest prefixes every test with Wine)
#
# Debian 12 packages: g++-mingw-w64-x86-64-posix wine64 wine (wine provides /usr/bin/wine).
# The -posix compilers are required: the -win32 flavour has no std::thread / std::mutex.
#
# Environment worth setting before running the tests (this file cannot do it for CTest):
#   WINEDEBUG=-all         silences Wine's fixme/err chatter and Debian's "wine32 is missing"
#                          hint, which otherwise lands in every test's stderr.
#   WINEPREFIX=<abs dir>   a private prefix, e.g. $PWD/build/wineprefix. The first Wine run in a
#                          fresh prefix creates it (30-60 s); do it once up front with
#                          `wineboot -i` so that the first test does not hit its timeout.
# scripts/test.sh (stage "mingw") and the "mingw-wine" presets set both.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(EVIO_MINGW_TRIPLE x86_64-w64-mingw32)

set(CMAKE_C_COMPILER ${EVIO_MINGW_TRIPLE}-gcc-posix)
set(CMAKE_CXX_COMPILER ${EVIO_MINGW_TRIPLE}-g++-posix)
set(CMAKE_RC_COMPILER ${EVIO_MINGW_TRIPLE}-windres)

# Libraries, headers and packages come from the mingw sysroot only; programs (pkg-config, wine)
# from the host. Header-only host packages such as Catch2 are staged explicitly by tests/.
set(CMAKE_FIND_ROOT_PATH /usr/${EVIO_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Static runtime (libstdc++, libgcc, winpthread): the .exe runs under Wine without copying DLLs.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static")

# CTest (add_test with a target as COMMAND) and try_run() prefix programs with this.
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
    find_program(EVIO_WINE_PROGRAM NAMES wine wine64 wine-stable
                 HINTS /usr/bin /usr/lib/wine
                 DOC "Wine loader used as CMAKE_CROSSCOMPILING_EMULATOR")
    if(EVIO_WINE_PROGRAM)
        set(CMAKE_CROSSCOMPILING_EMULATOR "${EVIO_WINE_PROGRAM}")
    endif()
endif()
