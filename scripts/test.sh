#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# evio's test driver (what CI runs): configure, build and ctest each stage, then one summary.
#
#   ./scripts/test.sh                 all stages: dev asan tsan mingw package lint reliability
#   ./scripts/test.sh dev asan        only these (also: tsan, epoll-only)
#
# Stages dev..epoll-only use the CMakePresets.json preset of the same name, binary dir
# build/<preset>:
#   dev         g++, RelWithDebInfo, -Werror (EVIO_WERROR), tests at EVIO_CONTRACTS=2, plus the
#               standalone-header check
#   asan        clang++, Debug, -Werror, -fsanitize=address,undefined
#   mingw       x86_64-w64-mingw32 cross build (preset mingw-wine); tests run under Wine with
#               WINEPREFIX=build/wineprefix. EVIO_SKIP_WINE=1 builds but does not run them.
#   tsan        clang++, Debug, -fsanitize=thread: the multi-threaded tests only
#   epoll-only  g++ with EVIO_NO_URING=ON (not in the default set)
#   package     tests/package/run.sh: cmake --install into a temporary prefix, then consumer
#               projects (find_package, add_subdirectory, FetchContent, pkg-config, the Conan
#               test_package, the vcpkg port) each run an echo round trip; plus
#               scripts/check_workflows.sh (.github/workflows/*.yml parse and name real presets,
#               scripts and stages) and scripts/check_api_docs.sh (docs/api.md covers every
#               public name)
#   lint        scripts/lint.sh: clang-tidy on the examples and a TU including <evio/evio.hpp>
#               (Linux and Windows headers), shellcheck on the scripts (about a minute)
#   reliability scripts/reliability.sh (docs/reliability.md): the fuzz corpus replay, a bounded
#               libFuzzer run (EVIO_FUZZ_SECONDS, default 30), the short soak (scripts/soak.sh
#               --short) and valgrind memcheck runs, in build/reliability and
#               build/reliability-fuzz (about 3 minutes)
# Environment: EVIO_JOBS (default 2), EVIO_SKIP_WINE (default 0).
# Exit status: nonzero if any stage failed to configure, build, or pass its tests.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

jobs="${EVIO_JOBS:-2}"
stages=("$@")
if [ "${#stages[@]}" -eq 0 ]; then
    stages=(dev asan tsan mingw package lint reliability)
fi
mapfile -t stage_packages < <(evio_packages_for_stages "${stages[@]}")
evio_ensure_packages "${stage_packages[@]}"

declare -A summary=()
failed=0
wine_started=0

# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    if [ "$wine_started" -eq 1 ]; then
        WINEPREFIX="$root/build/wineprefix" wineserver -k >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

header() {
    echo
    echo "======== evio test stage: $1 ========"
}

# Builds the standalone-header check when CMake created it (EVIO_VERIFY_HEADERS, headers exist).
verify_headers() {
    local dir="$1"
    local targets
    targets="$(cmake --build "$dir" --target help 2>/dev/null || true)"
    if grep -q all_verify_interface_header_sets <<<"$targets"; then
        echo "-- checking that every header compiles on its own"
        cmake --build "$dir" --target all_verify_interface_header_sets -j "$jobs"
    fi
}

# run_ctest <stage> <binary dir> [VAR=value...]: runs ctest with those environment variables and
# records "<stage>: <N> passed, <N> failed, <N> skipped" for the summary.
run_ctest() {
    local stage="$1" dir="$2" log rc=0
    shift 2
    log="$dir/ctest-output.log"
    local filter=()
    [ -n "${EVIO_CTEST_FILTER:-}" ] && filter=(-R "$EVIO_CTEST_FILTER")
    env "$@" ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs" "${filter[@]}" 2>&1 |
        tee "$log" || rc=$?
    local total nfailed nskipped
    total="$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\2/p' "$log" | tail -n1)"
    nfailed="$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$log" | tail -n1)"
    nskipped="$(grep -cE '^[[:space:]]*[0-9]+ - .*\((Skipped|Disabled)\)[[:space:]]*$' "$log" || true)"
    if [ -z "$total" ]; then
        summary[$stage]="$stage: ctest ran no test (exit $rc)"
        return 1
    fi
    summary[$stage]="$stage: $((total - nfailed - nskipped)) passed, $nfailed failed, $nskipped skipped"
    [ "$rc" -eq 0 ]
}

