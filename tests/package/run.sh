#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Package tests: install evio from a fresh configure of this source tree into a temporary prefix,
# then configure, build and run each consumer project against it (fmt's find-package-test idea).
#
#   tests/package/run.sh              every case
#   tests/package/run.sh NAME...      only these cases (names below)
#
# Cases (each prints PASS/FAIL/SKIP <name>; a FAIL shows the end of its log):
#   install            fresh configure (no tests/examples) + cmake --install into <tmp>/prefix
#   install-layout     the prefix holds the headers, share/evio/*.cmake, share/pkgconfig/evio.pc,
#                      and nothing else (no tests, examples, libraries)
#   find_package       tests/package/find_package: find_package(evio 0.1 CONFIG REQUIRED)
#   find_package-version  the version file rejects the next minor (0.x) / next major version
#   relocated          the prefix moved elsewhere still works (CMake config and evio.pc)
#   add_subdirectory   tests/package/add_subdirectory: add_subdirectory(<this checkout>)
#   fetchcontent       tests/package/fetchcontent: FetchContent_Declare(SOURCE_DIR <checkout>)
#   pkg-config         tests/package/pkg-config: c++ $(pkg-config --cflags --libs evio)
#   epoll-only         install with EVIO_NO_URING=ON: consumers get EVIO_NO_URING, run on epoll
#   conan-test_package packaging/conan/test_package's CMake project against the install tree
#   conan-recipe       conanfile.py run against stand-in conan modules (tests/package/conan_recipe_check.py)
#   vcpkg-port         packaging/vcpkg/ports/evio/portfile.cmake run by cmake -P with stand-in
#                      vcpkg functions (tests/package/vcpkg_port/emulate.cmake), then a consumer
#   docs-snippet       the server examples of docs/getting-started.md and README.md compile
#
# Every consumer is built with -Wall -Wextra -Wpedantic -Werror and runs one co_await echo round
# trip on 127.0.0.1 (tests/package/echo_roundtrip.cpp).
#
# Environment: EVIO_JOBS (default 2); CXX (consumers' compiler, default CMake's choice);
# EVIO_PACKAGE_KEEP=1 keeps the temporary directory (its path is printed).
# Last line: "package: N passed, N failed, N skipped". Exit status: nonzero if a case failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tests/package"
jobs="${EVIO_JOBS:-2}"

version="$(sed -n 's/^project(evio VERSION \([0-9][0-9.]*\).*/\1/p' "$root/CMakeLists.txt" | head -n1)"
if [ -z "$version" ]; then
    echo "run.sh: cannot read the version from project(evio VERSION ...) in CMakeLists.txt" >&2
    exit 2
fi
IFS=. read -r v_major v_minor _ <<<"$version"

work="$(mktemp -d "${TMPDIR:-/tmp}/evio-package.XXXXXX")"
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    if [ "${EVIO_PACKAGE_KEEP:-0}" = 1 ]; then
        echo "-- kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
mkdir -p "$work/logs"
prefix="$work/prefix"

# Plain CMake for everything below: no preset, no toolchain, nothing from the environment's
# package registry. CMAKE_PREFIX_PATH is given per consumer.
cmake_common=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
              -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)

passed=0
failed=0
skipped=0
results=()

# run_case <name> <function>: runs the function with its output in logs/<name>.log. The function
# returns 0 (pass), 77 (skip, reason on its last output line) or anything else (fail).
run_case() {
    local name="$1" fn="$2" log="$work/logs/$1.log" rc=0 t0=$SECONDS
    echo "-- package case: $name"
    ( set -euo pipefail; "$fn" ) >"$log" 2>&1 || rc=$?
    local dt=$((SECONDS - t0))
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        results+=("PASS $name (${dt}s)")
        echo "PASS $name (${dt}s)"
    elif [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1))
        results+=("SKIP $name: $(tail -n1 "$log")")
        echo "SKIP $name: $(tail -n1 "$log")"
    else
        failed=$((failed + 1))
        results+=("FAIL $name (exit $rc)")
        echo "FAIL $name (exit $rc); last lines of $log:"
        tail -n 40 "$log" | sed 's/^/    /'
    fi
}