# backend_counts <stage> <dir> <backend...>: appends "(<backend>: N tests, conformance P/C
# passed; ...)" to the stage's summary: N tests labelled <backend> in that build, C conformance
# tests among them, P of those passed in the last run (from its log).
backend_counts() {
    local stage="$1" dir="$2" log="$2/ctest-output.log" b all conf passed counts=""
    shift 2
    for b in "$@"; do
        # -FA: without the fixtures (wine.start/wine.stop) ctest would add to the selection
        all="$(ctest --test-dir "$dir" -N -FA '.*' -L "^$b\$" 2>/dev/null |
               sed -n 's/^Total Tests: //p')"
        conf="$(ctest --test-dir "$dir" -N -FA '.*' -L "^$b\$" -R '^conformance\.' 2>/dev/null |
                sed -n 's/^Total Tests: //p')"
        passed="$(grep -cE "Test +#[0-9]+: conformance\.[A-Za-z0-9_]+\.$b \.+ +Passed" "$log" || true)"
        counts="${counts:+$counts; }$b: ${all:-0} tests, conformance $passed/${conf:-0} passed"
    done
    summary[$stage]="${summary[$stage]} ($counts)"
}

# True when this machine's kernel lets us set up an io_uring (checked without evio, by a tiny C
# program calling io_uring_setup(2) directly).
uring_works() {
    local probe="$root/build/uring_probe"
    mkdir -p "$root/build"
    if [ ! -x "$probe" ]; then
        printf '%s\n' '#include <linux/io_uring.h>' '#include <sys/syscall.h>' '#include <unistd.h>' \
            'int main(void) { struct io_uring_params p = {0};' \
            '  long fd = syscall(__NR_io_uring_setup, 8, &p); if (fd < 0) return 1;' \
            '  close((int)fd); return 0; }' | cc -x c - -o "$probe" 2>/dev/null || return 1
    fi
    "$probe"
}

# Fails the stage when io_uring tests were skipped although io_uring_setup works here: a skip must
# mean "io_uring is truly unavailable", never "evio's probe is broken".
check_uring_not_skipped() {
    local stage="$1" log="$2"
    if grep -qE 'io_uring.*Skipped' "$log" && uring_works; then
        echo "-- $stage: io_uring tests were SKIPPED but io_uring_setup works on this machine" >&2
        summary[$stage]="${summary[$stage]}; io_uring skipped although available: FAILED"
        return 1
    fi
    return 0
}

# run_stage <stage> <preset> [VAR=value...]: configure, build, ctest (with those environment
# variables), then the standalone-header check where it applies (dev, mingw).
run_stage() {
    local stage="$1" preset="$2"
    shift 2
    local dir="build/$preset" rc=0
    if ! cmake --preset "$preset"; then
        summary[$stage]="$stage: configure failed"
        return 1
    fi
    # tsan: only the multi-threaded tests (post/stop from other threads, stop_token callbacks);
    # a full ThreadSanitizer build of every test would double CI time for single-threaded code.
    local targets=()
    if [ "$stage" = tsan ]; then
        targets=(--target conformance_cancellation conformance_wakeup unit.task)
        export EVIO_CTEST_FILTER='conformance\.(cancellation|wakeup)\.|unit\.task'
    else
        unset EVIO_CTEST_FILTER
    fi
    if ! cmake --build "$dir" -j "$jobs" "${targets[@]}"; then
        summary[$stage]="$stage: build failed"
        return 1
    fi
    if [ "$stage" = mingw ]; then
        if [ "${EVIO_SKIP_WINE:-0}" = 1 ]; then
            summary[$stage]="$stage: built; tests not run (EVIO_SKIP_WINE=1)"
        else
            prepare_wine
            run_ctest "$stage" "$dir" "$@" || rc=1
            backend_counts "$stage" "$dir" iocp
        fi
    else
        run_ctest "$stage" "$dir" "$@" || rc=1
        check_uring_not_skipped "$stage" "$dir/ctest-output.log" || rc=1
        if [ "$stage" = dev ]; then
            backend_counts "$stage" "$dir" epoll io_uring
        fi
    fi
    if [ "$stage" = dev ] || [ "$stage" = mingw ]; then
        if ! verify_headers "$dir"; then
            summary[$stage]="${summary[$stage]}; standalone header check FAILED"
            rc=1
        fi
    fi
    return "$rc"
}

# run_script_stage <stage> <command...>: runs a script that ends its output with
# "<stage>: N passed, N failed, N skipped" and records that line for the summary.
run_script_stage() {
    local stage="$1" log="$root/build/$1-output.log" rc=0 line
    shift
    mkdir -p "$root/build"
    "$@" 2>&1 | tee "$log" || rc=$?
    line="$(grep -E "^$stage: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped\$" "$log" | tail -n1 || true)"
    if [ -z "$line" ]; then
        summary[$stage]="$stage: $1 printed no summary (exit $rc)"
        return 1
    fi
    summary[$stage]="$line"
    [ "$rc" -eq 0 ]
}

# The package stage: tests/package/run.sh, then the repository checks that go with packaging.
run_package_stage() {
    local rc=0 p f s name
    run_script_stage package tests/package/run.sh || rc=1
    read -r p f s < <(sed -nE 's/^package: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/p' \
                      <<<"${summary[package]}")
    if [ -z "${p:-}" ]; then # run.sh printed no summary: count it as one failure
        p=0 f=1 s=0
    fi
    for name in check_workflows check_api_docs; do
        echo "-- package check: scripts/$name.sh"
        if "scripts/$name.sh"; then
            p=$((p + 1))
        else
            f=$((f + 1))
            rc=1
            echo "FAIL scripts/$name.sh"
        fi
    done
    summary[package]="package: $p passed, $f failed, $s skipped"
    return "$rc"
}

# Wine for the mingw stage: a private prefix under build/, created once.
prepare_wine() {
    export WINEDEBUG=-all
    export WINEPREFIX="$root/build/wineprefix"
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        echo "-- creating Wine prefix $WINEPREFIX (once; takes 10-60 s)"
        local t0=$SECONDS
        wineboot -i >/dev/null 2>&1 </dev/null || true
        wineserver -w >/dev/null 2>&1 || true
        echo "-- Wine prefix ready after $((SECONDS - t0)) s"
    fi
    wine_started=1
    # The CTest fixture wine.start/wine.stop (tests/CMakeLists.txt) then brings Wine's background
    # processes up once with no pipes attached, so that no test hangs waiting on them.
}

for stage in "${stages[@]}"; do
    header "$stage"
    rc=0
    case "$stage" in
        dev)        run_stage dev dev || rc=$? ;;
        asan)       run_stage asan asan \
                        ASAN_OPTIONS=detect_leaks=1 \
                        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 || rc=$? ;;
        tsan)       run_stage tsan tsan \
                        TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 || rc=$? ;;
        epoll-only) run_stage epoll-only epoll-only || rc=$? ;;
        mingw)      run_stage mingw mingw-wine || rc=$? ;;
        package)    run_package_stage || rc=$? ;;
        lint)       run_script_stage lint scripts/lint.sh || rc=$? ;;
        reliability) run_script_stage reliability scripts/reliability.sh || rc=$? ;;
        *)
            echo "unknown stage '$stage' (known: dev asan mingw package lint reliability tsan epoll-only)" >&2
            summary[$stage]="$stage: unknown stage"
            rc=2
            ;;
    esac
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "-- stage $stage FAILED"
    fi
done

echo
echo "======== evio test summary ========"
for stage in "${stages[@]}"; do
    echo "${summary[$stage]:-$stage: no result}"
done
exit "$failed"