# install_evio <build dir> <prefix> [cmake args...]: fresh configure of the source tree without
# tests/examples/benchmarks, then cmake --install.
install_evio() {
    local build="$1" dest="$2"
    shift 2
    rm -rf "$build" "$dest"
    cmake -S "$root" -B "$build" "${cmake_common[@]}" \
        -DEVIO_BUILD_TESTS=OFF -DEVIO_BUILD_EXAMPLES=OFF -DEVIO_BUILD_BENCHMARKS=OFF \
        -DEVIO_VERIFY_HEADERS=OFF "$@"
    cmake --build "$build" --config Release -j "$jobs"
    cmake --install "$build" --config Release --prefix "$dest"
}

# consumer <source dir> <build dir> [cmake args...]: configure, build, ctest (the echo round trip).
# tests/package/find_package asks for <major>.<minor> of this tree: find_package(evio 0.1 ...).
consumer() {
    local src="$1" build="$2" version_arg=()
    shift 2
    if [ "$(basename "$src")" = find_package ]; then
        version_arg=(-DEVIO_REQUIRED_VERSION="$v_major.$v_minor")
    fi
    cmake -S "$src" -B "$build" "${cmake_common[@]}" "${version_arg[@]}" "$@"
    cmake --build "$build" --config Release -j "$jobs"
    ctest --test-dir "$build" -C Release --output-on-failure --no-tests=error -V
}

case_install() {
    install_evio "$work/evio-build" "$prefix"
}

case_install_layout() {
    [ -d "$prefix" ] || { echo "no install prefix (case install failed)"; return 1; }
    local f missing=0
    for f in include/evio/evio.hpp include/evio/version.hpp include/evio/detail/platform.hpp \
             share/evio/evio-config.cmake share/evio/evio-config-version.cmake \
             share/evio/evio-targets.cmake share/pkgconfig/evio.pc; do
        if [ ! -f "$prefix/$f" ]; then
            echo "missing: $f"
            missing=1
        fi
    done
    # Header-only: nothing but include/ and share/{evio,pkgconfig}.
    local extra
    extra="$(cd "$prefix" && find . -mindepth 1 -maxdepth 2 | sort |
             { grep -vxE '\./(include|share)|\./include/evio|\./share/(evio|pkgconfig)' || true; })"
    if [ -n "$extra" ]; then
        echo "unexpected files in the install prefix:"
        echo "$extra"
        missing=1
    fi
    # Every installed header must come from include/evio (none from tests/ or examples/).
    local n_src n_inst
    n_src="$(cd "$root/include" && find evio -name '*.hpp' | wc -l)"
    n_inst="$(cd "$prefix/include" && find evio -name '*.hpp' | wc -l)"
    echo "headers: $n_src in include/evio, $n_inst installed"
    [ "$n_src" -eq "$n_inst" ] || missing=1
    # The installed version.hpp is the source tree's.
    cmp "$root/include/evio/version.hpp" "$prefix/include/evio/version.hpp"
    return "$missing"
}

case_find_package() {
    consumer "$here/find_package" "$work/find_package" -DCMAKE_PREFIX_PATH="$prefix"
}

case_find_package_version() {
    # The version file must accept x.y and x.y.z of this release...
    local ok=1 v
    for v in "$version" "$v_major.$v_minor"; do
        if cmake -S "$here/find_package" -B "$work/fpv-ok" "${cmake_common[@]}" \
               -DCMAKE_PREFIX_PATH="$prefix" -DEVIO_REQUIRED_VERSION="$v" >/dev/null 2>&1; then
            echo "find_package(evio $v): accepted (right)"
        else
            echo "find_package(evio $v): REJECTED, but $version is installed"
            ok=0
        fi
        rm -rf "$work/fpv-ok"
    done
    # ...and reject the next major version, and the next minor while the major version is 0.
    local reject=("$((v_major + 1)).0")
    if [ "$v_major" -eq 0 ]; then
        reject+=("0.$((v_minor + 1))")
    fi
    for v in "${reject[@]}"; do
        if cmake -S "$here/find_package" -B "$work/fpv-bad" "${cmake_common[@]}" \
               -DCMAKE_PREFIX_PATH="$prefix" -DEVIO_REQUIRED_VERSION="$v" >/dev/null 2>&1; then
            echo "find_package(evio $v): ACCEPTED, but only $version is installed"
            ok=0
        else
            echo "find_package(evio $v): rejected (right)"
        fi
        rm -rf "$work/fpv-bad"
    done
    [ "$ok" -eq 1 ]
}

case_relocated() {
    [ -d "$prefix" ] || { echo "no install prefix (case install failed)"; return 1; }
    local moved="$work/moved/somewhere else"
    mkdir -p "$moved"
    cp -a "$prefix/." "$moved/"
    consumer "$here/find_package" "$work/relocated" -DCMAKE_PREFIX_PATH="$moved"
    grep -qxF "evio_DIR:PATH=$moved/share/evio" "$work/relocated/CMakeCache.txt" || {
        echo "the consumer did not use the moved prefix:"
        grep '^evio_DIR' "$work/relocated/CMakeCache.txt"
        return 1
    }
    if command -v pkg-config >/dev/null; then
        local cflags
        cflags="$(PKG_CONFIG_PATH="$moved/share/pkgconfig" pkg-config --cflags evio)"
        echo "relocated evio.pc: --cflags $cflags"
        cflags="${cflags//\\/}" # pkg-config escapes the space in the path
        case "$cflags" in
            *"$moved/share/pkgconfig/../../include"* | *"$moved/include"*) ;;
            *) echo "evio.pc does not follow the move"; return 1 ;;
        esac
    fi
}

case_add_subdirectory() {
    consumer "$here/add_subdirectory" "$work/add_subdirectory" -DEVIO_SOURCE_DIR="$root" \
        -DEVIO_EXPECTED_VERSION="$version"
}

case_fetchcontent() {
    consumer "$here/fetchcontent" "$work/fetchcontent" -DEVIO_SOURCE_DIR="$root" \
        -DEVIO_EXPECTED_VERSION="$version" -DFETCHCONTENT_BASE_DIR="$work/fetchcontent-deps"
}

case_pkg_config() {
    if ! command -v pkg-config >/dev/null; then
        echo "pkg-config is not installed"
        return 77
    fi
    export PKG_CONFIG_PATH="$prefix/share/pkgconfig"
    local got
    got="$(pkg-config --modversion evio)"
    echo "pkg-config --modversion evio: $got"
    [ "$got" = "$version" ] || { echo "expected $version"; return 1; }
    echo "pkg-config --cflags --libs evio: $(pkg-config --cflags --libs evio)"
    mkdir -p "$work/pkg-config"
    make -C "$here/pkg-config" O="$work/pkg-config" ${CXX:+CXX="$CXX"} run
}

case_epoll_only() {
    if [ "$(uname -s)" != Linux ]; then
        echo "EVIO_NO_URING only matters on Linux"
        return 77
    fi
    local p="$work/prefix-epoll"
    install_evio "$work/evio-build-epoll" "$p" -DEVIO_NO_URING=ON
    grep -q 'set(EVIO_HAS_URING OFF)' "$p/share/evio/evio-config.cmake"
    consumer "$here/find_package" "$work/epoll-find_package" -DCMAKE_PREFIX_PATH="$p"
    grep -q "echo round trip ok" "$work/epoll-find_package/Testing/Temporary/LastTest.log"
    grep -q "(epoll): echo round trip ok" "$work/epoll-find_package/Testing/Temporary/LastTest.log" || {
        echo "an EVIO_NO_URING install did not run on epoll"
        return 1
    }
    if command -v pkg-config >/dev/null; then
        local flags
        flags="$(PKG_CONFIG_PATH="$p/share/pkgconfig" pkg-config --cflags --libs evio)"
        echo "epoll-only evio.pc: $flags"
        case "$flags" in *-DEVIO_NO_URING*) ;; *) echo "evio.pc lacks -DEVIO_NO_URING"; return 1 ;; esac
        case "$flags" in *-luring*) echo "evio.pc still links liburing"; return 1 ;; esac
    fi
}

case_conan_test_package() {
    local src="$root/packaging/conan/test_package"
    [ -f "$src/CMakeLists.txt" ] || { echo "no $src/CMakeLists.txt"; return 1; }
    cmake -S "$src" -B "$work/conan-test_package" "${cmake_common[@]}" -DCMAKE_PREFIX_PATH="$prefix"
    cmake --build "$work/conan-test_package" --config Release -j "$jobs"
    local exe
    exe="$(find "$work/conan-test_package" -type f \( -name test_package -o -name test_package.exe \) |
           head -n1)"
    [ -n "$exe" ] || { echo "test_package was not built"; return 1; }
    "$exe"
}

case_conan_recipe() {
    local py
    py="$(command -v /usr/bin/python3 || command -v python3 || true)"
    if [ -z "$py" ]; then
        echo "python3 is not installed"
        return 77
    fi
    "$py" "$here/conan_recipe_check.py" "$root"
}

case_vcpkg_port() {
    local pkgs="$work/vcpkg/packages/evio_x64-linux"
    cmake -DEVIO_SOURCE_DIR="$root" -DEVIO_VCPKG_WORK="$work/vcpkg" \
        -DCURRENT_PACKAGES_DIR="$pkgs" -P "$here/vcpkg_port/emulate.cmake"
    consumer "$here/find_package" "$work/vcpkg-consumer" -DCMAKE_PREFIX_PATH="$pkgs"
}

case_docs_snippet() {
    if ! command -v pkg-config >/dev/null; then
        echo "pkg-config is not installed"
        return 77
    fi
    mkdir -p "$work/docs-snippet"
    local spec doc heading src n=0
    # "<file>|<heading>": the first ```cpp block after that heading must compile.
    for spec in "docs/getting-started.md|## Your first server" "README.md|## A server in 20 lines"; do
        doc="$root/${spec%%|*}" heading="${spec#*|}" n=$((n + 1))
        src="$work/docs-snippet/snippet$n.cpp"
        awk -v h="$heading" '$0 == h { f = 1 } f && /^```cpp$/ { c = 1; next } c && /^```$/ { exit }
             c { print }' "$doc" >"$src"
        [ -s "$src" ] || { echo "no cpp block under '$heading' in $doc"; return 1; }
        # shellcheck disable=SC2046 # pkg-config output is a list of flags
        "${CXX:-c++}" -std=c++20 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
            $(PKG_CONFIG_PATH="$prefix/share/pkgconfig" pkg-config --cflags evio) "$src"
        echo "${spec%%|*} ($heading): compiles"
    done
}

all_cases=(install install-layout find_package find_package-version relocated add_subdirectory
           fetchcontent pkg-config epoll-only conan-test_package conan-recipe vcpkg-port
           docs-snippet)
cases=("$@")
if [ "${#cases[@]}" -eq 0 ]; then
    cases=("${all_cases[@]}")
fi

echo "-- evio $version: package tests in $work"
for c in "${cases[@]}"; do
    fn="case_${c//-/_}"
    if ! declare -F "$fn" >/dev/null; then
        echo "unknown case '$c' (known: ${all_cases[*]})" >&2
        failed=$((failed + 1))
        results+=("FAIL $c (unknown case)")
        continue
    fi
    # Cases after "install" need its prefix; run it first when only later cases were asked for.
    if [ "$c" != install ] && [ ! -d "$prefix" ] && [ "$c" != add_subdirectory ] &&
       [ "$c" != fetchcontent ] && [ "$c" != conan-recipe ] && [ "$c" != vcpkg-port ]; then
        install_evio "$work/evio-build" "$prefix" >"$work/logs/install.log" 2>&1 || true
    fi
    run_case "$c" "$fn"
done

echo
echo "======== evio package tests ========"
printf '%s\n' "${results[@]}"
echo "package: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
